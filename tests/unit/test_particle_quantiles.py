"""Quantiles of particle sets against independent references.

Predictive quantiles: the returned ``q`` is a root of the weighted mixture's CDF evaluated by
scipy (``|F(q) - u| <= 1e-12``: the search stops at 1e-13, the Normal expansion adds at most
``EXPANSION_ERROR`` = 2.3e-14, and the reference's own rounding is ~1e-16 P); counts are the
smallest k with F(k) >= u. Credible-interval quantiles are the full sort's ``x_(k)``. The
expansion's error bound is checked on its own, and so is the Cramer inequality it rests on.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from numpy.polynomial.hermite_e import hermeval
from scipy import stats

from bayestream.models._jit import kernel
from bayestream.models.particle import counts
from bayestream.models.particle import quantiles as pq
from bayestream.models.particle.codes import (
    MODEL_BINOMIAL_RATE,
    MODEL_POISSON_RATE,
    OBS_NORMAL,
    OBS_STUDENT_T,
)

US = (1e-6, 0.001, 0.025, 0.1, 0.5, 0.77, 0.9, 0.95, 0.975, 0.99, 0.999, 1.0 - 1e-6)


@kernel
def _expansion_cdf(
    v: float, moments: np.ndarray, nb: int, width: float, lo_x: float, scale: float
) -> float:
    return pq.expansion_cdf(v, moments, nb, width, lo_x, scale)[0]


def _particles(kind: str, p: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Particle sets with unequal weights: one cloud, two far clouds (a flat CDF between
    them), resampled copies (ties), and a cloud wider than the expansion's bins allow."""
    if kind == "cloud":
        x = rng.normal(1.5, 0.6, p)
    elif kind == "two_clouds":
        x = np.concatenate([rng.normal(-3.0, 0.2, p // 2), rng.normal(4.0, 0.3, p - p // 2)])
    elif kind == "ties":
        x = np.repeat(rng.normal(0.0, 1.0, p // 8), 8)
    else:  # "wide": more than P / 4 bins of half a scale
        x = rng.normal(0.0, 40.0, p)
    w = rng.gamma(0.7, size=x.size)
    return x, w / w.sum()


def _moments(x: np.ndarray, w: np.ndarray) -> tuple[float, float, float, float]:
    """Weighted mean, variance, third and fourth cumulants."""
    m = float(w @ x)
    v = float(w @ (x - m) ** 2)
    return m, v, float(w @ (x - m) ** 3), float(w @ (x - m) ** 4) - 3 * v * v


def _groups(x: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, ...]:
    """(start, bucket weights, xs, ws) of ``group`` with P / 4 buckets, as the summaries."""
    p, buckets = x.size, max(x.size // 4, 1)
    start, cursor = np.empty(buckets + 1, np.int64), np.empty(buckets, np.int64)
    bucket_w, xs, ws = np.empty(buckets), np.empty(p), np.empty(p)
    pq.group(x, w, x.min(), x.max(), start, cursor, bucket_w, xs, ws, np.empty(p, np.int64))
    return start, bucket_w, xs, ws


def _bins(x: np.ndarray, w: np.ndarray, scale: float) -> tuple[np.ndarray, int, float]:
    start, _, xs, ws = _groups(x, w)
    moments = np.empty((start.size - 1, pq.TERMS + 1))
    nb, width = pq.expand(xs, ws, start, x.min(), x.max(), scale, moments)
    return moments, nb, width


@pytest.mark.parametrize("kind", ["cloud", "two_clouds", "ties", "wide"])
@pytest.mark.parametrize("obs", [OBS_NORMAL, OBS_STUDENT_T])
def test_continuous_quantiles_are_roots_of_the_mixture_cdf(kind: str, obs: int) -> None:
    rng = np.random.default_rng(7)
    p, scale, nu = 256, 0.8, 3.0
    x, w = _particles(kind, p, rng)
    dist = stats.norm if obs == OBS_NORMAL else stats.t(nu)
    moments, nb, width = _bins(x, w, scale) if obs == OBS_NORMAL else (np.empty((0, 0)), 0, 0.0)
    if obs == OBS_NORMAL:
        assert (nb == 0) == (kind == "wide")  # both evaluations are exercised
    m, v, k3, k4 = _moments(x, w)
    if obs != OBS_NORMAL:
        k3 = k4 = 0.0  # as the summaries: the first guess is the moment-matched Normal
    for u in US:
        q = pq.continuous_quantile(
            u, x, w, x.min(), x.max(), m, v, k3, k4, obs, nu, scale, moments, nb, width
        )
        f = math.fsum(w * dist.cdf((q - x) / scale))
        assert abs(f - u) <= 1e-12, (u, q, f - u)


def test_one_point_mixture_is_the_component_quantile() -> None:
    x, w = np.full(64, 2.5), np.full(64, 1.0 / 64)
    moments, nb, width = _bins(x, w, 2.0)
    assert nb == 1

    def quantile(u: float) -> float:
        return pq.continuous_quantile(
            u, x, w, 2.5, 2.5, 2.5, 0.0, 0.0, 0.0, 0, 4.0, 2.0, moments, nb, width
        )

    for u in US:
        assert quantile(u) == 2.5 + 2.0 * stats.norm.ppf(u)
    assert quantile(0.0) == -np.inf
    assert quantile(1.0) == np.inf


@pytest.mark.parametrize("kind", ["cloud", "two_clouds", "ties"])
def test_expansion_is_within_its_error_bound(kind: str) -> None:
    rng = np.random.default_rng(8)
    x, w = _particles(kind, 512, rng)
    scale = 0.7
    moments, nb, width = _bins(x, w, scale)
    assert nb > 0 and width <= 2 * pq.HALF_WIDTH * scale
    for v in np.linspace(x.min() - 8 * scale, x.max() + 8 * scale, 401):
        exact = math.fsum(w * stats.norm.cdf((v - x) / scale))
        got = _expansion_cdf(v, moments, nb, width, x.min(), scale)
        assert abs(got - exact) <= pq.EXPANSION_ERROR + 1e-15, v


def test_cramer_bound_holds_for_the_expansion_order() -> None:
    """sup |He_K(z) phi(z)| <= 1.086435 sqrt(K!) / sqrt(2 pi), the factor of EXPANSION_ERROR,
    and the bound the module quotes for h = 1/4, K = 12."""
    z = np.linspace(-30.0, 30.0, 600_001)
    coef = np.zeros(pq.TERMS + 1)
    coef[pq.TERMS] = 1.0
    sup = np.max(np.abs(hermeval(z, coef)) * stats.norm.pdf(z))
    bound = pq.CRAMER * math.sqrt(math.factorial(pq.TERMS)) / math.sqrt(2 * math.pi)
    assert 0.4 * bound < sup <= bound
    assert pq.EXPANSION_ERROR < 2.3e-14


def _count_cdf(k: float, x: np.ndarray, w: np.ndarray, model: int, size: float) -> float:
    if k < 0:
        return 0.0
    if model == MODEL_POISSON_RATE:
        return math.fsum(w * stats.poisson.cdf(k, size * np.exp(x)))
    return math.fsum(w * stats.binom.cdf(k, int(size), 1.0 / (1.0 + np.exp(-x))))


@pytest.mark.parametrize(
    ("model", "size", "center"),
    [
        (MODEL_POISSON_RATE, 3.0, 1.0),
        (MODEL_POISSON_RATE, 0.5, -3.0),
        (MODEL_POISSON_RATE, 100.0, 2.0),
        (MODEL_BINOMIAL_RATE, 15.0, 0.0),
        (MODEL_BINOMIAL_RATE, 400.0, -4.0),
        (MODEL_BINOMIAL_RATE, 1.0, 0.5),
    ],
)
def test_count_quantiles_are_the_smallest_count_reaching_u(
    model: int, size: float, center: float
) -> None:
    rng = np.random.default_rng(9)
    x = rng.normal(center, 0.8, 128)
    w = rng.gamma(0.7, size=128)
    w /= w.sum()
    for u in US:
        k = counts.count_quantile(u, x, w, model, size)
        assert k == math.floor(k) and k >= 0
        assert _count_cdf(k, x, w, model, size) >= u - 1e-12, (u, k)
        assert _count_cdf(k - 1, x, w, model, size) < u + 1e-12, (u, k)
    assert math.isnan(counts.count_quantile(0.5, x, w, model, math.nan))


def _sorted_quantile(x: np.ndarray, w: np.ndarray, u: float) -> float:
    order = np.argsort(x, kind="stable")
    cum = np.cumsum(w[order])
    return float(x[order[min(np.searchsorted(cum, u), x.size - 1)]])


@pytest.mark.parametrize("kind", ["cloud", "two_clouds", "ties", "wide", "equal", "zeros"])
def test_grouped_quantiles_are_the_full_sort_quantiles(kind: str) -> None:
    rng = np.random.default_rng(10)
    p = 300
    if kind == "equal":
        x, w = np.full(p, -1.25), np.full(p, 1.0 / p)
    else:
        x, w = _particles("cloud" if kind == "zeros" else kind, p, rng)
    if kind == "zeros":  # weights that underflowed to 0
        w[rng.choice(p, p // 3, replace=False)] = 0.0
        w /= w.sum()
    start, bucket_w, xs, ws = _groups(x, w)
    assert start[-1] == x.size and np.isclose(bucket_w.sum(), 1.0)
    for b in range(bucket_w.size - 1):  # buckets in order of value
        assert xs[start[b] : start[b + 1]].max(initial=-np.inf) <= xs[start[b + 1] :].min(
            initial=np.inf
        )
    cum = np.cumsum(w[np.argsort(x, kind="stable")])
    for u in (0.0, *US, 1.0):
        if np.min(np.abs(cum - u)) < 1e-12:
            continue  # a partial sum at u: rounding decides, in either order
        got = pq.grouped_quantile(u, xs, ws, start, bucket_w)
        assert got == _sorted_quantile(x, w, u), u
