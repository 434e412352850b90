"""The per-event skeleton is an extension point: a family that is none of the four supplies its
forgetting, predictive and update, and gets late events, idle restarts, outlier runs and robust
weights from :mod:`bayestream.models._skeleton`, checked against a plain-Python reference."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from bayestream.models import normal_gamma
from bayestream.models._jit import inline
from bayestream.models._protocol import (
    EXTRA,
    N_OUT,
    N_SETTINGS,
    OUT_PIT,
    OUT_PRED_HI,
    OUT_PRED_LO,
    OUT_PROB,
    OUT_TAIL,
    S_EXTRA,
    S_IVL_PROB,
    S_IVL_TAIL,
    S_IVL_UPPER,
    S_OUTLIER_RATE,
    S_OUTLIER_SCALE,
    S_ROBUST,
    S_ROBUST_MIN,
    S_RUN_RESET,
    Events,
    Rows,
    RuleConstants,
)
from bayestream.models._skeleton import make_update
from bayestream.models._special import ndtr, ndtri
from bayestream.models._stream import APPLIED, LATE, forget_linear

# A toy family: x ~ Normal(m, 1) with m ~ Normal(eta / lam, 1 / lam), in natural parameters
# theta = [eta, lam] (so forgetting is linear in them); predictive Normal(eta / lam, 1 + 1 / lam).


@inline
def _score(
    theta: np.ndarray, x: float, size: float, side: int, widen: float
) -> tuple[float, float, float, float]:
    mean, sd = theta[0] / theta[1], math.sqrt(1.0 + 1.0 / theta[1])
    z = (x - mean) / sd
    log_ratio = -math.log(widen) + 0.5 * z * z * (1.0 - 1.0 / (widen * widen))
    return ndtr(-z), ndtr(z), log_ratio, x


@inline
def _interval(theta: np.ndarray, size: float, upper: float) -> tuple[float, float]:
    mean, sd = theta[0] / theta[1], math.sqrt(1.0 + 1.0 / theta[1])
    return mean - sd * ndtri(upper), mean + sd * ndtri(upper)


@inline
def _observe(theta: np.ndarray, x: float, size: float, w: float) -> None:
    theta[0] += w * x
    theta[1] += w


toy_update = make_update("test_known_variance", forget_linear, _score, _interval, _observe)

PRIOR = [0.0, 1.0]
RATE, WIDEN, ROBUST_MIN, RUN_RESET, HALF_LIFE, LATENESS = 0.01, 10.0, 3.0, 3.0, 20.0, 5.0


Reference = tuple[list[tuple[float, float] | None], dict[int, dict[str, Any]], int]


def _reference(events: list[tuple[int, float, float, float]]) -> Reference:
    """The skeleton's steps for this family, one event at a time, in plain Python: (tail,
    P(outlier)) per event (None for a late one), the final rows, and how many restarts."""
    state: dict[int, dict[str, Any]] = {}
    result: list[tuple[float, float] | None] = []
    restarts = 0
    for s, t, x, expire in events:
        row = state.get(s)
        if row is None or float(row["last"]) < expire:
            row = state[s] = {"theta": list(PRIOR), "last": t, "n": 0.0, "run": 0.0}
        else:
            last = float(row["last"])
            if t < last - LATENESS:
                result.append(None)
                continue
            d = 2.0 ** (-max(t - last, 0.0) / HALF_LIFE)
            row["last"] = max(last, t)
            row["n"] = float(row["n"]) * d
            row["theta"] = [p0 + d * (p - p0) for p, p0 in zip(row["theta"], PRIOR, strict=True)]
        eta, lam = row["theta"]
        z = (x - eta / lam) / math.sqrt(1.0 + 1.0 / lam)
        log_ratio = -math.log(WIDEN) + 0.5 * z * z * (1.0 - WIDEN**-2)
        prob = 1.0 / (1.0 + (1.0 - RATE) / RATE * math.exp(-log_ratio))
        row["run"] = float(row["run"]) + 1.0 if prob > 0.5 else 0.0
        if row["run"] >= RUN_RESET:  # a new regime: the prior, then this event in full
            row["theta"], row["n"], row["run"] = list(PRIOR), 0.0, 0.0
            restarts += 1
        w = 1.0 - prob if float(row["n"]) >= ROBUST_MIN else 1.0
        eta, lam = row["theta"]
        row["theta"] = [eta + w * x, lam + w]
        row["n"] = float(row["n"]) + w
        result.append((0.5 * math.erfc(z / math.sqrt(2.0)), prob))
    return result, state, restarts


def test_a_new_family_gets_the_per_event_skeleton() -> None:
    rng = np.random.default_rng(5)
    events = [(0, float(t), float(rng.normal(0.0, 1.0)), -math.inf) for t in range(8)]
    events += [(0, 8.0 + k, 50.0, -math.inf) for k in range(3)]  # an outlier run: a restart
    events += [(0, 2.0, 0.0, -math.inf)]  # 9 s behind the stream's newest: late
    events += [(0, 12.0, 49.0, -math.inf), (1, 0.0, 1.0, -math.inf), (1, 1.5, 3.0, -math.inf)]
    events += [(1, 100.0, 2.0, 50.0)]  # idle past its TTL: restarts from the prior
    m = len(events)
    params = np.tile([*PRIOR, np.nan] + [0.0] * (EXTRA - 1), (2, 1))  # monitoring off
    last_ts, n_eff, obs_size = np.full(2, np.nan), np.zeros(2), np.zeros(2)
    settings = np.zeros(N_SETTINGS)
    settings[S_ROBUST], settings[S_OUTLIER_RATE], settings[S_OUTLIER_SCALE] = 1.0, RATE, WIDEN
    settings[S_EXTRA], settings[S_ROBUST_MIN], settings[S_RUN_RESET] = 2.0, ROBUST_MIN, RUN_RESET
    settings[S_IVL_TAIL], settings[S_IVL_PROB], settings[S_IVL_UPPER] = 1e-3, 0.0, 0.975
    out = np.full((m, N_OUT), np.nan)
    status = np.empty(m, dtype=np.int8)
    slots, ts, x, expire = (np.array(c) for c in zip(*events, strict=True))
    toy_update(
        Rows(params, last_ts, n_eff, obs_size),
        RuleConstants(np.array(PRIOR), settings, HALF_LIFE, False, 0, LATENESS),
        Events(slots.astype(np.int64), ts, x, np.ones(m), expire),
        out,
        status,
    )
    expected, state, restarts = _reference(events)
    late = [e is None for e in expected]
    assert late.count(True) == 1
    np.testing.assert_array_equal(status, np.where(late, LATE, APPLIED))
    assert np.isnan(out[late]).all()  # a late event touches nothing
    scored = [e for e in expected if e is not None]
    np.testing.assert_allclose(out[~np.array(late), OUT_TAIL], [e[0] for e in scored], rtol=1e-9)
    np.testing.assert_allclose(out[~np.array(late), OUT_PROB], [e[1] for e in scored], rtol=1e-9)
    np.testing.assert_allclose(out[~np.array(late), OUT_PIT], 1.0 - out[~np.array(late), OUT_TAIL])
    outliers = out[:, OUT_TAIL] <= 1e-3  # these, and only these, carry their interval
    assert outliers.sum() >= 3
    assert (
        np.isfinite(out[outliers, OUT_PRED_LO]).all()
        and np.isnan(out[~outliers, OUT_PRED_HI]).all()
    )
    assert restarts == 1  # the run of three outliers
    for s in (0, 1):
        np.testing.assert_allclose(params[s, :2], state[s]["theta"], rtol=1e-12)
        np.testing.assert_allclose(n_eff[s], state[s]["n"], rtol=1e-12)
        assert params[s, 3] == state[s]["run"]
    np.testing.assert_array_equal(last_ts, [12.0, 100.0])


def test_a_family_name_makes_one_kernel() -> None:
    """The name names the kernel's cache file: a second kernel under it is refused."""
    with pytest.raises(ValueError, match="normal_gamma"):
        make_update(
            "normal_gamma",
            normal_gamma.forget,
            normal_gamma.score,
            normal_gamma.interval,
            normal_gamma.observe,
        )
