"""Properties of the engine: batch invariance, nothing lost, arbitrary bytes never raise."""

from __future__ import annotations

import json
from typing import Any
from unittest import mock

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bayestream import Engine, RawBatch
from bayestream.models import _threads
from bayestream.state import StateRow, decode_row, encode_row
from tests.conftest import make_engine

PROPERTY = settings(
    max_examples=150, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)

RULES: list[dict[str, Any]] = [
    {
        "metric": "lat",
        "family": "normal_gamma",
        "half_life_seconds": 30.0,
        "tail": "upper",
        "anomaly_threshold": 0.2,
        "robust": True,
        "outlier_rate": 0.05,
        "drift": {"window_events": 2, "min_window_events": 2, "false_alarm_rate": 0.3},
    },
    {
        "metric": "log*",
        "family": "normal_gamma",
        "transform": "log",
        "half_life_events": 3.0,
        "idle_ttl_seconds": 40.0,
    },
    {
        "metric": "err",
        "family": "beta_binomial",
        "half_life_seconds": 20.0,
        "anomaly_threshold": 0.3,
        "emit": "interval",
        "emit_interval_seconds": 15.0,
        "robust": True,
        "drift": {
            "window_seconds": 4.0,
            "min_window_events": 2,
            "reference": "baseline",
            "baseline_windows": 3,
            "false_alarm_rate": 0.3,
            "cooldown_windows": 0,
            "reset_on_alarm": True,
        },
    },
    {
        "metric": "req",
        "family": "gamma_poisson",
        "tail": "lower",
        "idle_ttl_seconds": 25.0,
        "robust": True,
        "outlier_rate": 0.2,
        "drift": {"window_events": 2, "min_window_events": 2, "false_alarm_rate": 0.4},
    },
    {
        "metric": "pf",
        "family": "particle",
        "model": "local_level",
        "particles": 32,
        "process_noise": 0.5,
        "observation_noise": 4.0,
        "initial": {"mean": 0.0, "sd": 5.0},
        "anomaly_threshold": 0.05,
        "idle_ttl_seconds": 60.0,
        "robust": True,
        "drift": {"window_events": 2, "min_window_events": 2, "false_alarm_rate": 0.4},
    },
    {
        "metric": "status",
        "family": "dirichlet",
        "prior": {"categories": ["a", "b", "c"], "alpha": 0.5},
        "anomaly_threshold": 0.4,
        "robust": True,
        "drift": {"window_events": 2, "min_window_events": 2, "false_alarm_rate": 0.4},
    },
]

values = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False, min_value=-1e6, max_value=1e6),
    st.integers(-3, 40),
    st.sampled_from(["a", "b", "c", "d", "", None, True]),
)


@st.composite
def messages(draw: st.DrawFn) -> list[bytes]:
    out = []
    ts = 1000.0
    for _ in range(draw(st.integers(0, 60))):
        ts += draw(st.sampled_from([0.0, 0.5, 3.0, 11.0, 45.0, -2.0, -5000.0]))
        kind = draw(st.integers(0, 9))
        if kind == 0:
            out.append(draw(st.binary(max_size=40)))
            continue
        doc: dict[str, Any] = {
            "key": draw(st.sampled_from(["x", "y", "z", "ü", ""])),
            "metric": draw(st.sampled_from(["lat", "logl", "err", "req", "status", "pf", "cpu"])),
            "ts": ts if kind != 1 else draw(st.sampled_from(["2024-01-01T00:00:00Z", "bad"])),
            "value": draw(values),
        }
        if draw(st.booleans()):
            doc["trials"] = draw(st.integers(-1, 50))
        if draw(st.booleans()):
            doc["exposure"] = draw(st.sampled_from([0.5, 1, 2.0, 0, "1"]))
        text = json.dumps(doc, ensure_ascii=draw(st.booleans()))
        if draw(st.integers(0, 5)) == 0:
            text = text.replace(", ", ",\n  ")
        out.append(text.encode())
    return out


