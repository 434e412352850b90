"""Unit tests for the numba JSON writers: Ryū float formatting (== ``repr``) and ASCII strings."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable

import numpy as np
import numpy.typing as npt
import pytest

from bayestream.models._jit import kernel
from bayestream.schema import floatfmt
from bayestream.schema.floatfmt import (
    DOUBLE_POW5_INV_SPLIT_HI,
    DOUBLE_POW5_INV_SPLIT_LO,
    DOUBLE_POW5_SPLIT_HI,
    DOUBLE_POW5_SPLIT_LO,
    MAX_FLOAT_BYTES,
    format_floats,
    json_string_max_bytes,
    write_ascii_json_string,
    write_float,
)

# ---------------------------------------------------------------------------------------------
# Helpers: kernels that call the @inline writers the way production kernels do.
# ---------------------------------------------------------------------------------------------


@kernel
def _write_one_at(out: npt.NDArray[np.uint8], pos: int, x: float) -> int:
    return write_float(out, pos, x)


@kernel
def _write_json(out: npt.NDArray[np.uint8], pos: int, src: npt.NDArray[np.uint8]) -> int:
    return write_ascii_json_string(out, pos, src, 0, src.shape[0])


@kernel
def _write_json_range(
    out: npt.NDArray[np.uint8], src: npt.NDArray[np.uint8], start: int, end: int
) -> int:
    return write_ascii_json_string(out, 0, src, start, end)


@kernel
def _umul128_many(
    a: npt.NDArray[np.uint64],
    b: npt.NDArray[np.uint64],
    lo: npt.NDArray[np.uint64],
    hi: npt.NDArray[np.uint64],
) -> None:
    for k in range(a.shape[0]):
        lo[k], hi[k] = floatfmt._umul128(a[k], b[k])


@kernel
def _mul_shift_all_many(
    m2: npt.NDArray[np.uint64],
    idx: npt.NDArray[np.int64],
    j: npt.NDArray[np.int64],
    mm_shift: npt.NDArray[np.uint64],
    res: npt.NDArray[np.uint64],
) -> None:
    for k in range(m2.shape[0]):
        i = idx[k]
        vr, vp, vm = floatfmt._mul_shift_all64(
            m2[k], DOUBLE_POW5_SPLIT_LO[i], DOUBLE_POW5_SPLIT_HI[i], j[k], mm_shift[k]
        )
        res[k, 0] = vr
        res[k, 1] = vp
        res[k, 2] = vm


def expected(x: float) -> bytes:
    return repr(x).encode() if math.isfinite(x) else b"null"


def written(x: float) -> bytes:
    return format_floats(np.array([x], dtype=np.float64))


def check_many(values: npt.NDArray[np.float64]) -> None:
    got = format_floats(values).split(b",")
    assert len(got) == values.shape[0]
    bad = [(v, g) for v, g in zip(values.tolist(), got, strict=True) if g != expected(v)]
    assert not bad, bad[:10]


# ---------------------------------------------------------------------------------------------
# Tables
# ---------------------------------------------------------------------------------------------


def _join(lo: npt.NDArray[np.uint64], hi: npt.NDArray[np.uint64], k: int) -> int:
    return (int(hi[k]) << 64) | int(lo[k])


def test_tables_shape_dtype_readonly() -> None:
    for arr, size in (
        (DOUBLE_POW5_INV_SPLIT_LO, 342),
        (DOUBLE_POW5_INV_SPLIT_HI, 342),
        (DOUBLE_POW5_SPLIT_LO, 326),
        (DOUBLE_POW5_SPLIT_HI, 326),
    ):
        assert arr.dtype == np.uint64
        assert arr.shape == (size,)
        assert not arr.flags.writeable


def test_tables_known_entries() -> None:
    # First entries of the reference tables: 2**125 + 1, 2**124 and 5 * 2**122.
    assert _join(DOUBLE_POW5_INV_SPLIT_LO, DOUBLE_POW5_INV_SPLIT_HI, 0) == 2**125 + 1
    assert int(DOUBLE_POW5_INV_SPLIT_HI[0]) == 2305843009213693952
    assert _join(DOUBLE_POW5_SPLIT_LO, DOUBLE_POW5_SPLIT_HI, 0) == 2**124
    assert int(DOUBLE_POW5_SPLIT_HI[1]) == 1441151880758558720
    assert int(DOUBLE_POW5_SPLIT_LO[1]) == 0


def test_tables_are_125_bit_approximations() -> None:
    for i in range(DOUBLE_POW5_SPLIT_LO.shape[0]):
        v = _join(DOUBLE_POW5_SPLIT_LO, DOUBLE_POW5_SPLIT_HI, i)
        assert v.bit_length() == 125
        p = 5**i
        # v = floor(5**i * 2**(125 - bitlen)): exact when 5**i fits, else truncated.
        shift = p.bit_length() - 125
        assert v == (p >> shift if shift >= 0 else p << -shift)
        assert floatfmt._pow5bits(i) == p.bit_length()
    for q in range(DOUBLE_POW5_INV_SPLIT_LO.shape[0]):
        v = _join(DOUBLE_POW5_INV_SPLIT_LO, DOUBLE_POW5_INV_SPLIT_HI, q)
        p = 5**q
        j = p.bit_length() - 1 + 125
        # v - 1 = floor(2**j / 5**q), i.e. (v - 1) * 5**q <= 2**j < v * 5**q.
        assert (v - 1) * p <= 2**j < v * p
        assert v < 2**128


# ---------------------------------------------------------------------------------------------
# 128-bit arithmetic
# ---------------------------------------------------------------------------------------------


def test_umul128_matches_python_integers() -> None:
    rng = np.random.default_rng(7)
    a = rng.integers(0, 2**64, size=20_000, dtype=np.uint64)
    b = rng.integers(0, 2**64, size=20_000, dtype=np.uint64)
    edge = np.array([0, 1, 2**32 - 1, 2**32, 2**63, 2**64 - 1], dtype=np.uint64)
    a = np.concatenate([a, np.repeat(edge, edge.shape[0])])
    b = np.concatenate([b, np.tile(edge, edge.shape[0])])
    lo = np.empty_like(a)
    hi = np.empty_like(a)
    _umul128_many(a, b, lo, hi)
    for k in range(a.shape[0]):
        prod = int(a[k]) * int(b[k])
        assert int(lo[k]) == prod & (2**64 - 1)
        assert int(hi[k]) == prod >> 64


def test_mul_shift_all64_is_exact() -> None:
    rng = np.random.default_rng(11)
    n = 20_000
    m2 = rng.integers(1, 2**53, size=n, dtype=np.uint64)
    m2[:100] = 2**53 - 1
    idx = rng.integers(0, DOUBLE_POW5_SPLIT_LO.shape[0], size=n, dtype=np.int64)
    j = rng.integers(66, 128, size=n, dtype=np.int64)
    mm_shift = rng.integers(0, 2, size=n, dtype=np.uint64)
    res = np.empty((n, 3), dtype=np.uint64)
    _mul_shift_all_many(m2, idx, j, mm_shift, res)
    mask = 2**64 - 1
    for k in range(n):
        mul = _join(DOUBLE_POW5_SPLIT_LO, DOUBLE_POW5_SPLIT_HI, int(idx[k]))
        mv = 4 * int(m2[k])
        jj = int(j[k])
        assert int(res[k, 0]) == ((mv * mul) >> jj) & mask
        assert int(res[k, 1]) == (((mv + 2) * mul) >> jj) & mask
        assert int(res[k, 2]) == (((mv - 1 - int(mm_shift[k])) * mul) >> jj) & mask


# ---------------------------------------------------------------------------------------------
# write_float == repr
# ---------------------------------------------------------------------------------------------

TABLE = [
    (0.0, b"0.0"),
    (-0.0, b"-0.0"),
    (1.0, b"1.0"),
    (-1.0, b"-1.0"),
    (0.1, b"0.1"),
    (1 / 3, b"0.3333333333333333"),
    (2 / 3, b"0.6666666666666666"),
    (1e-05, b"1e-05"),
    (0.0001, b"0.0001"),
    (0.001, b"0.001"),
    (9.999999999999999e-05, b"9.999999999999999e-05"),
    (123.0, b"123.0"),
    (12.5, b"12.5"),
    (1e15, b"1000000000000000.0"),
    (9999999999999998.0, b"9999999999999998.0"),
    (1e16, b"1e+16"),
    (1.2345e16, b"1.2345e+16"),
    (9007199254740993.0, b"9007199254740992.0"),
    (5e-324, b"5e-324"),
    (-5e-324, b"-5e-324"),
    (1e-323, b"1e-323"),
    (2.2250738585072014e-308, b"2.2250738585072014e-308"),
    (2.225073858507201e-308, b"2.225073858507201e-308"),
    (1.7976931348623157e308, b"1.7976931348623157e+308"),
    (-1.7976931348623157e308, b"-1.7976931348623157e+308"),
    (123456789.125, b"123456789.125"),
    (1e23, b"1e+23"),
    (1e22, b"1e+22"),
    (5e-05, b"5e-05"),
    (0.3, b"0.3"),
    (0.1 + 0.2, b"0.30000000000000004"),
    (math.pi, b"3.141592653589793"),
    (2.0**-1022, b"2.2250738585072014e-308"),
    (2.0**63, b"9.223372036854776e+18"),
    (1e100, b"1e+100"),
    (float("nan"), b"null"),
    (float("-nan"), b"null"),
    (float("inf"), b"null"),
    (float("-inf"), b"null"),
]


@pytest.mark.parametrize(("x", "want"), TABLE, ids=[repr(x) for x, _ in TABLE])
def test_table(x: float, want: bytes) -> None:
    assert written(x) == want
    assert want == expected(x)


def test_powers_of_two_and_ten_across_the_range() -> None:
    twos = 2.0 ** np.arange(-1074, 1024, dtype=np.float64)
    tens = np.array([float(f"1e{k}") for k in range(-323, 309)])
    tens_mul = np.array([10.0**k for k in range(-307, 309)])
    check_many(twos)
    check_many(tens)
    check_many(tens_mul)
    for arr in (twos, tens, tens_mul):
        check_many(np.nextafter(arr, np.inf))
        check_many(np.nextafter(arr, -np.inf))
        check_many(-arr)


def test_fixed_and_scientific_layout_boundaries() -> None:
    values = []
    for k in range(-8, 20):
        for mant in ("1", "9.5", "1.25", "9.999999999999998", "1.2345678901234567"):
            values.append(float(f"{mant}e{k}"))
    check_many(np.array(values))


def test_exponent_and_mantissa_edges_of_every_binade() -> None:
    mants = [0, 1, 2, 3, (1 << 51), (1 << 51) + 1, (1 << 52) - 2, (1 << 52) - 1]
    bits = np.array([(e << 52) | m for e in range(2047) for m in mants], dtype=np.uint64)
    check_many(bits.view(np.float64))


def test_integers_and_halves() -> None:
    check_many(np.arange(0, 300_000, dtype=np.float64))
    check_many(np.arange(0, 100_000, dtype=np.float64) * 0.5 + 2.0**52)
    check_many(np.arange(0, 100_000, dtype=np.float64) * 0.125)


def test_random_bit_patterns_and_scaled_normals() -> None:
    rng = np.random.default_rng(20240601)
    bits = rng.integers(0, 2**64, size=300_000, dtype=np.uint64)
    check_many(bits.view(np.float64))
    y = rng.normal(size=300_000) * 10.0 ** rng.integers(-10, 10, size=300_000)
    check_many(y)
    subnormal = rng.integers(1, 2**52, size=50_000, dtype=np.uint64)
    check_many(subnormal.view(np.float64))


def test_write_float_at_offset_touches_only_its_bytes() -> None:
    for x in (0.0, -1.7976931348623157e308, 1e-05, float("nan"), 123.456, -5e-324):
        out = np.full(64, 0xAA, dtype=np.uint8)
        end = _write_one_at(out, 7, x)
        want = expected(x)
        assert end == 7 + len(want)
        assert out[7:end].tobytes() == want
        assert (out[:7] == 0xAA).all()
        assert (out[end:] == 0xAA).all()
        assert len(want) <= MAX_FLOAT_BYTES


def test_format_floats_shapes() -> None:
    assert format_floats(np.array([], dtype=np.float64)) == b""
    assert format_floats(np.array([[1.0, 2.5], [-0.0, np.inf]])) == b"1.0,2.5,-0.0,null"
    assert format_floats(np.array([3], dtype=np.int64)) == b"3.0"


# ---------------------------------------------------------------------------------------------
# JSON strings
# ---------------------------------------------------------------------------------------------


def json_bytes(s: str, pos: int = 0) -> tuple[int, bytes]:
    src = np.frombuffer(s.encode("utf-8"), dtype=np.uint8)
    out = np.zeros(json_string_max_bytes(src.shape[0]) + pos, dtype=np.uint8)
    end = _write_json(out, pos, src)
    return end, out[pos:end].tobytes() if end >= 0 else b""


STRINGS = [
    "",
    "abc",
    "cpu.load",
    '"',
    "\\",
    'a"b\\c',
    "\n\r\t\b\f",
    "\x00\x01\x1e\x1f",
    "\x7f",
    " ~",
    "</script>",
    "".join(chr(c) for c in range(128)),
]


@pytest.mark.parametrize("s", STRINGS, ids=[repr(s)[:30] for s in STRINGS])
def test_json_string_matches_json_dumps(s: str) -> None:
    for pos in (0, 3):
        end, got = json_bytes(s, pos)
        assert got == json.dumps(s).encode()
        assert end == pos + len(got)


@pytest.mark.parametrize("s", ["é", "abc\u2028", "x\U0001f600y", "\x80"])
def test_json_string_rejects_non_ascii(s: str) -> None:
    assert json_bytes(s)[0] == -1


def test_json_string_sub_range() -> None:
    src = np.frombuffer(b'xx"a\nb"yy', dtype=np.uint8)
    out = np.zeros(64, dtype=np.uint8)
    end = _write_json_range(out, src, 2, 7)
    assert out[:end].tobytes() == json.dumps('"a\nb"').encode()


# ---------------------------------------------------------------------------------------------
# Speed
# ---------------------------------------------------------------------------------------------


def test_speed_figure(record_property: Callable[[str, object], None]) -> None:
    rng = np.random.default_rng(3)
    n = 1_000_000
    y = rng.normal(size=n) * 10.0 ** rng.integers(-10, 10, size=n)
    out = np.empty(n * (MAX_FLOAT_BYTES + 1), dtype=np.uint8)
    floatfmt._format_floats_kernel(y[:10], out)  # warm
    best = math.inf
    for _ in range(5):
        t0 = time.perf_counter()
        floatfmt._format_floats_kernel(y, out)
        best = min(best, time.perf_counter() - t0)
    ns_kernel = best / n * 1e9
    values = y[:200_000].tolist()
    t0 = time.perf_counter()
    for v in values:
        repr(v)
    ns_repr = (time.perf_counter() - t0) / len(values) * 1e9
    # The figures go to the JUnit report (--junitxml) and to the failure message, not into the
    # middle of pytest's progress line.
    record_property("write_float_ns_per_number", round(ns_kernel, 1))
    record_property("repr_ns_per_number", round(ns_repr, 1))
    # A loose guard (the target is < 60 ns): catches a fall back to slow paths, not noise.
    assert ns_kernel < 600, (
        f"write_float: {ns_kernel:.1f} ns/number; Python repr loop: {ns_repr:.1f} ns/number"
    )
