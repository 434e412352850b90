"""Columnar per-rule state: one row per stream, arrays that grow, a free list for evictions.

Every stream matched by one rule shares that rule's family, prior and width, so a rule's
streams live in one :class:`RuleStore`: ``params`` is ``float64[capacity, width]`` and each
other column is ``float64[capacity]``. Rows are addressed by slot; the engine's
:class:`~bayestream.state.index.StreamIndex` maps a stream's (key, metric) to its slot.
Numeric state per stream is ``8 * (width + 4) + 2`` bytes, plus 8 of admission generation,
4 of free stack and 1 of scratch; the stream's name is kept as bytes in a
:class:`~bayestream.state.names.NameArena` (no Python object per stream).
"""

from __future__ import annotations

import numpy as np

from bayestream.errors import StateError
from bayestream.models._jit import kernel
from bayestream.state.names import NameArena

_INITIAL_CAPACITY = 1024


@kernel
def _distinct(slots: np.ndarray, seen: np.ndarray) -> np.ndarray:
    """The distinct values of ``slots`` in order of first appearance (``seen`` is a scratch
    mask over all slots, all False on entry and on return)."""
    out = np.empty(slots.shape[0], dtype=np.int64)
    n = 0
    for i in range(slots.shape[0]):
        s = slots[i]
        if not seen[s]:
            seen[s] = True
            out[n] = s
            n += 1
    for j in range(n):
        seen[out[j]] = False
    return out[:n]


class RuleStore:
    """The state rows of every stream of one rule."""

    __slots__ = (
        "_seen",
        "capacity",
        "count",
        "dirty",
        "free",
        "generation",
        "last_emit_ts",
        "last_ts",
        "live",
        "n_eff",
        "n_free",
        "names",
        "obs_size",
        "params",
        "prior",
        "width",
    )

    def __init__(self, prior: np.ndarray, capacity: int = _INITIAL_CAPACITY) -> None:
        self.prior = np.ascontiguousarray(prior, dtype=np.float64)
        self.width = int(self.prior.shape[0])
        self.capacity = 0
        self.params = np.empty((0, self.width))
        self.last_ts = np.empty(0)
        self.n_eff = np.empty(0)
        self.obs_size = np.empty(0)
        self.last_emit_ts = np.empty(0)
        self.dirty = np.empty(0, dtype=np.bool_)
        self.live = np.empty(0, dtype=np.bool_)
        self.count = 0
        self.names = NameArena()  # names[slot]: (key, metric) of a named slot
        # admissions per slot: a slot reused by another stream has a new generation, so
        # (slot, generation) names one stream for the life of the store
        self.generation = np.empty(0, dtype=np.int64)
        self.free = np.empty(0, dtype=np.int32)  # a stack: free[:n_free], next taken last
        self.n_free = 0
        self._grow(capacity)

    def __len__(self) -> int:
        return self.count

    def admit(self, key: str, metric: str) -> int:
        """Give a new stream a row holding the prior; return its slot."""
        return int(self.admit_many([key], [metric])[0])

    def admit_many(self, keys: list[str], metrics: list[str]) -> np.ndarray:
        """Give new streams rows holding the prior, in bulk; return their slots (low slots
        first, so admission order decides the layout)."""
        n = len(keys)
        while self.n_free < n:
            self._grow(max(self.capacity * 2, _INITIAL_CAPACITY))
        self.n_free -= n
        slots = self.free[self.n_free : self.n_free + n][::-1].astype(np.int64)  # as admit() pops
        self.params[slots] = self.prior
        for column in (self.last_ts, self.obs_size, self.last_emit_ts):
            column[slots] = np.nan
        self.n_eff[slots] = 0.0
        self.dirty[slots] = False
        self.live[slots] = True
        self.generation[slots] += 1
        self.count += n
        self.names.set_many(slots, keys, metrics)
        return slots

    def evict(self, slot: int) -> tuple[str, str]:
        """Forget a stream; its row is reused by a later admission."""
        return self.evict_many(np.array([slot], dtype=np.int64))[0]

    def evict_many(self, slots: np.ndarray) -> list[tuple[str, str]]:
        """Forget distinct tracked streams (later admissions reuse their rows, the last
        evicted first); return their names."""
        slots = np.ascontiguousarray(slots, dtype=np.int64)
        assert self.live[slots].all(), "evicting a free slot"
        names = self.names.names(slots)
        self.names.clear_many(slots)
        self.live[slots] = False
        self.count -= slots.shape[0]
        self.last_ts[slots] = np.nan
        self.dirty[slots] = False
        self.free[self.n_free : self.n_free + slots.shape[0]] = slots
        self.n_free += slots.shape[0]
        return names

    def distinct(self, slots: np.ndarray) -> np.ndarray:
        """Distinct slots in order of first appearance, in one pass (no sort)."""
        return _distinct(np.ascontiguousarray(slots, dtype=np.int64), self._seen)

    def keys_json(self, slots: np.ndarray) -> list[bytes]:
        """The JSON object ``{"key":...,"metric":...}`` of each slot's stream."""
        return [b"{" + name + b"}" for name in self.names.json_list(slots)]

    def live_slots(self) -> np.ndarray:
        """Slots of every tracked stream, ascending."""
        return np.flatnonzero(self.live).astype(np.int64)

    def idle_slots(self, before: float) -> np.ndarray:
        """Slots of tracked streams whose newest event is older than ``before``."""
        with np.errstate(invalid="ignore"):
            idle = np.flatnonzero(self.last_ts < before)
        return idle.astype(np.int64)

    def numeric_bytes_per_stream(self) -> int:
        """Bytes of numeric state one stream occupies in the columnar arrays."""
        per_row = self.params.itemsize * self.width
        for column in (self.last_ts, self.n_eff, self.obs_size, self.last_emit_ts):
            per_row += column.itemsize
        return per_row + self.dirty.itemsize

    def _grow(self, capacity: int) -> None:
        old = self.capacity
        if capacity <= old:
            return
        extra = capacity - old
        self.params = np.concatenate([self.params, np.tile(self.prior, (extra, 1))])
        self.last_ts = np.concatenate([self.last_ts, np.full(extra, np.nan)])
        self.n_eff = np.concatenate([self.n_eff, np.zeros(extra)])
        self.obs_size = np.concatenate([self.obs_size, np.full(extra, np.nan)])
        self.last_emit_ts = np.concatenate([self.last_emit_ts, np.full(extra, np.nan)])
        self.dirty = np.concatenate([self.dirty, np.zeros(extra, dtype=np.bool_)])
        self.live = np.concatenate([self.live, np.zeros(extra, dtype=np.bool_)])
        self.generation = np.concatenate([self.generation, np.zeros(extra, dtype=np.int64)])
        self._seen = np.zeros(capacity, dtype=np.bool_)
        self.names.grow(capacity)
        # the stack is taken from its top: hand out low slots first
        if capacity > np.iinfo(np.int32).max:
            raise StateError(f"a rule holds at most {np.iinfo(np.int32).max} streams")
        free = np.empty(capacity, dtype=np.int32)
        free[: self.n_free] = self.free[: self.n_free]
        free[self.n_free : self.n_free + extra] = np.arange(capacity - 1, old - 1, -1)
        self.free, self.n_free = free, self.n_free + extra
        self.capacity = capacity
