"""Where a partition's state stands in the input: a checkpoint in the changelog, checked
against the group's committed offsets on every restore.

Every transaction writes, beside the changelog rows of partition number ``p``, one more record
to changelog partition ``p`` under the key :data:`CHECKPOINT_KEY`: the next input offset of
every input topic's partition ``p`` that the state includes (the offsets the same transaction
commits for the group, and those of earlier transactions for topics this one did not read).
The committed offsets carry :data:`CHECKPOINT_METADATA` as their metadata, which says that a
checkpoint was written with them.

Both are written in one transaction, so a restore that read the changelog to its committed end
finds a checkpoint equal to the committed offsets. When it does not, one of the two reads was
incomplete or stale (after a broker crash a broker can answer with an empty or short changelog,
or a group coordinator still loading), and the restore is tried again: state is never paired
with input positions it does not belong to. :func:`resume_positions` decides it.
"""

from __future__ import annotations

import logging

import msgspec
from confluent_kafka import OFFSET_BEGINNING, KafkaError, KafkaException, TopicPartition

log = logging.getLogger("bayestream.kafka")

CHECKPOINT_KEY = b"bayestream.checkpoint"
"""The changelog key of a partition's checkpoint (stream keys are JSON objects: no clash)."""
CHECKPOINT_METADATA = "bayestream.checkpoint.v1"
"""Metadata of offsets committed together with a checkpoint."""


class Inconsistent(KafkaException):
    """A restore read a changelog checkpoint that disagrees with the committed offsets."""


def encode_checkpoint(offsets: dict[str, int]) -> bytes:
    """The checkpoint record's value: ``{"offsets": {topic: next offset}}`` as JSON."""
    return msgspec.json.encode({"offsets": dict(sorted(offsets.items()))})


def decode_checkpoint(value: bytes) -> dict[str, int]:
    """The offsets of a checkpoint record; a value that is not one raises ``ValueError``."""
    try:
        offsets = msgspec.json.decode(value, type=dict[str, dict[str, int]])["offsets"]
    except (msgspec.DecodeError, KeyError) as exc:
        raise ValueError(f"not a changelog checkpoint: {value[:80]!r}") from exc
    return offsets


def committed_with_checkpoint(offsets: list[TopicPartition]) -> list[TopicPartition]:
    """``offsets`` to commit, marked as committed together with a checkpoint."""
    return [
        TopicPartition(tp.topic, tp.partition, tp.offset, metadata=CHECKPOINT_METADATA)
        for tp in offsets
    ]


def resume_positions(
    partition: int,
    checkpoint: dict[str, int] | None,
    committed: list[TopicPartition],
    trust_checkpoint: bool = False,
) -> dict[str, int]:
    """The input offsets to resume partition number ``partition`` from, per topic, given the
    checkpoint a restore read (None: none) and the group's committed offsets of the input
    topics' partition ``partition``.

    - Offsets committed with a checkpoint must equal the checkpoint's; otherwise a read was
      incomplete and :class:`Inconsistent` (retriable) is raised.
    - Offsets committed without one (a changelog written before checkpoints existed, or
      offsets set by hand) are trusted as they are.
    - A checkpoint without committed offsets (the group's offsets expired or were deleted)
      resumes from the checkpoint: the state includes the input before it.
    - Neither: nothing to resume, the consumer's ``auto.offset.reset`` decides.

    ``trust_checkpoint``: the disagreement has outlasted every retry, so it is not a short
    read but a broker that lost transactions it had acknowledged (seen after a single broker
    was killed mid-commit: a transaction's changelog rows aborted or hidden while the offsets
    it committed stayed). Then the state's own checkpoint decides (the beginning of the input
    without one): the input after it is processed again, and the outputs of the lost
    transactions are published again.
    """
    found = dict(checkpoint or {})
    resume: dict[str, int] = {}
    for tp in committed:
        if tp.error is not None:
            raise KafkaException(tp.error)
        mine = found.pop(tp.topic, None)
        if tp.offset >= 0 and tp.metadata == CHECKPOINT_METADATA:
            if mine != tp.offset and trust_checkpoint:
                at = OFFSET_BEGINNING if mine is None else mine
                log.error(
                    "partition %d: the group committed offset %d of %s, but the changelog "
                    "says the state stands at %s, and has said so on every retry: the broker "
                    "lost transactions it had acknowledged; processing %s again from there "
                    "(outputs of the lost transactions are published again)",
                    partition,
                    tp.offset,
                    tp.topic,
                    "its beginning" if mine is None else f"offset {mine}",
                    tp.topic,
                )
                resume[tp.topic] = at
                continue
            if mine != tp.offset:
                raise Inconsistent(
                    KafkaError(
                        KafkaError._STATE,
                        f"partition {partition}: the group committed offset {tp.offset} of "
                        f"{tp.topic} with a checkpoint, but the changelog read back has "
                        f"{'no checkpoint' if mine is None else f'offset {mine}'}: "
                        "the read was incomplete",
                        retriable=True,
                    )
                )
            resume[tp.topic] = tp.offset
        elif tp.offset >= 0:
            if mine is not None and mine != tp.offset:
                log.warning(
                    "partition %d: %s was committed at %d without a checkpoint while the "
                    "changelog's checkpoint is %d: resuming from the committed offset",
                    partition,
                    tp.topic,
                    tp.offset,
                    mine,
                )
            resume[tp.topic] = tp.offset
        elif mine is not None:
            log.warning(
                "partition %d: no committed offset of %s (expired or deleted?): resuming "
                "from the changelog's checkpoint, offset %d",
                partition,
                tp.topic,
                mine,
            )
            resume[tp.topic] = mine
    return resume


__all__ = [
    "CHECKPOINT_KEY",
    "CHECKPOINT_METADATA",
    "Inconsistent",
    "committed_with_checkpoint",
    "decode_checkpoint",
    "encode_checkpoint",
    "resume_positions",
]
