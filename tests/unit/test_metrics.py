"""The metrics room: instruments, the engine sensor, the scrape/probe server, naming and docs."""

from __future__ import annotations

import re
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.parser import text_string_to_metric_families

import bayestream.metrics
from bayestream import Engine, parse_config
from bayestream.metrics import Metrics, MetricsServer, PrometheusSensor
from bayestream.metrics.instruments import PUBLISH_SECONDS
from tests.conftest import BASE_RULES, batch, event


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def metrics(registry: CollectorRegistry) -> Metrics:
    return Metrics(registry)


def value(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


# --- the sensor -----------------------------------------------------------------------------


def test_sensor_counts_a_batch(metrics: Metrics, registry: CollectorRegistry) -> None:
    sensor = PrometheusSensor(metrics)
    sensor.on_batch(events=10, applied=7, anomalies=2, seconds=0.05)
    sensor.on_batch(events=4, applied=4, anomalies=0, seconds=2.0)

    assert value(registry, "bayestream_events_total", outcome="applied") == 11
    assert value(registry, "bayestream_events_total", outcome="dead_letter") == 3
    assert value(registry, "bayestream_anomalies_total") == 2
    assert value(registry, "bayestream_batch_duration_seconds_count") == 2
    assert value(registry, "bayestream_batch_duration_seconds_sum") == pytest.approx(2.05)
    assert value(registry, "bayestream_batch_duration_seconds_bucket", le="0.05") == 1
    assert value(registry, "bayestream_batch_duration_seconds_bucket", le="1.0") == 1
    assert value(registry, "bayestream_batch_duration_seconds_bucket", le="2.5") == 2
    assert value(registry, "bayestream_batch_events_sum") == 14
    assert value(registry, "bayestream_batch_events_bucket", le="10.0") == 2


def test_sensor_skips_empty_batches_in_histograms(
    metrics: Metrics, registry: CollectorRegistry
) -> None:
    PrometheusSensor(metrics).on_batch(events=0, applied=0, anomalies=0, seconds=0.001)
    assert value(registry, "bayestream_batch_duration_seconds_count") == 0
    assert value(registry, "bayestream_batch_events_count") == 0
    assert value(registry, "bayestream_events_total", outcome="applied") == 0


def test_sensor_counts_dead_letters_by_reason_and_streams(
    metrics: Metrics, registry: CollectorRegistry
) -> None:
    sensor = PrometheusSensor(metrics)
    sensor.on_dead_letters({"invalid_json": 2, "late_event": 1, "unused": 0})
    sensor.on_dead_letters({"invalid_json": 1})
    sensor.on_streams(change=5, evicted=0)
    sensor.on_streams(change=-2, evicted=2)

    assert value(registry, "bayestream_dead_letters_total", reason="invalid_json") == 3
    assert value(registry, "bayestream_dead_letters_total", reason="late_event") == 1
    assert value(registry, "bayestream_dead_letters_total", reason="unused") is None
    assert value(registry, "bayestream_streams_tracked") == 3
    assert value(registry, "bayestream_evictions_total") == 2


def test_sensor_agrees_with_the_engine_outputs(
    metrics: Metrics, registry: CollectorRegistry
) -> None:
    engine = Engine(parse_config({"rule": BASE_RULES}), sensor=PrometheusSensor(metrics))
    messages = [
        event("a", "lat", 100.0, 1.0),
        event("b", "lat", 100.0, 2.0),
        b"not json",
        event("a", "cpu", 101.0, 1.0),
        event("a", "err", 101.0, 1, trials=10),
    ]
    outputs = engine.process(batch(messages))

    assert value(registry, "bayestream_events_total", outcome="applied") == outputs.applied == 3
    assert value(registry, "bayestream_events_total", outcome="dead_letter") == 2
    assert value(registry, "bayestream_dead_letters_total", reason="invalid_json") == 1
    assert value(registry, "bayestream_dead_letters_total", reason="unknown_metric") == 1
    assert value(registry, "bayestream_anomalies_total") == len(outputs.anomalies)
    assert value(registry, "bayestream_streams_tracked") == len(engine) == 3
    assert value(registry, "bayestream_batch_events_sum") == 5


def test_alerts_are_counted_apart_from_anomalies(
    metrics: Metrics, registry: CollectorRegistry
) -> None:
    """A burst: many anomaly records, one alert (the first point beats the quiet window)."""
    rule = {**BASE_RULES[0], "anomaly_threshold": 0.01, "monitor": False}
    engine = Engine(parse_config({"rule": [rule]}), sensor=PrometheusSensor(metrics))
    rng = np.random.default_rng(2)
    quiet = [event("a", "lat", 100.0 + i, float(x)) for i, x in enumerate(rng.normal(0, 1, 200))]
    burst = [event("a", "lat", 400.0 + i, 30.0 - 0.1 * i) for i in range(30)]
    first = engine.process(batch(quiet))
    second = engine.process(batch(burst))
    anomalies = len(first.anomalies) + len(second.anomalies)
    alerts = sum(r.alert for r in first.anomalies + second.anomalies)
    assert value(registry, "bayestream_anomalies_total") == anomalies >= 20
    assert value(registry, "bayestream_alerts_total") == alerts == first.alerts + second.alerts
    assert second.anomalies[0].alert and 1 <= second.alerts < len(second.anomalies)
    PrometheusSensor(metrics).on_alerts(3)
    assert value(registry, "bayestream_alerts_total") == alerts + 3


def test_the_readme_lists_the_alerts_counter_beside_the_anomalies_counter() -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    rows = [line for line in readme.splitlines() if line.startswith("| `bayestream_")]
    names = [row.split("`")[1] for row in rows]
    assert names.index("bayestream_alerts_total") == names.index("bayestream_anomalies_total") + 1


# --- runtime hooks --------------------------------------------------------------------------


def test_series_that_alerts_rely_on_exist_at_zero(registry: CollectorRegistry) -> None:
    Metrics(registry, dead_letter_reasons=["invalid_json", "late_event"])
    for outcome in ("applied", "dead_letter"):
        assert value(registry, "bayestream_events_total", outcome=outcome) == 0
    for result in ("committed", "aborted"):
        assert value(registry, "bayestream_transactions_total", result=result) == 0
    for reason in ("invalid_json", "late_event"):
        assert value(registry, "bayestream_dead_letters_total", reason=reason) == 0
    assert value(registry, "bayestream_ready") == 0


def test_publish_latency_matches_a_native_histogram(
    metrics: Metrics, registry: CollectorRegistry
) -> None:
    rng = np.random.default_rng(7)
    samples = np.concatenate(
        [rng.lognormal(0.0, 3.0, 5000), np.asarray(PUBLISH_SECONDS), [0.0, 1e9]]
    )
    metrics.observe_publish_latency(samples[:2000])  # an array
    metrics.observe_publish_latency(samples[2000:4000].tolist())  # a list
    metrics.observe_publish_latency(float(s) for s in samples[4000:])  # a generator
    metrics.observe_publish_latency([float("nan"), -3.0])  # skipped; clamped to 0
    metrics.observe_publish_latency([])

    oracle_registry = CollectorRegistry()
    oracle = Histogram(
        "bayestream_event_to_publish_seconds",
        "oracle",
        buckets=PUBLISH_SECONDS,
        registry=oracle_registry,
    )
    for s in [*samples.tolist(), 0.0]:
        oracle.observe(s)

    name = "bayestream_event_to_publish_seconds"
    for le in [*(str(float(b)) for b in PUBLISH_SECONDS), "+Inf"]:
        got = value(registry, f"{name}_bucket", le=le)
        assert got is not None, le
        assert got == value(oracle_registry, f"{name}_bucket", le=le), le
    assert value(registry, f"{name}_count") == samples.size + 1
    assert value(registry, f"{name}_sum") == pytest.approx(
        value(oracle_registry, f"{name}_sum"), rel=1e-12
    )


def test_label_counts_by_state(metrics: Metrics, registry: CollectorRegistry) -> None:
    metrics.set_labels({"joined": 3, "unmatched": 2, "waiting": 4, "dropped": 0, "invalid": 1})
    metrics.set_labels({"joined": 5, "unmatched": 0})
    assert value(registry, "bayestream_labels", state="joined") == 5
    assert value(registry, "bayestream_labels", state="unmatched") == 0
    assert value(registry, "bayestream_labels", state="waiting") == 4
    assert value(registry, "bayestream_labels", state="invalid") == 1


def test_lag_and_freshness_per_partition_and_drop(
    metrics: Metrics, registry: CollectorRegistry
) -> None:
    metrics.set_lag("events", 0, 42)
    metrics.set_lag("events", 1, 7)
    metrics.set_freshness("events", 0, 1.5)
    metrics.set_freshness("events", 1, 0.25)
    assert value(registry, "bayestream_consumer_lag_messages", topic="events", partition="0") == 42
    assert value(registry, "bayestream_freshness_seconds", topic="events", partition="1") == 0.25

    metrics.drop_partition("events", 0)
    metrics.drop_partition("events", 0)  # idempotent
    metrics.drop_partition("other", 9)  # never set
    assert (
        value(registry, "bayestream_consumer_lag_messages", topic="events", partition="0") is None
    )
    assert value(registry, "bayestream_freshness_seconds", topic="events", partition="0") is None
    assert value(registry, "bayestream_consumer_lag_messages", topic="events", partition="1") == 7
    assert value(registry, "bayestream_freshness_seconds", topic="events", partition="1") == 0.25


def test_restore_transactions_and_readiness(metrics: Metrics, registry: CollectorRegistry) -> None:
    metrics.observe_restore(1.2, 300)
    metrics.observe_restore(0.3, 0)
    metrics.transaction(committed=True)
    metrics.transaction(committed=True)
    metrics.transaction(committed=False)
    metrics.set_ready(True)

    assert value(registry, "bayestream_restore_duration_seconds_count") == 2
    assert value(registry, "bayestream_restore_duration_seconds_sum") == pytest.approx(1.5)
    assert value(registry, "bayestream_restored_streams_total") == 300
    assert value(registry, "bayestream_transactions_total", result="committed") == 2
    assert value(registry, "bayestream_transactions_total", result="aborted") == 1
    assert value(registry, "bayestream_ready") == 1 and metrics.ready
    metrics.set_ready(False)
    assert value(registry, "bayestream_ready") == 0 and not metrics.ready


def test_instruments_are_defined_once_per_registry(registry: CollectorRegistry) -> None:
    Metrics(registry)
    with pytest.raises(ValueError, match="Duplicated timeseries"):
        Metrics(registry)


def test_process_metrics_are_opt_in(registry: CollectorRegistry) -> None:
    Metrics(registry, process_metrics=True)
    names = {family.name for family in registry.collect()}
    assert "python_gc_objects_collected" in names
    assert "python_info" in names


# --- naming and documentation ---------------------------------------------------------------


def exposition(registry: CollectorRegistry) -> str:
    from prometheus_client import generate_latest

    return generate_latest(registry).decode()


def test_names_follow_prometheus_conventions(metrics: Metrics, registry: CollectorRegistry) -> None:
    text = exposition(registry)
    typed = dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, flags=re.MULTILINE))
    typed = {name: kind for name, kind in typed.items() if not name.endswith("_created")}
    assert len(typed) == 21
    assert sum(kind == "counter" for kind in typed.values()) == 8
    for name, kind in typed.items():
        assert re.fullmatch(r"bayestream_[a-z]+(_[a-z]+)*", name), name
        assert (kind == "counter") == name.endswith("_total"), name
    for name in ("batch_duration", "event_to_publish", "restore_duration"):
        assert typed[f"bayestream_{name}_seconds"] == "histogram"
    for family in text_string_to_metric_families(text):
        assert family.documentation, family.name
        for sample in family.samples:
            if family.type == "counter":
                assert sample.name.endswith(("_total", "_created")), sample.name


