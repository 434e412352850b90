"""Real Kafka: topics, producing and consuming, transactions, and the embedded broker's life."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from confluent_kafka import Consumer, KafkaError, Message, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

import bayestream
from bayestream.runtime import kafka_jars
from bayestream.runtime.broker import BrokerError, EmbeddedBroker, ensure_broker_jars

if TYPE_CHECKING:
    from conftest import KafkaTarget

TIMEOUT = 30.0


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def _create_topic(bootstrap: str, partitions: int, **config: str) -> str:
    topic = _name("t")
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics(
        [NewTopic(topic, num_partitions=partitions, replication_factor=1, config=config)],
        operation_timeout=TIMEOUT,
    )
    futures[topic].result(TIMEOUT)
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        meta = admin.list_topics(topic, timeout=TIMEOUT).topics[topic]
        if meta.error is None and len(meta.partitions) == partitions:
            return topic
        time.sleep(0.1)
    raise AssertionError(f"topic {topic} did not appear")


def _consumer(bootstrap: str, group: str | None = None, **extra: str | bool) -> Consumer:
    config: dict[str, str | bool] = {
        "bootstrap.servers": bootstrap,
        "group.id": group or _name("g"),
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
    }
    config.update(extra)
    return Consumer(config)


def _consume(consumer: Consumer, count: int, settle: float = 1.0) -> list[Message]:
    """Poll until ``count`` messages arrived, then ``settle`` seconds more for extras."""
    out: list[Message] = []
    deadline = time.monotonic() + TIMEOUT
    settle_until: float | None = None
    while time.monotonic() < deadline:
        msg = consumer.poll(0.2)
        if msg is not None:
            if msg.error() is not None:
                if msg.error().code() == KafkaError._PARTITION_EOF:
                    continue
                raise AssertionError(msg.error())
            out.append(msg)
        if len(out) >= count:
            settle_until = settle_until or time.monotonic() + settle
            if time.monotonic() >= settle_until:
                return out
    raise AssertionError(f"got {len(out)} of {count} messages within {TIMEOUT} s")


def _values(messages: list[Message]) -> list[str]:
    return [m.value().decode() for m in messages]


def _transactional_producer(bootstrap: str) -> Producer:
    producer = Producer({"bootstrap.servers": bootstrap, "transactional.id": _name("tx")})
    producer.init_transactions(TIMEOUT)
    return producer


def _alive(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie counts as dead)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def _pids_mentioning(text: str) -> list[int]:
    """Live processes whose command line contains ``text``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if text in cmdline and _alive(int(entry.name)):
            found.append(int(entry.name))
    return found


def _wait_dead(pid: int, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.1)
    return False


@pytest.fixture
def embedded_only(kafka_target: KafkaTarget) -> Iterator[None]:
    if kafka_target.kind != "embedded":
        pytest.skip(f"the session's broker is {kafka_target.kind!r}, not the embedded broker")
    yield


# --------------------------------------------------------------------------------------------
# a real broker
# --------------------------------------------------------------------------------------------


def test_create_topic_produce_and_consume(kafka_bootstrap: str) -> None:
    topic = _create_topic(kafka_bootstrap, partitions=4)
    producer = Producer({"bootstrap.servers": kafka_bootstrap, "enable.idempotence": True})
    sent = {f"key-{k}": [f"{k}:{i}" for i in range(10)] for k in range(8)}
    for i in range(10):
        for key, values in sent.items():
            producer.produce(topic, key=key, value=values[i])
    assert producer.flush(TIMEOUT) == 0

    consumer = _consumer(kafka_bootstrap)
    consumer.subscribe([topic])
    try:
        messages = _consume(consumer, 80)
    finally:
        consumer.close()

    assert len(messages) == 80
    by_key: dict[str, list[str]] = {}
    partitions_of_key: dict[str, set[int]] = {}
    for msg in messages:
        key = msg.key().decode()
        by_key.setdefault(key, []).append(msg.value().decode())
        partitions_of_key.setdefault(key, set()).add(msg.partition())
    assert by_key == sent  # every message once, in order per key
    assert all(len(p) == 1 for p in partitions_of_key.values())
    assert {p for ps in partitions_of_key.values() for p in ps} <= {0, 1, 2, 3}
    assert len({p for ps in partitions_of_key.values() for p in ps}) > 1


