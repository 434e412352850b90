"""The ``dlm`` family in the engine: batch invariance, bit-identical replay, state rows through
the changelog codec, records, configuration errors, the daily two-level series and drift on
the standardised forecast errors.

"Flagged" is the issue's acceptance measure: anomaly probability at least 0.5.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bayestream import Engine, RawBatch, parse_config
from bayestream.cli.main import main
from bayestream.errors import ConfigError
from bayestream.models._protocol import OUT_ALARM, OUT_EVALUATED, OUT_PROB
from bayestream.state import decode_row, encode_row
from tests.unit.test_output_schema import _errors

DAY = 288  # 5-minute points
T0 = 1.7e9

RULE: dict[str, Any] = {
    "metric": "m",
    "family": "dlm",
    "trend": True,
    "seasonal": [{"period_seconds": 86400, "harmonics": 3}, {"period_events": 7, "harmonics": 2}],
    "discount": {"unit_seconds": 3600, "level": 0.9, "seasonal": 0.995, "variance": 0.95},
    "transform": "log1p",
    "drift": {"window_events": 50, "false_alarm_rate": 0.01},
}


def _engine(**over: Any) -> Engine:
    return Engine(parse_config({"rule": [{**RULE, **over}]}))


def _messages(n: int, streams: int, seed: int) -> list[bytes]:
    """Interleaved streams of a daily cycle on counts (zeros included), a burst of outliers,
    a level shift, out-of-order and repeated times."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        k = i % streams
        t = T0 + 300.0 * (i // streams) - (600.0 if i % 97 == 5 else 0.0)
        mean = 20.0 * (1.0 + np.sin(2 * np.pi * t / 86400.0 + k)) + (30.0 if i > n // 2 else 0.0)
        value = float(rng.poisson(mean)) if i % 151 else 5000.0
        out.append(json.dumps({"key": f"s{k}", "metric": "m", "ts": t, "value": value}).encode())
    return out


def _run(engine: Engine, msgs: list[bytes], size: int) -> tuple[np.ndarray, list[bytes]]:
    scores, lines = [], []
    for a in range(0, len(msgs), size):
        out = engine.process(RawBatch.from_messages(msgs[a : a + size]))
        scores.append(out.scores)
        lines.append(out.posteriors.json_lines())
        lines += [json.dumps([a.key, a.ts, a.anomaly_probability]).encode() for a in out.anomalies]
    return np.concatenate(scores), lines


def _rows(engine: Engine) -> list[tuple[str, str, bytes]]:
    return [(r.key, r.metric, r.params.tobytes()) for r in engine.state_rows()]


def test_batches_of_any_size_give_identical_state_and_scores() -> None:
    msgs = _messages(3000, 5, seed=1)
    results = []
    for size in (1, 7, len(msgs)):
        engine = _engine()
        scores, _ = _run(engine, msgs, size)
        results.append((scores, _rows(engine)))
    for scores, rows in results[1:]:
        np.testing.assert_array_equal(scores, results[0][0])  # NaN where NaN, bit for bit
        assert rows == results[0][1]


def test_replay_is_bit_identical() -> None:
    msgs = _messages(3000, 5, seed=2)
    first, second = _engine(), _engine()
    a, lines_a = _run(first, msgs, 500)
    b, lines_b = _run(second, msgs, 500)
    assert a.tobytes() == b.tobytes() and lines_a == lines_b
    assert _rows(first) == _rows(second)


def test_state_rows_round_trip_and_restore_continues_identically() -> None:
    msgs = _messages(4000, 5, seed=3)
    straight = _engine()
    _run(straight, msgs[:2500], 2500)
    restored = _engine()
    assert restored.restore(decode_row(encode_row(r)) for r in straight.state_rows()) == 5
    assert _rows(restored) == _rows(straight)
    a, lines_a = _run(straight, msgs[2500:], 300)
    b, lines_b = _run(restored, msgs[2500:], 300)
    assert a.tobytes() == b.tobytes() and lines_a == lines_b


def test_records_name_the_state_and_validate() -> None:
    engine = _engine()
    out = engine.process(RawBatch.from_messages(_messages(600, 2, seed=4)))
    docs = [json.loads(line) for line in out.posteriors.json_lines().splitlines()]
    assert _errors("posteriors", docs) == []
    params = docs[0]["params"]
    assert list(params) == ["level", "trend", "season_86400s", "season_7events", "variance", "dof"]
    assert docs[0]["family"] == "dlm" and docs[0]["mean"] == params["level"]
    q = docs[0]["predictive_quantiles"]
    assert 0.0 <= q["0.5"] < q["0.9"] < q["0.99"]  # log1p: back on the counts' scale
    lo, hi = docs[0]["credible_intervals"]["0.95"]
    assert lo < params["level"] < hi


@pytest.mark.parametrize(
    ("over", "field"),
    [
        ({"discount": {"level": 1.5}}, "discount.level"),
        ({"discount": {"seasonal": 0.0}}, "discount.seasonal"),
        ({"seasonal": [{"period_events": 10, "harmonics": 5}]}, "seasonal[0]"),
        ({"seasonal": [{"period_events": 10, "period_seconds": 60}]}, "seasonal[0]"),
        ({"seasonal": [{"harmonics": 2}]}, "seasonal[0]"),
        ({"seasonal": [{"period_seconds": 86400, "harmonics": 0}]}, "seasonal[0].harmonics"),
        ({"half_life_events": 100}, "half_life"),
        ({"prior": {"level_var": -1.0}}, "prior.level_var"),
        ({"prior": {"mu": 1.0}}, "unknown field"),
        ({"drift": {"window_events": 50, "reset_on_alarm": True}}, "reset_on_alarm"),
    ],
)
def test_bad_settings_are_rejected_with_the_field_named(over: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config({"rule": [{"metric": "m", "family": "dlm", **over}]})
    assert field in str(info.value)


def test_check_config_names_a_bad_dlm_field(tmp_path: Path, capsys: Any) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('[[rule]]\nmetric = "m"\nfamily = "dlm"\ndiscount = { level = 2.0 }\n')
    assert main(["check-config", str(path)]) == 2
    assert "discount.level" in capsys.readouterr().err
    path.write_text('[[rule]]\nmetric = "m"\nfamily = "dlm"\ntrend = true\n')
    assert main(["check-config", str(path)]) == 0
    assert '"level_var": 1000000.0' in capsys.readouterr().out


def _two_level(seed: int, **over: Any) -> float:
    """Mean flagged events per switch after the first two days: 14 days of 5-minute points,
    high (160) half the day and low (100) the other half, noise sd 5, no anomaly."""
    rng = np.random.default_rng(seed)
    ts = T0 + np.arange(14 * DAY) * 300.0
    high = (np.arange(ts.size) % DAY) < DAY // 2
    values = np.where(high, 160.0, 100.0) + rng.normal(0, 5, ts.size)
    rule = {
        "metric": "m",
        "family": "dlm",
        "seasonal": [{"period_seconds": 86400, "harmonics": 12}],
        "discount": {"unit_seconds": 3600, "level": 0.9, "seasonal": 0.995, "variance": 0.95},
        **over,
    }
    engine = Engine(parse_config({"rule": [rule]}))
    msgs = [json.dumps({"key": "k", "metric": "m", "ts": t, "value": v}).encode()
            for t, v in zip(ts.tolist(), values.tolist(), strict=True)]  # fmt: skip
    flagged = engine.process(RawBatch.from_messages(msgs)).scores[:, OUT_PROB] >= 0.5
    switches = np.flatnonzero(np.diff(high.astype(int)) != 0) + 1
    late = switches[switches >= 2 * DAY]
    # each switch owns the half day from a little before it (a step smoothed by 12
    # harmonics starts to rise early) to a little before the next
    return float(np.mean([flagged[s - 6 : s + DAY // 2 - 6].sum() for s in late]))


def test_the_daily_two_level_series_flags_at_most_two_events_per_switch() -> None:
    """The issue's figure: at most 2 flagged events per switch on average after day 2 with
    12 daily harmonics (a prototype measured 2.0 with monitoring, 7.5 without). Measured 1.0
    for each of these seeds (the first point after a step, which 12 harmonics cannot follow),
    1.08 without monitoring."""
    for seed in (1, 2, 3):
        assert _two_level(seed) <= 2.0


def _drift(kind: str, streams: int = 10, **over: Any) -> tuple[int, int, np.ndarray]:
    """(windows compared after day 2, alarms after day 2, streams alarmed in days 7 - 9) for
    a daily cycle (amplitude 4 sd) with noise, 14 days of 5-minute points per stream, and a
    change at day 7: none, the noise sd tripled, or the level up 6 sd."""
    rule = {
        "metric": "m",
        "family": "dlm",
        "seasonal": [{"period_seconds": 86400, "harmonics": 3}],
        "discount": {"unit_seconds": 3600, "level": 0.9, "seasonal": 0.995, "variance": 0.95},
        "drift": {"window_events": 144, "false_alarm_rate": 0.01},
        **over,
    }
    engine = Engine(parse_config({"rule": [rule]}))
    n = 14 * DAY
    t = T0 + np.arange(n) * 300.0
    rng = np.random.default_rng(5)
    msgs, times, keys = [], [], []
    for k in range(streams):
        sd = np.where(np.arange(n) >= 7 * DAY, 15.0 if kind == "variance" else 5.0, 5.0)
        shift = np.where(np.arange(n) >= 7 * DAY, 30.0 if kind == "shift" else 0.0, 0.0)
        y = 100 + 20 * np.sin(2 * np.pi * t / 86400 + k) + shift + rng.normal(0, 1, n) * sd
        for i in range(n):
            msgs.append(json.dumps({"key": f"s{k}", "metric": "m", "ts": t[i], "value": y[i]}))
            times.append(t[i])
            keys.append(k)
    order = np.argsort(times, kind="stable")
    out = engine.process(RawBatch.from_messages([msgs[i].encode() for i in order]))
    ts, key = np.asarray(times)[order], np.asarray(keys)[order]
    evaluated = out.scores[:, OUT_EVALUATED] == 1
    alarm = out.scores[:, OUT_ALARM] == 1
    after = ts >= t[2 * DAY]
    week = (ts >= t[7 * DAY]) & (ts < t[9 * DAY])
    return int((evaluated & after).sum()), int((alarm & after).sum()), np.unique(key[alarm & week])


def test_drift_the_seasonal_cycle_does_not_alarm_a_change_the_model_cannot_absorb_does() -> None:
    """Windows of 144 standardised forecast errors, false-alarm rate 1% per window. A pure
    daily cycle with noise: after day 2 (the first days learn the cycle), alarms within the
    binomial 99.9% bound of the comparisons made (measured 1 in 240). The noise sd tripled at
    day 7, which a level cannot absorb: every stream alarms within two days (measured at 7.5
    days). A 6 sd level shift with monitoring is absorbed (the level follows): at most a
    few streams alarm (measured 1 of 10); without monitoring the robust update does not follow it
    and every stream alarms."""
    windows, alarms, _ = _drift("none")
    bound = int(np.searchsorted(np.cumsum(_binom(windows, 0.01)), 0.999))
    assert windows > 200 and alarms <= bound, (windows, alarms, bound)
    assert _drift("variance")[2].size == 10
    assert _drift("shift")[2].size <= 3
    assert _drift("shift", monitor=False)[2].size == 10


def _binom(n: int, p: float) -> np.ndarray:
    from scipy import stats

    return stats.binom.pmf(np.arange(n + 1), n, p)  # type: ignore[no-any-return]


def test_score_csv_without_a_config_uses_the_general_rule(tmp_path: Path) -> None:
    """``bayestream score-csv IN --output OUT``: examples/general.toml (a dlm with daily and
    weekly seasonality, robust, drift on) scores the series; a daily cycle of 4 sd is not an
    anomaly after its first day, a 60 sd spike is."""
    n = 3 * DAY
    t = T0 + np.arange(n) * 300.0
    y = 100 + 20 * np.sin(2 * np.pi * t / 86400) + np.random.default_rng(0).normal(0, 5, n)
    y[2 * DAY + 100] = 400.0
    source = tmp_path / "in.csv"
    source.write_text(
        "timestamp,value\n" + "".join(f"{a},{b}\n" for a, b in zip(t, y, strict=True))
    )
    out = tmp_path / "out.csv"
    assert main(["score-csv", str(source), "--output", str(out)]) == 0
    rows = out.read_text().splitlines()
    assert len(rows) == n + 1
    prob = np.array([float(r.split(",")[2]) for r in rows[1:]])
    flagged = np.flatnonzero(prob[DAY:] >= 0.5) + DAY
    assert flagged.tolist() == [2 * DAY + 100]


def test_sparse_counts_do_not_collapse_the_variance() -> None:
    """Errors per interval at 0.05 on average (0, 0, 1, 0, ...) through log1p: winsorised
    variance learning alone shrank the variance at every zero until every single error was an
    anomaly of probability 1; the floor of the data's resolution (step^2 / 12, step = log 2)
    keeps a single error ordinary."""
    from bayestream.models import dlm

    rng = np.random.default_rng(12)
    counts = rng.poisson(0.05, 3000)
    engine = Engine(
        parse_config({"rule": [{"metric": "m", "family": "dlm", "transform": "log1p"}]})
    )
    msgs = [json.dumps({"key": "k", "metric": "m", "ts": 60.0 * i, "value": int(c)}).encode()
            for i, c in enumerate(counts)]  # fmt: skip
    prob = engine.process(RawBatch.from_messages(msgs)).scores[:, 1]
    ones = np.flatnonzero(counts[100:] == 1) + 100
    assert ones.size > 100
    assert (prob[ones] >= 0.5).mean() < 0.05
    row = next(engine.state_rows()).params
    assert row[dlm.S_AT] >= math.log(2.0) ** 2 / 12.0 * (1 - 1e-12)
