"""A histogram that takes a whole array of observations at once.

``prometheus_client.Histogram.observe`` costs about a microsecond per value (a lock and a bucket
search each time), which is ~10 ms for a batch of 10,000 events. The per-event latency histogram
is fed a batch at a time instead: one ``searchsorted`` and one ``bincount`` under a single lock,
exposed through the public custom-collector API so that the exposition is identical to a native
histogram's (``_bucket{le=...}``, ``_count``, ``_sum``).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence

import numpy as np
import numpy.typing as npt
from prometheus_client.metrics_core import HistogramMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry
from prometheus_client.utils import floatToGoString


class BulkHistogram(Collector):
    """An unlabelled histogram with a vectorised ``observe_many``.

    Parameters
    ----------
    name
        Full metric name, ending in its base unit (``..._seconds``).
    documentation
        The ``# HELP`` text.
    buckets
        Finite, strictly increasing upper bounds; ``+Inf`` is added.
    registry
        Where to register.
    """

    def __init__(
        self,
        name: str,
        documentation: str,
        buckets: Sequence[float],
        registry: CollectorRegistry,
    ) -> None:
        bounds = np.asarray(buckets, dtype=np.float64)
        if bounds.ndim != 1 or bounds.size == 0 or not np.all(np.isfinite(bounds)):
            raise ValueError("buckets must be a non-empty sequence of finite bounds")
        if np.any(np.diff(bounds) <= 0):
            raise ValueError("buckets must be strictly increasing")
        self._name = name
        self._doc = documentation
        self._bounds = bounds
        # the ``le`` labels exactly as prometheus_client's own Histogram writes them
        go = [floatToGoString(b) for b in bounds.tolist()]  # type: ignore[no-untyped-call]
        self._labels: list[str] = [*go, "+Inf"]
        self._counts = np.zeros(bounds.size + 1, dtype=np.int64)  # per bucket, not cumulative
        self._sum = 0.0
        self._lock = threading.Lock()
        registry.register(self)

    def observe_many(self, values: npt.ArrayLike | Iterable[float]) -> None:
        """Record each value (a scalar, sequence, array or iterable of seconds).

        NaN is skipped; a negative value (event time ahead of the wall clock) counts as zero.
        """
        if isinstance(values, Iterable) and not isinstance(values, np.ndarray | Sequence):
            x = np.fromiter(values, dtype=np.float64)  # a generator, a set, a dict view ...
        else:
            x = np.asarray(values, dtype=np.float64).ravel()
        x = x[~np.isnan(x)]
        if x.size == 0:
            return
        x = np.maximum(x, 0.0)  # a histogram's _sum must never decrease (rate() on it)
        # value <= bound[i] goes to bucket i: the first bound not below it
        index = np.searchsorted(self._bounds, x, side="left")
        counts = np.bincount(index, minlength=len(self._labels))
        total = float(x.sum())
        with self._lock:
            self._counts += counts
            self._sum += total

    def describe(self) -> Iterable[Metric]:
        return [HistogramMetricFamily(self._name, self._doc)]

    def collect(self) -> Iterable[Metric]:
        with self._lock:
            cumulative = np.cumsum(self._counts).tolist()
            total = self._sum
        family = HistogramMetricFamily(
            self._name,
            self._doc,
            buckets=list(zip(self._labels, (float(c) for c in cumulative), strict=True)),
            sum_value=total,
        )
        return [family]


__all__ = ["BulkHistogram"]
