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
from bayestream.models._jit import inline, kernel
from bayestream.models._skeleton import make_update
from bayestream.models._special import betaincinv, betaln, gammaln
from bayestream.models._stream import forget_linear, mid_p_tail

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


# --- per-event steps (the update kernel is the shared skeleton, :mod:`._skeleton`) ---------


@inline
def score(
    theta: np.ndarray, x: float, size: float, side: int, widen: float
) -> tuple[float, float, float, float]:
    """(mid-p tail, mid-p PIT, log q/p, window value) of ``x`` successes out of ``size``
    trials; the outlier component is uniform on 0..n (``widen`` is not used). Drift windows
    see the count as it is."""
    lower, at, upper = tails(x, size, theta[0], theta[1])
    pit = min(lower + 0.5 * at, 1.0)
    return mid_p_tail(lower, at, upper, side), pit, -math.log(size + 1.0) - math.log(at), x


@inline
def interval(theta: np.ndarray, size: float, upper: float) -> tuple[float, float]:
    """The central predictive interval of the successes in ``size`` trials."""
    return quantile(1.0 - upper, size, theta[0], theta[1]), quantile(
        upper, size, theta[0], theta[1]
    )


@inline
def observe(theta: np.ndarray, x: float, size: float, w: float) -> None:
    """a' = a + w x, b' = b + w (n - x)."""
    theta[0] += w * x
    theta[1] += w * (size - x)


update = make_update("beta_binomial", forget_linear, score, interval, observe)
"""Apply a batch's events in order (:func:`bayestream.models._skeleton._update`)."""


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
