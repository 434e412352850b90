"""Unit tests for the byte-level JSON scanner :mod:`bayestream.schema.scan`."""

from __future__ import annotations

import json
import math
import struct
from typing import Any

import numpy as np
import pytest

from bayestream.schema import decimal
from bayestream.schema import lines as lines_module
from bayestream.schema import scan as scan_module
from bayestream.schema.lines import split_lines
from bayestream.schema.scan import (
    FIELDS,
    KIND_ABSENT,
    KIND_FALSE,
    KIND_NULL,
    KIND_NUMBER,
    KIND_NUMBER_DEFERRED,
    KIND_STRING,
    KIND_TRUE,
    ScanResult,
    resolve_deferred,
    scan,
)

# Messages are laid out in one buffer separated by this junk, so a scanner that read past
# ``ends[i]`` would see a closing brace and wrongly accept truncated messages.
_SEP = b"}}\xff"


def scan_messages(messages: list[bytes]) -> tuple[np.ndarray, ScanResult]:
    buf = bytearray(_SEP)
    starts, ends = [], []
    for m in messages:
        starts.append(len(buf))
        buf += m
        ends.append(len(buf))
        buf += _SEP
    arr = np.frombuffer(bytes(buf), dtype=np.uint8)
    return arr, scan(arr, np.array(starts, dtype=np.int64), np.array(ends, dtype=np.int64))


def bits(x: float) -> bytes:
    return struct.pack("<d", x)


def parse_int(text: str) -> float:
    """json.loads gives the int 0 for ``-0``: +0.0 as a float; other integers as float(text)."""
    return 0.0 if text == "-0" else float(text)


def reference(message: bytes) -> dict[str, tuple[int, Any]]:
    """Fields as Python's json.loads sees them (integers converted with :func:`parse_int`)."""
    seen: list[str] = []

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        seen.extend(k for k, _ in items)
        return dict(items)

    obj = json.loads(message.decode("ascii"), parse_int=parse_int, object_pairs_hook=pairs)
    assert isinstance(obj, dict)
    for name in FIELDS:
        assert seen.count(name) <= 1, "accepted a duplicate member among FIELDS"
    out: dict[str, tuple[int, Any]] = {}
    for name in FIELDS:
        if name not in obj:
            out[name] = (KIND_ABSENT, None)
            continue
        v = obj[name]
        if v is True:
            out[name] = (KIND_TRUE, None)
        elif v is False:
            out[name] = (KIND_FALSE, None)
        elif v is None:
            out[name] = (KIND_NULL, None)
        elif isinstance(v, str):
            out[name] = (KIND_STRING, v)
        elif isinstance(v, float):
            out[name] = (KIND_NUMBER, v)
        else:
            raise AssertionError(f"scanner accepted a {type(v).__name__} value")
    return out


def scanned(buf: np.ndarray, res: ScanResult, i: int) -> dict[str, tuple[int, Any]]:
    out: dict[str, tuple[int, Any]] = {}
    raw = buf.tobytes()
    for f, name in enumerate(FIELDS):
        kind = int(res.kind[i, f])
        value: Any = None
        if kind == KIND_NUMBER:
            value = float(res.number[i, f])
        else:
            assert math.isnan(res.number[i, f])
        if kind == KIND_STRING:
            value = raw[res.str_start[i, f] : res.str_end[i, f]].decode("ascii")
        else:
            assert res.str_start[i, f] == -1 and res.str_end[i, f] == -1
        out[name] = (kind, value)
    return out


def assert_agrees(message: bytes, buf: np.ndarray, res: ScanResult, i: int) -> None:
    expected = reference(message)
    got = scanned(buf, res, i)
    for name in FIELDS:
        ek, ev = expected[name]
        gk, gv = got[name]
        assert gk == ek, (message, name)
        if ek == KIND_NUMBER:
            assert bits(gv) == bits(ev), (message, name, gv, ev)
        else:
            assert gv == ev, (message, name)


