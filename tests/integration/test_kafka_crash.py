"""Crash safety of the Kafka runtime, with real ``bayestream run --kafka`` processes.

A process is SIGKILLed (by ``tests.integration.crash_runner``) in the middle of a batch, just
before the commit, just after it, or while restoring its state; a restarted process must publish
exactly what an uninterrupted run publishes: no lost or duplicated anomaly or dead letter, the
same final posteriors and the same changelog. Bad input must never stop the processor either:
every bad message is dead-lettered exactly once, with its reason and its source position.
"""

from __future__ import annotations

import json
import signal
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

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
    produce,
    produce_tracked,
    unique,
    wait_until,
    write_config,
)

PARTITIONS = 4
BATCH_SIZE = 200
# point -> the n-th time the process reaches it dies (mid-stream: ~20 batches in all)
CRASH_AFTER = {"mid_batch": 10, "before_commit": 6, "after_commit": 6, "restore": 1}


def _crash_input() -> tuple[list[bytes], list[bytes | None]]:
    """3000 good events with BAD messages spread over the stream and the partitions."""
    lines: list[bytes] = []
    keys: list[bytes | None] = []
    for i, event in enumerate(events(3000, seed=11)):
        if i % 150 == 75:
            lines.append(BAD[(i // 150) % len(BAD)])
            keys.append(f"bad-{i}".encode())
        lines.append(json.dumps(event).encode())
        keys.append(event["key"].encode())
    return lines, keys


LINES, KEYS = _crash_input()
N_BAD = sum(1 for k in KEYS if k is not None and k.startswith(b"bad-"))


def _config(path: Path, tmp: str, **kafka: Any) -> Any:
    # a restarted instance keeps its transactional id: it fences the dead one at once
    return write_config(
        path, tmp, batch_size=BATCH_SIZE, transactional_id=f"{tmp}.tx", **FAST_FAILOVER, **kafka
    )


def _outputs(config: Any) -> list[str]:
    k = config.kafka
    return [k.posteriors_topic, k.anomalies_topic, k.dead_letter_topic, k.changelog]


def _run_to_end(bootstrap: str, config_path: Path, log: Path, config: Any, total: int) -> None:
    """One uninterrupted process over ``total`` input messages, stopped with SIGTERM."""
    runtime = Runtime(bootstrap, config_path, log)
    try:
        k = config.kafka
        wait_until(
            lambda: committed_count(bootstrap, k.group_id, k.input_topics[0]) == total,
            120,
            "the input to be committed",
            [runtime],
        )
        assert runtime.stop() == 0, runtime.tail()
    finally:
        runtime.kill()


def _published(bootstrap: str, config: Any) -> Published:
    wait_until(lambda: no_open_transactions(bootstrap, _outputs(config)), 60, "no open transaction")
    return Published(bootstrap, config)


@pytest.fixture(scope="module")
def reference(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Published:
    """What one uninterrupted process publishes for the crash tests' input."""
    path = tmp_path_factory.mktemp("crash-reference")
    tmp = unique("crash-ref")
    create_topic(kafka_bootstrap, f"{tmp}.in", PARTITIONS)
    positions = produce_tracked(kafka_bootstrap, f"{tmp}.in", LINES, KEYS)
    config = _config(path / "bayestream.toml", tmp)
    _run_to_end(kafka_bootstrap, path / "bayestream.toml", path / "run.log", config, len(LINES))
    published = _published(kafka_bootstrap, config)

    assert len(published.anomalies) > 0
    assert max(published.anomalies.values()) == 1
    at = dict(zip(positions, LINES, strict=True))
    assert len(published.dead) == N_BAD
    assert all(at[(d["partition"], d["offset"])] == d["value"] for d in published.dead)
    assert len(published.posteriors) == len(published.changelog) == 36  # 12 keys x 3 metrics
    return published


@pytest.mark.parametrize("point", list(CRASH_AFTER))
def test_killed_process_restarts_without_loss_or_duplicates(
    point: str, reference: Published, kafka_bootstrap: str, tmp_path: Path
) -> None:
    bootstrap = kafka_bootstrap
    tmp = unique(f"crash-{point.replace('_', '-')}")
    topic = f"{tmp}.in"
    create_topic(bootstrap, topic, PARTITIONS)
    config_path = tmp_path / "bayestream.toml"
    config = _config(config_path, tmp)
    group = config.kafka.group_id
    half = len(LINES) // 2
    runs: list[Runtime] = []
    try:
        if point == "restore":  # state to restore: a clean run over the first half
            produce(bootstrap, topic, LINES[:half], KEYS[:half])
            _run_to_end(bootstrap, config_path, tmp_path / "first.log", config, half)
            produce(bootstrap, topic, LINES[half:], KEYS[half:])
        else:
            produce(bootstrap, topic, LINES, KEYS)

        crashing = Runtime(
            bootstrap, config_path, tmp_path / "crash.log", f"{point}:{CRASH_AFTER[point]}"
        )
        runs.append(crashing)
        assert crashing.wait(90) == -signal.SIGKILL, crashing.tail()
        assert f"killing the process at {point}" in crashing.text()
        done = sum(max(o, 0) for o in committed_offsets(bootstrap, group, topic).values())
        if point == "restore":
            assert done == half
        else:
            assert 0 < done < len(LINES), f"not killed mid-stream: {done} committed"

        restarted = Runtime(bootstrap, config_path, tmp_path / "restart.log")
        runs.append(restarted)
        wait_until(
            lambda: committed_count(bootstrap, group, topic) == len(LINES),
            120,
            "the restarted process to commit the input",
            [restarted],
        )
        assert restarted.stop() == 0, restarted.tail()
        assert sum(n for _, n in restarted.restored()) > 0  # state came from the changelog
    finally:
        for runtime in runs:
            runtime.kill()

    got = _published(bootstrap, config)
    with _logs_on_failure(runs):
        assert max(got.anomalies.values()) == 1, "duplicate anomalies"
        assert got.anomalies == reference.anomalies
        assert max(got.drift.values()) == 1, "duplicate drift records"
        assert got.drift == reference.drift
        assert {d["topic"] for d in got.dead} == {topic}
        assert got.dead_multiset() == reference.dead_multiset()
        assert got.estimates() == reference.estimates()
        assert got.changelog == reference.changelog


@contextmanager
def _logs_on_failure(runs: list[Runtime]) -> Iterator[None]:
    """A failed comparison carries the processes' logs (restores, rollbacks, the crash)."""
    try:
        yield
    except AssertionError as exc:
        for runtime in runs:
            exc.add_note(f"--- {runtime.log.name}\n{runtime.tail(80)}")
        raise


# --- bad input --------------------------------------------------------------------------------

# (message, the dead-letter reason it must get); None is a message with a null value
BAD_MIX: list[tuple[bytes | None, str]] = [
    (b"not json", "invalid_json"),
    (b"", "invalid_json"),
    (None, "invalid_json"),
    (b'{"key":"h","metric":"lat"', "invalid_json"),
    (b"[1,2]", "invalid_json"),
    (b"null", "invalid_json"),
    (b"42", "invalid_json"),
    (b'{"key":"h","metric":"lat","ts":1,"value":1} trailing', "invalid_json"),
    (b'{"key":"h","metric":"lat","ts":1,"value":NaN}', "invalid_json"),
    (b"\xff\xfe\x00\x80 not utf-8", "invalid_json"),
    (b'{"key":"h\xff\xfe","metric":"lat","ts":1,"value":1}', "invalid_json"),
    (b'{"key":123,"metric":"lat","ts":1,"value":1}', "invalid_key"),
    (b'{"metric":"lat","ts":1,"value":1}', "invalid_key"),
    (b'{"key":"","metric":"lat","ts":1,"value":1}', "invalid_key"),
    (b'{"key":"h","ts":1,"value":1}', "invalid_metric"),
    (b'{"key":"h","metric":["lat"],"ts":1,"value":1}', "invalid_metric"),
    (b'{"key":"h","metric":"cpu","ts":1,"value":1}', "unknown_metric"),
    (b'{"key":"h","metric":"lat","ts":"yesterday","value":1}', "invalid_ts"),
    (b'{"key":"h","metric":"lat","value":1}', "invalid_ts"),
    (b'{"key":"h","metric":"lat","ts":1e300,"value":1}', "invalid_ts"),
    (b'{"key":"h","metric":"lat","ts":' + b"9" * 400 + b',"value":1}', "invalid_ts"),
    (b'{"key":"h","metric":"lat","ts":1,"value":"x"}', "invalid_value"),
    (b'{"key":"h","metric":"lat","ts":1,"value":true}', "invalid_value"),
    (b'{"key":"h","metric":"lat","ts":1,"value":null}', "invalid_value"),
    (b'{"key":"h","metric":"lat","ts":1}', "invalid_value"),
    (b'{"key":"h","metric":"lat","ts":1,"value":1e999}', "invalid_value"),
    (b'{"key":"h","metric":"lat","ts":1,"value":-1e999}', "invalid_value"),
    (b'{"key":"h","metric":"lat","ts":1,"value":' + b"9" * 400 + b"}", "invalid_value"),
    (b'{"key":"h","metric":"lat","ts":1,"value":"' + b"x" * 200_000 + b'"}', "invalid_value"),
    (b'{"key":"h","metric":"err","ts":1,"value":5,"trials":2}', "successes_exceed_trials"),
    (b'{"key":"h","metric":"err","ts":1,"value":-1,"trials":2}', "negative_count"),
    (b'{"key":"h","metric":"err","ts":1,"value":1.5,"trials":2}', "non_integer_count"),
    (b'{"key":"h","metric":"err","ts":1,"value":1,"trials":0}', "invalid_trials"),
    (b'{"key":"h","metric":"err","ts":1,"value":1}', "invalid_trials"),
    (b'{"key":"h","metric":"err","ts":1,"value":1,"trials":1e12}', "invalid_trials"),
    (b'{"key":"h","metric":"err","ts":1,"value":1e400,"trials":10}', "invalid_value"),
    (b'{"key":"h","metric":"req","ts":1,"value":-3,"exposure":1}', "negative_count"),
    (b'{"key":"h","metric":"req","ts":1,"value":2.5}', "non_integer_count"),
    (b'{"key":"h","metric":"req","ts":1,"value":2,"exposure":0}', "invalid_exposure"),
    (b'{"key":"h","metric":"req","ts":1,"value":2,"exposure":"x"}', "invalid_exposure"),
    (b'{"key":"h","metric":"req","ts":1,"value":1e400}', "invalid_value"),
]


def test_bad_messages_are_dead_lettered_once_and_touch_no_posterior(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    bootstrap = kafka_bootstrap
    good = events(1500, seed=5)
    good_lines = [json.dumps(e).encode() for e in good]
    good_keys: list[bytes | None] = [e["key"].encode() for e in good]
    lines: list[bytes | None] = []
    keys: list[bytes | None] = []
    bad_at: dict[int, int] = {}  # index in the mixed input -> index in BAD_MIX
    rounds = 3  # every bad message three times, spread over the stream and the partitions
    step = len(good) // (rounds * len(BAD_MIX))
    for i, (line, key) in enumerate(zip(good_lines, good_keys, strict=True)):
        if i % step == 0 and i // step < rounds * len(BAD_MIX):
            j = (i // step) % len(BAD_MIX)
            bad_at[len(lines)] = j
            lines.append(BAD_MIX[j][0])
            keys.append(None if j % 7 == 0 else f"bad-{i}".encode())
        lines.append(line)
        keys.append(key)
    n_bad = len(bad_at)
    assert n_bad == rounds * len(BAD_MIX)

    mixed, clean = unique("badmix"), unique("badmix-clean")
    create_topic(bootstrap, f"{mixed}.in", 3)
    create_topic(bootstrap, f"{clean}.in", 3)
    positions = produce_tracked(bootstrap, f"{mixed}.in", lines, keys)
    produce(bootstrap, f"{clean}.in", good_lines, good_keys)
    # small batches: many transactions, each with bad messages among good ones
    mixed_config = write_config(tmp_path / "mixed.toml", mixed, batch_size=50)
    clean_config = write_config(tmp_path / "clean.toml", clean, batch_size=50)

    runtime = Runtime(bootstrap, tmp_path / "mixed.toml", tmp_path / "mixed.log")
    try:
        wait_until(
            lambda: committed_count(bootstrap, f"{mixed}.group", f"{mixed}.in") == len(lines),
            120,
            "the mixed input to be committed",
            [runtime],
        )
        metrics = runtime.metrics()
        assert runtime.stop() == 0, runtime.tail()
    finally:
        runtime.kill()
    _run_to_end(bootstrap, tmp_path / "clean.toml", tmp_path / "clean.log", clean_config, len(good))

    got = _published(bootstrap, mixed_config)
    expected = _published(bootstrap, clean_config)

    # every bad message exactly once, with its reason, key and source position
    index_of = {position: i for i, position in enumerate(positions)}
    seen = Counter(index_of[(d["partition"], d["offset"])] for d in got.dead)
    assert set(seen) == set(bad_at) and max(seen.values()) == 1
    for d in got.dead:
        i = index_of[(d["partition"], d["offset"])]
        raw, reason = BAD_MIX[bad_at[i]]
        assert (d["value"], d["key"], d["reason"]) == (raw, keys[i], reason), raw
        assert d["topic"] == f"{mixed}.in"
        assert d["detail"]

    # every message either applied or dead-lettered, nothing else
    applied = metrics['bayestream_events_total{outcome="applied"}']
    assert metrics['bayestream_events_total{outcome="dead_letter"}'] == n_bad
    assert applied + len(got.dead) == len(lines)
    for reason, count in Counter(reason for _, reason in BAD_MIX).items():
        assert metrics[f'bayestream_dead_letters_total{{reason="{reason}"}}'] == rounds * count

    # the bad messages changed nothing: same posteriors, anomalies and state as good ones only
    assert expected.dead == []
    assert got.estimates() == expected.estimates()
    assert got.anomalies == expected.anomalies
    assert got.changelog == expected.changelog


def test_deeply_nested_json_is_a_dead_letter(kafka_bootstrap: str, tmp_path: Path) -> None:
    bootstrap = kafka_bootstrap
    tmp = unique("nested")
    create_topic(bootstrap, f"{tmp}.in", 1)
    good = [json.dumps(e).encode() for e in events(300, seed=2)]
    nested = b'{"nested":' * 5000 + b"1" + b"}" * 5000
    lines = [*good[:150], nested, *good[150:]]
    produce(bootstrap, f"{tmp}.in", lines, [b"k"] * len(lines))
    config = write_config(tmp_path / "nested.toml", tmp)
    runtime = Runtime(bootstrap, tmp_path / "nested.toml", tmp_path / "nested.log")
    try:
        wait_until(
            lambda: committed_count(bootstrap, f"{tmp}.group", f"{tmp}.in") == len(lines),
            60,
            "the input to be committed",
            [runtime],
        )
        assert runtime.stop() == 0, runtime.tail()
    finally:
        runtime.kill()
    dead = _published(bootstrap, config).dead
    assert [d["value"] for d in dead] == [nested]
