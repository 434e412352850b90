"""The Kafka side of ``bayestream serve``: materialise the compacted posteriors topic.

One consumer with ``isolation.level=read_committed``, assigned every partition of the topic
from the beginning (no consumer group: a fresh ``group.id`` per process and no commits, so
readers never touch the processors' groups and scale apart). Each committed record replaces
its stream's entry in the :class:`~bayestream.serve.store.PosteriorStore`, a tombstone deletes
it, a message that is not a posterior record is counted and skipped. The consumer thread only
fetches; its batches are applied on the service's event loop (:meth:`PosteriorFeed.apply_forever`),
a few records at a time between requests.

Ready once every partition has been read up to the end offset (high watermark) it had when the
feed started: like the changelog restore, a transaction left open by a crashed processor holds
readiness back until it is committed or aborted, rather than serving records older than those
committed after it.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import gc
import logging
import threading
import time
import uuid
from typing import Any

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    TopicPartition,
)

from bayestream.config.kafka import KafkaSettings, environment_properties, reveal
from bayestream.errors import BayestreamError
from bayestream.serve.sensor import NullSensor, ServeSensor
from bayestream.serve.store import InvalidRecord, PosteriorStore, pack, parse_name

log = logging.getLogger("bayestream.serve")
LIBRDKAFKA_LOG = logging.getLogger("bayestream.librdkafka")

CONNECT_TIMEOUT = 10.0
# consume() returns after this many messages or this long; the store changes message by
# message, so a request never waits for a whole batch
CONSUME_MESSAGES = 2000
CONSUME_TIMEOUT = 0.05
# Records are applied on the event loop APPLY_CHUNK at a time (about 40 us each), requests
# answered between chunks; the consumer thread runs at most MAX_PENDING batches ahead.
APPLY_CHUNK = 25
MAX_PENDING = 4
LAG_INTERVAL = 1.0  # seconds between refreshes of the lag figure

FEED_CONSUMER: dict[str, Any] = {
    "fetch.wait.max.ms": 50,
    "queued.min.messages": 100_000,
    # prefetched messages held by librdkafka (default 64 MiB): memory a catch-up borrows
    "queued.max.messages.kbytes": 16_384,
    "max.partition.fetch.bytes": 8 << 20,
    "fetch.max.bytes": 64 << 20,
}
REQUIRED_FEED: dict[str, Any] = {
    "enable.auto.commit": False,
    "enable.auto.offset.store": False,
    "isolation.level": "read_committed",
    "enable.partition.eof": True,
    "auto.offset.reset": "earliest",
}


def release_free_memory() -> None:
    """glibc's ``malloc_trim(0)``: the heap's free pages back to the system (elsewhere nothing).

    As :func:`bayestream.state._memory.release_free_memory`, without importing ``state`` (and
    with it numpy and numba, 70 MB the query service does not need)."""
    name = ctypes.util.find_library("c")
    with contextlib.suppress(OSError, AttributeError, TypeError):
        ctypes.CDLL(name).malloc_trim(0)


class FeedError(BayestreamError):
    """The posteriors topic cannot be read (broker unreachable, topic missing, fatal error)."""


class PosteriorFeed:
    """Reads ``settings.posteriors_topic`` into ``store`` on a thread of its own.

    :meth:`connect` checks the broker and the topic (raising :class:`FeedError` in one line)
    and notes the end offsets; :meth:`start` reads on a daemon thread until :meth:`stop`.
    """

    def __init__(
        self,
        settings: KafkaSettings,
        bootstrap: str,
        store: PosteriorStore,
        sensor: ServeSensor | None = None,
        connect_timeout: float = CONNECT_TIMEOUT,
    ) -> None:
        self.topic = settings.posteriors_topic
        self.bootstrap = bootstrap
        self.store = store
        self.sensor = sensor or NullSensor()
        self.connect_timeout = connect_timeout
        common = {**reveal(settings.client), **reveal(environment_properties())}
        common["bootstrap.servers"] = bootstrap
        common["logger"] = LIBRDKAFKA_LOG
        self._conf = {
            **FEED_CONSUMER,
            **common,
            **reveal(settings.consumer),
            **REQUIRED_FEED,
            "group.id": f"bayestream-serve-{uuid.uuid4().hex}",
        }
        self._consumer: Consumer | None = None
        self._partitions: list[int] = []
        self.start_ends: dict[int, int] = {}
        self._reached: dict[int, int] = {}  # next offset to read, per partition
        self._ends: dict[int, int] = {}  # latest known end (last stable offset)
        self._ready = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._batches: asyncio.Queue[list[Message]] = asyncio.Queue()
        self._pending = threading.Semaphore(MAX_PENDING)
        self.failure: BaseException | None = None
        self.heartbeat = time.monotonic()
        self.caught_up_seconds: float | None = None
        self._started = 0.0

    # -- start ------------------------------------------------------------------------------

    def connect(self) -> None:
        """Reach the broker, find the topic's partitions and their end offsets.

        Raises
        ------
        FeedError
            The broker does not answer within ``connect_timeout``, or the topic is missing.
        """
        consumer = Consumer(self._conf)
        try:
            metadata = consumer.list_topics(self.topic, timeout=self.connect_timeout)
            found = metadata.topics.get(self.topic)
            if found is None or found.error is not None or not found.partitions:
                raise FeedError(
                    f"posteriors topic {self.topic!r} does not exist on {self.bootstrap} "
                    "([kafka] posteriors_topic; a processor creates it at its start)"
                )
            self._partitions = sorted(found.partitions)
            probe = Consumer({**self._conf, "isolation.level": "read_uncommitted"})
            try:
                for p in self._partitions:
                    tp = TopicPartition(self.topic, p)
                    low, high = probe.get_watermark_offsets(tp, self.connect_timeout, cached=False)
                    self.start_ends[p] = high
                    self._reached[p] = low
                    self._ends[p] = high
            finally:
                probe.close()
        except KafkaException as exc:
            consumer.close()
            raise FeedError(
                f"cannot read {self.topic!r} from Kafka at {self.bootstrap}: "
                f"{exc.args[0].str() if exc.args else exc} (is the broker up and reachable?)"
            ) from None
        except BaseException:
            consumer.close()
            raise
        consumer.assign([TopicPartition(self.topic, p, OFFSET_BEGINNING) for p in self._partitions])
        self._consumer = consumer
        self._started = time.monotonic()
        self._check_ready()
        log.info(
            "reading %s: %d partitions, %d records to catch up to",
            self.topic,
            len(self._partitions),
            sum(self.start_ends[p] - self._reached[p] for p in self._partitions),
        )

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Consume on a daemon thread (after :meth:`connect`); the records are applied on
        ``loop`` by :meth:`apply_forever`, which must run there."""
        if self._consumer is None:
            raise RuntimeError("connect() first")
        self._loop = loop
        self._thread = threading.Thread(target=self._run, name="bayestream-serve-feed", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)
        elif self._consumer is not None:
            self._consumer.close()
            self._consumer = None

    # -- state for probes and metrics -------------------------------------------------------

    @property
    def ready(self) -> bool:
        return self._ready.is_set()

    def alive(self) -> tuple[bool, str]:
        if self.failure is not None:
            return False, f"feed stopped: {self.failure}"
        age = time.monotonic() - self.heartbeat
        if age > 30.0:
            return False, f"feed loop silent for {age:.0f} s"
        return True, ""

    def lag(self) -> int:
        """Messages between what has been read and the end of the topic, summed over
        partitions."""
        return sum(max(self._ends.get(p, 0) - self._reached.get(p, 0), 0) for p in self._partitions)

    # -- the loop ---------------------------------------------------------------------------

    def _check_ready(self) -> None:
        if not self._ready.is_set() and all(
            self._reached[p] >= self.start_ends[p] for p in self._partitions
        ):
            self.caught_up_seconds = time.monotonic() - self._started
            # the catch-up's transient heap (prefetched messages, parsing) back to the system,
            # and what exists now out of the collector's full passes (a pause per pass)
            release_free_memory()
            gc.collect()
            gc.freeze()
            self._ready.set()
            log.info(
                "caught up with %s: %d streams in %.1f s",
                self.topic,
                len(self.store),
                self.caught_up_seconds,
            )

    def _run(self) -> None:
        """The consumer thread: fetch batches (librdkafka waits without the GIL) and hand them
        to the loop, at most MAX_PENDING batches ahead of it."""
        consumer, loop = self._consumer, self._loop
        assert consumer is not None and loop is not None
        next_lag = 0.0
        last_error: int | None = None
        try:
            while not self._stopping.is_set():
                self.heartbeat = now = time.monotonic()
                messages = consumer.consume(CONSUME_MESSAGES, CONSUME_TIMEOUT)
                batch: list[Message] = []
                for m in messages:
                    err = m.error()
                    if err is None or err.code() == KafkaError._PARTITION_EOF:
                        batch.append(m)
                        continue
                    if err.fatal():
                        raise KafkaException(err)
                    if err.code() != last_error:
                        log.warning("reading %s: %s (retrying)", self.topic, err.str())
                    last_error = err.code()
                if batch:
                    while not self._pending.acquire(timeout=0.5):
                        self.heartbeat = time.monotonic()
                        if self._stopping.is_set():
                            return
                    loop.call_soon_threadsafe(self._batches.put_nowait, batch)
                if now >= next_lag:
                    next_lag = now + LAG_INTERVAL
                    self._refresh_ends(consumer)
        except BaseException as exc:
            self.failure = exc
            log.error("the feed of %s stopped: %s", self.topic, exc)
        finally:
            consumer.close()
            self._consumer = None

    async def apply_forever(self) -> None:
        """On the event loop: apply the consumer's batches, APPLY_CHUNK records at a time,
        letting requests run between chunks (one thread does both: no lock convoy). An error
        here stops the feed like one of the consumer's (``failure``; the service exits)."""
        try:
            await self._apply_batches()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.failure = exc
            log.error("applying records of %s failed: %r", self.topic, exc)
            self._stopping.set()

    async def _apply_batches(self) -> None:
        store, sensor, reached = self.store, self.sensor, self._reached
        while True:
            batch = await self._batches.get()
            try:
                for start in range(0, len(batch), APPLY_CHUNK):
                    for m in batch[start : start + APPLY_CHUNK]:
                        partition, offset = m.partition(), m.offset()
                        assert partition is not None and offset is not None
                        if m.error() is not None:  # the end of a partition, for now
                            reached[partition] = max(reached[partition], offset)
                            self._ends[partition] = max(self._ends[partition], offset)
                            continue
                        reached[partition] = offset + 1
                        self._apply(store, sensor, partition, offset, m.key(), m.value())
                    await asyncio.sleep(0)
            finally:
                self._pending.release()
            if not self._ready.is_set():
                self._check_ready()

    @staticmethod
    def _apply(
        store: PosteriorStore,
        sensor: ServeSensor,
        partition: int,
        offset: int,
        raw_key: bytes | None,
        value: bytes | None,
    ) -> None:
        try:
            name = parse_name(raw_key)
            if value is None:
                store.delete(name)
                sensor.on_record("deleted")
                return
            store.put(name, pack(partition, offset, value))
        except InvalidRecord as exc:
            sensor.on_record("invalid")
            log.debug("skipped %d@%d: %s", partition, offset, exc)
            return
        sensor.on_record("stored")

    def _refresh_ends(self, consumer: Consumer) -> None:
        for p in self._partitions:
            try:
                _, high = consumer.get_watermark_offsets(TopicPartition(self.topic, p), cached=True)
            except KafkaException:
                continue
            if high is not None and high >= 0:
                self._ends[p] = max(high, self._reached[p])


__all__ = ["CONNECT_TIMEOUT", "FeedError", "PosteriorFeed"]
