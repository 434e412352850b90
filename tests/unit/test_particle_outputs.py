"""Outputs against slow references: predictive tails against a pure numpy/scipy mixture,
summaries against numpy weighted statistics, KL against the Gaussian formula, resampling
against its definition (unbiased offspring counts)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from bayestream.models import particle as pf
from bayestream.models._protocol import OUT_PIT, OUT_PROB
from bayestream.models.particle import resampling
from tests.unit.particle_harness import Config, Rows

CASES = {
    "normal": (Config(p=50, per_event=False, q=0.5, r=0.7), 1.0, [-3.0, 0.0, 0.4, 2.0, 9.0]),
    "t": (Config(p=50, per_event=False, obs=pf.OBS_STUDENT_T, nu=3.0, r=0.7), 1.0, [-8, 0.3, 5]),
    "poisson": (
        Config(p=50, per_event=False, model=pf.MODEL_POISSON_RATE, init_mean=1.0),
        3.0,
        [0.0, 1.0, 8.0, 30.0],
    ),
    "binomial": (
        Config(p=50, per_event=False, model=pf.MODEL_BINOMIAL_RATE, init_sd=1.5),
        15.0,
        [0.0, 3.0, 14.0, 15.0],
    ),
}


def warmed(cfg: Config, size: float, seed: int) -> Rows:
    """A row with uneven weights: a few events, never resampled."""
    rows = Rows(Config(**{**cfg.__dict__, "ess_threshold": 0.0}), 1, seed=seed)
    y0 = 1.0 if cfg.model == pf.MODEL_LOCAL_LEVEL else 2.0
    rows.update([0, 0, 0], [0.0, 1.0, 2.0], [y0] * 3, [size] * 3)
    return rows


def mixture_tails(cfg: Config, x: np.ndarray, w: np.ndarray, y: float, size: float) -> tuple:
    if cfg.model == pf.MODEL_LOCAL_LEVEL:
        dist = stats.norm if cfg.obs == pf.OBS_NORMAL else stats.t(cfg.nu)
        z = (y - x) / np.sqrt(cfg.r)
        return float(w @ dist.cdf(z)), 0.0, float(w @ dist.sf(z))
    if cfg.model == pf.MODEL_POISSON_RATE:
        comp = stats.poisson(size * np.exp(x))
    else:
        comp = stats.binom(int(size), 1.0 / (1.0 + np.exp(-x)))
    return float(w @ comp.cdf(y - 1)), float(w @ comp.pmf(y)), float(w @ comp.sf(y))


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("side", [0, 1, 2])
def test_tails_match_the_mixture(case: str, side: int) -> None:
    cfg, size, ys = CASES[case]
    cfg = Config(**{**cfg.__dict__, "side": side})
    for y in ys:
        rows = warmed(cfg, size, seed=11)
        x, w = rows.x()[0].copy(), rows.w()[0].copy()
        tail, _ = rows.update([0], [2.0], [y], [size])  # dt = 0: the particles x, w
        lower, at, upper = mixture_tails(cfg, x, w, y, size)
        lower, upper = lower + 0.5 * at, upper + 0.5 * at
        want = [upper, lower, min(1.0, 2 * min(lower, upper))][side]
        np.testing.assert_allclose(tail[0], want, rtol=1e-9, atol=1e-15)


@pytest.mark.parametrize("case", sorted(CASES))
def test_summaries_match_numpy(case: str) -> None:
    cfg, size, _ = CASES[case]
    rows = warmed(cfg, size, seed=12)
    levels, qs = np.array([0.5, 0.8, 0.99]), np.array([0.01, 0.3, 0.5, 0.9])
    out = rows.summarize(levels, qs)
    x, w = rows.x()[0], rows.w()[0]
    m = w @ x
    np.testing.assert_allclose(out["latent_mean"][0], m, rtol=1e-12)
    np.testing.assert_allclose(out["latent_sd"][0], np.sqrt(w @ (x - m) ** 2), rtol=1e-10)
    np.testing.assert_allclose(out["ess"][0], 1.0 / (w @ w), rtol=1e-12)
    nat = {0: x, 1: np.exp(x), 2: 1.0 / (1.0 + np.exp(-x))}[cfg.model]
    np.testing.assert_allclose(out["mean"][0], w @ nat, rtol=1e-12)
    np.testing.assert_allclose(out["sd"][0], np.sqrt(w @ (nat - w @ nat) ** 2), rtol=1e-10)
    order = np.argsort(x)
    cum = np.cumsum(w[order])
    for k, level in enumerate(levels):
        for u, got in ((0.5 - level / 2, out["lo"][0, k]), (0.5 + level / 2, out["hi"][0, k])):
            want = nat[order[min(np.searchsorted(cum, u), x.size - 1)]]
            np.testing.assert_allclose(got, want, rtol=1e-12)
    for k, u in enumerate(qs):
        got = out["q"][0, k]
        if cfg.model == pf.MODEL_LOCAL_LEVEL:
            dist = stats.norm if cfg.obs == pf.OBS_NORMAL else stats.t(cfg.nu)
            np.testing.assert_allclose(w @ dist.cdf((got - x) / np.sqrt(cfg.r)), u, atol=1e-12)
        else:  # smallest integer with F >= u
            lower, _, _ = mixture_tails(cfg, x, w, got, size)
            assert (
                got == np.floor(got) and lower < u <= 1.0 - mixture_tails(cfg, x, w, got, size)[2]
            )


def test_predictive_quantiles_of_counts_need_a_size() -> None:
    cfg, size, _ = CASES["poisson"]
    rows = warmed(cfg, size, seed=13)
    rows.obs_size[0] = np.nan
    assert np.isnan(rows.summarize()["q"]).all()


def test_kl_is_the_gaussian_kl_of_the_moments() -> None:
    cfg, size, _ = CASES["normal"]
    a, b = warmed(cfg, size, seed=14), warmed(cfg, size, seed=15)
    b.update([0], [5.0], [3.0])
    p = cfg.p

    def mv(rows: Rows) -> tuple[float, float]:
        x, w = rows.x()[0], rows.w()[0]
        return float(w @ x), float(w @ (x - w @ x) ** 2)

    (m1, v1), (m2, v2) = mv(a), mv(b)
    want = pf.gaussian_kl(m1, v1, m2, v2)
    np.testing.assert_allclose(pf.kl(a.params[0], b.params[0], p), want, rtol=1e-9)
    assert pf.kl(a.params[0], a.params[0], p) == 0.0
    assert pf.kl(a.params[0], b.params[0], p) > 0.0


@pytest.mark.parametrize(
    "scheme", [pf.RESAMPLE_SYSTEMATIC, pf.RESAMPLE_STRATIFIED, pf.RESAMPLE_RESIDUAL]
)
def test_resampling_is_unbiased(scheme: int) -> None:
    """E[offspring of j] = P w_j / W. Over B runs with fresh counters, the mean count of each
    particle must be within 4.5 standard errors (per-particle sd from the runs, floored at the
    least variance of an integer count with that mean; Bonferroni over P = 40 particles at
    ~1e-5 each). Systematic and residual keep every
    count within one of P w_j / W (systematic) or above its floor (residual)."""
    p, runs = 40, 4000
    rng = np.random.default_rng(3)
    w = rng.gamma(0.5, size=p)
    x = np.arange(p, dtype=float)
    counts = np.empty((runs, p))
    out = np.empty(p)
    expected = p * w / w.sum()
    for b in range(runs):
        scratch = w.copy()
        resampling.resample(x, scratch, w.sum(), scheme, np.uint64(77), np.uint64(b * 64), out)
        counts[b] = np.bincount(out.astype(int), minlength=p)
        assert np.all(np.diff(out) >= 0) or scheme == pf.RESAMPLE_RESIDUAL
    frac = expected - np.floor(expected)  # an integer count of mean e has variance >= f(1-f)
    se = np.sqrt(np.maximum(counts.var(axis=0), frac * (1.0 - frac)) / runs)
    assert np.all(np.abs(counts.mean(axis=0) - expected) <= 4.5 * se + 1e-9)
    if scheme == pf.RESAMPLE_SYSTEMATIC:
        assert np.all(np.abs(counts - expected) < 1.0 + 1e-9)
    if scheme == pf.RESAMPLE_RESIDUAL:
        assert np.all(counts >= np.floor(expected) - 1e-9)


def _outlier_density(cfg: Config, x: np.ndarray, w: np.ndarray, y: float, size: float) -> float:
    """q(y): the broad component around the particles' predictive (widened 10 times)."""
    c = 10.0
    if cfg.model == pf.MODEL_BINOMIAL_RATE:
        return 1.0 / (size + 1.0)
    if cfg.model == pf.MODEL_POISSON_RATE:
        lam = size * np.exp(x)
        m = w @ lam
        var = c**2 * (m + w @ (lam - m) ** 2)
        p = m / var
        return float(stats.nbinom.pmf(y, m * p / (1 - p), p))
    m = w @ x
    spread = w @ (x - m) ** 2 + cfg.r
    if cfg.obs == pf.OBS_NORMAL:
        return float(stats.norm.pdf(y, m, c * np.sqrt(spread)))
    return float(stats.t.pdf(y, cfg.nu, m, c * np.sqrt(spread)))


