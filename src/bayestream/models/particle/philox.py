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
- or one attempt of Marsaglia's polar method for two standard normals (accepted with
  probability pi/4, so a pair takes 4/pi blocks on average; a rejection only moves the
  counter on, so the draws stay a function of (key, counter)).

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


@inline
def normal_pair(key: np.uint64, counter: np.uint64) -> tuple[float, float, np.uint64]:
    """Two independent standard normals by Marsaglia's polar method, starting at block
    ``counter``; returns them and the next unused counter. Each attempt takes one block:
    ``(v0, v1) = 2 (u0, u1) - 1``, accepted when ``0 < s = v0^2 + v1^2 < 1`` (probability
    pi/4), giving ``(v0, v1) sqrt(-2 ln s / s)``."""
    while True:
        u0, u1 = uniform_pair(key, counter)
        counter += np.uint64(1)
        v0 = 2.0 * u0 - 1.0
        v1 = 2.0 * u1 - 1.0
        s = v0 * v0 + v1 * v1
        if 0.0 < s < 1.0:
            f = math.sqrt(-2.0 * math.log(s) / s)
            return v0 * f, v1 * f, counter


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
    """Fill ``out`` with standard normals, a pair at a time; return the next counter."""
    n = out.shape[0]
    for b in range((n + 1) // 2):
        z0, z1, counter = normal_pair(key, counter)
        out[2 * b] = z0
        if 2 * b + 1 < n:
            out[2 * b + 1] = z1
    return counter
