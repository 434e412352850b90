"""Calibration monitoring of each rule's predictives and anomaly probabilities, online.

Per rule, every applied event's PIT (the predictive CDF at the observation, mid-p for counts)
feeds a rolling PIT histogram and the coverage of the rule's published predictive quantiles
and of the central intervals they pair into (q, 1 - q); with labels joined, the anomaly
probabilities feed a reliability table. Every ``calibration_interval_events`` events of a rule
a :class:`~bayestream.schema.records.CalibrationRecord` is emitted (and the sensor told), cut
at exactly that event, so records do not depend on batching. Monitors are not part of the
changelog: after a restart they start again (they describe recent behaviour, not state).
Dirichlet rules have no PIT (categories have no order) and get no record.
"""

from __future__ import annotations

import math

import numpy as np

from bayestream.calibration import (
    CoverageMonitor,
    PitMonitor,
    ReliabilityBin,
    ReliabilityMonitor,
)
from bayestream.config import Config, Rule
from bayestream.models._protocol import OUT_PIT
from bayestream.schema.records import CalibrationRecord


class RuleMonitor:
    """The PIT histogram, coverage and (with labels) reliability of one rule."""

    def __init__(self, rule: Rule, half_life: float) -> None:
        self.rule = rule
        self.pit = PitMonitor(bins=10, half_life=half_life)
        self.coverage = CoverageMonitor(rule.predictive_quantiles, half_life=half_life)
        self.reliability = ReliabilityMonitor(bins=10)
        self.events = 0

    def record(self, watermark: float) -> CalibrationRecord:
        uniform = self.pit.uniformity()
        rel = self.reliability.report() if self.reliability.count else None
        return CalibrationRecord(
            metric=self.rule.metric,
            family=self.rule.family,
            events=self.events,
            watermark=watermark if math.isfinite(watermark) else None,
            pit_histogram=[_finite(v) for v in self.pit.density().tolist()],
            pit_effective_count=self.pit.effective_count,
            pit_uniformity_p_value=_finite(uniform.p_value),
            coverage=[
                {"kind": row.kind, "nominal": row.level, "observed": _finite(row.observed)}
                for row in self.coverage.report()
            ],
            labelled=self.reliability.count,
            brier=_finite(rel.brier) if rel else None,
            ece=_finite(rel.ece) if rel else None,
            mce=_finite(rel.mce) if rel else None,
            reliability=[
                [
                    b.lower,
                    b.upper,
                    b.count,
                    _finite(b.mean_probability),
                    _finite(b.observed_frequency),
                ]
                for b in rel.table
            ]
            if rel
            else [],
        )


class CalibrationTracker:
    """Every rule's :class:`RuleMonitor`, fed from each batch's scores."""

    def __init__(self, config: Config) -> None:
        settings = config.engine
        self.interval = settings.calibration_interval_events
        self.monitors = [
            RuleMonitor(rule, settings.calibration_half_life_events)
            if rule.family != "dirichlet"
            else None
            for rule in config.rule
        ]

    def observe(
        self, rule: np.ndarray, scores: np.ndarray, watermark: np.ndarray
    ) -> list[CalibrationRecord]:
        """Feed one batch (``rule`` per message, -1 when not applied; ``watermark`` per
        message); return the records due, in the order of the events that completed them."""
        due: list[tuple[int, CalibrationRecord]] = []
        if not self.interval:
            return []
        for r, monitor in enumerate(self.monitors):
            if monitor is None:
                continue
            rows = np.flatnonzero(rule == r)
            pit = scores[rows, OUT_PIT]
            start = 0
            while start < pit.shape[0]:
                chunk = pit[start : start + self.interval - monitor.events % self.interval]
                monitor.pit.update(chunk)
                monitor.coverage.update(chunk)
                monitor.events += chunk.shape[0]
                start += chunk.shape[0]
                if monitor.events % self.interval == 0:
                    at = int(rows[start - 1])
                    due.append((at, monitor.record(float(watermark[at]))))
        return [record for _, record in sorted(due, key=lambda d: d[0])]

    def label(self, r: int, probability: np.ndarray, is_anomaly: np.ndarray) -> None:
        """Joined labels of rule ``r``'s events (anomaly probability, 0/1 label)."""
        monitor = self.monitors[r]
        if monitor is not None:
            monitor.reliability.update(probability, is_anomaly)

    def records(self, watermark: float) -> list[CalibrationRecord]:
        """A record of every monitored rule now (e.g. at the end of a run)."""
        return [m.record(watermark) for m in self.monitors if m is not None and m.events]


def _bin(b: ReliabilityBin) -> list[float | None]:
    return [b.lower, b.upper, b.count, _finite(b.mean_probability), _finite(b.observed_frequency)]


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


__all__ = ["CalibrationTracker", "RuleMonitor"]
