"""Helpers for the Kafka runtime's integration tests (real broker, no mocks)."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from bayestream import parse_config
from bayestream.config import Config
from bayestream.runtime.kafka import KafkaRunner

RULES: list[dict[str, Any]] = [
    {
        "metric": "lat",
        "family": "normal_gamma",
        "tail": "upper",
        "anomaly_threshold": 0.01,
        "prior": {"mu": 10.0, "kappa": 1.0, "alpha": 2.0, "beta": 2.0},
        "half_life_seconds": 50,
        "drift": {"window_events": 10, "false_alarm_rate": 0.05, "reset_on_alarm": True},
    },
    {"metric": "err", "family": "beta_binomial", "anomaly_threshold": 0.01},
    {
        "metric": "req",
        "family": "gamma_poisson",
        "anomaly_threshold": 0.01,
        "drift": {"window_events": 10, "reference": "baseline", "false_alarm_rate": 0.05},
    },
]


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def create_topic(bootstrap: str, name: str, partitions: int) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics([NewTopic(name, partitions, 1)]).values():
        future.result(30)


def config_for(tmp: str, batch_size: int = 500, **kafka: Any) -> Config:
    return parse_config(
        {
            "engine": {"max_lateness_seconds": 1e9},
            "kafka": {
                "input_topics": [f"{tmp}.in"],
                "group_id": f"{tmp}.group",
                "posteriors_topic": f"{tmp}.posteriors",
                "anomalies_topic": f"{tmp}.anomalies",
                "drift_topic": f"{tmp}.drift",
                "calibration_topic": f"{tmp}.calibration",
                "dead_letter_topic": f"{tmp}.dead",
                "batch_size": batch_size,
                "metrics_port": None,
                "output_partitions": 2,
                **kafka,
            },
            "rule": RULES,
        }
    )


def events(n: int, keys: int = 12, seed: int = 0) -> list[dict[str, Any]]:
    import numpy as np

    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        key = f"host-{rng.integers(keys)}"
        kind = i % 3
        if kind == 0:
            value = float(rng.normal(10, 1) if i % 97 else 60.0)
            out.append({"key": key, "metric": "lat", "ts": 1000 + i, "value": round(value, 3)})
        elif kind == 1:
            trials = int(rng.integers(10, 100))
            out.append(
                {
                    "key": key,
                    "metric": "err",
                    "ts": 1000 + i,
                    "value": int(rng.binomial(trials, 0.1)),
                    "trials": trials,
                }
            )
        else:
            out.append(
                {
                    "key": key,
                    "metric": "req",
                    "ts": 1000 + i,
                    "value": int(rng.poisson(5)),
                    "exposure": 1.0,
                }
            )
    return out


BAD = [
    b"not json",
    b'{"key":"h","metric":"lat","ts":1,"value":"x"}',
    b'{"key":"h","metric":"cpu","ts":1,"value":1}',
    b"",
    b'{"key":"h","metric":"err","ts":1,"value":5,"trials":2}',
]


def input_producer(bootstrap: str) -> Producer:
    """The producer of test input: idempotent, so that a retried request (a new topic's leader
    not yet ready, a slow broker) can neither reorder nor duplicate messages of a partition.
    Without it two runs over "the same" input may not see the same input."""
    return Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "enable.idempotence": True})


def produce(bootstrap: str, topic: str, lines: list[bytes], keys: list[bytes | None]) -> None:
    """Produce in order, every message acknowledged, each partition's in production order."""
    produce_tracked(bootstrap, topic, lines, keys)


