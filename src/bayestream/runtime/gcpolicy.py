"""Garbage-collector policy for long runs.

The engine builds no reference cycles in steady state, but it does allocate many short-lived
containers per batch (output records); CPython's cyclic collector then runs thousands of
times per second and rescans everything that survived. While a runner loops we freeze what
exists at start (configuration, compiled kernels), switch automatic collection off and collect
the young generations ourselves every ``every`` batches: measured on the Normal-Gamma benchmark
this is worth about 20 % of throughput, with flat memory.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


class BatchCollector:
    """Collects young generations every ``every`` batches, and a full collection rarely."""

    def __init__(self, every: int = 50, full_every: int = 20) -> None:
        self.every = every
        self.full_every = full_every
        self._batches = 0

    def after_batch(self) -> None:
        self._batches += 1
        if self._batches % self.every == 0:
            full = self._batches % (self.every * self.full_every) == 0
            gc.collect(2 if full else 1)


@contextmanager
def batch_gc(every: int = 50) -> Iterator[BatchCollector]:
    """Run a block with automatic GC off, collecting through the yielded collector."""
    was_enabled = gc.isenabled()
    gc.freeze()
    gc.disable()
    try:
        yield BatchCollector(every)
    finally:
        gc.unfreeze()
        if was_enabled:
            gc.enable()


__all__ = ["BatchCollector", "batch_gc"]
