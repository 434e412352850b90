"""Property tests: whenever the scanner accepts a message, it agrees exactly with json.loads."""

from __future__ import annotations

import decimal
import json
import math
import re
import struct
from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bayestream.schema.scan import (
    FIELDS,
    KIND_ABSENT,
    KIND_FALSE,
    KIND_NULL,
    KIND_NUMBER,
    KIND_STRING,
    KIND_TRUE,
    ScanResult,
    _scan_unresolved,
    scan,
)

SETTINGS = settings(
    max_examples=600,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# Junk around the message: a scanner reading past the end would see a closing brace.
_PAD = b"}\xff"


def scan_one(message: bytes) -> tuple[np.ndarray, ScanResult]:
    buf = np.frombuffer(_PAD + message + _PAD, dtype=np.uint8)
    starts = np.array([len(_PAD)], dtype=np.int64)
    ends = np.array([len(_PAD) + len(message)], dtype=np.int64)
    return buf, scan(buf, starts, ends)


def bits(x: float) -> bytes:
    return struct.pack("<d", x)


def parse_int(text: str) -> float:
    """json.loads gives the int 0 for ``-0``: +0.0 as a float; other integers as float(text)."""
    return 0.0 if text == "-0" else float(text)


def reference(message: bytes) -> dict[str, tuple[int, Any]]:
    """Fields as json.loads sees them; integer literals converted with :func:`parse_int`."""
    seen: list[str] = []

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        seen.extend(k for k, _ in items)
        return dict(items)

    text = message.decode("ascii")  # accepted messages are ASCII
    obj = json.loads(text, parse_int=parse_int, object_pairs_hook=pairs)
    assert isinstance(obj, dict)
    out: dict[str, tuple[int, Any]] = {}
    for name in FIELDS:
        assert seen.count(name) <= 1, "accepted a duplicate member among FIELDS"
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


def assert_agrees(message: bytes, buf: np.ndarray, res: ScanResult) -> None:
    expected = reference(message)  # raises if json.loads rejects an accepted message
    raw = buf.tobytes()
    for f, name in enumerate(FIELDS):
        ek, ev = expected[name]
        kind = int(res.kind[0, f])
        assert kind == ek, (message, name)
        if ek == KIND_NUMBER:
            got = float(res.number[0, f])
            assert bits(got) == bits(ev), (message, name, got, ev)
            assert math.copysign(1.0, got) == math.copysign(1.0, ev)
        else:
            assert math.isnan(res.number[0, f])
        if ek == KIND_STRING:
            s, e = int(res.str_start[0, f]), int(res.str_end[0, f])
            assert raw[s:e].decode("ascii") == ev, (message, name)
        else:
            assert res.str_start[0, f] == -1 and res.str_end[0, f] == -1


def check(message: bytes) -> bool:
    """Scan one message; if accepted, check agreement with json.loads. Return acceptance."""
    buf, res = scan_one(message)
    if res.fallback[0]:
        return False
    assert_agrees(message, buf, res)
    return True


# --- strategies -------------------------------------------------------------------------------

extreme_floats = st.sampled_from(
    [
        0.0,
        -0.0,
        0.1,
        1e22,
        1e23,
        1e-22,
        5e-324,
        2.2250738585072014e-308,
        1.7976931348623157e308,
        9007199254740992.0,
        9007199254740993.0,
        1700000000.123456,
        float("inf"),
        float("-inf"),
        float("nan"),
    ]
)
floats = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    extreme_floats,
    st.builds(
        round,
        st.floats(min_value=-1e9, max_value=1e9, allow_nan=False),
        st.integers(min_value=0, max_value=6),
    ),
)
ints = st.one_of(
    st.integers(min_value=-(2**53), max_value=2**53),
    st.integers(min_value=-(10**25), max_value=10**25),
)
texts = st.one_of(
    st.text(max_size=12),
    st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=12),
)
scalars = st.one_of(floats, ints, texts, st.booleans(), st.none())
values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=3), st.dictionaries(texts, children, max_size=3)
    ),
    max_leaves=6,
)


