"""JSON number and string writers for numba kernels: float64 -> ``repr`` bytes, without Python.

Output records are assembled byte by byte inside kernels; this module gives those kernels two
``@inline`` writers, :func:`write_float` and :func:`write_ascii_json_string`, plus a
kernel-backed convenience :func:`format_floats`.

Float formatting follows Ryū (Ulf Adams, "Ryū: fast float-to-string conversion", PLDI 2018).
For a finite, nonzero double ``v = m2 * 2**e2`` the outline is:

1. Decode the IEEE bits into an integer mantissa ``m2`` and binary exponent ``e2``; work with
   ``mv = 4*m2`` and the halfway points to the neighbouring doubles, ``mp = mv + 2`` and
   ``mm = mv - 1 - mmShift`` (``mmShift = 0`` only at a power of two whose lower neighbour is
   closer, where the interval is asymmetric). Every decimal strictly between ``mm`` and ``mp``
   (inclusive when ``m2`` is even: round-half-even at parse time) reads back as ``v``.
2. Move the three bounds to a decimal base ``10**e10`` by multiplying with a 128-bit fixed-point
   approximation of ``5**-q`` (``e2 >= 0``, table ``DOUBLE_POW5_INV_SPLIT``) or ``5**i``
   (``e2 < 0``, table ``DOUBLE_POW5_SPLIT``), keeping the top bits (``mulShift64``). The paper
   proves that with 125-bit table entries the truncated quotients ``vr, vp, vm`` equal the exact
   ``floor`` values for every double. Whether a truncation dropped only zeros is decided
   exactly by 2- and 5-adic divisibility tests when it matters (small ``q``).
3. Remove decimal digits while ``vp // 10 > vm // 10`` (the interval still contains a shorter
   number), tracking the last removed digit of ``vr`` and whether all removed digits were zero;
   then round ``vr`` to nearest, ties to even, and take ``vr + 1`` if ``vr`` fell out of the
   interval. The result ``output * 10**e10`` is the shortest decimal that round-trips, and of
   the shortest ones the closest to ``v``, which is what CPython's ``repr`` (David Gay's dtoa in
   mode 0) also produces.

The tables are generated at import with exact Python integers and stored as (low, high) pairs
of ``uint64`` arrays; numba has no 128-bit integer, so 64x64->128 products are assembled from
32-bit halves.

Exactness claim: for every finite double ``x``, :func:`write_float` writes exactly the bytes of
``repr(x)`` (same digits, same fixed/scientific layout: fixed when the decimal exponent is in
``[-4, 16)``), and ``null`` for NaN and infinities. The tests compare byte for byte against
``repr`` on table values, random doubles and random 64-bit patterns.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from bayestream.models._jit import inline, kernel

__all__ = [
    "DOUBLE_POW5_INV_SPLIT_HI",
    "DOUBLE_POW5_INV_SPLIT_LO",
    "DOUBLE_POW5_SPLIT_HI",
    "DOUBLE_POW5_SPLIT_LO",
    "MAX_FLOAT_BYTES",
    "format_floats",
    "json_string_max_bytes",
    "write_ascii_json_string",
    "write_float",
]

#: Room :func:`write_float` may need: ``-1.7976931348623157e+308`` is 24 bytes.
MAX_FLOAT_BYTES = 24

_DOUBLE_MANTISSA_BITS = 52
_DOUBLE_BIAS = 1023
_POW5_INV_BITCOUNT = 125
_POW5_BITCOUNT = 125
_POW5_INV_TABLE_SIZE = 342
_POW5_TABLE_SIZE = 326


def _pow5bits(e: int) -> int:
    """``ceil(log2(5**e))`` for ``e > 0`` and 1 for ``e == 0`` (valid for ``0 <= e <= 3528``)."""
    return ((e * 1217359) >> 19) + 1


def _build_tables() -> tuple[
    npt.NDArray[np.uint64],
    npt.NDArray[np.uint64],
    npt.NDArray[np.uint64],
    npt.NDArray[np.uint64],
]:
    """Generate the 128-bit Ryū tables exactly, split into (low, high) 64-bit words.

    - ``inv[q] = floor(2**(bitlen(5**q) - 1 + 125) / 5**q) + 1`` (125/126-bit);
    - ``pow[i] = 5**i`` normalised to exactly 125 bits (truncated, or shifted left when short).
    """
    mask = (1 << 64) - 1
    inv_lo = np.empty(_POW5_INV_TABLE_SIZE, dtype=np.uint64)
    inv_hi = np.empty(_POW5_INV_TABLE_SIZE, dtype=np.uint64)
    for q in range(_POW5_INV_TABLE_SIZE):
        p = 5**q
        bits = p.bit_length()
        if bits != _pow5bits(q):  # pragma: no cover - a broken formula must not go unnoticed
            raise AssertionError(f"pow5bits({q}) disagrees with the bit length of 5**{q}")
        inv = (1 << (bits - 1 + _POW5_INV_BITCOUNT)) // p + 1
        if inv >> 128:  # pragma: no cover
            raise AssertionError("inverse table entry exceeds 128 bits")
        inv_lo[q] = inv & mask
        inv_hi[q] = inv >> 64
    pow_lo = np.empty(_POW5_TABLE_SIZE, dtype=np.uint64)
    pow_hi = np.empty(_POW5_TABLE_SIZE, dtype=np.uint64)
    for i in range(_POW5_TABLE_SIZE):
        p = 5**i
        shift = p.bit_length() - _POW5_BITCOUNT
        v = p >> shift if shift >= 0 else p << -shift
        pow_lo[i] = v & mask
        pow_hi[i] = v >> 64
    for arr in (inv_lo, inv_hi, pow_lo, pow_hi):
        arr.setflags(write=False)
    return inv_lo, inv_hi, pow_lo, pow_hi


(
    DOUBLE_POW5_INV_SPLIT_LO,
    DOUBLE_POW5_INV_SPLIT_HI,
    DOUBLE_POW5_SPLIT_LO,
    DOUBLE_POW5_SPLIT_HI,
) = _build_tables()

# uint64 constants: numba types a uint64-with-int64 mix as float64, so every literal that meets
# a uint64 is one of these.
_U0 = np.uint64(0)
_U1 = np.uint64(1)
_U2 = np.uint64(2)
_U4 = np.uint64(4)
_U6 = np.uint64(6)
_U8 = np.uint64(8)
_U5 = np.uint64(5)
_U10 = np.uint64(10)
_U32 = np.uint64(32)
_U64 = np.uint64(64)
_MASK32 = np.uint64(0xFFFFFFFF)
_MANT_MASK = np.uint64((1 << _DOUBLE_MANTISSA_BITS) - 1)
_HIDDEN_BIT = np.uint64(1 << _DOUBLE_MANTISSA_BITS)
_EXP_MASK = np.uint64(0x7FF)
_SHIFT_MANT = np.uint64(_DOUBLE_MANTISSA_BITS)
_U63 = np.uint64(63)
_P10_16 = np.uint64(10**16)
_P10_15 = np.uint64(10**15)
_P10_14 = np.uint64(10**14)
_P10_13 = np.uint64(10**13)
_P10_12 = np.uint64(10**12)
_P10_11 = np.uint64(10**11)
_P10_10 = np.uint64(10**10)
_P10_9 = np.uint64(10**9)
_P10_8 = np.uint64(10**8)
_P10_7 = np.uint64(10**7)
_P10_6 = np.uint64(10**6)
_P10_5 = np.uint64(10**5)
_P10_4 = np.uint64(10**4)
_P10_3 = np.uint64(10**3)
_P10_2 = np.uint64(10**2)

# ASCII codes as uint8 stores.
_C_0 = np.uint8(48)
_C_DOT = np.uint8(46)
_C_MINUS = np.uint8(45)
_C_PLUS = np.uint8(43)
_C_E = np.uint8(101)
_C_QUOTE = np.uint8(34)
_C_BACKSLASH = np.uint8(92)
_C_U = np.uint8(117)
_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8).copy()
_HEX.setflags(write=False)
_DIGIT_PAIRS = np.frombuffer("".join(f"{k:02d}" for k in range(100)).encode(), np.uint8).copy()
_DIGIT_PAIRS.setflags(write=False)
_NULL = np.frombuffer(b"null", dtype=np.uint8).copy()
_NULL.setflags(write=False)
# Short escapes json.dumps uses for control bytes (0 = none, use \u00XX).
_SHORT_ESCAPE = np.zeros(32, dtype=np.uint8)
for _code, _letter in ((8, "b"), (9, "t"), (10, "n"), (12, "f"), (13, "r")):
    _SHORT_ESCAPE[_code] = ord(_letter)
_SHORT_ESCAPE.setflags(write=False)
del _code, _letter


# ---------------------------------------------------------------------------------------------
# 128-bit arithmetic on uint64 halves
# ---------------------------------------------------------------------------------------------


@inline
def _umul128(a: np.uint64, b: np.uint64) -> tuple[np.uint64, np.uint64]:
    """Full 64x64 -> 128-bit product as ``(low, high)``, from four 32x32 -> 64 products."""
    a_lo = a & _MASK32
    a_hi = a >> _U32
    b_lo = b & _MASK32
    b_hi = b >> _U32
    b00 = a_lo * b_lo
    b01 = a_lo * b_hi
    b10 = a_hi * b_lo
    b11 = a_hi * b_hi
    mid1 = b10 + (b00 >> _U32)  # < 2**64: (2**32-1)**2 + 2**32-1
    mid2 = b01 + (mid1 & _MASK32)
    hi = b11 + (mid1 >> _U32) + (mid2 >> _U32)
    lo = (mid2 << _U32) | (b00 & _MASK32)
    return lo, hi


@inline
def _shift_right128(lo: np.uint64, hi: np.uint64, dist: int) -> np.uint64:
    """Low 64 bits of ``(hi:lo) >> dist`` for ``0 < dist < 64``."""
    d = np.uint64(dist)
    return (hi << (_U64 - d)) | (lo >> d)


@inline
def _mul_shift_all64(
    m2: np.uint64, mul_lo: np.uint64, mul_hi: np.uint64, j: int, mm_shift: np.uint64
) -> tuple[np.uint64, np.uint64, np.uint64]:
    """``(vr, vp, vm) = floor((4*m2, 4*m2 + 2, 4*m2 - 1 - mm_shift) * mul / 2**j)``.

    One exact 192-bit product ``P = 2*m2 * mul`` (words ``lo, mid, hi``) serves all three:
    ``vr = P >> (j-1)``, ``vp = (P + mul) >> (j-1)`` and ``vm = (P - mul) >> (j-1)`` when
    ``mm_shift`` is 1, else ``(2P - mul) >> j``. Needs ``m2 < 2**53`` and ``65 < j < 128``; the
    low word only feeds carries and borrows, since every shift is by at least 64 bits.
    """
    m = m2 << _U1
    lo, tmp = _umul128(m, mul_lo)
    low1, hi = _umul128(m, mul_hi)
    mid = tmp + low1
    if mid < tmp:
        hi += _U1
    dist = j - 65

    # P + mul
    lo2 = lo + mul_lo
    mid2 = mid + mul_hi + (_U1 if lo2 < lo else _U0)
    hi2 = hi + (_U1 if mid2 < mid else _U0)  # mul_hi + 1 < 2**64: a wrap means a carry
    vp = _shift_right128(mid2, hi2, dist)

    if mm_shift == _U1:
        # P - mul
        lo3 = lo - mul_lo
        mid3 = mid - mul_hi - (_U1 if lo3 > lo else _U0)
        hi3 = hi - (_U1 if mid3 > mid else _U0)
        vm = _shift_right128(mid3, hi3, dist)
    else:
        # 2P - mul
        lo3 = lo << _U1
        mid3 = (mid << _U1) | (lo >> _U63)
        hi3 = (hi << _U1) | (mid >> _U63)
        lo4 = lo3 - mul_lo
        mid4 = mid3 - mul_hi - (_U1 if lo4 > lo3 else _U0)
        hi4 = hi3 - (_U1 if mid4 > mid3 else _U0)
        vm = _shift_right128(mid4, hi4, dist + 1)

    vr = _shift_right128(mid, hi, dist)
    return vr, vp, vm


# ---------------------------------------------------------------------------------------------
# Ryū helpers
# ---------------------------------------------------------------------------------------------


@inline
def _log10_pow2(e: int) -> int:
    """``floor(log10(2**e))`` for ``0 <= e <= 1650``."""
    return (e * 78913) >> 18


@inline
def _log10_pow5(e: int) -> int:
    """``floor(log10(5**e))`` for ``0 <= e <= 2620``."""
    return (e * 732923) >> 20


@inline
def _pow5bits_jit(e: int) -> int:
    return ((e * 1217359) >> 19) + 1


@inline
def _multiple_of_pow5(value: np.uint64, p: int) -> bool:
    """Whether ``5**p`` divides ``value`` (``value > 0``)."""
    count = 0
    while True:
        quot = value // _U5
        if value - _U5 * quot != _U0:
            break
        value = quot
        count += 1
    return count >= p


@inline
def _multiple_of_pow2(value: np.uint64, p: int) -> bool:
    """Whether ``2**p`` divides ``value`` (``0 <= p < 64``)."""
    return bool((value & ((_U1 << np.uint64(p)) - _U1)) == _U0)


@kernel
def _d2d(ieee_mantissa: np.uint64, ieee_exponent: int) -> tuple[np.uint64, int]:
    """Shortest round-trip decimal ``(digits, e10)`` of a finite nonzero double's magnitude."""
    if ieee_exponent == 0:
        e2 = 1 - _DOUBLE_BIAS - _DOUBLE_MANTISSA_BITS - 2
        m2 = ieee_mantissa
    else:
        e2 = ieee_exponent - _DOUBLE_BIAS - _DOUBLE_MANTISSA_BITS - 2
        m2 = _HIDDEN_BIT | ieee_mantissa
    accept_bounds = (m2 & _U1) == _U0

    # Step 2: the interval of valid decimals, scaled by 4: [mv - 1 - mm_shift, mv + 2].
    mv = _U4 * m2
    mm_shift = _U1 if (ieee_mantissa != _U0 or ieee_exponent <= 1) else _U0

    # Step 3: to a decimal power base, with 128-bit fixed-point powers of five.
    vm_trailing_zeros = False
    vr_trailing_zeros = False
    if e2 >= 0:
        q = _log10_pow2(e2) - (1 if e2 > 3 else 0)
        e10 = q
        k = _POW5_INV_BITCOUNT + _pow5bits_jit(q) - 1
        i = -e2 + q + k
        mul_lo = DOUBLE_POW5_INV_SPLIT_LO[q]
        mul_hi = DOUBLE_POW5_INV_SPLIT_HI[q]
        vr, vp, vm = _mul_shift_all64(m2, mul_lo, mul_hi, i, mm_shift)
        if q <= 21:
            # At most one of mp, mv, mm is a multiple of 5.
            if mv % _U5 == _U0:
                vr_trailing_zeros = _multiple_of_pow5(mv, q)
            elif accept_bounds:
                vm_trailing_zeros = _multiple_of_pow5(mv - _U1 - mm_shift, q)
            elif _multiple_of_pow5(mv + _U2, q):
                vp -= _U1
    else:
        q = _log10_pow5(-e2) - (1 if -e2 > 1 else 0)
        e10 = q + e2
        i = -e2 - q
        k = _pow5bits_jit(i) - _POW5_BITCOUNT
        j = q - k
        mul_lo = DOUBLE_POW5_SPLIT_LO[i]
        mul_hi = DOUBLE_POW5_SPLIT_HI[i]
        vr, vp, vm = _mul_shift_all64(m2, mul_lo, mul_hi, j, mm_shift)
        if q <= 1:
            # mv = 4*m2 has at least two trailing zero bits.
            vr_trailing_zeros = True
            if accept_bounds:
                vm_trailing_zeros = mm_shift == _U1
            else:
                vp -= _U1
        elif q < 63:
            vr_trailing_zeros = _multiple_of_pow2(mv, q)

    # Step 4: shortest representation inside the interval.
    removed = 0
    last_removed = _U0
    if vm_trailing_zeros or vr_trailing_zeros:
        # Rare general case: track exact trailing zeros for ties and an inclusive lower bound.
        while True:
            vp_div10 = vp // _U10
            vm_div10 = vm // _U10
            if vp_div10 <= vm_div10:
                break
            vm_mod10 = vm - _U10 * vm_div10
            vr_div10 = vr // _U10
            vr_mod10 = vr - _U10 * vr_div10
            vm_trailing_zeros = vm_trailing_zeros and vm_mod10 == _U0
            vr_trailing_zeros = vr_trailing_zeros and last_removed == _U0
            last_removed = vr_mod10
            vr = vr_div10
            vp = vp_div10
            vm = vm_div10
            removed += 1
        if vm_trailing_zeros:
            while True:
                vm_div10 = vm // _U10
                vm_mod10 = vm - _U10 * vm_div10
                if vm_mod10 != _U0:
                    break
                vp_div10 = vp // _U10
                vr_div10 = vr // _U10
                vr_mod10 = vr - _U10 * vr_div10
                vr_trailing_zeros = vr_trailing_zeros and last_removed == _U0
                last_removed = vr_mod10
                vr = vr_div10
                vp = vp_div10
                vm = vm_div10
                removed += 1
        if vr_trailing_zeros and last_removed == _U5 and (vr & _U1) == _U0:
            last_removed = _U4  # exactly ...50..0: round half to even
        round_up = bool(vr == vm and (not accept_bounds or not vm_trailing_zeros)) or bool(
            last_removed >= _U5
        )
    else:
        # Common case: no exact ties possible; remove two digits at a time first.
        round_up = False
        vp_div100 = vp // _P10_2
        vm_div100 = vm // _P10_2
        if vp_div100 > vm_div100:
            vr_div100 = vr // _P10_2
            round_up = bool(vr - _P10_2 * vr_div100 >= np.uint64(50))
            vr = vr_div100
            vp = vp_div100
            vm = vm_div100
            removed += 2
        while True:
            vp_div10 = vp // _U10
            vm_div10 = vm // _U10
            if vp_div10 <= vm_div10:
                break
            vr_div10 = vr // _U10
            round_up = bool(vr - _U10 * vr_div10 >= _U5)
            vr = vr_div10
            vp = vp_div10
            vm = vm_div10
            removed += 1
        round_up = round_up or vr == vm
    output = vr + _U1 if round_up else vr
    return output, e10 + removed


