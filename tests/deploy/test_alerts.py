"""deploy/prometheus: promtool checks and unit tests, runbook links, exported metrics."""

from __future__ import annotations

import re
import subprocess

from tests.deploy import ROOT
from tests.deploy.tools import (
    DEPLOY,
    alert_rules,
    exported_series,
    load_yaml,
    metric_names,
    recording_rules,
    tool,
)

PROM = DEPLOY / "prometheus"


def _run(*args: str) -> str:
    done = subprocess.run(args, cwd=PROM, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_promtool_checks_the_rules_and_the_scrape_configuration() -> None:
    promtool = tool("promtool")
    _run(promtool, "check", "rules", "alerts.yml")
    _run(promtool, "check", "config", "prometheus.yml")


def test_promtool_unit_tests_pass() -> None:
    assert "SUCCESS" in _run(tool("promtool"), "test", "rules", "alerts_test.yml")


def test_every_alert_has_a_firing_test_and_a_silent_one() -> None:
    tests = load_yaml(PROM / "alerts_test.yml")["tests"]
    fires: set[str] = set()
    silent: set[str] = set()
    for case in tests:
        for check in case["alert_rule_test"]:
            (fires if check.get("exp_alerts") else silent).add(check["alertname"])
    names = {rule["alert"] for rule in alert_rules()}
    assert names - fires == set(), "alerts never shown to fire"
    assert names - silent == set(), "alerts never shown to stay silent"


def test_every_alert_is_a_page_or_a_ticket_and_links_its_runbook_section() -> None:
    headings = {
        re.sub(r"[^a-z0-9 -]", "", line[3:].strip().lower()).replace(" ", "-")
        for line in (ROOT / "docs" / "runbook.md").read_text("utf-8").splitlines()
        if line.startswith("## ")
    }
    for rule in alert_rules():
        assert rule["labels"]["severity"] in ("page", "ticket"), rule["alert"]
        url = rule["annotations"]["runbook_url"]
        path, _, anchor = url.partition("#")
        assert path == "docs/runbook.md", url
        assert anchor == rule["alert"].lower() and anchor in headings, url
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]


def test_alerts_name_only_metrics_the_code_exports() -> None:
    known = exported_series() | recording_rules()
    for rule in alert_rules():
        unknown = metric_names(rule["expr"]) - known
        assert not unknown, f"{rule['alert']}: {sorted(unknown)} are not exported"


def test_scrape_configuration_loads_the_rules_and_scrapes_job_bayestream() -> None:
    config = load_yaml(PROM / "prometheus.yml")
    assert config["rule_files"] == ["alerts.yml"]
    jobs = {job["job_name"] for job in config["scrape_configs"]}
    assert "bayestream" in jobs  # the alerts' up{job="bayestream"}
