"""Every Prometheus instrument of bayestream, defined once on one registry.

The names and their meaning are listed in the docstring of :mod:`bayestream.metrics`. The engine
reaches these instruments only through :class:`~bayestream.metrics.sensor.PrometheusSensor`; the
runtime calls the methods of :class:`Metrics` directly (lag, freshness, restore, transactions,
readiness, heartbeat).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable, Mapping

import numpy.typing as npt
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

from bayestream.metrics._bulk import BulkHistogram

# Upper bounds in seconds / events. +Inf is always added.
BATCH_SECONDS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_EVENTS = (1, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10_000, 25_000, 50_000, 100_000)
PUBLISH_SECONDS = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0
)  # fmt: skip
RESTORE_SECONDS = (0.01, 0.05, 0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)

OUTCOMES = ("applied", "dead_letter")
RESULTS = ("committed", "aborted")


class Metrics:
    """The instruments, plus the liveness heartbeat and readiness flag behind ``/healthz``
    and ``/readyz``.

    Parameters
    ----------
    registry
        Where every instrument is registered; a new, private registry when omitted (tests pass
        a fresh one each). Two ``Metrics`` cannot share a registry: names are registered once.
    dead_letter_reasons
        Reason codes to create at zero up front (the runtime passes
        ``[r.value for r in Reason]``), so that ``rate()`` and absence alerts see every series
        before its first dead letter. Other reasons still appear when first counted.
    process_metrics
        Also register prometheus_client's process (CPU, memory, file descriptors), platform and
        garbage-collector collectors on this registry.
    clock
        Monotonic seconds, for the heartbeat; tests pass a fake clock.

    Notes
    -----
    The heartbeat starts at construction, so ``/healthz`` grants the start-up (restore, kernel
    warm-up) one liveness timeout unless the runtime calls :meth:`heartbeat` during it.
    """

    def __init__(
        self,
        registry: CollectorRegistry | None = None,
        *,
        dead_letter_reasons: Iterable[str] = (),
        process_metrics: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        if process_metrics:
            ProcessCollector(registry=r)
            PlatformCollector(registry=r)
            GCCollector(registry=r)

        # --- engine, through the sensor ---------------------------------------------------
        self.events = Counter(
            "bayestream_events_total",
            "Input events processed, by outcome (applied to a posterior, or dead-lettered).",
            ["outcome"],
            registry=r,
        )
        self.dead_letters = Counter(
            "bayestream_dead_letters_total",
            "Input events sent to the dead-letter topic, by reason code.",
            ["reason"],
            registry=r,
        )
        self.anomalies = Counter(
            "bayestream_anomalies_total", "Anomaly records emitted.", registry=r
        )
        self.alerts = Counter(
            "bayestream_alerts_total",
            "Anomaly records that are alerts: one per incident (alert_window_events).",
            registry=r,
        )
        self.batch_duration = Histogram(
            "bayestream_batch_duration_seconds",
            "Engine processing time of one non-empty batch.",
            buckets=BATCH_SECONDS,
            registry=r,
        )
        self.batch_events = Histogram(
            "bayestream_batch_events",
            "Input events per non-empty batch.",
            buckets=BATCH_EVENTS,
            registry=r,
        )
        self.streams_tracked = Gauge(
            "bayestream_streams_tracked", "Streams currently held in state.", registry=r
        )
        self.evictions = Counter(
            "bayestream_evictions_total",
            "Streams evicted (idle past the TTL, or over the stream cap).",
            registry=r,
        )
        self.drift_alarms = Counter(
            "bayestream_drift_alarms_total", "Drift records emitted.", registry=r
        )
        # calibration, per rule (label "rule": the rule's metric pattern)
        self.pit_density = Gauge(
            "bayestream_pit_density",
            "Rolling PIT histogram of a rule: density per tenth of [0, 1] (1 when calibrated).",
            ["rule", "bin"],
            registry=r,
        )
        self.pit_p_value = Gauge(
            "bayestream_pit_uniformity_p_value",
            "Chi-square p-value of the rolling PIT histogram against uniform.",
            ["rule"],
            registry=r,
        )
        self.coverage = Gauge(
            "bayestream_predictive_coverage_ratio",
            "Observed coverage of a published predictive quantile or central interval.",
            ["rule", "kind", "nominal"],
            registry=r,
        )
        self.calibration_error = Gauge(
            "bayestream_anomaly_calibration_error",
            "Calibration of the anomaly probability against labels: ece, mce or brier.",
            ["rule", "measure"],
            registry=r,
        )

        # --- runtime ----------------------------------------------------------------------
        self.publish_latency = BulkHistogram(
            "bayestream_event_to_publish_seconds",
            "Publish wall-clock time minus event time, per published event.",
            PUBLISH_SECONDS,
            registry=r,
        )
        self.consumer_lag = Gauge(
            "bayestream_consumer_lag_messages",
            "Messages between the consumer position and the end of the partition.",
            ["topic", "partition"],
            registry=r,
        )
        self.freshness = Gauge(
            "bayestream_freshness_seconds",
            "Wall-clock time minus the newest event time applied, per input partition.",
            ["topic", "partition"],
            registry=r,
        )
        self.restore_duration = Histogram(
            "bayestream_restore_duration_seconds",
            "Time to restore state from the changelog after a partition assignment.",
            buckets=RESTORE_SECONDS,
            registry=r,
        )
        self.restored_streams = Counter(
            "bayestream_restored_streams_total",
            "Streams restored from the changelog.",
            registry=r,
        )
        self.transactions = Counter(
            "bayestream_transactions_total",
            "Kafka transactions, by result (committed or aborted).",
            ["result"],
            registry=r,
        )
        self.label_states = Gauge(
            "bayestream_labels",
            "Labels read from the labels topic, by state: joined (to at least one event), "
            "unmatched (not yet), waiting (for their events), dropped (unmatched, over "
            "labels_capacity), invalid (not a label).",
            ["state"],
            registry=r,
        )
        self.ready_gauge = Gauge(
            "bayestream_ready",
            "1 when assigned partitions are restored and the loop is processing, else 0.",
            registry=r,
        )

        for outcome in OUTCOMES:
            self.events.labels(outcome)
        for result in RESULTS:
            self.transactions.labels(result)
        for reason in dead_letter_reasons:
            self.dead_letters.labels(reason)

        self._clock = clock
        self._last_beat = clock()
        self._ready = False

    # --- runtime hooks ----------------------------------------------------------------------

    def observe_publish_latency(self, seconds: npt.ArrayLike | Iterable[float]) -> None:
        """Record publish time minus event time for each published event, in one call."""
        self.publish_latency.observe_many(seconds)

    def set_lag(self, topic: str, partition: int, lag: float) -> None:
        """Set the consumer lag (messages) of one assigned partition."""
        self.consumer_lag.labels(topic, str(partition)).set(lag)

    def set_freshness(self, topic: str, partition: int, seconds: float) -> None:
        """Set now minus the newest event time applied from one partition."""
        self.freshness.labels(topic, str(partition)).set(seconds)

    def drop_partition(self, topic: str, partition: int) -> None:
        """Remove the partition's lag and freshness series (on revocation); idempotent."""
        for gauge in (self.consumer_lag, self.freshness):
            with contextlib.suppress(KeyError):  # older prometheus_client raises when absent
                gauge.remove(topic, str(partition))

    def set_labels(self, counts: Mapping[str, int]) -> None:
        """Set the label counts by state (see the ``bayestream_labels`` help)."""
        for state, count in counts.items():
            self.label_states.labels(state).set(count)

    def reached(self, point: str) -> None:
        """A point of the runner's commit protocol: nothing to count."""
        return None

    def observe_restore(self, seconds: float, streams: int) -> None:
        """Record one restore: its duration and the number of streams it brought back."""
        self.restore_duration.observe(seconds)
        self.restored_streams.inc(streams)

    def transaction(self, committed: bool) -> None:
        """Count one Kafka transaction as committed or aborted."""
        self.transactions.labels("committed" if committed else "aborted").inc()

    def set_ready(self, ready: bool) -> None:
        """Mark the process ready (``/readyz`` 200) or not (503)."""
        self._ready = bool(ready)
        self.ready_gauge.set(1 if ready else 0)

    @property
    def ready(self) -> bool:
        """Whether :meth:`set_ready` last said ready."""
        return self._ready

    def heartbeat(self) -> None:
        """Record that the processing loop is alive; call once per loop iteration."""
        self._last_beat = self._clock()

    def seconds_since_heartbeat(self) -> float:
        """Seconds since the last :meth:`heartbeat` (or since construction)."""
        return self._clock() - self._last_beat


__all__ = ["Metrics"]