def fnv1a64(data: bytes) -> int:
    h = 0xCBF29CE484222325
    for byte in data:
        h = ((h ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


ACCEPTED: list[bytes] = [
    b'{"key":"svc-1","metric":"latency_ms","ts":1700000000.25,"value":12.5}',
    b'{"key":"svc-1","metric":"m","ts":1700000000.123456,"value":0.1,"trials":10,"exposure":2}',
    b"{}",
    b" \t\r\n{ \t\r\n} \t\r\n",
    b'{ "key" : "a" ,\n\t"value" :\r\n -3 }',
    b'{"value":0.1}',
    b'{"value":-0.0}',
    b'{"value":-0}',
    b'{"value":0}',
    b'{"value":3}',
    b'{"value":-3}',
    b'{"value":0e999}',
    b'{"value":-0e-999}',
    b'{"value":0.000000000000000000000000000000}',
    b'{"value":1700000000.123456}',
    b'{"value":9007199254740992}',
    b'{"value":-9007199254740992}',
    b'{"value":1e22}',
    b'{"value":1e-22}',
    b'{"value":1.5E+3}',
    b'{"value":2.5e-7}',
    b'{"value":0.000001234}',
    b'{"value":123456.789e-3}',
    b'{"value":100e-2}',
    b'{"value":4.35}',
    b'{"value":8.589973e9}',
    b'{"ts":1.7e9,"value":0.25e1}',
    b'{"value":true,"trials":false,"exposure":null}',
    b'{"key":"","metric":""}',
    b'{"key":"a b\x7f~!#$%&\'()*+,-./:;<=>?@[]^_`{|}","metric":"x"}',
    # Ignored members: validated only, any valid JSON number, duplicates allowed.
    b'{"extra":1e400,"big":12345678901234567890,"tiny":5e-324,"value":1}',
    b'{"a":1,"a":2,"a":"x","a":true,"value":7}',
    b'{"Key":"x","keys":"y","KEY":1,"ts ":2,"exposures":3,"metri":4}',
    b'{"a":null,"b":false,"c":true,"d":"","e":-1.5e-10}',
    b'{"thisisaverylongmembername":1,"key":"k"}',
    # Numbers off Clinger's path: Eisel-Lemire, or deferred to float(bytes), never fallback.
    b'{"value":1e400}',
    b'{"value":-1e400}',
    b'{"value":1e-400}',
    b'{"value":-1e-400}',
    b'{"value":5e-324}',
    b'{"value":-4.9406564584124654e-324}',
    b'{"value":2.4703282292062327e-324}',
    b'{"value":2.4703282292062328e-324}',
    b'{"value":2.2250738585072014e-308}',
    b'{"value":2.2250738585072011e-308}',
    b'{"value":1.7976931348623157e308}',
    b'{"value":1.7976931348623158e308}',
    b'{"value":1.7976931348623159e308}',
    b'{"value":12345678901234567890}',
    b'{"value":9007199254740993}',
    b'{"value":123456789012345678}',
    b'{"value":0.1234567890123456789}',
    b'{"value":1e23}',
    b'{"value":1.0000000000000002}',
    b'{"value":0.30000000000000004}',
    b'{"value":9999999999999999}',
    b'{"value":1e-23}',
    b'{"value":1e-99999999,"ts":1e99999999}',
    b'{"value":0.0000000000000000000000000000000000000000000000000000001e55}',
    b'{"ts":1700000000.1234567,"value":12.345678901234567,"trials":-0,"exposure":-0.0}',
]

FALLBACK: list[bytes] = [
    b"",
    b"   ",
    b"\n",
    b"[]",
    b'"str"',
    b"1",
    b"null",
    b"{",
    b'{"key":"a"',
    b'{"key":"a",',
    b'{"key":"a"} x',
    b"{}{}",
    b"{},",
    b'{"a"}',
    b'{"a":}',
    b'{"a" 1}',
    b"{,}",
    b'{"a":1,}',
    b'{"a":1 "b":2}',
    b"{'a':1}",
    b"{a:1}",
    b'{"a":{"b":1}}',
    b'{"a":[1,2]}',
    b'{"a":[]}',
    b'{"a":{}}',
    b'{"key":"a\\"b"}',
    b'{"key":"a\\u0062"}',
    b'{"k\\u0065y":"a"}',
    b'{"a":"\\n"}',
    '{"key":"é"}'.encode(),
    '{"kéy":"a"}'.encode(),
    '{"key":"a"} \u00a0'.encode(),
    b'{"key":"a\xff"}',
    b'\xef\xbb\xbf{"key":"a"}',
    b'{"key":"a\tb"}',
    b'{"key":"a\x00b"}',
    b'{"key":"a\x1fb"}',
    b'{"key":"a}',
    b'{"key":"a',
    b'{"value":1.5,"value":2.5}',
    b'{"key":"a","key":"a"}',
    b'{"trials":null,"trials":null}',
    b'{"value":01}',
    b'{"value":-01}',
    b'{"value":00}',
    b'{"value":+1}',
    b'{"value":.5}',
    b'{"value":1.}',
    b'{"value":1.e5}',
    b'{"value":1e}',
    b'{"value":1e+}',
    b'{"value":1E-}',
    b'{"value":-}',
    b'{"value":--1}',
    b'{"value":1.5.5}',
    b'{"value":0x10}',
    b'{"value":1_000}',
    b'{"value":NaN}',
    b'{"value":Infinity}',
    b'{"value":-Infinity}',
    b'{"value":tru}',
    b'{"value":truex}',
    b'{"value":True}',
    b'{"value":nul}',
    b'{"value":fals}',
    b'{"value":nulll}',
    b'{"value":1}\x00',
    b'{"value":1}\x0b',
    b'{"value":1}\x0c',
    b'\x0c{"value":1}',
    b'{"other":1e}',
    b'{"other":01}',
    b'{"other":[1]}',
    b'{"other":"\xc3\xa9"}',
]


@pytest.mark.parametrize("message", ACCEPTED)
def test_accepted_messages_match_json_loads(message: bytes) -> None:
    buf, res = scan_messages([message])
    assert not res.fallback[0], message
    assert_agrees(message, buf, res, 0)


@pytest.mark.parametrize("message", FALLBACK)
def test_fallback_messages(message: bytes) -> None:
    _, res = scan_messages([message])
    assert res.fallback[0], message


def test_all_cases_in_one_batch() -> None:
    messages = ACCEPTED + FALLBACK
    buf, res = scan_messages(messages)
    for i, m in enumerate(messages):
        assert bool(res.fallback[i]) == (m in FALLBACK)
        if m not in FALLBACK:
            assert_agrees(m, buf, res, i)


NUMBER_VALUES: list[tuple[bytes, float]] = [
    (b"0.1", 0.1),
    (b"-0.0", -0.0),
    (b"-0e0", -0.0),
    (b"-0.000e-5", -0.0),
    (b"0", 0.0),
    (b"3", 3.0),
    (b"1700000000.123456", 1700000000.123456),
    (b"9007199254740992", 9007199254740992.0),
    (b"1e22", 1e22),
    (b"1e-22", 1e-22),
    (b"0.3", 0.3),
    (b"2.675", 2.675),
    # 16-17 significant digits: shortest reprs of typical doubles.
    (b"1700000000.1234567", 1700000000.1234567),
    (b"0.30000000000000004", 0.30000000000000004),
    (b"0.8444218515250481", 0.8444218515250481),
    (b"57.58133566467485", 57.58133566467485),
    (b"-1.2345678901234567e-89", -1.2345678901234567e-89),
    (b"3.141592653589793", math.pi),
    (b"1.0000000000000002", 1.0000000000000002),
    (b"9999999999999999", 1e16),
    # Boundaries of the format.
    (b"2.2250738585072014e-308", 2.2250738585072014e-308),  # smallest normal
    (b"2.225073858507201e-308", 2.225073858507201e-308),  # largest subnormal
    (b"4.9406564584124654e-324", 5e-324),  # smallest subnormal
    (b"5e-324", 5e-324),
    (b"2.4703282292062328e-324", 5e-324),  # just above half the smallest subnormal
    (b"2.4703282292062327e-324", 0.0),  # just below: underflows to zero
    (b"1e-400", 0.0),
    (b"-1e-400", -0.0),
    (b"1.7976931348623157e308", 1.7976931348623157e308),  # largest double
    (b"1.7976931348623158e308", 1.7976931348623157e308),
    (b"1.7976931348623159e308", math.inf),  # rounds up past the largest double
    (b"1e309", math.inf),
    (b"1e400", math.inf),
    (b"-1e400", -math.inf),
    (b"8.98846567431158e307", 8.98846567431158e307),
    # Classic hard cases: ties and near-ties of round-to-nearest-even.
    (b"9007199254740993", 9007199254740992.0),  # 2**53 + 1: a tie, rounds to even
    (b"9007199254740993.0", 9007199254740992.0),
    (b"9007199254740995", 9007199254740996.0),  # a tie, rounds to even (up)
    (b"9007199254740993.0000000001", 9007199254740994.0),  # just above the tie
    (b"2.0000000000000004440892098500626", 2.0000000000000004),
    (b"2.0000000000000002220446049250313080847263336181640625", 2.0),  # tie 2 + 2**-52: even
    (b"2.0000000000000002220446049250313080847263336181640626", 2.0000000000000004),
    (b"2.00000000000000022204460492503130808", 2.0),  # just below the tie
    (b"1e23", 1e23),
    (b"8.988465674311579e307", 8.988465674311579e307),
    (b"123456789012345678901234", 1.2345678901234568e23),
    (b"9223372036854775807", 9.223372036854776e18),
    (b"9999999999999999999", 1e19),  # 19 digits, the most that are converted in the kernel
    (b"90071992547409920e-1", 9007199254740992.0),  # exact double, q < 0
    (b"7.2057594037927933e16", 7.205759403792794e16),
]


@pytest.mark.parametrize(("text", "expected"), NUMBER_VALUES)
def test_number_values(text: bytes, expected: float) -> None:
    _, res = scan_messages([b'{"value":' + text + b"}"])
    assert not res.fallback[0]
    assert res.kind[0, FIELDS.index("value")] == KIND_NUMBER
    got = float(res.number[0, FIELDS.index("value")])
    assert bits(got) == bits(expected) == bits(float(text))
    assert math.copysign(1.0, got) == math.copysign(1.0, expected)


def test_integer_minus_zero_is_positive_zero() -> None:
    """``-0`` is the int 0 for json.loads and 0.0 for msgspec; ``-0.0``/``-0e0`` keep the sign."""
    texts = [b"-0", b"-0.0", b"-0e0", b"-0E+3", b"0", b"-0.00"]
    _, res = scan_messages([b'{"value":' + t + b"}" for t in texts])
    assert not res.fallback.any()
    got = [bits(float(v)) for v in res.number[:, FIELDS.index("value")]]
    assert got == [bits(v) for v in (0.0, -0.0, -0.0, -0.0, 0.0, -0.0)]


def unresolved(messages: list[bytes]) -> tuple[np.ndarray, ScanResult, int]:
    buf = b"".join(messages)
    lengths = np.array([len(m) for m in messages], dtype=np.int64)
    ends = np.cumsum(lengths)
    arr = np.frombuffer(buf, dtype=np.uint8)
    res, n_deferred = scan_module._scan_unresolved(arr, ends - lengths, ends)
    return arr, res, n_deferred


@pytest.mark.parametrize(
    "text",
    [
        b"123456789012345678901234",  # more than 19 significant digits
        b"-0.12345678901234567890",
        b"1.00000000000000000000",  # trailing zeros count as significant digits
        b"2.0000000000000004440892098500626",
        b"1e1000000",  # an exponent too long to track exactly
        b"0.0000001e-1000000",
    ],
)
def test_deferred_numbers(text: bytes) -> None:
    message = b'{"key":"k","value":' + text + b',"ts":1.5}'
    buf, res, n_deferred = unresolved([message])
    v = FIELDS.index("value")
    assert not res.fallback[0]
    assert n_deferred == 1
    assert res.kind[0].tolist() == [KIND_STRING, 0, KIND_NUMBER, KIND_NUMBER_DEFERRED, 0, 0]
    assert buf[res.str_start[0, v] : res.str_end[0, v]].tobytes() == text
    assert math.isnan(res.number[0, v])
    assert res.number[0, FIELDS.index("ts")] == 1.5
    # scan() resolves them; callers never see the deferred kind.
    final = scan(buf, np.array([0]), np.array([len(message)]))
    assert final.kind[0, v] == KIND_NUMBER
    assert bits(float(final.number[0, v])) == bits(float(text))
    assert final.str_start[0, v] == -1 and final.str_end[0, v] == -1


def test_seventeen_digit_doubles_are_not_deferred() -> None:
    """Typical shortest reprs convert in the kernel (Eisel-Lemire), without deferral."""
    messages = [
        b'{"ts":1700000000.1234567,"value":12.345678901234567}',
        b'{"ts":1700000123.9876543,"value":0.30000000000000004}',
        b'{"ts":1.7e9,"value":99.99999999999999}',
        b'{"value":2.2250738585072014e-308,"trials":1.7976931348623157e308}',
        b'{"value":4.9406564584124654e-324,"exposure":1e23}',
        b'{"value":1e400,"ts":-1e-400}',
        b'{"value":8000183243609910.0,"ts":2507292304129789.5}',  # exact doubles, q < 0
    ]
    _, res, n_deferred = unresolved(messages)
    assert n_deferred == 0
    assert not res.fallback.any()
    assert not (res.kind == KIND_NUMBER_DEFERRED).any()


def test_deferred_count_ignores_fallback_rows() -> None:
    _, res, n_deferred = unresolved(
        [b'{"value":123456789012345678901234,"trials":[1]}', b'{"value":1.00000000000000000000}']
    )
    assert res.fallback.tolist() == [True, False]
    assert n_deferred == 1
    assert res.kind[0].tolist() == [KIND_ABSENT] * 6
    assert res.str_start[0].tolist() == [-1] * 6


@pytest.mark.parametrize("as_bytes", [True, False])
def test_resolve_deferred(as_bytes: bool) -> None:
    messages = [
        b'{"value":123456789012345678901234,"ts":-1.000000000000000000001e-5}',
        b'{"value":1.5,"key":"abc"}',
        b'{"exposure":0.100000000000000000000000001}',
    ]
    buf, res, n_deferred = unresolved(messages)
    assert n_deferred == 3
    resolve_deferred(buf.tobytes() if as_bytes else buf, res)
    assert not (res.kind == KIND_NUMBER_DEFERRED).any()
    ts, value, exposure = FIELDS.index("ts"), FIELDS.index("value"), FIELDS.index("exposure")
    assert res.number[0, value] == float("123456789012345678901234")
    assert bits(float(res.number[0, ts])) == bits(-1.000000000000000000001e-5)
    assert res.number[1, value] == 1.5
    assert res.number[2, exposure] == 0.1
    assert res.kind[:, [ts, value, exposure]].tolist() == [
        [KIND_NUMBER, KIND_NUMBER, KIND_ABSENT],
        [KIND_ABSENT, KIND_NUMBER, KIND_ABSENT],
        [KIND_ABSENT, KIND_ABSENT, KIND_NUMBER],
    ]
    assert (res.str_start[:, [ts, value, exposure]] == -1).all()
    assert res.kind[1, FIELDS.index("key")] == KIND_STRING
    resolve_deferred(buf, res)  # nothing left: a no-op


def test_eisel_lemire_table() -> None:
    """The generated table holds the truncated 128-bit mantissas (spot checks against Go's)."""
    lo_q = decimal._EL_MIN_Q
    hi, lo = decimal._POW10_HI, decimal._POW10_LO
    assert hi.dtype == lo.dtype == np.uint64
    assert hi.shape == lo.shape == (decimal._EL_MAX_Q - lo_q + 1,)
    assert (hi >= np.uint64(2**63)).all()  # normalised: top bit set
    # strconv/eisel_lemire.go: 1e43, 1e0 and 1e-1 (rounded down).
    assert (int(hi[43 - lo_q]), int(lo[43 - lo_q])) == (0xE596B7B0C643C719, 0x6D9CCD05D0000000)
    assert (int(hi[0 - lo_q]), int(lo[0 - lo_q])) == (2**63, 0)
    assert (int(hi[-1 - lo_q]), int(lo[-1 - lo_q])) == (0xCCCCCCCCCCCCCCCC, 0xCCCCCCCCCCCCCCCC)
    for q in (-342, -300, -28, -27, -1, 27, 28, 55, 56, 308):
        m = (int(hi[q - lo_q]) << 64) | int(lo[q - lo_q])
        if q >= 0:
            shift = (10**q).bit_length() - 128
            assert m == ((10**q) >> shift if shift > 0 else (10**q) << -shift)
        else:
            # m <= 2**k / 10**-q < m + 1 for the k that normalises it.
            k = 127 + (10**-q).bit_length()
            assert m * 10**-q <= 2**k < (m + 1) * 10**-q


def test_mul_64x64() -> None:
    cases = [(0, 0), (1, 1), (2**64 - 1, 2**64 - 1), (2**63, 2), (0xDEADBEEFCAFEBABE, 12345)]
    for a, b in cases:
        hi, lo = decimal._mul_64x64(np.uint64(a), np.uint64(b))
        assert (int(hi) << 64) | int(lo) == a * b


def test_output_layout() -> None:
    message = b'  {"exposure":null,"trials":true,"value":false,"ts":1,"metric":"m","key":"k"}'
    buf, res = scan_messages([message])
    assert res.fallback.dtype == np.bool_ and res.fallback.shape == (1,)
    assert res.kind.dtype == np.uint8 and res.kind.shape == (1, 6)
    assert res.number.dtype == np.float64 and res.number.shape == (1, 6)
    assert res.str_start.dtype == np.int64 and res.str_end.shape == (1, 6)
    assert res.stream_hash.dtype == np.uint64
    assert len(res) == 1
    assert res.kind[0].tolist() == [
        KIND_STRING,
        KIND_STRING,
        KIND_NUMBER,
        KIND_FALSE,
        KIND_TRUE,
        KIND_NULL,
    ]
    start = len(_SEP)
    assert buf[res.str_start[0, 0] : res.str_end[0, 0]].tobytes() == b"k"
    assert res.str_start[0, 0] == start + message.index(b'"k"') + 1
    assert res.str_start[0, 1] == start + message.index(b'"m"') + 1


def test_stream_hash_is_fnv1a_of_key_nul_metric() -> None:
    messages = [
        b'{"key":"svc-1","metric":"latency_ms"}',
        b'{"metric":"latency_ms","key":"svc-1","value":3}',
        b'{"key":"","metric":""}',
        b'{"key":"a","metric":"bc"}',
        b'{"key":"ab","metric":"c"}',
        b'{"key":"svc-1"}',
        b'{"key":"svc-1","metric":1}',
        b'{"key":null,"metric":"m"}',
        b'{"key":"x","metric":"y"',
    ]
    _, res = scan_messages(messages)
    hashes = res.stream_hash.tolist()
    assert hashes[0] == hashes[1] == fnv1a64(b"svc-1\x00latency_ms")
    assert hashes[2] == fnv1a64(b"\x00")
    assert hashes[3] == fnv1a64(b"a\x00bc") != hashes[4] == fnv1a64(b"ab\x00c")
    assert hashes[5:] == [0, 0, 0, 0]
    assert fnv1a64(b"") == 0xCBF29CE484222325
    assert fnv1a64(b"a") == 0xAF63DC4C8601EC8C  # published FNV-1a 64 test vector


def test_empty_batch() -> None:
    res = scan(np.zeros(0, np.uint8), np.zeros(0, np.int64), np.zeros(0, np.int64))
    assert res.fallback.shape == (0,) and res.kind.shape == (0, 6)


def test_rejects_bad_arguments() -> None:
    buf = np.frombuffer(b"{}", np.uint8)
    with pytest.raises(ValueError):
        scan(buf, np.array([0]), np.array([3]))
    with pytest.raises(ValueError):
        scan(buf, np.array([1]), np.array([0]))
    with pytest.raises(ValueError):
        scan(buf, np.array([-1]), np.array([1]))
    with pytest.raises(ValueError):
        scan(buf, np.array([0, 0]), np.array([2]))
    with pytest.raises(ValueError):
        scan(buf.astype(np.int16), np.array([0]), np.array([2]))  # type: ignore[arg-type]


def _split(data: bytes) -> list[tuple[int, bytes]]:
    buf = np.frombuffer(data, np.uint8)
    starts, ends, lines = split_lines(buf)
    assert starts.dtype == ends.dtype == lines.dtype == np.int64
    return [(int(n), data[s:e]) for s, e, n in zip(starts, ends, lines, strict=True)]


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"", []),
        (b"\n", []),
        (b"\n\n \n\t\r\n", []),
        (b"a", [(1, b"a")]),
        (b"a\n", [(1, b"a")]),
        (b"a\nb", [(1, b"a"), (2, b"b")]),
        (b"a\n\nb\n", [(1, b"a"), (3, b"b")]),
        (b"a\r\nb\r\n", [(1, b"a\r"), (2, b"b\r")]),
        (b"\r\n  \r\n{}\r\n\r\n", [(3, b"{}\r")]),
        (b" x \n \t \n", [(1, b" x ")]),
        (b"\n\n\nlast", [(4, b"last")]),
        (b"\x0b\n", [(1, b"\x0b")]),
    ],
)
def test_split_lines(data: bytes, expected: list[tuple[int, bytes]]) -> None:
    assert _split(data) == expected


