"""State rows of version 1 (two extra columns) restore into version-2 stores: a changelog
written by an earlier bayestream keeps its posteriors, last anomaly probabilities, outlier runs
and drift windows."""

from __future__ import annotations

import json

import numpy as np

from bayestream import RawBatch
from bayestream.models._protocol import EXTRA, EXTRA_V1, X_ALERT_TOP, X_MON_K, X_PROB
from bayestream.state.rowbatch import decode_rows
from bayestream.state.rows import VERSION, StateRow, decode_row, encode_row
from tests.conftest import make_engine


def _engine(**rule: object):  # type: ignore[no-untyped-def]
    return make_engine([{"metric": "m", "family": "normal_gamma", "robust": True, **rule}])


def _feed(engine, n: int, start: int = 0) -> None:  # type: ignore[no-untyped-def]
    msgs = [json.dumps({"key": "k", "metric": "m", "ts": float(t), "value": float(t % 7)})
            .encode() for t in range(start, start + n)]  # fmt: skip
    engine.process(RawBatch.from_messages(msgs))


def _as_version_1(row: StateRow) -> StateRow:
    """What bayestream wrote before version 2: the same row without the monitor and alert
    columns."""
    k = 4
    params = np.concatenate([row.params[: k + EXTRA_V1], row.params[k + EXTRA :]])
    return StateRow(row.key, row.metric, row.family_code, row.last_ts, row.n_eff,
                    row.obs_size, row.last_emit_ts, params, version=1)  # fmt: skip


def test_rows_are_written_in_version_2_and_version_1_is_read() -> None:
    engine = _engine()
    _feed(engine, 30)
    row = next(engine.state_rows())
    assert row.version == VERSION == 2 and row.params.shape[0] == 4 + EXTRA
    old = _as_version_1(row)
    data = encode_row(old)
    assert data[2] == 1
    assert decode_row(data) == old
    batch = decode_rows([data, encode_row(row)])
    assert batch.bad == 0 and batch.version.tolist() == [1, 2]


def test_a_version_1_row_with_drift_restores_whole() -> None:
    """Family parameters, the last anomaly probability and the drift block come back; the
    monitor starts with no run and the alert window empty; then both engines agree."""
    drift = {"window_events": 10}
    engine = _engine(drift=drift)
    _feed(engine, 55)  # the drift window is half full
    row = next(engine.state_rows())
    restored = _engine(drift=drift)
    assert restored.restore([_as_version_1(row)]) == 1
    back = next(restored.state_rows())
    k = 4
    np.testing.assert_array_equal(back.params[: k + EXTRA_V1], row.params[: k + EXTRA_V1])
    np.testing.assert_array_equal(back.params[k + EXTRA :], row.params[k + EXTRA :])
    assert back.params[k + X_MON_K] == 0.0 and not np.isnan(back.params[k + X_PROB])
    assert (back.params[k + X_ALERT_TOP : k + X_ALERT_TOP + 4] == -np.inf).all()
    for e in (engine, restored):
        _feed(e, 20, start=55)
    np.testing.assert_array_equal(
        next(engine.state_rows()).params[:k], next(restored.state_rows()).params[:k]
    )


def test_a_version_1_row_without_drift_restores_into_a_rule_with_drift() -> None:
    engine = _engine()
    _feed(engine, 30)
    row = _as_version_1(next(engine.state_rows()))
    restored = _engine(drift={"window_events": 10})
    assert restored.restore([row]) == 1
    back = next(restored.state_rows())
    np.testing.assert_array_equal(back.params[: 4 + EXTRA_V1], row.params[: 4 + EXTRA_V1])
