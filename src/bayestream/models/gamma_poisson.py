r"""Gamma-Poisson: ``x`` events counted over an exposure ``e`` (seconds, requests, ...).

Model: x | lambda ~ Poisson(e lambda); lambda ~ Gamma(a, rate=b). Update: a' = a + x,
b' = b + e.

Posterior predictive of the count over exposure e: Negative Binomial with n = a and
p = b / (b + e) (scipy's ``nbinom(a, p)``), whose CDF is a regularised incomplete beta:
P(X <= k) = I_p(a, k + 1) = 1 - I_q(k + 1, a) with q = 1 - p = e / (b + e). Tails are mid-p:
P(X < x) + P(X = x)/2 for the lower side, i.e. the mean of P(X < x) and P(X <= x). Both p and
q are formed directly from b and e, and the incomplete beta is evaluated at whichever of them
is below 1/2: scipy's incomplete beta forms 1 - (its argument) internally, so passing p ~ 1 (a
stream whose accumulated exposure b dwarfs one event's e) would lose the digits of q and with
them the far tails. Predictive quantiles are for the next event having the stream's most
recent exposure, found by bisection on the CDF.

Parameters in state rows: ``[alpha, beta]`` (beta a rate); ``obs_size`` holds the last exposure.
"""

from __future__ import annotations

import math

import numpy as np

from bayestream.models._divergence import kl_gamma
from bayestream.models._jit import inline, kernel
from bayestream.models._outlier import nb_log_pmf_moments
from bayestream.models._skeleton import make_update
from bayestream.models._special import betainc, betaincc, gammaincinv, ndtri
from bayestream.models._stream import forget_linear, mid_p_tail

PARAM_NAMES = ("alpha", "beta")
WIDTH = 2

kl = kl_gamma  # closed-form KL between two posteriors (drift detection)


def posterior(prior: np.ndarray, counts: np.ndarray, exposure: np.ndarray) -> np.ndarray:
    """Closed-form batch posterior ``[alpha, beta]``."""
    return np.array([prior[0] + counts.sum(), prior[1] + exposure.sum()])


@kernel
def cdf(k: float, e: float, a: float, b: float) -> float:
    """P(X <= k), evaluated at the smaller of p and q (see the module docstring)."""
    if e <= b:
        return betaincc(k + 1.0, a, e / (b + e))
    return betainc(a, k + 1.0, b / (b + e))


@kernel
def sf(k: float, e: float, a: float, b: float) -> float:
    """P(X > k), evaluated at the smaller of p and q (see the module docstring)."""
    if e <= b:
        return betainc(k + 1.0, a, e / (b + e))
    return betaincc(a, k + 1.0, b / (b + e))


@kernel
def tails(x: float, e: float, a: float, b: float) -> tuple[float, float, float]:
    """(P(X < x), P(X = x), P(X > x)) of the Negative Binomial predictive.

    P(X = x) is the difference of the two adjacent tails on the side where they are small, not
    exp(lgamma(x + a) - lgamma(a) - ...): those lgamma terms are ~a ln a, so the exp would lose
    ~eps a ln a relative (1e-9 at a = 1e6). Each mid-p tail is then good to a few ulp.
    """
    upper = sf(x, e, a, b)
    lower = cdf(x - 1.0, e, a, b) if x > 0.0 else 0.0
    if upper < lower:
        at = sf(x - 1.0, e, a, b) - upper
    else:
        at = cdf(x, e, a, b) - lower
    return lower, max(at, 0.0), upper


