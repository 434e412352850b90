"""Kafka runtime benchmark on a local broker: throughput with exactly-once, event-to-publish
latency at a fixed offered rate, and restore time, against a hand-written exactly-once loop.

Prints one JSON document. Uses ``KAFKA_BOOTSTRAP_SERVERS`` when set, else starts the project's
embedded broker. Run: ``python benchmarks/bench_kafka.py [--events N] [--quick] [--no-quix]``.

- consume-only: the same events consumed with the runtime's consumer settings and nothing
  else, the ceiling of any loop on this machine and broker;
- throughput: a pre-filled input topic (Normal-Gamma workload, Zipf-popular streams, keyed by
  stream key, 6 partitions) consumed by one process with exactly-once, default emit policy
  and default ``source_headers`` (output records name their input in headers); and again
  publishing one anomaly record per event without headers (as the baselines publish one bare
  record per event);
- the hand-written baseline: transactional consume-transform-produce with confluent-kafka,
  orjson, a dict of per-stream state and scipy.special.stdtr, one output record per event,
  a transaction per batch of the same size as the runtime's;
- both run once before they are measured, the runtime on the whole input, the loop on a
  slice (the broker's JVM compiles its hot paths under its first loads, which slowed whichever
  ran first), and each reports the
  embedded broker's CPU seconds while it ran (it shares this machine's cores);
- the Quix Streams baseline (benchmarks/quix_baseline.py, in a subprocess): the same
  computation as a Quix Streams application, exactly-once, per-key RocksDB state, the same
  tuned fetch settings, its own copy of the ``--baseline-events`` input; plus a correctness
  check on ``--verify-events``: its final per-stream (mu, kappa, alpha, beta) against the
  hand-written loop's;
- latency: events produced at a fixed rate (by a process of their own, librdkafka's default
  linger.ms) with their wall-clock time as event time, for batch sizes 5,000 and 50,000; the
  runtime's own event-to-publish measurement (sampled per batch, the commit's return time),
  in the steady state after a warm-up of 5 s of offering and over the whole run;
- restore: the time to rebuild the engines of every partition from a changelog holding
  ``--restore-streams`` streams;
- group: one ``bayestream run --kafka`` process against two in one consumer group on this host
  (benchmarks/group_scaling.py), on ``--group-events`` events with 20,000 Zipf-popular streams:
  the steady rate once the group is complete, and the whole run.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from scipy import special

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bayestream import Engine, RawBatch, parse_config
from bayestream.engine.warmup import warm_up
from bayestream.runtime.clients import REQUIRED_CONSUMER, TUNED_CONSUMER
from bayestream.runtime.gcpolicy import batch_gc
from bayestream.runtime.kafka import KafkaRunner
from bayestream.state import StateRow, encode_row
from group_scaling import compare as group_compare
from workloads import NORMAL_GAMMA_RULES, normal_gamma_lines


def _topic(bootstrap: str, name: str, partitions: int, **config: str) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics([NewTopic(name, partitions, 1, config=config)]).values():
        future.result(30)


def _fill(bootstrap: str, topic: str, lines: list[bytes]) -> None:
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "linger.ms": 20,
            "batch.num.messages": 10_000,
            "queue.buffering.max.messages": 2_000_000,
        }
    )
    for line in lines:
        key = line[8 : line.index(b'"', 8)]
        while True:
            try:
                producer.produce(topic, line, key)
                break
            except BufferError:
                producer.poll(0.05)
    producer.flush(120)


def _config(
    tag: str, batch_size: int, record_per_event: bool = False, source_headers: str = "all"
) -> Any:
    rules = NORMAL_GAMMA_RULES
    if record_per_event:  # every event's score published, as the baselines do
        rules = [{**rule, "anomaly_probability_threshold": 1e-300} for rule in rules]
    return parse_config(
        {
            "kafka": {
                "input_topics": [f"{tag}.in"],
                "group_id": f"{tag}.group",
                "posteriors_topic": f"{tag}.posteriors",
                "anomalies_topic": f"{tag}.anomalies",
                "dead_letter_topic": f"{tag}.dead",
                "metrics_port": None,
                "batch_size": batch_size,
                "source_headers": source_headers,
            },
            "rule": rules,
        }
    )


class _Latency:
    """Hooks that keep the runtime's event-to-publish samples and count restores."""

    def __init__(self) -> None:
        self.samples: list[float] = []
        self.observed_at: list[float] = []  # wall-clock time of each sample's commit report
        self.restored = 0
        self.restore_seconds = 0.0

    def heartbeat(self) -> None: ...
    def set_ready(self, ready: bool) -> None: ...
    def transaction(self, committed: bool) -> None: ...
    def set_lag(self, topic: str, partition: int, lag: float) -> None: ...
    def set_freshness(self, topic: str, partition: int, seconds: float) -> None: ...
    def drop_partition(self, topic: str, partition: int) -> None: ...
    def set_labels(self, counts: Any) -> None: ...

    def observe_restore(self, seconds: float, streams: int) -> None:
        self.restore_seconds += seconds
        self.restored += streams

    def observe_publish_latency(self, seconds: Any) -> None:
        values = list(seconds)
        self.samples.extend(values)
        self.observed_at.extend([time.time()] * len(values))