@pytest.mark.parametrize("chunk", [1, 3, 7, 64])
def test_split_lines_finds_newlines_chunk_by_chunk(
    monkeypatch: pytest.MonkeyPatch, chunk: int
) -> None:
    rng = np.random.default_rng(chunk)
    pieces = [b"", b" ", b"\t\r", b"{}", b'{"value":1}', b"x y", b"\r"]
    data = b"\n".join(pieces[i] for i in rng.integers(0, len(pieces), 300))
    expected = _split(data)
    assert expected  # (the default chunk holds the whole block)
    monkeypatch.setattr(lines_module, "_NEWLINE_CHUNK", chunk)
    assert _split(data) == expected
    assert _split(data + b"\n") == expected


def test_split_then_scan() -> None:
    data = b'{"key":"a","metric":"m","value":1}\r\n\n   \n{"value":2}\n{"value":\n'
    buf = np.frombuffer(data, np.uint8)
    starts, ends, lines = split_lines(buf)
    assert lines.tolist() == [1, 4, 5]
    res = scan(buf, starts, ends)
    assert res.fallback.tolist() == [False, False, True]
    assert res.number[:2, FIELDS.index("value")].tolist() == [1.0, 2.0]


def test_fallback_rows_read_as_absent() -> None:
    messages = [b'{"key":"a","metric":"m","value":1,"trials":[1]}', b'{"key":"a","value":1e+}']
    _, res = scan_messages(messages)
    assert res.fallback.tolist() == [True, True]
    assert (res.kind == KIND_ABSENT).all()
    assert np.isnan(res.number).all()
    assert (res.str_start == -1).all() and (res.str_end == -1).all()
    assert res.stream_hash.tolist() == [0, 0]