@inline
def _decimal_length17(v: np.uint64) -> int:
    """Number of decimal digits of ``v < 10**17``."""
    if v >= _P10_16:
        return 17
    if v >= _P10_15:
        return 16
    if v >= _P10_14:
        return 15
    if v >= _P10_13:
        return 14
    if v >= _P10_12:
        return 13
    if v >= _P10_11:
        return 12
    if v >= _P10_10:
        return 11
    if v >= _P10_9:
        return 10
    if v >= _P10_8:
        return 9
    if v >= _P10_7:
        return 8
    if v >= _P10_6:
        return 7
    if v >= _P10_5:
        return 6
    if v >= _P10_4:
        return 5
    if v >= _P10_3:
        return 4
    if v >= _P10_2:
        return 3
    if v >= _U10:
        return 2
    return 1


# Positions inside the writers are uint64: numba indexes with an unsigned integer without the
# negative-index wraparound test it emits for signed ones.


@inline
def _write_pair(out: npt.NDArray[np.uint8], p: np.uint64, v: np.uint64) -> None:
    """Write the two digits of ``v < 100`` at ``out[p], out[p + 1]``."""
    r = v << _U1
    out[p] = _DIGIT_PAIRS[r]
    out[p + _U1] = _DIGIT_PAIRS[r + _U1]


