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
from bayestream.models._drift import WINDOW_CLIP, drift_step, reset_posterior
from bayestream.models._jit import inline, kernel
from bayestream.models._outlier import mixture_probability, t_log_ratio, wants_interval
from bayestream.models._protocol import (
    OUT_PIT,
    OUT_PRED_HI,
    OUT_PRED_LO,
    OUT_PROB,
    OUT_TAIL,
    S_DRIFT,
    S_EXTRA,
    S_IVL_UPPER,
    S_OUTLIER_RATE,
    S_OUTLIER_SCALE,
    S_ROBUST,
    S_ROBUST_MIN,
    S_RUN_RESET,
)
from bayestream.models._special import stdtr, stdtrit
from bayestream.models._stream import APPLIED, LATE, begin_event, outlier_run

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


# --- batch kernels -------------------------------------------------------------------------


@kernel
def update(
    params: np.ndarray,
    last_ts: np.ndarray,
    n_eff: np.ndarray,
    obs_size: np.ndarray,
    prior: np.ndarray,
    half_life: float,
    per_event: bool,
    side: int,
    max_lateness: float,
    settings: np.ndarray,
    slots: np.ndarray,
    ts: np.ndarray,
    x: np.ndarray,
    size: np.ndarray,
    expire_before: np.ndarray,
    out: np.ndarray,
    out_status: np.ndarray,
) -> None:
    """Apply events ``i`` (in order) to rows ``slots[i]``. Per event: forgetting, then, on the
    posterior at the event's time, its predictive tail probability, PIT and anomaly
    probability (``out[i]``, columns of :mod:`._protocol`), the drift windows, then the update
    with weight 1 - P(outlier) (1 without ``robust``). ``out_status[i]``: APPLIED or LATE.
    ``size`` is unused (kept for a common signature)."""
    mu0, kappa0, alpha0, beta0 = prior[0], prior[1], prior[2], prior[3]
    robust = settings[S_ROBUST] == 1.0
    robust_min = settings[S_ROBUST_MIN]
    run_reset = settings[S_RUN_RESET]
    rate = settings[S_OUTLIER_RATE]
    widen = settings[S_OUTLIER_SCALE]
    extra = int(settings[S_EXTRA])
    drift = settings[S_DRIFT] == 1.0
    sw = 3
    cur_post, ref_post, scratch = np.empty(WIDTH + sw), np.empty(WIDTH + sw), np.empty(sw)
    for i in range(slots.shape[0]):
        s = slots[i]
        fresh = not last_ts[s] >= expire_before[i]  # never seen, or idle past its TTL
        d = begin_event(
            params,
            last_ts,
            n_eff,
            prior,
            s,
            ts[i],
            half_life,
            per_event,
            max_lateness,
            expire_before[i],
        )
        if d < 0.0:
            out_status[i] = LATE
            continue
        mu, kappa, alpha, beta = params[s, 0], params[s, 1], params[s, 2], params[s, 3]
        if d != 1.0:
            w1 = d * kappa
            w0 = (1.0 - d) * kappa0
            k_new = w1 + w0
            beta = d * beta + (1.0 - d) * beta0 + 0.5 * (w1 * w0 / k_new) * (mu - mu0) ** 2
            mu = (w1 * mu + w0 * mu0) / k_new
            kappa = k_new
            alpha = d * alpha + (1.0 - d) * alpha0
        df, loc, scale = predictive_t(mu, kappa, alpha, beta)
        z = (x[i] - loc) / scale
        tail = t_tail(df, z, side)
        prob = mixture_probability(t_log_ratio(z, df, widen), rate)
        out[i, OUT_TAIL] = tail
        out[i, OUT_PIT] = t_pit(tail, z, side)
        out[i, OUT_PROB] = prob
        if wants_interval(settings, tail, prob):
            half = scale * stdtrit(df, settings[S_IVL_UPPER])
            out[i, OUT_PRED_LO] = loc - half
            out[i, OUT_PRED_HI] = loc + half
        params[s, extra] = prob
        if outlier_run(params, n_eff, prior, s, extra, prob, run_reset):
            mu, kappa, alpha, beta = mu0, kappa0, alpha0, beta0  # a regime change
        out_status[i] = APPLIED
        obs_size[s] = size[i]
        row = params[s]
        xw = x[i]  # what the drift windows see: with robust, winsorised at WINDOW_CLIP scales
        if robust and abs(z) > WINDOW_CLIP:
            xw = loc + scale * math.copysign(WINDOW_CLIP, z)
        if drift and drift_step(row, settings, fresh, ts[i], xw, 1.0, out, i, cur_post, ref_post):
            n_eff[s] = reset_posterior(row, settings, prior, scratch)
            continue
        w = 1.0 - prob if robust and n_eff[s] >= robust_min else 1.0
        dev = x[i] - mu
        params[s, 0] = mu + w * dev / (kappa + w)
        params[s, 3] = beta + kappa * w * dev * dev / (2.0 * (kappa + w))
        params[s, 1] = kappa + w
        params[s, 2] = alpha + 0.5 * w
        n_eff[s] += w


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
    level_at = np.empty(n_levels, dtype=np.int64)
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
            half = t[level_at[j]] * post_scale
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
