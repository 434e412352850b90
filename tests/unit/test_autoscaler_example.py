"""examples/autoscaler.py against a real query service (the app on a real socket, no Kafka)."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from bayestream.serve import PosteriorStore, Service, StreamName, create_handler, pack
from bayestream.serve.server import bind, serve_until

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "autoscaler.py"


@pytest.fixture(scope="module")
def autoscaler() -> ModuleType:
    spec = importlib.util.spec_from_file_location("autoscaler", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def service() -> Iterator[str]:
    store = PosteriorStore()
    record = {
        "key": "team/checkout",
        "metric": "requests",
        "last_ts": 1000.0,
        "forecast": {"300": {"at": 1300.0, "quantiles": {"0.5": 500.0, "0.95": 950.0}}},
    }
    store.put(StreamName("team/checkout", "requests"), pack(0, 1, json.dumps(record).encode()))
    sock = bind("127.0.0.1", 0)
    stop = threading.Event()
    app = create_handler(Service(store, clock=lambda: 1010.0))
    thread = threading.Thread(
        target=lambda: asyncio.run(serve_until(app, sock, stop.is_set, 0.05, signals=False))
    )
    thread.start()
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(10)
        sock.close()


def test_desired_replicas(autoscaler: ModuleType) -> None:
    assert autoscaler.desired_replicas(950.0, 200.0, 0.2, 1, 100) == 6  # 1140 / 200 -> 6
    assert autoscaler.desired_replicas(1000.0, 200.0, 0.0, 1, 100) == 5
    assert autoscaler.desired_replicas(0.0, 200.0, 0.2, 2, 100) == 2
    assert autoscaler.desired_replicas(1e9, 200.0, 0.2, 1, 100) == 100


def test_one_poll_prints_desired_replicas(
    autoscaler: ModuleType, service: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--url", service, "--key", "team/checkout", "--metric", "requests"]
    assert autoscaler.main([*argv, "--capacity-per-replica", "200", "--once"]) == 0
    line = json.loads(capsys.readouterr().out)
    assert line == {
        "forecast": 950.0,
        "at": 1300.0,
        "staleness_seconds": 10.0,
        "wanted": 6,
        "desired_replicas": 6,
    }
    # a horizon the record does not publish: no decision, the service's 400 on stderr
    assert (
        autoscaler.main([*argv, "--capacity-per-replica", "200", "--horizon", "600", "--once"]) == 1
    )
    assert "horizon 600 not published" in capsys.readouterr().err