def read_all(bootstrap: str, topic: str, timeout: float = 10.0) -> list[Any]:
    """Every committed message of a topic (read_committed), from the beginning to the end."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": unique("reader"),
            "isolation.level": "read_committed",
            "enable.partition.eof": True,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    meta = consumer.list_topics(topic, timeout=10).topics[topic]
    parts = [TopicPartition(topic, p, 0) for p in meta.partitions]
    consumer.assign(parts)
    done: set[int] = set()
    out = []
    deadline = time.monotonic() + timeout
    while len(done) < len(parts) and time.monotonic() < deadline:
        for m in consumer.consume(1000, 0.5):
            if m.error():
                if m.error().code() == KafkaError._PARTITION_EOF:
                    done.add(m.partition())
                continue
            out.append(m)
    consumer.close()
    return out


def committed_count(bootstrap: str, group: str, topic: str) -> int:
    """Sum of the group's committed offsets on ``topic`` (-1 while the broker is not ready)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        meta = consumer.list_topics(topic, timeout=10).topics[topic]
        tps = consumer.committed([TopicPartition(topic, p) for p in meta.partitions], timeout=10)
    except KafkaException:  # e.g. the group coordinator is still loading
        return -1
    finally:
        consumer.close()
    return sum(max(tp.offset, 0) for tp in tps)


@contextmanager
def running(config: Config, bootstrap: str) -> Iterator[KafkaRunner]:
    runner = KafkaRunner(config, bootstrap)
    errors: list[BaseException] = []

    def target() -> None:
        try:
            runner.run()
        except BaseException as exc:  # surfaced to the test below
            errors.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    try:
        yield runner
    finally:
        runner.stop()
        thread.join(60)
        assert not thread.is_alive(), "runner did not stop"
        if errors:
            raise errors[0]


def wait_for(predicate: Any, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError("timed out waiting")


def latest_by_key(messages: list[Any]) -> dict[bytes, dict[str, Any]]:
    return {m.key(): json.loads(m.value()) for m in messages if m.value() is not None}


def file_run(tmp_path: Path, config: Config, lines: list[bytes]) -> dict[str, list[Any]]:
    from bayestream import Engine
    from bayestream.runtime.files import run_file

    source = tmp_path / "input.jsonl"
    source.write_bytes(b"\n".join(line for line in lines if line) + b"\n")
    run_file(Engine(config), source, tmp_path / "out", 64)
    return {
        name: [json.loads(x) for x in (tmp_path / "out" / f"{name}.jsonl").read_text().splitlines()]
        for name in ("posteriors", "anomalies", "drift", "dead_letter")
    }


# --- `bayestream run --kafka` as a real subprocess (crash, scale-out and bad-input tests) -----

# Fast failure detection for tests that kill processes: a dead member leaves the group after
# 6 s (the broker's minimum session timeout) and the broker aborts a dead producer's open
# transaction after 10 s (plus up to 10 s until its next scan) instead of 60 s.
FAST_FAILOVER: dict[str, Any] = {
    "consumer": {"session.timeout.ms": 6000, "heartbeat.interval.ms": 500},
    "producer": {"transaction.timeout.ms": 10000},
}
# "partition 3: restored 5 streams" or "partitions [0, 3]: restored 9 streams"
RESTORED_LINE = r"partitions? \[?([\d, ]+)\]?: restored (\d+) streams"


def toml_value(value: Any) -> str:
    """``value`` written as a TOML value (string, number, boolean, array or inline table)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        items = ", ".join(f"{json.dumps(str(k))} = {toml_value(v)}" for k, v in value.items())
        return "{ " + items + " }"
    raise TypeError(f"no TOML for {value!r}")


def write_config(path: Path, tmp: str, batch_size: int = 200, **kafka: Any) -> Config:
    """The settings of :func:`config_for` as a TOML file for ``bayestream run --config``.

    TOML has no null: ``metrics_port = 0`` binds a free port, so that processes running side
    by side do not fight over the default one. Returns the configuration the file loads as.
    """
    from bayestream.config import load_config

    settings: dict[str, Any] = {
        "input_topics": [f"{tmp}.in"],
        "group_id": f"{tmp}.group",
        "posteriors_topic": f"{tmp}.posteriors",
        "anomalies_topic": f"{tmp}.anomalies",
        "drift_topic": f"{tmp}.drift",
        "calibration_topic": f"{tmp}.calibration",
        "dead_letter_topic": f"{tmp}.dead",
        "batch_size": batch_size,
        "metrics_port": 0,
        "output_partitions": 2,
        **kafka,
    }
    lines = ["[engine]", f"max_lateness_seconds = {toml_value(1e9)}", "", "[kafka]"]
    tables = {k: v for k, v in settings.items() if isinstance(v, dict)}
    lines += [f"{k} = {toml_value(v)}" for k, v in settings.items() if k not in tables]
    for name, table in tables.items():
        lines += ["", f"[kafka.{name}]"]
        lines += [f"{json.dumps(k)} = {toml_value(v)}" for k, v in table.items()]
    for rule in RULES:
        lines += ["", "[[rule]]"] + [f"{k} = {toml_value(v)}" for k, v in rule.items()]
        # (a table value such as drift is written inline: drift = { window_events = 10, ... })
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return load_config(path)


class Runtime:
    """One ``bayestream run --kafka`` subprocess; its stderr goes to ``log``."""

    def __init__(self, bootstrap: str, config: Path, log: Path, crash_at: str | None = None):
        import os
        import subprocess
        import sys

        self.log = log
        argv = [sys.executable, "-m", "bayestream.cli.main", "run", "--kafka", bootstrap]
        argv += ["--config", str(config)]
        if crash_at is not None:  # the runtime with a kill at a point of its commit protocol
            argv = [sys.executable, "-m", "tests.integration.crash_runner", crash_at, bootstrap]
            argv += [str(config)]
        env = dict(os.environ)
        # the crash runner is imported from this checkout's tests package
        env["PYTHONPATH"] = os.pathsep.join(
            [str(Path(__file__).resolve().parents[2]), *filter(None, [env.get("PYTHONPATH")])]
        )
        with log.open("wb") as err:
            self.proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
                env=env,
            )

    def text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.text().splitlines()[-lines:])

    def restored(self) -> list[tuple[list[int], int]]:
        """(partitions, streams) of every restore the process logged, in order."""
        import re

        return [
            ([int(p) for p in ps.split(",")], int(n))
            for ps, n in re.findall(RESTORED_LINE, self.text())
        ]

    def metrics(self) -> dict[str, float]:
        """The process's Prometheus samples, by sample name with labels."""
        import re
        import urllib.request

        found = re.search(r"metrics on (http://\S+/metrics)", self.text())
        assert found, f"no metrics endpoint logged:\n{self.tail()}"
        with urllib.request.urlopen(found.group(1), timeout=10) as response:
            body = response.read().decode()
        out = {}
        for line in body.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                out[name] = float(value)
        return out

    def alive(self) -> bool:
        return self.proc.poll() is None

    def wait(self, timeout: float) -> int:
        import subprocess

        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"still running after {timeout} s:\n{self.tail()}") from None

    def stop(self, timeout: float = 60.0) -> int:
        """SIGTERM (finish the batch, commit, leave the group); the exit code."""
        if self.alive():
            self.proc.terminate()
        return self.wait(timeout)

    def kill(self) -> None:
        if self.alive():
            self.proc.kill()
        self.proc.wait(30)


