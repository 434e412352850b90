r"""Counter-based random numbers: Philox4x32-10 (Salmon et al. 2011, Random123).

A counter-based generator is a keyed bijection ``block = philox(counter, key)``: the draws
depend only on ``(key, counter)``, so a stream's generator state is two integers that fit in
its state row, a draw can be replayed from any point, and streams never share state.

Philox4x32-10 maps a 128-bit counter ``(c0, c1, c2, c3)`` and a 64-bit key ``(k0, k1)``
(32-bit words) to four 32-bit words by ten rounds of

    (c0, c1, c2, c3) <- (hi(M1 c2) ^ c1 ^ k0, lo(M1 c2), hi(M0 c0) ^ c3 ^ k1, lo(M0 c0))

with M0 = 0xD2511F53, M1 = 0xCD9E8D57, the key bumped by the Weyl constants
(W0, W1) = (0x9E3779B9, 0xBB67AE85) before every round but the first. It passes BigCrush and
matches Random123's known-answer vectors (``tests/unit/test_particle_philox.py``).

Here a stream's key is a uint64 (``k0`` its low word, ``k1`` its high word) and its state is a
uint64 counter ``n``, used as ``(c0, c1, c2, c3) = (lo(n), hi(n), 0, 0)``. One counter value
(one *block*) gives

- two uniforms on the open interval (0, 1): 53 bits each, ``(m + 1/2) 2^-53`` with
  ``m = (w_a >> 5) 2^26 + (w_b >> 6)`` from words (0, 1) and (2, 3);
- or four 32-bit words for the ziggurat (:func:`gaussian_fill`).

Normals: the ziggurat of Marsaglia & Tsang (2000) with 256 layers of equal area
(``r = 3.654152885361009``). A fill of ``n`` normals from counter ``c`` takes the
``nb = ceil(n / 4)`` blocks ``c .. c + nb - 1``; normal ``j`` starts from word ``j`` of them
(block ``j // 4``, word ``j % 4``): bits 0-7 pick the layer ``i``, bit 8 the sign, bits 9-31
a 23-bit uniform ``m``, and ``x = m X_i 2^-23`` is returned when it lies inside the layer's
rectangle under the density (probability 0.9933). Otherwise (the wedge test, or the tail
beyond ``r`` for the base layer, in the standard way) further words are taken, in order of
``j``, from a second run of blocks starting at ``c + nb`` (4 words per block); the fill ends
at the first block after the words used. So the draws are a function of ``(key, c, n)``, the
counter moves on by ``ceil(n / 4)`` plus ~0.015 n / 4 blocks, and the common case is
branch-free work on whole arrays that the compiler vectorises. Resolution: normals are
multiples of ``X_i 2^-23`` (about 4e-7 near 0), far below a particle filter's Monte Carlo
error.

Every draw of the filter consumes whole blocks and advances the counter only; the key never
changes. 2^64 blocks per stream is far beyond any stream's life.
"""

from __future__ import annotations

import math

import numpy as np

from bayestream.models._jit import inline, kernel

_M0 = np.uint64(0xD2511F53)
_M1 = np.uint64(0xCD9E8D57)
_W0 = np.uint64(0x9E3779B9)
_W1 = np.uint64(0xBB67AE85)
_MASK = np.uint64(0xFFFFFFFF)
_S32 = np.uint64(32)
_S5 = np.uint64(5)
_S6 = np.uint64(6)
_S26 = np.uint64(26)


@inline
def rounds(
    c0: np.uint64, c1: np.uint64, c2: np.uint64, c3: np.uint64, k0: np.uint64, k1: np.uint64
) -> tuple[np.uint64, np.uint64, np.uint64, np.uint64]:
    """Philox4x32-10 of the counter words ``c*`` under key words ``k*`` (32-bit values in
    uint64)."""
    for rnd in range(10):
        if rnd > 0:
            k0 = (k0 + _W0) & _MASK
            k1 = (k1 + _W1) & _MASK
        p0 = _M0 * c0
        p1 = _M1 * c2
        c0, c1, c2, c3 = (
            (p1 >> _S32) ^ c1 ^ k0,
            p1 & _MASK,
            (p0 >> _S32) ^ c3 ^ k1,
            p0 & _MASK,
        )
    return c0, c1, c2, c3


