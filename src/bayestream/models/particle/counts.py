r"""Predictive quantiles of counts under weighted particles (Poisson and binomial rate).

With particles ``x_j`` of normalised weights ``w_j`` and ``F_j`` the CDF of the count given
``x_j`` (:mod:`.observation`), the u-quantile is the smallest count ``k`` with
``F(k) = sum_j w_j F_j(k) >= u``, found by an exact search that starts from the normal guess
``floor(mean + t_u sd)`` of the mixture's mean and variance, steps away from it doubling until
``F`` brackets ``u``, then bisects (the guess decides only the cost). Above 2**53 neighbouring
doubles are more than 1 apart: the bisection stops when no double lies between its ends.
"""

from __future__ import annotations

import math

import numpy as np

from bayestream.models._jit import inline, kernel
from bayestream.models._special import ndtri
from bayestream.models.particle.codes import MODEL_BINOMIAL_RATE
from bayestream.models.particle.observation import binomial_cdf, log_sigmoid, poisson_cdf


@inline
def count_cdf(k: float, x: np.ndarray, w: np.ndarray, model: int, size: float) -> float:
    """F(k) of the Poisson (exposure ``size``) or binomial (``size`` trials) mixture."""
    f = 0.0
    for j in range(x.shape[0]):
        if model == MODEL_BINOMIAL_RATE:
            f += w[j] * binomial_cdf(k, size, log_sigmoid(x[j]))
        else:
            f += w[j] * poisson_cdf(k, size * math.exp(x[j]))
    return f


@kernel
def count_quantile(u: float, x: np.ndarray, w: np.ndarray, model: int, size: float) -> float:
    """Smallest count k with F(k) >= u (the module docstring); NaN without a size."""
    if not size >= 0.0:
        return math.nan
    first = count_cdf(0.0, x, w, model, size)
    if first != first:
        return math.nan
    if first >= u:
        return 0.0
    binomial = model == MODEL_BINOMIAL_RATE
    m1 = 0.0
    m2 = 0.0
    for j in range(x.shape[0]):
        if binomial:
            pj = math.exp(log_sigmoid(x[j]))
            mu = size * pj
            second = mu * (1.0 - pj) + mu * mu
        else:
            mu = size * math.exp(x[j])
            second = mu + mu * mu
        m1 += w[j] * mu
        m2 += w[j] * second
    guess = m1 + ndtri(u) * math.sqrt(max(m2 - m1 * m1, 0.0))
    if not guess < 1e18:  # NaN, or past any count
        guess = 1e18
    guess = float(math.floor(max(guess, 0.0)))
    if binomial:
        guess = min(guess, size)
    # invariant once bracketed: F(lo) < u <= F(hi); lo = 0 holds (checked above)
    step = 1.0
    if count_cdf(guess, x, w, model, size) >= u:
        hi = guess
        lo = max(hi - step, 0.0)
        while lo > 0.0 and count_cdf(lo, x, w, model, size) >= u:
            hi = lo
            step *= 2.0
            lo = max(hi - step, 0.0)
    else:
        lo = guess
        hi = lo + step
        while count_cdf(hi, x, w, model, size) < u:
            if binomial and hi >= size:  # F(size) = 1 short of u by rounding only
                return size
            lo = hi
            step *= 2.0
            hi = lo + step
            if binomial:
                hi = min(hi, size)
            if hi > 1e18:
                return math.inf
    while hi - lo > 1.0:
        mid = float(math.floor(0.5 * (lo + hi)))
        if not lo < mid < hi:  # no double between them (beyond 2**53)
            break
        if count_cdf(mid, x, w, model, size) >= u:
            hi = mid
        else:
            lo = mid
    return hi
