"""A restore that fails inside a batch (the changelog unreadable: the broker is away) rolls the
batch back without touching the producer: no transaction is open and the restore's own consumer
says nothing about the producer, so replacing it (a new ``init_transactions``) would be wasted.

In-memory fakes of the consumer and producer; the restore is made to fail."""

from __future__ import annotations

from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message

from bayestream import parse_config
from bayestream.runtime.kafka import KafkaRunner


class FakeConsumer:
    def __init__(self) -> None:
        self.rewound = 0

    def consume(self, num_messages: int, timeout: float) -> list[Any]:
        value = b'{"key":"k","metric":"m","ts":1,"value":1}'
        return [Message(topic="in", partition=0, offset=7, value=value)]

    def memberid(self) -> str | None:
        return None  # not in a group yet: the engine threads are not shared with anyone

    def assignment(self) -> list[Any]:
        self.rewound += 1  # _rewind asks for the assignment first
        return []


class UntouchableProducer:
    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the producer was used: {name}")


def test_a_failed_restore_rolls_back_without_replacing_the_producer(monkeypatch: Any) -> None:
    config = parse_config({"rule": [{"metric": "m", "family": "normal_gamma"}]})
    runner = KafkaRunner(config, "127.0.0.1:1")
    consumer = FakeConsumer()
    runner.consumer = consumer  # type: ignore[assignment]
    runner.producer = UntouchableProducer()  # type: ignore[assignment]
    replaced: list[bool] = []
    monkeypatch.setattr(runner, "_new_producer", lambda: replaced.append(True))

    def unreadable(partitions: list[int]) -> Any:
        raise KafkaException(KafkaError(KafkaError._TIMED_OUT, "changelog unreadable"))

    monkeypatch.setattr(runner, "_restore_many", unreadable)
    assert runner.step() == 1
    assert replaced == [] and consumer.rewound == 1  # rolled back (rewound), producer kept
    assert runner.engines == {}  # nothing of the batch was applied
