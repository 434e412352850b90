r"""Summaries of particle posteriors and the KL estimator between two of them.

Weights are ``w_j = exp(lw_j) / sum exp(lw)`` (renormalised here, so a row that has seen no
event, all zeros, reads as equal weights on particles at 0).

- Latent mean and sd: ``m = sum w_j x_j``, ``sd^2 = sum w_j (x_j - m)^2``.
- ``mean``/``sd`` on the model's natural scale: the latent figures for the local level, the
  weighted mean and sd of ``exp(x_j)`` (Poisson rate per unit exposure) or ``sigmoid(x_j)``
  (binomial failure probability).
- Credible intervals: equal-tailed, from the weighted empirical quantile function
  ``Q(u) = x_(k)``, the smallest sorted particle whose cumulative weight reaches ``u``; the
  scales are monotone maps of ``x``, so the interval maps through them. The particles are
  bucketed once per row and only the bucket holding ``Q(u)`` is sorted (:mod:`.quantiles`).
- One row's weights, moments, ESS and extent come from three passes (:func:`row_stats`).
- Predictive quantiles of the next observation under the current particles (no propagation,
  observation noise included): roots of the mixture CDF ``F(y) = sum_j w_j F_j(y)``
  (:mod:`.quantiles`): continuous, ``|F(q) - u| <= 1.3e-13`` by safeguarded Newton / Halley
  steps (Normal noise: ``F`` from a Taylor expansion on bins of the particles, within 2.3e-14
  of the exact ``F``, so one row's quantiles cost about one pass over its particles); counts
  (:mod:`.counts`), the smallest ``k`` with ``F(k) >= u`` by an exact search from a normal
  guess.
- KL: each particle posterior is moment-matched to a Gaussian on the latent state and the
  Gaussians' KL is returned. It is an estimator of KL between the filtering distributions,
  exact when they are Gaussian (e.g. the local-level model with Normal noise), biased by
  Monte Carlo error of the moments (O(1/ESS)) and by non-Gaussian shape otherwise.
"""

from __future__ import annotations

import math

import numpy as np

from bayestream.models._jit import inline, kernel
from bayestream.models.particle.codes import (
    MODEL_BINOMIAL_RATE,
    MODEL_LOCAL_LEVEL,
    MODEL_POISSON_RATE,
    OBS_NORMAL,
)
from bayestream.models.particle.counts import count_quantile
from bayestream.models.particle.observation import log_sigmoid
from bayestream.models.particle.quantiles import (
    TERMS,
    continuous_quantile,
    expand,
    extent,
    group,
    grouped_quantile,
)
from bayestream.models.particle.vmath import exp as vexp


def gaussian_kl(m_p: float, v_p: float, m_q: float, v_q: float) -> float:
    """KL(N(m_p, v_p) || N(m_q, v_q)) = 1/2 [ln(v_q/v_p) + (v_p + (m_p - m_q)^2)/v_q - 1]."""
    return 0.5 * (math.log(v_q / v_p) + (v_p + (m_p - m_q) ** 2) / v_q - 1.0)


@inline
def weights(lw: np.ndarray, out: np.ndarray) -> None:
    """Normalised weights exp(lw_j) / sum exp(lw) into ``out``."""
    top = -math.inf
    for j in range(lw.shape[0]):
        top = max(top, lw[j])
    total = 0.0
    for j in range(lw.shape[0]):
        out[j] = vexp(lw[j] - top)
    for j in range(lw.shape[0]):
        total += out[j]
    for j in range(lw.shape[0]):
        out[j] /= total


@inline
def moments(x: np.ndarray, w: np.ndarray) -> tuple[float, float]:
    """Weighted mean and variance (two passes)."""
    m = 0.0
    for j in range(x.shape[0]):
        m += w[j] * x[j]
    v = 0.0
    for j in range(x.shape[0]):
        v += w[j] * (x[j] - m) ** 2
    return m, v


