"""Calibration monitoring wired into the engine, the file runner and Prometheus."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from bayestream import Engine, RawBatch, parse_config
from bayestream.cli.main import main
from bayestream.metrics import Metrics, PrometheusSensor
from bayestream.schema.records import CalibrationRecord


def _config(interval: int, prior: dict[str, float] | None = None) -> dict[str, object]:
    return {
        "engine": {"calibration_interval_events": interval},
        "rule": [
            {
                "metric": "lat",
                "family": "normal_gamma",
                "robust": False,
                "predictive_quantiles": [0.05, 0.5, 0.95],
                **({"prior": prior} if prior else {}),
            },
            {"metric": "st", "family": "dirichlet", "prior": {"categories": ["a", "b"]}},
        ],
    }


def _messages(rng: np.random.Generator, n: int, sd: float = 1.0) -> list[bytes]:
    out = []
    for t in range(n):
        out.append(
            json.dumps({"key": f"k{t % 5}", "metric": "lat", "ts": t, "value": rng.normal(3, sd)})
            .encode()
        )  # fmt: skip
        out.append(json.dumps({"key": "k", "metric": "st", "ts": t, "value": "a"}).encode())
    return out


def _records(engine: Engine, msgs: list[bytes], size: int) -> list[CalibrationRecord]:
    out: list[CalibrationRecord] = []
    for start in range(0, len(msgs), size):
        out += engine.process(RawBatch.from_messages(msgs[start : start + size])).calibration
    return out


def test_records_come_every_interval_and_do_not_depend_on_batching() -> None:
    msgs = _messages(np.random.default_rng(1), 2_000)
    runs = [_records(Engine(parse_config(_config(500))), msgs, size) for size in (4_000, 7, 1)]
    assert [r.events for r in runs[0]] == [500, 1000, 1500, 2000]  # the dirichlet rule: none
    assert [r.watermark for r in runs[0]] == [499.0, 999.0, 1499.0, 1999.0]
    assert runs[1] == runs[0] and runs[2] == runs[0]


def test_a_well_specified_stream_looks_calibrated() -> None:
    records = _records(
        Engine(parse_config(_config(20_000))), _messages(np.random.default_rng(2), 20_000), 5_000
    )
    last = records[-1]
    assert last.pit_uniformity_p_value is not None and last.pit_uniformity_p_value > 1e-3
    n = last.pit_effective_count
    for row in last.coverage:  # within 4 standard errors of nominal
        p = row["nominal"]
        assert abs(row["observed"] - p) < 4 * math.sqrt(p * (1 - p) / n), row


def test_an_overconfident_predictive_is_caught() -> None:
    """A prior that pins the variance at 0.25 (alpha = beta * 4 = 1e6) against data of
    variance 1: the PIT piles up at the ends and the 90% interval covers far less."""
    config = _config(5_000, prior={"mu": 3.0, "kappa": 1.0, "alpha": 1e6, "beta": 2.5e5})
    records = _records(
        Engine(parse_config(config)), _messages(np.random.default_rng(3), 5_000), 1_000
    )
    last = records[-1]
    assert last.pit_uniformity_p_value is not None and last.pit_uniformity_p_value < 1e-12
    interval = next(r for r in last.coverage if r["kind"] == "interval")
    assert interval["nominal"] == 0.9 and interval["observed"] < 0.6  # 2 Phi(0.82) - 1 = 0.59
    assert last.pit_histogram[0] > 2.0 and last.pit_histogram[-1] > 2.0


def test_prometheus_gauges_follow_the_records() -> None:
    metrics = Metrics(CollectorRegistry())
    engine = Engine(parse_config(_config(1_000)), PrometheusSensor(metrics))
    _records(engine, _messages(np.random.default_rng(4), 1_000), 2_000)
    registry = metrics.registry
    p = registry.get_sample_value("bayestream_pit_uniformity_p_value", {"rule": "lat"})
    assert p is not None and 0.0 <= p <= 1.0
    coverage = registry.get_sample_value(
        "bayestream_predictive_coverage_ratio",
        {"rule": "lat", "kind": "quantile", "nominal": "0.5"},
    )
    assert coverage is not None and 0.4 < coverage < 0.6
    density = [
        registry.get_sample_value("bayestream_pit_density", {"rule": "lat", "bin": f"{b / 10:.1f}"})
        for b in range(10)
    ]
    assert all(d is not None for d in density)
    assert sum(d for d in density if d is not None) == pytest.approx(10.0)


def test_labels_join_into_the_file_runners_calibration_records(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    events, labels = [], []
    for t in range(3_000):
        spike = rng.random() < 0.02
        value = rng.normal(0, 10) if spike else rng.normal(0, 1)
        ts = f"2026-01-01T00:{t // 60:02d}:{t % 60:02d}Z"
        events.append(json.dumps({"key": "a", "metric": "lat", "ts": ts, "value": value}))
        if t % 3 == 0:
            labels.append(json.dumps({"key": "a", "metric": "lat", "ts": ts, "is_anomaly": spike}))
    labels.append(json.dumps({"key": "zz", "metric": "lat", "ts": 1.0, "is_anomaly": False}))
    (tmp_path / "in.jsonl").write_text("\n".join(events) + "\n")
    (tmp_path / "labels.jsonl").write_text("\n".join(labels) + "\n")
    (tmp_path / "c.toml").write_text(
        '[[rule]]\nmetric = "lat"\nfamily = "normal_gamma"\noutlier_rate = 0.02\n'
    )
    code = main(
        ["run", "--config", str(tmp_path / "c.toml"), "--input", str(tmp_path / "in.jsonl"),
         "--output-dir", str(tmp_path / "out"), "--labels", str(tmp_path / "labels.jsonl")]
    )  # fmt: skip
    assert code == 0
    lines = (tmp_path / "out" / "calibration.jsonl").read_text().splitlines()
    final = json.loads(lines[-1])
    assert final["events"] == 3_000 and final["labelled"] == 1_000
    assert final["ece"] is not None and final["ece"] < 0.05
    assert sum(row[2] for row in final["reliability"]) == 1_000
