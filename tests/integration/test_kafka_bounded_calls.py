"""KafkaRunner._bounded: no transactional call blocks past its timeout plus a grace, and a
failed call leaves nothing holding its producer (no broker needed)."""

from __future__ import annotations

import gc
import threading
import time
import weakref
from collections.abc import Iterator

import pytest
from confluent_kafka import KafkaError, KafkaException

from bayestream.runtime import kafka
from bayestream.runtime.kafka import KafkaRunner
from tests.integration.kafka_helpers import config_for


class StubProducer:
    """Stands in for a producer: its calls hang until released, or fail."""

    def __init__(self) -> None:
        self.release = threading.Event()

    def hang(self, timeout: float) -> None:
        self.release.wait()  # ignores its timeout, as librdkafka#5456 does

    def fail(self, timeout: float) -> None:
        raise KafkaException(KafkaError(KafkaError._TIMED_OUT, "timed out", retriable=True))


@pytest.fixture()
def runner(monkeypatch: pytest.MonkeyPatch) -> Iterator[KafkaRunner]:
    monkeypatch.setattr(kafka, "TXN_GRACE", 0.3)
    yield KafkaRunner(config_for("bounded"), "127.0.0.1:1")


def test_a_hung_call_is_given_up_with_its_producer(runner: KafkaRunner) -> None:
    stub = StubProducer()
    runner.producer = stub  # type: ignore[assignment]
    started = time.monotonic()
    with pytest.raises(KafkaException) as raised:
        runner._bounded("send_offsets_to_transaction", stub, 0.2, stub.hang)  # type: ignore[arg-type]
    assert time.monotonic() - started < 2.0
    error = raised.value.args[0]
    assert error.code() == KafkaError._TIMED_OUT and error.retriable()
    assert runner._replace_producer
    stub.release.set()


def test_a_failed_call_frees_its_producer_without_a_gc_pass(runner: KafkaRunner) -> None:
    def attempt() -> weakref.ref[StubProducer]:
        stub = StubProducer()
        ref = weakref.ref(stub)
        with pytest.raises(KafkaException):
            runner._bounded("init_transactions", stub, 1.0, stub.fail)  # type: ignore[arg-type]
        return ref

    enabled = gc.isenabled()
    gc.disable()
    try:
        ref = attempt()
        deadline = time.monotonic() + 2.0
        while ref() is not None and time.monotonic() < deadline:
            time.sleep(0.01)  # the worker thread lets go of it when it ends
        assert ref() is None
        assert not runner._replace_producer  # an error, not a hang: nothing to give up
    finally:
        if enabled:
            gc.enable()
