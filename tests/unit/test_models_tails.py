"""Predictive tail probabilities written by ``update`` against scipy.stats.

Each kernel writes, before updating, the tail of the predictive at the decayed posterior. A
fresh row's predictive is the prior, so ``tails_of(params, x)`` feeds ``params`` as the prior
and reads the first event's tail on all three sides.

Tolerances (relative):

- normal_gamma: kernel and scipy call the same ``stdtr`` on the same standardised z; one ulp in
  z moves the tail by ~(df + 1) eps relative, so 1e-12 covers df up to 1e3.
- beta_binomial: both sides build the pmf from lgamma/lbeta differences of size ~n ln n, an
  absolute log error ~ 8 eps (n ln n + |ln B(a, b)|) ~ 1.5e-10 at n = 1e4, plus the kernel's
  recurrence (<= n ulp ~ 2e-12). We assert 1e-9. (scipy's ``betabinom.sf`` is 1 - cdf and
  useless in a far upper tail, so the oracle sums scipy's pmf term by term.)
- gamma_poisson: the same Boost incomplete beta on both sides, lgamma terms ~ a ln a with
  a <= 1e3: 1e-11 would do; we assert 1e-10. p = b / (b + e) is chosen exactly representable
  so scipy's internal 1 - p loses nothing.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from bayestream.models import beta_binomial, dirichlet, gamma_poisson, normal_gamma
from tests import naive

SIDES = (naive.UPPER, naive.LOWER, naive.TWO_SIDED)


def tails_of(module, params, x, size=None) -> dict[int, np.ndarray]:
    """Tail of each ``x`` (one fresh row each) under predictive ``params``, per side."""
    x = np.atleast_1d(np.asarray(x, dtype=float))
    out = {}
    for side in SIDES:
        rows = naive.Rows(np.asarray(params, float), x.size)
        out[side], _ = naive.apply(
            module, rows, np.arange(x.size), np.zeros(x.size), x, size, side=side
        )
    return out


def assert_rel(got: np.ndarray, want: np.ndarray, rtol: float) -> None:
    assert np.all(np.isfinite(got)) and np.all((got >= 0.0) & (got <= 1.0))
    np.testing.assert_allclose(got, want, rtol=rtol, atol=0.0)


# --- normal_gamma ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "params",
    [(0.0, 1.0, 2.0, 2.0), (3.5, 0.1, 0.6, 0.2), (-2.0, 40.0, 250.0, 90.0), (1e3, 5.0, 1.5, 1e4)],
)
def test_normal_gamma_tails_match_student_t(params: tuple[float, ...]) -> None:
    dist = naive.ng_predictive(np.array(params))
    body = dist.ppf([0.01, 0.3, 0.5, 0.77, 0.999])
    far = np.array([dist.isf(1e-12), dist.ppf(1e-12), dist.isf(1e-200), dist.ppf(1e-200)])
    x = np.concatenate([body, far])
    got = tails_of(normal_gamma, params, x)
    for side in SIDES:
        want = [naive.ng_tail(np.array(params), v, side) for v in x]
        assert_rel(got[side], np.array(want), 1e-12)
    assert got[naive.UPPER][5] == pytest.approx(1e-12, rel=1e-9)  # the far tail is reached


# --- beta_binomial --------------------------------------------------------------------------

BB_CASES = [
    (20, 2.0, 3.0),  # small, log-concave
    (10_000, 3.0, 40.0),  # large n, far tails on both sides
    (10_000, 400.0, 600.0),  # concentrated
    (10_000, 0.3, 0.4),  # a, b < 1: U-shaped, not log-concave
    (10_000, 0.5, 30.0),  # a < 1 < b: J-shaped, not log-concave
    (60, 0.2, 5.0),
    (1, 0.7, 0.7),
]


def far_points(pmf: np.ndarray, level: float = 1e-12) -> list[int]:
    """Outermost points whose strict tails are still above ``level`` on each side."""
    cum = np.cumsum(pmf)
    rev = np.cumsum(pmf[::-1])[::-1]
    lo = int(np.argmax(cum > level))
    hi = int(len(pmf) - 1 - np.argmax(rev[::-1] > level))
    return [lo, hi]


@pytest.mark.parametrize(("n", "a", "b"), BB_CASES)
def test_beta_binomial_tails_match_betabinom(n: int, a: float, b: float) -> None:
    pmf = stats.betabinom(n, a, b).pmf(np.arange(n + 1))
    xs = sorted({0, n, int(n * a / (a + b)), n // 3, (2 * n) // 3, *far_points(pmf)})
    got = tails_of(beta_binomial, (a, b), xs, np.full(len(xs), float(n)))
    for side in SIDES:
        want = np.array([naive.discrete_mid_p(pmf, x, side) for x in xs])
        assert_rel(got[side], want, 1e-9)


def test_beta_binomial_far_tails_are_reached() -> None:
    """The oracle cases above include tails of ~1e-12 on both sides (not just the body)."""
    n, a, b = 10_000, 400.0, 600.0
    pmf = stats.betabinom(n, a, b).pmf(np.arange(n + 1))
    lo, hi = far_points(pmf)
    got = tails_of(beta_binomial, (a, b), [lo, hi], np.full(2, float(n)))
    assert 1e-13 < got[naive.LOWER][0] < 1e-10
    assert 1e-13 < got[naive.UPPER][1] < 1e-10


@pytest.mark.parametrize(("n", "a", "b"), [(12, 2.0, 3.0), (12, 0.4, 0.3)])
def test_beta_binomial_edges_x_zero_and_x_n(n: int, a: float, b: float) -> None:
    dist = stats.betabinom(n, a, b)
    got = tails_of(beta_binomial, (a, b), [0, n], np.full(2, float(n)))
    p0, pn = dist.pmf(0), dist.pmf(n)
    np.testing.assert_allclose(got[naive.LOWER], [0.5 * p0, 1.0 - 0.5 * pn], rtol=1e-13)
    np.testing.assert_allclose(got[naive.UPPER], [1.0 - 0.5 * p0, 0.5 * pn], rtol=1e-13)


# --- gamma_poisson --------------------------------------------------------------------------

# (a, b, e) with b + e a power of two, so p = b / (b + e) and 1 - p are exact
GP_CASES = [
    (3.0, 1.5, 0.5),
    (0.4, 3.0, 1.0),
    (250.0, 63.0, 1.0),
    (7.5, 1.0, 7.0),
    (900.0, 1023.0, 1.0),
    (2.0, 0.25, 1.75),
]


@pytest.mark.parametrize(("a", "b", "e"), GP_CASES)
def test_gamma_poisson_tails_match_nbinom(a: float, b: float, e: float) -> None:
    dist = stats.nbinom(a, b / (b + e))
    xs = sorted(
        {
            0,
            1,
            int(dist.mean()),
            int(dist.isf(1e-12)),
            int(dist.isf(1e-40)),
            int(dist.ppf(1e-12)),
            int(dist.ppf(1e-3)),
        }
    )
    got = tails_of(gamma_poisson, (a, b), xs, np.full(len(xs), e))
    for side in SIDES:
        want = np.array([naive.gp_tail(np.array([a, b]), x, e, side) for x in xs])
        assert_rel(got[side], want, 1e-10)


@pytest.mark.parametrize(
    ("a", "b", "e"),
    [(1e6 + 0.5, 1e6 + 0.3, 1.0), (3e4 + 0.1, 1e4 + 0.7, 1.0), (2245377.1, 1.152e11, 0.0013)],
)
def test_gamma_poisson_far_tail_when_exposure_dwarfs_the_event(
    a: float, b: float, e: float
) -> None:
    """A long-lived stream: b >> e, so p = b / (b + e) rounds and 1 - p keeps only
    ~16 - log10(b / e) digits. The kernel evaluates the incomplete beta at q = e / (b + e) and
    forms P(X = x) from adjacent tails (no lgamma(a) cancellation); the oracle is the pmf
    recurrence from P(0) = exp(-a log1p(e / b)), good to ~k ulp for these small means."""
    mean = a * e / b
    xs = sorted(
        {
            0,
            1,
            int(mean),
            int(mean + 8 * math.sqrt(mean) + 10),
            int(mean + 12 * math.sqrt(mean) + 4),
        }
    )
    got = tails_of(gamma_poisson, (a, b), xs, np.full(len(xs), e))
    want = {
        side: np.array([naive.pick(*naive.nb_mid_p_recurrence(x, e, a, b), side) for x in xs])
        for side in SIDES
    }
    for side in SIDES:
        assert_rel(got[side], want[side], 1e-12)
    assert got[naive.UPPER][-1] < 1e-12
    if b / e > 1e13:  # the same tail from the rounded p (scipy's route) is visibly wrong here
        dist = stats.nbinom(a, b / (b + e))
        via_p = dist.sf(xs[-1]) + 0.5 * dist.pmf(xs[-1])
        assert abs(via_p / want[naive.UPPER][-1] - 1.0) > 1e-3


def test_gamma_poisson_zero_count_and_zero_exposure() -> None:
    a, b = 3.0, 1.5
    got = tails_of(gamma_poisson, (a, b), [0, 0], np.array([0.5, 0.0]))
    p0 = (b / (b + 0.5)) ** a
    assert got[naive.UPPER][0] == pytest.approx(1.0 - 0.5 * p0, rel=1e-14)
    assert got[naive.LOWER][0] == pytest.approx(0.5 * p0, rel=1e-14)
    # zero exposure: the predictive is a point mass at 0, so x = 0 is the median
    np.testing.assert_allclose([got[s][1] for s in SIDES], [0.5, 0.5, 1.0], rtol=1e-15)


# --- dirichlet ------------------------------------------------------------------------------


@pytest.mark.parametrize("alpha", [(1.0, 2.0, 0.5, 1.5), (1.0, 1.0, 2.0, 0.5), (3.0, 3.0)])
def test_dirichlet_tail_is_the_mid_p_definition(alpha: tuple[float, ...]) -> None:
    ks = np.arange(len(alpha))
    got = tails_of(dirichlet, alpha, ks)
    want = np.array([naive.dir_tail(np.array(alpha), k) for k in ks])
    for side in SIDES:  # categories have no order: every side is the same tail
        np.testing.assert_allclose(got[side], want, rtol=1e-15)
    # the least probable category is the most anomalous; tails of all outcomes average 1/2
    assert np.argmin(got[naive.UPPER]) == np.argmin(alpha)
    assert np.dot(np.array(alpha) / sum(alpha), want) == pytest.approx(0.5, rel=1e-14)


# --- extreme inputs -------------------------------------------------------------------------


def test_extreme_values_give_finite_tails() -> None:
    ng, _ = naive.apply(
        normal_gamma,
        naive.Rows(np.array([0.0, 1.0, 2.0, 2.0]), 1),
        np.zeros(4),
        np.arange(4.0),
        [1e150, 1.0, -1e150, 1e300],
        side=2,
    )
    bb, _ = naive.apply(
        beta_binomial,
        naive.Rows(np.array([2.0, 3.0]), 1),
        np.zeros(3),
        np.arange(3.0),
        [1e6, 5e8, 0.0],
        np.full(3, 1e9),
        side=2,
    )
    gp, _ = naive.apply(
        gamma_poisson,
        naive.Rows(np.array([3.0, 1.5]), 1),
        np.zeros(3),
        np.arange(3.0),
        [1e12, 0.0, 1e15],
        [1.0, 1e-12, 1e6],
        side=2,
    )
    for tail in (ng, bb, gp):
        assert np.all(np.isfinite(tail)) and np.all((tail >= 0.0) & (tail <= 1.0))
    assert ng[0] < 1e-100 and gp[0] < 1e-100