@inline
def block(key: np.uint64, counter: np.uint64) -> tuple[np.uint64, np.uint64, np.uint64, np.uint64]:
    """The block at ``counter``: Philox4x32-10 of ``(lo(counter), hi(counter), 0, 0)``."""
    zero = np.uint64(0)
    return rounds(counter & _MASK, counter >> _S32, zero, zero, key & _MASK, key >> _S32)


@kernel
def philox4x32_10(counter: np.ndarray, key: np.ndarray, out: np.ndarray) -> None:
    """Random123's ``philox4x32_R(10, counter[4], key[2])`` into ``out[4]`` (uint64 arrays
    holding 32-bit words), for known-answer tests."""
    c0, c1, c2, c3 = rounds(counter[0], counter[1], counter[2], counter[3], key[0], key[1])
    out[0] = c0
    out[1] = c1
    out[2] = c2
    out[3] = c3


@inline
def uniform_pair(key: np.uint64, counter: np.uint64) -> tuple[float, float]:
    """Two independent uniforms on (0, 1) from one block."""
    c0, c1, c2, c3 = block(key, counter)
    m0 = ((c0 >> _S5) << _S26) | (c1 >> _S6)
    m1 = ((c2 >> _S5) << _S26) | (c3 >> _S6)
    return (float(m0) + 0.5) * 2.0**-53, (float(m1) + 0.5) * 2.0**-53


