"""Byte-level fast path: scan JSON telemetry messages straight into columns.

One telemetry event is one JSON object per message, e.g.
``{"key":"svc-1","metric":"latency_ms","ts":1700000000.25,"value":12.5}``. Only the members
named in :data:`FIELDS` matter; all others are validated syntactically and then ignored.

The scanner is a numba kernel that handles the common, simple case and marks every other message
``fallback``. It never decides that a message is *invalid*: anything outside its accepted subset,
including any syntax error, is left to the strict per-message decoder, which judges it.

Accepted subset
---------------
A message is accepted (``fallback=False``) only if all of the following hold:

- it is optional JSON whitespace (space, ``\\t``, ``\\r``, ``\\n``), one JSON object, optional
  whitespace, and nothing else (an empty message, a top-level non-object or trailing bytes are
  fallback);
- every byte is ASCII (``< 0x80``);
- member names and string values contain no backslash and no control byte (``< 0x20``), so the
  decoded string is exactly the raw bytes between the quotes;
- every member value is a string, a number, ``true``, ``false`` or ``null`` (an object or array
  value anywhere is fallback);
- no member of :data:`FIELDS` occurs twice (``json.loads`` keeps the last one; we leave such
  messages to the strict decoder). Duplicate names outside :data:`FIELDS` are ignored, which is
  consistent since their values are ignored anyway;
- every number follows the JSON grammar ``-?(0|[1-9][0-9]*)(\\.[0-9]+)?([eE][+-]?[0-9]+)?``
  (so ``01``, ``+1``, ``.5``, ``1.``, ``NaN``, ``Infinity`` are fallback). Any such number is
  accepted; numbers of members in :data:`FIELDS` are converted as described below.

Acceptance is purely syntactic: an accepted message may still lack required fields or carry a
field of the wrong kind (``"value": "abc"``); the caller checks :attr:`ScanResult.kind`.

Exactness of numbers
--------------------
Every number of a member in :data:`FIELDS` becomes exactly ``float(text)`` (bit for bit,
including the sign of zero, ``inf`` on overflow and ``0.0`` on underflow), with one deliberate
exception: the integer literal ``-0`` (no fraction, no exponent) gives ``+0.0``, as
``json.loads`` (the int ``0``) and msgspec do, while ``-0.0`` and ``-0e0`` keep ``-0.0``.

A number ``[-]d1 ... dk [. f1 ... fm] [e x]`` equals ``w * 10**q``, with ``w`` the integer of
its digits (leading zeros dropped) and ``q = x - m``. ``w`` is accumulated in a uint64 while it
has at most 19 significant digits (``10**19 - 1 < 2**64``). The kernel converts in three tiers:

1. Clinger's fast path (``w <= 2**53`` and ``|q| <= 22``: one IEEE-754 multiplication or
   division) and
2. the Eisel-Lemire algorithm for any other ``w`` of at most 19 digits, both in
   :mod:`bayestream.schema.decimal`, which explains why each is exact;
3. Deferral: when the above cannot decide, when the number has more than 19 significant digits
   (so ``w`` was truncated), or when its explicit exponent is too long to track exactly
   (``>= 10**6``), the kernel sets the field's kind to :data:`KIND_NUMBER_DEFERRED` with the
   number's text span in ``str_start``/``str_end``; :func:`scan` then converts it with
   ``float(bytes)`` (:func:`resolve_deferred`), so callers of :func:`scan` never see that kind.
   The message itself stays on the fast path.

``w == 0`` gives a zero of the literal's sign for any exponent, as ``float`` does
(``float("0e999")`` is ``0.0``, ``float("-0e-5")`` is ``-0.0``), except the integer literal
``-0`` above. Integer literals give floats (``3`` gives ``3.0``). An overflowing literal such
as ``1e400`` becomes ``inf`` here, whereas the strict decoder (msgspec) rejects the whole
message ("Number out of range"); downstream, a non-finite field is rejected only where the rule
uses that field.

Strings are reported as absolute byte offsets into the buffer; since they contain no escapes
and only ASCII, ``buf[start:end].decode()`` is exactly the string ``json.loads`` returns.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from bayestream.models._jit import kernel
from bayestream.models._threads import SERIAL, Workers
from bayestream.schema.decimal import MAX_EXACT_INT, MAX_POW10, POW10, convert_off_fast_path

__all__ = [
    "FIELDS",
    "KIND_ABSENT",
    "KIND_FALSE",
    "KIND_NULL",
    "KIND_NUMBER",
    "KIND_NUMBER_DEFERRED",
    "KIND_STRING",
    "KIND_TRUE",
    "ScanResult",
    "resolve_deferred",
    "scan",
]

FIELDS: tuple[str, ...] = ("key", "metric", "ts", "value", "trials", "exposure")
"""The members the scanner extracts, in column order."""

KIND_ABSENT = 0
KIND_NUMBER = 1
KIND_STRING = 2
KIND_TRUE = 3
KIND_FALSE = 4
KIND_NULL = 5
KIND_NUMBER_DEFERRED = 6
"""Kernel-internal: a number the kernel left to ``float(bytes)``; its text span is in
``str_start``/``str_end``. :func:`scan` resolves every such field before returning."""

_N_FIELDS = len(FIELDS)
_FIELD_KEY = FIELDS.index("key")
_FIELD_METRIC = FIELDS.index("metric")


def _name_word(name: str) -> int:
    """The bytes of a field name packed big-endian into one integer (names have <= 8 bytes)."""
    word = 0
    for byte in name.encode("ascii"):
        word = (word << 8) | byte
    return word


# A member name of at most 8 bytes is matched by packing its bytes into an int64 while scanning
# it; names contain no NUL (control bytes are fallback), so the packed word determines the name.
_MAX_NAME_LEN = 8
if any(len(f) > _MAX_NAME_LEN for f in FIELDS):  # pragma: no cover - guards future edits
    raise ImportError("field names longer than 8 bytes need another matching scheme")
_W_KEY, _W_METRIC, _W_TS, _W_VALUE, _W_TRIALS, _W_EXPOSURE = (_name_word(f) for f in FIELDS)

# Byte classes, as lookup tables (global arrays are frozen into the kernels as constants).
_WS_TABLE = np.zeros(256, dtype=np.uint8)
_WS_TABLE[[0x20, 0x09, 0x0A, 0x0D]] = 1
_STR_STOP = np.zeros(256, dtype=np.uint8)  # bytes that end the fast scan of a string
_STR_STOP[:0x20] = 1
_STR_STOP[[0x22, 0x5C]] = 1
_STR_STOP[0x80:] = 1

# The significand is accumulated in a uint64; 19 digits cannot overflow it (10**19 < 2**64).
# A number with more significant digits is deferred to float(bytes).
_MAX_SIG_DIGITS = 19
_EXP_CAP = 1_000_000  # explicit exponents this long are deferred (still validated)
# uint64 constants, so that the kernel's integer arithmetic stays in uint64.
_U0 = np.uint64(0)
_U10 = np.uint64(10)


_FNV_OFFSET = np.uint64(0xCBF29CE484222325)
_FNV_PRIME = np.uint64(0x100000001B3)

# Byte values.
_QUOTE, _COMMA, _COLON = 0x22, 0x2C, 0x3A
_LBRACE, _RBRACE = 0x7B, 0x7D
_MINUS, _PLUS, _DOT, _ZERO, _ONE, _NINE = 0x2D, 0x2B, 0x2E, 0x30, 0x31, 0x39
_LOWER_E, _UPPER_E = 0x65, 0x45
_T, _R, _U, _E, _F, _A, _L, _S, _N = 0x74, 0x72, 0x75, 0x65, 0x66, 0x61, 0x6C, 0x73, 0x6E


@dataclass(frozen=True)
class ScanResult:
    """Columns produced by :func:`scan` for ``n`` messages.

    Attributes
    ----------
    fallback : numpy.ndarray
        ``bool[n]``; True where the message is outside the accepted subset and must go to the
        strict decoder. Such rows read as all-absent (``KIND_ABSENT``, NaN, -1, hash 0),
        whatever part of the message was scanned before the scanner gave up.
    kind : numpy.ndarray
        ``uint8[n, 6]``; one of the ``KIND_*`` codes per message and field of :data:`FIELDS`.
    number : numpy.ndarray
        ``float64[n, 6]``; the value where ``kind == KIND_NUMBER``, NaN elsewhere.
    str_start, str_end : numpy.ndarray
        ``int64[n, 6]``; absolute byte offsets into ``buf`` of the string content (between the
        quotes) where ``kind == KIND_STRING``, -1 elsewhere. (Straight from the kernel, before
        :func:`resolve_deferred`, they also hold the number's text span where
        ``kind == KIND_NUMBER_DEFERRED``; :func:`scan` never returns that kind.)
    stream_hash : numpy.ndarray
        ``uint64[n]``; FNV-1a 64 over the key bytes, one 0x00 byte, then the metric bytes when
        both key and metric are strings, else 0.
    """

    fallback: npt.NDArray[np.bool_]
    kind: npt.NDArray[np.uint8]
    number: npt.NDArray[np.float64]
    str_start: npt.NDArray[np.int64]
    str_end: npt.NDArray[np.int64]
    stream_hash: npt.NDArray[np.uint64]

    def __len__(self) -> int:
        return int(self.fallback.shape[0])


@kernel
def _scan_kernel(
    buf: npt.NDArray[np.uint8],
    starts: npt.NDArray[np.int64],
    ends: npt.NDArray[np.int64],
    fallback: npt.NDArray[np.bool_],
    kind: npt.NDArray[np.uint8],
    number: npt.NDArray[np.float64],
    str_start: npt.NDArray[np.int64],
    str_end: npt.NDArray[np.int64],
    stream_hash: npt.NDArray[np.uint64],
) -> int:
    # One flat function on purpose: numba does not inline calls to other kernels, and every
    # call taking an array costs reference-count traffic, which dominated a helper-based
    # version (the Eisel-Lemire helper takes only scalars, and runs only off Clinger's path).
    # ``break`` out of the member loop means fallback (``ok`` stays False). Returns the number
    # of KIND_NUMBER_DEFERRED fields left in accepted rows.
    n = starts.shape[0]
    n_deferred = 0
    for i in range(n):
        for f in range(_N_FIELDS):
            kind[i, f] = KIND_ABSENT
            number[i, f] = np.nan
            str_start[i, f] = -1
            str_end[i, f] = -1
        stream_hash[i] = np.uint64(0)
        n_deferred_row = 0
        p = starts[i]
        end = ends[i]
        ok = False
        while p < end and _WS_TABLE[buf[p]]:
            p += 1
        if p < end and buf[p] == _LBRACE:
            p += 1
            while p < end and _WS_TABLE[buf[p]]:
                p += 1
            if p < end and buf[p] == _RBRACE:
                p += 1
                while p < end and _WS_TABLE[buf[p]]:
                    p += 1
                ok = p == end
            else:
                while True:
                    # Member name, packed into ``word`` on the way.
                    if p >= end or buf[p] != _QUOTE:
                        break
                    p += 1
                    name_start = p
                    word = 0
                    while p < end:
                        c = buf[p]
                        if _STR_STOP[c]:
                            break
                        word = (word << 8) | c
                        p += 1
                    if p >= end or buf[p] != _QUOTE:
                        break
                    name_len = p - name_start
                    p += 1
                    while p < end and _WS_TABLE[buf[p]]:
                        p += 1
                    if p >= end or buf[p] != _COLON:
                        break
                    p += 1
                    while p < end and _WS_TABLE[buf[p]]:
                        p += 1
                    if p >= end:
                        break
                    f = -1
                    if name_len <= _MAX_NAME_LEN:
                        if word == _W_KEY:
                            f = 0
                        elif word == _W_METRIC:
                            f = 1
                        elif word == _W_TS:
                            f = 2
                        elif word == _W_VALUE:
                            f = 3
                        elif word == _W_TRIALS:
                            f = 4
                        elif word == _W_EXPOSURE:
                            f = 5
                    if f >= 0 and kind[i, f] != KIND_ABSENT:
                        break  # duplicate member among FIELDS
                    # Member value.
                    c = buf[p]
                    if c == _QUOTE:
                        p += 1
                        value_start = p
                        while p < end and not _STR_STOP[buf[p]]:
                            p += 1
                        if p >= end or buf[p] != _QUOTE:
                            break
                        if f >= 0:
                            kind[i, f] = KIND_STRING
                            str_start[i, f] = value_start
                            str_end[i, f] = p
                        p += 1
                    elif c == _MINUS or (c >= _ZERO and c <= _NINE):
                        number_start = p
                        neg = c == _MINUS
                        if neg:
                            p += 1
                            if p >= end:
                                break
                            c = buf[p]
                        w = _U0  # significand of the first _MAX_SIG_DIGITS significant digits
                        nsig = 0  # significant digits seen (leading zeros are not)
                        q = 0  # decimal exponent: value = w * 10**q while nsig <= 19
                        integer_literal = True  # no fraction and no exponent
                        exp_long = False  # explicit exponent reached _EXP_CAP
                        if c == _ZERO:
                            p += 1
                        elif c >= _ONE and c <= _NINE:
                            while p < end:
                                d = int(buf[p]) - _ZERO
                                if d < 0 or d > 9:
                                    break
                                nsig += 1
                                if nsig <= _MAX_SIG_DIGITS:
                                    w = w * _U10 + np.uint64(d)
                                p += 1
                        else:
                            break
                        if p < end and buf[p] == _DOT:
                            integer_literal = False
                            p += 1
                            digits_start = p
                            while p < end:
                                d = int(buf[p]) - _ZERO
                                if d < 0 or d > 9:
                                    break
                                if nsig > 0 or d != 0:
                                    nsig += 1
                                    if nsig <= _MAX_SIG_DIGITS:
                                        w = w * _U10 + np.uint64(d)
                                        q -= 1
                                else:
                                    q -= 1
                                p += 1
                            if p == digits_start:
                                break
                        if p < end and (buf[p] == _LOWER_E or buf[p] == _UPPER_E):
                            integer_literal = False
                            p += 1
                            exp_neg = False
                            if p < end and (buf[p] == _PLUS or buf[p] == _MINUS):
                                exp_neg = buf[p] == _MINUS
                                p += 1
                            digits_start = p
                            x = 0
                            while p < end:
                                d = int(buf[p]) - _ZERO
                                if d < 0 or d > 9:
                                    break
                                if x < _EXP_CAP:
                                    x = x * 10 + d
                                p += 1
                            if p == digits_start:
                                break
                            exp_long = x >= _EXP_CAP
                            q = q - x if exp_neg else q + x
                        # Past _MAX_SIG_DIGITS, digits were dropped without adjusting q, and a
                        # long exponent was clamped: such numbers are deferred to float(bytes).
                        if f >= 0:
                            if nsig == 0:
                                # float("-0") is -0.0, but json.loads("-0") is the int 0.
                                v = -0.0 if neg and not integer_literal else 0.0
                            elif nsig > _MAX_SIG_DIGITS or exp_long:
                                v = np.nan
                            elif w <= MAX_EXACT_INT and q <= MAX_POW10 and q >= -MAX_POW10:
                                v = float(w)  # Clinger's fast path
                                if q >= 0:
                                    v = v * POW10[q]
                                else:
                                    v = v / POW10[-q]
                            else:
                                v = convert_off_fast_path(w, q)  # NaN when undecided
                            if v != v:
                                kind[i, f] = KIND_NUMBER_DEFERRED
                                str_start[i, f] = number_start
                                str_end[i, f] = p
                                n_deferred_row += 1
                            else:
                                kind[i, f] = KIND_NUMBER
                                number[i, f] = -v if neg and nsig > 0 else v
                    elif c == _T:
                        if p + 4 > end or buf[p + 1] != _R or buf[p + 2] != _U or buf[p + 3] != _E:
                            break
                        if f >= 0:
                            kind[i, f] = KIND_TRUE
                        p += 4
                    elif c == _F:
                        if (
                            p + 5 > end
                            or buf[p + 1] != _A
                            or buf[p + 2] != _L
                            or buf[p + 3] != _S
                            or buf[p + 4] != _E
                        ):
                            break
                        if f >= 0:
                            kind[i, f] = KIND_FALSE
                        p += 5
                    elif c == _N:
                        if p + 4 > end or buf[p + 1] != _U or buf[p + 2] != _L or buf[p + 3] != _L:
                            break
                        if f >= 0:
                            kind[i, f] = KIND_NULL
                        p += 4
                    else:
                        break  # object, array or anything else
                    # Separator.
                    while p < end and _WS_TABLE[buf[p]]:
                        p += 1
                    if p >= end:
                        break
                    c = buf[p]
                    if c == _COMMA:
                        p += 1
                        while p < end and _WS_TABLE[buf[p]]:
                            p += 1
                        continue
                    if c == _RBRACE:
                        p += 1
                        while p < end and _WS_TABLE[buf[p]]:
                            p += 1
                        ok = p == end
                    break
        fallback[i] = not ok
        if not ok:
            # Leave no partial results behind: a fallback row reads as all-absent.
            for f in range(_N_FIELDS):
                kind[i, f] = KIND_ABSENT
                number[i, f] = np.nan
                str_start[i, f] = -1
                str_end[i, f] = -1
            continue
        n_deferred += n_deferred_row
        if kind[i, _FIELD_KEY] == KIND_STRING and kind[i, _FIELD_METRIC] == KIND_STRING:
            h = _FNV_OFFSET
            for j in range(str_start[i, _FIELD_KEY], str_end[i, _FIELD_KEY]):
                h = (h ^ np.uint64(buf[j])) * _FNV_PRIME
            h = h * _FNV_PRIME  # the 0x00 separator byte: h ^ 0 == h
            for j in range(str_start[i, _FIELD_METRIC], str_end[i, _FIELD_METRIC]):
                h = (h ^ np.uint64(buf[j])) * _FNV_PRIME
            stream_hash[i] = h
    return n_deferred


def scan(
    buf: npt.NDArray[np.uint8],
    starts: npt.NDArray[np.int64],
    ends: npt.NDArray[np.int64],
    workers: Workers = SERIAL,
) -> ScanResult:
    """Scan messages ``buf[starts[i]:ends[i]]`` into columns.

    Parameters
    ----------
    buf : numpy.ndarray
        1-D uint8 array holding the raw message bytes.
    starts, ends : numpy.ndarray
        1-D int64 arrays of equal length; message ``i`` is ``buf[starts[i]:ends[i]]``.
    workers : Workers, optional
        Threads to scan row ranges on (default: the calling thread only).

    Returns
    -------
    ScanResult
        The columns; rows with ``fallback`` set must be decoded by the strict decoder.

    Raises
    ------
    ValueError
        If the arrays have the wrong shape or dtype, or an offset is out of bounds.
    """
    result, n_deferred = _scan_unresolved(buf, starts, ends, workers)
    if n_deferred:
        resolve_deferred(buf, result)
    return result


def _scan_unresolved(
    buf: npt.NDArray[np.uint8],
    starts: npt.NDArray[np.int64],
    ends: npt.NDArray[np.int64],
    workers: Workers = SERIAL,
) -> tuple[ScanResult, int]:
    """:func:`scan` without :func:`resolve_deferred`: also returns the deferred field count."""
    if buf.dtype != np.uint8 or buf.ndim != 1:
        raise ValueError("buf must be a 1-D uint8 array")
    starts = np.ascontiguousarray(starts, dtype=np.int64)
    ends = np.ascontiguousarray(ends, dtype=np.int64)
    if starts.ndim != 1 or starts.shape != ends.shape:
        raise ValueError("starts and ends must be 1-D arrays of equal length")
    n = starts.shape[0]
    if n and (
        int(starts.min()) < 0 or bool(np.any(ends < starts)) or int(ends.max()) > buf.shape[0]
    ):
        raise ValueError("message offsets out of bounds")
    buf = np.ascontiguousarray(buf)
    fallback = np.empty(n, dtype=np.bool_)
    kind = np.empty((n, _N_FIELDS), dtype=np.uint8)
    number = np.empty((n, _N_FIELDS), dtype=np.float64)
    str_start = np.empty((n, _N_FIELDS), dtype=np.int64)
    str_end = np.empty((n, _N_FIELDS), dtype=np.int64)
    stream_hash = np.empty(n, dtype=np.uint64)

    def chunk(a: int, b: int) -> int:
        return int(
            _scan_kernel(
                buf,
                starts[a:b],
                ends[a:b],
                fallback[a:b],
                kind[a:b],
                number[a:b],
                str_start[a:b],
                str_end[a:b],
                stream_hash[a:b],
            )
        )

    n_deferred = sum(workers.run([functools.partial(chunk, a, b) for a, b in workers.ranges(n)]))
    return ScanResult(fallback, kind, number, str_start, str_end, stream_hash), n_deferred


def resolve_deferred(buf_bytes: bytes | npt.NDArray[np.uint8], result: ScanResult) -> None:
    """Convert every ``KIND_NUMBER_DEFERRED`` field of ``result`` in place to ``KIND_NUMBER``.

    The value is ``float(buf_bytes[start:end])`` over the field's text span, i.e. exactly what
    Python gives for that JSON number; the span is then reset to -1 like any other non-string.

    Parameters
    ----------
    buf_bytes : bytes or numpy.ndarray
        The buffer the offsets in ``result`` refer to (bytes, or the 1-D uint8 array scanned).
    result : ScanResult
        Columns as produced by the scanner kernel; modified in place.
    """
    rows, cols = np.nonzero(result.kind == KIND_NUMBER_DEFERRED)
    if rows.shape[0] == 0:
        return
    spans = zip(
        result.str_start[rows, cols].tolist(), result.str_end[rows, cols].tolist(), strict=True
    )
    if isinstance(buf_bytes, np.ndarray):
        values = [float(buf_bytes[s:e].tobytes()) for s, e in spans]
    else:
        values = [float(buf_bytes[s:e]) for s, e in spans]
    result.number[rows, cols] = values
    result.kind[rows, cols] = KIND_NUMBER
    result.str_start[rows, cols] = -1
    result.str_end[rows, cols] = -1
