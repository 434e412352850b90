"""Stream names in a store's byte arena: what a list of names would hold, through
evictions and compactions; the changelog restore decoded in chunks."""

from __future__ import annotations

import msgspec
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from bayestream.state import RuleStore, encode_row
from bayestream.state.names import NameArena
from bayestream.state.rowbatch import decode_rows, drain_rows
from tests.conftest import batch, event, make_engine


def _json(key: str, metric: str) -> bytes:
    return b'"key":' + msgspec.json.encode(key) + b',"metric":' + msgspec.json.encode(metric)


def _check(arena: NameArena, model: dict[int, tuple[str, str]], capacity: int) -> None:
    for s in range(capacity):
        assert arena.get(s) == model.get(s)
    slots = np.array(sorted(model), dtype=np.int64)[::-1]  # any order, not only ascending
    names = [model[s] for s in slots.tolist()]
    assert arena.names(slots) == names
    assert arena.json_list(slots) == [_json(k, m) for k, m in names]
    keys, metrics = arena.raw(slots)
    assert keys == [k.encode() for k, _ in names]
    assert metrics == [m.encode() for _, m in names]
    data, ends = arena.json(slots)
    assert data.tobytes() == b"".join(_json(k, m) for k, m in names)
    assert ends.tolist() == np.cumsum([len(_json(k, m)) for k, m in names]).tolist()


texts = st.text(st.characters(codec="utf-8"), max_size=20)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    ops=st.lists(
        st.tuples(st.sampled_from(["set", "clear"]), st.integers(0, 15), texts, texts),
        max_size=120,
    )
)
def test_arena_matches_a_dict(ops: list[tuple[str, int, str, str]]) -> None:
    arena, model = NameArena(16), {}
    for op, slot, key, metric in ops:
        if op == "set" and slot not in model:
            arena.set_many(np.array([slot]), [key], [metric])
            model[slot] = (key, metric)
        elif op == "clear" and slot in model:
            arena.clear(slot)
            del model[slot]
    _check(arena, model, 16)


def test_compaction_drops_garbage_and_keeps_every_name() -> None:
    capacity = 400
    arena: NameArena = NameArena(capacity)
    model: dict[int, tuple[str, str]] = {}
    rng = np.random.default_rng(5)
    for round_ in range(10):
        free = [s for s in range(capacity) if s not in model]
        slots = rng.choice(free, size=min(len(free), 150), replace=False)
        names = [  # every other one escaped in JSON, so stored twice
            (f"host-{round_}-{s}-" + "é" * 100, f'm"{s % 4}\n' if s % 2 else f"m{s % 4}")
            for s in slots.tolist()
        ]
        arena.set_many(slots, [k for k, _ in names], [m for _, m in names])
        model.update(zip(slots.tolist(), names, strict=True))
        _check(arena, model, capacity)
        for s in rng.choice(sorted(model), size=len(model) // 2, replace=False).tolist():
            arena.clear(s)
            del model[s]
    assert arena.compactions >= 2
    live = sum(
        len(_json(k, m)) + (len(k.encode()) + len(m.encode()) if "\n" in m else 0)
        for k, m in model.values()
    )
    assert arena.used - arena.garbage == live
    assert arena.escaped.sum() == sum("\n" in m for _, m in model.values()) > 0
    assert arena.arena.shape[0] <= max(1 << 16, 1.25 * arena.used)  # no garbage, 1.25x room
    _check(arena, model, capacity)


def test_store_hands_out_slots_low_first_and_reuses_the_last_freed() -> None:
    store = RuleStore(np.zeros(4), capacity=4)
    assert store.admit_many(["a", "b", "c"], ["m"] * 3).tolist() == [0, 1, 2]
    assert store.evict(0) == ("a", "m") and store.evict(2) == ("c", "m")
    assert store.names.get(0) is None and store.names[1] == ("b", "m")
    assert store.admit("d", "m") == 2  # the last freed first
    # not enough free: the store grows, and the new slots go on top of the stack, low first
    assert store.admit_many(["e", "f", "g"], ["m"] * 3).tolist() == [4, 5, 6]
    assert [store.admit(x, "m") for x in "hijk"] == [7, 8, 9, 10]
    assert store.capacity == 1024 and len(store) == 9
    assert store.n_free == 1024 - 9
    assert store.keys_json(np.array([4, 1])) == [
        b'{"key":"e","metric":"m"}',
        b'{"key":"b","metric":"m"}',
    ]


def test_restore_in_chunks_equals_restore_at_once() -> None:
    rules = [
        {"metric": "lat", "family": "normal_gamma"},
        {"metric": "err", "family": "beta_binomial"},
    ]
    source = make_engine(rules)
    events = [
        event(f"host-{i % 37}", "lat" if i % 3 else "err", 1.7e9 + i, 1.0 + i % 5, trials=9)
        for i in range(300)
    ]
    source.process(batch(events))
    table = {key: value for key, value in source.changelog(source.process(batch(events)))}
    table[b"junk"] = b"not a row"
    at_once = make_engine(rules)
    decoded = decode_rows(list(table.values()))
    assert at_once.restore_batch(decoded) == len(table) - 1 and decoded.bad == 1
    chunked = make_engine(rules)
    loaded = bad = 0
    for chunk in drain_rows(table, chunk=5):
        assert len(chunk) + chunk.bad <= 5
        loaded += chunked.restore_batch(chunk)
        bad += chunk.bad
    assert (loaded, bad, table) == (len(decoded), 1, {})  # the table is emptied
    assert list(chunked.state_rows()) == list(at_once.state_rows()) == list(source.state_rows())
    assert chunked.watermark == at_once.watermark
    later = [event(f"host-{i}", "lat", 1.7e9 + 400 + i, 2.0) for i in range(40)]
    a, b = at_once.process(batch(later)), chunked.process(batch(later))
    assert a.posteriors.json_lines() == b.posteriors.json_lines()
    assert encode_row(next(chunked.state_rows())) == encode_row(next(at_once.state_rows()))


def test_evict_many_equals_evicting_one_by_one() -> None:
    one, many = RuleStore(np.zeros(4), capacity=8), RuleStore(np.zeros(4), capacity=8)
    names = [(f"k{i}", 'm"' if i % 2 else "m") for i in range(6)]
    for store in (one, many):
        store.admit_many([k for k, _ in names], [m for _, m in names])
    victims = np.array([4, 1, 2])
    assert [one.evict(s) for s in victims.tolist()] == many.evict_many(victims)
    assert many.evict_many(victims[:0]) == []
    for a, b in ((one, many), (many, one)):
        assert a.n_free == b.n_free and a.free[: a.n_free].tolist() == b.free[: b.n_free].tolist()
        assert a.names.garbage == b.names.garbage > 0 and len(a) == len(b) == 3
    assert [one.admit(f"x{i}", "m") for i in range(3)] == [2, 1, 4]  # the last evicted first
    assert [many.admit(f"x{i}", "m") for i in range(3)] == [2, 1, 4]
    assert [many.names.get(s) for s in range(6)] == [one.names.get(s) for s in range(6)]
