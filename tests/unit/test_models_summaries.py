"""``summarize``: posterior mean, sd and equal-tailed credible intervals against scipy.stats
marginals, and predictive quantiles against scipy ``.ppf`` of the predictive.

Tolerances: the kernels and scipy call the same inverse functions (stdtrit, betaincinv,
gammaincinv) on the same arguments, so intervals agree to a few ulp (asserted 1e-12 relative,
with an absolute floor of 1e-12 of the distribution's scale for values near 0). Means and sds
are one or two roundings each (1e-13). Discrete quantiles are integers and must match exactly.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from bayestream.models import beta_binomial, dirichlet, gamma_poisson, normal_gamma
from tests import naive

LEVELS = np.array([0.5, 0.9, 0.99, 0.999999])
QUANTILES = np.array([0.001, 0.05, 0.25, 0.5, 0.75, 0.95, 0.999, 0.999999])


def rows_with(module, params: np.ndarray, obs_size: np.ndarray) -> tuple[np.ndarray, ...]:
    rows = naive.Rows(params[0], params.shape[0])
    rows.params[:] = params
    rows.obs_size[:] = obs_size
    return naive.summarize(module, rows, LEVELS, QUANTILES)


def check_intervals(lo: np.ndarray, hi: np.ndarray, dist, scale: float) -> None:
    """[ppf((1 - L)/2), ppf((1 + L)/2)]. 0.5 + 0.5 L is rounded (|dp| <= eps/2) where
    0.5 - 0.5 L is exact, and a kernel may use either for a symmetric marginal: that moves an
    endpoint by up to dp / pdf(endpoint), which the tolerance adds."""
    for j, level in enumerate(LEVELS):
        want = dist.ppf([0.5 - 0.5 * level, 0.5 + 0.5 * level])
        tol = 1e-12 * (np.abs(want) + scale) + 1.2e-16 / dist.pdf(want)
        assert np.all(np.abs(np.array([lo[j], hi[j]]) - want) <= tol)


def check_discrete_quantiles(got: np.ndarray, dist) -> None:
    np.testing.assert_array_equal(got, dist.ppf(QUANTILES))
    # and by definition: the smallest k with P(X <= k) >= q
    assert np.all(dist.cdf(got) >= QUANTILES * (1 - 1e-12))
    assert np.all(dist.cdf(got - 1) < QUANTILES)


NG_PARAMS = np.array(
    [
        [0.0, 1.0, 2.0, 2.0],
        [3.5, 0.1, 0.6, 0.2],
        [-2.0, 40.0, 250.0, 90.0],
        [1e3, 5.0, 1.0, 1e4],
        [0.5, 2.0, 1.2, 0.01],
    ]
)


def test_normal_gamma_interval_of_a_level_that_rounds_away_is_its_point() -> None:
    """0.5 + 0.5 L == 0.5 for L below about 1.1e-16: the interval is [mu, mu] (its index into
    the t quantiles was left unset, np.empty, and read out of bounds: a segfault)."""
    rows = naive.Rows(NG_PARAMS[0], NG_PARAMS.shape[0])
    rows.params[:] = NG_PARAMS
    levels = np.array([1e-300, 0.9, 1e-17])
    _, _, lo, hi, _ = naive.summarize(normal_gamma, rows, levels, QUANTILES)
    for j in (0, 2):
        np.testing.assert_array_equal(lo[:, j, 0], NG_PARAMS[:, 0])
        np.testing.assert_array_equal(hi[:, j, 0], NG_PARAMS[:, 0])
    want = rows_with(normal_gamma, NG_PARAMS, rows.obs_size)
    np.testing.assert_array_equal(lo[:, 1], want[2][:, 1])  # the 0.9 interval as alone


def test_normal_gamma_summaries_match_student_t() -> None:
    mean, sd, lo, hi, q = rows_with(normal_gamma, NG_PARAMS, np.ones(len(NG_PARAMS)))
    for r, (mu, k, a, b) in enumerate(NG_PARAMS):
        marginal = stats.t(df=2 * a, loc=mu, scale=math.sqrt(b / (a * k)))
        assert mean[r, 0] == mu
        if a > 1.0:
            assert sd[r, 0] == pytest.approx(marginal.std(), rel=1e-13)
        else:  # df <= 2: the t marginal has no finite variance
            assert math.isnan(sd[r, 0]) and not np.isfinite(marginal.std())
        check_intervals(lo[r, :, 0], hi[r, :, 0], marginal, marginal.std() if a > 1 else b)
        predictive = naive.ng_predictive(NG_PARAMS[r])
        np.testing.assert_allclose(
            q[r], predictive.ppf(QUANTILES), rtol=1e-12, atol=1e-12 * predictive.kwds["scale"]
        )


BB_PARAMS = np.array([[2.0, 3.0], [0.3, 0.4], [0.5, 30.0], [400.0, 600.0], [1.0, 1.0], [1e4, 3.0]])
BB_TRIALS = np.array([20.0, 10_000.0, 10_000.0, 10_000.0, 1.0, 57.0])


def test_beta_binomial_summaries_match_beta_and_betabinom() -> None:
    mean, sd, lo, hi, q = rows_with(beta_binomial, BB_PARAMS, BB_TRIALS)
    for r, (a, b) in enumerate(BB_PARAMS):
        marginal = stats.beta(a, b)
        assert mean[r, 0] == pytest.approx(marginal.mean(), rel=1e-13)
        assert sd[r, 0] == pytest.approx(marginal.std(), rel=1e-13)
        check_intervals(lo[r, :, 0], hi[r, :, 0], marginal, marginal.std())
        check_discrete_quantiles(q[r], stats.betabinom(int(BB_TRIALS[r]), a, b))


def test_beta_binomial_quantiles_for_random_levels() -> None:
    rng = np.random.default_rng(5)
    for _ in range(20):
        a, b = 10 ** rng.uniform(-1, 2, 2)
        n = int(rng.integers(1, 400))
        rows = naive.Rows(np.array([a, b]), 1)
        rows.obs_size[:] = n
        qs = np.sort(rng.uniform(0.0, 1.0, 9))
        out = np.empty((1, qs.size))
        beta_binomial.summarize(
            rows.params,
            rows.obs_size,
            np.zeros(1, np.int64),
            LEVELS,
            qs,
            np.empty((1, 1)),
            np.empty((1, 1)),
            np.empty((1, 4, 1)),
            np.empty((1, 4, 1)),
            out,
        )
        np.testing.assert_array_equal(out[0], stats.betabinom(n, a, b).ppf(qs))


# (a, b, e): b + e a power of two, so scipy's p = b / (b + e) is exact
GP_PARAMS = np.array([[3.0, 1.5], [0.4, 3.0], [250.0, 63.0], [7.5, 1.0], [2.0, 0.25]])
GP_EXPOSURE = np.array([0.5, 1.0, 1.0, 7.0, 1.75])


def test_gamma_poisson_summaries_match_gamma_and_nbinom() -> None:
    mean, sd, lo, hi, q = rows_with(gamma_poisson, GP_PARAMS, GP_EXPOSURE)
    for r, (a, b) in enumerate(GP_PARAMS):
        marginal = stats.gamma(a, scale=1.0 / b)
        assert mean[r, 0] == pytest.approx(marginal.mean(), rel=1e-13)
        assert sd[r, 0] == pytest.approx(marginal.std(), rel=1e-13)
        check_intervals(lo[r, :, 0], hi[r, :, 0], marginal, marginal.std())
        e = GP_EXPOSURE[r]
        check_discrete_quantiles(q[r], stats.nbinom(a, b / (b + e)))


def test_quantiles_are_nan_without_a_previous_observation_size() -> None:
    for module, params in ((beta_binomial, [2.0, 3.0]), (gamma_poisson, [3.0, 1.5])):
        rows = naive.Rows(np.array(params), 1)  # obs_size 0: no event seen yet
        *_, q = naive.summarize(module, rows, LEVELS, QUANTILES)
        assert np.all(np.isnan(q))


def test_dirichlet_marginals_are_beta() -> None:
    alpha = np.array([[1.0, 2.0, 0.5, 1.5], [30.0, 0.2, 7.0, 100.0]])
    mean, sd, lo, hi, q = rows_with(dirichlet, alpha, np.ones(2))
    assert mean.shape == (2, 4) and lo.shape == (2, LEVELS.size, 4)
    for r in range(2):
        total = alpha[r].sum()
        np.testing.assert_allclose(mean[r].sum(), 1.0, rtol=1e-15)
        for k, a in enumerate(alpha[r]):
            marginal = stats.beta(a, total - a)
            assert mean[r, k] == pytest.approx(marginal.mean(), rel=1e-13)
            assert sd[r, k] == pytest.approx(marginal.std(), rel=1e-13)
            check_intervals(lo[r, :, k], hi[r, :, k], marginal, marginal.std())
    assert np.all(np.isnan(q))


def test_summaries_read_only_the_requested_slots() -> None:
    rows = naive.Rows(np.array([2.0, 3.0]), 3)
    rows.params[1] = [40.0, 7.0]
    rows.obs_size[:] = 10.0
    out = (
        np.empty((1, 1)),
        np.empty((1, 1)),
        np.empty((1, 1, 1)),
        np.empty((1, 1, 1)),
        np.empty((1, 1)),
    )
    beta_binomial.summarize(
        rows.params, rows.obs_size, np.array([1]), np.array([0.9]), np.array([0.5]), *out
    )
    assert out[0][0, 0] == pytest.approx(40.0 / 47.0, rel=1e-15)
    assert out[4][0, 0] == stats.betabinom(10, 40.0, 7.0).ppf(0.5)
