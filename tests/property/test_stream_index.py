"""The numba stream index behaves like a dict, including lookups from scanned byte spans."""

from __future__ import annotations

import json

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from bayestream.schema.scan import scan
from bayestream.state import StreamIndex
from bayestream.state.index import fnv1a

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


def test_colliding_hashes_stay_apart() -> None:
    index = StreamIndex(4)
    # force every name into one probe chain: same table slot for a tiny table
    index.insert("a", "m", 1)
    index.insert("b", "m", 2)
    index.insert("c", "m", 3)
    index.remove("b", "m")
    assert (index.get("a", "m"), index.get("b", "m"), index.get("c", "m")) == (1, -1, 3)
    name = np.frombuffer(b"a\x00m", dtype=np.uint8)
    assert int(fnv1a(name)) != 0


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
