"""Degenerate inputs leave finite state and valid outputs.

All weights underflowing, observations 1e300 away, NaN observations, dt = 0, huge dt, huge
q and init values, counts a model cannot produce, zero exposure: the particles and
log-weights stay finite with logsumexp 0, tails stay in [0, 1], summaries have no NaN.
"""

from __future__ import annotations

import numpy as np
import pytest

from bayestream.models import particle as pf
from tests.unit.particle_harness import Config, Rows

MODELS = {
    "normal": (Config(p=32, per_event=False), 1.0),
    "t": (Config(p=32, per_event=False, obs=pf.OBS_STUDENT_T, nu=2.0), 1.0),
    "poisson": (Config(p=32, per_event=False, model=pf.MODEL_POISSON_RATE), 4.0),
    "binomial": (Config(p=32, per_event=False, model=pf.MODEL_BINOMIAL_RATE), 10.0),
}


def assert_sane(rows: Rows, tail: np.ndarray) -> None:
    p = rows.cfg.p
    assert np.all(np.isfinite(rows.params[:, : 2 * p]))
    assert np.all(np.abs(rows.x()) <= pf.X_MAX)
    lw = rows.params[:, p : 2 * p]
    top = lw.max(axis=1)
    np.testing.assert_allclose(top + np.log(np.exp(lw - top[:, None]).sum(axis=1)), 0, atol=1e-12)
    assert np.all((tail >= 0.0) & (tail <= 1.0))
    out = rows.summarize()
    for name in ("mean", "lo", "hi", "latent_mean", "ess"):
        assert not np.any(np.isnan(out[name])), name
    assert np.all((out["ess"] >= 1.0 - 1e-9) & (out["ess"] <= p * (1 + 1e-12)))


@pytest.mark.parametrize("case", sorted(MODELS))
def test_extreme_observations(case: str) -> None:
    cfg, size = MODELS[case]
    rows = Rows(cfg, 1, seed=2)
    ys = [0.0, 1e300, -1e300, 1e10, np.nan, np.inf, 3.0, 2.5, -1.0, 1e18, 1.0]
    ts = np.arange(len(ys), dtype=float)
    before_lw = None
    for t, y in zip(ts, ys, strict=True):
        if y == 1e300:
            before_lw = rows.params[0, cfg.p : 2 * cfg.p].copy()
        tail, status = rows.update([0], [t], [y], [size])
        assert status[0] == pf.APPLIED
        assert_sane(rows, tail)
        if y == 1e300 and cfg.model == pf.MODEL_LOCAL_LEVEL and cfg.obs == pf.OBS_NORMAL:
            # no particle can explain it: weights kept, tail 0 (dt = 1 moved the particles)
            np.testing.assert_array_equal(rows.params[0, cfg.p : 2 * cfg.p], before_lw)
            assert tail[0] == 0.0
    assert rows.n_eff[0] == len(ys)


@pytest.mark.parametrize("case", sorted(MODELS))
def test_huge_dt_q_and_init(case: str) -> None:
    cfg, size = MODELS[case]
    cfg = Config(**{**cfg.__dict__, "q": 1e10, "init_mean": 1e300, "init_sd": 1e300})
    rows = Rows(cfg, 2, seed=3)
    tail, _ = rows.update([0, 1, 0, 1, 0], [0.0, 0.0, 1e300, 1e300, np.inf], [1.0] * 5, [size] * 5)
    assert_sane(rows, tail)


@pytest.mark.parametrize("case", sorted(MODELS))
def test_all_weights_underflow_then_recover(case: str) -> None:
    cfg, size = MODELS[case]
    rows = Rows(Config(**{**cfg.__dict__, "init_sd": 1e-3, "q": 0.0}), 1, seed=4)
    tail, _ = rows.update([0], [0.0], [0.0], [size])
    far = 1e6 if cfg.model == pf.MODEL_LOCAL_LEVEL else size  # every particle's pmf underflows
    tails = [rows.update([0], [1.0], [far], [size if cfg.model != 1 else 1e6])[0]]
    tails.append(rows.update([0], [2.0], [1.0], [size])[0])
    assert_sane(rows, np.concatenate([tail, *tails]))


def test_dt_zero_draws_nothing_and_keeps_particles() -> None:
    cfg = Config(p=32, per_event=False, q=5.0, ess_threshold=0.0)  # never resample
    rows = Rows(cfg, 1, seed=5)
    rows.update([0], [10.0], [0.0])
    x0 = rows.x().copy()
    counter = rows.params.view(np.uint64)[0, 65]
    tail, _ = rows.update([0, 0], [10.0, 10.0], [0.3, -0.2])
    np.testing.assert_array_equal(rows.x(), x0)
    assert rows.params.view(np.uint64)[0, 65] == counter
    assert_sane(rows, tail)


@pytest.mark.parametrize("model", [pf.MODEL_POISSON_RATE, pf.MODEL_BINOMIAL_RATE])
def test_counts_the_model_cannot_produce(model: int) -> None:
    rows = Rows(Config(p=16, model=model), 1, seed=6)
    rows.update([0], [0.0], [2.0], [5.0])
    lw = rows.params[0, 16:32].copy()
    bad = [(2.5, 5.0), (-1.0, 5.0), (6.0, 5.0 if model == 2 else np.nan), (1.0, -1.0)]
    for t, (y, size) in enumerate(bad, start=1):
        tail, status = rows.update([0], [float(t)], [y], [size])
        assert status[0] == pf.APPLIED and tail[0] == 0.0
        np.testing.assert_array_equal(rows.params[0, 16:32], lw)
    assert np.all(np.isfinite(rows.params[0, :32]))
    tail, _ = rows.update([0], [9.0], [0.0], [0.0])  # zero exposure / trials: y = 0 is certain
    assert_sane(rows, tail)
    assert abs(tail[0] - 0.5) < 1e-15  # mid-p of a certain outcome
