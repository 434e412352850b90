"""Reading a compacted changelog back: the latest committed row of every stream."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, TopicPartition

log = logging.getLogger("bayestream.kafka")

# A restore that receives neither a record nor the end of a partition for this long gives up
# with a retriable timeout (the broker is away), instead of waiting without a word.
STALL_TIMEOUT = 30.0


def read_changelog(
    common: dict[str, Any],
    topic: str,
    group_id: str,
    partitions: list[int],
    on_batch: Callable[[], None] | None = None,
    stall_timeout: float = STALL_TIMEOUT,
) -> dict[int, dict[bytes, bytes]]:
    """Per partition, the latest value of every key (tombstones remove it), reading the
    committed records (read_committed) from the beginning to the end, with one consumer.

    Transient consumer errors (broker down, transport) are logged and waited out; a fatal
    one raises at once; ``stall_timeout`` seconds without progress raise a retriable
    ``KafkaException`` (``_TIMED_OUT``)."""
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
    last_progress = time.monotonic()
    last_error: KafkaError | None = None
    try:
        reader.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        while pending:
            batch = reader.consume(100_000, 0.05)
            if batch and on_batch is not None:
                on_batch()
            progressed = False
            for m in batch:  # the hot loop of a restore: as few calls per record as can be
                err = m.error()
                if err is None:
                    value = m.value()
                    if value is None:
                        rows[m.partition()].pop(m.key() or b"", None)  # type: ignore[index]
                    else:
                        rows[m.partition()][m.key() or b""] = value  # type: ignore[index]
                    progressed = True
                    continue
                partition = m.partition()
                if err.code() == KafkaError._PARTITION_EOF and partition is not None:
                    pending.discard(partition)
                    progressed = True
                    continue
                if err.fatal():
                    raise KafkaException(err)
                if last_error is None or err.code() != last_error.code():
                    log.warning("changelog %s restore: %s (waiting)", topic, err)
                last_error = err
            now = time.monotonic()
            if progressed:
                last_progress = now
            elif now - last_progress > stall_timeout:
                reason = f"changelog {topic}: neither records nor the end of partitions "
                reason += f"{sorted(pending)} for {stall_timeout:.0f} s"
                if last_error is not None:
                    reason += f" (last error: {last_error.str()})"
                raise KafkaException(KafkaError(KafkaError._TIMED_OUT, reason, retriable=True))
    finally:
        reader.close()
    return rows


__all__ = ["STALL_TIMEOUT", "read_changelog"]