@inline
def _write_digits(out: npt.NDArray[np.uint8], end: np.uint64, v: np.uint64, n: int) -> np.uint64:
    """Write the ``n`` low decimal digits of ``v`` ending just before ``out[end]``; return
    ``v // 10**n`` (the digits not written).

    Eight digits at a time split into independent halves and pairs, so the chain of dependent
    divisions (each a multiply and shift) stays short; then pairs, then a last single digit.
    """
    p = end
    while n >= 8:
        quot = v // _P10_8
        chunk = v - _P10_8 * quot
        c = chunk // _P10_4
        d = chunk - _P10_4 * c
        c1 = c // _P10_2
        d1 = d // _P10_2
        _write_pair(out, p - _U8, c1)
        _write_pair(out, p - _U6, c - _P10_2 * c1)
        _write_pair(out, p - _U4, d1)
        _write_pair(out, p - _U2, d - _P10_2 * d1)
        p -= _U8
        n -= 8
        v = quot
    while n >= 2:
        quot = v // _P10_2
        _write_pair(out, p - _U2, v - _P10_2 * quot)
        p -= _U2
        n -= 2
        v = quot
    if n == 1:
        quot = v // _U10
        out[p - _U1] = _C_0 + np.uint8(v - _U10 * quot)
        v = quot
    return v


