"""Stream name -> slot, in a numba hash table, so known streams cost no Python per event.

An open-addressing table with linear probing, keyed by the 64-bit FNV-1a hash of the stream's
UTF-8 ``key``, a 0x00 byte and ``metric`` (the hash the scanner computes), holding an int64
value (the engine packs rule and slot into it). Every entry keeps its name bytes in an arena,
and a lookup compares them, so two streams whose hashes collide stay apart (``hash_bits`` below
64 keeps only the low bits of every hash: tests use it to force collisions). Deletion shifts
later entries back (no tombstones) and leaves the name's bytes in the arena as garbage; when a
new name does not fit, the live names are copied into a new arena 1.5 times the size they
need together with the new ones, so garbage lasts until the arena is full.

Memory per stream: 32 bytes per table slot (hash, value, arena offset, two lengths); the table
doubles when it would be more than half full, so it holds 2 to 4 slots per stream (64 to 128
bytes); plus the name's bytes (``len(key) + len(metric) + 1``), at most 1.5 times over after
the arena grows.
"""

from __future__ import annotations

import numpy as np

from bayestream.models._jit import ZERO, kernel

_INITIAL_ARENA = 1 << 16
_GROWTH = 1.5


@kernel
def fnv1a(data: np.ndarray) -> np.uint64:
    """FNV-1a 64 of a uint8 array (0 is mapped to 1: the table uses 0 for empty)."""
    h = np.uint64(0xCBF29CE484222325)
    for j in range(data.shape[0]):
        h = (h ^ np.uint64(data[j])) * np.uint64(0x100000001B3)
    return h if h != 0 else np.uint64(1)


@kernel
def _same(
    buf: np.ndarray,
    ks: int,
    kl: int,
    ms: int,
    ml: int,
    arena: np.ndarray,
    off: int,
    akl: int,
    aml: int,
) -> bool:
    if kl != akl or ml != aml:
        return False
    for j in range(kl):
        if buf[ks + j] != arena[off + j]:
            return False
    for j in range(ml):
        if buf[ms + j] != arena[off + kl + 1 + j]:
            return False
    return True


@kernel
def _lookup_spans(
    t_hash: np.ndarray,
    t_value: np.ndarray,
    t_off: np.ndarray,
    t_klen: np.ndarray,
    t_mlen: np.ndarray,
    arena: np.ndarray,
    buf: np.ndarray,
    rows: np.ndarray,
    hashes: np.ndarray,
    str_start: np.ndarray,
    str_end: np.ndarray,
    out: np.ndarray,
    hash_mask: np.uint64,
) -> None:
    mask = t_hash.shape[0] - 1
    for r in range(rows.shape[0]):
        i = rows[r]
        h = hashes[i] & hash_mask
        if h == 0:
            h = np.uint64(1)
        ks, kl = str_start[i, 0], str_end[i, 0] - str_start[i, 0]
        ms, ml = str_start[i, 1], str_end[i, 1] - str_start[i, 1]
        p = np.int64(h & np.uint64(mask))
        out[i] = -1
        while t_hash[p] != 0:
            if t_hash[p] == h and _same(buf, ks, kl, ms, ml, arena, t_off[p], t_klen[p], t_mlen[p]):
                out[i] = t_value[p]
                break
            p = (p + 1) & mask


@kernel
def _find(
    t_hash: np.ndarray,
    t_off: np.ndarray,
    t_klen: np.ndarray,
    t_mlen: np.ndarray,
    arena: np.ndarray,
    name: np.ndarray,
    klen: int,
    h: np.uint64,
) -> int:
    """Table position of ``name`` (key 0x00 metric bytes), or -1."""
    mask = t_hash.shape[0] - 1
    p = np.int64(h & np.uint64(mask))
    ml = name.shape[0] - klen - 1
    while t_hash[p] != 0:
        if t_hash[p] == h and _same(
            name, ZERO, klen, klen + 1, ml, arena, t_off[p], t_klen[p], t_mlen[p]
        ):
            return int(p)
        p = (p + 1) & mask
    return -1


@kernel
def _find_many(
    t_hash: np.ndarray,
    t_value: np.ndarray,
    t_off: np.ndarray,
    t_klen: np.ndarray,
    t_mlen: np.ndarray,
    arena: np.ndarray,
    names: np.ndarray,
    klen: np.ndarray,
    nlen: np.ndarray,
    hash_mask: np.uint64,
    out: np.ndarray,
) -> None:
    """``out[i]`` = value of name i (laid out as in ``_place_many``), or -1."""
    off = 0
    for i in range(klen.shape[0]):
        h = np.uint64(0xCBF29CE484222325)
        for j in range(off, off + nlen[i]):
            h = (h ^ np.uint64(names[j])) * np.uint64(0x100000001B3)
        h &= hash_mask
        if h == 0:
            h = np.uint64(1)
        p = _find(t_hash, t_off, t_klen, t_mlen, arena, names[off : off + nlen[i]], klen[i], h)
        out[i] = -1 if p < 0 else t_value[p]
        off += nlen[i]


