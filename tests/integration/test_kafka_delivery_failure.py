"""A message the broker refuses fails its whole transaction: nothing commits without it.

The anomalies topic is created beforehand with a ``max.message.bytes`` too small for any
anomaly record, so every batch with an anomaly fails delivery (MESSAGE_TOO_LARGE, not
retriable). The runtime must abort and retry such a batch rather than commit its offsets with
the record missing; once the topic accepts the records, everything commits exactly once.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewTopic,
)

from tests.integration.kafka_helpers import (
    committed_count,
    config_for,
    create_topic,
    events,
    file_run,
    produce,
    read_all,
    running,
    unique,
    wait_for,
)


def test_refused_message_fails_the_transaction(kafka_bootstrap: str, tmp_path: Path) -> None:
    tmp = unique("refused")
    create_topic(kafka_bootstrap, f"{tmp}.in", 2)
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    small = {"max.message.bytes": "120"}  # an anomaly record is ~200 bytes
    for future in admin.create_topics([NewTopic(f"{tmp}.anomalies", 2, 1, config=small)]).values():
        future.result(30)
    evs = events(600, seed=5)
    lines = [json.dumps(e).encode() for e in evs]
    produce(kafka_bootstrap, f"{tmp}.in", lines, [e["key"].encode() for e in evs])
    config = config_for(tmp, batch_size=100)
    expected = file_run(tmp_path, config, lines)
    assert expected["anomalies"], "the input must have anomalies for this test to mean anything"
    with running(config, kafka_bootstrap) as runner:
        time.sleep(8.0)  # many attempts, each refused
        assert committed_count(kafka_bootstrap, f"{tmp}.group", f"{tmp}.in") == 0
        assert read_all(kafka_bootstrap, f"{tmp}.anomalies", timeout=5) == []
        assert read_all(kafka_bootstrap, f"{tmp}.posteriors", timeout=5) == []
        resource = ConfigResource(
            "topic",
            f"{tmp}.anomalies",
            incremental_configs=[
                ConfigEntry(
                    "max.message.bytes",
                    "1048588",
                    incremental_operation=AlterConfigOpType.SET,
                )
            ],
        )
        for future in admin.incremental_alter_configs([resource]).values():
            future.result(30)
        wait_for(
            lambda: committed_count(kafka_bootstrap, f"{tmp}.group", f"{tmp}.in") == len(lines),
            90,
        )
        assert runner.engines  # still the same process: it rode the failures out
    anomalies = sorted(
        json.dumps(json.loads(m.value()), sort_keys=True)
        for m in read_all(kafka_bootstrap, f"{tmp}.anomalies")
    )
    assert anomalies == sorted(json.dumps(a, sort_keys=True) for a in expected["anomalies"])
    posteriors = {
        (p["key"], p["metric"]): p
        for p in (json.loads(m.value()) for m in read_all(kafka_bootstrap, f"{tmp}.posteriors"))
    }
    final = {(p["key"], p["metric"]): p for p in expected["posteriors"]}  # the last wins
    assert posteriors.keys() == final.keys()
    for name, record in final.items():
        assert posteriors[name]["params"] == record["params"], name


def test_oversized_dead_letter_is_truncated_not_stuck(kafka_bootstrap: str, tmp_path: Path) -> None:
    """An input message that fits its topic but whose dead letter (plus headers) is over the
    producer's message.max.bytes: dead-lettered with a prefix and its size, the stream goes on."""
    from confluent_kafka import Producer

    from bayestream.runtime.positions import DEAD_LETTER_KEEP_BYTES, HEADER_TRUNCATED

    tmp = unique("oversized")
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    roomy = {"max.message.bytes": str(4 << 20)}
    for future in admin.create_topics([NewTopic(f"{tmp}.in", 1, 1, config=roomy)]).values():
        future.result(30)
    huge = b"x" * 1_000_000  # not JSON; with its headers over the default 1,000,000 bytes
    evs = events(60, seed=7)
    lines = (
        [json.dumps(e).encode() for e in evs[:30]]
        + [huge]
        + [json.dumps(e).encode() for e in evs[30:]]
    )
    producer = Producer({"bootstrap.servers": kafka_bootstrap, "message.max.bytes": 4 << 20})
    for line in lines:
        producer.produce(f"{tmp}.in", line, b"k")
    assert producer.flush(30) == 0
    config = config_for(tmp, batch_size=20)
    with running(config, kafka_bootstrap):
        wait_for(
            lambda: committed_count(kafka_bootstrap, f"{tmp}.group", f"{tmp}.in") == len(lines),
            60,
        )
    dead = read_all(kafka_bootstrap, f"{tmp}.dead")
    assert len(dead) == 1
    headers = {name: value.decode() for name, value in dead[0].headers() or []}
    assert headers["bayestream.reason"] == "invalid_json"
    assert headers["bayestream.source.offset"] == "30"
    assert headers[HEADER_TRUNCATED] == str(len(huge))
    assert dead[0].value() == huge[:DEAD_LETTER_KEEP_BYTES]
    posteriors = {m.key() for m in read_all(kafka_bootstrap, f"{tmp}.posteriors")}
    expected = file_run(tmp_path, config, lines)
    assert len(posteriors) == len({(p["key"], p["metric"]) for p in expected["posteriors"]})


def test_batch_larger_than_the_producer_queue(kafka_bootstrap: str, tmp_path: Path) -> None:
    """A batch with more output records than ``queue.buffering.max.messages`` holds: the
    runtime drains the queue inside the transaction (BufferError) instead of failing the batch;
    the outputs equal the file runner's."""
    tmp = unique("queue")
    create_topic(kafka_bootstrap, f"{tmp}.in", 1)
    evs = events(400, seed=11)
    lines = [json.dumps(e).encode() for e in evs]
    produce(kafka_bootstrap, f"{tmp}.in", lines, [e["key"].encode() for e in evs])
    config = config_for(
        tmp, batch_size=400, producer={"queue.buffering.max.messages": 16, "linger.ms": 0}
    )
    expected = file_run(tmp_path, config, lines)
    records = len(expected["posteriors"]) + len(expected["anomalies"])
    assert records > 16 * 2, "each batch must hold several queues' worth of records"
    with running(config, kafka_bootstrap) as runner:
        wait_for(
            lambda: committed_count(kafka_bootstrap, f"{tmp}.group", f"{tmp}.in") == len(lines),
            60,
        )
        assert runner.engines  # no crash, no restart
    anomalies = sorted(
        json.dumps(json.loads(m.value()), sort_keys=True)
        for m in read_all(kafka_bootstrap, f"{tmp}.anomalies")
    )
    assert anomalies == sorted(json.dumps(a, sort_keys=True) for a in expected["anomalies"])
    posteriors = {
        (p["key"], p["metric"]): p["params"]
        for p in (json.loads(m.value()) for m in read_all(kafka_bootstrap, f"{tmp}.posteriors"))
    }
    assert posteriors == {(p["key"], p["metric"]): p["params"] for p in expected["posteriors"]}