# ---------------------------------------------------------------------------------------------
# Public writers
# ---------------------------------------------------------------------------------------------


@kernel
def write_float(out: npt.NDArray[np.uint8], pos: int, x: float) -> int:
    """Write ``repr(x)`` for finite ``x`` (``null`` for NaN, +-inf) at ``out[pos:]``.

    Returns the position after the last byte written. The caller guarantees
    :data:`MAX_FLOAT_BYTES` (24) bytes of room.
    """
    bits = np.float64(x).view(np.uint64)
    ieee_mantissa = bits & _MANT_MASK
    ieee_exponent = int((bits >> _SHIFT_MANT) & _EXP_MASK)
    p = np.uint64(pos)
    if ieee_exponent == 0x7FF:
        for c in range(4):
            out[p + np.uint64(c)] = _NULL[c]
        return pos + 4
    if (bits >> _U63) != _U0:
        out[p] = _C_MINUS
        p += _U1
    if ieee_exponent == 0 and ieee_mantissa == _U0:
        out[p] = _C_0
        out[p + _U1] = _C_DOT
        out[p + _U2] = _C_0
        return int(p) + 3

    digits, e10 = _d2d(ieee_mantissa, ieee_exponent)
    n = _decimal_length17(digits)
    un = np.uint64(n)
    sci_exp = e10 + n - 1  # x = d.ddd * 10**sci_exp

    if sci_exp < -4 or sci_exp >= 16:
        # d[.ddd]e(+|-)XX[X]: digits written one to the right, then the first moved left.
        _write_digits(out, p + _U1 + un, digits, n)
        out[p] = out[p + _U1]
        if n > 1:
            out[p + _U1] = _C_DOT
            p += un + _U1
        else:
            p += _U1
        out[p] = _C_E
        if sci_exp < 0:
            out[p + _U1] = _C_MINUS
            sci_exp = -sci_exp
        else:
            out[p + _U1] = _C_PLUS
        p += _U2
        ue = np.uint64(sci_exp)
        if ue >= _P10_2:
            hundreds = ue // _P10_2
            out[p] = _C_0 + np.uint8(hundreds)
            ue -= _P10_2 * hundreds
            p += _U1
        _write_pair(out, p, ue)
        return int(p) + 2

    decpt = sci_exp + 1  # digits before the decimal point
    if decpt <= 0:
        # 0.000ddd
        out[p] = _C_0
        out[p + _U1] = _C_DOT
        p += _U2
        for _ in range(-decpt):
            out[p] = _C_0
            p += _U1
        _write_digits(out, p + un, digits, n)
        return int(p) + n
    ud = np.uint64(decpt)
    if decpt < n:
        # ddd.ddd: the fraction, the point, then the integer part.
        high = _write_digits(out, p + un + _U1, digits, n - decpt)
        out[p + ud] = _C_DOT
        _write_digits(out, p + ud, high, decpt)
        return int(p) + n + 1
    # ddd000.0
    _write_digits(out, p + un, digits, n)
    p += un
    for _ in range(decpt - n):
        out[p] = _C_0
        p += _U1
    out[p] = _C_DOT
    out[p + _U1] = _C_0
    return int(p) + 2


