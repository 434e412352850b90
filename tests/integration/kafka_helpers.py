"""Helpers for the Kafka runtime's integration tests (real broker, no mocks)."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from bayestream import parse_config
from bayestream.config import Config
from bayestream.runtime.kafka import KafkaRunner

RULES: list[dict[str, Any]] = [
    {
        "metric": "lat",
        "family": "normal_gamma",
        "tail": "upper",
        "anomaly_threshold": 0.01,
        "prior": {"mu": 10.0, "kappa": 1.0, "alpha": 2.0, "beta": 2.0},
        "half_life_seconds": 50,
    },
    {"metric": "err", "family": "beta_binomial", "anomaly_threshold": 0.01},
    {"metric": "req", "family": "gamma_poisson", "anomaly_threshold": 0.01},
]


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def create_topic(bootstrap: str, name: str, partitions: int) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics([NewTopic(name, partitions, 1)]).values():
        future.result(30)


def config_for(tmp: str, batch_size: int = 500, **kafka: Any) -> Config:
    return parse_config(
        {
            "engine": {"max_lateness_seconds": 1e9},
            "kafka": {
                "input_topics": [f"{tmp}.in"],
                "group_id": f"{tmp}.group",
                "posteriors_topic": f"{tmp}.posteriors",
                "anomalies_topic": f"{tmp}.anomalies",
                "dead_letter_topic": f"{tmp}.dead",
                "batch_size": batch_size,
                "metrics_port": None,
                "output_partitions": 2,
                **kafka,
            },
            "rule": RULES,
        }
    )


def events(n: int, keys: int = 12, seed: int = 0) -> list[dict[str, Any]]:
    import numpy as np

    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        key = f"host-{rng.integers(keys)}"
        kind = i % 3
        if kind == 0:
            value = float(rng.normal(10, 1) if i % 97 else 60.0)
            out.append({"key": key, "metric": "lat", "ts": 1000 + i, "value": round(value, 3)})
        elif kind == 1:
            trials = int(rng.integers(10, 100))
            out.append(
                {
                    "key": key,
                    "metric": "err",
                    "ts": 1000 + i,
                    "value": int(rng.binomial(trials, 0.1)),
                    "trials": trials,
                }
            )
        else:
            out.append(
                {
                    "key": key,
                    "metric": "req",
                    "ts": 1000 + i,
                    "value": int(rng.poisson(5)),
                    "exposure": 1.0,
                }
            )
    return out


BAD = [
    b"not json",
    b'{"key":"h","metric":"lat","ts":1,"value":"x"}',
    b'{"key":"h","metric":"cpu","ts":1,"value":1}',
    b"",
    b'{"key":"h","metric":"err","ts":1,"value":5,"trials":2}',
]


def produce(bootstrap: str, topic: str, lines: list[bytes], keys: list[bytes | None]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for key, line in zip(keys, lines, strict=True):
        producer.produce(topic, line, key)
    producer.flush(30)


def read_all(bootstrap: str, topic: str, timeout: float = 10.0) -> list[Any]:
    """Every committed message of a topic (read_committed), from the beginning to the end."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": unique("reader"),
            "isolation.level": "read_committed",
            "enable.partition.eof": True,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    meta = consumer.list_topics(topic, timeout=10).topics[topic]
    parts = [TopicPartition(topic, p, 0) for p in meta.partitions]
    consumer.assign(parts)
    done: set[int] = set()
    out = []
    deadline = time.monotonic() + timeout
    while len(done) < len(parts) and time.monotonic() < deadline:
        for m in consumer.consume(1000, 0.5):
            if m.error():
                if m.error().code() == KafkaError._PARTITION_EOF:
                    done.add(m.partition())
                continue
            out.append(m)
    consumer.close()
    return out


def committed_count(bootstrap: str, group: str, topic: str) -> int:
    """Sum of the group's committed offsets on ``topic`` (-1 while the broker is not ready)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        meta = consumer.list_topics(topic, timeout=10).topics[topic]
        tps = consumer.committed([TopicPartition(topic, p) for p in meta.partitions], timeout=10)
    except KafkaException:  # e.g. the group coordinator is still loading
        return -1
    finally:
        consumer.close()
    return sum(max(tp.offset, 0) for tp in tps)


@contextmanager
def running(config: Config, bootstrap: str) -> Iterator[KafkaRunner]:
    runner = KafkaRunner(config, bootstrap)
    errors: list[BaseException] = []

    def target() -> None:
        try:
            runner.run()
        except BaseException as exc:  # surfaced to the test below
            errors.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    try:
        yield runner
    finally:
        runner.stop()
        thread.join(60)
        assert not thread.is_alive(), "runner did not stop"
        if errors:
            raise errors[0]


def wait_for(predicate: Any, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError("timed out waiting")


def latest_by_key(messages: list[Any]) -> dict[bytes, dict[str, Any]]:
    return {m.key(): json.loads(m.value()) for m in messages if m.value() is not None}


def file_run(tmp_path: Path, config: Config, lines: list[bytes]) -> dict[str, list[Any]]:
    from bayestream import Engine
    from bayestream.runtime.files import run_file

    source = tmp_path / "input.jsonl"
    source.write_bytes(b"\n".join(line for line in lines if line) + b"\n")
    run_file(Engine(config), source, tmp_path / "out", 64)
    return {
        name: [json.loads(x) for x in (tmp_path / "out" / f"{name}.jsonl").read_text().splitlines()]
        for name in ("posteriors", "anomalies", "dead_letter")
    }