def wait_until(
    predicate: Any, timeout: float, what: str, watch: list[Runtime] | tuple[Runtime, ...] = ()
) -> None:
    """Poll ``predicate`` until true; fail after ``timeout`` s or when a watched process exits."""
    watched = list(watch)
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return
        for rt in watched:
            if not rt.alive():
                raise AssertionError(
                    f"waiting for {what}: process exited {rt.proc.returncode}:\n{rt.tail()}"
                )
        if time.monotonic() > deadline:
            logs = "\n---\n".join(rt.tail() for rt in watched)
            raise AssertionError(f"timed out after {timeout} s waiting for {what}\n{logs}")
        time.sleep(0.25)


def committed_offsets(bootstrap: str, group: str, topic: str) -> dict[int, int]:
    """The group's committed offset per partition of ``topic`` (-1: none).

    Asked with ``read_uncommitted``: offsets of a transaction still open are not waited for.
    """
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": group, "isolation.level": "read_uncommitted"}
    )
    try:
        meta = consumer.list_topics(topic, timeout=10).topics[topic]
        tps = consumer.committed([TopicPartition(topic, p) for p in meta.partitions], timeout=10)
    finally:
        consumer.close()
    return {tp.partition: tp.offset for tp in tps}


def no_open_transactions(bootstrap: str, topics: list[str]) -> bool:
    """Whether every partition's last stable offset is its end (no transaction pending)."""
    ends = {}
    for isolation in ("read_committed", "read_uncommitted"):
        consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": unique("marks"),
                "isolation.level": isolation,
            }
        )
        try:
            for topic in topics:
                meta = consumer.list_topics(topic, timeout=10).topics[topic]
                for p in meta.partitions:
                    tp = TopicPartition(topic, p)
                    ends[(isolation, topic, p)] = consumer.get_watermark_offsets(tp, 10)[1]
        finally:
            consumer.close()
    return all(
        ends[("read_committed", t, p)] == end
        for (isolation, t, p), end in ends.items()
        if isolation == "read_uncommitted"
    )


