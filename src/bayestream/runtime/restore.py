"""Rebuilding partitions' engines from the changelog, checked against the committed offsets.

A restore reads the changelog partitions to their ends (:func:`read_changelog`), takes each
partition's checkpoint out of what it read and checks it against the group's committed offsets
(:func:`resume_positions`: a disagreement raises a retriable error, and the caller tries again),
then loads the rows into new engines a chunk at a time, freeing the rows as it goes
(:func:`drain_rows`): a restore never holds every row twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Consumer, TopicPartition

from bayestream.config import Config
from bayestream.engine import Engine, Sensor
from bayestream.models._threads import Workers
from bayestream.runtime.changelog import read_changelog
from bayestream.runtime.checkpoint import CHECKPOINT_KEY, decode_checkpoint, resume_positions
from bayestream.runtime.clients import COMMITTED_TIMEOUT
from bayestream.state.rowbatch import drain_rows

log = logging.getLogger("bayestream.kafka")


@dataclass
class Restored:
    """Engines rebuilt from the changelog, where each one's state stands in the input
    (partition -> input topic -> next offset), and how many streams they hold."""

    engines: dict[int, Engine]
    positions: dict[int, dict[str, int]]
    streams: int


def restore_engines(
    config: Config,
    sensor: Sensor,
    common: dict[str, Any],
    consumer: Consumer,
    partitions: list[int],
    workers: Workers | None,
    on_batch: Callable[[], None] | None = None,
    trust_checkpoint: bool = False,
) -> Restored:
    """New engines holding the committed state of these changelog partitions.

    ``consumer`` is the group's consumer (its committed offsets are the check), ``workers``
    the engines' kernel threads (None: the configuration's), ``on_batch`` called per batch
    of changelog records read. Raises a retriable ``KafkaException`` when the changelog
    cannot be read, or when what was read disagrees with the committed offsets (unless
    ``trust_checkpoint``: see :func:`resume_positions`)."""
    settings = config.kafka
    rows = read_changelog(common, settings.changelog, settings.group_id, partitions, on_batch)
    positions = _verified_positions(config, consumer, partitions, rows, trust_checkpoint)
    engines = {}
    total = 0
    for p in partitions:
        engine = Engine(config, sensor)
        if workers is not None:
            engine.workers = workers
        bad = 0
        for batch in drain_rows(rows.pop(p)):  # 64 k rows at a time, freed as it goes
            bad += batch.bad
            total += engine.restore_batch(batch)
        if bad:
            log.error(
                "changelog %s[%d]: %d rows are not valid state rows, skipped",
                settings.changelog,
                p,
                bad,
            )
        engines[p] = engine
    return Restored(engines, positions, total)


def _verified_positions(
    config: Config,
    consumer: Consumer,
    partitions: list[int],
    rows: dict[int, dict[bytes, bytes]],
    trust_checkpoint: bool,
) -> dict[int, dict[str, int]]:
    """Per partition, the input offsets its changelog checkpoint (taken out of ``rows``) says
    the state includes, checked against the group's committed offsets; raises a retriable
    :class:`~bayestream.runtime.checkpoint.Inconsistent` when they disagree."""
    topics = list(config.kafka.input_topics)
    committed = consumer.committed(
        [TopicPartition(t, p) for p in partitions for t in topics], timeout=COMMITTED_TIMEOUT
    )
    out = {}
    for p in partitions:
        value = rows[p].pop(CHECKPOINT_KEY, None)
        checkpoint = None
        if value is not None:
            try:
                checkpoint = decode_checkpoint(value)
            except ValueError as exc:
                log.error("changelog %s[%d]: %s", config.kafka.changelog, p, exc)
        mine = [tp for tp in committed if tp.partition == p]
        out[p] = resume_positions(p, checkpoint, mine, trust_checkpoint)
    return out


__all__ = ["Restored", "restore_engines"]
