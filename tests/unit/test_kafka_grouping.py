"""A consumed batch split by partition number: consumption order kept within each partition,
errors left out (and logged), whatever the runs of partitions look like."""

from __future__ import annotations

import logging

import pytest
from confluent_kafka import KafkaError, Message

from bayestream.runtime.positions import group_by_partition


def message(partition: int, offset: int) -> Message:
    return Message(topic="in", partition=partition, offset=offset, value=b"%d" % offset)


def test_runs_of_partitions_are_grouped_in_consumption_order() -> None:
    order = [0, 0, 1, 1, 1, 0, 2, 0, 2, 2, 1]
    messages = [message(p, i) for i, p in enumerate(order)]
    data, groups = group_by_partition(messages)
    assert data is messages
    assert list(groups) == [0, 1, 2]  # in order of first appearance
    for p, part in groups.items():
        assert [m.offset() for m in part] == [i for i, q in enumerate(order) if q == p]


def test_errors_are_left_out_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    error = Message(topic="in", partition=1, error=KafkaError(KafkaError._PARTITION_EOF))
    messages = [message(0, 0), error, message(1, 2), message(0, 3)]
    with caplog.at_level(logging.WARNING, logger="bayestream.kafka"):
        data, groups = group_by_partition(messages)
    assert [m.offset() for m in data] == [0, 2, 3]
    assert {p: [m.offset() for m in part] for p, part in groups.items()} == {0: [0, 3], 1: [2]}
    assert "No more messages" in caplog.text


def test_nothing_but_errors_or_nothing_at_all() -> None:
    error = Message(topic="in", partition=0, error=KafkaError(KafkaError._PARTITION_EOF))
    assert group_by_partition([error]) == ([], {})
    assert group_by_partition([]) == ([], {})