def _ziggurat_tables(n: int, r: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Layer edges of the ziggurat for f(x) = exp(-x^2 / 2) with ``n`` layers of area ``v``:
    ``X_0 = v / f(r)`` (the base layer, whose part beyond ``r`` is the tail), ``X_1 = r``,
    ``X_{i+1} = f^-1(v / X_i + f(X_i))``, ``X_n = 0``. Returns ``X_i 2^-23`` (i < n),
    ``X_{i+1}`` (i < n) and ``f(X_i)`` (i <= n)."""
    v = r * math.exp(-0.5 * r * r) + math.sqrt(math.pi / 2.0) * math.erfc(r / math.sqrt(2.0))
    x = np.zeros(n + 1)
    x[0] = v / math.exp(-0.5 * r * r)
    x[1] = r
    for i in range(1, n - 1):
        x[i + 1] = math.sqrt(-2.0 * math.log(v / x[i] + math.exp(-0.5 * x[i] * x[i])))
    return x[:n] * 2.0**-23, x[1:].copy(), np.exp(-0.5 * x * x)


ZIGGURAT_R = 3.654152885361009
"""Start of the tail for 256 layers (the root that makes the top layer end at 0)."""
_ZW, _ZK, _ZF = _ziggurat_tables(256, ZIGGURAT_R)
_LAYER = np.int64(255)
_SIGN = np.int64(256)
_S9 = np.int64(9)
_NAN = math.nan


@inline
def _spare_word(key: np.uint64, base: np.uint64, k: int) -> np.int64:
    """Word ``k`` of the run of blocks that starts at ``base`` (for the ziggurat's slow path)."""
    c0, c1, c2, c3 = block(key, base + np.uint64(k // 4))
    r = k % 4
    w = c0 if r == 0 else (c1 if r == 1 else (c2 if r == 2 else c3))
    return np.int64(w)


@inline
def _spare_uniform(key: np.uint64, base: np.uint64, k: int) -> float:
    """A uniform on (0, 1) from spare word ``k``: (w + 1/2) 2^-32."""
    return (float(_spare_word(key, base, k)) + 0.5) * 2.0**-32


@inline
def _ziggurat_slow(w: np.int64, key: np.uint64, base: np.uint64, k: int) -> tuple[float, int]:
    """The normal that starts from word ``w`` when the fast test rejected it; spare words
    from index ``k`` on. Returns the normal and the next spare index."""
    while True:
        i = w & _LAYER
        u = float(w >> _S9) * _ZW[i]
        neg = (w & _SIGN) != 0
        if u < _ZK[i]:
            return -u if neg else u, k
        if i == 0:  # the tail beyond r (Marsaglia 1964)
            while True:
                a = -math.log(_spare_uniform(key, base, k)) / ZIGGURAT_R
                b = -math.log(_spare_uniform(key, base, k + 1))
                k += 2
                if b + b > a * a:
                    return -(ZIGGURAT_R + a) if neg else ZIGGURAT_R + a, k
        else:  # the wedge between layer i's rectangle and the density
            h = _ZF[i] + _spare_uniform(key, base, k) * (_ZF[i + 1] - _ZF[i])
            k += 1
            if h < math.exp(-0.5 * u * u):
                return -u if neg else u, k
        w = _spare_word(key, base, k)
        k += 1


@inline
def fill_words(key: np.uint64, counter: np.uint64, words: np.ndarray, nb: int) -> None:
    """The words of blocks ``counter .. counter + nb - 1`` into ``words[0:4 nb]``."""
    for b in range(nb):
        c0, c1, c2, c3 = block(key, counter + np.uint64(b))
        words[4 * b] = c0
        words[4 * b + 1] = c1
        words[4 * b + 2] = c2
        words[4 * b + 3] = c3


@inline
def gaussian_fill(
    x: np.ndarray,
    base: np.ndarray,
    add: bool,
    loc: float,
    sd: float,
    lim: float,
    key: np.uint64,
    counter: np.uint64,
    words: np.ndarray,
    z: np.ndarray,
) -> np.uint64:
    """``x_j = clamp((base_j if add else loc) + sd z_j, -lim, lim)`` with standard normals
    ``z_j`` drawn by the ziggurat from block ``counter`` (see the module docstring); returns
    the next counter. ``words`` (uint64, >= 4 ceil(n / 4)) and ``z`` (>= n) are scratch."""
    n = x.shape[0]
    nb = (n + 3) // 4
    fill_words(key, counter, words, nb)
    slow = 0
    for j in range(n):  # the fast path, vectorised
        w = np.int64(words[j])
        i = w & _LAYER
        u = float(w >> _S9) * _ZW[i]
        v = -u if (w & _SIGN) != 0 else u
        if u < _ZK[i]:
            z[j] = v
        else:
            z[j] = _NAN
            slow += 1
    spare = counter + np.uint64(nb)
    k = 0
    if slow > 0:
        for j in range(n):
            if z[j] != z[j]:
                z[j], k = _ziggurat_slow(np.int64(words[j]), key, spare, k)
    for j in range(n):
        v = (base[j] if add else loc) + sd * z[j]
        if v > lim:
            v = lim
        if v < -lim:
            v = -lim
        x[j] = v
    return spare + np.uint64((k + 3) // 4)


@kernel
def blocks(key: np.uint64, counter: np.uint64, n: int, out: np.ndarray) -> None:
    """Raw words of ``n`` consecutive blocks into ``out[n, 4]`` (uint64), for tests."""
    for i in range(n):
        c0, c1, c2, c3 = block(key, counter + np.uint64(i))
        out[i, 0] = c0
        out[i, 1] = c1
        out[i, 2] = c2
        out[i, 3] = c3


@kernel
def uniforms(key: np.uint64, counter: np.uint64, out: np.ndarray) -> np.uint64:
    """Fill ``out`` with uniforms, two per block from ``counter``; return the next counter."""
    n = out.shape[0]
    for b in range((n + 1) // 2):
        u0, u1 = uniform_pair(key, counter + np.uint64(b))
        out[2 * b] = u0
        if 2 * b + 1 < n:
            out[2 * b + 1] = u1
    return counter + np.uint64((n + 1) // 2)


@kernel
def normals(key: np.uint64, counter: np.uint64, out: np.ndarray) -> np.uint64:
    """Fill ``out`` with standard normals (:func:`gaussian_fill`); return the next counter."""
    n = out.shape[0]
    words = np.empty(4 * ((n + 3) // 4), dtype=np.uint64)
    z = np.empty(n)
    return gaussian_fill(out, out, False, 0.0, 1.0, math.inf, key, counter, words, z)
