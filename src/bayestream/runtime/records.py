"""Producing a batch's records into the open transaction: outputs, dead letters, changelog.

One :class:`RecordWriter` per partition's part of a batch, on the producer whose transaction is
open. Posterior records go out keyed by stream with the batch's source headers; anomaly and
drift records each with the position of the event behind them; calibration records keyed by
metric and input partition; dead letters as the original message with reason headers; the
changelog rows and the partition's checkpoint to the same partition number of the compacted
changelog topic.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from bayestream.config.kafka import KafkaSettings
from bayestream.engine import Outputs
from bayestream.runtime.checkpoint import CHECKPOINT_KEY
from bayestream.runtime.clients import FLUSH_TIMEOUT
from bayestream.runtime.positions import (
    DEAD_LETTER_KEEP_BYTES,
    HEADER_DETAIL,
    HEADER_REASON,
    HEADER_TRUNCATED,
    origin_headers,
)
from bayestream.schema.records import ENCODER
from bayestream.state import stream_key

Headers = list[tuple[str, str | bytes | None]]


class RecordWriter:
    """Produces records with ``producer`` (its transaction open) to the topics of
    ``settings``."""

    def __init__(self, producer: Producer, settings: KafkaSettings) -> None:
        self.producer = producer
        self.settings = settings

    def outputs(
        self, partition: int, messages: list[Message], outputs: Outputs, source: Headers | None
    ) -> None:
        """One input partition's outputs; ``messages`` are its part of the batch (dead letters
        and event records name theirs), ``source`` the headers of its posterior records."""
        settings = self.settings
        sourced = settings.source_headers != "none"
        for batch in outputs.posteriors.batches:
            self.send(
                settings.posteriors_topic,
                zip(batch.keys(), batch.json_values(), strict=True),
                headers=source,
            )
        self.send_events(
            settings.anomalies_topic,
            [(stream_key(a.key, a.metric), ENCODER.encode(a)) for a in outputs.anomalies],
            [messages[i] for i in outputs.anomaly_rows] if sourced else None,
        )
        self.send_events(
            settings.drift_topic,
            [(stream_key(d.key, d.metric), ENCODER.encode(d)) for d in outputs.drift],
            [messages[i] for i in outputs.drift_rows] if sourced else None,
        )
        self.send(  # one engine per input partition: key by both
            settings.calibration_topic,
            (
                (ENCODER.encode({"metric": r.metric, "partition": partition}), ENCODER.encode(r))
                for r in outputs.calibration
            ),
        )
        for dead in outputs.dead_letters:
            m = messages[dead.index]
            headers: Headers = [
                (HEADER_REASON, dead.reason.value.encode()),
                (HEADER_DETAIL, dead.detail.encode("utf-8", "replace")),
                *origin_headers(m),
            ]
            self.dead_letter(m, headers)

    def changelog(
        self, partition: int, rows: list[tuple[bytes, bytes | None]], checkpoint: bytes
    ) -> None:
        """A partition's changelog rows (None: a tombstone), then its checkpoint."""
        self.send(self.settings.changelog, rows, partition)
        self.send(self.settings.changelog, [(CHECKPOINT_KEY, checkpoint)], partition)

    def send(
        self,
        topic: str,
        records: Iterable[tuple[bytes | None, bytes | None]],
        partition: int = -1,
        headers: Headers | None = None,
    ) -> None:
        """Produce (key, value) records to ``topic`` (value None: a tombstone; partition -1:
        the partitioner's choice), each with ``headers``."""
        # positional arguments, and headers only when there are some: ``headers=None`` alone
        # costs about 0.3 us per call (measured), and this is the loop of every output record
        produce = self.producer.produce
        if headers is not None:
            produce = functools.partial(produce, headers=headers)
        for key, value in records:
            try:
                produce(topic, value, key, partition)
            except BufferError:
                self.make_room()
                produce(topic, value, key, partition)

    def send_events(
        self,
        topic: str,
        records: list[tuple[bytes | None, bytes | None]],
        sources: list[Message] | None,
    ) -> None:
        """Produce records of single events, each with the source headers of its event's
        message (``sources``; None: without headers)."""
        if sources is None:
            self.send(topic, records)
            return
        for record, m in zip(records, sources, strict=True):
            self.send(topic, [record], headers=origin_headers(m))

    def make_room(self) -> None:
        """The producer's queue is full (``queue.buffering.max.*``, e.g. a batch with more
        records than it holds): deliver what it has, inside the open transaction."""
        if self.producer.flush(FLUSH_TIMEOUT):
            raise KafkaException(
                KafkaError(KafkaError._QUEUE_FULL, "producer queue still full after a flush")
            )

    def dead_letter(self, m: Message, headers: Headers) -> None:
        """Produce the dead letter of ``m``; one too large to produce (a poison pill that would
        otherwise fail every retry of its batch) keeps the first DEAD_LETTER_KEEP_BYTES bytes
        and a ``bayestream.truncated`` header with the original size."""
        topic = self.settings.dead_letter_topic
        value = m.value()
        try:
            self.send(topic, [(m.key(), value)], headers=headers)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.MSG_SIZE_TOO_LARGE or value is None:
                raise
            headers = [*headers, (HEADER_TRUNCATED, str(len(value)).encode())]
            key = m.key()
            if key is not None and len(key) > DEAD_LETTER_KEEP_BYTES:
                key = key[:DEAD_LETTER_KEEP_BYTES]
            self.send(topic, [(key, value[:DEAD_LETTER_KEEP_BYTES])], headers=headers)


__all__ = ["RecordWriter"]
