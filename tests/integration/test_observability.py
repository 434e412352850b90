"""The observability path, for real: a broker, ``bayestream generate`` feeding
``bayestream run --kafka``, and a real Prometheus (``prometheus`` on PATH: Debian's package)
scraping it with the shipped configuration and rules (``deploy/prometheus``); then every
dashboard panel's query and every alerting and recording rule's expression is evaluated
through Prometheus' HTTP API. Each must parse, name only metrics the process exports, and
return at least one series while the stack runs (an alert's comparisons are evaluated with
``bool``, so that a quiet stack still shows the series the alert watches)."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
DEADLINE_S = 150.0
RATE = 600  # events/s from the generator


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return int(response.status), bytes(response.read())
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read()
    except OSError:
        return 0, b""


def _yaml() -> Any:
    try:
        import yaml
    except ImportError:
        if os.environ.get("BAYESTREAM_DEPLOY_STRICT") == "1":
            pytest.fail("PyYAML is not installed (.ci/run installs it)")
        pytest.skip("PyYAML is not installed (.ci/run installs it)")
    return yaml


def _prometheus() -> str:
    path = shutil.which("prometheus")
    if path is None:
        if os.environ.get("BAYESTREAM_DEPLOY_STRICT") == "1":
            pytest.fail("prometheus is not installed (.ci/run installs Debian's package)")
        pytest.skip("prometheus is not installed (apt-get install prometheus)")
    return path


def _config_text(tag: str, metrics_port: int) -> str:
    """The shipped configuration with topics and group of this test's own, metrics on a
    free local port and calibration gauges every 200 events (instead of 2,000)."""
    shipped = (DEPLOY / "config" / "bayestream.toml").read_text("utf-8")
    engine, _, _ = shipped.partition("\n[kafka]")
    engine = engine.replace(
        "calibration_interval_events = 2000", "calibration_interval_events = 200"
    )
    assert "calibration_interval_events = 200\n" in engine
    return engine + (
        "\n[kafka]\n"
        f'input_topics = ["{tag}.telemetry"]\n'
        f'group_id = "{tag}"\n'
        f'posteriors_topic = "{tag}.posteriors"\n'
        f'anomalies_topic = "{tag}.anomalies"\n'
        f'drift_topic = "{tag}.drift"\n'
        f'calibration_topic = "{tag}.calibration"\n'
        f'dead_letter_topic = "{tag}.dead-letter"\n'
        f'labels_topic = "{tag}.labels"\n'
        "input_partitions = 2\n"
        "output_partitions = 1\n"
        'metrics_host = "127.0.0.1"\n'
        f"metrics_port = {metrics_port}\n"
    )


def _spawn(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    with log.open("wb") as out:
        return subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def stack(
    kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    """Generator, processor and Prometheus running; yields their addresses."""
    yaml = _yaml()
    prometheus = _prometheus()
    folder = tmp_path_factory.mktemp("observability")
    tag = f"obs-{uuid.uuid4().hex[:8]}"
    metrics_port, prometheus_port = _free_port(), _free_port()
    config = folder / "bayestream.toml"
    config.write_text(_config_text(tag, metrics_port), "utf-8")
    from bayestream.config import load_config
    from bayestream.engine.warmup import warm_up

    warm_up(load_config(config))  # compiled into the disk cache before any clock starts

    # the shipped scrape configuration, its targets pointed at the local processor
    scrape = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text("utf-8"))
    scrape["global"].update(scrape_interval="2s", evaluation_interval="2s")
    scrape["rule_files"] = [str(DEPLOY / "prometheus" / "alerts.yml")]
    (job,) = [j for j in scrape["scrape_configs"] if j["job_name"] == "bayestream"]
    job["static_configs"] = [{"targets": [f"127.0.0.1:{metrics_port}"]}]
    scrape["scrape_configs"] = [job]  # the query service is not part of this check
    (folder / "prometheus.yml").write_text(yaml.safe_dump(scrape), "utf-8")

    cli = [sys.executable, "-m", "bayestream.cli.main"]
    processes = [
        _spawn(
            [*cli, "generate", "--kafka", kafka_bootstrap, "--topic", f"{tag}.telemetry",
             "--rate", str(RATE), "--partitions", "2", "--labels-topic", f"{tag}.labels"],
            folder / "generate.log",
        ),
    ]  # fmt: skip
    try:
        time.sleep(2.0)  # the generator creates the topics
        processes.append(
            _spawn([*cli, "run", "--kafka", kafka_bootstrap, "--config", str(config)],
                   folder / "run.log")
        )  # fmt: skip
        processes.append(
            _spawn(
                [prometheus, f"--config.file={folder / 'prometheus.yml'}",
                 f"--storage.tsdb.path={folder / 'tsdb'}",
                 f"--web.listen-address=127.0.0.1:{prometheus_port}"],
                folder / "prometheus.log",
            )
        )  # fmt: skip
        yield {
            "metrics": f"http://127.0.0.1:{metrics_port}",
            "prometheus": f"http://127.0.0.1:{prometheus_port}",
            "folder": folder,
            "processes": processes,
        }
    finally:
        for process in reversed(processes):
            _stop(process)


def _logs(stack: dict[str, Any]) -> str:
    out = []
    for name in ("generate.log", "run.log", "prometheus.log"):
        path = stack["folder"] / name
        text = path.read_text("utf-8", "replace") if path.exists() else ""
        out.append(f"--- {name} (tail)\n" + "\n".join(text.splitlines()[-15:]))
    return "\n".join(out)


def _query(stack: dict[str, Any], expr: str) -> dict[str, Any]:
    url = f"{stack['prometheus']}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    status, body = _get(url)
    if not body:
        return {"status": "error", "error": f"HTTP {status}, no answer"}
    answer: dict[str, Any] = json.loads(body)
    return answer


def _with_bool(expr: str) -> str:
    """``expr`` with every comparison outside label matchers made a ``bool`` comparison."""
    out, depth, i = [], 0, 0
    while i < len(expr):
        c = expr[i]
        depth += c == "{"
        depth -= c == "}"
        op = re.match(r"(>=|<=|==|!=|>|<)", expr[i:]) if depth == 0 else None
        if op and not re.match(r"\s*bool\b", expr[i + len(op.group(1)) :]):
            out.append(f"{op.group(1)} bool")
            i += len(op.group(1))
            continue
        out.append(c)
        i += 1
    return "".join(out)


def _expressions() -> dict[str, str]:
    """Every query to check, by where it comes from."""
    yaml = _yaml()
    found: dict[str, str] = {}
    for path in sorted((DEPLOY / "grafana" / "dashboards").glob("*.json")):
        for panel in json.loads(path.read_text("utf-8"))["panels"]:
            for target in panel["targets"]:
                found[f"{path.stem} / {panel['title']} / {target['refId']}"] = target["expr"]
    rules = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text("utf-8"))
    for group in rules["groups"]:
        for rule in group["rules"]:
            if "alert" in rule:
                found[f"alert {rule['alert']}"] = _with_bool(rule["expr"])
            else:
                found[f"record {rule['record']}"] = rule["expr"]
    return found


def _exported(stack: dict[str, Any]) -> set[str]:
    """Series names on the processor's /metrics now."""
    _, body = _get(f"{stack['metrics']}/metrics")
    names = set()
    for line in body.decode().splitlines():
        if line and not line.startswith("#"):
            names.add(re.split(r"[{ ]", line, maxsplit=1)[0])
    return names


