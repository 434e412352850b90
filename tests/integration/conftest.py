"""Fixtures for tests against a real Kafka broker.

The broker is, in order of preference:

1. the one at ``$KAFKA_BOOTSTRAP_SERVERS`` when that is set;
2. a ``testcontainers`` Kafka container when a Docker engine answers (image
   ``$BAYESTREAM_KAFKA_IMAGE``, default ``confluentinc/cp-kafka:8.0.0``, i.e. Kafka 4.0);
3. :class:`bayestream.runtime.broker.EmbeddedBroker`: Kafka in a local ``java`` process,
   which needs Java 17+ (and Maven the first time, to fetch the jars).

Every test under this directory is marked ``integration``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

_HERE = Path(__file__).resolve().parent

try:
    import bayestream.runtime.broker  # noqa: F401
except ImportError:  # a source checkout that is not installed: use src/
    sys.path.insert(0, str(_HERE.parents[1] / "src"))

from bayestream.runtime.broker import BrokerError, EmbeddedBroker  # noqa: E402

DEFAULT_KAFKA_IMAGE = "confluentinc/cp-kafka:8.0.0"


@dataclasses.dataclass(frozen=True)
class KafkaTarget:
    """The broker the integration tests talk to."""

    bootstrap_servers: str
    kind: str  # "env", "docker" or "embedded"
    broker: EmbeddedBroker | None = None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test collected from this directory as ``integration``."""
    for item in items:
        if item.path.is_relative_to(_HERE):
            item.add_marker(pytest.mark.integration)


def _docker_answers(timeout: float = 3.0) -> bool:
    """Whether a Docker engine answers a ping within ``timeout`` seconds."""
    try:
        import docker

        client = docker.from_env(timeout=timeout)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:  # no client library, no socket, no permission, timeout, ...
        return False


def _start_container() -> Any:
    from testcontainers.community.kafka import KafkaContainer

    container = KafkaContainer(os.environ.get("BAYESTREAM_KAFKA_IMAGE", DEFAULT_KAFKA_IMAGE))
    container.with_kraft()
    for key, value in {
        "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR": "1",
        "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR": "1",
        "KAFKA_TRANSACTION_STATE_LOG_NUM_PARTITIONS": "1",
        "KAFKA_SHARE_COORDINATOR_STATE_TOPIC_REPLICATION_FACTOR": "1",
        "KAFKA_SHARE_COORDINATOR_STATE_TOPIC_MIN_ISR": "1",
        "KAFKA_MIN_INSYNC_REPLICAS": "1",
    }.items():
        container.with_env(key, value)
    container.start(timeout=120)
    return container


@pytest.fixture(scope="session")
def kafka_target() -> Iterator[KafkaTarget]:
    """The Kafka broker of this test session (see the module docstring)."""
    from_env = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if from_env:
        yield KafkaTarget(from_env, "env")
        return

    if _docker_answers():
        try:
            container = _start_container()
        except Exception as exc:  # e.g. the image cannot be pulled: use the local broker
            warnings.warn(
                f"Docker answers but the Kafka container did not start ({exc!r}); "
                "falling back to the embedded broker",
                stacklevel=1,
            )
        else:
            try:
                yield KafkaTarget(container.get_bootstrap_server(), "docker")
            finally:
                with contextlib.suppress(Exception):
                    container.stop()
            return

    try:
        broker = EmbeddedBroker().start()
    except BrokerError as exc:
        pytest.fail(f"no Kafka broker for the integration tests: {exc}", pytrace=False)
    try:
        yield KafkaTarget(broker.bootstrap_servers, "embedded", broker)
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def kafka_bootstrap(kafka_target: KafkaTarget, compiled_kernels: None) -> str:
    """``bootstrap.servers`` of the session's Kafka broker."""
    return kafka_target.bootstrap_servers


@pytest.fixture(scope="session")
def compiled_kernels() -> None:
    """Compile the kernels the tests' rules use once, before any test starts its clocks: the
    ``bayestream run --kafka`` subprocesses then load them from the on-disk cache instead of
    each spending its first seconds (tens of them with a cold cache) compiling."""
    from bayestream.engine.warmup import warm_up
    from tests.integration.kafka_helpers import config_for

    warm_up(config_for("warm-up"))


@pytest.fixture(scope="module")
def own_broker() -> Iterator[EmbeddedBroker]:
    """A broker of the module's own, for tests that stop or kill it (restarted on the same
    ports and data), not the shared one."""
    try:
        broker = EmbeddedBroker(die_with_parent=False).start()
    except BrokerError as exc:
        pytest.skip(f"no embedded broker here: {exc}")
    try:
        yield broker
    finally:
        broker.stop()