def test_package_docstring_lists_exactly_the_metrics(metrics: Metrics) -> None:
    doc = bayestream.metrics.__doc__ or ""
    documented = set(re.findall(r"``(bayestream_[a-z_]+)(?:\{[a-z,]+\})?``", doc))
    registered = {f.name for f in metrics.registry.collect()}
    # prometheus_client names counter families without the _total the exposition adds
    registered = {n if n in documented else f"{n}_total" for n in registered}
    assert documented == registered


def test_public_api() -> None:
    assert set(bayestream.metrics.__all__) == {"Metrics", "MetricsServer", "PrometheusSensor"}


def test_metrics_room_imports_no_other_room() -> None:
    code = (
        "import sys, bayestream.metrics\n"
        "mods = [m for m in sys.modules if m.startswith('bayestream.')]\n"
        "print(' '.join(m for m in mods if not m.startswith('bayestream.metrics')))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    ).stdout.split()
    assert set(out) <= {"bayestream.errors"}, out  # bayestream/__init__ imports its errors


# --- the server -----------------------------------------------------------------------------

_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def get(
    port: int, path: str, method: str = "GET", accept: str | None = None
) -> tuple[int, str, str]:
    """(status, content type, body) of one request to the local server."""
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method)
    if accept:
        request.add_header("Accept", accept)
    try:
        with _opener.open(request, timeout=5) as response:
            return response.status, response.headers["Content-Type"], response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers["Content-Type"], exc.read().decode()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def served(registry: CollectorRegistry, clock: FakeClock) -> Iterator[tuple[Metrics, int]]:
    metrics = Metrics(registry, clock=clock)
    with MetricsServer(metrics, liveness_timeout=10.0) as server:
        assert server.port is not None
        yield metrics, server.port


