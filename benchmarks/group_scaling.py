"""Scale-out on one host: one ``bayestream run --kafka`` process against two in the same
consumer group, whole processes with the default configuration, on one pre-filled input.

Each run gets its own copy of the input (a 6-partition topic, the Normal-Gamma workload with
Zipf-popular streams) and its own group, starts its processes together and follows the group's
committed offsets every 0.2 s. The steady rate is taken from 1 s after every process owns
partitions (or 10 % of the input committed, whichever is later) to 95 %, so process start-up,
group joins, the restore and rollback that a joining member causes and the last stragglers
stay out of it; the whole run's time and when the group was complete are reported beside it,
as are the CPU seconds of the processes and of the broker (where the cores went).

Run alone: ``python benchmarks/group_scaling.py [--events N] [--streams K] [--threads T]``
(prints JSON); ``bench_kafka.py`` runs it as its ``group`` section.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

sys.path.insert(0, str(Path(__file__).resolve().parent))

from workloads import NORMAL_GAMMA_RULES, normal_gamma_lines

PARTITIONS = 6
SETTLE = 1.0  # seconds after the group is complete before the steady window may start


def _cpu_seconds(pid: int | None) -> float | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (OSError, TypeError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return "{ " + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + " }"


def write_config(path: Path, tag: str, threads: int | None) -> None:
    """A configuration as a user writes it: the workload's rules, a [kafka] table, defaults
    for everything else (``threads``: an explicit ``[engine] threads``)."""
    lines = []
    if threads is not None:
        lines += ["[engine]", f"threads = {threads}", ""]
    lines += [
        "[kafka]",
        f'input_topics = ["{tag}.in"]',
        f'group_id = "{tag}.group"',
        f'posteriors_topic = "{tag}.posteriors"',
        f'anomalies_topic = "{tag}.anomalies"',
        f'dead_letter_topic = "{tag}.dead"',
        "metrics_port = 0",
    ]
    for rule in NORMAL_GAMMA_RULES:
        lines += ["", "[[rule]]"] + [f"{k} = {_toml(v)}" for k, v in rule.items()]
    path.write_text("\n".join(lines) + "\n")


def _fill(bootstrap: str, topic: str, lines: list[bytes]) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics([NewTopic(topic, PARTITIONS, 1)]).values():
        future.result(30)
    producer = Producer(
        {"bootstrap.servers": bootstrap, "linger.ms": 20, "queue.buffering.max.messages": 2_000_000}
    )
    for line in lines:
        key = line[8 : line.index(b'"', 8)]  # {"key":"..." : the stream's key
        try:
            producer.produce(topic, line, key)
        except BufferError:
            producer.flush(30)
            producer.produce(topic, line, key)
    producer.flush(60)


def _committed(consumer: Consumer, topic: str) -> int:
    tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
    try:
        return sum(max(tp.offset, 0) for tp in consumer.committed(tps, timeout=10))
    except Exception:  # a coordinator still loading: try again at the next poll
        return -1


def _members_with_partitions(admin: AdminClient, group: str) -> int:
    try:
        description = admin.describe_consumer_groups([group])[group].result(10)
    except Exception:  # not there yet
        return 0
    return sum(1 for m in description.members if m.assignment.topic_partitions)


def group_throughput(
    bootstrap: str,
    lines: list[bytes],
    processes: int,
    threads: int | None = None,
    broker_pid: int | None = None,
    timeout: float = 600.0,
    measure: bool = True,
) -> dict[str, Any]:
    """``processes`` ``bayestream run --kafka`` processes of one group over ``lines``
    (``measure`` False: a warm-up, nothing reported)."""
    tag = f"group-{uuid.uuid4().hex[:6]}"
    _fill(bootstrap, f"{tag}.in", lines)
    workdir = Path(tempfile.mkdtemp(prefix="bayestream-group-"))
    config = workdir / "config.toml"
    write_config(config, tag, threads)
    argv = [sys.executable, "-m", "bayestream.cli.main", "run", "--kafka", bootstrap]
    watcher = Consumer({"bootstrap.servers": bootstrap, "group.id": f"{tag}.group"})
    broker_before = _cpu_seconds(broker_pid)
    started = time.perf_counter()
    procs = [
        subprocess.Popen(
            [*argv, "--config", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=(workdir / f"process-{i}.log").open("wb"),
        )
        for i in range(processes)
    ]
    trace: list[tuple[float, int]] = []
    admin = AdminClient({"bootstrap.servers": bootstrap})
    joined: float | None = None  # when every process had partitions
    try:
        while True:
            done = _committed(watcher, f"{tag}.in")
            now = time.perf_counter() - started
            trace.append((now, done))
            if joined is None and _members_with_partitions(admin, f"{tag}.group") == processes:
                joined = now
            if done >= len(lines):
                break
            if time.perf_counter() - started > timeout or any(p.poll() is not None for p in procs):
                raise RuntimeError(f"group run did not finish; logs in {workdir}")
            time.sleep(0.2)
        cpu = [_cpu_seconds(p.pid) for p in procs]
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(60)
            except subprocess.TimeoutExpired:
                p.kill()
        watcher.close()
    broker_after = _cpu_seconds(broker_pid)
    if joined is None:
        raise RuntimeError(f"the group never had {processes} members with partitions")
    if not measure:  # a warm-up run
        return {}
    # from SETTLE seconds after the group had every member (the rebalance that the last
    # joiner caused, its restore and the rollback of the batch it interrupted are over) or 10 %
    # of the input, whichever is later, to 95 %
    start = next((t, n) for t, n in trace if t >= joined + SETTLE and n >= 0.1 * len(lines))
    end = next((t, n) for t, n in trace if n >= 0.95 * len(lines))
    # a window under 1 s (commits land in steps of a batch) says nothing: no figure
    steady = (end[1] - start[1]) / (end[0] - start[0]) if end[0] - start[0] >= 1.0 else None
    return {
        "processes": processes,
        "engine_threads": threads if threads is not None else "default",
        "events": len(lines),
        "steady_events_per_s": None if steady is None else round(steady),
        "whole_run_seconds": round(trace[-1][0], 2),
        "group_complete_at_seconds": round(joined, 2),
        "steady_window": [round(start[0], 2), round(end[0], 2)],
        "process_cpu_seconds": [None if c is None else round(c, 1) for c in cpu],
        "broker_cpu_seconds": None
        if broker_before is None or broker_after is None
        else round(broker_after - broker_before, 1),
    }


def compare(
    bootstrap: str, lines: list[bytes], threads: int | None = None, broker_pid: int | None = None
) -> dict[str, Any]:
    """One process, then two in one group, each on a fresh copy of the input."""
    one = group_throughput(bootstrap, lines, 1, threads, broker_pid)
    two = group_throughput(bootstrap, lines, 2, threads, broker_pid)
    return {
        "one_process": one,
        "two_processes": two,
        "ratio_two_vs_one": None
        if not (one["steady_events_per_s"] and two["steady_events_per_s"])
        else round(two["steady_events_per_s"] / one["steady_events_per_s"], 2),
        "whole_run_ratio_two_vs_one": round(one["whole_run_seconds"] / two["whole_run_seconds"], 2),
        "cores": os.cpu_count(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=3_000_000)
    parser.add_argument("--streams", type=int, default=20_000)
    parser.add_argument("--threads", type=int, default=None, help="[engine] threads")
    args = parser.parse_args()
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    broker = None
    if not bootstrap:
        from bayestream.runtime.broker import EmbeddedBroker

        broker = EmbeddedBroker().start()
        bootstrap = broker.bootstrap_servers
    try:
        lines = normal_gamma_lines(args.events, args.streams, 1.1, seed=1)
        pid = broker.pid if broker is not None else None
        group_throughput(bootstrap, lines[: len(lines) // 5], 1, args.threads, pid, measure=False)
        report = {"args": vars(args), **compare(bootstrap, lines, args.threads, pid)}
        print(json.dumps(report, indent=2))
    finally:
        if broker is not None:
            broker.stop()


if __name__ == "__main__":
    main()
