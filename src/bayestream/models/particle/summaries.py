r"""Summaries of particle posteriors and the KL estimator between two of them.

Weights are ``w_j = exp(lw_j) / sum exp(lw)`` (renormalised here, so a row that has seen no
event, all zeros, reads as equal weights on particles at 0).

- Latent mean and sd: ``m = sum w_j x_j``, ``sd^2 = sum w_j (x_j - m)^2``.
- ``mean``/``sd`` on the model's natural scale: the latent figures for the local level, the
  weighted mean and sd of ``exp(x_j)`` (Poisson rate per unit exposure) or ``sigmoid(x_j)``
  (binomial failure probability).
- Credible intervals: equal-tailed, from the weighted empirical quantile function
  ``Q(u) = x_(k)``, the smallest sorted particle whose cumulative weight reaches ``u``; the
  scales are monotone maps of ``x``, so the interval maps through them. One sort per row.
- Predictive quantiles of the next observation under the current particles (no propagation,
  observation noise included): the mixture CDF ``F(y) = sum_j w_j F_j(y)`` is inverted by
  bisection. Continuous: the u-quantile lies between the smallest and largest component
  u-quantiles (``x_min + scale t_u`` and ``x_max + scale t_u``), and at most ``MAX_STEPS``
  halvings follow; counts: integer bisection on ``[0, n]`` (binomial) or on a doubling bracket
  (Poisson). Cost per row and quantile: at most ~``MAX_STEPS`` (continuous) or ~2 x 64
  (counts) evaluations of ``F``, each ``P`` component CDFs.
- KL: each particle posterior is moment-matched to a Gaussian on the latent state and the
  Gaussians' KL is returned. It is an estimator of KL between the filtering distributions,
  exact when they are Gaussian (e.g. the local-level model with Normal noise), biased by
  Monte Carlo error of the moments (O(1/ESS)) and by non-Gaussian shape otherwise.
"""

from __future__ import annotations

import math

import numpy as np

from bayestream.models._jit import inline, kernel
from bayestream.models._special import ndtr, ndtri, stdtr, stdtrit
from bayestream.models.particle.codes import (
    MODEL_BINOMIAL_RATE,
    MODEL_LOCAL_LEVEL,
    MODEL_POISSON_RATE,
    OBS_NORMAL,
)
from bayestream.models.particle.observation import binomial_cdf, log_sigmoid, poisson_cdf

MAX_STEPS = 64


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
        out[j] = math.exp(lw[j] - top)
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
def _natural(v: float, model: int) -> float:
    if model == MODEL_POISSON_RATE:
        return math.exp(v)
    if model == MODEL_BINOMIAL_RATE:
        return math.exp(log_sigmoid(v))
    return v


@inline
def _weighted_quantile(x: np.ndarray, w: np.ndarray, order: np.ndarray, u: float) -> float:
    cum = 0.0
    for k in range(order.shape[0]):
        cum += w[order[k]]
        if cum >= u:
            return x[order[k]]  # type: ignore[no-any-return]
    return x[order[order.shape[0] - 1]]  # type: ignore[no-any-return]


@inline
def _mixture_cdf(
    v: float, x: np.ndarray, w: np.ndarray, model: int, obs: int, nu: float, scale: float,
    size: float,
) -> float:  # fmt: skip
    f = 0.0
    for j in range(x.shape[0]):
        if model == MODEL_LOCAL_LEVEL:
            z = (v - x[j]) / scale
            f += w[j] * (ndtr(z) if obs == OBS_NORMAL else stdtr(nu, z))
        elif model == MODEL_POISSON_RATE:
            f += w[j] * poisson_cdf(v, size * math.exp(x[j]))
        else:
            f += w[j] * binomial_cdf(v, size, log_sigmoid(x[j]))
    return f


@inline
def predictive_quantile(
    u: float, x: np.ndarray, w: np.ndarray, lo_x: float, hi_x: float, model: int, obs: int,
    nu: float, scale: float, size: float,
) -> float:  # fmt: skip
    if model == MODEL_LOCAL_LEVEL:
        if not 0.0 < u < 1.0:
            return -math.inf if u <= 0.0 else math.inf
        t = ndtri(u) if obs == OBS_NORMAL else stdtrit(nu, u)
        lo = lo_x + scale * t  # F(lo) <= u <= F(hi)
        hi = hi_x + scale * t
        for _ in range(MAX_STEPS):
            mid = 0.5 * (lo + hi)
            if not lo < mid < hi:
                break
            if _mixture_cdf(mid, x, w, model, obs, nu, scale, size) >= u:
                hi = mid
            else:
                lo = mid
        return 0.5 * (lo + hi)
    if not size >= 0.0:
        return math.nan
    if _mixture_cdf(0.0, x, w, model, obs, nu, scale, size) >= u:
        return 0.0
    lo = 0.0  # invariant: F(lo) < u <= F(hi)
    if model == MODEL_BINOMIAL_RATE:
        hi = size
    else:
        hi = max(1.0, math.ceil(size * math.exp(hi_x)))
        while _mixture_cdf(hi, x, w, model, obs, nu, scale, size) < u:
            lo = hi
            hi *= 2.0
            if hi > 1e18:
                return math.inf
    while hi - lo > 1.0:
        mid = float(math.floor(0.5 * (lo + hi)))
        if not lo < mid < hi:  # no double between them (beyond 2**53)
            break
        if _mixture_cdf(mid, x, w, model, obs, nu, scale, size) >= u:
            hi = mid
        else:
            lo = mid
    return hi


@inline
def predictive_interval(
    x: np.ndarray, lw: np.ndarray, w: np.ndarray, upper: float, model: int, obs: int, nu: float,
    scale: float, size: float,
) -> tuple[float, float]:  # fmt: skip
    """The central interval (probabilities 1 - upper, upper) of the predictive mixture of
    particles ``x`` with log weights ``lw``, for an observation of ``size``; ``w`` is scratch."""
    weights(lw, w)
    lo_x, hi_x = math.inf, -math.inf
    for j in range(x.shape[0]):
        lo_x = min(lo_x, x[j])
        hi_x = max(hi_x, x[j])
    lo = predictive_quantile(1.0 - upper, x, w, lo_x, hi_x, model, obs, nu, scale, size)
    hi = predictive_quantile(upper, x, w, lo_x, hi_x, model, obs, nu, scale, size)
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
    scale = math.sqrt(r)
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
        order = np.argsort(x)
        for k in range(levels.shape[0]):
            out_lo[i, k] = _natural(_weighted_quantile(x, w, order, 0.5 - 0.5 * levels[k]), model)
            out_hi[i, k] = _natural(_weighted_quantile(x, w, order, 0.5 + 0.5 * levels[k]), model)
        lo_x = x[order[0]]
        hi_x = x[order[p - 1]]
        size = obs_size[s]
        for k in range(quantiles.shape[0]):
            out_q[i, k] = predictive_quantile(
                quantiles[k], x, w, lo_x, hi_x, model, obs, nu, scale, size
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
