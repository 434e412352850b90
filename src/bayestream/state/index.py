"""Stream name -> slot, in a numba hash table, so known streams cost no Python per event.

An open-addressing table with linear probing, keyed by the 64-bit FNV-1a hash of the stream's
UTF-8 ``key``, a 0x00 byte and ``metric`` (the hash the scanner computes), holding an int64
value (the engine packs rule and slot into it). Every entry keeps its name bytes in an arena,
and a lookup compares them, so two streams whose hashes collide stay apart (``hash_bits`` below
64 keeps only the low bits of every hash: tests use it to force collisions). Deletion shifts
later entries back (no tombstones) and leaves the name's bytes in the arena as garbage; when a
new name does not fit, the live names are copied into a new arena 1.25 times the size they
need together with the new ones, so garbage lasts until the arena is full.

Memory per stream: 28 bytes per table slot (hash, value, arena offset, two 16-bit lengths: a
key or metric is at most ``MAX_NAME_BYTES`` long); the table doubles when it would be more than
half full, so it holds 2 to 4 slots per stream (56 to 112 bytes); plus the name's bytes
(``len(key) + len(metric) + 1``), at most 1.25 times over after the arena grows.
"""

from __future__ import annotations

import numpy as np

from bayestream.state._table import (
    _compact_into,
    _find,
    _find_many,
    _lookup_spans,
    _place_many,
    _rehash_into,
    _remove_at,
    fnv1a,
)
from bayestream.state.rows import MAX_NAME_BYTES

_INITIAL_ARENA = 1 << 16
_GROWTH = 1.25


