"""librdkafka clients of the Kafka runtime: their tuned and required settings, blocking
transactional calls with a hard deadline, and failed-delivery tracking per producer."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer

log = logging.getLogger("bayestream.kafka")

# Measured on a 2-core machine (1 M JSON events, 4 partitions): librdkafka's defaults consume
# 0.23 M ev/s, these 1.7 - 2.1 M ev/s (bench_kafka's consume-only run, 6 partitions, GC off as
# in the runtime: 0.55 - 0.87 M ev/s here). Every one can be overridden in [kafka.consumer].
TUNED_CONSUMER: dict[str, Any] = {
    "fetch.wait.max.ms": 10,
    "queued.min.messages": 1_000_000,
    "max.partition.fetch.bytes": 8 << 20,
    "fetch.max.bytes": 64 << 20,
    "auto.offset.reset": "earliest",
    "partition.assignment.strategy": "cooperative-sticky",
    # a member learns of a rebalance at its next heartbeat: with librdkafka's 3 s a joining
    # member waited up to 3 s per rebalance round (two rounds with cooperative-sticky) for the
    # others to notice it (measured: 7 - 11 s from a second process's start to its first
    # partitions, on 2 cores)
    "heartbeat.interval.ms": 1000,
}
# Exactly-once needs these; they are not overridable.
REQUIRED_CONSUMER: dict[str, Any] = {
    "enable.auto.commit": False,
    "enable.auto.offset.store": False,
    "isolation.level": "read_committed",
}
# lz4: the JSON records shrink several times, and each commit waits for fewer bytes to be
# acknowledged (measured, 500k events on the embedded broker: commit waits 1.3 s -> 0.6 s).
# retry.backoff.ms: a transaction's first AddPartitionsToTxn / AddOffsetsToTxn meets the
# coordinator still completing the previous one (CONCURRENT_TRANSACTIONS) and is retried after
# this backoff (exponential up to retry.backoff.max.ms); librdkafka's 100 ms default put
# ~100 ms into every send_offsets_to_transaction (measured on the embedded broker: 100 - 130
# ms per transaction; with 5 ms, 10 - 20 ms).
TUNED_PRODUCER: dict[str, Any] = {
    "retry.backoff.ms": 5,
    "linger.ms": 5,
    "batch.num.messages": 10_000,
    "queue.buffering.max.messages": 2_000_000,
    "queue.buffering.max.kbytes": 2 << 20,
    "transaction.timeout.ms": 60_000,
    "compression.type": "lz4",
}

# Seconds given to librdkafka for each blocking call. A transactional call still running
# TXN_GRACE seconds past its own timeout is taken as hung (librdkafka does not always honour
# the timeout: confluentinc/librdkafka#5456, #5511) and its producer is replaced.
INIT_TIMEOUT = 30.0
OFFSETS_TIMEOUT = 30.0
FLUSH_TIMEOUT = 30.0
COMMIT_TIMEOUT = 60.0
ABORT_TIMEOUT = 30.0
COMMITTED_TIMEOUT = 30.0
TXN_GRACE = 5.0

TIMED_OUT = KafkaError._TIMED_OUT
PURGED = (KafkaError._PURGE_QUEUE, KafkaError._PURGE_INFLIGHT)


class BoundedCall:
    """``call(timeout)``, a blocking call of ``producer``, running in a daemon thread of its
    own from construction on; the runner (``KafkaRunner._await``) waits for it with a hard
    deadline."""

    def __init__(
        self, what: str, producer: Producer, timeout: float, call: Callable[[float], Any]
    ) -> None:
        self.what = what
        self.producer = producer
        self.timeout = timeout
        self.started = time.monotonic()
        self.done = threading.Event()
        # what the call raised, for the waiting thread
        self.outcome: list[BaseException] = []
        threading.Thread(
            target=self._run, args=(call,), name=f"bayestream-{what}", daemon=True
        ).start()

    def _run(self, call: Callable[[float], Any]) -> None:
        try:
            call(self.timeout)
        except BaseException as exc:  # handed to the waiting thread
            # without this frame's traceback: nothing may form a cycle holding the producer
            # (a producer whose init_transactions timed out goes on acquiring a producer id in
            # the background until freed, and would fence its successor)
            self.outcome.append(exc.with_traceback(None))
        finally:
            self.done.set()


class Deliveries:
    """The ``on_delivery`` of one producer: the first failed delivery of its open transaction
    (only failures are reported). One per producer, so a given-up producer's reports and
    checks never touch its successor's transaction."""

    def __init__(self) -> None:
        self.error: KafkaError | None = None

    def __call__(self, err: KafkaError | None, msg: Message) -> None:
        # purged messages are those of a transaction this runner aborted: their reports may
        # arrive during the next transaction and must not fail it
        if err is None or err.code() in PURGED:
            return
        if self.error is None:
            log.warning("delivery to %s[%s] failed: %s", msg.topic(), msg.partition(), err)
            self.error = err

    def check(self) -> None:
        """Fail the transaction when any of its messages failed delivery: librdkafka aborts
        such a transaction itself in current versions, but a transaction that would commit
        with a message missing must never commit (confluentinc/librdkafka#3087)."""
        error, self.error = self.error, None
        if error is not None:
            raise KafkaException(
                KafkaError(
                    error.code(),
                    f"a message of the transaction failed delivery: {error.str()}",
                    txn_requires_abort=True,
                )
            )


__all__ = [
    "ABORT_TIMEOUT",
    "COMMITTED_TIMEOUT",
    "COMMIT_TIMEOUT",
    "FLUSH_TIMEOUT",
    "INIT_TIMEOUT",
    "OFFSETS_TIMEOUT",
    "PURGED",
    "REQUIRED_CONSUMER",
    "TIMED_OUT",
    "TUNED_CONSUMER",
    "TUNED_PRODUCER",
    "TXN_GRACE",
    "BoundedCall",
    "Deliveries",
]
