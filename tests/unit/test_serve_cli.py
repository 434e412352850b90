"""``bayestream serve`` start-up errors that need no broker: one line, exit 2."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from bayestream.cli.main import main

CONFIG = '[[rule]]\nmetric = "lat"\nfamily = "normal_gamma"\n'


def test_port_in_use_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "c.toml"
    config.write_text(CONFIG)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code = main(
            ["serve", "--kafka", "127.0.0.1:1", "--config", str(config), "--port", str(port)]
        )
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert f"--port {port}: cannot listen" in err[0] and "in use" in err[0]


def test_unreachable_broker_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "c.toml"
    config.write_text(CONFIG)
    argv = ["serve", "--kafka", "127.0.0.1:1", "--config", str(config), "--port", "0"]
    code = main([*argv, "--connect-timeout", "1"])
    assert code == 2
    err = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert len(err) == 1, err
    assert "127.0.0.1:1" in err[0] and "bayestream.posteriors" in err[0]