@inline
def row_stats(
    x: np.ndarray, lw: np.ndarray, w: np.ndarray
) -> tuple[float, float, float, float, float, float, float]:
    """Normalised weights into ``w``, and the particles' weighted mean, variance, ESS,
    smallest and largest value, third and fourth cumulants: three passes, each sum as four
    interleaved partial sums (a chain of dependent additions per pass would cost more than
    the arithmetic)."""
    p = x.shape[0]
    q = p - p % 4
    t0 = t1 = t2 = t3 = h0 = h1 = h2 = h3 = -math.inf
    l0 = l1 = l2 = l3 = math.inf
    for j in range(0, q, 4):
        t0, t1 = max(t0, lw[j]), max(t1, lw[j + 1])
        t2, t3 = max(t2, lw[j + 2]), max(t3, lw[j + 3])
        l0, l1, l2, l3 = min(l0, x[j]), min(l1, x[j + 1]), min(l2, x[j + 2]), min(l3, x[j + 3])
        h0, h1, h2, h3 = max(h0, x[j]), max(h1, x[j + 1]), max(h2, x[j + 2]), max(h3, x[j + 3])
    for j in range(q, p):
        t0, l0, h0 = max(t0, lw[j]), min(l0, x[j]), max(h0, x[j])
    top = max(max(t0, t1), max(t2, t3))
    for j in range(p):
        w[j] = vexp(lw[j] - top)
    a0 = a1 = a2 = a3 = b0 = b1 = b2 = b3 = c0 = c1 = c2 = c3 = 0.0
    for j in range(0, q, 4):
        a0, a1, a2, a3 = a0 + w[j], a1 + w[j + 1], a2 + w[j + 2], a3 + w[j + 3]
        b0, b1 = b0 + w[j] * x[j], b1 + w[j + 1] * x[j + 1]
        b2, b3 = b2 + w[j + 2] * x[j + 2], b3 + w[j + 3] * x[j + 3]
        c0, c1 = c0 + w[j] * w[j], c1 + w[j + 1] * w[j + 1]
        c2, c3 = c2 + w[j + 2] * w[j + 2], c3 + w[j + 3] * w[j + 3]
    for j in range(q, p):
        a0, b0, c0 = a0 + w[j], b0 + w[j] * x[j], c0 + w[j] * w[j]
    total = (a0 + a1) + (a2 + a3)
    inv = 1.0 / total
    for j in range(p):
        w[j] *= inv
    m = ((b0 + b1) + (b2 + b3)) * inv
    ess = total * total / ((c0 + c1) + (c2 + c3))
    a0 = a1 = a2 = a3 = b0 = b1 = b2 = b3 = c0 = c1 = c2 = c3 = 0.0
    for j in range(0, q, 4):
        d0, d1, d2, d3 = x[j] - m, x[j + 1] - m, x[j + 2] - m, x[j + 3] - m
        s0, s1 = w[j] * d0 * d0, w[j + 1] * d1 * d1
        s2, s3 = w[j + 2] * d2 * d2, w[j + 3] * d3 * d3
        a0, a1, a2, a3 = a0 + s0, a1 + s1, a2 + s2, a3 + s3
        b0, b1, b2, b3 = b0 + s0 * d0, b1 + s1 * d1, b2 + s2 * d2, b3 + s3 * d3
        c0, c1 = c0 + s0 * d0 * d0, c1 + s1 * d1 * d1
        c2, c3 = c2 + s2 * d2 * d2, c3 + s3 * d3 * d3
    for j in range(q, p):
        d0 = x[j] - m
        s0 = w[j] * d0 * d0
        a0, b0, c0 = a0 + s0, b0 + s0 * d0, c0 + s0 * d0 * d0
    v = (a0 + a1) + (a2 + a3)
    k3 = (b0 + b1) + (b2 + b3)
    k4 = ((c0 + c1) + (c2 + c3)) - 3.0 * v * v
    lo_x = min(min(l0, l1), min(l2, l3))
    hi_x = max(max(h0, h1), max(h2, h3))
    return m, v, ess, lo_x, hi_x, k3, k4


@inline
def _natural(v: float, model: int) -> float:
    if model == MODEL_POISSON_RATE:
        return math.exp(v)
    if model == MODEL_BINOMIAL_RATE:
        return math.exp(log_sigmoid(v))
    return v


@inline
def predictive_interval(
    x: np.ndarray, lw: np.ndarray, w: np.ndarray, upper: float, model: int, obs: int, nu: float,
    scale: float, size: float,
) -> tuple[float, float]:  # fmt: skip
    """The central interval (probabilities 1 - upper, upper) of the predictive mixture of
    particles ``x`` with log weights ``lw``, for an observation of ``size``; ``w`` is scratch.
    The mixture CDF is evaluated directly (:mod:`.quantiles`)."""
    weights(lw, w)
    if model != MODEL_LOCAL_LEVEL:
        return (
            count_quantile(1.0 - upper, x, w, model, size),
            count_quantile(upper, x, w, model, size),
        )
    lo_x, hi_x = extent(x)
    m, v = moments(x, w)
    none = np.empty((0, 0))
    direct = none.shape[0]  # no bins: F evaluated directly
    lo = continuous_quantile(
        1.0 - upper, x, w, lo_x, hi_x, m, v, 0.0, 0.0, obs, nu, scale, none, direct, 0.0
    )
    hi = continuous_quantile(
        upper, x, w, lo_x, hi_x, m, v, 0.0, 0.0, obs, nu, scale, none, direct, 0.0
    )
    return lo, hi