@st.composite
def json_objects(draw: st.DrawFn) -> bytes:
    """json.dumps of a dict with some of FIELDS and extra members, in varied layouts."""
    members: list[tuple[str, Any]] = []
    for name in FIELDS:
        if draw(st.booleans()):
            members.append((name, draw(st.one_of(scalars, values))))
    members += draw(st.lists(st.tuples(texts, values), max_size=3))
    members = draw(st.permutations(members))
    if members and draw(st.integers(0, 9)) == 0:
        members.append(draw(st.sampled_from(members)))  # a duplicate member
    ensure_ascii = draw(st.booleans())
    layout = draw(st.integers(0, 3))
    if layout == 0:
        body = json.dumps(dict(members), ensure_ascii=ensure_ascii, separators=(",", ":"))
    elif layout == 1:
        body = json.dumps(dict(members), ensure_ascii=ensure_ascii)
    elif layout == 2:
        body = json.dumps(
            dict(members), ensure_ascii=ensure_ascii, indent=draw(st.sampled_from([0, 2, "\t"]))
        )
    else:
        # Keep duplicates: lay the members out by hand with random whitespace.
        ws = st.text(alphabet=" \t\r\n", max_size=3)
        parts = [
            draw(ws)
            + json.dumps(k, ensure_ascii=ensure_ascii)
            + draw(ws)
            + ":"
            + draw(ws)
            + json.dumps(v, ensure_ascii=ensure_ascii)
            + draw(ws)
            for k, v in members
        ]
        body = "{" + ",".join(parts) + draw(ws) + "}"
    pad = st.text(alphabet=" \t\r\n", max_size=3)
    return (draw(pad) + body + draw(pad)).encode("utf-8")


number_literals = st.from_regex(
    re.compile(r"-?(0|[1-9][0-9]{0,20})(\.[0-9]{1,20})?([eE][+-]?[0-9]{1,4})?"), fullmatch=True
)


# --- properties -------------------------------------------------------------------------------


@SETTINGS
@given(json_objects())
def test_generated_objects_agree_with_json_loads(message: bytes) -> None:
    check(message)


simple_objects = st.fixed_dictionaries(
    {},
    optional={
        "key": st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_.:/ ", max_size=20),
        "metric": st.sampled_from(["latency_ms", "error_rate", "cpu", "m"]),
        "ts": st.builds(round, st.floats(min_value=0, max_value=2e9), st.integers(0, 6)),
        "value": st.one_of(
            st.builds(round, st.floats(-1e9, 1e9), st.integers(0, 6)),
            st.integers(-(2**53), 2**53),
        ),
        "trials": st.integers(0, 10**6),
        "exposure": st.one_of(st.floats(0, 1e6).map(lambda x: round(x, 3)), st.none()),
        "extra": values,
    },
)
separator_styles = st.sampled_from([(",", ":"), (", ", ": "), (" ,", " : ")])
simple_messages = st.builds(
    lambda obj, sep: json.dumps(obj, separators=sep).encode(), simple_objects, separator_styles
)
json_bytes = st.lists(st.sampled_from(b'{}[]",:0123456789-.eE \tkeyvalufsn\x00\x80'), max_size=60)


@SETTINGS
@given(simple_objects, separator_styles)
def test_simple_objects_are_accepted(obj: dict[str, Any], separators: tuple[str, str]) -> None:
    """The common case (ASCII, no escapes, short decimals) must take the fast path."""
    extra = obj.get("extra")
    dumped = json.dumps(extra)
    # Ignored members need only be ASCII JSON scalars without escapes, NaN or Infinity.
    simple = (
        not isinstance(extra, list | dict)
        and "\\" not in dumped
        and "NaN" not in dumped
        and "Infinity" not in dumped
    )
    message = json.dumps(obj, separators=separators).encode()
    accepted = check(message)
    if simple:
        assert accepted, message


@SETTINGS
@given(number_literals, st.sampled_from((*FIELDS, "other")))
def test_number_literals(text: str, name: str) -> None:
    """Every JSON number is accepted; those of FIELDS convert exactly as float(text)."""
    message = f'{{"{name}": {text}}}'.encode()
    assert check(message), text
    if name != "other":
        _, res = scan_one(message)
        got = float(res.number[0, FIELDS.index(name)])
        assert bits(got) == bits(parse_int(text) if text == "-0" else float(text)), text


# --- exact conversion of doubles and decimals -------------------------------------------------

NUMBER_SETTINGS = settings(
    max_examples=2000,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)

finite_doubles = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),  # both signs, subnormals included
    # Uniform over bit patterns: every binary exponent equally likely.
    st.integers(0, 2**64 - 1)
    .map(lambda b: struct.unpack("<d", struct.pack("<Q", b))[0])
    .filter(math.isfinite),
    st.floats(min_value=-1e-300, max_value=1e-300, allow_nan=False),  # subnormal-heavy
    st.floats(min_value=1.6e9, max_value=1.8e9),  # timestamps with sub-second digits
)


@st.composite
def decimal_texts(draw: st.DrawFn) -> str:
    """A random JSON number: up to 25 digits, a decimal point anywhere, an optional exponent."""
    digits = draw(st.text(alphabet="0123456789", min_size=1, max_size=25))
    split = draw(st.integers(0, len(digits)))
    integer = digits[:split].lstrip("0") or "0"
    fraction = digits[split:]
    text = draw(st.sampled_from(["", "-"])) + integer
    if fraction:
        text += "." + fraction
    if draw(st.booleans()):
        exponent = draw(st.integers(-400, 400))
        text += draw(st.sampled_from(["e", "E"])) + draw(st.sampled_from(["", "+"])) * (
            exponent >= 0
        )
        text += str(exponent)
    return text


