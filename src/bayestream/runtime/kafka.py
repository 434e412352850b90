"""The Kafka runtime: consume a batch, apply it, and commit outputs, state and offsets at once.

One process is one member of the consumer group ``[kafka] group_id``. Per batch:

1. ``consume`` up to ``batch_size`` messages from the assigned input partitions;
2. split them by partition number: each partition number has its own :class:`Engine` (state
   follows partitions), and apply each part;
3. in ONE transaction: posterior, anomaly, drift, calibration and dead-letter records, the
   changelog rows of the streams the batch changed (plus tombstones of evicted ones) to the
   same partition number of the compacted changelog topic, and the consumer offsets
   (``send_offsets_to_transaction``, sent first and in the background while the records are
   produced). Calibration monitors are not in the changelog: after a restart or a rollback
   they start over, so the calibration topic is the one output that a crash can change (it
   describes recent behaviour; it is not state).

The commit of a batch (waiting for its records' acknowledgements, then ``commit_transaction``)
runs in the background while the next batch is consumed and applied; that batch's outputs are
produced only once the commit returned, in a transaction of their own. If the commit fails,
both batches go back: their partitions' engines are rebuilt and the consumer is rewound, as
below. A rebalance waits for the commit under way before partitions are revoked.

Downstream reads with ``isolation.level=read_committed``, so a crash anywhere leaves either the
whole batch or none of it. On assignment a partition's engine is rebuilt from its changelog
partition (read_committed, to the high watermark seen at the start: a transaction another
producer left open is waited for, see :func:`read_changelog`) before any of its messages are
applied; on revocation the engine is dropped. When a transaction fails, it is ended first
(aborted, or, when the producer cannot abort, fenced by a new producer of the same
``transactional.id``), then the engines of the batch's partitions are rebuilt from the
changelog and the consumer is rewound to the committed offsets, so state and input agree again.
Every step is retried with backoff while the broker is away (readiness false, a WARNING per
attempt), and no call into librdkafka may block longer than its timeout plus a grace: a
transactional call that has not returned by then is given up with its producer (see
:meth:`KafkaRunner._await`). The clients' settings and bounded calls are in
:mod:`bayestream.runtime.clients`, message positions and source headers in
:mod:`bayestream.runtime.positions`; only the runtime room knows about Kafka.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, cast

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
from bayestream.models._threads import Workers, auto_threads, workers
from bayestream.runtime.checkpoint import (
    Inconsistent,
    committed_with_checkpoint,
    encode_checkpoint,
)
from bayestream.runtime.clients import (
    ABORT_TIMEOUT,
    COMMIT_TIMEOUT,
    COMMITTED_TIMEOUT,
    FLUSH_TIMEOUT,
    INIT_TIMEOUT,
    OFFSETS_TIMEOUT,
    REQUIRED_CONSUMER,
    TIMED_OUT,
    TUNED_CONSUMER,
    TUNED_PRODUCER,
    TXN_GRACE,
    BoundedCall,
    Deliveries,
)
from bayestream.runtime.gcpolicy import BatchCollector, batch_gc
from bayestream.runtime.hooks import Hooks, NoHooks
from bayestream.runtime.label_feed import LabelFeed
from bayestream.runtime.labels import LabelJoin
from bayestream.runtime.positions import (
    group_by_partition,
    next_offsets,
    origin,
    position_headers,
)
from bayestream.runtime.records import RecordWriter
from bayestream.runtime.restore import restore_engines
from bayestream.runtime.sizing import members_on_this_host, share_of_cores
from bayestream.runtime.topics import KafkaRuntimeError, prepare_topics
from bayestream.schema.batch import RawBatch

log = logging.getLogger("bayestream.kafka")
# librdkafka's own log lines (connection failures, group and transaction events) reach Python
# logging through this logger, in the runtime's format, instead of stderr raw
LIBRDKAFKA_LOG = logging.getLogger("bayestream.librdkafka")

# A restore that reads the same disagreement with the committed offsets this many times in a
# row, over at least this long, is not a short read: the state's checkpoint decides.
STUBBORN_READS = 5
STUBBORN_SECONDS = 20.0
# Backoff between attempts of a recovery step while the broker is away.
BACKOFF_FIRST = 0.5
BACKOFF_MAX = 30.0


class _InFlight:
    """A batch whose transaction is committing in the background while the next batch is
    consumed and applied (see :meth:`KafkaRunner._settle`)."""

    commit: BoundedCall  # started once the batch is produced

    def __init__(
        self,
        ts: np.ndarray,
        by_partition: dict[int, list[Message]],
        partitions: set[tuple[str, int]],
    ) -> None:
        self.ts = ts  # the event times of a sample of the batch's applied events
        self.by_partition = by_partition
        self.partitions = partitions
        # when the commit returned (the runner's clock): the batch's publish time
        self.committed_at = 0.0


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
        # the engines' kernel threads: [engine] threads, else this member's share of the
        # host's cores, sized again after every rebalance (see bayestream.runtime.sizing)
        self._workers: Workers | None = (
            workers(config.engine.threads) if config.engine.threads else None
        )
        self._resize = config.engine.threads is None
        # per partition number with an engine: input topic -> the next offset its state
        # includes (its changelog checkpoint, see bayestream.runtime.checkpoint)
        self._positions: dict[int, dict[str, int]] = {}
        # restores that disagreed with the committed offsets, by partitions: (first seen,
        # reads in a row with the same answer, the answer)
        self._inconsistent: dict[tuple[int, ...], tuple[float, int, str]] = {}
        self._stopping = threading.Event()
        common = {**reveal(self.settings.client), **reveal(environment_properties())}
        common["bootstrap.servers"] = bootstrap_servers
        common["logger"] = LIBRDKAFKA_LOG
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
            # delivery reports only for failed messages: no callback per message on the hot
            # path, and a failed delivery fails its transaction (see Deliveries)
            "delivery.report.only.error": True,
        }
        self.consumer: Consumer | None = None
        self.producer: Producer | None = None
        # a transaction of self.producer is open (begun, neither committed nor aborted)
        self._in_txn = False
        # the failed transaction cannot be left to self.producer to abort (see _recover): a
        # new producer of the same transactional.id fences it and ends the transaction
        self._replace_producer = False
        self._collector = BatchCollector()
        # when the last consume returned (time.monotonic)
        self._batch_closed = time.monotonic()
        # the batch whose transaction commits while the next one is consumed and applied
        self._inflight: _InFlight | None = None
        # a commit that failed while a rebalance callback waited for it, with its partitions:
        # rolled back by the next step (a callback cannot discard what its consume returns)
        self._failed_commit: tuple[KafkaError, set[tuple[str, int]]] | None = None
        # failed deliveries of self.producer's open transaction
        self._deliveries = Deliveries()
        # labels (``labels_topic``) joined to the anomaly probabilities of the engines
        self.labels = LabelJoin(self.settings.labels_capacity)
        self._label_feed: LabelFeed | None = None

    # --- lifecycle ------------------------------------------------------------------------

    def stop(self) -> None:
        """Finish the current batch, commit it and leave the group."""
        self._stopping.set()

    def run(self) -> int:
        """Process until :meth:`stop`; returns 0 after a clean shutdown."""
        log.info(
            "kafka settings: %s", redacted({k: v for k, v in self._common.items() if k != "logger"})
        )
        prepare_topics(self._common, self.settings)
        self.producer = self._new_producer()
        consumer = Consumer(self._consumer_conf)
        self.consumer = consumer
        if self.settings.labels_topic:
            self._label_feed = LabelFeed(
                {
                    **self._common,
                    **reveal(self.settings.consumer),
                    **REQUIRED_CONSUMER,
                    "group.id": f"{self.settings.group_id}.labels",  # it commits nothing
                },
                self.settings.labels_topic,
            )
        consumer.subscribe(
            list(self.settings.input_topics),
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_lost=self._on_lost,
        )
        try:
            # automatic GC off, collected between batches; restores (run from consume() in
            # the assignment callback) build a million names with it off too, which the
            # collector would otherwise rescan dozens of times (1 M rows: 4.8 s -> 1.0 s)
            with batch_gc() as collector:
                self._collector = collector
                while not self._stopping.is_set():
                    self.hooks.heartbeat()
                    self.step()
                self._settle_or_recover()  # the last batch's commit
        finally:
            self.hooks.set_ready(False)
            self._stopping.set()  # also after an error: recovery steps are tried once, not retried
            # leaves the group: revocation waits for a commit still under way (after an error)
            consumer.close()
            if self._in_txn:  # an error left a transaction open: end it rather than let it
                try:  # hold back read_committed readers until transaction.timeout.ms
                    self._end_transaction()
                except KafkaException as exc:
                    log.error("ending the open transaction at shutdown failed: %s", exc)
            if self._label_feed is not None:
                self._label_feed.close()
            if self.producer is not None:
                self.producer.flush(10)
        return 0

    def _new_producer(self) -> Producer:
        """A transactional producer, initialised: this fences any earlier producer of the same
        ``transactional.id`` and ends (completes or aborts) its open transaction."""
        deliveries = Deliveries()
        producer = Producer({**self._producer_conf, "on_delivery": deliveries})
        self._bounded("init_transactions", producer, INIT_TIMEOUT, producer.init_transactions)
        self._deliveries = deliveries
        return producer

    def _bounded(
        self, what: str, producer: Producer, timeout: float, call: Callable[[float], Any]
    ) -> None:
        """``call(timeout)``, a blocking transactional call of ``producer``, with a hard deadline
        (see :class:`BoundedCall`): started and waited for."""
        self._await(BoundedCall(what, producer, timeout, call))

    def _await(self, call: BoundedCall) -> None:
        """Wait for a call started in the background, heartbeating meanwhile; raise what it
        raised. librdkafka does not always honour the timeout it is given: after a broker
        restart, ``send_offsets_to_transaction`` can wait for ever for a group coordinator
        that the client decommissioned when it re-bootstrapped (confluentinc/librdkafka#5456,
        #5511). So a call that has not returned ``TXN_GRACE`` seconds past its timeout is
        given up with its producer (its thread keeps it until the call returns, if ever), the
        producer is marked for replacement, and a retriable ``TIMED_OUT`` is raised. The new
        producer's ``init_transactions`` fences the old one and ends its transaction."""
        deadline = call.started + call.timeout + TXN_GRACE
        while not call.done.wait(min(1.0, max(deadline - time.monotonic(), 0.0))):
            if time.monotonic() >= deadline:
                if call.producer is self.producer:
                    self._replace_producer = True
                log.warning(
                    "%s has not returned %.0f s after its %.0f s timeout: giving up this "
                    "producer (a new one fences it)",
                    call.what,
                    TXN_GRACE,
                    call.timeout,
                )
                raise KafkaException(
                    KafkaError(
                        TIMED_OUT,
                        f"{call.what} did not return within {call.timeout + TXN_GRACE:.0f} s",
                        retriable=True,
                    )
                )
            self.hooks.heartbeat()  # a bounded wait: the loop is alive
        if call.outcome:
            raise call.outcome.pop()  # popped: the list must not hold it once it holds this frame

    def _retrying(self, what: str, step: Callable[[], Any]) -> Any:
        """``step()``, retried with exponential backoff while it raises ``KafkaException``
        (the broker is away); gives up only when the runner is stopping."""
        delay = BACKOFF_FIRST
        while True:
            try:
                return step()
            except KafkaException as exc:
                if self._stopping.is_set():
                    log.error("%s failed (%s) while stopping: giving up", what, exc.args[0])
                    raise
                log.warning("%s failed (%s): retrying in %.1f s", what, exc.args[0], delay)
            self.hooks.heartbeat()
            self._stopping.wait(delay)
            delay = min(2 * delay, BACKOFF_MAX)

    # --- one batch ------------------------------------------------------------------------

    def step(self) -> int:
        """Consume and apply one batch, wait for the previous batch's commit, then publish
        this one and start its commit; returns how many messages the batch had."""
        assert self.consumer is not None and self.producer is not None
        # a batch closes poll_timeout_seconds after the previous one did (or at batch_size
        # messages): what arrived while that batch was processed does not wait a full
        # timeout more (measured at 50k ev/s offered: p50 event-to-publish 209 -> 135 ms)
        waited = time.monotonic() - self._batch_closed
        messages = self.consumer.consume(
            self.settings.batch_size, max(self.settings.poll_timeout_seconds - waited, 0.0)
        )
        self._batch_closed = time.monotonic()
        data, by_partition = group_by_partition(messages)
        if self._label_feed is not None:
            self.labels.add(self._label_feed.poll(), self.engines)
            self.hooks.set_labels({**self.labels.counts(), "invalid": self._label_feed.invalid})
        offsets = next_offsets(by_partition, len(self.settings.input_topics) == 1)
        touched = {(tp.topic, tp.partition) for tp in offsets}
        if self._failed_commit is not None:
            # a rebalance waited for the commit under way and it failed: what this consume
            # returned lies past the rolled-back batch, so it goes back too
            failed_error, failed_partitions = self._failed_commit
            self._failed_commit = None
            self._recover(failed_error, failed_partitions, unapplied=touched, ended=True)
            return len(data)
        if not data:
            self._settle_or_recover()  # idle: nothing to overlap the commit with
            self.hooks.set_ready(bool(self.engines))
            return 0
        self.hooks.set_ready(True)
        if self._resize:
            self._size_threads()
        error: KafkaError | None = None
        outputs: dict[int, Outputs] = {}
        try:
            # while the previous batch's transaction commits: nothing is produced yet
            outputs = {p: self._apply(p, part) for p, part in by_partition.items()}
        except KafkaException as exc:  # a restore that could not read the changelog
            error = exc.args[0]
        restore_failed = error is not None
        settled = self._settle()
        if settled is not None:  # the previous batch's commit failed: it goes back too
            error = settled[0]
            touched |= settled[1]
        elif error is None:
            try:
                self._publish(data, by_partition, outputs, offsets, touched)
            except KafkaException as exc:
                error = exc.args[0]  # exc (and with it the failed producer's frames) goes here
        if error is not None:
            # a failed restore (its own consumer) leaves no transaction open and says nothing
            # of the producer: unless the previous commit failed, there is nothing to end
            self._recover(error, touched, ended=restore_failed and settled is None)
        return len(data)

    def _apply(self, partition: int, messages: list[Message]) -> Outputs:
        engine = self.engines.get(partition)
        if engine is None:  # assigned but not restored: cannot happen inside a rebalance
            engine = self._restore(partition)
            self.engines[partition] = engine
        values: list[bytes | None] = list(map(Message.value, messages))  # in C, no frames
        if None in values:  # a null value: an invalid_json dead letter like any empty message
            values = [v or b"" for v in values]
        outputs = engine.process(RawBatch.from_messages(cast(list[bytes], values)))
        if self._label_feed is not None:
            self.labels.join(partition, engine, outputs)
        return outputs

    def _publish(
        self,
        data: list[Message],
        by_partition: dict[int, list[Message]],
        outputs: dict[int, Outputs],
        offsets: list[TopicPartition],
        touched: set[tuple[str, int]],
    ) -> None:
        """Produce a batch's outputs, changelog rows and offsets in one transaction and start
        its commit, which runs in the background until :meth:`_settle`."""
        assert self.consumer is not None and self.producer is not None
        producer, deliveries = self.producer, self._deliveries
        deliveries.error = None  # reports of an earlier, ended transaction
        producer.begin_transaction()
        self._in_txn = True
        # The offsets go first, in the background: their round trips (AddOffsetsToTxn, often
        # retried while the coordinator still completes the previous transaction, then
        # TxnOffsetCommit) overlap with producing the outputs, and are waited for before the
        # commit starts. The group generation they commit under is still this batch's
        # consume's: a rebalance runs only inside consume, and none runs before the wait.
        group = self.consumer.consumer_group_metadata()
        marked = committed_with_checkpoint(offsets)
        sending = BoundedCall(
            "send_offsets_to_transaction",
            producer,
            OFFSETS_TIMEOUT,
            lambda t: producer.send_offsets_to_transaction(marked, group, t),
        )
        # where each partition's state will stand once this transaction commits (a failed one
        # is rolled back: its partitions' positions are restored with their engines)
        for tp in offsets:
            self._positions.setdefault(tp.partition, {})[tp.topic] = tp.offset
        # with source_headers = "all", a posterior record names the newest input message of its
        # partition: the offsets about to be committed, one past it
        positions = position_headers(offsets) if self.settings.source_headers == "all" else {}
        try:
            for partition, part in by_partition.items():
                engine = self.engines[partition]
                self._produce(partition, part, outputs[partition], engine, positions.get(partition))
                self.hooks.reached("mid_batch")
        except KafkaException:
            self._await_offsets_call(sending)  # its error, when it failed, is the cause
            self._replace_producer = True
            raise
        self._await_offsets_call(sending)
        inflight = _InFlight(_sample_ts(outputs.values()), by_partition, touched)

        def commit(timeout: float) -> None:
            producer.flush(FLUSH_TIMEOUT)
            deliveries.check()
            self.hooks.reached("before_commit")
            producer.commit_transaction(COMMIT_TIMEOUT)
            inflight.committed_at = self.clock()

        # one deadline for both steps: their two timeouts (plus the grace)
        inflight.commit = BoundedCall(
            "commit_transaction", producer, FLUSH_TIMEOUT + COMMIT_TIMEOUT, commit
        )
        self._inflight = inflight

    def _await_offsets_call(self, sending: BoundedCall) -> None:
        """Wait for the batch's ``send_offsets_to_transaction``; when it failed, raise its
        error, marking the producer for replacement unless the error is abortable.

        A failed call has nothing under way, so an abortable error (a rebalance's
        ILLEGAL_GENERATION, after which every produce of the transaction fails with _STATE)
        ends with an abort: a new producer would first wait, seconds, for the broker to end
        the old transaction. A call that did not fail may still have its TxnOffsetCommit
        under way when something else fails: then only a new producer epoch fences it (after
        an abort of the same epoch it could land in a later transaction, or leave the
        group's offsets pending for ever), which the caller asks for."""
        try:
            self._await(sending)
        except KafkaException as exc:
            error = exc.args[0]
            if error.fatal() or not error.txn_requires_abort():
                self._replace_producer = True
            raise

    def _settle(self) -> tuple[KafkaError, set[tuple[str, int]]] | None:
        """Wait for the commit under way, if any, and report its batch; when it failed, its
        error and the batch's partitions, for the caller to roll back."""
        inflight, self._inflight = self._inflight, None
        if inflight is None:
            return None
        try:
            self._await(inflight.commit)
        except KafkaException as exc:
            return exc.args[0], inflight.partitions
        self._in_txn = False
        self.hooks.reached("after_commit")
        self.hooks.transaction(True)
        self.hooks.observe_publish_latency((inflight.committed_at - inflight.ts).tolist())
        self._report_partitions(inflight.by_partition)
        self._collector.after_batch()
        return None

    def _settle_or_recover(self) -> None:
        """:meth:`_settle`, rolling the batch back when its commit failed."""
        failed = self._settle()
        if failed is not None:
            self._recover(*failed)

    def _produce(
        self,
        partition: int,
        messages: list[Message],
        outputs: Outputs,
        engine: Engine,
        source: list[tuple[str, str | bytes | None]] | None,
    ) -> None:
        """Produce one partition's outputs, its changelog rows and its checkpoint into the
        open transaction; ``source``: the headers of its posterior records (None: none)."""
        assert self.producer is not None
        writer = RecordWriter(self.producer, self.settings)
        writer.outputs(partition, messages, outputs, source)
        writer.changelog(
            partition, engine.changelog(outputs), encode_checkpoint(self._positions[partition])
        )
        self.producer.poll(0)

    def _recover(
        self,
        error: KafkaError,
        partitions: Iterable[tuple[str, int]],
        unapplied: Iterable[tuple[str, int]] = (),
        ended: bool = False,
    ) -> None:
        """Roll back to the last commit: end the failed transaction (unless ``ended``), rebuild
        the engines of ``partitions`` from the changelog, rewind the consumer to the committed
        offsets on those and on ``unapplied`` (consumed past, never applied). Each step is
        retried with backoff while the broker is away (readiness is false meanwhile) and runs
        only once the step before it succeeded, so state is read back only after the failed
        transaction is resolved on the broker; nothing of the failed batch is kept."""
        self.hooks.transaction(False)
        self.hooks.set_ready(False)
        started = time.monotonic()
        if not ended:
            self._end_failed(error)
        numbers = sorted({p for _, p in partitions} & set(self.engines))
        self.labels.forget(numbers)  # their engines are rebuilt: stream ids change
        if numbers:
            restored = self._retrying(
                f"rebuilding partitions {numbers} from the changelog",
                lambda: self._restore_many(numbers),
            )
            for p in restored:
                self.engines[p].release_streams()
            self.engines.update(restored)
        rewind = sorted({*partitions, *unapplied})
        self._retrying(
            "rewinding the consumer to the committed offsets",
            lambda: self._rewind([TopicPartition(t, p) for t, p in rewind]),
        )
        log.warning("rolled back to the last commit in %.1f s", time.monotonic() - started)

    def _end_failed(self, error: KafkaError) -> None:
        """End the transaction that failed with ``error``, retrying while the broker is away."""
        if error.fatal() or not error.txn_requires_abort() or error.code() == TIMED_OUT:
            # fenced or fatal; or not an abortable error; or a timeout, after which requests of
            # this transaction may still be under way: a new producer epoch fences them all
            self._replace_producer = True
        log.warning(
            "transaction failed (%s): rolling back to the last commit (%s)",
            error,
            "replacing the producer" if self._replace_producer else "aborting",
        )
        self._retrying("ending the failed transaction", self._end_transaction)

    def _end_transaction(self) -> None:
        """End the failed transaction. An abortable error is aborted by the producer itself;
        otherwise (fatal, fenced, a timeout, a hung call, a failed send_offsets_to_transaction,
        a failed abort) the producer is replaced: the new one's ``init_transactions`` bumps the
        epoch, which fences the old producer and everything it still has under way, and makes
        the broker end the old transaction."""
        if self._in_txn and not self._replace_producer:
            assert self.producer is not None
            producer = self.producer
            try:
                self._bounded(
                    "abort_transaction", producer, ABORT_TIMEOUT, producer.abort_transaction
                )
            except KafkaException:
                self._replace_producer = True  # the next attempt fences it instead
                raise
            self._in_txn = False
            return
        self.producer = self._new_producer()  # the old one is dropped
        self._replace_producer = False
        self._in_txn = False

    def _rewind(self, tps: list[TopicPartition]) -> None:
        """Seek the still assigned partitions of ``tps`` to their committed offsets."""
        assert self.consumer is not None
        assigned = {(tp.topic, tp.partition) for tp in self.consumer.assignment()}
        tps = [tp for tp in tps if (tp.topic, tp.partition) in assigned]
        if not tps:
            return
        for tp in self.consumer.committed(tps, timeout=COMMITTED_TIMEOUT):
            if tp.error is not None:
                raise KafkaException(tp.error)
            # where the partition's state stands (verified against the committed offsets when
            # it was restored); else the committed offset
            offset = self._positions.get(tp.partition, {}).get(tp.topic, tp.offset)
            offset = offset if offset >= 0 else OFFSET_BEGINNING
            self.consumer.seek(TopicPartition(tp.topic, tp.partition, offset))

    # --- rebalancing ------------------------------------------------------------------------

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        new = sorted({tp.partition for tp in partitions} - set(self.engines))
        if new:
            self.hooks.set_ready(False)
            restored = self._retrying(
                f"restoring partitions {new} from the changelog", lambda: self._restore_many(new)
            )
            self.engines.update(restored)
        # the consumer starts where each partition's restored state stands (the committed
        # offsets, checked against the changelog's checkpoint), not where a later offset
        # fetch of its own may say
        for tp in partitions:
            at = self._positions.get(tp.partition, {}).get(tp.topic)
            if at is not None:
                tp.offset = at
        self._resize = self.config.engine.threads is None  # the group changed
        if "cooperative" in str(self._consumer_conf.get("partition.assignment.strategy", "")):
            consumer.incremental_assign(partitions)
        else:
            consumer.assign(partitions)
        self.hooks.set_ready(True)

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Partitions revoked, or lost (the same: see :meth:`_on_lost`): the commit under way
        ends first, then their engines are dropped."""
        self._settle_in_callback()
        self._drop(partitions)
        self._resize = self.config.engine.threads is None  # the group changed

    def _size_threads(self) -> None:
        """Give the engines this member's share of the host's cores (after a rebalance)."""
        assert self.consumer is not None
        self._resize = False
        cores = auto_threads()
        members = members_on_this_host(
            self._common, self.settings.group_id, self.consumer.memberid()
        )
        threads = share_of_cores(cores, members)
        if self._workers is not None and self._workers.threads == threads:
            return
        log.info(
            "engine threads: %d (%d cores, %d member(s) of the group on this host)",
            threads,
            cores,
            members,
        )
        self._workers = workers(threads)
        for engine in self.engines.values():
            engine.workers = self._workers

    # a lost partition may already be another member's: its commit under way fails (fenced by
    # the new generation) and is rolled back like any other
    _on_lost = _on_revoke

    def _settle_in_callback(self) -> None:
        """Wait for the commit under way before partitions go; a failed one is ended at once,
        its rollback left to the next step (see ``_failed_commit``)."""
        failed = self._settle()
        if failed is not None:
            # ended now: no transaction of ours may stay open on partitions another member
            # is about to restore (its read_committed restore would stop before it)
            self._end_failed(failed[0])
            self._failed_commit = failed

    def _drop(self, partitions: list[TopicPartition]) -> None:
        assert self.consumer is not None
        remaining = {tp.partition for tp in self.consumer.assignment()} - {
            tp.partition for tp in partitions
        }
        for tp in partitions:
            self.hooks.drop_partition(tp.topic, tp.partition)
            if tp.partition not in remaining:
                dropped = self.engines.pop(tp.partition, None)
                if dropped is not None:
                    dropped.release_streams()
                self._positions.pop(tp.partition, None)
                self.labels.forget([tp.partition])

    def _restore_progress(self) -> None:
        self.hooks.reached("restore")
        self.hooks.heartbeat()

    def _restore(self, partition: int) -> Engine:
        """A new engine holding the committed state of one changelog partition."""
        return self._restore_many([partition])[partition]

    def _stubborn(self, key: tuple[int, ...]) -> bool:
        """Whether restores of these partitions have read the same disagreement between the
        changelog's checkpoint and the committed offsets long enough to stop taking it for a
        short read (see :func:`bayestream.runtime.checkpoint.resume_positions`)."""
        first, count, _ = self._inconsistent.get(key, (0.0, 0, ""))
        return count >= STUBBORN_READS and time.monotonic() - first >= STUBBORN_SECONDS

    def _restore_many(self, partitions: list[int]) -> dict[int, Engine]:
        """New engines holding the committed state of these changelog partitions, read to
        their ends (read_committed) with one consumer and checked against the group's
        committed offsets (see :func:`bayestream.runtime.restore.restore_engines`)."""
        assert self.consumer is not None
        started = time.monotonic()
        key = tuple(partitions)
        try:
            restored = restore_engines(
                self.config,
                self.sensor,
                self._common,
                self.consumer,
                partitions,
                self._workers,
                on_batch=self._restore_progress,
                trust_checkpoint=self._stubborn(key),
            )
        except Inconsistent as exc:
            first, count, last = self._inconsistent.get(key, (started, 0, str(exc)))
            if last != str(exc):  # another answer: the reads are still moving
                first, count = started, 0
            self._inconsistent[key] = (first, count + 1, str(exc))
            raise
        self._inconsistent.pop(key, None)
        self._positions.update(restored.positions)
        seconds = time.monotonic() - started
        self.hooks.observe_restore(seconds, restored.streams)
        log.info(
            "partitions %s: restored %d streams in %.2f s", partitions, restored.streams, seconds
        )
        return restored.engines

    # --- topics and metrics -------------------------------------------------------------------

    def _report_partitions(self, by_partition: dict[int, list[Message]]) -> None:
        assert self.consumer is not None
        now = self.clock()
        for partition, messages in by_partition.items():
            topic, _, offset = origin(messages[-1])
            engine = self.engines.get(partition)
            if engine is not None and np.isfinite(engine.watermark):
                self.hooks.set_freshness(topic, partition, now - engine.watermark)
            marks = self.consumer.get_watermark_offsets(
                TopicPartition(topic, partition), cached=True
            )
            if marks is not None and marks[1] is not None:
                self.hooks.set_lag(topic, partition, max(marks[1] - offset - 1, 0))


def _sample_ts(outputs: Iterable[Outputs], size: int = 64) -> np.ndarray:
    """The event times of about ``size`` applied events of a batch, evenly spread: what its
    event-to-publish latency is sampled on (dead letters have none)."""
    parts = [o.ts for o in outputs]
    ts = np.concatenate(parts) if parts else np.empty(0)
    ts = ts[np.isfinite(ts)]
    return ts[:: max(ts.shape[0] // size, 1)]


__all__ = ["Hooks", "KafkaRunner", "KafkaRuntimeError"]
