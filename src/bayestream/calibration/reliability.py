r"""Calibration of anomaly probabilities against labels: Brier score, ECE, MCE, reliability table.

Given ``n`` pairs of a forecast probability ``p_i`` and an outcome ``y_i in {0, 1}``:

    Brier = (1 / n) sum_i (p_i - y_i) ** 2

The probabilities are put in ``B`` equal-width bins ``[b / B, (b + 1) / B)`` (the last one
closed). For a non-empty bin with ``n_b`` pairs, the mean probability ``pbar_b`` and the observed
frequency ``ybar_b`` give the gap ``g_b = |pbar_b - ybar_b|``, and

    ECE = sum_b (n_b / n) g_b          (expected calibration error)
    MCE = max_{b : n_b > 0} g_b        (maximum calibration error)

For calibrated probabilities ``E[ybar_b | p] = pbar_b`` and
``Var(ybar_b | p) = sum_{i in b} p_i (1 - p_i) / n_b ** 2``, so the gaps are pure noise of that
size; a reliability table is what a reliability diagram plots.

Everything is computed from four sums per bin (count, sum of ``p``, sum of ``y``, sum of
``(p - y) ** 2``), accumulated by one kernel in order, so :class:`ReliabilityMonitor` gives the
figures of :func:`reliability` over all pairs seen, bit for bit, whatever the batches. Pairs whose
probability is NaN (no score) are skipped; the sums are not decayed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from bayestream.calibration._rolling import STATE_VERSION, check_state
from bayestream.errors import StateError
from bayestream.models._jit import kernel

COUNT, SUM_P, SUM_Y, SUM_SQ = 0, 1, 2, 3

# --- batch kernel ---------------------------------------------------------------------------


@kernel
def accumulate_bins(probability: np.ndarray, label: np.ndarray, sums: np.ndarray) -> None:
    """Add pairs in order to ``sums[B, 4]`` = per bin (count, sum p, sum y, sum (p - y)^2).

    Pairs whose probability is NaN are skipped; a probability of exactly 1 falls in the last bin.
    """
    n_bins = sums.shape[0]
    for i in range(probability.shape[0]):
        p = probability[i]
        if math.isnan(p):
            continue
        y = label[i]
        b = int(p * n_bins)
        if b >= n_bins:
            b = n_bins - 1
        sums[b, 0] += 1.0
        sums[b, 1] += p
        sums[b, 2] += y
        sums[b, 3] += (p - y) * (p - y)


# --- the figures from the sums --------------------------------------------------------------


@dataclass(frozen=True)
class ReliabilityBin:
    """One row of a reliability table."""

    lower: float
    upper: float
    count: int
    mean_probability: float  # NaN for an empty bin
    observed_frequency: float  # NaN for an empty bin


@dataclass(frozen=True)
class Reliability:
    """Brier score, expected and maximum calibration error, and the reliability table."""

    count: int
    brier: float  # NaN when count == 0
    ece: float  # NaN when count == 0
    mce: float  # NaN when count == 0
    table: tuple[ReliabilityBin, ...]


def _figures(sums: np.ndarray) -> Reliability:
    n_bins = sums.shape[0]
    n = float(sums[:, COUNT].sum())
    rows = []
    ece = 0.0
    mce = -math.inf
    for b in range(n_bins):
        count, sum_p, sum_y = (float(v) for v in sums[b, :SUM_SQ])
        mean_p = sum_p / count if count > 0.0 else math.nan
        freq = sum_y / count if count > 0.0 else math.nan
        if count > 0.0:
            gap = abs(mean_p - freq)
            ece += count / n * gap
            mce = max(mce, gap)
        rows.append(ReliabilityBin(b / n_bins, (b + 1) / n_bins, int(count), mean_p, freq))
    if n == 0.0:
        return Reliability(0, math.nan, math.nan, math.nan, tuple(rows))
    brier = float(sums[:, SUM_SQ].sum()) / n
    return Reliability(int(n), brier, ece, mce, tuple(rows))


def _pairs(probability: ArrayLike, label: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    p = np.ascontiguousarray(probability, dtype=np.float64)
    y = np.ascontiguousarray(label, dtype=np.float64)
    if p.ndim != 1 or p.shape != y.shape:
        raise ValueError(
            f"probability and label must be vectors of one length: {p.shape}, {y.shape}"
        )
    bad_p = ~np.isnan(p) & ((p < 0.0) | (p > 1.0))
    if bad_p.any():
        raise ValueError(f"probabilities must lie in [0, 1] (or be NaN), got {p[bad_p][0]!r}")
    bad_y = (y != 0.0) & (y != 1.0)
    if bad_y.any():
        raise ValueError(f"labels must be 0 or 1, got {y[bad_y][0]!r}")
    return p, y


def _check_bins(bins: int) -> int:
    if int(bins) != bins or bins < 1:
        raise ValueError(f"bins must be a positive integer, got {bins!r}")
    return int(bins)


def reliability(probability: ArrayLike, label: ArrayLike, bins: int = 10) -> Reliability:
    """Brier score, ECE, MCE and reliability table of probabilities against 0/1 labels.

    Parameters
    ----------
    probability
        Forecast probabilities in [0, 1]; NaN entries (and their labels) are skipped.
    label
        Outcomes, 0 or 1 (bool, int or float), same length.
    bins
        Number of equal-width bins over [0, 1].
    """
    sums = np.zeros((_check_bins(bins), 4))
    accumulate_bins(*_pairs(probability, label), sums)
    return _figures(sums)


class ReliabilityMonitor:
    """The figures of :func:`reliability` over every pair seen so far, updated batch by batch."""

    def __init__(self, bins: int = 10) -> None:
        self._sums = np.zeros((_check_bins(bins), 4))

    @property
    def bins(self) -> int:
        return int(self._sums.shape[0])

    @property
    def count(self) -> int:
        return int(self._sums[:, COUNT].sum())

    def update(self, probability: ArrayLike, label: ArrayLike) -> None:
        """Add pairs (NaN probabilities skipped)."""
        accumulate_bins(*_pairs(probability, label), self._sums)

    def report(self) -> Reliability:
        return _figures(self._sums)

    def state(self) -> list[float]:
        """``[version, B, then per bin: count, sum p, sum y, sum (p - y)^2]`` as plain floats."""
        return [STATE_VERSION, float(self.bins), *(float(v) for v in self._sums.ravel())]

    @classmethod
    def from_state(cls, state: Sequence[float]) -> ReliabilityMonitor:
        """Rebuild a monitor from :meth:`state`; :class:`StateError` if the list is not one."""
        values = [float(v) for v in state]
        check_state(values, 2, "reliability")
        bins = values[1]
        if bins != int(bins) or bins < 1 or len(values) != 2 + 4 * int(bins):
            raise StateError(f"reliability state of length {len(values)} for {bins:g} bins")
        monitor = cls(int(bins))
        monitor._sums[:] = np.array(values[2:]).reshape(int(bins), 4)
        return monitor


__all__ = ["Reliability", "ReliabilityBin", "ReliabilityMonitor", "accumulate_bins", "reliability"]