@kernel
def _place(
    t_hash: np.ndarray,
    t_value: np.ndarray,
    t_off: np.ndarray,
    t_klen: np.ndarray,
    t_mlen: np.ndarray,
    h: np.uint64,
    value: int,
    off: int,
    klen: int,
    mlen: int,
) -> None:
    mask = t_hash.shape[0] - 1
    p = np.int64(h & np.uint64(mask))
    while t_hash[p] != 0:
        p = (p + 1) & mask
    t_hash[p] = h
    t_value[p] = value
    t_off[p] = off
    t_klen[p] = klen
    t_mlen[p] = mlen


@kernel
def _place_many(
    t_hash: np.ndarray,
    t_value: np.ndarray,
    t_off: np.ndarray,
    t_klen: np.ndarray,
    t_mlen: np.ndarray,
    arena: np.ndarray,
    start: int,
    klen: np.ndarray,
    nlen: np.ndarray,
    values: np.ndarray,
    hash_mask: np.uint64,
) -> None:
    """Place names laid out back to back from ``arena[start]`` (``key 0x00 metric``, name i
    ``nlen[i]`` bytes long, its key ``klen[i]``) with their values."""
    off = start
    for i in range(klen.shape[0]):
        h = np.uint64(0xCBF29CE484222325)
        for j in range(off, off + nlen[i]):
            h = (h ^ np.uint64(arena[j])) * np.uint64(0x100000001B3)
        h &= hash_mask
        if h == 0:
            h = np.uint64(1)
        _place(
            t_hash,
            t_value,
            t_off,
            t_klen,
            t_mlen,
            h,
            values[i],
            off,
            klen[i],
            nlen[i] - klen[i] - 1,
        )
        off += nlen[i]


@kernel
def _rehash_into(
    old_hash: np.ndarray,
    old_value: np.ndarray,
    old_off: np.ndarray,
    old_klen: np.ndarray,
    old_mlen: np.ndarray,
    t_hash: np.ndarray,
    t_value: np.ndarray,
    t_off: np.ndarray,
    t_klen: np.ndarray,
    t_mlen: np.ndarray,
) -> None:
    for p in range(old_hash.shape[0]):
        if old_hash[p] != 0:
            _place(
                t_hash,
                t_value,
                t_off,
                t_klen,
                t_mlen,
                old_hash[p],
                old_value[p],
                old_off[p],
                old_klen[p],
                old_mlen[p],
            )


@kernel
def _compact_into(
    t_hash: np.ndarray,
    t_off: np.ndarray,
    t_klen: np.ndarray,
    t_mlen: np.ndarray,
    arena: np.ndarray,
    new_arena: np.ndarray,
) -> int:
    off = 0
    for p in range(t_hash.shape[0]):
        if t_hash[p] != 0:
            n = t_klen[p] + t_mlen[p] + 1
            start = t_off[p]
            for j in range(n):
                new_arena[off + j] = arena[start + j]
            t_off[p] = off
            off += n
    return off


@kernel
def _remove_at(
    t_hash: np.ndarray,
    t_value: np.ndarray,
    t_off: np.ndarray,
    t_klen: np.ndarray,
    t_mlen: np.ndarray,
    p: int,
) -> None:
    """Backward-shift deletion for linear probing."""
    mask = t_hash.shape[0] - 1
    hole = p
    q = (p + 1) & mask
    while t_hash[q] != 0:
        home = np.int64(t_hash[q] & np.uint64(mask))
        # the entry at q may fill the hole if the hole lies on its probe path home..q
        if ((q - home) & mask) >= ((q - hole) & mask):
            t_hash[hole] = t_hash[q]
            t_value[hole] = t_value[q]
            t_off[hole] = t_off[q]
            t_klen[hole] = t_klen[q]
            t_mlen[hole] = t_mlen[q]
            hole = q
        q = (q + 1) & mask
    t_hash[hole] = 0
    t_value[hole] = -1


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
        self.t_klen = np.zeros(capacity, dtype=np.int32)
        self.t_mlen = np.zeros(capacity, dtype=np.int32)

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
