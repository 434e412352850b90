"""Simulation-based calibration (Talts et al. 2018) of every family's ``update``.

For each of N replications: draw theta from the prior, data given theta, run the kernel (all N
streams interleaved in one call), draw L posterior samples from the row, and record the rank of
theta among them. If the posterior is the true posterior, ranks are uniform on 0..L.

Test: Pearson chi-square on the L + 1 = 20 rank bins (N = 2000, 100 expected per bin). There
are 10 uniformity checks below, each at significance 1e-4, so a correct set of kernels fails
a fresh seed with probability <= 1e-3 (Bonferroni); the seeds are fixed, so the outcome is
deterministic. Power: each test also ranks theta against a deliberately wrong posterior (a
rate/scale hyperparameter off by a factor of 2, or the evidence counted twice) and requires
rejection at the same level; those p-values are below 1e-17 (1e-300 for the factor-2 rates),
so the margin is wide.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from bayestream.models import beta_binomial, dirichlet, gamma_poisson, normal_gamma
from tests import naive

N, L, EVENTS = 2000, 19, 5
ALPHA = 1e-4


def rank_p_value(theta: np.ndarray, draws: np.ndarray) -> float:
    """p-value of rank uniformity; ``draws`` has shape [N, L]."""
    ranks = (draws < theta[:, None]).sum(axis=1)
    counts = np.bincount(ranks, minlength=L + 1)
    return float(stats.chisquare(counts).pvalue)


def run(
    module, prior: np.ndarray, x: np.ndarray, size: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Posterior rows after events ``x[r, j]`` (sizes ``size[r, j]``) of N streams, all fed in
    one call in a random interleaving that keeps each stream's own order."""
    labels = rng.permutation(np.repeat(np.arange(N), EVENTS))  # arrival order of streams
    occurrence = np.empty_like(labels)
    occurrence[np.argsort(labels, kind="stable")] = np.tile(np.arange(EVENTS), N)
    rows = naive.Rows(prior, N)
    _, status = naive.apply(
        module,
        rows,
        labels,
        np.arange(labels.size, dtype=float),
        x[labels, occurrence],
        size[labels, occurrence],
    )
    assert np.all(status == 0)
    np.testing.assert_array_equal(rows.n_eff, EVENTS)
    return rows.params


def test_normal_gamma_is_calibrated() -> None:
    rng = np.random.default_rng(1001)
    prior = np.array([0.5, 2.0, 3.0, 2.5])
    tau = rng.gamma(prior[2], 1.0 / prior[3], N)
    mu = rng.normal(prior[0], 1.0 / np.sqrt(prior[1] * tau))
    x = rng.normal(mu[:, None], 1.0 / np.sqrt(tau[:, None]), (N, EVENTS))
    post = run(normal_gamma, prior, x, np.ones_like(x), rng)
    m, k, a, b = post.T

    def draws(beta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        tau_l = rng.gamma(a[:, None], 1.0 / beta[:, None], (N, L))
        return rng.normal(m[:, None], 1.0 / np.sqrt(k[:, None] * tau_l)), tau_l

    mu_l, tau_l = draws(b)
    assert rank_p_value(mu, mu_l) > ALPHA
    assert rank_p_value(tau, tau_l) > ALPHA
    mu_w, tau_w = draws(2.0 * b)
    assert rank_p_value(tau, tau_w) < ALPHA
    assert rank_p_value(mu, mu_w) < ALPHA


def test_beta_binomial_is_calibrated() -> None:
    rng = np.random.default_rng(1002)
    prior = np.array([2.0, 3.0])
    p = rng.beta(prior[0], prior[1], N)
    trials = rng.integers(1, 12, (N, EVENTS))
    x = rng.binomial(trials, p[:, None])
    a, b = run(beta_binomial, prior, x.astype(float), trials.astype(float), rng).T
    assert rank_p_value(p, rng.beta(a[:, None], b[:, None], (N, L))) > ALPHA
    assert rank_p_value(p, rng.beta(a[:, None], 2.0 * b[:, None], (N, L))) < ALPHA


def test_gamma_poisson_is_calibrated() -> None:
    rng = np.random.default_rng(1003)
    prior = np.array([3.0, 1.5])
    lam = rng.gamma(prior[0], 1.0 / prior[1], N)
    exposure = rng.uniform(0.2, 2.0, (N, EVENTS))
    x = rng.poisson(lam[:, None] * exposure)
    a, b = run(gamma_poisson, prior, x.astype(float), exposure, rng).T
    assert rank_p_value(lam, rng.gamma(a[:, None], 1.0 / b[:, None], (N, L))) > ALPHA
    assert rank_p_value(lam, rng.gamma(a[:, None], 0.5 / b[:, None], (N, L))) < ALPHA


def dirichlet_draws(alpha: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    g = rng.gamma(alpha[:, None, :], 1.0, (N, L, alpha.shape[1]))
    return g / g.sum(axis=2, keepdims=True)


def test_dirichlet_is_calibrated() -> None:
    rng = np.random.default_rng(1004)
    prior = np.array([1.0, 2.0, 0.5, 1.5])
    pi = rng.dirichlet(prior, N)
    x = np.array([rng.choice(4, EVENTS, p=row) for row in pi], dtype=float)
    alpha = run(dirichlet, prior, x, np.ones_like(x), rng)
    counts = alpha - prior
    np.testing.assert_array_equal(counts.sum(axis=1), EVENTS)
    good = dirichlet_draws(alpha, rng)
    wrong = dirichlet_draws(prior + 2.0 * counts, rng)  # evidence counted twice
    for k in range(4):
        assert rank_p_value(pi[:, k], good[:, :, k]) > ALPHA
    assert min(rank_p_value(pi[:, k], wrong[:, :, k]) for k in range(4)) < ALPHA


@pytest.mark.parametrize("seed", [1, 2])
def test_rank_statistic_is_uniform_under_the_null(seed: int) -> None:
    """The harness itself: theta drawn from the very distribution it is ranked against."""
    rng = np.random.default_rng(seed)
    assert rank_p_value(rng.normal(size=N), rng.normal(size=(N, L))) > ALPHA