def produce_tracked(
    bootstrap: str,
    topic: str,
    lines: list[bytes] | list[bytes | None],
    keys: list[bytes | None],
) -> list[tuple[int, int]]:
    """Produce in order; the (partition, offset) each message got. Fails unless every message
    was acknowledged and each partition holds its messages in production order."""
    producer = input_producer(bootstrap)
    where: dict[int, tuple[int, int]] = {}
    errors: list[Any] = []

    def delivered(index: int) -> Any:
        def callback(err: Any, msg: Any) -> None:
            if err is not None:
                errors.append(err)
            else:
                where[index] = (msg.partition(), msg.offset())

        return callback

    for i, (key, line) in enumerate(zip(keys, lines, strict=True)):
        producer.produce(topic, line, key, on_delivery=delivered(i))
        producer.poll(0)
    assert producer.flush(30) == 0 and not errors, errors
    positions = [where[i] for i in range(len(lines))]
    last: dict[int, int] = {}
    for partition, offset in positions:
        assert offset > last.get(partition, -1), f"input out of order on partition {partition}"
        last[partition] = offset
    return positions


class Published:
    """What a run left on its output topics, as downstream (read_committed) sees it."""

    def __init__(self, bootstrap: str, config: Config, timeout: float = 30.0) -> None:
        from collections import Counter

        k = config.kafka
        self.anomalies: Counter[bytes] = Counter(
            m.value() for m in read_all(bootstrap, k.anomalies_topic, timeout)
        )
        self.drift: Counter[bytes] = Counter(
            m.value() for m in read_all(bootstrap, k.drift_topic, timeout)
        )
        self.dead: list[dict[str, Any]] = []
        for m in read_all(bootstrap, k.dead_letter_topic, timeout):
            headers = {name: value.decode() for name, value in m.headers() or []}
            self.dead.append(
                {
                    "key": m.key(),
                    "value": m.value(),
                    "reason": headers["bayestream.reason"],
                    "detail": headers["bayestream.detail"],
                    "topic": headers["bayestream.source.topic"],
                    "partition": int(headers["bayestream.source.partition"]),
                    "offset": int(headers["bayestream.source.offset"]),
                }
            )
        self.posteriors = latest_by_key(read_all(bootstrap, k.posteriors_topic, timeout))
        from bayestream.runtime.checkpoint import CHECKPOINT_KEY, decode_checkpoint

        rows = {
            (m.partition(), m.key()): m.value() for m in read_all(bootstrap, k.changelog, timeout)
        }
        # each changelog partition's checkpoint: input topic -> the next offset its state includes
        self.checkpoints: dict[int, dict[str, int]] = {
            p: decode_checkpoint(value)
            for (p, key), value in rows.items()
            if key == CHECKPOINT_KEY and value is not None
        }
        # the stream rows (and tombstones), without the checkpoints
        self.changelog: dict[tuple[int, bytes], bytes | None] = {
            where: value for where, value in rows.items() if where[1] != CHECKPOINT_KEY
        }

    def dead_multiset(self, with_topic: bool = False) -> Any:
        """Dead letters as a multiset of (value, reason, detail, source position)."""
        from collections import Counter

        return Counter(
            (d["value"], d["reason"], d["detail"], d["partition"], d["offset"])
            + ((d["topic"],) if with_topic else ())
            for d in self.dead
        )

    def estimates(self) -> dict[bytes, tuple[Any, float]]:
        """Latest posterior per stream: (params, n_eff)."""
        return {key: (p["params"], p["n_eff"]) for key, p in self.posteriors.items()}
