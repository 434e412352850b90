"""Determinism: the state of a stream depends only on its row and its events.

Same input from the same state gives bit-identical particles and outputs; splitting a call's
events into several calls changes nothing; ``update_parallel`` equals ``update`` bit for bit;
a row survives a round trip through bytes mid-stream. Plus the stream bookkeeping (lateness,
expiry) the docstring of ``bayestream.models.particle.filter`` promises.
"""

from __future__ import annotations

import numpy as np
import pytest

from bayestream.models import particle as pf
from bayestream.models._protocol import OUT_PROB
from tests.unit.particle_harness import Config, Rows

CONFIGS = {
    "normal_systematic": (Config(p=64, per_event=False, q=0.3), 1.0),
    "t_stratified": (
        Config(p=65, obs=pf.OBS_STUDENT_T, resampling=pf.RESAMPLE_STRATIFIED, ess_threshold=0.9),
        1.0,
    ),
    "poisson_residual": (
        Config(p=64, model=pf.MODEL_POISSON_RATE, resampling=pf.RESAMPLE_RESIDUAL),
        3.0,
    ),
    "binomial": (Config(p=33, model=pf.MODEL_BINOMIAL_RATE, ess_threshold=1.0), 12.0),
}


def events(cfg: Config, size: float, n: int, streams: int, seed: int) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    slots = rng.integers(0, streams, n)
    ts = np.cumsum(rng.exponential(1.0, n)) - rng.exponential(0.5, n) * (rng.random(n) < 0.2)
    if cfg.model == pf.MODEL_LOCAL_LEVEL:
        x = rng.normal(0.0, 2.0, n)
    else:
        x = rng.binomial(int(size), 0.3, n).astype(float)
    return slots, ts, x, np.full(n, size)


def same(a: Rows, b: Rows) -> None:
    for name in ("params", "last_ts", "n_eff", "obs_size"):
        np.testing.assert_array_equal(
            getattr(a, name).view(np.uint64) if name == "params" else getattr(a, name),
            getattr(b, name).view(np.uint64) if name == "params" else getattr(b, name),
        )


@pytest.mark.parametrize("case", sorted(CONFIGS))
def test_same_input_same_bits(case: str) -> None:
    cfg, size = CONFIGS[case]
    a, b = Rows(cfg, 12, seed=3), Rows(cfg, 12, seed=3)
    ev = events(cfg, size, 400, 12, 1)
    ta, sa = a.update(*ev)
    tb, sb = b.update(*ev)
    np.testing.assert_array_equal(ta, tb)
    np.testing.assert_array_equal(sa, sb)
    same(a, b)
    assert np.all(a.params.view(np.uint64)[:, 2 * cfg.p + 1] > 0)  # the generator advanced


@pytest.mark.parametrize("case", sorted(CONFIGS))
def test_batch_invariance(case: str) -> None:
    cfg, size = CONFIGS[case]
    whole, parts = Rows(cfg, 12, seed=3), Rows(cfg, 12, seed=3)
    slots, ts, x, sz = events(cfg, size, 400, 12, 2)
    tail_w, _ = whole.update(slots, ts, x, sz)
    tails = []
    for lo, hi in ((0, 1), (1, 97), (97, 250), (250, 400)):
        tails.append(parts.update(slots[lo:hi], ts[lo:hi], x[lo:hi], sz[lo:hi])[0])
    np.testing.assert_array_equal(np.concatenate(tails), tail_w)
    same(whole, parts)


@pytest.mark.parametrize("case", sorted(CONFIGS))
def test_parallel_equals_serial(case: str) -> None:
    cfg, size = CONFIGS[case]
    serial, parallel = Rows(cfg, 300, seed=9), Rows(cfg, 300, seed=9)
    ev = events(cfg, size, 3000, 300, 3)
    expire = np.where(np.arange(3000) > 2000, ev[1] - 30.0, -np.inf)  # some expiries
    ts_, ss = serial.update(*ev, expire=expire)
    tp, sp = parallel.update(*ev, expire=expire, parallel=True)
    np.testing.assert_array_equal(ts_, tp)
    np.testing.assert_array_equal(ss, sp)
    same(serial, parallel)
    empty = np.empty(0)
    parallel.update(np.empty(0, np.int64), empty, empty, empty, parallel=True)