def json_string_max_bytes(n: int) -> int:
    """Room :func:`write_ascii_json_string` may need for ``n`` source bytes (``\\u00XX`` each)."""
    return 6 * n + 2


@inline
def write_ascii_json_string(
    out: npt.NDArray[np.uint8],
    pos: int,
    src: npt.NDArray[np.uint8],
    start: int,
    end: int,
) -> int:
    """Write ``src[start:end]`` as a JSON string literal, byte-identical to ``json.dumps``.

    Escapes ``"`` and ``\\``, control bytes below 0x20 (``\\b \\t \\n \\f \\r`` or
    ``\\u00xx``) and DEL (0x7f, as ``json.dumps`` does with ``ensure_ascii``). Returns the
    position after the closing quote, or -1 if a byte is >= 0x80 (non-ASCII: the caller falls
    back; bytes from ``pos`` on may then have been overwritten). The caller guarantees
    :func:`json_string_max_bytes` room.
    """
    out[pos] = _C_QUOTE
    pos += 1
    for idx in range(start, end):
        c = src[idx]
        if c >= 0x80:
            return -1
        if c >= 0x20 and c != 0x22 and c != 0x5C and c != 0x7F:
            out[pos] = c
            pos += 1
        elif c == 0x22 or c == 0x5C:
            out[pos] = _C_BACKSLASH
            out[pos + 1] = c
            pos += 2
        else:
            short = _SHORT_ESCAPE[c] if c < 0x20 else np.uint8(0)
            out[pos] = _C_BACKSLASH
            if short != 0:
                out[pos + 1] = short
                pos += 2
            else:
                out[pos + 1] = _C_U
                out[pos + 2] = _C_0
                out[pos + 3] = _C_0
                out[pos + 4] = _HEX[c >> 4]
                out[pos + 5] = _HEX[c & 0xF]
                pos += 6
    out[pos] = _C_QUOTE
    return pos + 1


@kernel
def _format_floats_kernel(values: npt.NDArray[np.float64], out: npt.NDArray[np.uint8]) -> int:
    pos = 0
    for k in range(values.shape[0]):
        if k > 0:
            out[pos] = np.uint8(44)  # ","
            pos += 1
        pos = write_float(out, pos, values[k])
    return pos


def format_floats(values: npt.NDArray[np.float64]) -> bytes:
    """``repr`` of each value (``null`` for non-finite), comma-separated, formatted by a kernel."""
    arr = np.ascontiguousarray(values, dtype=np.float64).ravel()
    out = np.empty(max(arr.shape[0] * (MAX_FLOAT_BYTES + 1), 1), dtype=np.uint8)
    n = _format_floats_kernel(arr, out)
    return out[:n].tobytes()
