"""The ``dlm`` family (models/dlm.py) against a naive numpy forward filter on the same model,
and its calibration: simulation-based calibration of the level, PIT of the one-step forecasts.

The reference is West & Harrison's filter written with full matrices: ``G``, discounting of
``P = G C G'`` per component block, ``F`` from cos/sin of each harmonic (the kernel rotates),
scale-free covariances with the conjugate variance. The kernel's per-event functions are driven
directly (``_drive``) to give them arbitrary robust weights; the engine is checked with the
plain update (robust off) from a configuration.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

import numpy as np
import pytest
from scipy import stats

from bayestream import Engine, RawBatch, parse_config
from bayestream.models import dlm
from bayestream.models._jit import kernel
from bayestream.models._protocol import OUT_PIT

# --- the reference ------------------------------------------------------------------------


@dataclass
class Model:
    trend: bool = False
    periods: list[tuple[float, int]] = field(default_factory=list)  # period < 0: events
    discounts: tuple[float, float, float, float] = (0.99, 0.995, 0.995, 0.995)
    unit: float = 1.0  # seconds per unit of time (1 with per-event times: dt = 1)
    clip: float = math.inf
    level: float = 0.0
    level_var: float = 1e6
    trend_var: float = 1e-4
    seasonal_var: float = 4.0
    dof: float = 1.0
    variance: float = 1.0

    @property
    def p(self) -> int:
        return 1 + int(self.trend) + 2 * sum(h for _, h in self.periods)

    def blocks(self) -> list[tuple[slice, float]]:
        out = [(slice(0, 1), self.discounts[0])]
        start = 1
        if self.trend:
            out.append((slice(1, 2), self.discounts[1]))
            start = 2
        for _, h in self.periods:
            out.append((slice(start, start + 2 * h), self.discounts[2]))
            start += 2 * h
        return out

    def F(self, t: float, count: float) -> np.ndarray:
        f = [1.0] + ([0.0] if self.trend else [])
        for period, h in self.periods:
            phase = (count % -period) / -period if period < 0 else (t % period) / period
            for j in range(1, h + 1):
                f += [math.cos(2 * math.pi * j * phase), math.sin(2 * math.pi * j * phase)]
        return np.array(f)

    def prior_row(self) -> np.ndarray:
        values = dict(
            level=self.level,
            level_var=self.level_var,
            trend_var=self.trend_var,
            seasonal_var=self.seasonal_var,
            dof=self.dof,
            variance=self.variance,
        )
        return dlm.prior_row(values, self.trend, self.periods, self.discounts, self.unit, self.clip)


@dataclass
class State:
    m: np.ndarray
    C: np.ndarray
    n: float
    S: float
    count: float = 0.0


def start(model: Model) -> State:
    p = model.p
    m = np.zeros(p)
    m[0] = model.level
    diag = [model.level_var] + ([model.trend_var] if model.trend else [])
    diag += [model.seasonal_var] * (p - len(diag))
    return State(m, np.diag(diag), model.dof, model.variance)


def evolve(model: Model, st: State, dt: float) -> None:
    delta = dt / model.unit
    if delta > 0:
        G = np.eye(model.p)
        if model.trend:
            G[0, 1] = delta
        st.m = G @ st.m
        P = G @ st.C @ G.T
        for sl, d in model.blocks():
            P[sl, sl] *= math.exp(min(-delta * math.log(d), 30.0))
        st.C = P
        dv = model.discounts[3]
        st.n = model.dof + math.exp(delta * math.log(dv)) * (st.n - model.dof)


def step(
    model: Model, st: State, dt: float, t: float, y: float, w: float
) -> tuple[float, float, float]:
    """One event: evolve by dt, forecast (returns dof, f, S Q*), update with weight w."""
    st.count += 1
    evolve(model, st, dt)
    F = model.F(t, st.count)
    f = float(F @ st.m)
    u = st.C @ F
    Q = float(F @ u) + 1.0
    dof, scale2 = st.n, st.S * Q
    e = y - f
    if w > 0:
        Qw = Q - 1.0 + 1.0 / w
        st.m = st.m + u * e / Qw
        st.C = st.C - np.outer(u, u) / Qw
    z2 = min(e * e / (st.S * Q), model.clip**2)
    st.S = st.S * (st.n + z2) / (st.n + 1.0)
    st.n += 1.0
    return dof, f, scale2


@kernel
def _drive(
    theta: np.ndarray,
    prior: np.ndarray,
    dts: np.ndarray,
    ts: np.ndarray,
    ys: np.ndarray,
    ws: np.ndarray,
    out: np.ndarray,
) -> None:
    """The skeleton's per-event calls, with given weights: advance, score, observe."""
    for i in range(ts.shape[0]):
        dlm.advance(theta, prior, dts[i], ts[i])
        dlm.score(theta, ys[i], 1.0, 2, 10.0)
        df, loc, scale = dlm._predictive(theta)
        out[i, 0], out[i, 1], out[i, 2] = df, loc, scale * scale
        dlm.observe(theta, ys[i], 1.0, ws[i])