def test_read_committed_sees_only_committed_transactions(kafka_bootstrap: str) -> None:
    topic = _create_topic(kafka_bootstrap, partitions=1)
    producer = _transactional_producer(kafka_bootstrap)

    producer.begin_transaction()
    for i in range(5):
        producer.produce(topic, value=f"committed-{i}")
    producer.commit_transaction(TIMEOUT)

    producer.begin_transaction()
    for i in range(5):
        producer.produce(topic, value=f"aborted-{i}")
    producer.flush(TIMEOUT)  # the aborted records really reach the log
    producer.abort_transaction(TIMEOUT)

    producer.begin_transaction()
    producer.produce(topic, value="committed-last")
    producer.commit_transaction(TIMEOUT)

    committed = _consumer(kafka_bootstrap, **{"isolation.level": "read_committed"})
    committed.assign([TopicPartition(topic, 0, 0)])
    try:
        seen = _values(_consume(committed, 6))
    finally:
        committed.close()
    assert seen == [f"committed-{i}" for i in range(5)] + ["committed-last"]

    uncommitted = _consumer(kafka_bootstrap, **{"isolation.level": "read_uncommitted"})
    uncommitted.assign([TopicPartition(topic, 0, 0)])
    try:
        everything = _values(_consume(uncommitted, 11))
    finally:
        uncommitted.close()
    assert [v for v in everything if v.startswith("aborted-")] == [f"aborted-{i}" for i in range(5)]


def test_send_offsets_to_transaction(kafka_bootstrap: str) -> None:
    source = _create_topic(kafka_bootstrap, partitions=1)
    sink = _create_topic(kafka_bootstrap, partitions=1)
    group = _name("g")

    plain = Producer({"bootstrap.servers": kafka_bootstrap})
    for i in range(20):
        plain.produce(source, value=str(i))
    assert plain.flush(TIMEOUT) == 0

    producer = _transactional_producer(kafka_bootstrap)
    tp = TopicPartition(source, 0)

    def process_batch(consumer: Consumer, count: int, commit: bool) -> list[str]:
        values = _values(_consume(consumer, count, settle=0.0))
        producer.begin_transaction()
        for value in values:
            producer.produce(sink, value=f"out-{value}")
        producer.send_offsets_to_transaction(
            consumer.position([tp]), consumer.consumer_group_metadata(), TIMEOUT
        )
        if commit:
            producer.commit_transaction(TIMEOUT)
        else:
            producer.abort_transaction(TIMEOUT)
        return values

    first = _consumer(kafka_bootstrap, group)
    first.subscribe([source])
    try:
        assert process_batch(first, 12, commit=True) == [str(i) for i in range(12)]
        assert first.committed([tp], timeout=TIMEOUT)[0].offset == 12
        assert process_batch(first, 8, commit=False) == [str(i) for i in range(12, 20)]
        assert first.committed([tp], timeout=TIMEOUT)[0].offset == 12  # aborted: unchanged
    finally:
        first.close()

    # A new member of the group resumes at the committed offset and finishes the work.
    second = _consumer(kafka_bootstrap, group)
    second.subscribe([source])
    try:
        assert process_batch(second, 8, commit=True) == [str(i) for i in range(12, 20)]
        assert second.committed([tp], timeout=TIMEOUT)[0].offset == 20
    finally:
        second.close()

    reader = _consumer(kafka_bootstrap, **{"isolation.level": "read_committed"})
    reader.assign([TopicPartition(sink, 0, 0)])
    try:
        outputs = _values(_consume(reader, 20))
    finally:
        reader.close()
    assert outputs == [f"out-{i}" for i in range(20)]


# --------------------------------------------------------------------------------------------
# the embedded broker itself
# --------------------------------------------------------------------------------------------


