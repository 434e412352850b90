r"""Coverage of published predictive intervals and quantiles, read off PIT values.

A predictive quantile ``Q(q)`` is published for each level ``q``; an observation ``x`` with PIT
``u = F(x)`` is at or below it iff ``u <= q`` (for a continuous predictive). A central interval
``[Q(q), Q(1 - q)]`` of level ``L = 1 - 2 q`` holds ``x`` iff ``q <= u <= 1 - q``, i.e.
``(1 - L) / 2 <= u <= (1 + L) / 2``. So every check is a PIT interval ``[lo, hi]``, both ends
inclusive, and its nominal coverage is ``hi - lo`` (``q`` for a quantile, ``L`` for an interval).

Central intervals come from the published quantiles that pair up (``q`` and ``1 - q``, e.g.
0.05 and 0.95 give the 90% interval), plus any interval levels published otherwise (e.g. the
predictive interval on anomaly records).

The hit indicators are decayed per observation as in :mod:`bayestream.calibration._rolling`:
``h_k <- d h_k + [lo_k <= u <= hi_k]``. The observed coverage is ``h_k / W``; under calibration
its standard error is ``sqrt(L (1 - L) / n_eff)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

from bayestream.calibration._rolling import (
    STATE_VERSION,
    advance,
    as_pit,
    check_state,
    decay_factor,
    effective_count,
)
from bayestream.errors import StateError
from bayestream.models._jit import kernel

_PAIR_TOLERANCE = 1e-9

# --- batch kernel ---------------------------------------------------------------------------


@kernel
def accumulate_coverage(
    pit: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
    d: float,
    hits: np.ndarray,
    moments: np.ndarray,
) -> None:
    """Apply PIT values in order: ``hits[k] <- d hits[k] + [lower[k] <= u <= upper[k]]``.

    ``moments`` is ``[W, S]``; both arrays are updated in place; NaN values are skipped.
    """
    for i in range(pit.shape[0]):
        u = pit[i]
        if math.isnan(u):
            continue
        for k in range(hits.shape[0]):
            inside = 1.0 if lower[k] <= u and u <= upper[k] else 0.0
            hits[k] = hits[k] * d + inside
        advance(moments, d)


# --- public wrapper -------------------------------------------------------------------------


@dataclass(frozen=True)
class CoverageRow:
    """Nominal against observed coverage of one published interval or quantile."""

    kind: Literal["interval", "quantile"]
    level: float  # L of a central interval, q of a quantile: the nominal coverage
    lower: float  # the PIT interval [lower, upper] checked (both ends inclusive)
    upper: float
    observed: float  # decayed fraction of observations inside; NaN when nothing has been seen
    stderr: float  # sqrt(level (1 - level) / n_eff): its standard error under calibration


def _check_levels(values: Sequence[float], name: str) -> tuple[float, ...]:
    out = tuple(sorted({float(v) for v in values}))
    for v in out:
        if not 0.0 < v < 1.0:
            raise ValueError(f"{name} must lie strictly between 0 and 1, got {v!r}")
    return out


class CoverageMonitor:
    """Rolling coverage of one rule's published predictive quantiles and central intervals.

    Parameters
    ----------
    quantiles
        Published predictive quantile levels ``q``; each is checked one-sided (``u <= q``), and
        pairs ``q < 1/2``, ``1 - q`` also as the central interval of level ``1 - 2 q``.
    interval_levels
        Further central interval levels ``L``, checked as ``(1 - L)/2 <= u <= (1 + L)/2``.
    half_life
        Half-life of the weights, in (valid) observations; ``math.inf`` keeps plain counts.

    With neither quantiles nor interval levels there is nothing to check: :meth:`report` is
    empty.
    """

    def __init__(
        self,
        quantiles: Sequence[float] = (),
        *,
        interval_levels: Sequence[float] = (),
        half_life: float = 10_000.0,
    ) -> None:
        self._quantiles = _check_levels(quantiles, "quantiles")
        self._interval_levels = _check_levels(interval_levels, "interval_levels")
        self._decay = decay_factor(half_life)
        self._half_life = float(half_life)
        intervals: dict[float, tuple[float, float]] = {}
        for q in self._quantiles:
            pair = [p for p in self._quantiles if abs(p + q - 1.0) <= _PAIR_TOLERANCE]
            if q < 0.5 and pair:
                intervals[1.0 - 2.0 * q] = (q, pair[0])
        for level in self._interval_levels:
            if all(abs(level - known) > _PAIR_TOLERANCE for known in intervals):
                intervals[level] = ((1.0 - level) / 2.0, (1.0 + level) / 2.0)
        rules: list[tuple[Literal["interval", "quantile"], float, float, float]] = [
            ("interval", level, lo, hi) for level, (lo, hi) in sorted(intervals.items())
        ]
        rules += [("quantile", q, 0.0, q) for q in self._quantiles]
        # No levels (a rule with predictive_quantiles = []) is a monitor with no checks: it
        # counts observations and reports no rows.
        self._rules = tuple(rules)
        self._lower = np.array([r[2] for r in rules])
        self._upper = np.array([r[3] for r in rules])
        self._hits = np.zeros(len(rules))
        self._moments = np.zeros(2)  # [W, S]

    @property
    def half_life(self) -> float:
        return self._half_life

    @property
    def nominal(self) -> np.ndarray:
        """Nominal coverage of each check, in :meth:`report` order."""
        return np.array([r[1] for r in self._rules])

    @property
    def observed(self) -> np.ndarray:
        """Observed (decayed) coverage of each check, in :meth:`report` order; NaN if empty."""
        w = self.total_weight
        return self._hits / w if w > 0.0 else np.full(len(self._rules), np.nan)

    @property
    def total_weight(self) -> float:
        return float(self._moments[0])

    @property
    def effective_count(self) -> float:
        return effective_count(float(self._moments[0]), float(self._moments[1]))

    def update(self, pit: ArrayLike) -> None:
        """Add PIT values (in order; NaN skipped; each value must lie in [0, 1])."""
        u = as_pit(pit)
        accumulate_coverage(u, self._lower, self._upper, self._decay, self._hits, self._moments)

    def report(self) -> list[CoverageRow]:
        """One row per check: central intervals by level, then quantiles by level."""
        n_eff = self.effective_count
        observed = self.observed
        rows = []
        for k, (kind, level, lo, hi) in enumerate(self._rules):
            se = math.sqrt(level * (1.0 - level) / n_eff) if n_eff > 0.0 else math.nan
            rows.append(CoverageRow(kind, level, lo, hi, float(observed[k]), se))
        return rows

    def state(self) -> list[float]:
        """``[version, half_life, n_q, *quantiles, n_L, *interval_levels, W, S, *hits]``."""
        return [
            STATE_VERSION,
            self._half_life,
            float(len(self._quantiles)),
            *self._quantiles,
            float(len(self._interval_levels)),
            *self._interval_levels,
            *(float(v) for v in self._moments),
            *(float(v) for v in self._hits),
        ]

    @classmethod
    def from_state(cls, state: Sequence[float]) -> CoverageMonitor:
        """Rebuild a monitor from :meth:`state`; :class:`StateError` if the list is not one."""
        values = [float(v) for v in state]
        check_state(values, 4, "coverage")
        try:
            n_q = int(values[2])
            quantiles = values[3 : 3 + n_q]
            n_levels = int(values[3 + n_q])
            levels = values[4 + n_q : 4 + n_q + n_levels]
            monitor = cls(quantiles, interval_levels=levels, half_life=values[1])
        except (ValueError, IndexError) as exc:
            raise StateError(f"coverage state: {exc}") from exc
        rest = values[4 + n_q + n_levels :]
        if len(rest) != 2 + len(monitor._rules):
            raise StateError(f"coverage state has {len(rest)} values after its levels")
        monitor._moments[:] = rest[:2]
        monitor._hits[:] = rest[2:]
        return monitor


__all__ = ["CoverageMonitor", "CoverageRow", "accumulate_coverage"]
