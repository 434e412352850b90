"""The changelog checkpoint and its check against the committed offsets on restore."""

from __future__ import annotations

import logging

import pytest
from confluent_kafka import OFFSET_BEGINNING, KafkaError, TopicPartition

from bayestream.runtime.checkpoint import (
    CHECKPOINT_METADATA,
    Inconsistent,
    committed_with_checkpoint,
    decode_checkpoint,
    encode_checkpoint,
    resume_positions,
)


def committed(topic: str, offset: int, marked: bool = True) -> TopicPartition:
    if marked:
        return TopicPartition(topic, 3, offset, metadata=CHECKPOINT_METADATA)
    return TopicPartition(topic, 3, offset)


def test_checkpoint_round_trip() -> None:
    offsets = {"b": 7, "a": 12_345_678_901}
    value = encode_checkpoint(offsets)
    assert value == b'{"offsets":{"a":12345678901,"b":7}}'
    assert decode_checkpoint(value) == offsets


@pytest.mark.parametrize("value", [b"", b"{}", b'{"offsets":{"a":"x"}}', b"\x01\x02", b"[1]"])
def test_a_value_that_is_no_checkpoint_is_a_value_error(value: bytes) -> None:
    with pytest.raises(ValueError, match="not a changelog checkpoint"):
        decode_checkpoint(value)


def test_offsets_are_committed_with_the_checkpoint_mark() -> None:
    marked = committed_with_checkpoint([TopicPartition("in", 2, 40)])
    assert [(tp.topic, tp.partition, tp.offset, tp.metadata) for tp in marked] == [
        ("in", 2, 40, CHECKPOINT_METADATA)
    ]


def test_agreeing_checkpoint_and_offsets_resume_there() -> None:
    got = resume_positions(3, {"in": 40, "other": 5}, [committed("in", 40), committed("other", 5)])
    assert got == {"in": 40, "other": 5}


@pytest.mark.parametrize(
    "checkpoint",
    [None, {}, {"in": 39}, {"in": 41}],
    ids=["no checkpoint (an empty read)", "topic missing", "stale read", "ahead"],
)
def test_offsets_committed_with_a_checkpoint_must_match_it(
    checkpoint: dict[str, int] | None,
) -> None:
    with pytest.raises(Inconsistent, match="the read was incomplete") as raised:
        resume_positions(3, checkpoint, [committed("in", 40)])
    error = raised.value.args[0]
    assert error.retriable() and error.code() == KafkaError._STATE


def test_offsets_committed_without_a_checkpoint_are_trusted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # a changelog written before checkpoints existed, or offsets reset by hand
    assert resume_positions(3, None, [committed("in", 40, marked=False)]) == {"in": 40}
    with caplog.at_level(logging.WARNING):
        assert resume_positions(3, {"in": 10}, [committed("in", 40, marked=False)]) == {"in": 40}
    assert "without a checkpoint" in caplog.text


def test_a_checkpoint_without_committed_offsets_resumes_from_the_checkpoint(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING):
        assert resume_positions(3, {"in": 40}, [committed("in", -1001)]) == {"in": 40}
    assert "expired or deleted" in caplog.text


def test_neither_leaves_the_position_to_the_consumer() -> None:
    assert resume_positions(3, None, [committed("in", -1001, marked=False)]) == {}


def test_a_disagreement_that_outlasted_the_retries_resumes_from_the_checkpoint(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.ERROR):
        got = resume_positions(3, {"in": 39}, [committed("in", 40)], trust_checkpoint=True)
    assert got == {"in": 39}
    assert "lost transactions it had acknowledged" in caplog.text


def test_without_a_checkpoint_the_state_stands_at_the_beginning() -> None:
    got = resume_positions(3, None, [committed("in", 40)], trust_checkpoint=True)
    assert got == {"in": OFFSET_BEGINNING}