class StreamIndex:
    """(key, metric) -> int64 value, with batch lookups straight from scanned byte spans."""

    def __init__(self, capacity: int = 1 << 12, hash_bits: int = 64) -> None:
        if capacity < 1 or capacity & (capacity - 1):
            raise ValueError("capacity must be a power of 2")
        self._alloc(capacity)
        self.hash_mask = np.uint64((1 << hash_bits) - 1)
        self.arena = np.empty(_INITIAL_ARENA, dtype=np.uint8)
        self.arena_used = 0
        self.garbage = 0
        self.count = 0
        self.compactions = 0

    def __len__(self) -> int:
        return self.count

    def _alloc(self, capacity: int) -> None:
        self.t_hash = np.zeros(capacity, dtype=np.uint64)
        self.t_value = np.full(capacity, -1, dtype=np.int64)
        self.t_off = np.zeros(capacity, dtype=np.int64)
        self.t_klen = np.zeros(capacity, dtype=np.uint16)  # (names of MAX_NAME_BYTES at most)
        self.t_mlen = np.zeros(capacity, dtype=np.uint16)

    @staticmethod
    def name_bytes(key: str, metric: str) -> tuple[np.ndarray, int]:
        k = key.encode("utf-8")
        return np.frombuffer(k + b"\x00" + metric.encode("utf-8"), dtype=np.uint8), len(k)

    def lookup_spans(
        self,
        buf: np.ndarray,
        rows: np.ndarray,
        hashes: np.ndarray,
        str_start: np.ndarray,
        str_end: np.ndarray,
        out: np.ndarray,
    ) -> None:
        """``out[i]`` = value of the stream named by spans of message ``i`` (or -1), i in rows."""
        _lookup_spans(
            self.t_hash,
            self.t_value,
            self.t_off,
            self.t_klen,
            self.t_mlen,
            self.arena,
            buf,
            rows,
            hashes,
            str_start,
            str_end,
            out,
            self.hash_mask,
        )

    def _hash(self, name: np.ndarray) -> np.uint64:
        h = np.uint64(fnv1a(name)) & self.hash_mask
        return h if h != 0 else np.uint64(1)

    def get(self, key: str, metric: str) -> int:
        name, klen = self.name_bytes(key, metric)
        p = _find(
            self.t_hash,
            self.t_off,
            self.t_klen,
            self.t_mlen,
            self.arena,
            name,
            klen,
            self._hash(name),
        )
        return -1 if p < 0 else int(self.t_value[p])

    def get_many(self, keys: list[str], metrics: list[str]) -> np.ndarray:
        """The value of each (key, metric), or -1, in one kernel call."""
        klen, nlen, data = _names(keys, metrics)
        out = np.empty(len(keys), dtype=np.int64)
        _find_many(
            self.t_hash,
            self.t_value,
            self.t_off,
            self.t_klen,
            self.t_mlen,
            self.arena,
            np.frombuffer(data, dtype=np.uint8),
            klen,
            nlen,
            self.hash_mask,
            out,
        )
        return out

    def insert(self, key: str, metric: str, value: int) -> None:
        """Add a stream that is not in the index."""
        self.insert_many([key], [metric], np.array([value], dtype=np.int64))

    def insert_many(self, keys: list[str], metrics: list[str], values: np.ndarray) -> None:
        """Add several streams that are not in the index, in one kernel call."""
        n = len(keys)
        if n == 0:
            return
        klen, nlen, data = _names(keys, metrics)
        longest = max(int(klen.max()), int((nlen - klen).max()) - 1)  # key, metric
        if longest > MAX_NAME_BYTES:
            raise ValueError(f"a key or metric longer than {MAX_NAME_BYTES} UTF-8 bytes")
        while 2 * (self.count + n) > self.t_hash.shape[0]:
            self._rehash(self.t_hash.shape[0] * 2)
        if self.arena_used + len(data) > self.arena.shape[0]:
            self._compact(len(data))
        start = self.arena_used
        self.arena[start : start + len(data)] = np.frombuffer(data, dtype=np.uint8)
        self.arena_used += len(data)
        _place_many(
            self.t_hash,
            self.t_value,
            self.t_off,
            self.t_klen,
            self.t_mlen,
            self.arena,
            start,
            klen,
            nlen,
            np.ascontiguousarray(values, dtype=np.int64),
            self.hash_mask,
        )
        self.count += n

    def remove(self, key: str, metric: str) -> None:
        name, klen = self.name_bytes(key, metric)
        p = _find(
            self.t_hash,
            self.t_off,
            self.t_klen,
            self.t_mlen,
            self.arena,
            name,
            klen,
            self._hash(name),
        )
        if p < 0:
            raise KeyError((key, metric))
        _remove_at(self.t_hash, self.t_value, self.t_off, self.t_klen, self.t_mlen, p)
        self.count -= 1
        self.garbage += name.shape[0]

    def nbytes(self) -> int:
        tables = (self.t_hash, self.t_value, self.t_off, self.t_klen, self.t_mlen, self.arena)
        return sum(int(a.nbytes) for a in tables)

    def _rehash(self, capacity: int) -> None:
        old = (self.t_hash, self.t_value, self.t_off, self.t_klen, self.t_mlen)
        self._alloc(capacity)
        _rehash_into(*old, self.t_hash, self.t_value, self.t_off, self.t_klen, self.t_mlen)

    def _compact(self, need: int) -> None:
        """Copy the live names into a new arena with room for ``need`` more bytes."""
        live = self.arena_used - self.garbage
        arena = np.empty(max(_INITIAL_ARENA, int(_GROWTH * (live + need))), dtype=np.uint8)
        self.arena_used = _compact_into(
            self.t_hash, self.t_off, self.t_klen, self.t_mlen, self.arena, arena
        )
        self.arena, self.garbage = arena, 0
        self.compactions += 1


def _names(keys: list[str], metrics: list[str]) -> tuple[np.ndarray, np.ndarray, bytes]:
    """Key lengths, name lengths and the names ``key 0x00 metric`` back to back."""
    n = len(keys)
    encoded = [k.encode("utf-8") for k in keys]
    klen = np.fromiter(map(len, encoded), dtype=np.int32, count=n)
    tails = {m: b"\x00" + m.encode("utf-8") for m in set(metrics)}  # metrics repeat
    names = [k + tails[m] for k, m in zip(encoded, metrics, strict=True)]
    nlen = np.fromiter(map(len, names), dtype=np.int64, count=n)
    return klen, nlen, b"".join(names)


__all__ = ["StreamIndex", "fnv1a"]
