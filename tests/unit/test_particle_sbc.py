"""Simulation-based calibration (Talts et al. 2018) of the particle filter, every model.

For each of N streams: draw the latent path from the model's prior (x_0 ~ N(init_mean,
init_sd^2), then a Gaussian random walk with variance q per event), draw T observations, run
``update`` (all streams interleaved in one call), draw L = 19 points from the particle
posterior (multinomially on the weights) and record the rank of the true x_T among them. If
the particle posterior is the filtering distribution, ranks are uniform on 0..L.

Test: Pearson chi-square on the 20 rank bins (N = 2000). With P = 512 particles the
approximation error of the posterior (O(1/sqrt(ESS)) on its quantiles, ESS ~ P/2) shifts each
bin's probability by far less than the bins' sampling error (sd ~ 1/sqrt(100) relative). Five
checks at level 1e-4 each: a correct filter fails a fresh seed with probability <= 5e-4
(Bonferroni); the seeds are fixed, so the outcome is deterministic. Power: the same ranks
against draws squeezed halfway to the posterior mean must be rejected at the same level.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from bayestream.models import particle as pf
from tests.unit.particle_harness import Config, Rows

N, L, T, P = 2000, 19, 5, 512
ALPHA = 1e-4


def rank_p_value(theta: np.ndarray, draws: np.ndarray) -> float:
    ranks = (draws < theta[:, None]).sum(axis=1)
    return float(stats.chisquare(np.bincount(ranks, minlength=L + 1)).pvalue)


def simulate(cfg: Config, size: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """True x_T [N] and observations [N, T]."""
    x = cfg.init_mean + cfg.init_sd * rng.standard_normal(N)
    y = np.empty((N, T))
    for t in range(T):
        if t > 0:
            x = x + np.sqrt(cfg.q) * rng.standard_normal(N)
        if cfg.model == pf.MODEL_POISSON_RATE:
            y[:, t] = rng.poisson(size * np.exp(x))
        elif cfg.model == pf.MODEL_BINOMIAL_RATE:
            y[:, t] = rng.binomial(int(size), 1.0 / (1.0 + np.exp(-x)))
        elif cfg.obs == pf.OBS_STUDENT_T:
            y[:, t] = x + np.sqrt(cfg.r) * rng.standard_t(cfg.nu, N)
        else:
            y[:, t] = x + np.sqrt(cfg.r) * rng.standard_normal(N)
    return x, y


def posterior_draws(rows: Rows, rng: np.random.Generator) -> np.ndarray:
    x, w = rows.x(), rows.w()
    return np.stack([x[i, rng.choice(x.shape[1], L, p=w[i])] for i in range(N)])


CASES = {
    "normal": (Config(p=P, q=0.2, r=1.0, init_mean=1.0, init_sd=1.5), 1.0),
    "student_t": (Config(p=P, q=0.2, r=0.5, obs=pf.OBS_STUDENT_T, nu=3.0, init_sd=1.5), 1.0),
    "student_t_residual": (
        Config(p=P, q=0.2, r=0.5, obs=pf.OBS_STUDENT_T, nu=3.0, resampling=pf.RESAMPLE_RESIDUAL),
        1.0,
    ),
    "poisson": (Config(p=P, model=pf.MODEL_POISSON_RATE, q=0.05, init_mean=0.5, init_sd=0.5), 2.0),
    "binomial": (
        Config(
            p=P,
            model=pf.MODEL_BINOMIAL_RATE,
            q=0.1,
            init_mean=-1.0,
            init_sd=0.7,
            resampling=pf.RESAMPLE_STRATIFIED,
        ),
        20.0,
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_particle_posterior_is_calibrated(case: str) -> None:
    cfg, size = CASES[case]
    rng = np.random.default_rng(4242 + sorted(CASES).index(case))
    truth, y = simulate(cfg, size, rng)
    rows = Rows(cfg, N, seed=5)
    order = rng.permutation(np.repeat(np.arange(N), T))  # interleave, each stream in order
    step = np.zeros(N, dtype=np.int64)
    obs = np.empty(order.size)
    for k, s in enumerate(order):
        obs[k] = y[s, step[s]]
        step[s] += 1
    _, status = rows.update(
        order, np.arange(order.size, dtype=float), obs, np.full(order.size, size)
    )
    assert np.all(status == pf.APPLIED)
    np.testing.assert_array_equal(rows.n_eff, T)
    draws = posterior_draws(rows, rng)
    assert rank_p_value(truth, draws) > ALPHA
    mean = (rows.x() * rows.w()).sum(axis=1, keepdims=True)
    squeezed = mean + 0.5 * (draws - mean)
    assert rank_p_value(truth, squeezed) < ALPHA