def process_cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU seconds of a process so far (Linux), or None."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (OSError, TypeError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _cpu_spent(before: float | None, pid: int | None) -> float | None:
    after = process_cpu_seconds(pid)
    return None if before is None or after is None else round(after - before, 2)


def engine_throughput(
    bootstrap: str,
    lines: list[bytes],
    batch_size: int,
    record_per_event: bool = False,
    broker_pid: int | None = None,
    source_headers: str = "all",
) -> dict[str, Any]:
    tag = f"bench-{uuid.uuid4().hex[:6]}"
    _topic(bootstrap, f"{tag}.in", 6)
    _fill(bootstrap, f"{tag}.in", lines)
    runner = KafkaRunner(_config(tag, batch_size, record_per_event, source_headers), bootstrap)
    done = {"n": 0}
    first: list[float] = []
    original = runner.step

    broker_cpu: list[float | None] = []

    def counting_step() -> int:
        t = time.perf_counter()
        n = original()
        if n and not first:
            first.append(t)
            broker_cpu.append(process_cpu_seconds(broker_pid))
        done["n"] += n
        if done["n"] >= len(lines):
            runner.stop()
        return n

    runner.step = counting_step  # type: ignore[method-assign]
    started = time.perf_counter()
    runner.run()
    seconds = time.perf_counter() - first[0]
    return {
        "events": len(lines),
        "seconds": round(seconds, 2),
        "events_per_s": round(len(lines) / seconds),
        "batch_size": batch_size,
        "startup_seconds": round(first[0] - started, 2),
        "output": "an anomaly record per event (anomaly_probability_threshold = 1e-300) plus "
        "the posterior records"
        if record_per_event
        else "default emit policy: a posterior record per touched stream per batch",
        "anomaly_records_per_event": _records_per_event(lines, batch_size, record_per_event),
        "broker_cpu_seconds": _cpu_spent(broker_cpu[0], broker_pid),
        "source_headers": source_headers,
        "note": "from the first consume that returned data (after the group join and the "
        "restore) to the last commit; startup_seconds is the time before it",
    }


def consume_only(bootstrap: str, lines: list[bytes], batch_size: int) -> dict[str, Any]:
    """The ceiling of any consumer loop here: consume the same events with the runtime's
    consumer settings (read_committed, tuned fetch) and do nothing else, with automatic GC
    off as in the runtime (with it on, the collector rescans each batch's 50k messages:
    measured 0.33 - 0.42 M ev/s instead of 0.55 - 0.87 M)."""
    tag = f"cons-{uuid.uuid4().hex[:6]}"
    _topic(bootstrap, f"{tag}.in", 6)
    _fill(bootstrap, f"{tag}.in", lines)
    consumer = Consumer(
        {**TUNED_CONSUMER, **REQUIRED_CONSUMER, "bootstrap.servers": bootstrap, "group.id": tag}
    )
    consumer.subscribe([f"{tag}.in"])
    got = 0
    started = 0.0
    with batch_gc() as collector:
        while got < len(lines):
            polled = time.perf_counter()
            messages = consumer.consume(batch_size, 0.1)
            if messages and not started:
                started = polled
            got += len(messages)
            collector.after_batch()
        seconds = time.perf_counter() - started
    consumer.close()
    return {
        "events": len(lines),
        "seconds": round(seconds, 2),
        "events_per_s": round(len(lines) / seconds),
        "note": "consume() alone, from the first batch with data, automatic GC off as in the "
        "runtime: no decoding, no producing",
    }


