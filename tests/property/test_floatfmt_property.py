"""Property tests: the numba writers produce exactly ``repr(x)`` and exactly ``json.dumps(s)``."""

from __future__ import annotations

import json
import math
import struct

import numpy as np
import numpy.typing as npt
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bayestream.models._jit import kernel
from bayestream.schema.floatfmt import (
    format_floats,
    json_string_max_bytes,
    write_ascii_json_string,
    write_float,
)

SETTINGS = settings(
    max_examples=3000,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)


@kernel
def _write_one_at(out: npt.NDArray[np.uint8], pos: int, x: float) -> int:
    return write_float(out, pos, x)


@kernel
def _write_json(out: npt.NDArray[np.uint8], pos: int, src: npt.NDArray[np.uint8]) -> int:
    return write_ascii_json_string(out, pos, src, 0, src.shape[0])


def expected(x: float) -> bytes:
    return repr(x).encode() if math.isfinite(x) else b"null"


def write_one(x: float, pos: int = 0) -> bytes:
    out = np.full(pos + 32, 0xAA, dtype=np.uint8)
    end = _write_one_at(out, pos, x)
    assert (out[:pos] == 0xAA).all()
    assert (out[end:] == 0xAA).all()
    return out[pos:end].tobytes()


@SETTINGS
@given(st.floats(allow_nan=False, allow_infinity=False), st.integers(0, 8))
def test_write_float_is_repr(x: float, pos: int) -> None:
    assert write_one(x, pos) == repr(x).encode()


@SETTINGS
@given(st.integers(0, 2**64 - 1))
def test_write_float_random_bit_patterns(bits: int) -> None:
    (x,) = struct.unpack("<d", struct.pack("<Q", bits))
    assert write_one(x) == expected(x)


@SETTINGS
@given(st.lists(st.floats(), max_size=20))
def test_format_floats_is_comma_joined_repr(xs: list[float]) -> None:
    got = format_floats(np.array(xs, dtype=np.float64))
    assert got == b",".join(expected(x) for x in xs)


_SPECIALS = st.sampled_from(['"', "\\", "\n", "\r", "\t", "\b", "\f", "\x00", "\x1f", "\x7f", "/"])
_ASCII_TEXT = st.text(st.one_of(_SPECIALS, st.characters(max_codepoint=0x7F)), max_size=60)


def write_json(s: str, pos: int = 0) -> int | bytes:
    src = np.frombuffer(s.encode("utf-8"), dtype=np.uint8)
    room = json_string_max_bytes(src.shape[0])
    out = np.full(pos + room + 4, 0xAA, dtype=np.uint8)
    end = _write_json(out, pos, src)
    if end < 0:
        return end
    assert end <= pos + room
    assert (out[:pos] == 0xAA).all()
    assert (out[end:] == 0xAA).all()
    return out[pos:end].tobytes()


@SETTINGS
@given(_ASCII_TEXT, st.integers(0, 5))
def test_json_string_is_json_dumps(s: str, pos: int) -> None:
    assert write_json(s, pos) == json.dumps(s).encode()


@SETTINGS
@given(_ASCII_TEXT, st.characters(min_codepoint=0x80, exclude_categories=["Cs"]), _ASCII_TEXT)
def test_json_string_rejects_non_ascii(head: str, ch: str, tail: str) -> None:
    assert write_json(head + ch + tail) == -1