def test_row_round_trips_through_bytes() -> None:
    cfg, size = CONFIGS["t_stratified"]
    a = Rows(cfg, 5, seed=4)
    slots, ts, x, sz = events(cfg, size, 200, 5, 4)
    a.update(slots[:100], ts[:100], x[:100], sz[:100])
    b = Rows(cfg, 5, seed=999)  # a different key: the bytes must bring the right one
    for name in ("params", "last_ts", "n_eff", "obs_size"):
        arr = getattr(a, name)
        restored = np.frombuffer(arr.tobytes(), dtype=np.float64).reshape(arr.shape)
        getattr(b, name)[...] = restored
    ta, _ = a.update(slots[100:], ts[100:], x[100:], sz[100:])
    tb, _ = b.update(slots[100:], ts[100:], x[100:], sz[100:])
    np.testing.assert_array_equal(ta, tb)
    same(a, b)


def test_late_events_touch_nothing_and_out_of_order_gets_dt_zero() -> None:
    cfg = Config(p=16, per_event=False, q=1.0, max_lateness=5.0)
    rows = Rows(cfg, 1, seed=1)
    rows.update([0, 0], [100.0, 110.0], [0.0, 0.5])
    before = rows.copy()
    tail, status = rows.update([0], [104.0], [0.2])  # 6 s behind: late
    assert status[0] == pf.LATE and np.isnan(tail[0])
    same(rows, before)
    counter = rows.params.view(np.uint64)[0, 33]
    _, status = rows.update([0], [106.0], [0.2])  # within lateness: dt = 0, nothing drawn
    assert status[0] == pf.APPLIED and rows.last_ts[0] == 110.0 and rows.n_eff[0] == 3
    assert rows.params.view(np.uint64)[0, 33] - counter <= 1  # at most a resampling draw


def test_expiry_redraws_from_the_prior_with_the_same_generator() -> None:
    cfg = Config(p=16, per_event=False, init_mean=50.0, init_sd=0.1)
    rows = Rows(cfg, 1, seed=1)
    rows.update([0, 0, 0], [0.0, 1.0, 2.0], [0.0, 0.0, 0.0])
    bits = rows.params.view(np.uint64)
    key, counter = bits[0, 32], bits[0, 33]
    rows.update([0], [100.0], [50.0], expire=[50.0])
    assert bits[0, 32] == key and bits[0, 33] > counter
    assert rows.n_eff[0] == 1 and rows.last_ts[0] == 100.0
    assert abs(rows.summarize()["latent_mean"][0] - 50.0) < 1.0


def test_fresh_rows_have_keys_and_no_events() -> None:
    rows = Rows(Config(p=8), 3, seed=7)
    bits = rows.params.view(np.uint64)
    np.testing.assert_array_equal(
        bits[:, 16], np.uint64(7) ^ np.arange(3, dtype=np.uint64) * np.uint64(0x9E37)
    )
    np.testing.assert_array_equal(bits[:, 17], 0)
    assert np.isnan(rows.last_ts).all()


def test_row_layout_is_the_documented_one() -> None:
    """filter's docstring: particles, log-weights, key, counter, then the anomaly probability
    of the newest event in column 2P + 2 (the first column after the family's width)."""
    p = 16
    rows = Rows(Config(p=p, robust=True), 2, seed=3)
    key = rows.params.view(np.uint64)[:, 2 * p].copy()
    rows.update([0, 1, 0], [0.0, 0.0, 1.0], [0.5, -0.2, 30.0])
    prob = rows.last_out[:, OUT_PROB]
    assert pf.row_width(p) == 2 * p + 2
    np.testing.assert_array_equal(rows.params[:, 2 * p + 2], [prob[2], prob[1]])
    np.testing.assert_array_equal(rows.params.view(np.uint64)[:, 2 * p], key)
    assert (rows.params.view(np.uint64)[:, 2 * p + 1] > 0).all()  # the counter moved
    np.testing.assert_allclose(
        np.logaddexp.reduce(rows.params[:, p : 2 * p], axis=1), 0.0, atol=1e-12
    )
    assert prob[2] > 0.5 > prob[0]  # 30 is an outlier under particles near 0