@st.composite
def near_ties(draw: st.DrawFn) -> str:
    """The midpoint between a double and its successor, written exactly or cut to 15-19
    significant digits (so just below, at or above a rounding boundary)."""
    d = draw(finite_doubles.filter(lambda x: x != 0 and abs(x) < 1.7976931348623157e308))
    with decimal.localcontext() as ctx:
        ctx.prec = 1200
        mid = (decimal.Decimal(d) + decimal.Decimal(math.nextafter(d, math.inf))) / 2
        if draw(st.booleans()):
            return f"{mid:e}"  # exact: every digit of the tie
        return format(mid, f".{draw(st.integers(14, 18))}e")


number_texts = st.one_of(
    finite_doubles.map(repr),
    finite_doubles.map(lambda d: format(d, ".17g")),
    finite_doubles.map(lambda d: format(d, ".16g")),
    decimal_texts(),
    near_ties(),
    st.integers(2**53, 10**19).map(str),  # integers where doubles are 2 or more apart
    st.integers(2**53, 10**19).map(lambda n: f"{n}.0"),
)


def json_number(text: str) -> str:
    """``repr``/``format`` spellings made JSON: ``1e+16`` is fine, ``inf`` cannot occur."""
    assert re.fullmatch(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?", text), text
    return text


@NUMBER_SETTINGS
@given(number_texts, st.sampled_from(FIELDS[2:]))
def test_numbers_convert_exactly(text: str, name: str) -> None:
    """The scanner's number is float(text) bit for bit, and the message is never fallback."""
    message = f'{{"key":"k","{name}":{json_number(text)}}}'.encode()
    buf, res = scan_one(message)
    assert not res.fallback[0], text
    f = FIELDS.index(name)
    assert res.kind[0, f] == KIND_NUMBER
    expected = 0.0 if text == "-0" else float(text)  # the integer -0 is json.loads's 0
    assert bits(float(res.number[0, f])) == bits(expected), text
    assert res.str_start[0, f] == -1 and res.str_end[0, f] == -1
    assert_agrees(message, buf, res)


@NUMBER_SETTINGS
@given(finite_doubles)
def test_shortest_reprs_are_not_deferred(d: float) -> None:
    """repr(d) has at most 17 significant digits: the kernel converts it itself."""
    message = f'{{"value":{d!r}}}'.encode()
    buf = np.frombuffer(message, dtype=np.uint8)
    res, n_deferred = _scan_unresolved(buf, np.array([0]), np.array([len(message)]))
    assert not res.fallback[0]
    assert n_deferred == 0, repr(d)
    assert res.kind[0, FIELDS.index("value")] == KIND_NUMBER
    assert bits(float(res.number[0, FIELDS.index("value")])) == bits(d)


@SETTINGS
@given(st.one_of(st.binary(max_size=80), json_bytes.map(bytes)))
def test_arbitrary_bytes_never_crash(message: bytes) -> None:
    check(message)


@SETTINGS
@given(st.one_of(json_objects(), simple_messages), st.data())
def test_mutated_messages(message: bytes, data: st.DataObject) -> None:
    """Insert, delete or replace a few bytes of a valid message: never a wrong acceptance."""
    mutated = bytearray(message)
    for _ in range(data.draw(st.integers(1, 3))):
        op = data.draw(st.integers(0, 2))
        pos = data.draw(st.integers(0, len(mutated)))
        byte = data.draw(
            st.one_of(
                st.sampled_from(b'{}[]",:0123456789-+.eE \t\r\n\\tfnu\x00\x7f\x80'),
                st.integers(0, 255),
            )
        )
        if op == 0:
            mutated.insert(pos, byte)
        elif op == 1 and pos < len(mutated):
            del mutated[pos]
        elif pos < len(mutated):
            mutated[pos] = byte
    check(bytes(mutated))


@SETTINGS
@given(st.lists(json_objects(), min_size=1, max_size=8))
def test_batches_match_single_scans(messages: list[bytes]) -> None:
    buf = b"".join(messages)
    ends = np.cumsum([len(m) for m in messages]).astype(np.int64)
    starts = ends - np.array([len(m) for m in messages], dtype=np.int64)
    arr = np.frombuffer(buf, dtype=np.uint8)
    batch = scan(arr, starts, ends)
    for i, m in enumerate(messages):
        _, single = scan_one(m)
        assert batch.fallback[i] == single.fallback[0]
        if not single.fallback[0]:
            assert batch.kind[i].tolist() == single.kind[0].tolist()
            assert bits_row(batch.number[i]) == bits_row(single.number[0])
            assert batch.stream_hash[i] == single.stream_hash[0]
            assert (batch.str_end[i] - batch.str_start[i]).tolist() == (
                single.str_end[0] - single.str_start[0]
            ).tolist()


def bits_row(row: np.ndarray) -> bytes:
    return row.astype(np.float64).tobytes()