@kernel
def summarize(
    params: np.ndarray,
    obs_size: np.ndarray,
    n_particles: int,
    model: int,
    obs: int,
    nu: float,
    r: float,
    slots: np.ndarray,
    levels: np.ndarray,
    quantiles: np.ndarray,
    out_mean: np.ndarray,
    out_sd: np.ndarray,
    out_lo: np.ndarray,
    out_hi: np.ndarray,
    out_q: np.ndarray,
    out_latent_mean: np.ndarray,
    out_latent_sd: np.ndarray,
    out_ess: np.ndarray,
) -> None:
    """Summaries of rows ``slots`` (see the module docstring). Shapes: out_mean, out_sd,
    out_latent_mean, out_latent_sd, out_ess ``[m]``; out_lo, out_hi ``[m, L]``; out_q
    ``[m, Q]``."""
    p = n_particles
    w = np.empty(p)
    nat = np.empty(p)
    buckets = max(p // 4, 1)
    start = np.empty(buckets + 1, dtype=np.int64)
    cursor = np.empty(buckets, dtype=np.int64)
    slot = np.empty(p, dtype=np.int64)
    bucket_w = np.empty(buckets)
    xs = np.empty(p)
    ws = np.empty(p)
    bins = np.empty((buckets, TERMS + 1))
    scale = math.sqrt(r)
    normal = model == MODEL_LOCAL_LEVEL and obs == OBS_NORMAL
    for i in range(slots.shape[0]):
        s = slots[i]
        x = params[s, 0:p]
        m, v, ess, lo_x, hi_x, k3, k4 = row_stats(x, params[s, p : 2 * p], w)
        out_latent_mean[i] = m
        out_latent_sd[i] = math.sqrt(v)
        out_ess[i] = ess
        if model == MODEL_LOCAL_LEVEL:
            out_mean[i] = m
            out_sd[i] = math.sqrt(v)
        else:
            for j in range(p):
                nat[j] = _natural(x[j], model)
            m_nat, v_nat = moments(nat, w)
            out_mean[i] = m_nat
            out_sd[i] = math.sqrt(v_nat)
        if levels.shape[0] or (normal and quantiles.shape[0]):
            group(x, w, lo_x, hi_x, start, cursor, bucket_w, xs, ws, slot)
        for k in range(levels.shape[0]):
            q_lo = grouped_quantile(0.5 - 0.5 * levels[k], xs, ws, start, bucket_w)
            q_hi = grouped_quantile(0.5 + 0.5 * levels[k], xs, ws, start, bucket_w)
            out_lo[i, k] = _natural(q_lo, model)
            out_hi[i, k] = _natural(q_hi, model)
        if quantiles.shape[0] == 0:
            continue
        if model != MODEL_LOCAL_LEVEL:
            for k in range(quantiles.shape[0]):
                out_q[i, k] = count_quantile(quantiles[k], x, w, model, obs_size[s])
            continue
        nb = 0
        width = 0.0
        if normal:
            nb, width = expand(xs, ws, start, lo_x, hi_x, scale, bins)
        else:  # Student-t noise: the first guess is the moment-matched Normal
            k3 = k4 = 0.0
        for k in range(quantiles.shape[0]):
            out_q[i, k] = continuous_quantile(
                quantiles[k], x, w, lo_x, hi_x, m, v, k3, k4, obs, nu, scale, bins, nb, width
            )


@kernel
def kl(row_p: np.ndarray, row_q: np.ndarray, n_particles: int) -> float:
    """Estimated KL(p || q) between two particle posteriors (rows of ``params``): the KL of
    their moment-matched Gaussians on the latent state (see the module docstring). Variances
    are floored at the smallest normal float, so collapsed particle sets give finite values."""
    p = n_particles
    w = np.empty(p)
    weights(row_p[p : 2 * p], w)
    m_p, v_p = moments(row_p[0:p], w)
    weights(row_q[p : 2 * p], w)
    m_q, v_q = moments(row_q[0:p], w)
    tiny = 2.2250738585072014e-308
    v_p = max(v_p, tiny)
    v_q = max(v_q, tiny)
    return 0.5 * (math.log(v_q / v_p) + (v_p + (m_p - m_q) ** 2) / v_q - 1.0)
