r"""Normal-Gamma: a real-valued observation with unknown mean and precision.

Model: x | mu, tau ~ Normal(mu, 1/tau); (mu, tau) ~ NormalGamma(mu0, kappa, alpha, beta), i.e.
tau ~ Gamma(alpha, rate=beta) and mu | tau ~ Normal(mu0, 1/(kappa tau)).

Update with one observation x (Murphy 2007, "Conjugate Bayesian analysis of the Gaussian"):

    mu'    = (kappa mu + x) / (kappa + 1)
    kappa' = kappa + 1
    alpha' = alpha + 1/2
    beta'  = beta + kappa (x - mu)^2 / (2 (kappa + 1))

Posterior predictive of the next x: Student-t with 2 alpha degrees of freedom, location mu and
scale^2 = beta (kappa + 1) / (alpha kappa). Marginal posterior of mu: Student-t with 2 alpha
degrees of freedom, location mu, scale^2 = beta / (alpha kappa).

Forgetting is linear in the natural parameters (kappa, kappa mu, alpha, beta + kappa mu^2 / 2),
so the decayed posterior stays proper; written in the usual parameters with weights
w1 = d kappa and w0 = (1 - d) kappa0:

    kappa' = w1 + w0,  mu' = (w1 mu + w0 mu0) / kappa',  alpha' = d alpha + (1 - d) alpha0
    beta'  = d beta + (1 - d) beta0 + (w1 w0 / kappa') (mu - mu0)^2 / 2

Parameters in state rows: ``[mu, kappa, alpha, beta]``.
"""

from __future__ import annotations

import math

import numpy as np

from bayestream.models._divergence import kl_normal_gamma
from bayestream.models._drift import WINDOW_CLIP
from bayestream.models._jit import inline, kernel
from bayestream.models._outlier import t_log_ratio
from bayestream.models._skeleton import make_update
from bayestream.models._special import stdtr, stdtrit

PARAM_NAMES = ("mu", "kappa", "alpha", "beta")
WIDTH = 4

kl = kl_normal_gamma  # closed-form KL between two posteriors (drift detection)


# --- pure formulas -------------------------------------------------------------------------