def test_server_serves_the_registry(served: tuple[Metrics, int]) -> None:
    metrics, port = served
    PrometheusSensor(metrics).on_batch(3, 2, 1, 0.01)
    metrics.set_lag("events", 4, 11)

    status, content_type, body = get(port, "/metrics")
    assert status == 200
    assert content_type.startswith("text/plain") and "version=0.0.4" in content_type
    assert 'bayestream_events_total{outcome="applied"} 2.0' in body
    assert 'bayestream_consumer_lag_messages{partition="4",topic="events"} 11.0' in body
    for name in ("bayestream_batch_duration_seconds_bucket", "bayestream_ready"):
        assert name in body

    status, content_type, body = get(port, "/metrics", accept="application/openmetrics-text")
    assert status == 200 and content_type.startswith("application/openmetrics-text")
    assert body.rstrip().endswith("# EOF")


def test_healthz_follows_the_heartbeat(served: tuple[Metrics, int], clock: FakeClock) -> None:
    metrics, port = served
    assert get(port, "/healthz")[::2] == (200, "ok\n")  # grace from construction
    clock.now += 10.5
    status, _, body = get(port, "/healthz")
    assert status == 503 and "no heartbeat for 10.5 s" in body
    metrics.heartbeat()
    assert get(port, "/healthz")[0] == 200
    clock.now += 9.9
    assert get(port, "/healthz")[0] == 200