def _run(engine: Engine, msgs: list[bytes], cuts: list[int]) -> dict[str, Any]:
    anomalies, drift, dead, finals = [], [], [], {}
    start = 0
    for end in [*sorted(set(cuts)), len(msgs)]:
        if end <= start:
            continue
        out = engine.process(RawBatch.from_messages(msgs[start:end]))
        anomalies += out.anomalies
        drift += out.drift
        dead += [(start + d.index, d.reason) for d in out.dead_letters]
        for p in out.posteriors:
            finals[(p.key, p.metric)] = p
        start = end
    for p in engine.flush().posteriors:
        finals[(p.key, p.metric)] = p
    return {
        "anomalies": anomalies,
        "drift": drift,
        "dead": dead,
        "finals": finals,
        "rows": sorted(engine.state_rows(), key=lambda r: (r.key, r.metric)),
    }


@PROPERTY
@given(msgs=messages(), cuts=st.lists(st.integers(0, 60), max_size=8))
def test_outputs_do_not_depend_on_batching(msgs: list[bytes], cuts: list[int]) -> None:
    whole = _run(make_engine(RULES, max_lateness_seconds=100.0), msgs, [])
    split = _run(make_engine(RULES, max_lateness_seconds=100.0), msgs, cuts)
    one_by_one = _run(make_engine(RULES, max_lateness_seconds=100.0), msgs, list(range(len(msgs))))
    for other in (split, one_by_one):
        assert other["anomalies"] == whole["anomalies"]
        assert other["drift"] == whole["drift"]
        assert other["dead"] == whole["dead"]
        assert other["rows"] == whole["rows"]
        assert other["finals"] == whole["finals"]


@PROPERTY
@given(msgs=st.lists(st.binary(max_size=120), max_size=30) | messages())
def test_any_bytes_end_in_exactly_one_place(msgs: list[bytes]) -> None:
    engine = make_engine(RULES)
    out = engine.process(RawBatch.from_messages(msgs))
    dead = [d.index for d in out.dead_letters]
    assert len(set(dead)) == len(dead)
    assert out.applied + len(dead) == len(msgs)


finite = st.floats(allow_nan=True, allow_infinity=True)


@PROPERTY
@given(
    key=st.text(max_size=30),
    metric=st.text(max_size=30),
    code=st.integers(0, 255),
    numbers=st.lists(finite, min_size=4, max_size=4),
    params=st.lists(finite, max_size=12),
)
def test_state_rows_round_trip(
    key: str, metric: str, code: int, numbers: list[float], params: list[float]
) -> None:
    row = StateRow(key, metric, code, *numbers, np.array(params, dtype=np.float64))
    data = encode_row(row)
    assert decode_row(data) == row
    assert len(data) == 42 + 8 * len(params) + len(key.encode()) + len(metric.encode())


@settings(PROPERTY, max_examples=50)
@given(msgs=messages(), cuts=st.lists(st.integers(0, 60), max_size=8))
def test_outputs_do_not_depend_on_threads(msgs: list[bytes], cuts: list[int]) -> None:
    """Every kernel call split across 2 and 3 threads, even for one row per chunk
    (MIN_ROWS = 1): the same records, bytes and scores as on one thread."""

    def run(threads: int) -> list[tuple[bytes, bytes, list[Any], list[Any], list[Any]]]:
        engine = make_engine(RULES, max_lateness_seconds=100.0, threads=threads)
        out, start = [], 0
        for end in [*sorted(set(cuts)), len(msgs)]:
            if end <= start:
                continue
            o = engine.process(RawBatch.from_messages(msgs[start:end]))
            dead = [(d.index, d.reason) for d in o.dead_letters]
            out.append((o.posteriors.json_lines(), o.scores.tobytes(), o.anomalies, o.drift, dead))
            start = end
        return out

    with mock.patch.object(_threads, "MIN_ROWS", 1):
        serial = run(1)
        assert run(2) == serial
        assert run(3) == serial