@pytest.mark.usefixtures("embedded_only")
def test_stop_leaves_no_process_and_no_files() -> None:
    broker = EmbeddedBroker().start()
    pid, workdir = broker.pid, broker.workdir
    assert pid is not None and broker.running and workdir.is_dir()
    assert broker.log_path.is_file()
    assert _pids_mentioning(str(workdir)) == [pid]

    broker.stop()

    assert not broker.running and broker.pid is None
    assert not _alive(pid)
    with pytest.raises(ProcessLookupError):
        os.killpg(pid, 0)  # its process group is gone too
    assert _pids_mentioning(str(workdir)) == []
    assert not workdir.exists()
    broker.stop()  # idempotent
    with pytest.raises(BrokerError):
        _ = broker.bootstrap_servers


@pytest.mark.usefixtures("embedded_only")
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux-only")
def test_broker_dies_with_a_killed_python_parent(tmp_path: Path) -> None:
    lib_dir = ensure_broker_jars()
    script = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from bayestream.runtime.broker import EmbeddedBroker\n"
        f"b = EmbeddedBroker(lib_dir=Path({str(lib_dir)!r}), workdir=Path({str(tmp_path)!r}))\n"
        "b.start()\n"
        "print(b.pid, flush=True)\n"
        "time.sleep(600)\n"
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env=_child_env()
    )
    try:
        assert parent.stdout is not None
        line = parent.stdout.readline()
        assert line.strip().isdigit(), f"child printed {line!r}"
        java_pid = int(line)
        assert _alive(java_pid)
        parent.send_signal(signal.SIGKILL)  # no atexit, no finally: only the death signal
        parent.wait(TIMEOUT)
        assert _wait_dead(java_pid), "the java broker outlived its killed parent"
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
        for pid in _pids_mentioning(str(tmp_path)):
            os.kill(pid, signal.SIGKILL)


@pytest.mark.usefixtures("embedded_only")
def test_serve_prints_address_and_stops_on_sigterm() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "bayestream.runtime.broker"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_child_env(),
    )
    try:
        assert proc.stdout is not None and proc.stderr is not None
        line = proc.stdout.readline().strip()
        assert line.startswith("bootstrap.servers=127.0.0.1:"), line
        bootstrap = line.split("=", 1)[1]
        info = proc.stderr.readline()
        assert "log: " in info
        workdir = Path(info.split("log: ", 1)[1].split(";", 1)[0]).parent

        admin = AdminClient({"bootstrap.servers": bootstrap})
        assert admin.list_topics(timeout=TIMEOUT).brokers  # it serves clients

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(TIMEOUT) == 0
        assert _pids_mentioning(str(workdir)) == []
        assert not workdir.exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.usefixtures("embedded_only")
def test_bad_configuration_gives_a_clear_error() -> None:
    with pytest.raises(BrokerError, match="not-a-number"):
        EmbeddedBroker(properties={"node.id": "not-a-number"}, startup_timeout=30).start()


def test_missing_java_or_maven_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("JAVA_HOME", raising=False)
    with pytest.raises(BrokerError, match=r"java.*Java 17"):
        EmbeddedBroker(lib_dir=tmp_path).start()
    with pytest.raises(BrokerError, match=r"mvn.*Maven"):
        ensure_broker_jars(tmp_path / "lib")


@pytest.mark.usefixtures("embedded_only")
def test_jar_cache_is_reused() -> None:
    lib_dir = ensure_broker_jars()
    started = time.monotonic()
    assert ensure_broker_jars() == lib_dir
    assert time.monotonic() - started < 0.5
    assert (lib_dir / kafka_jars._COMPLETE_MARKER).is_file()
    assert (lib_dir / f"kafka_2.13-{kafka_jars.KAFKA_VERSION}.jar").is_file()


def _child_env() -> dict[str, str]:
    """Environment for a child Python that must import this checkout's ``bayestream``."""
    env = dict(os.environ)
    src = str(Path(next(iter(bayestream.__path__))).parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH")) if p)
    return env


def test_import_is_light() -> None:
    code = (
        "import sys, bayestream.runtime.broker\n"
        "heavy = {'numba', 'numpy', 'scipy', 'confluent_kafka', 'pydantic'} & set(sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], env=_child_env(), capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
