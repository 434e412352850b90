"""Send JSON lines to a Kafka topic at a steady rate: the producing side of
``bayestream generate --kafka`` (the lines themselves come from the command line room)."""

from __future__ import annotations

import re
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from types import FrameType
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from bayestream.config.kafka import environment_properties, reveal
from bayestream.errors import BayestreamError

_KEY = re.compile(rb'"key"\s*:\s*"([^"\\]*)"')
TICK_SECONDS = 0.1  # lines are sent in bursts this far apart


_Handler = Callable[[int, FrameType | None], Any] | int | signal.Handlers | None


class FeedError(BayestreamError):
    """The telemetry feed cannot reach or write its topic."""


def key_of(line: bytes) -> bytes | None:
    """The event's ``key`` (the message key, so a stream stays on one partition); None for a
    line without one (a hostile line: it becomes a dead letter downstream)."""
    match = _KEY.search(line)
    return match.group(1) if match else None


def ensure_topic(bootstrap: str, topic: str, partitions: int) -> None:
    """Create ``topic`` with ``partitions`` partitions unless it exists."""
    admin = AdminClient({**reveal(environment_properties()), "bootstrap.servers": bootstrap})
    try:
        if topic in admin.list_topics(timeout=30).topics:
            return
        future = admin.create_topics([NewTopic(topic, num_partitions=partitions)])[topic]
        future.result(30)
    except KafkaException as exc:
        if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
            raise FeedError(f"cannot create topic {topic!r} on {bootstrap}: {exc}") from exc


def feed(
    bootstrap: str,
    topic: str,
    lines: Iterable[tuple[bytes, bytes | None]],
    rate: float,
    labels_topic: str | None = None,
    stop: threading.Event | None = None,
) -> int:
    """Produce the event lines to ``topic`` keyed by their ``key``, ``rate`` lines per second
    (0: as fast as the producer takes them), each with its label line (when not None) to
    ``labels_topic`` (when set), until they run out or ``stop`` is set (SIGTERM/SIGINT set it
    when called from the main thread). Returns the number of event lines sent."""
    stop = stop if stop is not None else threading.Event()
    previous = _on_signals(stop)
    producer = Producer(
        {
            "linger.ms": 20,
            "compression.type": "lz4",
            **reveal(environment_properties()),
            "bootstrap.servers": bootstrap,
        }
    )
    sent = 0
    started = time.monotonic()
    try:
        for burst in _bursts(iter(lines), rate):
            if stop.is_set():
                break
            for line, label in burst:
                _produce(producer, topic, line)
                if labels_topic and label is not None:
                    _produce(producer, labels_topic, label)
            sent += len(burst)
            producer.poll(0)
            if rate > 0:  # sleep until this many lines are due
                delay = started + sent / rate - time.monotonic()
                if delay > 0 and stop.wait(delay):
                    break
    finally:
        producer.flush(30)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return sent


def _produce(producer: Producer, topic: str, line: bytes) -> None:
    while True:
        try:
            producer.produce(topic, line, key_of(line))
            return
        except BufferError:  # the local queue is full: let deliveries drain it
            producer.poll(0.1)


def _bursts(
    lines: Iterator[tuple[bytes, bytes | None]], rate: float
) -> Iterator[list[tuple[bytes, bytes | None]]]:
    size = max(int(rate * TICK_SECONDS), 1) if rate > 0 else 10_000
    while True:
        burst = [line for _, line in zip(range(size), lines, strict=False)]
        if not burst:
            return
        yield burst


def _on_signals(stop: threading.Event) -> dict[signal.Signals, _Handler]:
    if threading.current_thread() is not threading.main_thread():
        return {}

    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    return {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}


__all__ = ["FeedError", "ensure_topic", "feed", "key_of"]
