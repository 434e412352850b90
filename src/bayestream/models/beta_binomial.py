r"""Beta-Binomial: ``x`` successes out of ``n`` trials.

Model: x | p ~ Binomial(n, p); p ~ Beta(a, b). Update: a' = a + x, b' = b + n - x.

Posterior predictive of the successes in the next ``n`` trials: Beta-Binomial(n, a, b),

    P(X = k) = C(n, k) B(k + a, n - k + b) / B(a, b),

with ratio r(k) = P(k+1)/P(k) = (n - k)(k + a) / ((k + 1)(n - k - 1 + b)). There is no closed
CDF in scipy.special, so tails and quantiles are sums of the pmf by this recurrence (the one
piece written by hand). Tails are mid-p: P(X < x) + P(X = x)/2 for the lower side. The far tail
is summed outward from x, stopping once the remainder is provably below 1e-17 of the sum (for
a, b >= 1 the pmf is log-concave, so r is decreasing and the remainder is bounded by a geometric
series); otherwise every term is summed. Predictive quantiles are for the next event having
as many trials as the stream's most recent one.

Parameters in state rows: ``[alpha, beta]``; ``obs_size`` holds the last event's trials.
"""

from __future__ import annotations

import math

import numpy as np

from bayestream.models._divergence import kl_beta
from bayestream.models._drift import drift_step, reset_posterior
from bayestream.models._jit import kernel
from bayestream.models._outlier import mixture_probability, wants_interval
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
    S_ROBUST,
    S_ROBUST_MIN,
    S_RUN_RESET,
)
from bayestream.models._special import betaincinv, betaln, gammaln
from bayestream.models._stream import (
    APPLIED,
    LATE,
    begin_event,
    forget_linear,
    mid_p_tail,
    outlier_run,
)

PARAM_NAMES = ("alpha", "beta")
WIDTH = 2
_TINY = 1e-17

kl = kl_beta  # closed-form KL between two posteriors (drift detection)


def posterior(prior: np.ndarray, successes: np.ndarray, trials: np.ndarray) -> np.ndarray:
    """Closed-form batch posterior ``[alpha, beta]``."""
    return np.array([prior[0] + successes.sum(), prior[1] + (trials - successes).sum()])


@kernel
def log_pmf(k: float, n: float, a: float, b: float) -> float:
    """log P(X = k) of Beta-Binomial(n, a, b)."""
    log_choose = gammaln(n + 1.0) - gammaln(k + 1.0) - gammaln(n - k + 1.0)
    return log_choose + betaln(k + a, n - k + b) - betaln(a, b)


@kernel
def _walk(x: float, n: float, a: float, b: float, upward: bool) -> tuple[float, float, float]:
    """Walk away from ``x`` summing P(X = k) / P(X = x) over k > x (upward) or k < x.

    Returns (sum, last k reached, its relative term). The walk stops at the support's end, when
    terms underflow, or (log-concave case) once the remainder is below 1e-17 of the sum.
    """
    log_concave = a >= 1.0 and b >= 1.0
    total = 0.0
    term = 1.0
    k = x
    while (k < n) if upward else (k > 0.0):
        if upward:
            ratio = (n - k) * (k + a) / ((k + 1.0) * (n - k - 1.0 + b))
        else:
            ratio = k * (n - k + b) / ((n - k + 1.0) * (k - 1.0 + a))
        if term * ratio == 0.0:
            break
        term *= ratio
        k = k + 1.0 if upward else k - 1.0
        total += term
        if log_concave and ratio < 1.0 and term * ratio / (1.0 - ratio) < _TINY * total:
            break
    return total, k, term


@kernel
def tails(x: float, n: float, a: float, b: float) -> tuple[float, float, float]:
    """(P(X < x), P(X = x), P(X > x)) of Beta-Binomial(n, a, b), far tail summed directly."""
    at = math.exp(log_pmf(x, n, a, b))
    if x * (a + b) <= n * a:  # x at or below the mean: the lower tail is the far one
        lower = at * _walk(x, n, a, b, False)[0]
        return lower, at, max(1.0 - lower - at, 0.0)
    upper = at * _walk(x, n, a, b, True)[0]
    return max(1.0 - upper - at, 0.0), at, upper


