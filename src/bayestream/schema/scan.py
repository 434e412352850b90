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

1. Clinger's fast path, when ``w <= 2**53`` and ``|q| <= 22``: ``float(w)`` is exact (at most 53
   significant bits) and ``10.0**|q|`` is exact (``5**22 < 2**53``), so a single IEEE-754
   multiplication (``q >= 0``) or division (``q < 0``), correctly rounded to nearest-even, yields
   the correctly rounded value. Kernels are compiled without fastmath, so LLVM neither contracts
   nor turns the division into a reciprocal multiplication.
2. The Eisel-Lemire algorithm (Lemire, "Number Parsing at a Gigabyte per Second", 2021; as in
   Go's ``strconv.eiselLemire64``), for any other ``w`` of at most 19 digits. A table, generated
   at import with exact integer arithmetic, holds for each ``q`` in ``[-342, 308]`` the 128-bit
   truncation ``T`` (rounded down) of ``10**q`` scaled into ``[2**127, 2**128)`` (the mantissa
   of ``5**q``). ``w`` is shifted left until its top bit is set and multiplied by the high 64
   bits of ``T`` (a 64x64->128-bit product built from 32-bit halves; numba has no uint128).

   *Exact top bits.* ``T`` is rounded down, so the computed product is below the exact one by
   less than ``w`` units of its low word. If adding ``w`` to the low word cannot carry into bit
   9 of the high word, the high word's bits from bit 9 up (54 or 55 bits) are exactly those of
   the exact product. Otherwise the low 64 bits of ``T`` are multiplied in too (a 192-bit
   product, error again below ``w`` units of its lowest word) and the carry test is repeated;
   if it still fails, the algorithm gives up. The binary exponent is ``floor(q * log2(10))``,
   computed as ``(217706 * q) >> 16`` (checked at import over the table's range).

   *Rounding.* With 54 exact bits, rounding to 53 is decided by the last one, except when every
   computed bit below it is zero and rounding up would give an odd mantissa: the exact value
   may then be a tie (round to even: down) or lie just above one (up). If the table entry's low
   word is zero (``10**q`` fits in 64 bits, ``0 <= q <= 27``), the product is exact, so it is a
   tie exactly when all dropped bits are zero (``1e23``, ``9007199254740993``); otherwise the
   algorithm gives up. A result that rounds beyond the largest double is ``inf``. A result
   below the smallest normal is rounded to a multiple of ``2**-1074`` from the same exact bits,
   by its first dropped bit: a tie is impossible there, since a tie is a dyadic rational and
   ``w * 10**q`` with ``q < 0`` is one only if ``5**-q`` divides ``w < 10**19``, i.e.
   ``q >= -27``, far from the subnormal range. For ``q < -342`` the value is below
   ``10**19 * 10**-343 < 2**-1075`` and rounds to ``0.0``; for ``q > 308`` it is at least
   ``10**309`` and rounds to ``inf``.

   *When it gives up.* In practice the carry test fails only when ``q < 0`` and the exact value
   is a double or a tie between two (``9007199254740992.0``, ``2507292304129789.5``): the
   truncated product then lands just below it. For ``-27 <= q < 0`` the kernel then checks
   whether ``5**-q`` divides ``w``; if so the value is ``(w / 5**-q) * 2**q``, and converting
   that integer to a double is one correctly rounded IEEE operation while scaling by
   ``2**q >= 2**-27`` is exact.
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
import itertools
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from bayestream.models._jit import kernel
from bayestream.models._threads import SERIAL, Workers

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
    "split_lines",
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

# Exact powers of ten 10**0 .. 10**22 (5**22 < 2**53, so each is a float64 exactly).
_POW10 = np.array([10.0**i for i in range(23)], dtype=np.float64)
_MAX_POW10 = 22
_MAX_EXACT_INT = np.uint64(2**53)
# The significand is accumulated in a uint64; 19 digits cannot overflow it (10**19 < 2**64).
# A number with more significant digits is deferred to float(bytes).
_MAX_SIG_DIGITS = 19
_EXP_CAP = 1_000_000  # explicit exponents this long are deferred (still validated)

# uint64 constants, so that the kernels' integer arithmetic stays in uint64 (numba would turn a
# mix of uint64 and int64 operands into float64).
_U0 = np.uint64(0)
_U1 = np.uint64(1)
_U3 = np.uint64(3)
_U9 = np.uint64(9)
_U10 = np.uint64(10)
_U32 = np.uint64(32)
_U53 = np.uint64(53)
_U63 = np.uint64(63)
_MASK32 = np.uint64(0xFFFFFFFF)
_MASK9 = np.uint64(0x1FF)
_ALL_ONES = np.uint64(0xFFFFFFFFFFFFFFFF)


def _pow10_mantissa(q: int) -> int:
    """``10**q`` scaled by a power of two into ``[2**127, 2**128)``, rounded down (exactly)."""
    if q >= 0:
        p: int = 5**q  # 10**q = 5**q * 2**q: same mantissa
        shift = p.bit_length() - 128
        return p >> shift if shift > 0 else p << -shift
    d: int = 5**-q
    # 2**(127 + b) / d lies in (2**127, 2**128) since 2**(b-1) < d < 2**b; never an integer.
    return (1 << (127 + d.bit_length())) // d


# Eisel-Lemire table: 128-bit truncated mantissas of 10**q for q in [_EL_MIN_Q, _EL_MAX_Q],
# split into high and low 64-bit words. Outside the range the result is 0.0 or inf (see the
# module docstring).
_EL_MIN_Q = -342
_EL_MAX_Q = 308
_POW10_MANTISSAS = [_pow10_mantissa(q) for q in range(_EL_MIN_Q, _EL_MAX_Q + 1)]
_POW10_HI = np.array([m >> 64 for m in _POW10_MANTISSAS], dtype=np.uint64)
_POW10_LO = np.array([m & (2**64 - 1) for m in _POW10_MANTISSAS], dtype=np.uint64)
# 2**(e - 1075) for biased exponents e in [0, 2046]: scales a 53-bit integer mantissa to the
# double with that exponent (every entry from 2**-1074 up is a double, so index 0 is unused).
_POW2 = np.array([0.0] + [2.0 ** (e - 1075) for e in range(1, 2047)], dtype=np.float64)
# 5**k for k in [0, 27]: the powers of five that fit in a uint64.
_MAX_POW5_U64 = 27
_POW5_U64 = np.array([5**k for k in range(_MAX_POW5_U64 + 1)], dtype=np.uint64)
# floor(log2(10**q)) == (_LOG2_10_Q16 * q) >> 16 over the table's range; checked here.
_LOG2_10_Q16 = 217706


def _floor_log2_pow10(q: int) -> int:
    power: int = 10 ** abs(q)
    return power.bit_length() - 1 if q >= 0 else -power.bit_length()


if any(  # pragma: no cover - guards future edits of the range
    (_LOG2_10_Q16 * q) >> 16 != _floor_log2_pow10(q) for q in range(_EL_MIN_Q, _EL_MAX_Q + 1)
):
    raise ImportError("the binary exponent approximation fails over the table's range")
del _POW10_MANTISSAS

_FNV_OFFSET = np.uint64(0xCBF29CE484222325)
_FNV_PRIME = np.uint64(0x100000001B3)

# Byte values.
_SPACE, _TAB, _LF, _CR = 0x20, 0x09, 0x0A, 0x0D
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
def _mul_64x64(a: np.uint64, b: np.uint64) -> tuple[np.uint64, np.uint64]:
    """The 128-bit product ``a * b`` as (high, low) 64-bit words, from 32-bit halves."""
    a_lo = a & _MASK32
    a_hi = a >> _U32
    b_lo = b & _MASK32
    b_hi = b >> _U32
    p0 = a_lo * b_lo
    p1 = a_lo * b_hi
    p2 = a_hi * b_lo
    p3 = a_hi * b_hi
    mid = (p0 >> _U32) + (p1 & _MASK32) + (p2 & _MASK32)  # < 3 * 2**32: no overflow
    hi = p3 + (p1 >> _U32) + (p2 >> _U32) + (mid >> _U32)
    lo = (mid << _U32) | (p0 & _MASK32)
    return hi, lo


@kernel
def _eisel_lemire(w: np.uint64, q: int) -> float:
    """``w * 10**q`` correctly rounded, for ``1 <= w < 2**64``, or NaN if undecided.

    Scalar arguments only, so calling it from the scanner costs no reference counting.
    """
    if q < _EL_MIN_Q:
        return 0.0
    if q > _EL_MAX_Q:
        return np.inf
    # Normalise: shift w left until its top bit is set (a branchy count of leading zeros).
    x = w
    clz = 0
    if (x >> _U32) == _U0:
        x = x << _U32
        clz += 32
    if (x >> np.uint64(48)) == _U0:
        x = x << np.uint64(16)
        clz += 16
    if (x >> np.uint64(56)) == _U0:
        x = x << np.uint64(8)
        clz += 8
    if (x >> np.uint64(60)) == _U0:
        x = x << np.uint64(4)
        clz += 4
    if (x >> np.uint64(62)) == _U0:
        x = x << np.uint64(2)
        clz += 2
    if (x >> _U63) == _U0:
        x = x << _U1
        clz += 1
    e2 = ((_LOG2_10_Q16 * q) >> 16) + (64 + 1023) - clz  # biased exponent, up to the msb fix
    k = q - _EL_MIN_Q
    hi, lo = _mul_64x64(x, _POW10_HI[k])
    if (hi & _MASK9) == _MASK9 and lo + x < x:
        # The truncation error (< x units of ``lo``) may carry into the bits we keep: use the
        # low word of the table entry too.
        y_hi, y_lo = _mul_64x64(x, _POW10_LO[k])
        merged_lo = lo + y_hi
        merged_hi = hi
        if merged_lo < lo:
            merged_hi += _U1
        if (merged_hi & _MASK9) == _MASK9 and merged_lo == _ALL_ONES and y_lo + x < x:
            return np.nan
        hi = merged_hi
        lo = merged_lo
    msb = hi >> _U63
    m = hi >> (msb + _U9)  # 54 significant bits: 53 plus the rounding bit
    if msb == _U0:
        e2 -= 1
    if lo == _U0 and (hi & _MASK9) == _U0 and (m & _U3) == _U1:
        # Every computed bit below the rounding bit is zero and rounding up would give an odd
        # mantissa: the exact value may be a tie (round to even: down) or just above one (up).
        if _POW10_LO[k] != _U0:
            return np.nan  # the product is inexact: undecided
        # 10**q fits in 64 bits (0 <= q <= 27), so the product is exact: a tie exactly when all
        # dropped bits (bit 9 too when msb is set) are zero.
        if (m << (msb + _U9)) == hi:
            m -= _U1
    if e2 <= 0:
        # Subnormal: value = m * 2**(e2 - 1076) = (m >> (1 - e2)) / 2 units of 2**-1074, and
        # ties are impossible here (see the module docstring): round half up on that bit.
        if 1 - e2 >= 54:
            return 0.0
        t = m >> np.uint64(1 - e2)
        tiny: float = _POW2[1]  # 2**-1074
        return float((t + (t & _U1)) >> _U1) * tiny  # exact: a multiple of 2**-1074
    m = (m + (m & _U1)) >> _U1
    if (m >> _U53) != _U0:
        m = m >> _U1
        e2 += 1
    if e2 >= 0x7FF:
        return np.inf
    scale: float = _POW2[e2]
    return float(m) * scale  # exact: m < 2**53 and the result is a normal double


@kernel
def _convert_off_fast_path(w: np.uint64, q: int) -> float:
    """``w * 10**q`` (``w >= 1``) by Eisel-Lemire, or NaN if undecided.

    Eisel-Lemire cannot decide when ``q < 0`` and the exact value is a double or a tie between
    two, e.g. ``9007199254740992.0`` or ``2507292304129789.5``: the truncated product then lands
    just below it. For ``-27 <= q < 0`` the value is a dyadic rational exactly when ``5**-q``
    divides ``w``, and then equals ``(w / 5**-q) * 2**q``: converting that integer to a double is
    one correctly rounded IEEE operation and the scaling by ``2**q >= 2**-27`` is exact.
    """
    v = _eisel_lemire(w, q)
    if v == v or q >= 0 or q < -_MAX_POW5_U64:
        return v
    p5 = _POW5_U64[-q]
    if w % p5 != _U0:
        return v
    scale: float = _POW2[q + 1075]  # 2**q
    return float(w // p5) * scale  # one rounding, then an exact scaling


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
                            elif w <= _MAX_EXACT_INT and q <= _MAX_POW10 and q >= -_MAX_POW10:
                                v = float(w)  # Clinger's fast path
                                if q >= 0:
                                    v = v * _POW10[q]
                                else:
                                    v = v / _POW10[-q]
                            else:
                                v = _convert_off_fast_path(w, q)  # NaN when undecided
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


SPLIT_PIECE_BYTES = 1 << 20


@kernel
def _next_newline(buf: npt.NDArray[np.uint8], start: int) -> int:
    for j in range(start, buf.shape[0]):
        if buf[j] == _LF:
            return j
    return -1


_NEWLINE_CHUNK = 1 << 22  # bytes compared at once when finding newlines (bounds the temporary)


def _newlines(buf: npt.NDArray[np.uint8]) -> npt.NDArray[np.int64]:
    """Positions of the newlines of ``buf``: numpy's vectorised compare and nonzero, chunk by
    chunk (2.4x faster than a byte loop in a kernel, measured on 75 MB of events)."""
    n = buf.shape[0]
    if n <= _NEWLINE_CHUNK:
        return np.flatnonzero(buf == _LF)
    return np.concatenate(
        [
            np.flatnonzero(buf[a : a + _NEWLINE_CHUNK] == _LF) + a
            for a in range(0, n, _NEWLINE_CHUNK)
        ]
    )


@kernel
def _lines_between(
    buf: npt.NDArray[np.uint8],
    newlines: npt.NDArray[np.int64],
    starts: npt.NDArray[np.int64],
    ends: npt.NDArray[np.int64],
    lines: npt.NDArray[np.int64],
) -> int:
    """The non-blank lines around ``newlines`` (a line is blank when it holds only spaces, tabs
    and carriage returns: a line's first byte usually settles it); returns their count."""
    n = buf.shape[0]
    m = newlines.shape[0]
    count = 0
    s = 0
    for k in range(m + 1):
        e = newlines[k] if k < m else n
        if k == m and s >= n:
            break  # the block ended with a newline: no last line after it
        j = s
        while j < e:
            c = buf[j]
            if c != _SPACE and c != _TAB and c != _CR:
                break
            j += 1
        if j < e:
            starts[count] = s
            ends[count] = e
            lines[count] = k + 1
            count += 1
        s = e + 1
    return count


def split_lines(
    buf: npt.NDArray[np.uint8], workers: Workers = SERIAL
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Split a block of newline-terminated JSON lines.

    Parameters
    ----------
    buf : numpy.ndarray
        1-D uint8 array; lines end with ``\\n`` (the last one may lack it).
    workers : Workers, optional
        Threads to split pieces of the block on (pieces of at least SPLIT_PIECE_BYTES that
        end after a ``\\n``; default: the calling thread only).

    Returns
    -------
    starts, ends, line_numbers : numpy.ndarray
        int64 arrays: line ``k`` is ``buf[starts[k]:ends[k]]`` (without the ``\\n``; a ``\\r``
        before it is kept and is whitespace to :func:`scan`), with 1-based line number
        ``line_numbers[k]``. Lines that are empty or hold only spaces, tabs and carriage
        returns are omitted.
    """
    if buf.dtype != np.uint8 or buf.ndim != 1:
        raise ValueError("buf must be a 1-D uint8 array")
    buf = np.ascontiguousarray(buf)
    n = buf.shape[0]
    parts = min(workers.threads, max(1, n // SPLIT_PIECE_BYTES))
    cuts = [0]
    for j in range(1, parts):  # each piece but the last ends just after a newline
        at = int(_next_newline(buf, n * j // parts))
        if at >= 0 and at + 1 > cuts[-1]:
            cuts.append(at + 1)
    if cuts[-1] < n or n == 0:
        cuts.append(n)

    def piece(a: int, b: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
        part = buf[a:b]
        newlines = _newlines(part)
        cap = newlines.shape[0] + 1
        starts = np.empty(cap, dtype=np.int64)
        ends = np.empty(cap, dtype=np.int64)
        lines = np.empty(cap, dtype=np.int64)
        count = int(_lines_between(part, newlines, starts, ends, lines))
        return starts[:count] + a, ends[:count] + a, lines[:count], cap - 1

    bounds = list(itertools.pairwise(cuts))
    pieces = workers.run([functools.partial(piece, a, b) for a, b in bounds])
    if len(pieces) == 1:
        return pieces[0][:3]
    # every piece but the last ends with a newline: the lines before a piece are the newlines
    # of the pieces before it
    before = np.cumsum([0] + [p[3] for p in pieces[:-1]]).tolist()
    return (
        np.concatenate([p[0] for p in pieces]),
        np.concatenate([p[1] for p in pieces]),
        np.concatenate([p[2] + k for p, k in zip(pieces, before, strict=True)]),
    )
