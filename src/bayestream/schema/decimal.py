"""Decimal to binary: ``w * 10**q`` as the correctly rounded float64, for the scanner's numbers.

A JSON number ``[-]d1 ... dk [. f1 ... fm] [e x]`` equals ``w * 10**q``, with ``w`` the integer
of its digits (leading zeros dropped, at most 19 significant digits, so it fits a uint64) and
``q = x - m`` (see :mod:`bayestream.schema.scan`, which accumulates them and defers the
numbers neither tier below can decide to ``float(bytes)``). Two tiers, both exact:

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
"""

from __future__ import annotations

import numpy as np

from bayestream.models._jit import kernel

__all__ = ["MAX_EXACT_INT", "MAX_POW10", "POW10", "convert_off_fast_path"]

# Exact powers of ten 10**0 .. 10**22 (5**22 < 2**53, so each is a float64 exactly).
POW10 = np.array([10.0**i for i in range(23)], dtype=np.float64)
MAX_POW10 = 22
MAX_EXACT_INT = np.uint64(2**53)

# uint64 constants, so that the kernels' integer arithmetic stays in uint64 (numba would turn a
# mix of uint64 and int64 operands into float64).
_U0 = np.uint64(0)
_U1 = np.uint64(1)
_U3 = np.uint64(3)
_U9 = np.uint64(9)
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
def convert_off_fast_path(w: np.uint64, q: int) -> float:
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
