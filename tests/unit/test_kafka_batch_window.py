"""The Kafka loop's batch window: a batch closes ``poll_timeout_seconds`` after the previous one
closed, so what arrived while a batch was processed does not wait a full timeout more.

The consumer is an in-memory fake that records the timeout of each ``consume`` call and returns
nothing (no broker: the window is decided before any message is seen)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from bayestream import parse_config
from bayestream.runtime.kafka import KafkaRunner


class RecordingConsumer:
    def __init__(self) -> None:
        self.timeouts: list[float] = []

    def consume(self, num_messages: int, timeout: float) -> list[Any]:
        self.timeouts.append(timeout)
        return []


@pytest.fixture()
def runner() -> KafkaRunner:
    config = parse_config(
        {
            "kafka": {"poll_timeout_seconds": 0.2},
            "rule": [{"metric": "m", "family": "normal_gamma"}],
        }
    )
    runner = KafkaRunner(config, "127.0.0.1:1")
    runner.consumer = RecordingConsumer()  # type: ignore[assignment]
    runner.producer = object()  # type: ignore[assignment]  # not used without messages
    return runner


def test_an_idle_loop_waits_the_whole_timeout(runner: KafkaRunner) -> None:
    runner._batch_closed = time.monotonic()  # the window opens now, not at construction
    runner.step()
    runner.step()
    first, second = runner.consumer.timeouts  # type: ignore[union-attr]
    # nearly the whole 0.2 s each time: only the steps' own time is gone
    assert 0.15 < first <= 0.2
    assert 0.15 < second <= 0.2


def test_a_batch_that_took_longer_than_the_timeout_is_followed_at_once(
    runner: KafkaRunner,
) -> None:
    runner._batch_closed = time.monotonic() - 0.5  # the last batch closed 0.5 s ago
    runner.step()
    assert runner.consumer.timeouts == [0.0]  # type: ignore[union-attr]


def test_a_short_batch_waits_only_the_rest_of_the_window(runner: KafkaRunner) -> None:
    runner._batch_closed = time.monotonic() - 0.15
    runner.step()
    (timeout,) = runner.consumer.timeouts  # type: ignore[union-attr]
    assert 0.0 < timeout <= 0.05 + 1e-3
