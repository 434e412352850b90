"""One incident, one alert: the window kernel against an exact reference, and in the engine."""

from __future__ import annotations

import itertools
import json
import math
from collections import deque
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bayestream import Engine
from bayestream.config import parse_config
from bayestream.engine import decisions
from bayestream.models._alerting import mark_alerts, surprise
from bayestream.models._protocol import (
    EXTRA,
    N_SETTINGS,
    S_ALERT_WINDOW,
    S_EXTRA,
    X_ALERT_COUNT,
    X_ALERT_TOP,
)
from bayestream.schema.records import ENCODER
from tests.conftest import batch, event

# --- the kernel against the exact rule ------------------------------------------------------


def exact(v: np.ndarray, selected: np.ndarray, w: int) -> tuple[np.ndarray, np.ndarray]:
    """The exact rule with a monotone deque: (alert per event, deque length after each)."""
    window: deque[tuple[int, float]] = deque()
    alerts, sizes = [], []
    for n, (x, s) in enumerate(zip(v.tolist(), selected.tolist(), strict=True), start=1):
        while window and window[0][0] < n - w:
            window.popleft()
        top = window[0][1] if window else -math.inf
        if math.isnan(x):
            alerts.append(False)
        else:
            alerts.append(bool(s) and x > top)
            while window and window[-1][1] <= x:
                window.pop()
            window.append((n, x))
        sizes.append(len(window))
    return np.array(alerts, dtype=bool), np.array(sizes)


def kernel_alerts(
    tail: np.ndarray, selected: np.ndarray, w: int, cuts: tuple[int, ...] = ()
) -> tuple[np.ndarray, np.ndarray]:
    """The kernel over one stream (width 2 before the extra columns), in pieces cut at
    ``cuts``: (alerts, the row afterwards)."""
    s = np.zeros(N_SETTINGS)
    s[S_EXTRA] = 2
    s[S_ALERT_WINDOW] = w
    params = np.zeros((3, 2 + EXTRA))
    params[:, 2 + X_ALERT_TOP :] = -np.inf
    out = np.zeros(tail.shape[0], dtype=np.bool_)
    bounds = [0, *cuts, tail.shape[0]]
    for a, b in itertools.pairwise(bounds):
        part = np.zeros(b - a, dtype=np.bool_)
        mark_alerts(params, s, np.ones(b - a, dtype=np.int64), tail[a:b], selected[a:b], part)
        out[a:b] = part
    return out, params[1]


def random_stream(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    tail = rng.uniform(size=n) ** rng.uniform(1.0, 6.0)  # surprises from flat to heavy
    tail[rng.uniform(size=n) < 0.03] = np.nan  # e.g. no tail probability
    tail[rng.uniform(size=n) < 0.01] = 0.0  # impossible: infinite surprise
    tail[rng.uniform(size=n) < 0.03] = 1.0
    return tail, rng.uniform(size=n) < 0.6


def test_the_kernel_brackets_the_exact_rule_and_equals_it_while_the_deque_is_short() -> None:
    """Never an alert the exact rule (window W) does not raise; every alert of the exact rule
    with window 2W - 1 is raised; up to the first event at which the exact deque would hold a
    third record, equal. 2W - 1 is tight: with 2W - 2 some alert goes missing."""
    rng = np.random.default_rng(20261208)
    equal_events = missed_tighter = 0
    for _ in range(1500):
        w = int(rng.integers(0, 25))
        tail, selected = random_stream(rng, int(rng.integers(1, 400)))
        got, _ = kernel_alerts(tail, selected, w)
        v = surprise(tail)
        want, sizes = exact(v, selected, w)
        assert not (got & ~want).any()
        wider, _ = exact(v, selected, max(2 * w - 1, 0))
        assert not (wider & ~got).any()
        tighter, _ = exact(v, selected, max(2 * w - 2, 0))
        missed_tighter += int((tighter & ~got).any())
        short = int(np.argmax(sizes > 2)) if (sizes > 2).any() else sizes.shape[0]
        np.testing.assert_array_equal(got[:short], want[:short])
        equal_events += short
        if w == 0:
            np.testing.assert_array_equal(got, selected & ~np.isnan(tail))
    assert equal_events > 10_000 and missed_tighter > 0


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.floats(0.0, 1.0) | st.just(math.nan), min_size=1, max_size=60),
    st.integers(0, 8),
    st.randoms(use_true_random=False),
)
def test_kernel_bounds_hold_for_any_sequence(tails: list[float], w: int, r: Any) -> None:
    tail = np.array(tails)
    selected = np.array([r.random() < 0.7 for _ in tails], dtype=np.bool_)
    cuts = tuple(sorted({r.randrange(tail.shape[0] + 1) for _ in range(3)}))
    got, row = kernel_alerts(tail, selected, w, cuts)
    assert row[2 + X_ALERT_COUNT] == len(tails)  # every event numbered, NaN or not
    whole, _ = kernel_alerts(tail, selected, w)
    np.testing.assert_array_equal(got, whole)  # in pieces = at once
    v = surprise(tail)
    want, sizes = exact(v, selected, w)
    assert not (got & ~want).any()
    wider, _ = exact(v, selected, max(2 * w - 1, 0))
    assert not (wider & ~got).any()
    if (sizes <= 2).all():
        np.testing.assert_array_equal(got, want)