def test_every_panel_query_and_alert_expression_returns_series(stack: dict[str, Any]) -> None:
    expressions = _expressions()
    assert len(expressions) > 30
    pending: dict[str, str] = {}
    counts: dict[str, int] = {}
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        for process in stack["processes"]:
            assert process.poll() is None, f"a process of the stack exited\n{_logs(stack)}"
        pending = {}
        for where, expr in expressions.items():
            answer = _query(stack, expr)
            if answer.get("status") != "success":
                pending[where] = f"error: {answer.get('error')}"
            elif not answer["data"]["result"]:
                pending[where] = "no series"
            else:
                counts[where] = len(answer["data"]["result"])
        if not pending:
            break
        time.sleep(3.0)
    assert not pending, (
        "queries that failed or returned nothing while the stack ran:\n"
        + "\n".join(f"  {where}: {why}\n    {expressions[where]}" for where, why in pending.items())
        + f"\n{_logs(stack)}"
    )

    for where, count in counts.items():  # shown with -s, and in CI's log on failure
        print(f"{count:4d} series  {where}")
    # parsed, and every bayestream metric they name is on the live /metrics
    recorded = {n for w, n in ((w, w.split()[1]) for w in expressions if w.startswith("record "))}
    live = _exported(stack) | recorded
    for where, expr in expressions.items():
        named = set(re.findall(r"\b(bayestream[_:][a-zA-Z0-9_:]*)", expr))
        assert named <= live, f"{where}: {sorted(named - live)} not exported"


def test_prometheus_loaded_and_evaluates_every_shipped_rule(stack: dict[str, Any]) -> None:
    yaml = _yaml()
    rules = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text("utf-8"))
    shipped = {r.get("alert") or r.get("record") for g in rules["groups"] for r in g["rules"]}
    deadline = time.monotonic() + 30.0
    while True:
        _, body = _get(f"{stack['prometheus']}/api/v1/rules")
        groups = json.loads(body)["data"]["groups"] if body else []
        loaded = {r["name"]: r for g in groups for r in g["rules"]}
        evaluated = all(r.get("lastEvaluation", "").startswith("2") for r in loaded.values())
        if (set(loaded) == shipped and evaluated) or time.monotonic() > deadline:
            break
        time.sleep(1.0)
    assert set(loaded) == shipped
    bad = {name: r.get("lastError") for name, r in loaded.items() if r["health"] != "ok"}
    assert not bad, bad


def test_the_processor_answers_its_probes(stack: dict[str, Any]) -> None:
    deadline = time.monotonic() + 60.0
    while _get(f"{stack['metrics']}/readyz")[0] != 200 and time.monotonic() < deadline:
        time.sleep(1.0)
    assert _get(f"{stack['metrics']}/readyz")[0] == 200, _logs(stack)
    assert _get(f"{stack['metrics']}/healthz")[0] == 200
    _, targets = _get(f"{stack['prometheus']}/api/v1/targets")
    (target,) = json.loads(targets)["data"]["activeTargets"]
    assert target["labels"]["job"] == "bayestream"
    status = Path(f"/proc/{stack['processes'][1].pid}/status")
    if status.exists():  # for the sizing in docs/operations.md (shown with -s)
        rss = [line for line in status.read_text().splitlines() if line.startswith("VmHWM")]
        print(f"bayestream run --kafka, peak resident memory: {rss}")
