"""Kernels of the stream index's open-addressing table (see :mod:`.index` for the layout).

Every table function takes the table's columns: ``t_hash`` (0: empty), ``t_value``,
``t_off`` (of the name in ``arena``), ``t_klen`` and ``t_mlen`` (its key and metric lengths);
a name is ``key 0x00 metric`` in UTF-8.
"""

from __future__ import annotations

import numpy as np

from bayestream.models._jit import ZERO, kernel


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
