"""Build the Grafana dashboards of bayestream (``deploy/grafana/dashboards/*.json``).

    python deploy/grafana/build.py          # rewrite the JSON files
    python deploy/grafana/build.py --check  # exit 1 if they differ from what this builds

The dashboards are plain data here, one list of panels per dashboard, so that a review reads
the queries, not the layout boilerplate; ``tests/deploy/test_dashboards.py`` checks the files
are up to date and every query names an exported metric, and
``tests/integration/test_observability.py`` runs every query against a live stack. No
dashboard library is used: grafanalib's last release is from January 2024, and the
grafana-foundation-sdk Python package (released under a timestamp epoch, 1769699998!10.1.0)
was not tried; for three dashboards of timeseries panels, this file without a dependency is
shorter than either would make it.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

OUT = Path(__file__).resolve().parent / "dashboards"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}


@dataclass(frozen=True)
class Panel:
    """One panel: a title, its PromQL queries (legend by query) and how to draw it."""

    title: str
    queries: tuple[tuple[str, str], ...]  # (expr, legend)
    unit: str = "short"
    kind: str = "timeseries"  # or "stat", "bargauge"
    description: str = ""
    width: int = 12
    overrides: dict[str, object] = field(default_factory=dict)


def _panel(panel: Panel, pid: int, x: int, y: int) -> dict[str, object]:
    out: dict[str, object] = {
        "id": pid,
        "type": panel.kind,
        "title": panel.title,
        "description": panel.description,
        "datasource": DATASOURCE,
        "gridPos": {"h": 8, "w": panel.width, "x": x, "y": y},
        "fieldConfig": {"defaults": {"unit": panel.unit, **panel.overrides}, "overrides": []},
        "options": {"legend": {"displayMode": "list", "placement": "bottom"}},
        "targets": [
            {
                "refId": chr(ord("A") + i),
                "datasource": DATASOURCE,
                "expr": expr,
                "legendFormat": legend,
            }
            for i, (expr, legend) in enumerate(panel.queries)
        ],
    }
    return out


def dashboard(uid: str, title: str, description: str, panels: list[Panel]) -> dict[str, object]:
    """A whole dashboard: the panels laid out left to right, two per row by default."""
    laid, x, y = [], 0, 0
    for pid, panel in enumerate(panels, start=1):
        if x + panel.width > 24:
            x, y = 0, y + 8
        laid.append(_panel(panel, pid, x, y))
        x += panel.width
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["bayestream"],
        "timezone": "utc",
        "schemaVersion": 39,
        "version": 1,
        "editable": False,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "templating": {
            "list": [
                {
                    "name": "datasource",
                    "label": "Prometheus",
                    "type": "datasource",
                    "query": "prometheus",
                    "current": {"text": "Prometheus", "value": "prometheus"},
                }
            ]
        },
        "annotations": {"list": []},
        "links": [],
        "panels": laid,
    }


def _quantiles(metric: str, window: str, by: str = "") -> tuple[tuple[str, str], ...]:
    group = f"{by}, le" if by else "le"
    return tuple(
        (
            f"histogram_quantile({q}, sum by ({group}) (rate({metric}_bucket[{window}])))",
            f"p{round(q * 100)}" + (f" {{{{{by}}}}}" if by else ""),
        )
        for q in (0.5, 0.99)
    )


ON_CALL = [
    Panel(
        "Anomalies and alerts per second",
        (
            ("sum by (instance) (rate(bayestream_anomalies_total[5m]))", "anomalies {{instance}}"),
            ("sum by (instance) (rate(bayestream_alerts_total[5m]))", "alerts {{instance}}"),
        ),
        "ops",
        description="Anomaly records emitted, and those of them that are alerts (one per "
        "incident: more surprising than the stream's previous alert_window_events events). "
        "The counters have no stream label: see the anomalies topic for which streams.",
    ),
    Panel(
        "Drift alarms (10 min)",
        (("sum by (instance) (increase(bayestream_drift_alarms_total[10m]))", "{{instance}}"),),
        description="Drift records emitted; many at once is a deploy (BayestreamDriftAlarmStorm).",
    ),
    Panel(
        "Consumer lag",
        (
            (
                "sum by (topic, partition) (bayestream_consumer_lag_messages)",
                "{{topic}} [{{partition}}]",
            ),
        ),
        description="Messages behind the end of each partition.",
    ),
    Panel(
        "Event-to-publish latency",
        _quantiles("bayestream_event_to_publish_seconds", "5m"),
        "s",
        description="Commit wall-clock time minus event time.",
    ),
    Panel(
        "Dead letters by reason",
        (("sum by (reason) (rate(bayestream_dead_letters_total[5m]))", "{{reason}}"),),
        "ops",
    ),
    Panel(
        "Data freshness",
        (
            (
                "max by (topic, partition) (bayestream_freshness_seconds)",
                "{{topic}} [{{partition}}]",
            ),
        ),
        "s",
        description="Now minus the newest event time applied, per input partition.",
    ),
    Panel(
        "Kafka transactions",
        (("sum by (result) (rate(bayestream_transactions_total[5m]))", "{{result}}"),),
        "ops",
        description="Committed and aborted transactions per second.",
    ),
    Panel(
        "Ready processors",
        (("sum(bayestream_ready)", "ready"), ('count(up{job="bayestream"} == 1)', "scraped")),
        description="Processors whose partitions are restored and processing.",
    ),
]

QUALITY = [
    Panel(
        "Coverage off nominal, by rule",
        (
            (
                "bayestream_predictive_coverage_ratio - on(nominal) group_left() "
                "bayestream:coverage_nominal",
                "{{rule}} {{kind}} {{nominal}} ({{instance}})",
            ),
        ),
        "percentunit",
        description="Observed minus nominal coverage of each published "
        "quantile and central interval (0 when calibrated; alert at +-0.05).",
    ),
    Panel(
        "Coverage, by rule",
        (("bayestream_predictive_coverage_ratio", "{{rule}} {{kind}} {{nominal}} ({{instance}})"),),
        "percentunit",
    ),
    Panel(
        "PIT histogram, by rule",
        (("avg by (rule, bin) (bayestream_pit_density)", "{{rule}} {{bin}}"),),
        kind="bargauge",
        description="Density per tenth of [0, 1], 1 when calibrated: "
        "U-shaped = over-confident, hump = under-confident, slope = biased.",
    ),
    Panel(
        "PIT uniformity p-value, by rule",
        (("min by (rule) (bayestream_pit_uniformity_p_value)", "{{rule}}"),),
    ),
    Panel(
        "Reliability of the anomaly probability (with labels)",
        (
            (
                "max by (rule, measure) (bayestream_anomaly_calibration_error)",
                "{{rule}} {{measure}}",
            ),
        ),
        description="ECE, MCE and Brier score against labels (labels_topic).",
    ),
    Panel("Labels joined", (("sum by (state) (bayestream_labels)", "{{state}}"),)),
    Panel(
        "Drift alarm rate against the configured false-alarm rate",
        (
            (
                "sum(rate(bayestream_drift_alarms_total[1h])) / "
                'sum(rate(bayestream_events_total{outcome="applied"}[1h]))',
                "alarms per event",
            ),
            ("bayestream:drift_false_alarm_rate:configured", "configured"),
        ),
        description="Drift alarms per applied event against false_alarm_rate / window_events "
        "(alerts.yml); all events count, so the observed line is a lower bound per drift rule.",
    ),
    Panel(
        "Anomaly rate against the configured rate",
        (
            (
                "sum(rate(bayestream_anomalies_total[1h])) / "
                'sum(rate(bayestream_events_total{outcome="applied"}[1h]))',
                "anomalies per event",
            ),
            ("bayestream:anomaly_rate:configured", "configured"),
        ),
        "percentunit",
    ),
]

CAPACITY = [
    Panel(
        "Events per second",
        (
            ("sum by (outcome) (rate(bayestream_events_total[5m]))", "{{outcome}}"),
            ("sum by (instance) (rate(bayestream_events_total[5m]))", "{{instance}}"),
        ),
        "ops",
    ),
    Panel(
        "Engine events per second per core",
        (
            (
                "sum(rate(bayestream_events_total[5m])) / "
                "sum(rate(bayestream_batch_duration_seconds_sum[5m]))",
                "events per engine-second",
            ),
        ),
        "ops",
        description="Events over engine time: what one busy core sustains (engine only; "
        "Kafka I/O excluded).",
    ),
    Panel(
        "Streams held and evicted",
        (
            ("sum by (instance) (bayestream_streams_tracked)", "held {{instance}}"),
            ("sum by (instance) (rate(bayestream_evictions_total[5m]))", "evicted/s {{instance}}"),
        ),
    ),
    Panel("Batch duration", _quantiles("bayestream_batch_duration_seconds", "5m"), "s"),
    Panel("Events per batch", _quantiles("bayestream_batch_events", "5m")),
    Panel(
        "Restore duration",
        _quantiles("bayestream_restore_duration_seconds", "1h"),
        "s",
        description="Changelog restores after an assignment (the last hour).",
    ),
    Panel(
        "Streams restored (1 h)",
        (("sum by (instance) (increase(bayestream_restored_streams_total[1h]))", "{{instance}}"),),
    ),
]

DASHBOARDS = {
    "bayestream-on-call.json": dashboard(
        "bayestream-on-call",
        "bayestream / on-call",
        "What the page alerts are about: outputs flowing, on time, fresh, committed.",
        ON_CALL,
    ),
    "bayestream-quality.json": dashboard(
        "bayestream-quality",
        "bayestream / quality",
        "Calibration of predictives and anomaly probabilities; drift and anomaly rates "
        "against the configured rates.",
        QUALITY,
    ),
    "bayestream-capacity.json": dashboard(
        "bayestream-capacity",
        "bayestream / capacity",
        "Throughput, streams held, batches and restores: for sizing and scaling.",
        CAPACITY,
    ),
}


def render(board: dict[str, object]) -> str:
    """The file text of one dashboard: stable key order, two-space indent."""
    return json.dumps(board, indent=2, sort_keys=True) + "\n"


def main(argv: list[str]) -> int:
    check = "--check" in argv
    stale = []
    for name, board in DASHBOARDS.items():
        path = OUT / name
        text = render(board)
        if check:
            if not path.is_file() or path.read_text("utf-8") != text:
                stale.append(name)
        else:
            path.write_text(text, "utf-8")
    if stale:
        print(f"out of date (run python {Path(__file__).name}): {', '.join(stale)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
