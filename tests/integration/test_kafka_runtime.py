"""The Kafka runtime against a real broker: same results as the file runner, exactly once."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bayestream.runtime.checkpoint import CHECKPOINT_KEY, decode_checkpoint
from tests.integration.kafka_helpers import (
    BAD,
    committed_count,
    committed_offsets,
    config_for,
    create_topic,
    events,
    file_run,
    latest_by_key,
    produce,
    read_all,
    running,
    unique,
    wait_for,
)


def test_kafka_and_file_runner_agree(kafka_bootstrap: str, tmp_path: Path) -> None:
    tmp = unique("agree")
    create_topic(kafka_bootstrap, f"{tmp}.in", 4)
    evs = events(3000)
    lines = [json.dumps(e).encode() for e in evs] + BAD
    keys = [e["key"].encode() for e in evs] + [b"h"] * len(BAD)
    produce(kafka_bootstrap, f"{tmp}.in", lines, keys)
    config = config_for(tmp)  # source_headers = "all", the default
    assert config.kafka.source_headers == "all"
    with running(config, kafka_bootstrap):
        wait_for(
            lambda: committed_count(kafka_bootstrap, f"{tmp}.group", f"{tmp}.in") == len(lines)
        )

    posterior_messages = read_all(kafka_bootstrap, f"{tmp}.posteriors")
    posteriors = latest_by_key(posterior_messages)
    anomalies = [json.loads(m.value()) for m in read_all(kafka_bootstrap, f"{tmp}.anomalies")]
    dead = read_all(kafka_bootstrap, f"{tmp}.dead")
    changelog = read_all(kafka_bootstrap, f"{tmp}.group.changelog")

    files = file_run(tmp_path, config, lines)
    expected = {(p["key"], p["metric"]): p for p in files["posteriors"]}
    got = {(p["key"], p["metric"]): p for p in posteriors.values()}
    assert got.keys() == expected.keys()
    for name, record in expected.items():
        assert got[name]["params"] == record["params"], name
        assert got[name]["n_eff"] == record["n_eff"]
    key = lambda a: (a["key"], a["metric"], a["ts"])  # noqa: E731
    assert sorted(anomalies, key=key) == sorted(files["anomalies"], key=key)
    assert len(anomalies) > 0
    drift = [json.loads(m.value()) for m in read_all(kafka_bootstrap, f"{tmp}.drift")]
    where = lambda d: (d["key"], d["metric"], d["window_end"])  # noqa: E731
    assert sorted(drift, key=where) == sorted(files["drift"], key=where)
    assert len(drift) > 0
    reasons = sorted(dict(m.headers())["bayestream.reason"].decode() for m in dead)
    # the file runner skips the blank line; on Kafka an empty message is a dead letter
    assert reasons == sorted([d["reason"] for d in files["dead_letter"]] + ["invalid_json"])
    assert {m.value() for m in dead} == set(BAD)
    for m in dead:
        headers = dict(m.headers())
        assert headers["bayestream.source.topic"] == f"{tmp}.in".encode()
        assert int(headers["bayestream.source.offset"]) >= 0
    rows = {m.key() for m in changelog if m.value() is not None} - {CHECKPOINT_KEY}
    assert len(rows) == len(expected)
    # each partition's checkpoint names the offsets the group committed with it
    checkpoints = {
        m.partition(): decode_checkpoint(m.value())
        for m in changelog
        if m.key() == CHECKPOINT_KEY and m.value() is not None
    }
    committed = committed_offsets(kafka_bootstrap, f"{tmp}.group", f"{tmp}.in")
    assert checkpoints == {p: {f"{tmp}.in": offset} for p, offset in committed.items()}
    _check_sources(kafka_bootstrap, tmp, posterior_messages, set(expected))


@pytest.mark.parametrize("which", ["events", "none"])
def test_source_headers_events_and_none(kafka_bootstrap: str, which: str) -> None:
    """ "events" names the input of anomaly records only, "none" of no output record; dead
    letters always keep theirs."""
    tmp = unique(f"headers-{which}")
    create_topic(kafka_bootstrap, f"{tmp}.in", 2)
    evs = events(600)
    lines = [json.dumps(e).encode() for e in evs] + BAD
    produce(kafka_bootstrap, f"{tmp}.in", lines, [e["key"].encode() for e in evs] + [b"h"] * 5)
    with running(config_for(tmp, source_headers=which), kafka_bootstrap):
        wait_for(
            lambda: committed_count(kafka_bootstrap, f"{tmp}.group", f"{tmp}.in") == len(lines)
        )
    posteriors = read_all(kafka_bootstrap, f"{tmp}.posteriors")
    anomalies = read_all(kafka_bootstrap, f"{tmp}.anomalies")
    assert posteriors and anomalies
    assert all(m.headers() is None for m in posteriors)
    if which == "events":
        assert all("bayestream.source.offset" in dict(m.headers()) for m in anomalies)
    else:
        assert all(m.headers() is None for m in anomalies)
    dead = read_all(kafka_bootstrap, f"{tmp}.dead")
    assert len(dead) == len(BAD)
    assert all("bayestream.source.offset" in dict(m.headers()) for m in dead)


def _source(m: Any) -> tuple[int, int]:
    headers = dict(m.headers())
    return int(headers["bayestream.source.partition"]), int(headers["bayestream.source.offset"])


def _check_sources(
    bootstrap: str, tmp: str, posteriors: list[Any], streams: set[tuple[str, str]]
) -> None:
    """Anomaly and drift records name the input message behind them; a posterior record
    names the newest input message of its partition that it holds."""
    inputs = {(m.partition(), m.offset()): m for m in read_all(bootstrap, f"{tmp}.in")}
    newest: dict[tuple[str, str], tuple[int, int]] = {}  # each stream's last event
    for (partition, offset), m in sorted(inputs.items()):
        if m.value() not in BAD:
            e = json.loads(m.value())
            newest[(e["key"], e["metric"])] = (partition, offset)
    assert set(newest) == streams
    for topic, field in (("anomalies", "ts"), ("drift", "window_end")):
        records = read_all(bootstrap, f"{tmp}.{topic}")
        assert records
        for m in records:
            assert dict(m.headers())["bayestream.source.topic"] == f"{tmp}.in".encode()
            record, event = json.loads(m.value()), json.loads(inputs[_source(m)].value())
            assert (record["key"], record["metric"]) == (event["key"], event["metric"])
            if topic == "anomalies":
                assert record[field] == event[field]
    latest: dict[tuple[str, str], tuple[int, int]] = {}
    for m in posteriors:
        record = json.loads(m.value())
        name = (record["key"], record["metric"])
        partition, offset = _source(m)
        assert (partition, offset) in inputs
        assert partition == newest[name][0]  # the stream's own partition
        latest[name] = max(latest.get(name, (partition, -1)), (partition, offset))
    # every stream's last record holds its last event
    assert latest.keys() == streams
    assert all(latest[name][1] >= newest[name][1] for name in streams)


def test_restart_restores_state_from_the_changelog(kafka_bootstrap: str, tmp_path: Path) -> None:
    tmp = unique("restart")
    create_topic(kafka_bootstrap, f"{tmp}.in", 3)
    evs = events(2000, seed=3)
    lines = [json.dumps(e).encode() for e in evs]
    keys = [e["key"].encode() for e in evs]
    config = config_for(tmp, batch_size=200)
    half = len(lines) // 2
    produce(kafka_bootstrap, f"{tmp}.in", lines[:half], keys[:half])
    with running(config, kafka_bootstrap):
        wait_for(lambda: committed_count(kafka_bootstrap, f"{tmp}.group", f"{tmp}.in") == half)
    produce(kafka_bootstrap, f"{tmp}.in", lines[half:], keys[half:])
    with running(config, kafka_bootstrap):
        wait_for(
            lambda: committed_count(kafka_bootstrap, f"{tmp}.group", f"{tmp}.in") == len(lines)
        )
    posteriors = latest_by_key(read_all(kafka_bootstrap, f"{tmp}.posteriors"))
    expected = {(p["key"], p["metric"]): p for p in file_run(tmp_path, config, lines)["posteriors"]}
    got = {(p["key"], p["metric"]): p for p in posteriors.values()}
    assert got.keys() == expected.keys()
    for name, record in expected.items():
        assert got[name]["params"] == record["params"], name
