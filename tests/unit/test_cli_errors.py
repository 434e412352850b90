"""The command line's error paths: exit 2 with the field or option named, never a traceback;
a closed pipe is not an error; --version."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from bayestream.cli.main import main
from tests.unit.test_cli import CONFIG, _lines


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    config = tmp_path / "config.toml"
    config.write_text(CONFIG)
    source = tmp_path / "input.jsonl"
    source.write_text("\n".join(_lines()) + "\n")
    return config, source


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    from importlib.metadata import version

    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"bayestream {version('bayestream')}"


@pytest.mark.parametrize(
    "argv",
    [["schema", "posteriors"], ["schema"], ["check-config", "CONFIG"]],
    ids=["schema NAME", "schema", "check-config"],
)
def test_a_reader_that_goes_away_is_not_an_error(argv: list[str], files: tuple[Path, Path]) -> None:
    """``bayestream schema | head``: the pipe is closed before anything is written."""
    argv = [str(files[0]) if a == "CONFIG" else a for a in argv]
    read, write = os.pipe()
    os.close(read)  # the reader is gone before the command writes
    try:
        result = subprocess.run(
            [sys.executable, "-m", "bayestream.cli.main", *argv],
            stdout=write,
            stderr=subprocess.PIPE,
            check=False,
        )
    finally:
        os.close(write)
    assert result.returncode == 0, result.stderr
    assert b"Traceback" not in result.stderr and b"BrokenPipe" not in result.stderr


def test_a_metrics_port_in_use_exits_2_before_any_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import bayestream.engine.warmup

    def no_work(*args: object) -> None:
        raise AssertionError("work started before the metrics port was checked")

    monkeypatch.setattr(bayestream.engine.warmup, "warm_up", no_work)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = tmp_path / "config.toml"
        config.write_text(f"[kafka]\nmetrics_port = {port}\n" + CONFIG)
        code = main(["run", "--kafka", "127.0.0.1:1", "--config", str(config)])
    err = capsys.readouterr().err
    assert code == 2
    assert f"[kafka] metrics_port = {port}" in err and "0 = any free port" in err
    assert len(err.strip().splitlines()) == 1


def test_create_input_topics_needs_kafka(
    files: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config, source = files
    code = main(["run", "--config", str(config), "--input", str(source), "--output-dir",
                 str(tmp_path), "--create-input-topics", "3"])  # fmt: skip
    assert code == 2 and "--create-input-topics applies to --kafka" in capsys.readouterr().err


def test_batch_size_below_1_is_a_usage_error(
    files: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config, source = files
    with pytest.raises(SystemExit) as exit_:
        main(["run", "--config", str(config), "--input", str(source), "--output-dir",
              str(tmp_path), "--batch-size", "0"])  # fmt: skip
    assert exit_.value.code == 2
    assert "--batch-size: must be at least 1" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("family", "drift"),
    [
        ("normal_gamma", "window_events = 3, false_alarm_rate = 0.999999"),
        ("gamma_poisson", "window_events = 3, false_alarm_rate = 0.999999"),
        ("normal_gamma", "window_events = 2, false_alarm_rate = 0.001"),
    ],
)
def test_a_drift_null_without_comparisons_is_not_a_crash(
    family: str, drift: str, files: tuple[Path, Path], tmp_path: Path
) -> None:
    _, source = files
    config = tmp_path / "drift.toml"
    config.write_text(
        f'[[rule]]\nmetric = "latency"\nfamily = "{family}"\n'
        f'drift = {{ {drift}, reference = "baseline", cooldown_windows = 1000000 }}\n'
    )
    out = tmp_path / "out"
    assert main(["run", "--config", str(config), "--input", str(source), "--output-dir",
                 str(out)]) in (0, 2)  # fmt: skip


@pytest.mark.parametrize("command", ["run", "demo"])
def test_an_output_dir_that_cannot_be_made_exits_2(
    command: str, files: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config, source = files
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    out = blocker / "out"
    argv = (
        ["run", "--config", str(config), "--input", str(source), "--output-dir", str(out)]
        if command == "run"
        else ["demo", "--plain", "--events", "100", "--output-dir", str(out)]
    )
    assert main(argv) == 2
    assert f"--output-dir {out}: cannot create" in capsys.readouterr().err


def test_an_output_file_that_cannot_be_written_exits_2(
    files: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config, source = files
    (tmp_path / "out" / "posteriors.jsonl").mkdir(parents=True)
    argv = ["run", "--config", str(config), "--input", str(source), "--output-dir"]
    assert main([*argv, str(tmp_path / "out")]) == 2
    assert "posteriors.jsonl: Is a directory" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["check-config", "run"])
def test_a_long_baseline_does_not_exhaust_memory(
    command: str, files: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The simulated drift null of count windows against a baseline warms up through
    3 x baseline_windows windows of 1000 streams (engine/null.py): 1e6 needed 67 GiB (a
    MemoryError); baseline_windows is bounded for these rules, the field named."""
    _, source = files
    config = tmp_path / "baseline.toml"
    config.write_text(
        '[[rule]]\nmetric = "latency"\nfamily = "normal_gamma"\n'
        'drift = { window_events = 4, reference = "baseline", baseline_windows = 1001 }\n'
    )
    argv = [command, "--config", str(config)] if command == "run" else [command, str(config)]
    if command == "run":
        argv += ["--input", str(source), "--output-dir", str(tmp_path / "out")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "rule[0].drift" in err and "baseline_windows must be at most 1000" in err


def test_max_trials_is_capped_where_an_event_costs_at_most_about_50_ms(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A Beta-Binomial event's tail and interval sum up to ``trials`` pmf terms (2**40 trials
    ran for 40 minutes); ``max_trials`` above 1e7 is rejected, the field named."""
    config = tmp_path / "trials.toml"
    config.write_text(
        '[engine]\nmax_trials = 1.0e8\n\n[[rule]]\nmetric = "ok"\nfamily = "beta_binomial"\n'
    )
    assert main(["check-config", str(config)]) == 2
    err = capsys.readouterr().err
    assert "engine.max_trials: Input should be less than or equal to 10000000" in err, err
