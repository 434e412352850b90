"""The numba stream index behaves like a dict, including lookups from scanned byte spans."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bayestream.schema.scan import ScanResult, scan
from bayestream.state import MAX_NAME_BYTES, StreamIndex

names = st.tuples(
    st.sampled_from(["a", "b", "host-1", "ü", "", "x" * 40]), st.sampled_from(["m", "lat", "ü", ""])
)
ops = st.lists(
    st.tuples(st.sampled_from(["insert", "remove", "get"]), names, st.integers(0, 1 << 45)),
    max_size=200,
)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(ops=ops, capacity=st.sampled_from([2, 4, 64]))
def test_index_matches_a_dict(ops: list[tuple[str, tuple[str, str], int]], capacity: int) -> None:
    index, model = StreamIndex(capacity), {}
    for op, (key, metric), value in ops:
        if op == "insert" and (key, metric) not in model:
            index.insert(key, metric, value)
            model[(key, metric)] = value
        elif op == "remove" and (key, metric) in model:
            index.remove(key, metric)
            del model[(key, metric)]
        assert index.get(key, metric) == model.get((key, metric), -1)
    assert len(index) == len(model)
    for (key, metric), value in model.items():
        assert index.get(key, metric) == value


def test_lookup_from_spans_agrees_with_get() -> None:
    index = StreamIndex(8)
    for i in range(500):
        index.insert(f"host-{i}", "lat" if i % 2 else "err", i)
    messages = [
        json.dumps({"key": f"host-{i}", "metric": m, "ts": 1, "value": 1}).encode()
        for i in range(0, 700, 3)
        for m in ("lat", "err")
    ]
    buf = np.frombuffer(b"".join(messages), dtype=np.uint8)
    ends = np.cumsum([len(m) for m in messages])
    result = scan(buf, ends - np.array([len(m) for m in messages]), ends)
    out = np.full(len(messages), -7, dtype=np.int64)
    index.lookup_spans(
        buf, np.arange(len(messages)), result.stream_hash, result.str_start, result.str_end, out
    )
    expected = [index.get(json.loads(m)["key"], json.loads(m)["metric"]) for m in messages]
    assert out.tolist() == expected
    assert sum(v >= 0 for v in expected) == len(range(0, 500, 3))  # one metric per host


def _spans(names: list[tuple[str, str]]) -> tuple[np.ndarray, ScanResult]:
    messages = [json.dumps({"key": k, "metric": m, "ts": 1, "value": 1}).encode() for k, m in names]
    buf = np.frombuffer(b"".join(messages), dtype=np.uint8)
    ends = np.cumsum([len(m) for m in messages])
    return buf, scan(buf, ends - np.array([len(m) for m in messages]), ends)


def _check(
    index: StreamIndex, model: dict[tuple[str, str], int], probes: list[tuple[str, str]]
) -> None:
    """Every way of reading the index agrees with the dict."""
    expected = [model.get(name, -1) for name in probes]
    assert [index.get(k, m) for k, m in probes] == expected
    assert index.get_many([k for k, _ in probes], [m for _, m in probes]).tolist() == expected
    ascii_probes = [name for name in probes if all(c.isascii() for c in name[0] + name[1])]
    buf, result = _spans(ascii_probes)
    out = np.full(len(ascii_probes), -7, dtype=np.int64)
    rows = np.flatnonzero(~result.fallback)
    assert rows.size == len(ascii_probes)  # the scanner took every one (hashes and spans)
    index.lookup_spans(
        buf,
        rows,
        result.stream_hash,
        result.str_start,
        result.str_end,
        out,  # type: ignore[attr-defined]
    )
    assert out.tolist() == [model.get(name, -1) for name in ascii_probes]
    assert len(index) == len(model)


def test_colliding_hashes_stay_apart() -> None:
    """With 2 hash bits every hash is 1, 2 or 3: most names share their full hash with
    others, in one probe chain, through inserts, lookups and backward-shift deletions."""
    index = StreamIndex(4, hash_bits=2)
    names = [(f"host-{i}", m) for i in range(40) for m in ("lat", "err")]
    hashes = {int(index._hash(StreamIndex.name_bytes(k, m)[0])) for k, m in names}
    assert hashes <= {1, 2, 3}  # 80 names on 3 hashes: collisions are certain
    model: dict[tuple[str, str], int] = {}
    for i, (key, metric) in enumerate(names):
        index.insert(key, metric, 1000 + i)
        model[(key, metric)] = 1000 + i
    _check(index, model, [*names, ("host-99", "lat"), ("", "")])
    for key, metric in names[::3]:
        index.remove(key, metric)
        del model[(key, metric)]
        assert index.get(key, metric) == -1
    _check(index, model, names)
    values = np.arange(len(names[::3]), dtype=np.int64)
    index.insert_many([k for k, _ in names[::3]], [m for _, m in names[::3]], values)
    model.update(zip(names[::3], values.tolist(), strict=True))
    _check(index, model, names)


def test_arena_compaction_keeps_every_name() -> None:
    """Enough removals and inserts of long names that the arena fills with garbage and is
    compacted (more than once), checked against a dict after every round."""
    index = StreamIndex(8, hash_bits=5)  # collisions too, while the names move
    model: dict[tuple[str, str], int] = {}
    rng = np.random.default_rng(3)
    probes = []
    for round_ in range(12):
        fresh = [(f"{'k' * 300}-{round_}-{i}", f"m{i % 3}") for i in range(60)]
        index.insert_many(
            [k for k, _ in fresh],
            [m for _, m in fresh],
            np.arange(60, dtype=np.int64) + 100 * round_,
        )
        model.update((name, 100 * round_ + i) for i, name in enumerate(fresh))
        probes += fresh
        live = list(model)
        for j in rng.choice(len(live), size=len(live) * 2 // 3, replace=False).tolist():
            index.remove(*live[j])
            del model[live[j]]
        _check(index, model, probes)
    assert index.compactions >= 2
    assert index.arena_used - index.garbage == sum(len(k) + len(m) + 1 for k, m in model)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(ops=ops, capacity=st.sampled_from([2, 8]), bits=st.sampled_from([1, 3]))
def test_index_with_colliding_hashes_matches_a_dict(
    ops: list[tuple[str, tuple[str, str], int]], capacity: int, bits: int
) -> None:
    index, model = StreamIndex(capacity, hash_bits=bits), {}
    for op, (key, metric), value in ops:
        if op == "insert" and (key, metric) not in model:
            index.insert(key, metric, value)
            model[(key, metric)] = value
        elif op == "remove" and (key, metric) in model:
            index.remove(key, metric)
            del model[(key, metric)]
        assert index.get(key, metric) == model.get((key, metric), -1)
    keys = [k for k, _ in model]
    assert index.get_many(keys, [m for _, m in model]).tolist() == list(model.values())


@settings(max_examples=100, deadline=None, derandomize=True)
@given(
    names=st.lists(st.tuples(st.text(max_size=12), st.text(max_size=12)), unique=True, max_size=80),
    capacity=st.sampled_from([2, 16]),
)
def test_insert_many_equals_inserting_one_by_one(
    names: list[tuple[str, str]], capacity: int
) -> None:
    bulk, single = StreamIndex(capacity), StreamIndex(capacity)
    values = np.arange(len(names), dtype=np.int64) * 7 + 3
    bulk.insert_many([k for k, _ in names], [m for _, m in names], values)
    for (key, metric), value in zip(names, values.tolist(), strict=True):
        single.insert(key, metric, value)
    assert len(bulk) == len(single) == len(names)
    for (key, metric), value in zip(names, values.tolist(), strict=True):
        assert bulk.get(key, metric) == single.get(key, metric) == value
    assert bulk.get("\x00", "\x00") == -1 or ("\x00", "\x00") in names


def test_a_name_longer_than_a_row_can_hold_is_refused() -> None:
    index = StreamIndex(4)
    long = "é" * (MAX_NAME_BYTES // 2 + 1)  # MAX_NAME_BYTES + 1 UTF-8 bytes
    for key, metric in ((long, "m"), ("k", long)):
        with pytest.raises(ValueError, match="longer than"):
            index.insert(key, metric, 1)
    index.insert("k" * MAX_NAME_BYTES, "m" * MAX_NAME_BYTES, 5)
    assert index.get("k" * MAX_NAME_BYTES, "m" * MAX_NAME_BYTES) == 5 and len(index) == 1