def test_readyz_follows_readiness(served: tuple[Metrics, int]) -> None:
    metrics, port = served
    assert get(port, "/readyz")[::2] == (503, "not ready\n")
    metrics.set_ready(True)
    assert get(port, "/readyz")[::2] == (200, "ready\n")
    metrics.set_ready(False)
    assert get(port, "/readyz")[0] == 503


def test_server_head_and_unknown_paths(served: tuple[Metrics, int]) -> None:
    _, port = served
    assert get(port, "/metrics", method="HEAD")[::2] == (200, "")
    assert get(port, "/healthz/")[0] == 200
    assert get(port, "/nope")[0] == 404
    assert get(port, "/metrics", method="POST")[0] == 501


def test_server_lifecycle(registry: CollectorRegistry) -> None:
    server = MetricsServer(Metrics(registry))
    assert server.port is None
    port = server.start()
    assert port > 0 and server.start() == port == server.port  # idempotent
    assert get(port, "/healthz")[0] == 200
    server.stop()
    server.stop()  # idempotent
    assert server.port is None
    with pytest.raises(urllib.error.URLError):
        _opener.open(f"http://127.0.0.1:{port}/healthz", timeout=2)


def test_server_binds_before_it_serves_and_releases_the_port(registry: CollectorRegistry) -> None:
    first = MetricsServer(Metrics(registry))
    port = first.bind()
    assert port > 0 and first.port == port and first.bind() == port
    taken = MetricsServer(Metrics(CollectorRegistry()), port=port)
    with pytest.raises(OSError):
        taken.bind()
    assert first.start() == port  # serves on the socket it bound
    assert get(port, "/healthz")[0] == 200
    first.stop()
    unserved = MetricsServer(Metrics(CollectorRegistry()), port=port)
    assert unserved.bind() == port  # the port was released
    unserved.stop()  # never served: closes the socket without waiting for a serving loop
    assert unserved.port is None
    with MetricsServer(Metrics(CollectorRegistry()), port=port) as again:
        assert again.port == port


def test_server_rejects_a_bad_liveness_timeout(metrics: Metrics) -> None:
    with pytest.raises(ValueError, match="liveness_timeout"):
        MetricsServer(metrics, liveness_timeout=0)


def test_streams_tracked_sums_the_engines_of_a_process(
    metrics: Metrics, registry: CollectorRegistry
) -> None:
    """The Kafka runtime has an engine per partition, all on one sensor: the gauge is their
    sum (it was the last engine's count), restored streams count at once, and an engine
    dropped at a rebalance takes its streams out."""
    sensor = PrometheusSensor(metrics)
    config = parse_config({"rule": BASE_RULES})
    first, second = Engine(config, sensor=sensor), Engine(config, sensor=sensor)
    first.process(batch([event(k, "lat", 100.0, 1.0) for k in "abc"]))
    second.process(batch([event(k, "lat", 100.0, 1.0) for k in "de"]))
    assert value(registry, "bayestream_streams_tracked") == 5
    restored = Engine(config, sensor=sensor)
    assert restored.restore(first.state_rows()) == 3
    assert value(registry, "bayestream_streams_tracked") == 8
    first.release_streams()
    assert value(registry, "bayestream_streams_tracked") == 5
    second.process(batch([event("f", "lat", 101.0, 1.0)]))
    assert value(registry, "bayestream_streams_tracked") == 6
