"""Scale-out: two ``bayestream run --kafka`` processes share a group; one is SIGKILLed.

The survivor takes over the dead member's partitions, restores their state from the changelog
(waiting for the broker to abort the dead member's open transaction) and finishes the input:
downstream then sees exactly what one uninterrupted process publishes.
"""

from __future__ import annotations

import json
import re
import signal
from pathlib import Path
from typing import Any

from bayestream.models._threads import auto_threads
from tests.integration.kafka_helpers import (
    BAD,
    FAST_FAILOVER,
    Published,
    Runtime,
    committed_count,
    committed_offsets,
    create_topic,
    events,
    no_open_transactions,
    produce_tracked,
    unique,
    wait_until,
    write_config,
)

PARTITIONS = 6


def _published(bootstrap: str, config: Any) -> Published:
    k = config.kafka
    topics = [k.posteriors_topic, k.anomalies_topic, k.dead_letter_topic, k.changelog]
    # the dead member's transaction stays open until the broker times it out
    wait_until(lambda: no_open_transactions(bootstrap, topics), 90, "no open transaction")
    return Published(bootstrap, config)


def test_survivor_takes_over_a_killed_members_partitions(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    bootstrap = kafka_bootstrap
    tmp = unique("scale")
    topic = f"{tmp}.in"
    create_topic(bootstrap, topic, PARTITIONS)
    lines: list[bytes | None] = []
    keys: list[bytes | None] = []
    for i, event in enumerate(events(6000, keys=30, seed=21)):
        if i % 200 == 100:
            lines.append(BAD[(i // 200) % len(BAD)])
            keys.append(f"bad-{i}".encode())
        lines.append(json.dumps(event).encode())
        keys.append(event["key"].encode())
    # default transactional ids (group-host-pid): the dead member's transaction is not fenced
    config = write_config(tmp_path / "scale.toml", tmp, batch_size=100, **FAST_FAILOVER)
    group = config.kafka.group_id

    runs: list[Runtime] = []
    try:
        first = Runtime(bootstrap, tmp_path / "scale.toml", tmp_path / "first.log")
        runs.append(first)
        wait_until(lambda: first.restored(), 60, "the first member's assignment", [first])
        second = Runtime(
            bootstrap, tmp_path / "scale.toml", tmp_path / "second.log", "before_commit:8"
        )
        runs.append(second)
        wait_until(lambda: second.restored(), 60, "the second member's assignment", runs)
        # cooperative rebalance: the first member gave up the partitions the second one took
        taken = {p for ps, _ in second.restored() for p in ps}
        assert 0 < len(taken) < PARTITIONS, second.restored()

        positions = produce_tracked(bootstrap, topic, lines, keys)  # both consume it at once
        ends = {p: 0 for p in range(PARTITIONS)}
        for p, offset in positions:
            ends[p] = max(ends[p], offset + 1)

        assert second.wait(90) == -signal.SIGKILL, second.tail()
        offsets = committed_offsets(bootstrap, group, topic)
        done = sum(max(offsets[p], 0) for p in taken)
        assert 0 < done < sum(ends[p] for p in taken), "not killed mid-stream"
        before = len(first.restored())

        wait_until(
            lambda: committed_count(bootstrap, group, topic) == len(lines),
            150,
            "the survivor to commit the whole input",
            [first],
        )
        takeover = first.restored()[before:]
        assert {p for ps, _ in takeover for p in ps} == taken, takeover
        assert sum(n for _, n in takeover) > 0  # the dead member's state, from the changelog
        assert first.stop() == 0, first.tail()
        # each member took its share of this host's cores: half while both ran, all after
        counted = re.findall(r"(\d+) member\(s\) of the group on this host", first.text())
        assert counted and counted[0] == "2", first.tail()
        if auto_threads() > 1:
            assert counted[-1] == "1", first.tail()
    finally:
        for runtime in runs:
            runtime.kill()

    # one uninterrupted process over the same input, in its own group and topics
    reference_config = write_config(
        tmp_path / "reference.toml", f"{tmp}-ref", batch_size=100, input_topics=[topic]
    )
    reference = Runtime(bootstrap, tmp_path / "reference.toml", tmp_path / "reference.log")
    try:
        wait_until(
            lambda: committed_count(bootstrap, f"{tmp}-ref.group", topic) == len(lines),
            120,
            "the reference run",
            [reference],
        )
        assert reference.stop() == 0, reference.tail()
    finally:
        reference.kill()

    got = _published(bootstrap, config)
    expected = _published(bootstrap, reference_config)
    assert len(expected.anomalies) > 0 and len(expected.dead) == len(lines) - 6000
    assert max(got.anomalies.values()) == 1, "duplicate anomalies"
    assert got.anomalies == expected.anomalies
    assert got.dead_multiset(with_topic=True) == expected.dead_multiset(with_topic=True)
    assert got.estimates() == expected.estimates()
    assert got.changelog == expected.changelog