def posterior(prior: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Closed-form batch posterior ``[mu, kappa, alpha, beta]`` after observing all of ``x``."""
    mu0, kappa0, alpha0, beta0 = (float(v) for v in prior)
    n = x.shape[0]
    if n == 0:
        return np.array([mu0, kappa0, alpha0, beta0])
    mean = float(np.mean(x))
    ss = float(np.sum((x - mean) ** 2))
    kappa = kappa0 + n
    mu = (kappa0 * mu0 + n * mean) / kappa
    alpha = alpha0 + n / 2.0
    beta = beta0 + 0.5 * ss + kappa0 * n * (mean - mu0) ** 2 / (2.0 * kappa)
    return np.array([mu, kappa, alpha, beta])


def decayed(params: np.ndarray, prior: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Rows ``[mu, kappa, alpha, beta]`` moved toward the prior by ``d`` (one per row), the
    forgetting of the module docstring (:func:`forget`), vectorised: ``d = 1`` gives the rows
    back unchanged."""
    mu, kappa, alpha, beta = params.T
    mu0, kappa0, alpha0, beta0 = prior
    w1 = d * kappa
    w0 = (1.0 - d) * kappa0
    k_new = w1 + w0
    out = np.empty_like(params)
    out[:, 0] = (w1 * mu + w0 * mu0) / k_new
    out[:, 1] = k_new
    out[:, 2] = d * alpha + (1.0 - d) * alpha0
    out[:, 3] = d * beta + (1.0 - d) * beta0 + 0.5 * (w1 * w0 / k_new) * (mu - mu0) ** 2
    keep = d == 1.0
    out[keep] = params[keep]
    return out


@kernel
def predictive_t(mu: float, kappa: float, alpha: float, beta: float) -> tuple[float, float, float]:
    """(df, loc, scale) of the Student-t posterior predictive."""
    return 2.0 * alpha, mu, math.sqrt(beta * (kappa + 1.0) / (alpha * kappa))


@inline
def t_tail(df: float, z: float, side: int) -> float:
    """Tail probability of a standard Student-t at ``z``: one CDF evaluation per side
    (upper P(T >= z) = F(-z), lower F(z), two-sided 2 F(-|z|) capped at 1)."""
    if side == 0:
        return stdtr(df, -z)
    if side == 1:
        return stdtr(df, z)
    return min(2.0 * stdtr(df, -abs(z)), 1.0)


@inline
def t_pit(tail: float, z: float, side: int) -> float:
    """The predictive CDF at the observation, recovered from its tail probability."""
    if side == 0:
        return 1.0 - tail
    if side == 1:
        return tail
    return 0.5 * tail if z < 0.0 else 1.0 - 0.5 * tail


# --- per-event steps (the update kernel is the shared skeleton, :mod:`._skeleton`) ---------


@inline
def forget(theta: np.ndarray, prior: np.ndarray, d: float) -> None:
    """Move ``theta`` toward the prior by ``d`` < 1, linearly in the natural parameters (module
    docstring)."""
    mu0, kappa0, alpha0, beta0 = prior[0], prior[1], prior[2], prior[3]
    mu, kappa, alpha, beta = theta[0], theta[1], theta[2], theta[3]
    w1 = d * kappa
    w0 = (1.0 - d) * kappa0
    k_new = w1 + w0
    theta[3] = d * beta + (1.0 - d) * beta0 + 0.5 * (w1 * w0 / k_new) * (mu - mu0) ** 2
    theta[0] = (w1 * mu + w0 * mu0) / k_new
    theta[1] = k_new
    theta[2] = d * alpha + (1.0 - d) * alpha0


@inline
def score(
    theta: np.ndarray, x: float, size: float, side: int, widen: float
) -> tuple[float, float, float, float]:
    """(tail, PIT, log q/p, window value) of ``x`` under the Student-t predictive; the outlier
    component is the same t widened ``widen`` times; drift windows see ``x`` winsorised at
    ``WINDOW_CLIP`` predictive scales. ``size`` is not used (a real value has none)."""
    df, loc, scale = predictive_t(theta[0], theta[1], theta[2], theta[3])
    z = (x - loc) / scale
    tail = t_tail(df, z, side)
    window_x = x
    if abs(z) > WINDOW_CLIP:
        window_x = loc + scale * math.copysign(WINDOW_CLIP, z)
    return tail, t_pit(tail, z, side), t_log_ratio(z, df, widen), window_x


@inline
def interval(theta: np.ndarray, size: float, upper: float) -> tuple[float, float]:
    """The central predictive interval whose upper end has probability ``upper``."""
    df, loc, scale = predictive_t(theta[0], theta[1], theta[2], theta[3])
    half = scale * stdtrit(df, upper)
    return loc - half, loc + half


@inline
def observe(theta: np.ndarray, x: float, size: float, w: float) -> None:
    """The update of the module docstring with the observation counted ``w`` times."""
    mu, kappa, alpha, beta = theta[0], theta[1], theta[2], theta[3]
    dev = x - mu
    theta[0] = mu + w * dev / (kappa + w)
    theta[3] = beta + kappa * w * dev * dev / (2.0 * (kappa + w))
    theta[1] = kappa + w
    theta[2] = alpha + 0.5 * w


@inline
def intervene(theta: np.ndarray, prior: np.ndarray, widen: float) -> None:
    """An accepted shift of level (West & Harrison's intervention): the level's variance
    ``V / kappa`` grows by ``widen^2 V`` (a shift as large as an outlier is wide), so that
    ``1 / kappa' = 1 / kappa + widen^2``; the variance estimate (alpha, beta) is kept."""
    theta[1] = theta[1] / (1.0 + theta[1] * widen * widen)


update = make_update("normal_gamma", forget, score, interval, observe, intervene=intervene)
"""Apply a batch's events in order (:func:`bayestream.models._skeleton._update`)."""


# --- batch kernels -------------------------------------------------------------------------


@kernel
def summarize(
    params: np.ndarray,
    obs_size: np.ndarray,
    slots: np.ndarray,
    levels: np.ndarray,
    quantiles: np.ndarray,
    out_mean: np.ndarray,
    out_sd: np.ndarray,
    out_lo: np.ndarray,
    out_hi: np.ndarray,
    out_q: np.ndarray,
) -> None:
    """Summaries of the marginal posterior of mu and of the predictive, per row in ``slots``.

    Shapes: out_mean, out_sd ``[m, 1]``; out_lo, out_hi ``[m, L, 1]``; out_q ``[m, Q]``.
    sd is NaN while alpha <= 1 (the t marginal has no finite variance). Both are Student-t
    with the same degrees of freedom, so each distinct probability costs one ``stdtrit``:
    the t quantile is odd about 1/2 (t(1 - p) = -t(p), t(1/2) = 0) and an interval's upper
    probability often equals a published quantile (a 0.9 interval and the 0.95 quantile).
    """
    n_levels = levels.shape[0]
    n_q = quantiles.shape[0]
    upper = np.empty(n_levels + n_q)  # distinct probabilities > 1/2 needed per row
    level_at = np.full(n_levels, -1, dtype=np.int64)  # -1: 0.5 + 0.5 level rounds to 1/2
    quantile_at = np.full(n_q, -1, dtype=np.int64)  # -1: the median, t = 0
    n_upper = 0
    for j in range(n_levels + n_q):
        p = 0.5 + 0.5 * levels[j] if j < n_levels else quantiles[j - n_levels]
        if p == 0.5:
            continue
        p = max(p, 1.0 - p)
        at = -1
        for k in range(n_upper):
            if upper[k] == p:
                at = k
        if at < 0:
            upper[n_upper] = p
            at = n_upper
            n_upper += 1
        if j < n_levels:
            level_at[j] = at
        else:
            quantile_at[j - n_levels] = at
    t = np.empty(n_upper)
    for r in range(slots.shape[0]):
        s = slots[r]
        mu, kappa, alpha, beta = params[s, 0], params[s, 1], params[s, 2], params[s, 3]
        df = 2.0 * alpha
        out_mean[r, 0] = mu
        out_sd[r, 0] = math.sqrt(beta / (kappa * (alpha - 1.0))) if alpha > 1.0 else np.nan
        for k in range(n_upper):
            t[k] = stdtrit(df, upper[k])
        post_scale = math.sqrt(beta / (alpha * kappa))
        for j in range(n_levels):
            # a level below about 1.1e-16 left level_at[j] unset (np.empty) and t was read
            # at a garbage index (a segfault); its interval is the point mu
            half = t[level_at[j]] * post_scale if level_at[j] >= 0 else 0.0
            out_lo[r, j, 0] = mu - half
            out_hi[r, j, 0] = mu + half
        _, loc, scale = predictive_t(mu, kappa, alpha, beta)
        for j in range(n_q):
            at = quantile_at[j]
            if at < 0:
                out_q[r, j] = loc
            elif quantiles[j] > 0.5:
                out_q[r, j] = loc + scale * t[at]
            else:
                out_q[r, j] = loc - scale * t[at]
