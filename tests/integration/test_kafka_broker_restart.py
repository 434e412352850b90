"""A broker restart mid-stream: the runtime rides it out; nothing is lost or duplicated.

Uses its own embedded broker (restarted on the same ports and data), not the shared fixture.
After the restart librdkafka's ``send_offsets_to_transaction`` may never return (the client
re-bootstraps and decommissions the cached group coordinator: confluentinc/librdkafka#5456,
#5511); the runtime gives that producer up after its timeout and fences it with a new one.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from bayestream.runtime.broker import EmbeddedBroker
from tests.integration.kafka_helpers import (
    BAD,
    Published,
    Runtime,
    committed_count,
    create_topic,
    events,
    file_run,
    produce,
    unique,
    wait_until,
    write_config,
)


def test_broker_restart_mid_stream(own_broker: EmbeddedBroker, tmp_path: Path) -> None:
    bootstrap = own_broker.bootstrap_servers
    tmp = unique("brestart")
    create_topic(bootstrap, f"{tmp}.in", 3)
    evs = events(3000, seed=11)
    lines = [json.dumps(e).encode() for e in evs] + BAD
    keys = [e["key"].encode() for e in evs] + [b"h"] * len(BAD)
    config = write_config(tmp_path / "config.toml", tmp, batch_size=100)
    half = len(lines) // 2
    produce(bootstrap, f"{tmp}.in", lines[:half], keys[:half])
    runtime = Runtime(bootstrap, tmp_path / "config.toml", tmp_path / "run.log")
    try:
        count = lambda: committed_count(bootstrap, f"{tmp}.group", f"{tmp}.in")  # noqa: E731
        wait_until(lambda: count() >= 300, 120, "some batches committed", [runtime])
        own_broker.restart(down_seconds=3.0)
        produce(bootstrap, f"{tmp}.in", lines[half:], keys[half:])
        wait_until(lambda: count() == len(lines), 150, "everything committed", [runtime])
        assert runtime.stop() == 0, runtime.tail()
    finally:
        runtime.kill()

    published = Published(bootstrap, config)
    expected = file_run(tmp_path, config, lines)
    want = {(p["key"], p["metric"]): p for p in expected["posteriors"]}
    got = {(p["key"], p["metric"]): p for p in published.posteriors.values()}
    assert got.keys() == want.keys()
    for name, record in want.items():
        assert got[name]["params"] == record["params"], name
        assert got[name]["n_eff"] == record["n_eff"], name
    anomalies = Counter(
        json.dumps(json.loads(v), sort_keys=True) for v in published.anomalies.elements()
    )
    want_anomalies = Counter(json.dumps(a, sort_keys=True) for a in expected["anomalies"])
    # (this comparison failed once in CI, an anomaly of the first batch missing; the
    # runtime's log says what the rollbacks did, for the next time)
    assert anomalies == want_anomalies, (
        f"missing: {sorted(want_anomalies - anomalies)}\n"
        f"extra: {sorted(anomalies - want_anomalies)}\n"
        f"runtime log:\n{_warnings(runtime.text())}"
    )
    assert max(anomalies.values(), default=1) == 1  # no duplicates
    reasons = sorted(d["reason"] for d in published.dead)
    assert reasons == sorted([d["reason"] for d in expected["dead_letter"]] + ["invalid_json"])


def _warnings(log: str) -> str:
    """The runtime's INFO-and-above lines about the group, transactions and restores."""
    keep = ("bayestream.kafka", "TXN", "REBALANCE", "ASSIGN", "GETPID")
    return "\n".join(line for line in log.splitlines() if any(k in line for k in keep))
