"""Bulk decoding of state rows equals decoding them one by one; bulk restore equals restore."""

from __future__ import annotations

import numpy as np

from bayestream.state import StateRow, decode_row, encode_row
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
    bad = [b"garbage", good[0][:-1], good[1][:2] + b"\x02" + good[1][3:], b""]
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
