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

from bayestream.models._jit import inline, kernel
from bayestream.models._special import gammaln, psi, stdtr, stdtrit
from bayestream.models._stream import APPLIED, LATE, begin_event

PARAM_NAMES = ("mu", "kappa", "alpha", "beta")
WIDTH = 4


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


@kernel
def kl(p: np.ndarray, q: np.ndarray) -> float:
    """KL(NG(p) || NG(q)) in closed form.

    KL = KL_Gamma(alpha_p, beta_p || alpha_q, beta_q)
         + 1/2 [kappa_q/kappa_p - 1 - ln(kappa_q/kappa_p) + kappa_q (alpha_p/beta_p)(mu_p-mu_q)^2]
    """
    mu1, k1, a1, b1 = p[0], p[1], p[2], p[3]
    mu2, k2, a2, b2 = q[0], q[1], q[2], q[3]
    gamma_part = (
        (a1 - a2) * psi(a1)
        - gammaln(a1)
        + gammaln(a2)
        + a2 * (math.log(b1) - math.log(b2))
        + a1 * (b2 - b1) / b1
    )
    ratio = k2 / k1
    normal_part = 0.5 * (ratio - 1.0 - math.log(ratio) + k2 * (a1 / b1) * (mu1 - mu2) ** 2)
    return gamma_part + normal_part  # type: ignore[no-any-return]


@inline
def t_tail(df: float, z: float, side: int) -> float:
    """Tail probability of a standard Student-t at ``z``: one CDF evaluation per side
    (upper P(T >= z) = F(-z), lower F(z), two-sided 2 F(-|z|) capped at 1)."""
    if side == 0:
        return stdtr(df, -z)
    if side == 1:
        return stdtr(df, z)
    return min(2.0 * stdtr(df, -abs(z)), 1.0)


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
    slots: np.ndarray,
    ts: np.ndarray,
    x: np.ndarray,
    size: np.ndarray,
    expire_before: np.ndarray,
    out_tail: np.ndarray,
    out_status: np.ndarray,
) -> None:
    """Apply events ``i`` (in order) to rows ``slots[i]``, writing each event's predictive tail
    probability before its update into ``out_tail[i]`` and APPLIED / LATE into
    ``out_status[i]``. ``size`` is unused (kept for a common signature)."""
    mu0, kappa0, alpha0, beta0 = prior[0], prior[1], prior[2], prior[3]
    for i in range(slots.shape[0]):
        s = slots[i]
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
            out_tail[i] = np.nan
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
        out_tail[i] = t_tail(df, z, side)
        out_status[i] = APPLIED
        dev = x[i] - mu
        params[s, 0] = mu + dev / (kappa + 1.0)
        params[s, 3] = beta + kappa * dev * dev / (2.0 * (kappa + 1.0))
        params[s, 1] = kappa + 1.0
        params[s, 2] = alpha + 0.5
        n_eff[s] += 1.0
        obs_size[s] = size[i]


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
