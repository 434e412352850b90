"""The Kafka runtime: consume a batch, apply it, and commit outputs, state and offsets at once.

One process is one member of the consumer group ``[kafka] group_id``. Per batch:

1. ``consume`` up to ``batch_size`` messages from the assigned input partitions;
2. split them by partition number: each partition number has its own :class:`Engine` (state
   follows partitions), and apply each part;
3. in ONE transaction: posterior, anomaly and dead-letter records, the changelog rows of the
   streams the batch changed (plus tombstones of evicted ones) to the same partition number of
   the compacted changelog topic, and the consumer offsets (``send_offsets_to_transaction``).

Downstream reads with ``isolation.level=read_committed``, so a crash anywhere leaves either the
whole batch or none of it. On assignment a partition's engine is rebuilt from its changelog
partition (read_committed, to its end) before any of its messages are applied; on revocation
the engine is dropped. When a transaction has to be aborted, the engines of the batch's
partitions are rebuilt from the changelog and the consumer is rewound to the committed offsets,
so state and input agree again. Only this module and the broker launcher know about Kafka.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import msgspec
import numpy as np
from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)

from bayestream.config import Config
from bayestream.config.kafka import environment_properties, redacted, reveal
from bayestream.engine import Engine, NullSensor, Outputs, Sensor
from bayestream.runtime.changelog import read_changelog
from bayestream.runtime.gcpolicy import BatchCollector
from bayestream.runtime.hooks import Hooks, NoHooks
from bayestream.runtime.topics import KafkaRuntimeError, prepare_topics
from bayestream.schema.batch import RawBatch
from bayestream.schema.records import ENCODER
from bayestream.state import stream_key
from bayestream.state.rowbatch import decode_rows

log = logging.getLogger("bayestream.kafka")

# Measured on a 2-core machine (1 M JSON events, 4 partitions): librdkafka's defaults consume
# 0.23 M ev/s, these 1.7 - 2.1 M ev/s. Every one can be overridden in [kafka.consumer].
TUNED_CONSUMER: dict[str, Any] = {
    "fetch.wait.max.ms": 10,
    "queued.min.messages": 1_000_000,
    "max.partition.fetch.bytes": 8 << 20,
    "fetch.max.bytes": 64 << 20,
    "auto.offset.reset": "earliest",
    "partition.assignment.strategy": "cooperative-sticky",
}
# Exactly-once needs these; they are not overridable.
REQUIRED_CONSUMER: dict[str, Any] = {
    "enable.auto.commit": False,
    "enable.auto.offset.store": False,
    "isolation.level": "read_committed",
}
TUNED_PRODUCER: dict[str, Any] = {
    "linger.ms": 5,
    "batch.num.messages": 10_000,
    "queue.buffering.max.messages": 2_000_000,
    "queue.buffering.max.kbytes": 2 << 20,
    "transaction.timeout.ms": 60_000,
}

# Fault injection for the crash tests: BAYESTREAM_CRASH_AT="<point>:<n>" kills the process
# with SIGKILL the n-th time it reaches <point> (mid_batch, before_commit, after_commit, restore).
CRASH_ENV = "BAYESTREAM_CRASH_AT"

HEADER_REASON = "bayestream.reason"
HEADER_DETAIL = "bayestream.detail"
HEADER_TOPIC = "bayestream.source.topic"
HEADER_PARTITION = "bayestream.source.partition"
HEADER_OFFSET = "bayestream.source.offset"


class KafkaRunner:
    """Runs the engine over the group's input topics until :meth:`stop`."""

    def __init__(
        self,
        config: Config,
        bootstrap_servers: str,
        sensor: Sensor | None = None,
        hooks: Hooks | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.settings = config.kafka
        self.sensor = sensor or NullSensor()
        self.hooks: Hooks = hooks or NoHooks()
        self.clock = clock
        self.engines: dict[int, Engine] = {}
        self._stopping = threading.Event()
        common = {**reveal(self.settings.client), **reveal(environment_properties())}
        common["bootstrap.servers"] = bootstrap_servers
        self._common = common
        transactional_id = self.settings.transactional_id or (
            f"{self.settings.group_id}-{socket.gethostname()}-{os.getpid()}"
        )
        self._consumer_conf = {
            **TUNED_CONSUMER,
            **common,
            **reveal(self.settings.consumer),
            **REQUIRED_CONSUMER,
            "group.id": self.settings.group_id,
        }
        self._producer_conf = {
            **TUNED_PRODUCER,
            **common,
            **reveal(self.settings.producer),
            "transactional.id": transactional_id,
            "enable.idempotence": True,
        }
        self.consumer: Consumer | None = None
        self.producer: Producer | None = None
        self._collector = BatchCollector()
        self._crash_point, self._crash_count = _crash_plan(os.environ.get(CRASH_ENV, ""))

    def _maybe_crash(self, point: str) -> None:
        if point != self._crash_point:
            return
        self._crash_count -= 1
        if self._crash_count <= 0:
            log.warning("%s: killing the process at %s", CRASH_ENV, point)
            os.kill(os.getpid(), signal.SIGKILL)

    # --- lifecycle ------------------------------------------------------------------------

    def stop(self) -> None:
        """Finish the current batch, commit it and leave the group."""
        self._stopping.set()

    def run(self) -> int:
        """Process until :meth:`stop`; returns 0 after a clean shutdown."""
        log.info("kafka settings: %s", redacted({**self._common}))
        prepare_topics(self._common, self.settings)
        self.producer = self._new_producer()
        consumer = Consumer(self._consumer_conf)
        self.consumer = consumer
        consumer.subscribe(
            list(self.settings.input_topics),
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_lost=self._on_lost,
        )
        try:
            while not self._stopping.is_set():
                self.hooks.heartbeat()
                self.step()
        finally:
            self.hooks.set_ready(False)
            consumer.close()  # leaves the group: partitions are revoked (nothing is pending)
            self.producer.flush(10)
        return 0

    def _new_producer(self) -> Producer:
        producer = Producer(self._producer_conf)
        producer.init_transactions(30)
        return producer

    # --- one batch ------------------------------------------------------------------------

    def step(self) -> int:
        """Consume and process one batch; returns how many messages it had."""
        assert self.consumer is not None and self.producer is not None
        messages = self.consumer.consume(
            self.settings.batch_size, self.settings.poll_timeout_seconds
        )
        data = [m for m in messages if m.error() is None]
        if len(data) != len(messages):
            for m in messages:
                if m.error() is not None:
                    log.warning("consumer: %s", m.error())
        if not data:
            self.hooks.set_ready(bool(self.engines))
            return 0
        self.hooks.set_ready(True)
        started = self.clock()
        try:
            self.producer.begin_transaction()
            by_partition: dict[int, list[Message]] = defaultdict(list)
            for m in data:
                by_partition[m.partition()].append(m)  # type: ignore[index]
            for partition, part in by_partition.items():
                self._apply(partition, part)
                self._maybe_crash("mid_batch")
            self.producer.send_offsets_to_transaction(
                _next_offsets(by_partition, len(self.settings.input_topics) == 1),
                self.consumer.consumer_group_metadata(),
                30,
            )
            self.producer.flush(30)
            self._maybe_crash("before_commit")
            self.producer.commit_transaction(60)
            self._maybe_crash("after_commit")
        except KafkaException as exc:
            self._recover(exc, sorted({_origin(m)[:2] for m in data}))
            return len(data)
        self.hooks.transaction(True)
        self.hooks.observe_publish_latency(self._latencies(data, self.clock()))
        self._report_partitions(by_partition)
        self._collector.after_batch()
        log.debug("batch of %d in %.3f s", len(data), self.clock() - started)
        return len(data)

    def _apply(self, partition: int, messages: list[Message]) -> None:
        assert self.producer is not None
        engine = self.engines.get(partition)
        if engine is None:  # assigned but not restored: cannot happen inside a rebalance
            engine = self._restore(partition)
        batch = RawBatch.from_messages([m.value() or b"" for m in messages])
        outputs = engine.process(batch)
        self._produce(partition, messages, outputs, engine)

    def _produce(
        self, partition: int, messages: list[Message], outputs: Outputs, engine: Engine
    ) -> None:
        assert self.producer is not None
        produce = self.producer.produce
        settings = self.settings
        for batch in outputs.posteriors.batches:
            for key, value in zip(batch.keys(), batch.json_values(), strict=True):
                produce(settings.posteriors_topic, value, key)
        for anomaly in outputs.anomalies:
            key = stream_key(anomaly.key, anomaly.metric)
            produce(settings.anomalies_topic, ENCODER.encode(anomaly), key)
        for dead in outputs.dead_letters:
            m = messages[dead.index]
            topic, source_partition, offset = _origin(m)
            headers: list[tuple[str, str | bytes | None]] = [
                (HEADER_REASON, dead.reason.value.encode()),
                (HEADER_DETAIL, dead.detail.encode("utf-8", "replace")),
                (HEADER_TOPIC, topic.encode()),
                (HEADER_PARTITION, str(source_partition).encode()),
                (HEADER_OFFSET, str(offset).encode()),
            ]
            produce(settings.dead_letter_topic, m.value(), m.key(), headers=headers)
        changelog = settings.changelog
        for key, row in engine.changelog(outputs):
            produce(changelog, row, key, partition=partition)
        self.producer.poll(0)

    def _recover(self, exc: KafkaException, partitions: list[tuple[str, int]]) -> None:
        """Roll back to the last commit, retrying with backoff while the broker is away
        (readiness is false meanwhile); nothing of the failed batch is kept."""
        self.hooks.transaction(False)
        self.hooks.set_ready(False)
        delay = 0.5
        while True:
            try:
                self._rollback(exc, partitions)
                return
            except KafkaException as again:
                if self._stopping.is_set():
                    raise
                log.warning("rollback failed (%s): retrying in %.1f s", again.args[0], delay)
                exc = again
                time.sleep(delay)
                delay = min(2 * delay, 30.0)

    def _rollback(self, exc: KafkaException, partitions: list[tuple[str, int]]) -> None:
        """Abort, rebuild the batch's engines from the changelog, rewind the consumer."""
        assert self.consumer is not None and self.producer is not None
        error: KafkaError = exc.args[0]
        log.warning("transaction failed (%s): rolling back to the last commit", error)
        if error.fatal():
            self.producer = self._new_producer()  # fenced or fatal: a new producer instance
        else:
            try:
                self.producer.abort_transaction(30)
            except KafkaException:
                self.producer = self._new_producer()
        numbers = sorted({p for _, p in partitions} & set(self.engines))
        if numbers:
            self.engines.update(self._restore_many(numbers))
        tps = [TopicPartition(t, p) for t, p in partitions]
        for tp in self.consumer.committed(tps, timeout=30):
            offset = tp.offset if tp.offset >= 0 else OFFSET_BEGINNING
            self.consumer.seek(TopicPartition(tp.topic, tp.partition, offset))

    # --- rebalancing ------------------------------------------------------------------------

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        new = sorted({tp.partition for tp in partitions} - set(self.engines))
        if new:
            self.engines.update(self._restore_many(new))
        self.hooks.set_ready(True)

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._drop(partitions)

    def _on_lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._drop(partitions)

    def _drop(self, partitions: list[TopicPartition]) -> None:
        assert self.consumer is not None
        remaining = {tp.partition for tp in self.consumer.assignment()} - {
            tp.partition for tp in partitions
        }
        for tp in partitions:
            self.hooks.drop_partition(tp.topic, tp.partition)
            if tp.partition not in remaining:
                self.engines.pop(tp.partition, None)

    def _restore(self, partition: int) -> Engine:
        """A new engine holding the committed state of one changelog partition."""
        return self._restore_many([partition])[partition]

    def _restore_many(self, partitions: list[int]) -> dict[int, Engine]:
        """New engines holding the committed state of these changelog partitions, read to
        their ends (read_committed) with one consumer."""
        started = time.monotonic()
        rows = read_changelog(
            self._common,
            self.settings.changelog,
            self.settings.group_id,
            partitions,
            on_batch=lambda: self._maybe_crash("restore"),
        )
        engines = {}
        total = 0
        for p in partitions:
            engine = Engine(self.config, self.sensor)
            batch = decode_rows(list(rows[p].values()))
            if batch.bad:
                log.error(
                    "changelog %s[%d]: %d rows are not valid state rows, skipped",
                    self.settings.changelog,
                    p,
                    batch.bad,
                )
            total += engine.restore_batch(batch)
            engines[p] = engine
        seconds = time.monotonic() - started
        self.hooks.observe_restore(seconds, total)
        log.info("partitions %s: restored %d streams in %.2f s", partitions, total, seconds)
        return engines

    # --- topics and metrics -------------------------------------------------------------------

    def _latencies(self, data: list[Message], now: float) -> list[float]:
        """Event-time-to-publish latency of a sample of the batch's events."""
        step = max(len(data) // 64, 1)
        out = []
        for m in data[::step]:
            ts = _event_ts(m.value())
            if ts is not None:
                out.append(now - ts)
        return out

    def _report_partitions(self, by_partition: dict[int, list[Message]]) -> None:
        assert self.consumer is not None
        now = self.clock()
        for partition, messages in by_partition.items():
            topic, _, offset = _origin(messages[-1])
            engine = self.engines.get(partition)
            if engine is not None and np.isfinite(engine.watermark):
                self.hooks.set_freshness(topic, partition, now - engine.watermark)
            marks = self.consumer.get_watermark_offsets(
                TopicPartition(topic, partition), cached=True
            )
            if marks is not None and marks[1] is not None:
                self.hooks.set_lag(topic, partition, max(marks[1] - offset - 1, 0))


def _crash_plan(text: str) -> tuple[str, int]:
    point, _, count = text.partition(":")
    return point, int(count) if count.isdigit() else 1


def _origin(m: Message) -> tuple[str, int, int]:
    """Topic, partition and offset of a consumed (non-error) message."""
    topic, partition, offset = m.topic(), m.partition(), m.offset()
    assert topic is not None and partition is not None and offset is not None
    return topic, partition, offset


def _next_offsets(
    by_partition: dict[int, list[Message]], single_topic: bool
) -> list[TopicPartition]:
    """The offsets to commit: one past the last message of each topic-partition. Messages of
    one partition number come in offset order per topic, so with one input topic the last
    message of each list is enough; several topics take a full pass."""
    last: dict[tuple[str, int], int] = {}
    for messages in by_partition.values():
        topic, partition, offset = _origin(messages[-1])
        last[(topic, partition)] = offset
        if not single_topic and any(m.topic() != topic for m in messages):
            for m in messages:
                t, p, o = _origin(m)
                last[(t, p)] = max(o, last.get((t, p), -1))
    return [TopicPartition(t, p, o + 1) for (t, p), o in last.items()]


def _event_ts(value: bytes | None) -> float | None:
    if not value:
        return None
    # only for a metric, after the commit: any input must give a number or None, never raise
    # (not UTF-8: UnicodeDecodeError; deeply nested: RecursionError; a 400-digit ts: Overflow)
    try:
        ts = msgspec.json.decode(value).get("ts")
        if isinstance(ts, int | float) and not isinstance(ts, bool):
            return float(ts)
    except (ValueError, AttributeError, OverflowError, RecursionError):
        pass
    return None


__all__ = ["Hooks", "KafkaRunner", "KafkaRuntimeError"]
