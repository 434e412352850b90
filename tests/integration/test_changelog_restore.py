"""Reading a changelog back past a transaction another producer left open.

A crashed (or partitioned) instance with another ``transactional.id`` can leave a transaction
open on a changelog partition; a read_committed consumer stops at its first record (the last
stable offset) even when committed rows follow it. A restore that stopped there would miss
those rows while the consumer offsets committed with them are not missed. ``read_changelog``
must read to the high watermark it saw when it started: it waits for the open transaction to
be committed or aborted, and then has every committed row.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from confluent_kafka import KafkaException, Producer

from bayestream.runtime.changelog import read_changelog
from tests.integration.kafka_helpers import create_topic, unique


def _transactional(bootstrap: str, txn_id: str) -> Producer:
    producer = Producer({"bootstrap.servers": bootstrap, "transactional.id": txn_id})
    producer.init_transactions(30)
    return producer


def _commit(producer: Producer, topic: str, rows: dict[bytes, bytes]) -> None:
    producer.begin_transaction()
    for key, value in rows.items():
        producer.produce(topic, value, key, 0)
    producer.commit_transaction(30)


def _held_changelog(bootstrap: str) -> tuple[str, Producer]:
    """A changelog partition holding: committed rows a1, b1; a transaction left open by
    another producer (b -> zombie); then committed rows a2, c1 of ours."""
    topic = unique("changelog-held")
    create_topic(bootstrap, topic, 1)
    ours = _transactional(bootstrap, f"{topic}.ours")
    _commit(ours, topic, {b"a": b"a1", b"b": b"b1"})
    zombie = _transactional(bootstrap, f"{topic}.zombie")
    zombie.begin_transaction()
    zombie.produce(topic, b"zombie", b"b", 0)
    assert zombie.flush(10) == 0
    _commit(ours, topic, {b"a": b"a2", b"c": b"c1"})
    return topic, zombie


def _restore_in_background(bootstrap: str, topic: str, **kwargs: Any) -> tuple[Any, list[Any]]:
    result: list[Any] = []

    def restore() -> None:
        try:
            result.append(
                read_changelog({"bootstrap.servers": bootstrap}, topic, "g", [0], **kwargs)
            )
        except KafkaException as exc:
            result.append(exc)

    thread = threading.Thread(target=restore, daemon=True)
    thread.start()
    return thread, result


@pytest.mark.parametrize("outcome", ["abort", "commit"])
def test_restore_waits_for_an_open_transaction_and_keeps_the_rows_committed_after_it(
    kafka_bootstrap: str, outcome: str
) -> None:
    topic, zombie = _held_changelog(kafka_bootstrap)
    progress: list[float] = []
    thread, result = _restore_in_background(
        kafka_bootstrap, topic, on_batch=lambda: progress.append(time.monotonic())
    )
    thread.join(3.0)
    assert thread.is_alive(), f"returned before the open transaction ended: {result}"
    seen = len(progress)
    time.sleep(0.5)
    assert len(progress) > seen, "no progress reported while waiting (liveness)"
    if outcome == "abort":
        zombie.abort_transaction(30)
    else:
        zombie.commit_transaction(30)
    thread.join(30.0)
    assert not thread.is_alive()
    (rows,) = result
    b = b"zombie" if outcome == "commit" else b"b1"
    assert rows == {0: {b"a": b"a2", b"b": b, b"c": b"c1"}}


def test_restore_held_longer_than_its_hold_timeout_fails_retriably(kafka_bootstrap: str) -> None:
    topic, zombie = _held_changelog(kafka_bootstrap)
    try:
        thread, result = _restore_in_background(kafka_bootstrap, topic, hold_timeout=1.0)
        thread.join(30.0)
        (error,) = result
        assert isinstance(error, KafkaException)
        assert error.args[0].retriable() and "transactions open" in error.args[0].str()
    finally:
        zombie.abort_transaction(30)


def test_restore_of_a_changelog_without_open_transactions_reads_to_its_end(
    kafka_bootstrap: str,
) -> None:
    topic = unique("changelog-plain")
    create_topic(kafka_bootstrap, topic, 2)
    ours = _transactional(kafka_bootstrap, f"{topic}.ours")
    _commit(ours, topic, {b"a": b"a1"})
    ours.begin_transaction()
    ours.produce(topic, b"aborted", b"a", 0)
    ours.produce(topic, None, b"gone", 0)
    ours.abort_transaction(30)
    _commit(ours, topic, {b"gone": b"x"})
    ours.begin_transaction()
    ours.produce(topic, None, b"gone", 0)  # a committed tombstone removes the key
    ours.commit_transaction(30)
    rows = read_changelog({"bootstrap.servers": kafka_bootstrap}, topic, "g", [0, 1])
    assert rows == {0: {b"a": b"a1"}, 1: {}}
