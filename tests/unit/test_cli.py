"""The command line, end to end through files (no Kafka)."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bayestream.cli.main import main
from bayestream.runtime.files import read_batches

BOM = b"\xef\xbb\xbf"

CONFIG = """
[engine]
max_lateness_seconds = 10

[[rule]]
metric = "lat*"
family = "normal_gamma"
tail = "upper"
anomaly_threshold = 0.01
prior = { mu = 10.0, kappa = 1.0, alpha = 2.0, beta = 2.0 }

[[rule]]
metric = "err"
family = "beta_binomial"
robust = false
"""


def _lines(n: int = 300) -> list[str]:
    out = []
    for i in range(n):
        out.append(
            json.dumps(
                {
                    "key": f"h{i % 4}",
                    "metric": "latency",
                    "ts": 100 + i,
                    "value": 10.0 + (i % 7) * 0.1,
                }
            )
        )
        if i % 50 == 0:
            out.append(
                json.dumps({"key": "h1", "metric": "err", "ts": 100 + i, "value": 2, "trials": 40})
            )
    out.append(json.dumps({"key": "h0", "metric": "latency", "ts": 400, "value": 99.0}))
    out.insert(7, "")
    out.insert(8, "   ")
    out.insert(20, "{broken")
    out.insert(30, json.dumps({"key": "h9", "metric": "cpu", "ts": 120, "value": 1}))
    return out


def _read(path: Path) -> list[dict]:  # type: ignore[type-arg]
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    config = tmp_path / "config.toml"
    config.write_text(CONFIG)
    source = tmp_path / "input.jsonl"
    source.write_text("\n".join(_lines()) + "\n")
    return config, source


def _run(config: Path, source: Path, out: Path, *extra: str) -> dict[str, list[dict]]:  # type: ignore[type-arg]
    code = main(
        ["run", "--config", str(config), "--input", str(source), "--output-dir", str(out), *extra]
    )
    assert code == 0
    return {
        name: _read(out / f"{name}.jsonl")
        for name in ("posteriors", "anomalies", "dead_letter", "evicted")
    }


def test_run_writes_every_output(files: tuple[Path, Path], tmp_path: Path) -> None:
    config, source = files
    out = _run(config, source, tmp_path / "out")
    dead = {(d["line"], d["reason"]) for d in out["dead_letter"]}
    assert dead == {(21, "invalid_json"), (31, "unknown_metric")}
    assert all("raw" in d and d["detail"] for d in out["dead_letter"])
    assert [(a["key"], a["value"]) for a in out["anomalies"]] == [("h0", 99.0)]
    finals = {(p["key"], p["metric"]): p for p in out["posteriors"]}
    assert set(finals) == {
        ("h0", "latency"),
        ("h1", "latency"),
        ("h2", "latency"),
        ("h3", "latency"),
        ("h1", "err"),
    }
    assert finals[("h1", "err")]["params"] == {"alpha": 1.0 + 12, "beta": 1.0 + 6 * 38}
    lines = [line for line in source.read_text().splitlines() if line.strip()]
    applied = sum(1 for _ in lines) - len(out["dead_letter"])
    assert applied == 300 + 6 + 1


def test_outputs_do_not_depend_on_batch_size(files: tuple[Path, Path], tmp_path: Path) -> None:
    config, source = files
    one = _run(config, source, tmp_path / "one", "--batch-size", "1")
    many = _run(config, source, tmp_path / "many", "--batch-size", "64")
    assert one["anomalies"] == many["anomalies"]
    assert one["dead_letter"] == many["dead_letter"]
    finals = [{(p["key"], p["metric"]): p for p in run["posteriors"]} for run in (one, many)]
    assert finals[0] == finals[1]
    assert len(one["posteriors"]) > len(many["posteriors"])  # one record per touched stream


def test_run_reads_stdin(files: tuple[Path, Path], tmp_path: Path) -> None:
    config, source = files
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "bayestream.cli.main",
            "run",
            "--config",
            str(config),
            "--input",
            "-",
            "--output-dir",
            str(tmp_path / "stdin"),
        ],
        input=source.read_bytes(),
        capture_output=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert b"2 dead letters" in result.stderr
    from_file = _run(config, source, tmp_path / "file")
    assert _read(tmp_path / "stdin" / "posteriors.jsonl") == from_file["posteriors"]


def test_check_config_prints_resolved_rules(
    files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    config, _ = files
    assert main(["check-config", str(config)]) == 0
    resolved = json.loads(capsys.readouterr().out)
    assert resolved["rule"][1]["prior"] == {"alpha": 1.0, "beta": 1.0}
    assert resolved["rule"][0]["credible_levels"] == [0.95]


def test_check_config_prints_a_particle_rule(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "particle.toml"
    config.write_text(
        '[[rule]]\nmetric = "m"\nfamily = "particle"\nmodel = "poisson_rate"\n'
        "process_noise = 0.1\ninitial = { mean = 0.0, sd = 1.0 }\n"
    )
    assert main(["check-config", str(config)]) == 0  # was a ValueError from zip()
    rule = json.loads(capsys.readouterr().out)["rule"][0]
    assert rule["initial"] == {"mean": 0.0, "sd": 1.0} and rule["prior"] == {}
    assert rule["particles"] == 512


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[[rule]]\nmetric = "m"\nfamily = "poisson"\n', "rule[0].family"),
        (
            '[[rule]]\nmetric = "m"\nfamily = "normal_gamma"\nprior = { kappa = -1 }\n',
            "prior.kappa must be > 0",
        ),
        (
            '[[rule]]\nmetric = "m"\nfamily = "beta_binomial"\nhalf_life_seconds = 1\n'
            "half_life_events = 2\n",
            "not both",
        ),
        ('[[rule]]\nmetric = "m"\nfamily = "beta_binomial"\nspeed = 3\n', "rule[0].speed"),
        (
            '[[rule]]\nmetric = "m"\nfamily = "dirichlet"\nprior = { categories = ["a"] }\n',
            "at least 2",
        ),
        (
            '[[rule]]\nmetric = "m"\nfamily = "gamma_poisson"\ntransform = "log"\n',
            "'normal_gamma' only",
        ),
        (
            '[engine]\nmax_streams = 0\n[[rule]]\nmetric = "m"\nfamily = "dirichlet"\n',
            "engine.max_streams",
        ),
        (
            '[[rule]]\nmetric = "m"\nfamily = "normal_gamma"\ncredible_levels = [1e-300]\n',
            "rule[0].credible_levels",
        ),
        ("[[rule]\n", "not valid TOML"),
        ("", "rule"),
    ],
)
def test_bad_config_exits_2_naming_the_field(
    tmp_path: Path, text: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "bad.toml"
    config.write_text(text)
    assert main(["check-config", str(config)]) == 2
    assert message in capsys.readouterr().err


def test_missing_input_exits_2(
    files: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config, _ = files
    code = main(
        [
            "run",
            "--config",
            str(config),
            "--input",
            str(tmp_path / "nope.jsonl"),
            "--output-dir",
            str(tmp_path / "o"),
        ]
    )
    assert code == 2 and "no such file" in capsys.readouterr().err


def test_demo_runs_and_writes_its_outputs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from bayestream.cli.synthetic import HOSTILE, SERVICES
    from bayestream.runtime.files import OUTPUT_FILES

    monkeypatch.setenv("COLUMNS", "80")
    assert main(["demo", "--plain", "--events", "3000", "--output-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    dead = _read(tmp_path / "dead_letter.jsonl")
    assert len(dead) == len(HOSTILE)
    assert _read(tmp_path / "posteriors.jsonl") and (tmp_path / "config.toml").exists()
    assert len((tmp_path / "input.jsonl").read_bytes().splitlines()) == 3000  # --events N
    assert all(name in out for name in OUTPUT_FILES.values())  # the closing list names all
    # the reported anomalies are reconciled with the injected ones
    pattern = r"(\d+) anomalies reported for (\d+) injected: (\d+) of the injected ones, " \
              r"(\d+) from .*?(\d+) others"  # fmt: skip
    found = re.search(pattern.replace(" ", r"\s+"), out, re.S)  # rich wraps at 80 columns
    assert found, out
    reported, injected, hit, shifted, others = map(int, found.groups())
    assert reported == len(_read(tmp_path / "anomalies.jsonl")) == hit + shifted + others
    assert hit <= injected  # none injected in 3000 lines with seed 7; 198 of 198 in 200k
    # at 80 columns the posteriors table keeps each stream on one line, nothing cut
    assert max(len(line) for line in out.splitlines()) <= 80
    rows = [line for line in out.splitlines() if line.strip().startswith(SERVICES)]
    for service in SERVICES:
        for metric in ("errors", "latency_ms", "requests", "status"):
            row = [r for r in rows if r.split()[:2] == [service, metric]]
            assert len(row) == 1 and "…" not in row[0] and "%" in row[0], (service, metric, out)


@pytest.mark.parametrize("events", [100, 101, 3000, 20_000])
def test_synthetic_telemetry_has_exactly_the_lines_asked_for(events: int) -> None:
    from bayestream.cli.main import DEMO_MIN_EVENTS
    from bayestream.cli.synthetic import HOSTILE, MIN_EVENTS, generate

    assert DEMO_MIN_EVENTS == MIN_EVENTS
    telemetry = generate(events, seed=7)
    assert len(telemetry.lines) == events
    assert sum(line in HOSTILE for line in telemetry.lines) == len(HOSTILE)
    assert telemetry.injected == len(telemetry.injected_at)
    stamps = [json.loads(line)["ts"] for line in telemetry.lines if line not in HOSTILE]
    assert stamps == sorted(stamps) and stamps[0] < telemetry.shift_ts < stamps[-1]


class _Trickle(io.RawIOBase):
    """A pipe that hands out its bytes one at a time."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def read1(self, size: int = -1) -> bytes:
        return self._data.read(1)


@pytest.mark.parametrize("trickle", [False, True], ids=["file", "one byte per read"])
def test_a_byte_order_mark_at_the_start_is_skipped(trickle: bool) -> None:
    text = "\n".join(_lines(20)).encode() + b"\n"
    plain = [b.raw.message(i) for b in read_batches(io.BytesIO(text), 7) for i in range(len(b.raw))]
    source = _Trickle(BOM + text) if trickle else io.BytesIO(BOM + text)
    batches = list(read_batches(source, 7))  # type: ignore[arg-type]
    assert [b.raw.message(i) for b in batches for i in range(len(b.raw))] == plain
    numbers = np.concatenate([b.line_numbers for b in batches])
    assert numbers[0] == 1 and len(numbers) == len(plain)


def test_a_byte_order_mark_elsewhere_is_a_dead_letter(
    files: tuple[Path, Path], tmp_path: Path
) -> None:
    config, source = files
    lines = _lines(20)
    lines.insert(3, BOM.decode() + lines[2])
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = _run(config, source, tmp_path / "out")
    assert (4, "invalid_json") in {(d["line"], d["reason"]) for d in out["dead_letter"]}