def test_two_descending_records_are_exact() -> None:
    """A peak and a lower one, with events without a surprise (NaN tail) between: the window
    falls back to the lower peak when the first leaves it (W = 5)."""
    v = np.full(12, np.nan)
    v[0], v[2] = 6.0, 4.0
    v[7] = 5.0  # the window holds events 3..7 (numbered from 1): the lower peak 4 only
    v[11] = 4.5  # events 7..11: 5.0
    tail = 10.0**-v
    got, row = kernel_alerts(tail, np.ones(12, dtype=np.bool_), 5)
    assert np.flatnonzero(got).tolist() == [0, 7]
    assert row[2 + X_ALERT_COUNT] == 12.0
    assert row[2 + X_ALERT_TOP : 2 + X_ALERT_TOP + 4].tolist() == [8.0, 5.0, 12.0, 4.5]


# --- in the engine --------------------------------------------------------------------------

FAMILY_RULES: dict[str, dict[str, Any]] = {
    "normal_gamma": {"family": "normal_gamma", "tail": "upper"},
    "beta_binomial": {"family": "beta_binomial", "prior": {"alpha": 1.0, "beta": 19.0}},
    "gamma_poisson": {"family": "gamma_poisson", "prior": {"alpha": 5.0, "beta": 1.0}},
    "dirichlet": {
        "family": "dirichlet",
        "prior": {"categories": ["ok", "warn", "fail"], "alpha": [20.0, 1.0, 1.0]},
    },
    "particle": {
        "family": "particle",
        "model": "local_level",
        "particles": 64,
        "process_noise": 0.01,
        "observation_noise": 1.0,
        "initial": {"mean": 0.0, "sd": 1.0},
        "tail": "upper",
    },
}


def family_engine(family: str, **rule: Any) -> Engine:
    spec = {"metric": "m", "robust": False, "anomaly_threshold": 0.01, **FAMILY_RULES[family]}
    return Engine(parse_config({"rule": [{**spec, **rule}]}))


