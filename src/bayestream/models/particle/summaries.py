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
- Predictive quantiles of the next observation under the current particles (no propagation,
  observation noise included): roots of the mixture CDF ``F(y) = sum_j w_j F_j(y)``
  (:mod:`.quantiles`): continuous, ``|F(q) - u| <= 1e-13`` by a safeguarded Newton search
  (Normal noise: ``F`` from a Taylor expansion on bins of the particles, within 2.3e-14 of
  the exact ``F``, so one row's quantiles cost about one pass over its particles); counts, the
  smallest ``k`` with ``F(k) >= u`` by an exact search from a normal guess.
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
from bayestream.models.particle.observation import log_sigmoid
from bayestream.models.particle.quantiles import (
    TERMS,
    continuous_quantile,
    count_quantile,
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
def _cumulants(x: np.ndarray, w: np.ndarray, m: float, v: float) -> tuple[float, float]:
    """Third and fourth weighted cumulants: mu_3 and mu_4 - 3 v^2 (central moments)."""
    m3 = 0.0
    m4 = 0.0
    for j in range(x.shape[0]):
        d = x[j] - m
        d2 = d * d
        m3 += w[j] * d2 * d
        m4 += w[j] * d2 * d2
    return m3, m4 - 3.0 * v * v


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
        weights(params[s, p : 2 * p], w)
        m, v = moments(x, w)
        out_latent_mean[i] = m
        out_latent_sd[i] = math.sqrt(v)
        squares = 0.0
        for j in range(p):
            squares += w[j] * w[j]
        out_ess[i] = 1.0 / squares
        if model == MODEL_LOCAL_LEVEL:
            out_mean[i] = m
            out_sd[i] = math.sqrt(v)
        else:
            for j in range(p):
                nat[j] = _natural(x[j], model)
            m_nat, v_nat = moments(nat, w)
            out_mean[i] = m_nat
            out_sd[i] = math.sqrt(v_nat)
        lo_x, hi_x = extent(x)
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
        k3 = 0.0
        k4 = 0.0
        if normal:
            nb, width = expand(xs, ws, start, lo_x, hi_x, scale, bins)
            k3, k4 = _cumulants(x, w, m, v)
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
