"""Which stream each message of a batch belongs to, with no Python work for known streams.

Messages the scanner accepted carry a 64-bit FNV-1a hash of their (key, metric) bytes; the
engine's :class:`~bayestream.state.StreamIndex` resolves them in one kernel call. The rest
(streams not tracked yet, and messages the strict decoder handled) are grouped here: by hash,
with the strings built once per group and every member's bytes checked against the group's
representative, so a hash collision cannot merge two streams (colliding messages take the
per-message path).
"""

from __future__ import annotations

import functools
from typing import overload

import numpy as np

from bayestream.models._jit import kernel
from bayestream.models._threads import SERIAL, Workers
from bayestream.schema.batch import FIELD, DecodedBatch, RawBatch
from bayestream.schema.scan import KIND_STRING
from bayestream.state import StreamIndex

_KEY = FIELD["key"]
_METRIC = FIELD["metric"]
_SLOT_BITS = 40  # a stream id is rule << 40 | slot: 2**40 slots per rule, 2**23 rules
_SLOT_MASK = (1 << _SLOT_BITS) - 1


@overload
def pack(rule: int, slot: int) -> int: ...
@overload
def pack(rule: int | np.ndarray, slot: np.ndarray) -> np.ndarray: ...
@overload
def pack(rule: np.ndarray, slot: int | np.ndarray) -> np.ndarray: ...
def pack(rule: int | np.ndarray, slot: int | np.ndarray) -> int | np.ndarray:
    """The stream id of a rule's slot (what the engine's index maps a stream to)."""
    return (rule << _SLOT_BITS) | slot


@overload
def unpack(stream_id: int) -> tuple[int, int]: ...
@overload
def unpack(stream_id: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...
def unpack(stream_id: int | np.ndarray) -> tuple[int, int] | tuple[np.ndarray, np.ndarray]:
    """(rule, slot) of stream ids (of non-negative ones: -1, no stream, is not an id)."""
    return stream_id >> _SLOT_BITS, stream_id & _SLOT_MASK  # type: ignore[return-value]


@kernel
def _differs(
    buf: np.ndarray, start: np.ndarray, end: np.ndarray, rows: np.ndarray, reps: np.ndarray
) -> np.ndarray:
    """For each i, do rows[i] and reps[i] have different key or metric bytes?"""
    out = np.zeros(rows.shape[0], dtype=np.bool_)
    for i in range(rows.shape[0]):
        a = rows[i]
        b = reps[i]
        for f in (0, 1):
            la = end[a, f] - start[a, f]
            if la != end[b, f] - start[b, f]:
                out[i] = True
                break
            pa = start[a, f]
            pb = start[b, f]
            for j in range(la):
                if buf[pa + j] != buf[pb + j]:
                    out[i] = True
                    break
            if out[i]:
                break
    return out


def named_rows(decoded: DecodedBatch) -> np.ndarray:
    """Messages not rejected yet whose key and metric are strings."""
    named: np.ndarray = (
        (decoded.reason == 0)
        & (decoded.kind[:, _KEY] == KIND_STRING)
        & (decoded.kind[:, _METRIC] == KIND_STRING)
    )
    return named


def known_streams(
    index: StreamIndex,
    batch: RawBatch,
    decoded: DecodedBatch,
    named: np.ndarray,
    workers: Workers = SERIAL,
) -> np.ndarray:
    """The index value of each message's stream, or -1 (unknown, or not named); the
    lookups (reads of the index) in row ranges on ``workers``."""
    value = np.full(len(batch), -1, dtype=np.int64)
    rows = np.flatnonzero(named & decoded.fast)
    buf = np.frombuffer(batch.buf, dtype=np.uint8)

    def lookup(a: int, b: int) -> None:
        index.lookup_spans(
            buf, rows[a:b], decoded.stream_hash, decoded.str_start, decoded.str_end, value
        )

    if rows.size:
        workers.run([functools.partial(lookup, a, b) for a, b in workers.ranges(rows.size)])
    for i in np.flatnonzero(named & ~decoded.fast).tolist():
        value[i] = index.get(decoded.strings[i]["key"], decoded.strings[i]["metric"])
    return value


def group_streams(
    batch: RawBatch, decoded: DecodedBatch, named: np.ndarray
) -> tuple[np.ndarray, list[str], list[str]]:
    """Map each message in ``named`` to a batch-local stream number.

    Returns ``(stream, keys, metrics)``: ``stream[i]`` indexes ``keys``/``metrics``, or is -1
    where ``named`` is False.
    """
    n = len(batch)
    stream = np.full(n, -1, dtype=np.int64)
    keys: list[str] = []
    metrics: list[str] = []
    number: dict[tuple[str, str], int] = {}

    def number_of(key: str, metric: str) -> int:
        if len(number) < len(keys):  # the hash groups' streams, numbered on first use
            number.update((name, u) for u, name in enumerate(zip(keys, metrics, strict=True)))
        u = number.get((key, metric))
        if u is None:
            u = number[(key, metric)] = len(keys)
            keys.append(key)
            metrics.append(metric)
        return u

    fast_rows = np.flatnonzero(named & decoded.fast)
    if fast_rows.size:
        hashes = decoded.stream_hash[fast_rows]
        _, first, inverse = np.unique(hashes, return_index=True, return_inverse=True)
        reps = fast_rows[first]
        buf = np.frombuffer(batch.buf, dtype=np.uint8)
        differs = _differs(buf, decoded.str_start, decoded.str_end, fast_rows, reps[inverse])
        # One stream per hash group (distinct hashes are distinct names), numbered in order of
        # first appearance so that numbering is deterministic. The strings come straight from
        # the spans (the scanner accepted them as ASCII), each distinct metric decoded once.
        order = np.argsort(first, kind="stable")
        at = reps[order]
        text = batch.buf
        metric_of: dict[bytes, str] = {}
        for a, b, c, d in zip(
            decoded.str_start[at, _KEY].tolist(),
            decoded.str_end[at, _KEY].tolist(),
            decoded.str_start[at, _METRIC].tolist(),
            decoded.str_end[at, _METRIC].tolist(),
            strict=True,
        ):
            name = text[c:d]
            metric = metric_of.get(name)
            if metric is None:
                metric = metric_of[name] = name.decode("ascii")
            keys.append(text[a:b].decode("ascii"))
            metrics.append(metric)
        group_number = np.empty(reps.shape[0], dtype=np.int64)
        group_number[order] = np.arange(reps.shape[0])
        stream[fast_rows] = group_number[inverse]
        for i in fast_rows[differs].tolist():  # a hash collision: named by its own bytes
            stream[i] = number_of(
                decoded.string(batch, i, "key"), decoded.string(batch, i, "metric")
            )
    for i in np.flatnonzero(named & ~decoded.fast).tolist():
        stream[i] = number_of(decoded.strings[i]["key"], decoded.strings[i]["metric"])
    return stream, keys, metrics


__all__ = ["group_streams", "known_streams", "named_rows", "pack", "unpack"]
