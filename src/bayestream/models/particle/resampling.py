r"""Resampling schemes: one inverse-CDF scan over the particles.

Notation (as in Chopin & Papaspiliopoulos 2020, ch. 9, and nchopin/particles): ``P`` particles
``x[0:P]`` with unnormalised weights ``w[0:P]`` of total ``W = sum(w)``; resampling draws ``P``
ancestors ``a[k]`` and replaces the particles by ``x[a[k]]`` with uniform weights. All schemes
are unbiased (E #copies of j = P w_j / W) and differ in variance:

- **systematic**: one uniform ``U``, positions ``(k + U) / P``, k = 0..P-1;
- **stratified**: one uniform per stratum, positions ``(k + U_k) / P``;
- **residual**: ``floor(P w_j / W)`` deterministic copies of each particle, then the
  remaining ``R = P - sum floor(.)`` by systematic resampling on the residual weights
  ``P w_j / W - floor(P w_j / W)``.

Positions (times ``W``) are increasing, so the ancestors are found by a single scan of the
cumulative weights: ancestor of position ``u`` = smallest ``j`` with ``w_0 + ... + w_j >= u``.
Rounding in the running sum can leave the last positions beyond it; they take ``x[P-1]``.
Uniforms come from the stream's Philox generator; each function returns the next counter.
"""

from __future__ import annotations

import numpy as np

from bayestream.models._jit import inline
from bayestream.models.particle.codes import RESAMPLE_RESIDUAL, RESAMPLE_STRATIFIED
from bayestream.models.particle.philox import uniform_pair


@inline
def _scan(
    x: np.ndarray,
    w: np.ndarray,
    total: float,
    n: int,
    u: float,
    out: np.ndarray,
    start: int,
    key: np.uint64,
    counter: np.uint64,
    stratified: bool,
) -> np.uint64:
    """Write ``n`` draws at positions ``(k + U_k) total / n`` into ``out[start:start + n]``;
    ``U_k = u`` for all k unless ``stratified`` (then fresh uniforms, two per block)."""
    p = w.shape[0]
    j = 0
    cum = w[0]
    step = total / n
    uk = u
    spare = 0.0
    for k in range(n):
        if stratified:
            if k % 2 == 0:
                uk, spare = uniform_pair(key, counter)
                counter += np.uint64(1)
            else:
                uk = spare
        pos = (k + uk) * step
        while cum < pos and j < p - 1:
            j += 1
            cum += w[j]
        out[start + k] = x[j]
    return counter


@inline
def resample(
    x: np.ndarray,
    w: np.ndarray,
    total: float,
    scheme: int,
    key: np.uint64,
    counter: np.uint64,
    out: np.ndarray,
) -> np.uint64:
    """Resample ``x`` (weights ``w``, total ``total``) into ``out``; ``w`` is overwritten
    (residual weights). Returns the next counter. Blocks used: systematic and residual 1,
    stratified ceil(P / 2)."""
    p = x.shape[0]
    if scheme == RESAMPLE_STRATIFIED:
        return _scan(x, w, total, p, 0.0, out, 0, key, counter, True)
    u, _ = uniform_pair(key, counter)
    counter += np.uint64(1)
    if scheme != RESAMPLE_RESIDUAL:
        return _scan(x, w, total, p, u, out, 0, key, counter, False)
    scale = p / total
    k = 0
    rest = 0.0
    for j in range(p):
        expected = w[j] * scale
        copies = min(int(expected), p - k)  # expected >= 0: int() is floor
        for _ in range(copies):
            out[k] = x[j]
            k += 1
        w[j] = max(expected - copies, 0.0)
        rest += w[j]
    if k < p:
        if rest > 0.0:
            _scan(x, w, rest, p - k, u, out, k, key, counter, False)
        else:  # rounding left no residual mass: repeat the last copies
            for i in range(k, p):
                out[i] = out[i - k] if k > 0 else x[i]
    return counter