def stream_events(family: str, n: int = 600, seed: int = 11) -> list[bytes]:
    """Two keys, each quiet with two bursts of 30 anomalous points, interleaved."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        key = "ab"[i % 2]
        burst = 200 <= i < 260 or 420 <= i < 480
        extra: dict[str, Any] = {}
        value: Any
        if family in ("normal_gamma", "particle"):
            value = float(rng.normal(8.0 if burst else 0.0, 1.0))
        elif family == "beta_binomial":
            value, extra = int(rng.binomial(20, 0.6 if burst else 0.05)), {"trials": 20}
        elif family == "gamma_poisson":
            value, extra = int(rng.poisson(30.0 if burst else 5.0)), {"exposure": 1.0}
        else:
            value = "fail" if burst else ("ok" if rng.uniform() < 0.95 else "warn")
        out.append(event(key, "m", 1000.0 + i, value, **extra))
    return out


def run(engine: Engine, messages: list[bytes], size: int) -> list[tuple[str, float, bool]]:
    got = []
    for a in range(0, len(messages), size):
        out = engine.process(batch(messages[a : a + size]))
        got += [(r.key, r.ts, r.alert) for r in out.anomalies]
        assert out.alerts == sum(r.alert for r in out.anomalies)
    return got


@pytest.mark.parametrize("family", list(FAMILY_RULES))
def test_alerts_are_batch_invariant_and_survive_a_restore(family: str) -> None:
    messages = stream_events(family)
    whole = run(family_engine(family), messages, len(messages))
    alerts = sum(alert for *_, alert in whole)
    assert 0 < alerts < len(whole), "a burst is one incident, not one alert per point"
    for size in (1, 7):
        assert run(family_engine(family), messages, size) == whole
    # the state round trip: stop after 250 events (mid-burst), restore, continue
    first = family_engine(family)
    head = run(first, messages[:250], 50)
    second = family_engine(family)
    assert second.restore(first.state_rows()) == 2
    assert head + run(second, messages[250:], 50) == whole


def test_a_burst_is_one_alert_at_its_start() -> None:
    """30 anomalous points after a quiet stream: one alert at the first, more only at a point
    more surprising than every point of the window before it."""
    engine = Engine(
        parse_config(
            {
                "rule": [
                    {
                        "metric": "lat",
                        "family": "normal_gamma",
                        "prior": {"mu": 0.0, "kappa": 1.0, "alpha": 20.0, "beta": 20.0},
                        "tail": "upper",
                        "monitor": False,  # an outlier burst, not a new level
                        "alert_window_events": 100,
                    }
                ]
            }
        )
    )
    rng = np.random.default_rng(4)
    quiet = rng.normal(0.0, 1.0, 300)
    values = np.concatenate([quiet, np.full(30, 9.0) - np.linspace(0.0, 0.3, 30)])
    messages = [event("k", "lat", 1000.0 + i, float(x)) for i, x in enumerate(values)]
    out = engine.process(batch(messages))
    burst = [r for r in out.anomalies if r.ts >= 1300.0]
    assert len(burst) == 30  # robust updating keeps every point of the burst anomalous
    alerts = [r for r in burst if r.alert]
    assert alerts[0] is burst[0]
    tail = out.scores[out.anomaly_rows, 0]
    v = -np.log10(tail[-30:])
    later = [i for i in range(1, 30) if v[i] > v[:i].max()]  # beats the burst so far
    assert [r.ts for r in alerts[1:]] == [1300.0 + i for i in later]
    assert len(alerts) <= 3
    anomalies = [json.loads(ENCODER.encode(r)) for r in out.anomalies]
    assert all(isinstance(a["alert"], bool) for a in anomalies)


def test_window_zero_makes_every_anomaly_an_alert_and_fdr_still_works() -> None:
    messages = stream_events("normal_gamma")
    out = family_engine("normal_gamma", alert_window_events=0).process(batch(messages))
    assert out.anomalies and all(r.alert for r in out.anomalies)
    out = family_engine("normal_gamma", fdr=0.05).process(batch(messages))
    assert out.anomalies and 0 < out.alerts < len(out.anomalies)


def test_state_rows_start_with_an_empty_window() -> None:
    rule = parse_config({"rule": [{"metric": "m", **FAMILY_RULES["particle"]}]}).rule[0]
    row = decisions.row_prior(rule)
    k = 2 * 64 + 2
    assert row[k + X_ALERT_COUNT] == 0.0
    assert np.isneginf(row[k + X_ALERT_TOP : k + X_ALERT_TOP + 4]).all()
    engine = family_engine("particle")
    engine.process(batch(stream_events("particle", 40)))
    (state, *_) = list(engine.state_rows())
    assert state.params[k + X_ALERT_COUNT] == 20.0  # each of the two keys had 20 events
