"""Calibration monitoring: are the published predictives and anomaly probabilities honest?

Pure numpy/numba, no I/O. Without labels, per rule:

- :class:`PitMonitor`: a rolling (exponentially decayed, half-life in events) histogram of the
  probability integral transforms of observations under their predictives, with a chi-square
  test of uniformity on the effective count (:class:`Uniformity`);
- :class:`CoverageMonitor`: nominal against observed coverage of each published central
  predictive interval and each published predictive quantile (:class:`CoverageRow`).

With labels ``(key, metric, ts, is_anomaly)``:

- :func:`join_labels` matches :class:`LabelEvents` to :class:`ScoredEvents` on the exact
  (key, metric, ts) triple (:class:`LabelJoin`, unmatched labels counted);
- :func:`reliability` and the online :class:`ReliabilityMonitor` give the Brier score, expected
  and maximum calibration error and the reliability table (:class:`Reliability`,
  :class:`ReliabilityBin`).

Every monitor updates in bulk through a numba kernel that applies values in order, so any
batching gives bit-identical results, and persists as a plain list of floats
(``state()`` / ``from_state()``).
"""

from __future__ import annotations

from bayestream.calibration.coverage import CoverageMonitor, CoverageRow
from bayestream.calibration.labels import LabelEvents, LabelJoin, ScoredEvents, join_labels
from bayestream.calibration.pit import PitMonitor, Uniformity
from bayestream.calibration.reliability import (
    Reliability,
    ReliabilityBin,
    ReliabilityMonitor,
    reliability,
)

__all__ = [
    "CoverageMonitor",
    "CoverageRow",
    "LabelEvents",
    "LabelJoin",
    "PitMonitor",
    "Reliability",
    "ReliabilityBin",
    "ReliabilityMonitor",
    "ScoredEvents",
    "Uniformity",
    "join_labels",
    "reliability",
]