@pytest.mark.parametrize("case", sorted(CASES))
def test_anomaly_probability_is_the_mixture_posterior(case: str) -> None:
    """P(outlier | y) = e q / (e q + (1 - e) p) with p the particles' predictive density (or
    mass) and q the broad component, e = 0.001; PIT = mid-p lower tail."""
    cfg, size, ys = CASES[case]
    for y in ys:
        rows = warmed(cfg, size, seed=13)
        x, w = rows.x()[0].copy(), rows.w()[0].copy()
        rows.update([0], [2.0], [y], [size])
        lower, at, _ = mixture_tails(cfg, x, w, y, size)
        if cfg.model == pf.MODEL_LOCAL_LEVEL:
            dist = stats.norm if cfg.obs == pf.OBS_NORMAL else stats.t(cfg.nu)
            at = float(w @ dist.pdf((y - x) / np.sqrt(cfg.r))) / np.sqrt(cfg.r)
        q = _outlier_density(cfg, x, w, y, size)
        want = 0.001 * q / (0.001 * q + 0.999 * at)
        mass = 0.0 if cfg.model == pf.MODEL_LOCAL_LEVEL else at
        np.testing.assert_allclose(rows.last_out[0, OUT_PROB], want, rtol=1e-8, atol=1e-300)
        np.testing.assert_allclose(rows.last_out[0, OUT_PIT], lower + 0.5 * mass, atol=1e-12)


def test_robust_update_tempers_the_likelihood_by_one_minus_the_probability() -> None:
    cfg = Config(p=50, per_event=False, q=0.5, r=0.7, robust=True)
    for y in (0.4, 2.5, 9.0):
        rows = warmed(cfg, 1.0, seed=14)
        x, w = rows.x()[0].copy(), rows.w()[0].copy()
        rows.update([0], [2.0], [y], [1.0])
        weight = 1.0 - rows.last_out[0, OUT_PROB]
        want = w * stats.norm.pdf(y, x, np.sqrt(cfg.r)) ** weight
        np.testing.assert_allclose(rows.w()[0], want / want.sum(), rtol=1e-9)
    assert weight < 0.01  # 9.0 is far from every particle: the weights barely move