def _records_per_event(lines: list[bytes], batch_size: int, record_per_event: bool) -> float:
    """Anomaly records per event of this configuration, counted by the engine in process."""
    engine = Engine(_config("count", batch_size, record_per_event))
    records = 0
    for j in range(0, len(lines), batch_size):
        records += len(engine.process(RawBatch.from_messages(lines[j : j + batch_size])).anomalies)
    return round(records / len(lines), 4)


def handwritten_baseline(
    bootstrap: str,
    lines: list[bytes],
    batch_size: int,
    final_state: dict[tuple[str, str], list[float]] | None = None,
    broker_pid: int | None = None,
) -> dict[str, Any]:
    """consume -> orjson -> dict state -> stdtr -> produce one record per event, in a
    transaction per batch with the offsets (exactly-once). ``final_state`` receives the final
    per-stream state [mu, kappa, alpha, beta, last ts, n_eff]."""
    tag = f"base-{uuid.uuid4().hex[:6]}"
    _topic(bootstrap, f"{tag}.in", 6)
    _fill(bootstrap, f"{tag}.in", lines)
    rule = NORMAL_GAMMA_RULES[0]
    mu0, k0, a0, b0 = (rule["prior"][k] for k in ("mu", "kappa", "alpha", "beta"))
    h = rule["half_life_seconds"]
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"{tag}.group",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
            "auto.offset.reset": "earliest",
            "fetch.wait.max.ms": 10,
            "queued.min.messages": 1_000_000,
            "max.partition.fetch.bytes": 8 << 20,
            "fetch.max.bytes": 64 << 20,
        }
    )
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "transactional.id": f"{tag}.tx",
            "linger.ms": 5,
            "queue.buffering.max.messages": 2_000_000,
            # the runtime's retry backoff too: librdkafka's 100 ms default costs ~100 ms per
            # transaction (see bayestream.runtime.clients.TUNED_PRODUCER)
            "retry.backoff.ms": 5,
        }
    )
    producer.init_transactions(30)
    consumer.subscribe([f"{tag}.in"])
    state: dict[tuple[str, str], list[float]] = {}
    total = 0
    started = 0.0
    broker_started: float | None = None
    while total < len(lines):
        polled = time.perf_counter()
        msgs = [m for m in consumer.consume(batch_size, 0.5) if m.error() is None]
        if not msgs:
            continue
        if not started:
            started = polled  # from the first consume that returned data, as for the engine
            broker_started = process_cpu_seconds(broker_pid)
        producer.begin_transaction()
        for m in msgs:
            ev = orjson.loads(m.value())
            key, metric, ts, x = ev["key"], ev["metric"], float(ev["ts"]), float(ev["value"])
            s = state.get((key, metric))
            if s is None:
                s = state[(key, metric)] = [mu0, k0, a0, b0, ts, 0.0]
            mu, kappa, alpha, beta, last, n_eff = s
            d = 2.0 ** (-(ts - last if ts > last else 0.0) / h)
            if d != 1.0:
                w1, w0 = d * kappa, (1.0 - d) * k0
                kn = w1 + w0
                beta = d * beta + (1 - d) * b0 + 0.5 * (w1 * w0 / kn) * (mu - mu0) ** 2
                mu, kappa, alpha, n_eff = (
                    (w1 * mu + w0 * mu0) / kn,
                    kn,
                    d * alpha + (1 - d) * a0,
                    n_eff * d,
                )
            scale = math.sqrt(beta * (kappa + 1) / (alpha * kappa))
            tail = float(special.stdtr(2 * alpha, -(x - mu) / scale))
            dev = x - mu
            s[:] = [
                mu + dev / (kappa + 1),
                kappa + 1,
                alpha + 0.5,
                beta + kappa * dev * dev / (2 * (kappa + 1)),
                max(last, ts),
                n_eff + 1,
            ]
            producer.produce(
                f"{tag}.out",
                orjson.dumps(
                    {
                        "key": key,
                        "metric": metric,
                        "mean": s[0],
                        "n_eff": s[5],
                        "tail_probability": tail,
                    }
                ),
                m.key(),
            )
        offsets: dict[tuple[str, int], int] = {}
        for m in msgs:
            offsets[(m.topic(), m.partition())] = m.offset() + 1
        producer.send_offsets_to_transaction(
            [TopicPartition(t, p, o) for (t, p), o in offsets.items()],
            consumer.consumer_group_metadata(),
            30,
        )
        producer.commit_transaction(60)
        total += len(msgs)
    seconds = time.perf_counter() - started
    broker_cpu = _cpu_spent(broker_started, broker_pid)
    consumer.close()
    if final_state is not None:
        final_state.update(state)
    return {
        "events": len(lines),
        "seconds": round(seconds, 2),
        "events_per_s": round(len(lines) / seconds),
        "batch_size": batch_size,
        "output_records": len(lines),
        "broker_cpu_seconds": broker_cpu,
    }