def _series(
    n: int, seed: int, silence: float = 86400.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Irregular event times (exponential gaps, a few repeated times and one ``silence``)
    of a daily and a 7-event cycle, a slope and noise."""
    rng = np.random.default_rng(seed)
    gaps = rng.exponential(300.0, n)
    gaps[rng.random(n) < 0.05] = 0.0
    gaps[n // 2] = silence
    ts = 1.7e9 + np.cumsum(gaps)
    dts = np.r_[0.0, np.diff(ts)]
    k = np.arange(1, n + 1)
    ys = (
        50.0
        + 1e-4 * (ts - ts[0])
        + 8.0 * np.sin(2 * np.pi * ts / 86400.0 + 0.3)
        + 3.0 * np.cos(2 * np.pi * k / 7.0)
        + rng.standard_t(5, n)
    )
    return ts, dts, ys


MODELS = {
    "level": Model(unit=300.0),
    "trend+two_periods": Model(trend=True, periods=[(86400.0, 3), (-7.0, 2)], unit=300.0),
    "per_event": Model(trend=True, periods=[(86400.0, 2)], clip=4.0),
}


def _worst_error(name: str, weights: str, silence: float) -> float:
    model = MODELS[name]
    n = 600
    ts, dts, ys = _series(n, seed=len(name), silence=silence)
    if model.unit == 1.0:
        dts = np.r_[0.0, np.ones(n - 1)]  # per-event: the skeleton's dt is 1
    rng = np.random.default_rng(7)
    ws = np.ones(n) if weights == "one" else np.where(rng.random(n) < 0.1, 0.0, rng.random(n))
    prior = model.prior_row()
    theta = prior.copy()
    out = np.empty((n, 3))
    _drive(theta, prior, dts, ts, ys, ws, out)
    st = start(model)
    ref = np.array([step(model, st, dts[i], ts[i], ys[i], ws[i]) for i in range(n)])
    err = np.abs(out - ref) / np.maximum(1.0, np.abs(ref))
    p = model.p
    final = np.abs(theta[dlm.M_AT : dlm.M_AT + p] - st.m) / np.maximum(1.0, np.abs(st.m))
    cov = np.abs(dlm.covariance(theta) - st.C) / np.maximum(1.0, np.abs(st.C))
    worst = max(err.max(), final.max(), cov.max())
    return max(worst, abs(theta[dlm.S_AT] - st.S) / st.S, abs(theta[dlm.N_AT] - st.n) / st.n)


@pytest.mark.parametrize("weights", ["one", "robust"])
@pytest.mark.parametrize("name", list(MODELS))
def test_kernel_equals_reference_filter(name: str, weights: str) -> None:
    """Forecasts at every event and the final state agree with the numpy filter to 1e-9
    (relative to max(1, |value|)), with weight 1 and with robust weights in [0, 1] (some
    exactly 0), through irregular times with a day's silence."""
    worst = _worst_error(name, weights, 86400.0)
    assert worst < 1e-9, worst


def test_a_long_silence_is_ill_conditioned_not_wrong() -> None:
    """Five days of silence inflate the level's variance e^14 times (0.99 per 5 minutes):
    the first update after it cancels large numbers, so two correct filters (the kernel's
    packed rank-one update, numpy's full matrices) agree to about 1e-9 only (measured
    1.7e-9): to 1e-7 here."""
    assert _worst_error("trend+two_periods", "one", 5 * 86400.0) < 1e-7


def test_engine_equals_reference_filter() -> None:
    """Through the engine from a configuration (robust off: the plain update): the PIT of every
    event and the final state as the reference says, to 1e-9."""
    config = {
        "metric": "m",
        "family": "dlm",
        "robust": False,
        "trend": True,
        "seasonal": [{"period_seconds": 86400, "harmonics": 3},
                     {"period_events": 7, "harmonics": 2}],
        "discount": {"level": 0.98, "trend": 0.999, "seasonal": 0.995, "variance": 0.99,
                     "unit_seconds": 300},
        "prior": {"level": 40.0, "level_var": 100.0, "dof": 2.0, "variance": 4.0},
    }  # fmt: skip
    engine = Engine(parse_config({"rule": [config]}))
    n = 800
    ts, dts, ys = _series(n, seed=3)
    msgs = [json.dumps({"key": "k", "metric": "m", "ts": t, "value": y}).encode()
            for t, y in zip(ts.tolist(), ys.tolist(), strict=True)]  # fmt: skip
    out = engine.process(RawBatch.from_messages(msgs))
    model = Model(
        trend=True, periods=[(86400.0, 3), (-7.0, 2)], discounts=(0.98, 0.999, 0.995, 0.99),
        unit=300.0, level=40.0, level_var=100.0, dof=2.0, variance=4.0,
    )  # fmt: skip
    st = start(model)
    pit = []
    for i in range(n):
        dof, f, scale2 = step(model, st, dts[i], ts[i], ys[i], 1.0)
        pit.append(stats.t.cdf((ys[i] - f) / math.sqrt(scale2), dof))
    np.testing.assert_allclose(out.scores[:, OUT_PIT], pit, rtol=1e-9, atol=1e-12)
    row = next(engine.state_rows()).params
    np.testing.assert_allclose(row[dlm.M_AT : dlm.M_AT + model.p], st.m, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(dlm.covariance(row), st.C, rtol=1e-9, atol=1e-12)


# --- calibration --------------------------------------------------------------------------

SBC_MODEL = Model(
    trend=True,
    periods=[(-12.0, 1)],
    discounts=(0.95, 0.98, 0.97, 1.0),  # no variance discounting: the conjugate model
    level_var=1.0,
    trend_var=0.01,
    seasonal_var=1.0,
    dof=6.0,
    variance=1.0,
)


def _simulate(model: Model, steps: int, rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """Draw a series from the model's prior predictive, the way the discount DLM defines it:
    V from its Gamma prior, theta_0 ~ N(m0, V C0), then per event theta_t = G theta_{t-1} +
    N(0, V W_t) with the discount's W_t = R*_t - P*_t (a function of the past data, from the
    filter), y_t ~ N(F theta_t, V). Returns the series and the true level at the end."""
    phi = rng.gamma(model.dof / 2.0, 2.0 / (model.dof * model.variance))
    v = 1.0 / phi
    st = start(model)
    theta = rng.multivariate_normal(st.m, v * st.C)
    ys = np.empty(steps)
    for i in range(steps):
        G = np.eye(model.p)
        if model.trend:
            G[0, 1] = 1.0
        before = G @ st.C @ G.T
        after = State(st.m.copy(), st.C.copy(), st.n, st.S, st.count)
        evolve(model, after, 1.0 if i else 0.0)
        W = after.C - before if i else np.zeros((model.p, model.p))
        theta = (G if i else np.eye(model.p)) @ theta
        theta = theta + rng.multivariate_normal(np.zeros(model.p), v * W)
        ys[i] = model.F(0.0, st.count + 1) @ theta + rng.normal(0.0, math.sqrt(v))
        step(model, st, 1.0 if i else 0.0, 0.0, ys[i], 1.0)
    return ys, float(theta[0])


def test_simulation_based_calibration_of_the_level() -> None:
    """SBC (Talts et al. 2018): the rank of the true final level among 19 draws from the
    kernel's posterior (Student-t, n dof, scale sqrt(S C*_00)) is uniform on 0..19 over 1000
    series of 25 events: chi-square test of the 20 bins at the 0.1% level."""
    rng = np.random.default_rng(2026)
    prior = SBC_MODEL.prior_row()
    reps, steps, draws = 1000, 25, 19
    ranks = np.empty(reps, dtype=int)
    dts = np.r_[0.0, np.ones(steps - 1)]
    ts = np.zeros(steps)
    for r in range(reps):
        ys, level = _simulate(SBC_MODEL, steps, rng)
        theta = prior.copy()
        _drive(theta, prior, dts, ts, ys, np.ones(steps), np.empty((steps, 3)))
        c = dlm.M_AT + SBC_MODEL.p
        scale = math.sqrt(theta[dlm.S_AT] * theta[c])
        sample = theta[dlm.M_AT] + scale * rng.standard_t(theta[dlm.N_AT], draws)
        ranks[r] = int((sample < level).sum())
    counts = np.bincount(ranks, minlength=draws + 1)
    assert stats.chisquare(counts).pvalue > 1e-3, counts


def test_one_step_forecasts_are_calibrated() -> None:
    """PIT of every one-step forecast (Student-t, n dof) of series drawn from the model: uniform
    (Kolmogorov-Smirnov at the 0.1% level over 300 series x 25 events, and no decile off by
    more than 4 standard errors)."""
    rng = np.random.default_rng(11)
    prior = SBC_MODEL.prior_row()
    steps = 25
    dts = np.r_[0.0, np.ones(steps - 1)]
    pits = []
    for _ in range(300):
        ys, _ = _simulate(SBC_MODEL, steps, rng)
        theta = prior.copy()
        out = np.empty((steps, 3))
        _drive(theta, prior, dts, np.zeros(steps), ys, np.ones(steps), out)
        pits.append(stats.t.cdf((ys - out[:, 1]) / np.sqrt(out[:, 2]), out[:, 0]))
    pit = np.concatenate(pits)
    assert stats.kstest(pit, "uniform").pvalue > 1e-3
    deciles = np.bincount(np.minimum((pit * 10).astype(int), 9), minlength=10) / pit.size
    se = math.sqrt(0.1 * 0.9 / pit.size)
    assert np.abs(deciles - 0.1).max() < 4 * se, deciles
