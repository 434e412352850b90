"""Prometheus instruments of ``bayestream serve`` (the query service), on a registry of their
own: the :class:`~bayestream.serve.sensor.ServeSensor` the service reports to.

- ``bayestream_serve_requests_total{route,status}``: requests answered, by route template
  (``/v1/streams/{key}/{metric}``, ..., ``other``) and HTTP status.
- ``bayestream_serve_request_duration_seconds{route}``: histogram of the time to answer, from
  the handler's start to its response (buckets 0.1 ms to 1 s).
- ``bayestream_serve_streams``: streams held.
- ``bayestream_serve_lag_messages``: messages between what has been read and the end of the
  posteriors topic, summed over its partitions.
- ``bayestream_serve_ready``: 1 once caught up with the end offsets seen at start.
- ``bayestream_serve_records_total{outcome}``: messages of the topic read: ``stored``,
  ``deleted`` (tombstones) or ``invalid`` (skipped).
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import choose_encoder
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

REQUEST_SECONDS = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0
)  # fmt: skip
RECORD_OUTCOMES = ("stored", "deleted", "invalid")


class ServeMetrics:
    """The query service's instruments; a private registry unless one is given.

    ``streams``, ``lag`` and ``ready`` are read when scraped (callables, so the store and the
    feed need not push them).
    """

    def __init__(
        self,
        registry: CollectorRegistry | None = None,
        *,
        streams: Callable[[], float] = lambda: 0.0,
        lag: Callable[[], float] = lambda: 0.0,
        ready: Callable[[], bool] = lambda: False,
        process_metrics: bool = False,
    ) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        if process_metrics:
            ProcessCollector(registry=r)
            PlatformCollector(registry=r)
            GCCollector(registry=r)
        self.requests = Counter(
            "bayestream_serve_requests_total",
            "Requests answered by the query service, by route template and HTTP status.",
            ["route", "status"],
            registry=r,
        )
        self.duration = Histogram(
            "bayestream_serve_request_duration_seconds",
            "Time to answer a request, by route template.",
            ["route"],
            buckets=REQUEST_SECONDS,
            registry=r,
        )
        self.records = Counter(
            "bayestream_serve_records_total",
            "Messages of the posteriors topic read: stored, deleted (tombstone) or invalid.",
            ["outcome"],
            registry=r,
        )
        for outcome in RECORD_OUTCOMES:
            self.records.labels(outcome)
        self._record = {o: self.records.labels(o) for o in RECORD_OUTCOMES}
        Gauge("bayestream_serve_streams", "Streams held.", registry=r).set_function(streams)
        Gauge(
            "bayestream_serve_lag_messages",
            "Messages between what has been read and the end of the posteriors topic (summed "
            "over partitions).",
            registry=r,
        ).set_function(lag)
        Gauge(
            "bayestream_serve_ready",
            "1 once caught up with the end offsets of the posteriors topic seen at start.",
            registry=r,
        ).set_function(lambda: 1.0 if ready() else 0.0)
        self._children: dict[tuple[str, int], tuple[Counter, Histogram]] = {}

    def on_request(self, route: str, status: int, seconds: float) -> None:
        children = self._children.get((route, status))
        if children is None:
            children = (self.requests.labels(route, str(status)), self.duration.labels(route))
            self._children[(route, status)] = children
        children[0].inc()
        children[1].observe(seconds)

    def on_record(self, outcome: str) -> None:
        child = self._record.get(outcome)
        if child is None:
            child = self._record[outcome] = self.records.labels(outcome)
        child.inc()

    def exposition(self, accept: str) -> tuple[bytes, str]:
        encoder, content_type = choose_encoder(accept)
        return encoder(self.registry), content_type


__all__ = ["REQUEST_SECONDS", "ServeMetrics"]
