"""Labels join scored events whichever comes first, against a naive join by (key, metric, ts)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bayestream.calibration.reliability import ReliabilityMonitor
from bayestream.errors import BayestreamError
from bayestream.models._protocol import OUT_PROB
from bayestream.runtime.labels import Label, LabelJoin, decode_label
from tests.conftest import batch, event, make_engine

RULES = [{"metric": "lat", "family": "normal_gamma", "robust": True}]


def stream_of_events(n: int, seed: int) -> list[tuple[str, float, float]]:
    rng = np.random.default_rng(seed)
    keys = rng.integers(0, 6, n)
    spikes = rng.random(n) < 0.05
    values = np.where(spikes, rng.normal(0, 12, n), rng.normal(0, 1, n))
    return [(f"k{k}", 1000.0 + i, float(values[i])) for i, k in enumerate(keys.tolist())]


def reliability_of(engine_monitor: ReliabilityMonitor) -> np.ndarray:
    return np.array(engine_monitor.state())


def test_labels_before_and_after_their_events_match_a_naive_join() -> None:
    events = stream_of_events(3_000, seed=3)
    rng = np.random.default_rng(4)
    labelled = rng.random(len(events)) < 0.3
    early = labelled & (rng.random(len(events)) < 0.5)
    marks = rng.random(len(events)) < 0.2
    labels = {i: Label(k, "lat", ts, bool(marks[i])) for i, (k, ts, _) in enumerate(events)}
    strays = [Label("nobody", "lat", 5.0, True), Label("k1", "lat", 99_999.0, False)]

    engine = make_engine(RULES)
    join = LabelJoin(capacity=10_000)
    join.add([labels[i] for i in np.flatnonzero(early).tolist()] + strays, {})
    scored: dict[int, float] = {}
    size = 250
    for start in range(0, len(events), size):
        chunk = events[start : start + size]
        outputs = engine.process(batch([event(k, "lat", ts, v) for k, ts, v in chunk]))
        join.join(7, engine, outputs)
        for j in range(len(chunk)):
            scored[start + j] = float(outputs.scores[j, OUT_PROB])
        late = [i for i in range(start, start + len(chunk)) if labelled[i] and not early[i]]
        join.add([labels[i] for i in late], {7: engine})

    expected = ReliabilityMonitor()
    chosen = np.flatnonzero(labelled)
    expected.update(
        np.array([scored[i] for i in chosen.tolist()]), marks[chosen].astype(np.float64)
    )
    monitor = engine.monitor.monitors[0]
    assert monitor is not None
    assert monitor.reliability.count == chosen.size
    np.testing.assert_allclose(
        reliability_of(monitor.reliability), reliability_of(expected), rtol=1e-12
    )
    assert join.received == chosen.size + len(strays)
    assert join.matched == chosen.size and join.unmatched == len(strays)


def test_a_late_label_joins_only_events_still_in_the_ring() -> None:
    events = stream_of_events(300, seed=5)
    engine = make_engine(RULES)
    join = LabelJoin(capacity=100)
    outputs = engine.process(batch([event(k, "lat", ts, v) for k, ts, v in events]))
    join.join(0, engine, outputs)
    old, recent = events[50], events[250]
    pair = [Label(old[0], "lat", old[1], True), Label(recent[0], "lat", recent[1], True)]
    join.add(pair, {0: engine})
    assert join.matched == 1  # only the event among the last 100
    monitor = engine.monitor.monitors[0]
    assert monitor is not None and monitor.reliability.count == 1
    join.add([Label(recent[0], "lat", recent[1], True)], {0: engine})
    assert join.matched == 1, "a ring entry joins once; the repeated label waits instead"


def test_forgotten_engines_join_no_late_labels() -> None:
    events = stream_of_events(50, seed=6)
    engine = make_engine(RULES)
    join = LabelJoin(capacity=1_000)
    join.join(2, engine, engine.process(batch([event(k, "lat", ts, v) for k, ts, v in events])))
    join.forget([2])
    join.add([Label(events[10][0], "lat", events[10][1], False)], {2: engine})
    assert join.matched == 0 and join.waiting_count == 1


def test_a_late_label_never_joins_an_evicted_stream_whose_id_was_reused() -> None:
    engine = make_engine([{**RULES[0], "idle_ttl_seconds": 10.0}])
    join = LabelJoin(capacity=1_000)
    join.join(0, engine, engine.process(batch([event("gone", "lat", 100.0, 1.0)])))
    gone_id = engine.stream_id("gone", "lat")
    join.join(0, engine, engine.process(batch([event("other", "lat", 200.0, 1.0)])))
    assert engine.stream_id("gone", "lat") == -1  # idle past its TTL: evicted
    join.join(0, engine, engine.process(batch([event("new", "lat", 205.0, 1.0)])))
    assert engine.stream_id("new", "lat") == gone_id, "the test needs the slot reused"
    # the evicted stream's ring entry has the new stream's id and the label's ts
    join.add([Label("new", "lat", 100.0, True)], {0: engine})
    assert join.matched == 0 and join.waiting_count == 1
    join.add([Label("new", "lat", 205.0, True)], {0: engine})
    assert join.matched == 1  # its own event joins


def test_waiting_labels_are_bounded_oldest_dropped_first() -> None:
    join = LabelJoin(capacity=10)
    join.add([Label("k", "lat", float(t), False) for t in range(15)], {})
    assert join.waiting_count == 10 and join.dropped == 5
    assert sorted(join.waiting[("k", "lat")]) == [float(t) for t in range(5, 15)]
    assert join.unmatched == 10


@pytest.mark.parametrize(
    ("raw", "ts", "is_anomaly"),
    [
        (b'{"key":"a","metric":"m","ts":12,"is_anomaly":true}', 12.0, True),
        (b'{"key":"a","metric":"m","ts":"1970-01-01T00:00:12Z","is_anomaly":0}', 12.0, False),
    ],
)
def test_decode_label(raw: bytes, ts: float, is_anomaly: bool) -> None:
    assert decode_label(raw) == Label("a", "m", ts, is_anomaly)


@pytest.mark.parametrize(
    "raw",
    [
        b"not json",
        b'{"key":"a","metric":"m","ts":"yesterday","is_anomaly":true}',
        b'{"key":"a","metric":"m","ts":1,"is_anomaly":2}',
        b'{"key":"a","ts":1,"is_anomaly":true}',
        json.dumps({"key": "a", "metric": "m", "ts": 1, "is_anomaly": "yes"}).encode(),
    ],
)
def test_bad_labels_raise_a_clear_error(raw: bytes) -> None:
    with pytest.raises(BayestreamError):
        decode_label(raw)
