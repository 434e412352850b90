"""Reading a compacted changelog back: the latest committed row of every stream."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, TopicPartition


def read_changelog(
    common: dict[str, Any],
    topic: str,
    group_id: str,
    partitions: list[int],
    on_batch: Callable[[], None] | None = None,
) -> dict[int, dict[bytes, bytes]]:
    """Per partition, the latest value of every key (tombstones remove it), reading the
    committed records (read_committed) from the beginning to the end, with one consumer."""
    rows: dict[int, dict[bytes, bytes]] = {p: {} for p in partitions}
    reader = Consumer(
        {
            **common,
            "group.id": f"{group_id}.restore",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
            "enable.partition.eof": True,
            "fetch.wait.max.ms": 10,
            "max.partition.fetch.bytes": 8 << 20,
            "queued.min.messages": 1_000_000,
        }
    )
    pending = set(partitions)
    try:
        reader.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        while pending:
            batch = reader.consume(100_000, 0.05)
            if batch and on_batch is not None:
                on_batch()
            for m in batch:
                err = m.error()
                partition = m.partition()
                assert partition is not None
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        pending.discard(partition)
                        continue
                    raise KafkaException(err)
                key, value = m.key() or b"", m.value()
                if value is None:
                    rows[partition].pop(key, None)
                else:
                    rows[partition][key] = value
    finally:
        reader.close()
    return rows


__all__ = ["read_changelog"]
