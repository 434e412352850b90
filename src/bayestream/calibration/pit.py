r"""Rolling histogram of probability integral transforms (PIT), and a test of its uniformity.

If an observation ``x`` has the predictive CDF ``F``, its PIT is ``u = F(x)``. When the
predictive is the distribution ``x`` comes from, ``u ~ Uniform(0, 1)``; for a Bayesian model
that is true, the PITs of a stream's successive observations under their one-step-ahead
predictives are moreover independent (Dawid's prequential principle). A PIT histogram reads:

- flat: calibrated;
- U-shaped (mass in the outer bins): the predictive is too narrow, the model overconfident;
- hump-shaped: the predictive is too wide;
- sloped: the predictive is biased (too low when mass piles up near 1).

For a discrete predictive ``F(x)`` is not uniform even when the model is right; feed the
randomised PIT ``u = F(x-) + v P(X = x)`` with ``v ~ Uniform(0, 1)`` (Czado, Gneiting and
Held 2009), or accept that the mid-PIT ``F(x-) + P(X = x) / 2`` piles up in the middle bins.

The histogram has ``B`` equal bins ``[b / B, (b + 1) / B)`` (the last one closed), and its counts
are decayed per observation as in :mod:`bayestream.calibration._rolling`:
``c_b <- d c_b + [u in bin b]``, with the total weight ``W = sum_b c_b`` and the sum of squared
weights ``S``. NaN values are skipped entirely: they neither count nor decay.

Uniformity. With the weighted bin proportions ``p_b = c_b / W`` and the effective count
``n_eff = W ** 2 / S``,

    X2 = n_eff * B * sum_b (p_b - 1 / B) ** 2.

For iid PITs ``Cov(p) = (diag(pi) - pi pi^T) / n_eff`` exactly, so under uniformity
``E[X2] = B - 1`` for any weights, and ``X2`` tends to chi-square with ``B - 1`` degrees of
freedom as ``n_eff`` grows. Without forgetting it is Pearson's statistic. Using ``W`` in place of
``n_eff`` would understate the statistic about twofold in the steady state, since
``n_eff ~ 2 W`` there.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats

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

# --- batch kernel ---------------------------------------------------------------------------


@kernel
def accumulate_histogram(
    pit: np.ndarray, d: float, counts: np.ndarray, moments: np.ndarray
) -> None:
    """Apply PIT values in order: decay every bin by ``d``, add 1 to the value's bin.

    ``counts`` is ``float64[B]`` and ``moments`` is ``[W, S]``, both updated in place; NaN
    values are skipped. A value of exactly 1 falls in the last bin.
    """
    n_bins = counts.shape[0]
    for i in range(pit.shape[0]):
        u = pit[i]
        if math.isnan(u):
            continue
        b = int(u * n_bins)
        if b >= n_bins:
            b = n_bins - 1
        if d != 1.0:
            for j in range(n_bins):
                counts[j] *= d
        counts[b] += 1.0
        advance(moments, d)


# --- public wrapper -------------------------------------------------------------------------


@dataclass(frozen=True)
class Uniformity:
    """Chi-square distance of a PIT histogram from the uniform one."""

    statistic: float  # X2 above; NaN when nothing has been seen
    dof: int  # B - 1
    p_value: float  # P(chi2_dof >= statistic); NaN when nothing has been seen
    effective_count: float  # n_eff = W ** 2 / S


class PitMonitor:
    """Rolling PIT histogram of one rule (all its streams together).

    Parameters
    ----------
    bins
        Number ``B`` of equal bins over [0, 1]; at least 2.
    half_life
        Half-life of the weights, in (valid) observations; ``math.inf`` keeps plain counts.
    """

    def __init__(self, bins: int = 10, half_life: float = 10_000.0) -> None:
        if int(bins) != bins or bins < 2:
            raise ValueError(f"bins must be an integer >= 2, got {bins!r}")
        self._decay = decay_factor(half_life)
        self._half_life = float(half_life)
        self._counts = np.zeros(int(bins))
        self._moments = np.zeros(2)  # [W, S]

    @property
    def bins(self) -> int:
        return int(self._counts.shape[0])

    @property
    def half_life(self) -> float:
        return self._half_life

    @property
    def edges(self) -> np.ndarray:
        """The ``B + 1`` bin edges ``b / B``."""
        return np.linspace(0.0, 1.0, self.bins + 1)

    @property
    def counts(self) -> np.ndarray:
        """The decayed count of each bin (a copy)."""
        return self._counts.copy()

    @property
    def total_weight(self) -> float:
        """``W``: the decayed number of observations."""
        return float(self._moments[0])

    @property
    def effective_count(self) -> float:
        """Kish's ``n_eff = W ** 2 / S``: the sample size the histogram is worth."""
        return effective_count(float(self._moments[0]), float(self._moments[1]))

    def update(self, pit: ArrayLike) -> None:
        """Add PIT values (in order; NaN skipped; each value must lie in [0, 1])."""
        accumulate_histogram(as_pit(pit), self._decay, self._counts, self._moments)

    def density(self) -> np.ndarray:
        """Histogram as a density over [0, 1]: ``c_b B / W`` (ones if uniform; NaN if empty)."""
        w = self.total_weight
        if w <= 0.0:
            return np.full(self.bins, np.nan)
        return self._counts * (self.bins / w)

    def uniformity(self) -> Uniformity:
        """Chi-square distance from uniform on the effective count, and its p-value."""
        n_eff = self.effective_count
        dof = self.bins - 1
        w = self.total_weight
        if n_eff <= 0.0 or w <= 0.0:
            return Uniformity(math.nan, dof, math.nan, n_eff)
        share = self._counts / w
        statistic = float(n_eff * self.bins * np.sum((share - 1.0 / self.bins) ** 2))
        return Uniformity(statistic, dof, float(stats.chi2.sf(statistic, dof)), n_eff)

    def state(self) -> list[float]:
        """``[version, B, half_life, W, S, c_0, ..., c_{B-1}]`` as plain floats."""
        head = [STATE_VERSION, float(self.bins), self._half_life]
        return head + [float(v) for v in self._moments] + [float(v) for v in self._counts]

    @classmethod
    def from_state(cls, state: Sequence[float]) -> PitMonitor:
        """Rebuild a monitor from :meth:`state`; :class:`StateError` if the list is not one."""
        values = [float(v) for v in state]
        check_state(values, 5, "PIT histogram")
        bins = values[1]
        if bins != int(bins) or bins < 2 or len(values) != 5 + int(bins):
            raise StateError(f"PIT histogram state of length {len(values)} for {bins:g} bins")
        try:
            monitor = cls(int(bins), values[2])
        except ValueError as exc:
            raise StateError(f"PIT histogram state: {exc}") from exc
        monitor._moments[:] = values[3:5]
        monitor._counts[:] = values[5:]
        return monitor


__all__ = ["PitMonitor", "Uniformity", "accumulate_histogram"]
