"""Hostile lines mixed into good telemetry, end to end through ``bayestream run``: each one is
a dead letter with its reason and line number, and none touches a posterior. The run with them
and a run over the good lines alone (cut into other batches) publish the same final posteriors
and the same anomalies; every input line is applied or a dead letter."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.workloads import HOSTILE_KINDS, hostile_mix

from bayestream.cli.main import main

CONFIG = """
[[rule]]
metric = "latency_ms"
family = "normal_gamma"
prior = { mu = 50.0, kappa = 1.0, alpha = 2.0, beta = 50.0 }
half_life_seconds = 600.0
anomaly_threshold = 0.001

[[rule]]
metric = "errors"
family = "beta_binomial"
prior = { alpha = 1.0, beta = 99.0 }
half_life_seconds = 900.0
anomaly_threshold = 0.001

[[rule]]
metric = "requests"
family = "gamma_poisson"
prior = { alpha = 1.0, beta = 0.1 }
half_life_events = 60.0
tail = "two_sided"
anomaly_threshold = 0.001

[[rule]]
metric = "status"
family = "dirichlet"
prior = { categories = ["2xx", "3xx", "4xx", "5xx"], alpha = 1.0 }
half_life_events = 500.0
anomaly_threshold = 0.001
"""


def _run(tmp_path: Path, name: str, lines: list[bytes], batch_size: int) -> dict[str, Any]:
    config = tmp_path / "config.toml"
    config.write_text(CONFIG)
    source = tmp_path / f"{name}.jsonl"
    source.write_bytes(b"\n".join(lines) + b"\n")
    out = tmp_path / name
    args = ["run", "--config", str(config), "--input", str(source), "--output-dir", str(out)]
    assert main([*args, "--batch-size", str(batch_size)]) == 0

    def read(file: str, keep: Callable[[dict[str, Any]], bool] = lambda _: True) -> Any:
        rows = [json.loads(line) for line in (out / f"{file}.jsonl").read_text().splitlines()]
        return [row for row in rows if keep(row)]

    return {name: read(name) for name in ("posteriors", "anomalies", "dead_letter")}


def test_hostile_lines_are_dead_letters_and_touch_no_posterior(tmp_path: Path) -> None:
    lines, good, expected = hostile_mix(30_000, 2_000, share=0.03, seed=5)
    assert len(lines) == len(good) + len(expected) and len(expected) == 900
    mixed = _run(tmp_path, "mixed", lines, batch_size=1_000)
    clean = _run(tmp_path, "clean", good, batch_size=7_000)

    dead = {d["line"]: d["reason"] for d in mixed["dead_letter"]}
    assert set(dead) == set(expected)  # every hostile line, and nothing else
    for line, reason in expected.items():
        if reason is not None:
            assert dead[line] == reason, (line, lines[line - 1][:120])
    assert clean["dead_letter"] == []
    assert set(dead.values()) >= {reason for _, reason in HOSTILE_KINDS if reason}  # all met

    def finals(run: dict[str, Any]) -> dict[tuple[str, str], Any]:
        return {(p["key"], p["metric"]): p for p in run["posteriors"]}

    assert finals(mixed) == finals(clean)  # bit for bit: every figure, every stream
    assert mixed["anomalies"] == clean["anomalies"]
