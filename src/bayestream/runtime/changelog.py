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
# A restore held back by a transaction another producer left open (see read_changelog) waits
# for it this long at most: the broker's default transaction.max.timeout.ms, the longest any
# transaction can stay open before the coordinator aborts it.
HOLD_TIMEOUT = 900.0


def read_changelog(
    common: dict[str, Any],
    topic: str,
    group_id: str,
    partitions: list[int],
    on_batch: Callable[[], None] | None = None,
    stall_timeout: float = STALL_TIMEOUT,
    hold_timeout: float = HOLD_TIMEOUT,
) -> dict[int, dict[bytes, bytes]]:
    """Per partition, the latest value of every key (tombstones remove it), reading the
    committed records (read_committed) from the beginning to the end, with one consumer.

    "The end" is the partition's high watermark when the restore starts, not the last stable
    offset a read_committed consumer stops at: a transaction left open by another producer (a
    crashed or partitioned instance with another ``transactional.id``) holds the last stable
    offset at its first record, and committed rows written after it (ours, since) would be
    missed while the consumer offsets that go with them are not. Such a restore waits until
    that transaction is committed or aborted (the broker aborts it at its timeout), at most
    ``hold_timeout`` seconds.

    Transient consumer errors (broker down, transport) are logged and waited out; a fatal
    one raises at once; ``stall_timeout`` seconds without progress (not counting the wait
    for an open transaction) raise a retriable ``KafkaException`` (``_TIMED_OUT``)."""
    ends = _high_watermarks({**common, "group.id": f"{group_id}.restore"}, topic, partitions)
    rows: dict[int, dict[bytes, bytes]] = {p: {} for p in partitions}
    reader = Consumer(
        {
            **common,
            "group.id": f"{group_id}.restore",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
            "enable.partition.eof": True,
            # reading starts at the beginning; if that position is refused (a broker that
            # just came back), "latest" would jump to the end and read nothing
            "auto.offset.reset": "error",
            "fetch.wait.max.ms": 10,
            "max.partition.fetch.bytes": 8 << 20,
            "queued.min.messages": 1_000_000,
        }
    )
    pending = set(partitions)
    records = dict.fromkeys(partitions, 0)  # read per partition, for the log line
    held: set[int] = set()  # partitions whose last stable offset is below their end
    held_since = 0.0
    last_progress = time.monotonic()
    last_error: KafkaError | None = None
    try:
        reader.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        while pending:
            batch = reader.consume(100_000, 0.05)
            if (batch or held) and on_batch is not None:  # held: a known, bounded wait
                on_batch()
            progressed = False
            for m in batch:  # the hot loop of a restore: as few calls per record as can be
                err = m.error()
                if err is None:
                    value = m.value()
                    partition = m.partition()
                    if value is None:
                        rows[partition].pop(m.key() or b"", None)  # type: ignore[index]
                    else:
                        rows[partition][m.key() or b""] = value  # type: ignore[index]
                    records[partition] += 1  # type: ignore[index]
                    progressed = True
                    continue
                partition = m.partition()
                if err.code() == KafkaError._PARTITION_EOF and partition is not None:
                    progressed = True
                    if m.offset() >= ends[partition]:  # type: ignore[operator]
                        pending.discard(partition)
                        held.discard(partition)
                        continue
                    if not held:
                        held_since = time.monotonic()
                    if partition not in held:
                        log.warning(
                            "changelog %s[%d]: a transaction open since offset %d holds back "
                            "committed rows up to offset %d: waiting until it is committed or "
                            "aborted (the broker aborts it after its transaction.timeout.ms)",
                            topic,
                            partition,
                            m.offset(),
                            ends[partition],
                        )
                    held.add(partition)
                    continue
                if err.fatal():
                    raise KafkaException(err)
                if err.code() == KafkaError._AUTO_OFFSET_RESET:  # start again from the top
                    reason = f"changelog {topic}[{partition}]: {err.str()}"
                    raise KafkaException(KafkaError(KafkaError._STATE, reason, retriable=True))
                if last_error is None or err.code() != last_error.code():
                    log.warning("changelog %s restore: %s (waiting)", topic, err)
                last_error = err
            now = time.monotonic()
            if progressed:
                last_progress = now
            elif held and held == pending:  # only waiting for open transactions
                if now - held_since > hold_timeout:
                    reason = f"changelog {topic}: transactions open on partitions "
                    reason += f"{sorted(held)} for {hold_timeout:.0f} s"
                    raise KafkaException(KafkaError(KafkaError._TIMED_OUT, reason, retriable=True))
            elif now - last_progress > stall_timeout:
                reason = f"changelog {topic}: neither records nor the end of partitions "
                reason += f"{sorted(pending)} for {stall_timeout:.0f} s"
                if last_error is not None:
                    reason += f" (last error: {last_error.str()})"
                raise KafkaException(KafkaError(KafkaError._TIMED_OUT, reason, retriable=True))
    finally:
        reader.close()
    log.info(
        "changelog %s read: %s",
        topic,
        ", ".join(f"[{p}] {records[p]} records to offset {ends[p]}" for p in partitions),
    )
    return rows


def _high_watermarks(
    common: dict[str, Any], topic: str, partitions: list[int], timeout: float = STALL_TIMEOUT
) -> dict[int, int]:
    """Each partition's high watermark: the offset after its last record or transaction
    marker, committed or not (asked with read_uncommitted: read_committed answers with the
    last stable offset)."""
    probe = Consumer({**common, "isolation.level": "read_uncommitted"})
    try:
        return {
            p: probe.get_watermark_offsets(TopicPartition(topic, p), timeout, cached=False)[1]
            for p in partitions
        }
    finally:
        probe.close()


__all__ = ["HOLD_TIMEOUT", "STALL_TIMEOUT", "read_changelog"]
