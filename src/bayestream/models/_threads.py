"""Kernel calls split across threads.

The numba kernels release the GIL (:mod:`bayestream.models._jit`), so one call cut into
chunks runs on several cores at once. Only work whose chunks are independent is split: the
summaries and JSON lines of distinct streams (contiguous row ranges), and the sequential
update, whose events are split by stream (``slot % threads``) so that each stream's events
still run in order on one thread. Every chunk writes its own rows, so the outputs are the
same bytes for any number of threads.

``[engine] threads`` sets the number (default: the cores this process may run on, at most
:data:`AUTO_MAX`); 1 runs everything on the calling thread.
"""

from __future__ import annotations

import functools
import itertools
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import numpy as np

T = TypeVar("T")

AUTO_MAX = 4
# Rows per chunk at least: handing a chunk to a thread and waiting for it costs about 35 us
# (measured on 2 cores), a chunk of 1024 rows 0.1 ms (the scan) to 1 ms (the summaries).
MIN_ROWS = 1024


def auto_threads() -> int:
    """The default number of threads: the cores this process may run on, at most AUTO_MAX."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, AUTO_MAX))


class Workers:
    """Runs a list of calls, all but the last on a pool, the last on the calling thread."""

    def __init__(self, threads: int) -> None:
        self.threads = threads
        self._pool = (
            ThreadPoolExecutor(threads - 1, thread_name_prefix="bayestream-kernel")
            if threads > 1
            else None
        )

    def ranges(self, n: int) -> list[tuple[int, int]]:
        """Contiguous ``[a, b)`` ranges covering ``range(n)``, one per thread (one range when
        ``n`` is below MIN_ROWS per extra thread)."""
        parts = min(self.threads, max(1, n // MIN_ROWS))
        bounds = [n * j // parts for j in range(parts + 1)]
        return list(itertools.pairwise(bounds))

    def by_stream(self, slots: np.ndarray) -> list[np.ndarray]:
        """Positions into ``slots`` grouped by ``slot % threads`` (in order within a group):
        every stream's events land in one group. One group (all positions) when ``slots`` is
        below MIN_ROWS per extra thread."""
        parts = min(self.threads, max(1, slots.shape[0] // MIN_ROWS))
        if parts == 1:
            return [np.arange(slots.shape[0])]
        group = slots % parts
        return [np.flatnonzero(group == g) for g in range(parts)]

    def run(self, calls: Sequence[Callable[[], T]]) -> list[T]:
        """The results of ``calls``, in order; the first exception raised is re-raised after
        every call has ended (no chunk is left running)."""
        if self._pool is None or len(calls) == 1:
            return [call() for call in calls]
        futures = [self._pool.submit(call) for call in calls[:-1]]
        try:
            last = calls[-1]()
        finally:
            done = [f.exception() for f in futures]  # waits for each
        for error in done:
            if error is not None:
                raise error
        return [f.result() for f in futures] + [last]


SERIAL = Workers(1)
"""Every call on the calling thread."""


@functools.cache
def workers(threads: int) -> Workers:
    """The pool for ``threads`` threads, shared by every engine of the process (one Kafka
    runner has an engine per partition, and they run one at a time)."""
    return Workers(threads)


__all__ = ["AUTO_MAX", "MIN_ROWS", "SERIAL", "Workers", "auto_threads", "workers"]
