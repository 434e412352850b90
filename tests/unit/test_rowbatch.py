"""Bulk decoding of state rows equals decoding them one by one; bulk restore equals restore."""

from __future__ import annotations

import numpy as np
import pytest

from bayestream.errors import StateError
from bayestream.state import (
    MAX_NAME_BYTES,
    RuleStore,
    StateRow,
    decode_row,
    encode_row,
    encode_rows,
)
from bayestream.state.rowbatch import decode_rows
from tests.conftest import batch, event, make_engine


def test_decode_rows_matches_decode_row_and_skips_bad_rows() -> None:
    rows = [
        StateRow(
            f"host-{i}",
            "lat" if i % 2 else "ü",
            1 + i % 3,
            1.7e9 + i,
            5.0,
            1.0 if i % 5 else np.nan,
            np.nan,
            np.arange(4 + i % 3, dtype=float) * i,
        )
        for i in range(500)
    ]
    good = [encode_row(r) for r in rows]
    bad = [b"garbage", good[0][:-1], good[1][:2] + b"\x03" + good[1][3:], b""]
    decoded = decode_rows(good[:250] + bad + good[250:])
    assert decoded.bad == len(bad) and len(decoded) == len(rows)
    for i in range(len(rows)):
        one = decode_row(good[i])
        assert (decoded.keys[i], decoded.metrics[i]) == (one.key, one.metric)
        assert int(decoded.family_code[i]) == one.family_code
        expected = [one.last_ts, one.n_eff, one.obs_size, one.last_emit_ts]
        assert np.array_equal(decoded.columns[i], expected, equal_nan=True)
        width = one.params.shape[0]
        assert int(decoded.width[i]) == width
        assert np.array_equal(decoded.params[i, :width], one.params)
        assert np.isnan(decoded.params[i, width:]).all()
    assert len(decode_rows([])) == 0


def test_bulk_restore_equals_restore_row_by_row() -> None:
    rng = np.random.default_rng(3)
    engine = make_engine()
    msgs = [
        event(f"k{i % 9}", m, 100.0 + i, v, **extra)
        for i in range(300)
        for m, v, extra in [
            ("lat", float(rng.normal()), {}),
            ("err", 1, {"trials": 4}),
            ("status", "warn", {}),
        ]
    ]
    engine.process(batch(msgs))
    values = [encode_row(r) for r in engine.state_rows()]
    values += values[:5]  # a stream twice: the later row wins (here: the same)
    one_by_one, bulk = make_engine(), make_engine()
    assert one_by_one.restore(decode_row(v) for v in values) == 27
    assert bulk.restore_batch(decode_rows(values)) == 27

    def rows(e):  # type: ignore[no-untyped-def]
        return sorted(e.state_rows(), key=lambda r: (r.key, r.metric))

    assert rows(one_by_one) == rows(bulk) == rows(engine)
    assert bulk.watermark == one_by_one.watermark


def test_encode_rows_equals_encode_row_for_each_stream() -> None:
    """The bulk encoder lays out the fixed part of all rows at once: byte for byte the rows
    the one-row encoder writes (non-ASCII names, NaN and signed zeros, a width of 1)."""
    rng = np.random.default_rng(11)
    for width in (1, 4, 7):
        store = RuleStore(np.arange(width, dtype=float))
        keys = [f"host-{i}" if i % 4 else f"hôte-{i}-€" for i in range(40)]
        metrics = ["lat" if i % 3 else "latência" for i in range(40)]
        slots = store.admit_many(keys, metrics)
        store.params[slots] = rng.normal(size=(40, width))
        store.params[slots[::5], 0] = np.nan
        store.params[slots[1::7], -1] = -0.0
        store.last_ts[slots] = 1.7e9 + rng.uniform(0, 100, 40)
        store.n_eff[slots] = rng.uniform(0, 50, 40)
        store.obs_size[slots] = 1.0
        store.last_emit_ts[slots] = np.where(np.arange(40) % 2, np.nan, 1.7e9)
        chosen = slots[rng.permutation(40)[:25]]
        expected = [
            encode_row(
                StateRow(
                    *store.names[s],
                    3,
                    float(store.last_ts[s]),
                    float(store.n_eff[s]),
                    float(store.obs_size[s]),
                    float(store.last_emit_ts[s]),
                    store.params[s].copy(),
                )
            )
            for s in chosen.tolist()
        ]
        assert encode_rows(store, chosen, 3) == expected
        assert encode_rows(store, chosen[:1], 3) == expected[:1]  # one row: its own path
        assert encode_rows(store, chosen[:0], 3) == []


def test_encode_rows_refuses_a_name_too_long_for_the_row() -> None:
    store = RuleStore(np.zeros(4))
    slots = store.admit_many(["k", "é" * (MAX_NAME_BYTES // 2 + 1)], ["m", "m"])
    with pytest.raises(StateError):
        encode_rows(store, slots, 1)
