"""The engine's sensor, implemented with the Prometheus instruments of :class:`Metrics`.

It satisfies :class:`bayestream.engine.sensor.Sensor` structurally: nothing here imports the
engine at run time, so the metrics room depends on no other room.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING

from bayestream.metrics.instruments import Metrics

if TYPE_CHECKING:
    from bayestream.engine.sensor import Sensor
    from bayestream.schema.records import CalibrationRecord


class PrometheusSensor:
    """Reports what the engine says after each batch to :class:`Metrics`.

    Every input event is either applied or dead-lettered, so ``events - applied`` is counted
    as ``outcome="dead_letter"``; the breakdown by reason comes from :meth:`on_dead_letters`.
    Empty batches (idle polls) are not observed in the batch histograms.
    """

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def on_batch(self, events: int, applied: int, anomalies: int, seconds: float) -> None:
        m = self.metrics
        if applied:
            m.events.labels("applied").inc(applied)
        if events > applied:
            m.events.labels("dead_letter").inc(events - applied)
        if anomalies:
            m.anomalies.inc(anomalies)
        if events:
            m.batch_duration.observe(seconds)
            m.batch_events.observe(events)

    def on_dead_letters(self, by_reason: Mapping[str, int]) -> None:
        for reason, count in by_reason.items():
            if count:
                self.metrics.dead_letters.labels(reason).inc(count)

    def on_streams(self, change: int, evicted: int) -> None:
        self.metrics.streams_tracked.inc(change)  # the sum over the process's engines
        if evicted:
            self.metrics.evictions.inc(evicted)

    def on_drift(self, alarms: int) -> None:
        self.metrics.drift_alarms.inc(alarms)

    def on_alerts(self, alerts: int) -> None:
        self.metrics.alerts.inc(alerts)

    def on_calibration(self, record: CalibrationRecord) -> None:
        m = self.metrics
        rule = record.metric
        for b, density in enumerate(record.pit_histogram):
            m.pit_density.labels(rule, f"{b / 10:.1f}").set(_number(density))
        m.pit_p_value.labels(rule).set(_number(record.pit_uniformity_p_value))
        for row in record.coverage:
            m.coverage.labels(rule, row["kind"], str(row["nominal"])).set(_number(row["observed"]))
        if record.labelled:
            for measure in ("ece", "mce", "brier"):
                m.calibration_error.labels(rule, measure).set(_number(getattr(record, measure)))


def _number(value: float | None) -> float:
    return math.nan if value is None else value


if TYPE_CHECKING:

    def _satisfies_protocol(metrics: Metrics) -> Sensor:  # checked by mypy, never run
        return PrometheusSensor(metrics)


__all__ = ["PrometheusSensor"]
