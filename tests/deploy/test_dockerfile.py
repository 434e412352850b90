"""The Dockerfile: hadolint clean, slim and pinned, non-root, kernels compiled at build,
HEALTHCHECK on /healthz, bayestream as PID 1. No Docker engine here: the build itself is not
run (docs/operations.md says what was checked)."""

from __future__ import annotations

import re
import subprocess

from tests.deploy import ROOT
from tests.deploy.tools import tool

TEXT = (ROOT / "Dockerfile").read_text("utf-8")


def _instructions() -> list[tuple[str, str]]:
    joined = re.sub(r"\\\n", " ", TEXT)
    out = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def test_hadolint_finds_nothing() -> None:
    done = subprocess.run(
        [tool("hadolint"), "Dockerfile"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_slim_base_pinned_to_an_exact_version() -> None:
    (arg,) = [rest for word, rest in _instructions() if word == "ARG"]
    assert re.fullmatch(r"PYTHON_IMAGE=python:\d+\.\d+\.\d+-slim-\w+", arg), arg
    assert [rest for word, rest in _instructions() if word == "FROM"] == [
        "${PYTHON_IMAGE} AS build",
        "${PYTHON_IMAGE}",
    ]


def test_runs_as_a_non_root_user() -> None:
    users = [rest for word, rest in _instructions() if word == "USER"]
    assert users == ["10001:10001"]


def test_kernels_are_compiled_at_build_time_into_the_cache_the_process_reads() -> None:
    runs = " ".join(rest for word, rest in _instructions() if word == "RUN")
    assert "warm_up(load_config(" in runs and "cache_is_empty()" in runs
    envs = " ".join(rest for word, rest in _instructions() if word == "ENV")
    assert "NUMBA_CACHE_DIR=/opt/bayestream/numba-cache" in envs
    # numba loads its cache only from a folder it can write: the run-time user owns it
    assert "chown -R 10001:10001 /opt/bayestream/numba-cache" in runs
    # the warm-up runs after the cache directory is set and before the switch to the user
    order = [word for word, _ in _instructions()]
    warm = next(i for i, (w, r) in enumerate(_instructions()) if w == "RUN" and "warm_up" in r)
    assert order.index("USER") > warm


def test_healthcheck_asks_healthz_and_the_process_is_pid_1() -> None:
    (health,) = [rest for word, rest in _instructions() if word == "HEALTHCHECK"]
    assert "CMD" in health and "BAYESTREAM_HEALTH_URL" in health
    assert "BAYESTREAM_HEALTH_URL=http://127.0.0.1:9464/healthz" in TEXT
    (entry,) = [rest for word, rest in _instructions() if word == "ENTRYPOINT"]
    assert entry == '["bayestream"]'  # exec form: no shell in between


def test_the_build_context_holds_what_the_build_copies() -> None:
    ignore = (ROOT / ".dockerignore").read_text("utf-8").split()
    assert ignore[ignore.index("*") :][:6] == [
        "*",
        "!pyproject.toml",
        "!README.md",
        "!src/",
        "!deploy/config/",
        "**/__pycache__",
    ]
    for word, rest in _instructions():
        if word == "COPY" and not rest.startswith("--from"):
            for source in rest.split()[:-1]:
                assert (ROOT / source).exists(), source