@kernel
def quantile(q: float, e: float, a: float, b: float) -> float:
    """Smallest k with P(X <= k) >= q, by a search on the exact CDF that starts from a guess.

    The guess is the Cornish-Fisher quantile of the Negative Binomial (its mean, sd and
    skewness; usually within a count or two of the answer); from it the search steps away,
    doubling, until the CDF brackets ``q``, then bisects. Only the CDF decides, so the result
    does not depend on the guess: 2 - 4 CDF evaluations for a good one, against ~10 for a
    search from the mean. Above 2**53 neighbouring doubles are more than 1 apart: the bisection
    stops when no double lies strictly between its ends (the answer is then exact only to the
    spacing of doubles there). NaN parameters give NaN.
    """
    first = cdf(0.0, e, a, b)
    if first != first:
        return np.nan
    if first >= q:
        return 0.0
    mean = a * e / b
    sd = math.sqrt(mean * (1.0 + e / b))
    share = e / (b + e)  # 1 - p
    skew = (1.0 + share) / math.sqrt(a * share)
    z = ndtri(q)
    x = mean + sd * (z + skew * (z * z - 1.0) / 6.0)
    if not x < 1e18:  # NaN, or past any count
        x = 1e18
    guess = float(math.floor(max(x, 0.0)))
    # invariant once bracketed: CDF(lo) < q <= CDF(hi); lo = 0 holds (checked above)
    step = 1.0
    if cdf(guess, e, a, b) >= q:
        hi = guess
        lo = max(hi - step, 0.0)
        while lo > 0.0 and cdf(lo, e, a, b) >= q:
            hi = lo
            step *= 2.0
            lo = max(hi - step, 0.0)
    else:
        lo = guess
        hi = lo + step
        while cdf(hi, e, a, b) < q:
            lo = hi
            step *= 2.0
            hi = lo + step
            if hi > 1e18:
                return np.inf
    while hi - lo > 1.0:
        mid = float(math.floor(0.5 * (lo + hi)))
        if not lo < mid < hi:  # no double between them (beyond 2**53)
            break
        if cdf(mid, e, a, b) >= q:
            hi = mid
        else:
            lo = mid
    return hi


# --- per-event steps (the update kernel is the shared skeleton, :mod:`._skeleton`) ---------


@inline
def score(
    theta: np.ndarray, x: float, size: float, side: int, widen: float
) -> tuple[float, float, float, float]:
    """(mid-p tail, mid-p PIT, log q/p, window value) of ``x`` counts over exposure ``size``;
    the outlier component is the Negative Binomial with the predictive's mean and ``widen**2``
    times its variance. Drift windows see the count as it is."""
    a, b = theta[0], theta[1]
    lower, at, upper = tails(x, size, a, b)
    mean = a * size / b
    var = mean * (1.0 + size / b)  # of the Negative Binomial predictive
    log_q = nb_log_pmf_moments(x, mean, widen * widen * var)
    pit = min(lower + 0.5 * at, 1.0)
    return mid_p_tail(lower, at, upper, side), pit, log_q - math.log(at), x


@inline
def interval(theta: np.ndarray, size: float, upper: float) -> tuple[float, float]:
    """The central predictive interval of the count over exposure ``size``."""
    return quantile(1.0 - upper, size, theta[0], theta[1]), quantile(
        upper, size, theta[0], theta[1]
    )


@inline
def observe(theta: np.ndarray, x: float, size: float, w: float) -> None:
    """a' = a + w x, b' = b + w e."""
    theta[0] += w * x
    theta[1] += w * size


update = make_update("gamma_poisson", forget_linear, score, interval, observe)
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
    """Posterior of the rate (mean, sd, equal-tailed intervals) and predictive quantiles of the
    count over the last exposure; shapes as in normal_gamma.summarize."""
    for r in range(slots.shape[0]):
        s = slots[r]
        a, b = params[s, 0], params[s, 1]
        out_mean[r, 0] = a / b
        out_sd[r, 0] = math.sqrt(a) / b
        for j in range(levels.shape[0]):
            out_lo[r, j, 0] = gammaincinv(a, 0.5 - 0.5 * levels[j]) / b
            out_hi[r, j, 0] = gammaincinv(a, 0.5 + 0.5 * levels[j]) / b
        e = obs_size[s]
        for j in range(quantiles.shape[0]):
            out_q[r, j] = quantile(quantiles[j], e, a, b) if e > 0.0 else np.nan
