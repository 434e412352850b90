"""``bayestream score-csv``: a timestamp,value CSV scored as one stream (no Kafka)."""

from __future__ import annotations

import csv
import io
import math
import sys
from pathlib import Path

import numpy as np
import pytest

from bayestream.cli.main import main
from bayestream.config import parse_config
from bayestream.errors import BayestreamError
from bayestream.runtime.scorecsv import OUTPUT_COLUMNS, parse_timestamp, stream_metric

T0 = 1_709_294_400  # 2024-03-01T12:00:00Z

NORMAL = """
[engine]
batch_size = {batch_size}
max_lateness_seconds = 10

[[rule]]
metric = "latency"
family = "normal_gamma"
prior = {{ mu = 10.0, kappa = 1.0, alpha = 2.0, beta = 2.0 }}
{drift}
"""

DRIFT = """
[rule.drift]
window_events = 50
"""


def _config(tmp_path: Path, text: str, name: str = "config.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _normal_config(tmp_path: Path, *, batch_size: int = 10_000, drift: bool = False) -> Path:
    text = NORMAL.format(batch_size=batch_size, drift=DRIFT if drift else "")
    return _config(tmp_path, text, f"normal-{batch_size}-{drift}.toml")


def _write_csv(
    path: Path, rows: list[tuple[object, object]], header: str = "timestamp,value"
) -> Path:
    path.write_text(header + "\n" + "".join(f"{ts},{value}\n" for ts, value in rows))
    return path


def _write_csv_text(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def _series(n: int = 1000, seed: int = 3, shift_at: int | None = None) -> list[float]:
    rng = np.random.default_rng(seed)
    x = rng.normal(10.0, 1.0, n)
    if shift_at is not None:
        x[shift_at:] += 3.0
    return [float(v) for v in x]


def _score(config: Path, source: Path, out: Path, *extra: str) -> list[dict[str, str]]:
    assert (
        main(["score-csv", "--config", str(config), "--output", str(out), *extra, str(source)]) == 0
    )
    with out.open(newline="", errors="surrogateescape") as f:
        reader = csv.reader(f)
        assert tuple(next(reader)) == OUTPUT_COLUMNS
        return [dict(zip(OUTPUT_COLUMNS, row, strict=True)) for row in reader]


def _scores(rows: list[dict[str, str]]) -> list[tuple[str, ...]]:
    return [tuple(row[c] for c in OUTPUT_COLUMNS[2:]) for row in rows]


def test_level_shift_raises_drift_after_the_change_not_before(tmp_path: Path) -> None:
    shift = 600
    values = _series(1000, seed=11, shift_at=shift)
    source = _write_csv(tmp_path / "in.csv", [(T0 + i, v) for i, v in enumerate(values)])
    rows = _score(_normal_config(tmp_path, drift=True), source, tmp_path / "out.csv")

    assert len(rows) == 1000
    alarms = [i for i, row in enumerate(rows) if row["drift"] == "1"]
    assert alarms, "no drift alarm after a 3-sigma level shift"
    assert all(row["drift"] in ("0", "1") for row in rows)
    assert shift <= alarms[0] < shift + 2 * 50  # within two 50-event windows of the change
    # the statistic is empty until the first window comparison, then always a number
    stats = [row["drift_statistic"] for row in rows]
    first = next(i for i, s in enumerate(stats) if s)
    assert first >= 99  # two windows are needed before the first comparison
    assert all(s and float(s) >= 0.0 for s in stats[first:])
    assert float(rows[alarms[0]]["drift_statistic"]) > float(rows[alarms[0] - 1]["drift_statistic"])


def test_spike_gets_a_high_anomaly_probability(tmp_path: Path) -> None:
    values = _series(400, seed=5)
    spike = 250
    values[spike] = 30.0
    source = _write_csv(tmp_path / "in.csv", [(T0 + i, v) for i, v in enumerate(values)])
    rows = _score(_normal_config(tmp_path), source, tmp_path / "out.csv")

    assert float(rows[spike]["anomaly_probability"]) > 0.9
    assert float(rows[spike]["tail_probability"]) < 1e-6
    # with this seed no ordinary draw is extreme (some seeds have a 3.5-sigma draw at ~0.07)
    ordinary = [float(row["anomaly_probability"]) for i, row in enumerate(rows) if i != spike]
    assert max(ordinary) < 0.05
    # no drift configured: never an alarm, never a statistic
    assert {row["drift"] for row in rows} == {"0"}
    assert {row["drift_statistic"] for row in rows} == {""}


def test_alert_column_is_one_per_burst_after_the_other_columns(tmp_path: Path) -> None:
    """Every row is scored; ``alert`` is 1 only where the rule selects an anomaly (tail below
    the threshold) that beats every surprise of the previous alert_window_events rows."""
    assert OUTPUT_COLUMNS[-1] == "alert" and OUTPUT_COLUMNS[:2] == ("timestamp", "value")
    values = _series(600, seed=5)
    for i in range(300, 330):  # a burst of 30 anomalous points, the first the worst; both
        # ways, so that Bayes-factor monitoring does not take them for a new level
        values[i] = 10.0 + (30.0 - 0.1 * (i - 300)) * (1.0 if i % 2 == 0 else -1.0)
    source = _write_csv(tmp_path / "in.csv", [(T0 + i, v) for i, v in enumerate(values)])
    rows = _score(_normal_config(tmp_path), source, tmp_path / "out.csv")
    assert {row["alert"] for row in rows} == {"0", "1"}
    alerts = [i for i, row in enumerate(rows) if row["alert"] == "1"]
    assert [i for i in alerts if 300 <= i < 400] == [300]  # the burst and its window
    selected = [i for i, row in enumerate(rows) if float(row["tail_probability"]) < 0.001]
    assert set(alerts) < set(selected)
    assert len([i for i in selected if 300 <= i < 330]) >= 3  # many anomalies, one alert
    surprise = [-math.log10(float(row["tail_probability"])) for row in rows]
    for i in alerts:  # above every surprise of the 100 rows before
        assert surprise[i] > max(surprise[max(i - 100, 0) : i])
    # the same with an unscorable row in the burst: it keeps its place, empty alert too
    text = source.read_text().replace(f"{T0 + 310},", "not a time,")
    bad = _score(
        _normal_config(tmp_path),
        _write_csv_text(tmp_path / "bad.csv", text),
        tmp_path / "bad_out.csv",
    )
    assert bad[310]["alert"] == ""
    assert [i for i, r in enumerate(bad) if r["alert"] == "1"] == alerts


def test_iso_t_iso_space_and_epoch_timestamps_score_alike(tmp_path: Path) -> None:
    values = _series(60, seed=9)
    forms = {
        "iso_t": lambda i: f"2024-03-01T12:{i // 60:02d}:{i % 60:02d}.25Z",
        "iso_space": lambda i: f"2024-03-01 12:{i // 60:02d}:{i % 60:02d}.25",  # naive = UTC
        "iso_offset": lambda i: f"2024-03-01T14:{i // 60:02d}:{i % 60:02d}.250+02:00",
        "epoch": lambda i: f"{T0 + i}.25",
    }
    results = {}
    for name, form in forms.items():
        rows = [(form(i), v) for i, v in enumerate(values)]
        source = _write_csv(tmp_path / f"{name}.csv", rows)
        scored = _score(_normal_config(tmp_path), source, tmp_path / f"{name}-out.csv")
        assert [row["timestamp"] for row in scored] == [r[0] for r in rows]  # echoed unchanged
        assert all(row["anomaly_probability"] for row in scored)
        results[name] = _scores(scored)
    assert results["iso_t"] == results["iso_space"] == results["iso_offset"] == results["epoch"]


def test_timestamp_parsing() -> None:
    assert parse_timestamp("1709294400") == T0
    assert parse_timestamp(" 1709294400.5 ") == T0 + 0.5
    assert parse_timestamp("2024-03-01T12:00:00Z") == T0
    assert parse_timestamp("2024-03-01 12:00:00") == T0
    assert parse_timestamp("2024-03-01T13:00:00.1+01:00") == parse_timestamp("1709294400.1")
    assert parse_timestamp("1.7e9") == 1.7e9
    for bad in ("", "garbage", "nan", "inf", "1e400", "2024-13-01T00:00:00", "12:00:00", "1_000"):
        assert parse_timestamp(bad) is None, bad


def test_bad_rows_keep_their_place_with_empty_scores(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    values = _series(40, seed=2)
    rows: list[tuple[object, object]] = [(T0 + i, v) for i, v in enumerate(values)]
    rows[5] = ("garbage", 10.0)
    rows[9] = ("not-a-time", 10.0)
    rows[12] = (T0 + 12, "abc")
    rows[20] = (T0 + 20, "nan")
    rows[25] = (T0 - 1000, 10.0)  # older than max_lateness_seconds: late_event in the engine
    rows[30] = (T0 + 30, "")
    source = _write_csv(tmp_path / "in.csv", rows)
    out = _score(_normal_config(tmp_path), source, tmp_path / "out.csv")

    assert len(out) == len(rows)
    assert [(r["timestamp"], r["value"]) for r in out] == [(str(t), str(v)) for t, v in rows]
    bad = {5, 9, 12, 20, 25, 30}
    for i, row in enumerate(out):
        if i in bad:
            assert _scores([row]) == [("", "", "", "", "")], i
        else:
            assert row["anomaly_probability"] and row["tail_probability"], i
            assert row["drift"] == "0"
    err = capsys.readouterr().err
    assert err.count("invalid_ts:") == 1  # once per kind
    assert err.count("invalid_value:") == 1
    assert err.count("late_event:") == 1
    assert "invalid_ts 2, invalid_value 3, late_event 1" in err
    assert "40 rows, 34 scored, 6 bad, 0 drift alarms" in err


def test_bad_rows_do_not_disturb_the_scores_of_good_ones(tmp_path: Path) -> None:
    values = _series(50, seed=4)
    clean = [(T0 + i, v) for i, v in enumerate(values)]
    dirty: list[tuple[object, object]] = [
        *clean[:10],
        ("x", 1),
        *clean[10:20],
        (T0, "y"),
        *clean[20:],
    ]
    a = _score(
        _normal_config(tmp_path), _write_csv(tmp_path / "a.csv", clean), tmp_path / "a-out.csv"
    )
    b = _score(
        _normal_config(tmp_path), _write_csv(tmp_path / "b.csv", dirty), tmp_path / "b-out.csv"
    )
    assert _scores(a) == _scores([row for row in b if row["anomaly_probability"]])


def test_outputs_do_not_depend_on_the_chunk_size(tmp_path: Path) -> None:
    values = _series(700, seed=11, shift_at=400)
    rows: list[tuple[object, object]] = [(T0 + i, v) for i, v in enumerate(values)]
    rows[100] = ("bad", 1.0)
    rows[200] = (T0 - 5000, 1.0)
    rows[300] = (T0 + 300, 40.0)
    source = _write_csv(tmp_path / "in.csv", rows)
    outputs = []
    for batch_size in (1, 7, 1000):
        out = tmp_path / f"out-{batch_size}.csv"
        _score(_normal_config(tmp_path, batch_size=batch_size, drift=True), source, out)
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1] == outputs[2]
    assert b",1," in outputs[0]  # the comparison covers a drift alarm


GLOBS = """
[[rule]]
metric = "lat*"
family = "normal_gamma"
prior = { mu = 10.0, kappa = 1.0, alpha = 2.0, beta = 2.0 }

[[rule]]
metric = "status_*"
family = "dirichlet"
prior = { categories = ["ok", "warn", "fail"] }
"""


def test_metric_picks_the_rule_through_its_glob(tmp_path: Path) -> None:
    config = _config(tmp_path, GLOBS)
    statuses = ["ok"] * 30 + ["fail"] + ["ok"] * 5 + [" warn "]
    source = _write_csv(tmp_path / "s.csv", [(T0 + i, s) for i, s in enumerate(statuses)])
    rows = _score(config, source, tmp_path / "s-out.csv", "--metric", "status_http")
    assert len(rows) == len(statuses)
    assert all(row["tail_probability"] for row in rows)  # categories, stripped
    assert float(rows[30]["anomaly_probability"]) > float(rows[29]["anomaly_probability"])

    numbers = _write_csv(tmp_path / "n.csv", [(T0 + i, v) for i, v in enumerate(_series(20))])
    rows = _score(config, numbers, tmp_path / "n-out.csv", "--metric", "latency_ms")
    assert all(row["tail_probability"] for row in rows)
    # the same numbers as a categorical series: every row is an unknown category
    rows = _score(config, numbers, tmp_path / "c-out.csv", "--metric", "status_x")
    assert {row["tail_probability"] for row in rows} == {""}


def test_metric_selection_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = parse_config({"rule": [{"metric": "lat*", "family": "normal_gamma"}]})
    assert stream_metric(config, "latency") == "latency"
    with pytest.raises(BayestreamError, match="--metric"):
        stream_metric(config, None)  # a glob is not a metric name
    with pytest.raises(BayestreamError, match="matches no rule"):
        stream_metric(config, "cpu")
    exact = parse_config({"rule": [{"metric": "cpu", "family": "normal_gamma"}]})
    assert stream_metric(exact, None) == "cpu"

    path = _config(tmp_path, GLOBS)
    source = _write_csv(tmp_path / "in.csv", [(T0, 1.0)])
    out = tmp_path / "out.csv"
    base = ["score-csv", "--config", str(path), "--output", str(out)]
    assert main([*base, "--metric", "cpu", str(source)]) == 2
    assert "'cpu' matches no rule" in capsys.readouterr().err
    assert main([*base, str(source)]) == 2
    assert "--metric NAME" in capsys.readouterr().err
    assert not out.exists()


def test_input_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = _normal_config(tmp_path)
    out = tmp_path / "out.csv"
    base = ["score-csv", "--config", str(config), "--output", str(out)]

    no_header = tmp_path / "no-header.csv"
    no_header.write_text(f"{T0},1.0\n{T0 + 1},2.0\n")
    assert main([*base, str(no_header)]) == 2
    assert "header naming the columns timestamp and value" in capsys.readouterr().err

    empty = tmp_path / "empty.csv"
    empty.write_text("")
    assert main([*base, str(empty)]) == 2
    assert "empty" in capsys.readouterr().err

    assert main([*base, str(tmp_path / "missing.csv")]) == 2
    assert "no such file" in capsys.readouterr().err
    assert not out.exists()


def test_header_any_order_and_case_extra_columns_bom_blank_lines(tmp_path: Path) -> None:
    values = _series(20, seed=8)
    plain = _write_csv(tmp_path / "plain.csv", [(T0 + i, v) for i, v in enumerate(values)])
    fancy = tmp_path / "fancy.csv"
    lines = [f"host,{v},{T0 + i}\n" + ("\n" if i == 4 else "") for i, v in enumerate(values)]
    fancy.write_bytes(("\ufeffHost, Value ,TIMESTAMP\n" + "".join(lines)).encode())
    a = _score(_normal_config(tmp_path), plain, tmp_path / "a.csv")
    b = _score(_normal_config(tmp_path), fancy, tmp_path / "b.csv")
    assert len(b) == 20  # the blank line is not a row
    assert a == b


def test_header_only_gives_a_header_only(tmp_path: Path) -> None:
    source = _write_csv(tmp_path / "in.csv", [])
    assert _score(_normal_config(tmp_path), source, tmp_path / "out.csv") == []


def test_stdin_to_stdout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    values = _series(15, seed=1)
    text = "timestamp,value\n" + "".join(f"{T0 + i},{v}\n" for i, v in enumerate(values))
    stdin = io.TextIOWrapper(io.BytesIO(text.encode()), encoding="utf-8")
    stdout_bytes = io.BytesIO()
    stdout = io.TextIOWrapper(stdout_bytes, encoding="utf-8")
    monkeypatch.setattr(sys, "stdin", stdin)
    monkeypatch.setattr(sys, "stdout", stdout)
    config = _normal_config(tmp_path)
    assert main(["score-csv", "--config", str(config), "--output", "-", "-"]) == 0
    stdout.flush()
    piped = stdout_bytes.getvalue()
    (tmp_path / "file.csv").write_text(text)
    _score(config, tmp_path / "file.csv", tmp_path / "file-out.csv")
    assert piped == (tmp_path / "file-out.csv").read_bytes()


def test_undecodable_bytes_are_echoed_and_bad(tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    source.write_bytes(b"timestamp,value\n%d,10.0\n%d,1\xff\n%d,10.5\n" % (T0, T0 + 1, T0 + 2))
    out = tmp_path / "out.csv"
    rows = _score(_normal_config(tmp_path), source, out)
    assert len(rows) == 3
    assert b"\n1709294401,1\xff,,,,,\n" in out.read_bytes()
    assert rows[0]["tail_probability"] and rows[2]["tail_probability"]
    assert not math.isnan(float(rows[2]["anomaly_probability"]))