@kernel
def quantile(q: float, n: float, a: float, b: float) -> float:
    """Smallest k with P(X <= k) >= q: pmf terms relative to the mode, normalised by their
    sum, scanned upward from where the lower walk stopped."""
    k_mode = min(math.floor(n * a / (a + b)), n)
    below, k, term = _walk(k_mode, n, a, b, False)
    total = below + 1.0 + _walk(k_mode, n, a, b, True)[0]
    target = q * total * (1.0 - 1e-12)
    cum = 0.0
    while k < n:
        cum += term
        if cum >= target:
            return k
        term *= (n - k) * (k + a) / ((k + 1.0) * (n - k - 1.0 + b))
        k += 1.0
    return n


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
    """Apply events in order (``x`` successes out of ``size`` trials); see normal_gamma.update."""
    robust = settings[S_ROBUST] == 1.0
    robust_min = settings[S_ROBUST_MIN]
    run_reset = settings[S_RUN_RESET]
    rate = settings[S_OUTLIER_RATE]
    extra = int(settings[S_EXTRA])
    drift = settings[S_DRIFT] == 1.0
    width = prior.shape[0]
    sw = 3
    cur_post, ref_post, scratch = np.empty(width + sw), np.empty(width + sw), np.empty(sw)
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
        forget_linear(params, prior, s, d)
        a, b = params[s, 0], params[s, 1]
        lower, at, upper = tails(x[i], size[i], a, b)
        tail = mid_p_tail(lower, at, upper, side)
        pit = min(lower + 0.5 * at, 1.0)
        # outliers: uniform on 0..n
        prob = mixture_probability(-math.log(size[i] + 1.0) - math.log(at), rate)
        out[i, OUT_TAIL] = tail
        out[i, OUT_PIT] = pit
        out[i, OUT_PROB] = prob
        if wants_interval(settings, tail, prob):
            upper_p = settings[S_IVL_UPPER]
            out[i, OUT_PRED_LO] = quantile(1.0 - upper_p, size[i], a, b)
            out[i, OUT_PRED_HI] = quantile(upper_p, size[i], a, b)
        params[s, extra] = prob
        if outlier_run(params, n_eff, prior, s, extra, prob, run_reset):
            a, b = prior[0], prior[1]  # a regime change: the event then counts in full
        out_status[i] = APPLIED
        obs_size[s] = size[i]
        row = params[s]
        if drift and drift_step(
            row, settings, fresh, ts[i], x[i], size[i], out, i, cur_post, ref_post
        ):
            n_eff[s] = reset_posterior(row, settings, prior, scratch)
            continue
        w = 1.0 - prob if robust and n_eff[s] >= robust_min else 1.0
        params[s, 0] = a + w * x[i]
        params[s, 1] = b + w * (size[i] - x[i])
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
    """Posterior of p (mean, sd, equal-tailed intervals) and predictive quantiles of the
    successes in the next ``obs_size`` trials; shapes as in normal_gamma.summarize."""
    for r in range(slots.shape[0]):
        s = slots[r]
        a, b = params[s, 0], params[s, 1]
        total = a + b
        out_mean[r, 0] = a / total
        out_sd[r, 0] = math.sqrt(a * b / (total * total * (total + 1.0)))
        for j in range(levels.shape[0]):
            out_lo[r, j, 0] = betaincinv(a, b, 0.5 - 0.5 * levels[j])
            out_hi[r, j, 0] = betaincinv(a, b, 0.5 + 0.5 * levels[j])
        n = obs_size[s]
        for j in range(quantiles.shape[0]):
            out_q[r, j] = quantile(quantiles[j], n, a, b) if n >= 1.0 else np.nan
