"""deploy/grafana: the dashboards are what build.py makes, and query exported metrics."""

from __future__ import annotations

import json
import runpy
from typing import Any

from tests.deploy.tools import DEPLOY, exported_series, load_yaml, metric_names, recording_rules

GRAFANA = DEPLOY / "grafana"


def _boards() -> dict[str, dict[str, Any]]:
    return {
        path.name: json.loads(path.read_text("utf-8"))
        for path in sorted((GRAFANA / "dashboards").glob("*.json"))
    }


def test_the_json_files_are_what_build_py_makes() -> None:
    build = runpy.run_path(str(GRAFANA / "build.py"))
    assert set(build["DASHBOARDS"]) == set(_boards())
    for name, board in build["DASHBOARDS"].items():
        text = (GRAFANA / "dashboards" / name).read_text("utf-8")
        assert text == build["render"](board), f"{name}: run python deploy/grafana/build.py"


def test_three_dashboards_with_unique_uids_and_panel_ids() -> None:
    boards = _boards()
    assert set(boards) == {
        "bayestream-on-call.json",
        "bayestream-quality.json",
        "bayestream-capacity.json",
    }
    assert len({b["uid"] for b in boards.values()}) == 3
    for board in boards.values():
        ids = [p["id"] for p in board["panels"]]
        assert len(ids) == len(set(ids))
        for panel in board["panels"]:
            assert panel["targets"], panel["title"]
            assert all(t["expr"].strip() for t in panel["targets"])


def test_every_query_names_only_exported_metrics_or_recorded_rules() -> None:
    known = exported_series() | recording_rules()
    for name, board in _boards().items():
        for panel in board["panels"]:
            for target in panel["targets"]:
                unknown = metric_names(target["expr"]) - known
                assert not unknown, f"{name} / {panel['title']}: {sorted(unknown)}"


def test_provisioning_points_at_the_dashboards_and_the_data_source_uid() -> None:
    source = load_yaml(GRAFANA / "provisioning" / "datasources" / "prometheus.yml")
    (datasource,) = source["datasources"]
    assert datasource["type"] == "prometheus" and datasource["uid"] == "prometheus"
    provider = load_yaml(GRAFANA / "provisioning" / "dashboards" / "bayestream.yml")
    assert provider["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"
    for board in _boards().values():
        (variable,) = board["templating"]["list"]
        assert variable["type"] == "datasource" and variable["current"]["value"] == "prometheus"
