"""Hooks the engine calls so that metrics live elsewhere (the Prometheus sensor is in
``bayestream.metrics``; tests can pass a recording sensor)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from bayestream.schema.records import CalibrationRecord


class Sensor(Protocol):
    """What the engine reports after each batch."""

    def on_batch(self, events: int, applied: int, anomalies: int, seconds: float) -> None: ...

    def on_dead_letters(self, by_reason: Mapping[str, int]) -> None: ...

    def on_streams(self, change: int, evicted: int) -> None:
        """The streams an engine holds changed by ``change`` (the engines of a process share
        a sensor: the sum of their changes is what the process holds); ``evicted`` of them
        were evicted."""

    def on_drift(self, alarms: int) -> None: ...

    def on_alerts(self, alerts: int) -> None: ...

    def on_calibration(self, record: CalibrationRecord) -> None: ...


class NullSensor:
    """A sensor that records nothing."""

    def on_batch(self, events: int, applied: int, anomalies: int, seconds: float) -> None:
        return None

    def on_dead_letters(self, by_reason: Mapping[str, int]) -> None:
        return None

    def on_streams(self, change: int, evicted: int) -> None:
        return None

    def on_drift(self, alarms: int) -> None:
        return None

    def on_alerts(self, alerts: int) -> None:
        return None

    def on_calibration(self, record: CalibrationRecord) -> None:
        return None


__all__ = ["NullSensor", "Sensor"]