def _run_quix(bootstrap: str, lines: list[bytes], tag: str, verify: bool) -> dict[str, Any]:
    """Fill ``{tag}.in`` and run benchmarks/quix_baseline.py on it in a subprocess (Quix's
    ``Application.run`` installs signal handlers: it wants a process of its own)."""
    _topic(bootstrap, f"{tag}.in", 6)
    _topic(bootstrap, f"{tag}.out", 6)
    _fill(bootstrap, f"{tag}.in", lines)
    command = [
        sys.executable,
        str(Path(__file__).resolve().parent / "quix_baseline.py"),
        bootstrap,
        f"{tag}.in",
        f"{tag}.out",
        f"{tag}.group",
        str(len(lines)),
    ]
    if verify:
        command.append("--verify")
    done = subprocess.run(command, capture_output=True, text=True, timeout=1800, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"quix_baseline.py failed ({done.returncode}):\n{done.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def quix_baseline(bootstrap: str, lines: list[bytes]) -> dict[str, Any]:
    """The same computation as a Quix Streams application with per-key state, exactly-once."""
    import quixstreams

    result = _run_quix(bootstrap, lines, f"quix-{uuid.uuid4().hex[:6]}", verify=False)
    result["quixstreams_version"] = quixstreams.__version__
    result["output_records"] = len(lines)
    result["note"] = (
        "from the first message processed to the end of the final (forced) checkpoint commit; "
        "startup_seconds is the time before it (group join, state recovery); "
        "default commit_interval (5 s), RocksDB state with its changelog topic"
    )
    return result


def verify_quix(bootstrap: str, lines: list[bytes]) -> dict[str, Any]:
    """Run both baselines on the same small input; compare the final per-stream (mu, kappa,
    alpha, beta) of the Quix app (its last committed output record per stream) with the
    hand-written loop's state."""
    expected: dict[tuple[str, str], list[float]] = {}
    handwritten_baseline(bootstrap, lines, 10_000, final_state=expected)
    tag = f"quixv-{uuid.uuid4().hex[:6]}"
    _run_quix(bootstrap, lines, tag, verify=True)
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"{tag}.check",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe([f"{tag}.out"])
    got: dict[tuple[str, str], list[float]] = {}
    records = 0
    deadline = time.monotonic() + 120
    while records < len(lines) and time.monotonic() < deadline:
        for m in consumer.consume(10_000, 0.5):
            if m.error() is not None:
                continue
            r = orjson.loads(m.value())
            got[(r["key"], r["metric"])] = [r["mean"], r["kappa"], r["alpha"], r["beta"]]
            records += 1
    consumer.close()
    exact = records == len(lines) and got.keys() == expected.keys()
    worst = 0.0
    for stream, (mu, kappa, alpha, beta, _, _) in expected.items():
        q = got.get(stream)
        if q is None:
            exact = False
            continue
        exact = exact and q == [mu, kappa, alpha, beta]
        for a, b in zip(q, (mu, kappa, alpha, beta), strict=True):
            worst = max(worst, abs(a - b) / max(abs(b), 1e-300))
    return {
        "events": len(lines),
        "streams": len(expected),
        "output_records": records,
        "final_posteriors_equal": exact,
        "max_relative_difference": worst,
    }


def _offer(bootstrap: str, topic: str, rate: int, seconds: float) -> None:
    """Produce events at ``rate`` per second for ``seconds``, their wall-clock time as event
    time. Runs in a process of its own: in the runtime's process it would take the GIL from
    the runtime for several microseconds per event and inflate the latency it measures."""
    # linger.ms 5, librdkafka's default: with 1 ms the broker spent a whole core on this
    # producer's tiny requests (measured at 50k ev/s: broker CPU 1.1 s/s, 0.36 s/s with 5 ms),
    # on the two cores the runtime shares. The linger counts in the latency: ts is stamped
    # before produce().
    producer = Producer(
        {"bootstrap.servers": bootstrap, "linger.ms": 5, "queue.buffering.max.messages": 1 << 20}
    )
    rng = np.random.default_rng(5)
    keys = (rng.zipf(1.2, size=int(rate * seconds) + 1) % 100_000).tolist()
    values = (50 + rng.normal(size=len(keys)) * 5).tolist()
    sent = 0
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        due = min(int((time.perf_counter() - started) * rate), len(keys))
        while sent < due:
            k = keys[sent]
            line = b'{"key":"host-%d","metric":"latency_ms","ts":%.6f,"value":%.3f}' % (
                k,
                time.time(),
                values[sent],
            )
            try:
                producer.produce(topic, line, b"host-%d" % k)
            except BufferError:  # the broker is behind: wait for deliveries, then go on
                producer.poll(0.01)
                continue
            sent += 1
        producer.poll(0)
        time.sleep(0.001)
    producer.flush(30)


def latency(
    bootstrap: str, rate: int, seconds: float, batch_size: int, warmup: float = 5.0
) -> dict[str, Any]:
    """Event-to-publish latency at a fixed offered rate (the offering process apart): in the
    steady state after ``warmup`` seconds of offering, and over the whole run. The first
    seconds are slower: the runtime's state grows from empty (the Zipf keys admit most of
    their 100k streams then) and the offering process starts beside it."""
    import multiprocessing

    tag = f"lat-{uuid.uuid4().hex[:6]}"
    _topic(bootstrap, f"{tag}.in", 6)
    hooks = _Latency()
    runner = KafkaRunner(_config(tag, batch_size), bootstrap, hooks=hooks)
    thread = threading.Thread(target=runner.run, daemon=True)
    thread.start()
    time.sleep(3.0)  # join the group
    offer = multiprocessing.get_context("spawn").Process(
        target=_offer, args=(bootstrap, f"{tag}.in", rate, seconds)
    )
    offered = time.time()
    offer.start()
    offer.join(seconds + 60)
    time.sleep(2.0)
    runner.stop()
    thread.join(60)
    every = np.array(hooks.samples)
    steady = every[np.array(hooks.observed_at) >= offered + warmup]

    def ms(values: np.ndarray, q: float) -> float:
        return round(float(np.percentile(values, q)) * 1e3, 1)

    return {
        "offered_events_per_s": rate,
        "seconds": seconds,
        "batch_size": batch_size,
        "poll_timeout_seconds": runner.settings.poll_timeout_seconds,
        "warmup_seconds": warmup,
        "samples": int(steady.size),
        "p50_ms": ms(steady, 50),
        "p99_ms": ms(steady, 99),
        "max_ms": ms(steady, 100),
        "whole_run": {"samples": int(every.size), "p50_ms": ms(every, 50), "p99_ms": ms(every, 99)},
    }


def restore(bootstrap: str, streams: int, partitions: int = 6) -> dict[str, Any]:
    tag = f"rst-{uuid.uuid4().hex[:6]}"
    _topic(bootstrap, f"{tag}.in", partitions)
    _topic(bootstrap, f"{tag}.group.changelog", partitions, **{"cleanup.policy": "compact"})
    producer = Producer(
        {"bootstrap.servers": bootstrap, "linger.ms": 20, "queue.buffering.max.messages": 2_000_000}
    )
    params = np.array([50.0, 100.0, 51.0, 1300.0])
    for i in range(streams):
        row = encode_row(
            StateRow(f"host-{i}", "latency_ms", 1, 1.7e9 + i, 99.0, 1.0, math.nan, params)
        )
        while True:
            try:
                producer.produce(
                    f"{tag}.group.changelog",
                    row,
                    b'{"key":"host-%d","metric":"latency_ms"}' % i,
                    partition=i % partitions,
                )
                break
            except BufferError:
                producer.poll(0.05)
    producer.flush(120)
    hooks = _Latency()
    runner = KafkaRunner(_config(tag, 1000), bootstrap, hooks=hooks)
    started = time.perf_counter()
    # what an assignment of every partition does (KafkaRunner._on_assign): one restore,
    # under the GC policy of KafkaRunner.run
    with batch_gc():
        engines = runner._restore_many(list(range(partitions)))
    seconds = time.perf_counter() - started
    return {
        "streams": sum(len(e) for e in engines.values()),
        "partitions": partitions,
        "seconds": round(seconds, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--baseline-events", type=int, default=300_000)
    parser.add_argument("--streams", type=int, default=100_000)
    parser.add_argument("--batch-size", type=int, default=50_000)
    parser.add_argument("--rate", type=int, default=50_000)
    parser.add_argument("--latency-seconds", type=float, default=20.0)
    parser.add_argument("--restore-streams", type=int, default=1_000_000)
    parser.add_argument("--verify-events", type=int, default=20_000)
    parser.add_argument("--group-events", type=int, default=3_000_000)
    parser.add_argument("--no-quix", action="store_true", help="skip the Quix Streams baseline")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.events, args.baseline_events, args.streams = 50_000, 20_000, 5_000
        args.latency_seconds, args.restore_streams, args.rate = 5.0, 20_000, 5_000
        args.verify_events, args.group_events = 10_000, 400_000
    broker = None
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if not bootstrap:
        from bayestream.runtime.broker import EmbeddedBroker

        broker = EmbeddedBroker()
        broker.start()
        bootstrap = broker.bootstrap_servers
    try:
        warm_up(parse_config({"rule": NORMAL_GAMMA_RULES}))
        Engine(parse_config({"rule": NORMAL_GAMMA_RULES}))
        lines = normal_gamma_lines(args.events, args.streams, 1.1, seed=1)
        pid = broker.pid if broker is not None else None
        report: dict[str, Any] = {"args": vars(args)}
        # A fresh broker JVM compiles its hot paths under its first loads, which slowed
        # whichever measurement ran first (even after a run on a fifth of the input, the next
        # full run was 10 - 15% slower than later ones): both run once first, unreported, the
        # runtime on the whole input.
        engine_throughput(bootstrap, lines, args.batch_size)
        handwritten_baseline(bootstrap, lines[: args.baseline_events // 3], args.batch_size)
        report["consume_only"] = consume_only(bootstrap, lines, args.batch_size)
        report["engine"] = engine_throughput(bootstrap, lines, args.batch_size, broker_pid=pid)
        # like the baselines: one record per event, without headers
        report["engine_record_per_event"] = engine_throughput(
            bootstrap, lines, args.batch_size, True, broker_pid=pid, source_headers="none"
        )
        report["handwritten_baseline"] = handwritten_baseline(
            bootstrap, lines[: args.baseline_events], args.batch_size, broker_pid=pid
        )
        base = report["handwritten_baseline"]["events_per_s"]
        report["ratio_vs_handwritten"] = round(report["engine"]["events_per_s"] / base, 2)
        report["ratio_vs_handwritten_record_per_event"] = round(
            report["engine_record_per_event"]["events_per_s"] / base, 2
        )
        if args.no_quix:
            report["quix_streams_baseline"] = "not run: --no-quix"
        elif importlib.util.find_spec("quixstreams") is None:
            report["quix_streams_baseline"] = (
                "not run: quixstreams is not installed (pip install -e '.[quix]', best in a "
                "separate virtualenv: it pins confluent-kafka < 2.13)"
            )
        else:
            report["quix_streams_baseline"] = quix_baseline(
                bootstrap, lines[: args.baseline_events]
            )
            report["ratio_vs_quix_streams"] = round(
                report["engine"]["events_per_s"] / report["quix_streams_baseline"]["events_per_s"],
                2,
            )
            report["quix_streams_correctness"] = verify_quix(bootstrap, lines[: args.verify_events])
        warmup = min(5.0, args.latency_seconds / 4)
        report["latency"] = [
            latency(bootstrap, args.rate, args.latency_seconds, size, warmup)
            for size in (5_000, 50_000)
        ]
        report["restore"] = restore(bootstrap, args.restore_streams)
        group_lines = normal_gamma_lines(args.group_events, 20_000, 1.1, seed=2)
        report["group"] = group_compare(bootstrap, group_lines, broker_pid=pid)
        print(json.dumps(report, indent=2))
    finally:
        if broker is not None:
            broker.stop()


if __name__ == "__main__":
    main()
