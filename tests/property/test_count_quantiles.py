"""The Negative Binomial predictive quantile (Gamma-Poisson) starts its search from a
Cornish-Fisher guess; whatever the guess, it must be the smallest k with P(X <= k) >= q by the
kernel's own CDF. Oracle: a plain search from 0 (doubling, then bisection) on that CDF."""

from __future__ import annotations

import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import stats

from bayestream.models import gamma_poisson

PROPERTY = settings(
    max_examples=400, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)


def smallest_k(q: float, e: float, a: float, b: float) -> float:
    """Smallest k with CDF(k) >= q, searched from 0 without any guess."""
    cdf = gamma_poisson.cdf
    if cdf(0.0, e, a, b) >= q:
        return 0.0
    lo, hi = 0.0, 1.0
    while cdf(hi, e, a, b) < q:
        lo, hi = hi, 2.0 * hi
        if hi > 1e18:
            return math.inf
    while hi - lo > 1.0:
        mid = math.floor(0.5 * (lo + hi))
        lo, hi = (lo, mid) if cdf(mid, e, a, b) >= q else (mid, hi)
    return hi


def log_uniform(low: float, high: float) -> st.SearchStrategy[float]:
    return st.floats(math.log(low), math.log(high)).map(math.exp)


@PROPERTY
@given(
    a=log_uniform(1e-2, 1e7),
    b=log_uniform(1e-3, 1e6),
    e=log_uniform(1e-3, 1e4),
    q=st.sampled_from([1e-9, 0.001, 0.025, 0.1, 0.5, 0.9, 0.95, 0.975, 0.99, 0.999, 1 - 1e-9]),
)
def test_quantile_is_the_smallest_count_reaching_q(a: float, b: float, e: float, q: float) -> None:
    assert gamma_poisson.quantile(q, e, a, b) == smallest_k(q, e, a, b)


def test_quantile_matches_scipy_nbinom_on_typical_streams() -> None:
    # (not a = 1000, p = 1/2: P(X <= 999) is exactly 1/2, which scipy rounds to just below)
    for a, b, e in [(1000.0, 10.0, 7.0), (3.0, 1.5, 0.5), (50.0, 0.5, 2.0), (1e5, 1e3, 1.0)]:
        dist = stats.nbinom(a, b / (b + e))
        for q in (0.01, 0.5, 0.9, 0.95, 0.99):
            assert gamma_poisson.quantile(q, e, a, b) == dist.ppf(q), (a, b, e, q)


def test_quantile_ends_beyond_two_to_the_53() -> None:
    """Past 2**53 neighbouring doubles are 2 or more apart: the search must still end (it once
    looped for ever on a stream whose first count was 1e16). scipy's incomplete beta gives NaN
    at such parameters, so only the end and a figure near the mean (or NaN) are asserted."""
    a, b, e = 1e16 + 1.0, 10.1, 10.0
    mean = a * e / b
    for q in (0.5, 0.9, 0.99):
        k = gamma_poisson.quantile(q, e, a, b)
        assert math.isnan(k) or abs(k - mean) < 1e-3 * mean


def test_quantile_of_nan_parameters_is_nan() -> None:
    assert math.isnan(gamma_poisson.quantile(0.9, 1.0, math.nan, 1.0))
