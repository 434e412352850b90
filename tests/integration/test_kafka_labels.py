"""Labels from the labels topic join anomaly probabilities on a real broker, whichever of a
label and its event arrives first, and reach the calibration records."""

from __future__ import annotations

import json

from tests.integration.kafka_helpers import (
    committed_count,
    config_for,
    create_topic,
    events,
    produce,
    read_all,
    running,
    unique,
    wait_for,
)


def label(e: dict[str, object]) -> bytes:
    return json.dumps(
        {"key": e["key"], "metric": e["metric"], "ts": e["ts"], "is_anomaly": e["value"] == 60.0}
    ).encode()


def test_labels_topic_joins_before_and_after_events(kafka_bootstrap: str) -> None:
    tmp = unique("labels")
    create_topic(kafka_bootstrap, f"{tmp}.in", 3)
    create_topic(kafka_bootstrap, f"{tmp}.labels", 2)
    config = config_for(tmp, batch_size=100, labels_topic=f"{tmp}.labels")
    config = config.model_copy(
        update={"engine": config.engine.model_copy(update={"calibration_interval_events": 30})}
    )
    evs = events(900, seed=9)
    lat = [(i, e) for i, e in enumerate(evs) if e["metric"] == "lat"]
    early = [e for i, e in lat if i % 2 == 0]
    late = [e for i, e in lat if i % 2 == 1 and i < 600]
    stray = {"key": "nobody", "metric": "lat", "ts": 1.0, "value": 0.0}
    labels = [label(e) for e in [*early, stray]] + [b"not a label"]
    produce(kafka_bootstrap, f"{tmp}.labels", labels, [None] * len(labels))
    first = [json.dumps(e).encode() for e in evs[:600]]
    produce(kafka_bootstrap, f"{tmp}.in", first, [e["key"].encode() for e in evs[:600]])
    with running(config, kafka_bootstrap) as runner:
        wait_for(lambda: committed_count(kafka_bootstrap, f"{tmp}.group", f"{tmp}.in") == 600)
        early_first = sum(1 for i, _ in lat if i % 2 == 0 and i < 600)
        wait_for(lambda: runner.labels.matched == early_first, 30)
        produce(kafka_bootstrap, f"{tmp}.labels", [label(e) for e in late], [None] * len(late))
        wait_for(lambda: runner.labels.matched == early_first + len(late), 30)
        rest = [json.dumps(e).encode() for e in evs[600:]]
        produce(kafka_bootstrap, f"{tmp}.in", rest, [e["key"].encode() for e in evs[600:]])
        wait_for(lambda: committed_count(kafka_bootstrap, f"{tmp}.group", f"{tmp}.in") == 900)
        wait_for(lambda: runner.labels.matched == len(early) + len(late), 30)
        assert runner._label_feed is not None and runner._label_feed.invalid == 1
        assert runner.labels.unmatched == 1  # the stray
        assert runner.labels.counts() == {
            "joined": len(early) + len(late),
            "unmatched": 1,
            "waiting": len(early) + 1,  # a label that came first waits for later events too
            "dropped": 0,
        }
        counts = []
        for engine in runner.engines.values():
            monitor = engine.monitor.monitors[0]
            assert monitor is not None
            counts.append(monitor.reliability.count)
        assert sum(counts) == len(early) + len(late)
    records = [json.loads(m.value()) for m in read_all(kafka_bootstrap, f"{tmp}.calibration")]
    labelled = [r for r in records if r["metric"] == "lat" and r["labelled"]]
    assert labelled and all(r["brier"] is not None for r in labelled)
