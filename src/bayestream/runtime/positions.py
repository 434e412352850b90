"""Where the runtime's records come from: consumed messages grouped by partition, the offsets a
batch commits, and the ``bayestream.*`` headers that name a record's input."""

from __future__ import annotations

import logging
from collections import defaultdict

import numpy as np
from confluent_kafka import Message, TopicPartition

log = logging.getLogger("bayestream.kafka")

HEADER_REASON = "bayestream.reason"
HEADER_DETAIL = "bayestream.detail"
HEADER_TOPIC = "bayestream.source.topic"
HEADER_PARTITION = "bayestream.source.partition"
HEADER_OFFSET = "bayestream.source.offset"
HEADER_TRUNCATED = "bayestream.truncated"
# A dead letter the producer refuses as too large (the original plus headers over the
# client's message.max.bytes) keeps this many bytes of the original and says so in a header.
DEAD_LETTER_KEEP_BYTES = 65_536


def origin(m: Message) -> tuple[str, int, int]:
    """Topic, partition and offset of a consumed (non-error) message."""
    topic, partition, offset = m.topic(), m.partition(), m.offset()
    assert topic is not None and partition is not None and offset is not None
    return topic, partition, offset


def source(topic: str, partition: int, offset: int) -> list[tuple[str, str | bytes | None]]:
    """An input position as record headers."""
    return [
        (HEADER_TOPIC, topic.encode()),
        (HEADER_PARTITION, str(partition).encode()),
        (HEADER_OFFSET, str(offset).encode()),
    ]


def origin_headers(m: Message) -> list[tuple[str, str | bytes | None]]:
    """The source topic, partition and offset of a consumed message, as record headers."""
    return source(*origin(m))


def position_headers(
    offsets: list[TopicPartition],
) -> dict[int, list[tuple[str, str | bytes | None]]]:
    """Per input partition number, headers naming the newest message a batch read of it: the
    topic, partition and offset of each input topic (``offsets`` are one past them)."""
    out: dict[int, list[tuple[str, str | bytes | None]]] = defaultdict(list)
    for tp in offsets:
        out[tp.partition] += source(tp.topic, tp.partition, tp.offset - 1)
    return out


def group_by_partition(messages: list[Message]) -> tuple[list[Message], dict[int, list[Message]]]:
    """The consumed messages that are not errors (errors are logged), and the same grouped
    by partition number, each group in consumption order. This runs per message, so it stays
    in C: the partition numbers come from ``map`` and each run of one partition (librdkafka
    hands a fetch's messages out together) is added as one slice."""
    data = messages
    if any(map(Message.error, messages)):
        for m in messages:
            if m.error() is not None:
                log.warning("consumer: %s", m.error())
        data = [m for m in messages if m.error() is None]
    by_partition: dict[int, list[Message]] = defaultdict(list)
    if not data:
        return data, by_partition
    numbers = np.fromiter(map(Message.partition, data), dtype=np.int64, count=len(data))
    cuts = (np.flatnonzero(numbers[1:] != numbers[:-1]) + 1).tolist()
    for start, end in zip([0, *cuts], [*cuts, len(data)], strict=True):
        by_partition[int(numbers[start])] += data[start:end]
    return data, by_partition


def next_offsets(
    by_partition: dict[int, list[Message]], single_topic: bool
) -> list[TopicPartition]:
    """The offsets to commit: one past the last message of each topic-partition. Messages of
    one partition number come in offset order per topic, so with one input topic the last
    message of each list is enough; several topics take a full pass."""
    last: dict[tuple[str, int], int] = {}
    for messages in by_partition.values():
        topic, partition, offset = origin(messages[-1])
        last[(topic, partition)] = offset
        if not single_topic and any(m.topic() != topic for m in messages):
            for m in messages:
                t, p, o = origin(m)
                last[(t, p)] = max(o, last.get((t, p), -1))
    return [TopicPartition(t, p, o + 1) for (t, p), o in last.items()]


__all__ = [
    "DEAD_LETTER_KEEP_BYTES",
    "HEADER_DETAIL",
    "HEADER_OFFSET",
    "HEADER_PARTITION",
    "HEADER_REASON",
    "HEADER_TOPIC",
    "HEADER_TRUNCATED",
    "group_by_partition",
    "next_offsets",
    "origin",
    "origin_headers",
    "position_headers",
    "source",
]
