"""Quality benchmark: anomaly and change-point scores on labelled synthetic telemetry.

Prints one JSON document to stdout and a short table to stderr. Every detector sees the same
series (``benchmarks/telemetry.py``: eight archetypes of service telemetry with daily and weekly
cycles, trends, level shifts, variance changes, regime switches, spikes, dips, bursts,
heavy-tailed noise, counts with zeros, gaps and jittered timestamps; fixed seed), and is scored
with the definitions of ``benchmarks/quality_scores.py``:

- anomalies: the NAB windowed early-detection score (standard profile; 0 = never fires,
  100 = fires at the start of every labelled window and nowhere else), over a sweep of
  thresholds of the detector's score column; the best threshold (one for the whole corpus) and
  its score, per-archetype scores at that threshold and at each archetype's own best, and the
  score at the detector's default threshold where it has one (``anomaly_probability >= 0.5``
  or ``alert == 1`` for the project's rules; ``|z| >= 3`` for the z-scores), with false
  positives per day; windows detected per archetype and injected kind;
- change points: F1 with a margin (the TCPD definition; margins of 5 rows and of 6 hours) and
  segmentation covering, mean over series, against a ``null`` detector that never fires;
  changes followed by an alarm within 6 hours, per kind.

Detectors, in the same run:

- ``rolling_z``: ``|x - mean| / sd`` of the previous ``ROLLING_WINDOW`` (288) rows;
- ``seasonal_z``: the same against the same time of day (+-2 sampling periods) on each of the
  previous ``SEASONAL_DAYS`` (4) days;
- ``river_hst``: River's ``anomaly.HalfSpaceTrees`` (defaults, seed 42) on the value min-max
  scaled by the probation period (the first 15 %, at least a day; learned, not scored);
- ``river_adwin``, ``river_pagehinkley``: River's ``drift.ADWIN`` and ``drift.PageHinkley``
  (defaults) on the value standardised by the probation period's mean and sd; change points
  only;
- the project's rules (``PROJECT_RULES``: ``normal_gamma`` robust and not, ``dlm`` with a
  daily seasonality of 12 harmonics, and ``src/bayestream/examples/general.toml``), each
  series through ``bayestream.runtime.scorecsv.score_csv`` on a fresh engine: anomaly score =
  ``anomaly_probability``, change points = rows with ``drift == 1``. A rule whose
  configuration does not validate (or a missing file) is reported as ``"unavailable"``; the dlm
  rule is tried without its drift table when the family refuses one.

Run: ``python benchmarks/bench_quality.py [--quick] [--seed N] [--per-archetype K]
[--half-life-seconds H] [--only NAME,...]``.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import platform
import sys
import tempfile
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from quality_scores import (
    Labelled,
    Nab,
    candidate_thresholds,
    covering,
    eligible,
    f1_margin,
    sweep,
)
from telemetry import ARCHETYPES, DAY, HOUR, NEUTRAL_SECONDS, Series, corpus

ROLLING_WINDOW = 288
SEASONAL_DAYS = 4
SEASONAL_HALF_WIDTH = 2  # sampling periods either side of the same time of day
MIN_HISTORY = 30
SEASONAL_MIN = 3  # values at the same time of day, over the previous days
Z_DEFAULT = 3.0
CP_MARGIN_ROWS = 5  # TCPD's default margin
CP_MARGIN_SECONDS = 6 * HOUR
SEED = 20261208
METRIC = "bench"
HALF_LIFE = 3600.0  # seconds, of the normal_gamma rules (--half-life-seconds)

_ENGINE = """
[engine]
batch_size = 5000
threads = 1
"""
_DRIFT = """
[rule.drift]
window_events = 50
reference = "baseline"
false_alarm_rate = 0.001
reset_on_alarm = true
"""
PROJECT_RULES: dict[str, tuple[str, str]] = {
    # name: (the [[rule]] table without drift, its [rule.drift] table)
    "normal_gamma_robust": (
        """
[[rule]]
metric = "*"
family = "normal_gamma"
prior = { mu = 0.0, kappa = 0.01, alpha = 1.0, beta = 1.0 }
half_life_seconds = {half_life}
robust = true
""",
        _DRIFT,
    ),
    "normal_gamma_plain": (
        """
[[rule]]
metric = "*"
family = "normal_gamma"
prior = { mu = 0.0, kappa = 0.01, alpha = 1.0, beta = 1.0 }
half_life_seconds = {half_life}
robust = false
""",
        _DRIFT,
    ),
    "dlm_daily": (
        """
[[rule]]
metric = "*"
family = "dlm"
trend = true
seasonal = [{ period_seconds = 86400, harmonics = 12 }]
""",
        _DRIFT,
    ),
}
GENERAL = "general.toml"


# --- detectors ----------------------------------------------------------------------------


@dataclass
class Output:
    """What a detector says about one series: an anomaly score per row (higher: more
    anomalous; NaN: no score), detections at its default threshold, change-point alarms."""

    score: np.ndarray | None
    alert: np.ndarray | None
    drift: np.ndarray | None
    seconds: float
    note: str = ""


def _window_stats(
    x: np.ndarray, lo: np.ndarray, hi: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Count, sum and sum of squares of ``x[lo:hi]`` per row (cumulative sums)."""
    c1 = np.concatenate([[0.0], np.cumsum(x)])
    c2 = np.concatenate([[0.0], np.cumsum(x * x)])
    return (hi - lo).astype(np.float64), c1[hi] - c1[lo], c2[hi] - c2[lo]


def _z(
    x: np.ndarray, n: np.ndarray, s1: np.ndarray, s2: np.ndarray, min_n: int, floor: float
) -> np.ndarray:
    """``|x - mean| / max(sd, floor)`` from the window sums; NaN with fewer than ``min_n``
    values."""
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = s1 / n
        var = np.maximum(s2 / n - mean * mean, 0.0) * n / np.maximum(n - 1, 1)
        sd = np.sqrt(var)
        z = np.abs(x - mean) / np.maximum(sd, floor)
    z[n < min_n] = np.nan
    return np.asarray(z, dtype=np.float64)


def _sd_floor(s: Series) -> float:
    """A tenth of the probation period's sd: a window of equal values (zeros of a sparse
    count, a flat gauge) would otherwise give any different value an infinite z."""
    return 0.1 * float(s.values[s.ts < s.scored_from].std()) or 1e-9


def rolling_z(s: Series) -> Output:
    started = time.perf_counter()
    x = s.values.astype(np.float64)
    idx = np.arange(len(x))
    lo = np.maximum(idx - ROLLING_WINDOW, 0)
    xs = x - x[0]  # shifted: less cancellation in the sums of squares
    z = _z(xs, *_window_stats(xs, lo, idx), MIN_HISTORY, _sd_floor(s))
    return Output(z, z >= Z_DEFAULT, None, time.perf_counter() - started)


def seasonal_z(s: Series) -> Output:
    started = time.perf_counter()
    x = s.values.astype(np.float64)
    xs = x - x[0]
    n = np.zeros(len(x))
    s1 = np.zeros(len(x))
    s2 = np.zeros(len(x))
    half = SEASONAL_HALF_WIDTH * s.step + 1e-6
    for j in range(1, SEASONAL_DAYS + 1):
        centre = s.ts - j * DAY
        lo = np.searchsorted(s.ts, centre - half, "left")
        hi = np.searchsorted(s.ts, centre + half, "right")
        a, b, c = _window_stats(xs, lo, hi)
        n, s1, s2 = n + a, s1 + b, s2 + c
    z = _z(xs, n, s1, s2, SEASONAL_MIN, _sd_floor(s))
    return Output(z, z >= Z_DEFAULT, None, time.perf_counter() - started)


def river_hst(s: Series) -> Output:
    from river import anomaly

    started = time.perf_counter()
    warm = s.ts < s.scored_from
    lo, hi = float(s.values[warm].min()), float(s.values[warm].max())
    pad = 0.1 * (hi - lo) + 1e-9
    lo, hi = lo - pad, hi + pad
    scaled = np.clip((s.values - lo) / (hi - lo), 0.0, 1.0).tolist()
    model = anomaly.HalfSpaceTrees(seed=42)
    out = np.full(len(scaled), np.nan)
    for i, v in enumerate(scaled):
        row = {"x": v}
        if not warm[i]:
            out[i] = model.score_one(row)  # type: ignore[no-untyped-call]
        model.learn_one(row)  # type: ignore[no-untyped-call]
    return Output(out, None, None, time.perf_counter() - started)


def _river_drift(make: Callable[[], Any]) -> Callable[[Series], Output]:
    def run(s: Series) -> Output:
        started = time.perf_counter()
        warm = s.ts < s.scored_from
        mean, sd = float(s.values[warm].mean()), float(s.values[warm].std()) or 1.0
        detector = make()
        alarms = np.zeros(len(s.values), dtype=bool)
        for i, v in enumerate(((s.values - mean) / sd).tolist()):
            detector.update(v)
            alarms[i] = detector.drift_detected
        return Output(None, None, alarms, time.perf_counter() - started)

    return run


def _adwin() -> Any:
    from river import drift

    return drift.ADWIN()  # type: ignore[no-untyped-call]


def _pagehinkley() -> Any:
    from river import drift

    return drift.PageHinkley()


def null(s: Series) -> Output:
    """Never fires: the reference of the change-point scores (its NAB score is 0 by
    definition; F1 with the TCPD convention is 1 on a series without change, 2/3 with one)."""
    return Output(None, None, np.zeros(len(s.ts), dtype=bool), 0.0)


BASELINES: dict[str, Callable[[Series], Output]] = {
    "null": null,
    "rolling_z": rolling_z,
    "seasonal_z": seasonal_z,
    "river_hst": river_hst,
    "river_adwin": _river_drift(_adwin),
    "river_pagehinkley": _river_drift(_pagehinkley),
}


# --- the project's rules ------------------------------------------------------------------


@dataclass
class ProjectRule:
    """A validated configuration (as TOML text) and what the report should say about it."""

    name: str
    text: str | None
    unavailable: str | None = None
    note: str = ""


def _validate(text: str) -> Any:
    """The validated configuration; ``BayestreamError`` (a ``ConfigError``) when it is not."""
    from bayestream.config.load import parse_config
    from bayestream.errors import ConfigError

    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML: {exc}") from exc
    return parse_config(data, "<bench_quality>")


def project_rules(half_life: float = HALF_LIFE) -> list[ProjectRule]:
    """The rules of ``PROJECT_RULES`` and ``general.toml``, validated; a rule that does not
    validate with its drift table is tried without it (noted), then reported unavailable.
    Only configuration errors are reported so; anything else is a bug and stops the run."""
    from bayestream.errors import BayestreamError

    out = []
    for name, (template, drift) in PROJECT_RULES.items():
        rule = template.replace("{half_life}", repr(half_life))
        try:
            _validate(_ENGINE + rule + drift)
            out.append(ProjectRule(name, _ENGINE + rule + drift))
            continue
        except BayestreamError as exc:
            first = _first_line(exc)
        try:
            _validate(_ENGINE + rule)
            out.append(ProjectRule(name, _ENGINE + rule, note=f"without drift: {first}"))
        except BayestreamError:
            out.append(ProjectRule(name, None, unavailable=first))
    out.append(_general())
    return out


def _general() -> ProjectRule:
    from bayestream.errors import BayestreamError

    try:
        import bayestream.examples as examples

        path = Path(examples.__file__).parent / GENERAL
    except ImportError as exc:
        return ProjectRule("general", None, unavailable=f"bayestream.examples: {exc}")
    if not path.is_file():
        return ProjectRule("general", None, unavailable=f"{path} does not exist")
    text = path.read_text(encoding="utf-8")
    try:
        config = _validate(text)
    except BayestreamError as exc:
        return ProjectRule("general", None, unavailable=f"{path}: {_first_line(exc)}")
    if config.rule_for(METRIC) is None and any(c in config.rule[0].metric for c in "*?["):
        return ProjectRule("general", None, unavailable=f"{path}: no rule matches a metric")
    return ProjectRule("general", text, note=str(path))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return " ".join(line.strip() for line in text[:3])[:300] or type(exc).__name__


def run_project(rule: ProjectRule, s: Series, workdir: Path) -> Output:
    """One series through ``score_csv`` on a fresh engine (the time includes CSV I/O)."""
    from bayestream.config.load import parse_config
    from bayestream.engine import Engine
    from bayestream.runtime.scorecsv import score_csv

    assert rule.text is not None
    config = parse_config(tomllib.loads(rule.text), rule.name)
    metric = METRIC if config.rule_for(METRIC) is not None else None
    source, target = workdir / "in.csv", workdir / "out.csv"
    with source.open("w", encoding="utf-8") as f:
        f.write("timestamp,value\n")
        f.writelines(
            f"{t!r},{v!r}\n" for t, v in zip(s.ts.tolist(), s.values.tolist(), strict=True)
        )
    warnings: list[str] = []
    engine = Engine(config)
    started = time.perf_counter()
    score_csv(engine, source, target, metric, warn=warnings.append)
    seconds = time.perf_counter() - started
    columns = _read_columns(target)
    prob = columns["anomaly_probability"]
    alert = columns["alert"] >= 0.5 if "alert" in columns else prob >= 0.5
    index = config.rule_for(metric or config.rule[0].metric)
    has_drift = index is not None and config.rule[index].drift is not None
    drift = columns["drift"] >= 0.5 if has_drift else None  # no drift table: not scored
    unscored = int(np.isnan(prob).sum())
    note = f"{unscored} rows unscored: {'; '.join(warnings)}" if unscored else ""
    return Output(prob, alert, drift, seconds, note)


def _warm_up_series() -> Series:
    rng = np.random.default_rng(0)
    ts = 1.7e9 + 60.0 * np.arange(500)
    values = np.round(100 + 10 * rng.standard_normal(500), 1)
    return Series("warm_up", "warm_up", ts, values, 60.0, (), (), float(ts[0]), "real")


def _read_columns(path: Path) -> dict[str, np.ndarray]:
    """The numeric columns of a CSV by name (empty fields: NaN)."""
    with path.open(encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f))
    names = [n.strip() for n in rows[0]]
    data = np.full((len(rows) - 1, len(names)), np.nan)
    for i, row in enumerate(rows[1:]):
        for j, field in enumerate(row):
            data[i, j] = _number(field)
    return {name: data[:, j] for j, name in enumerate(names)}


def _number(field: str) -> float:
    """A CSV field as a number; NaN when empty (an unscored row) or not a number."""
    try:
        return float(field)
    except ValueError:
        return math.nan


# --- scoring ------------------------------------------------------------------------------


def labelled(s: Series) -> Labelled:
    mask = eligible(s.ts, s.anomalies, s.change_points, s.scored_from, NEUTRAL_SECONDS)
    return Labelled(s.ts, s.anomalies, mask)


def _nab_dict(r: Nab, days: float) -> dict[str, Any]:
    fp_per_day = round(r.fp / days, 3) if days > 0 else None
    return {"score": _round(r.score), "tp": r.tp, "fp": r.fp, "fn": r.fn, "fp_per_day": fp_per_day}


def _scored_days(series: list[Series], labels: list[Labelled], idx: list[int]) -> float:
    """Days of scored rows (eligible rows times the sampling period)."""
    return sum(float(labels[i].mask.sum()) * series[i].step for i in idx) / DAY


def _round(x: float, digits: int = 2) -> float | None:
    """JSON has no NaN or infinity: the score of series without windows is null."""
    return round(x, digits) if math.isfinite(x) else None


def score_anomalies(
    series: list[Series], labels: list[Labelled], outputs: list[Output]
) -> dict[str, Any]:
    """The threshold sweep over the whole corpus, then per archetype."""
    pairs = zip(labels, outputs, strict=True)
    scores = [np.where(lab.mask, _given(o.score), np.nan) for lab, o in pairs]
    thresholds = candidate_thresholds(scores)
    results = sweep(scores, labels, thresholds)
    if not results:
        return {"unavailable": "no finite score"}
    totals = [sum(per, Nab()) for _, per in results]
    best = int(np.nanargmax([t.score if np.isfinite(t.score) else -1e300 for t in totals]))
    best_thr, best_per = results[best]
    all_days = _scored_days(series, labels, list(range(len(series))))
    report: dict[str, Any] = {
        "best_threshold": float(best_thr),
        **_nab_dict(totals[best], all_days),
    }
    default_per = None
    if outputs[0].alert is not None:
        default_per = [_default_nab(lab, o.alert) for lab, o in zip(labels, outputs, strict=True)]
        report["default"] = _nab_dict(sum(default_per, Nab()), all_days)
    per_arch: dict[str, Any] = {}
    for archetype in ARCHETYPES:
        idx = [i for i, s in enumerate(series) if s.archetype == archetype]
        if not idx:
            continue
        days = _scored_days(series, labels, idx)
        at_best = sum((best_per[i] for i in idx), Nab())
        entry: dict[str, Any] = {"at_best_threshold": _nab_dict(at_best, days)}
        if any(labels[i].windows for i in idx):  # a control's own best is to never fire
            own = [sum((per[i] for i in idx), Nab()) for _, per in results]
            own_best = int(np.argmax([r.score if np.isfinite(r.score) else -1e300 for r in own]))
            best_own = _nab_dict(own[own_best], days)
            entry["own_best"] = {"threshold": results[own_best][0], **best_own}
        if default_per is not None:
            entry["default"] = _nab_dict(sum((default_per[i] for i in idx), Nab()), days)
        per_arch[archetype] = entry
    report["per_archetype"] = per_arch
    best_hits = [
        (lab.mask & (np.nan_to_num(sc, nan=-np.inf) >= best_thr))
        for lab, sc in zip(labels, scores, strict=True)
    ]
    report["detected_by_kind"] = {"at_best_threshold": _by_kind(series, labels, best_hits)}
    if default_per is not None:
        hits = [lab.mask & _given(o.alert) for lab, o in zip(labels, outputs, strict=True)]
        report["detected_by_kind"]["default"] = _by_kind(series, labels, hits)
    return report


def _given(a: np.ndarray | None) -> np.ndarray:
    assert a is not None  # the caller checked that the detector gives this column
    return a


def _by_kind(
    series: list[Series], labels: list[Labelled], hits: list[np.ndarray]
) -> dict[str, str]:
    """``detected/labelled`` windows per archetype and injected kind."""
    found: dict[str, list[int]] = {}
    for s, lab, hit in zip(series, labels, hits, strict=True):
        at = lab.ts[hit]
        for (b, e), kind in zip(s.anomalies, s.anomaly_kinds, strict=True):
            count = found.setdefault(f"{s.archetype}/{kind}", [0, 0])
            count[0] += bool(np.any((at >= b) & (at <= e)))
            count[1] += 1
    return {k: f"{d}/{n}" for k, (d, n) in sorted(found.items())}


def _default_nab(lab: Labelled, alert: np.ndarray | None) -> Nab:
    from quality_scores import nab

    assert alert is not None
    return nab(lab.ts[alert & lab.mask], lab.windows)


def score_change_points(series: list[Series], outputs: list[Output]) -> dict[str, Any]:
    """Mean F1 (margins of 5 rows and 6 hours; precision and recall at 6 hours) and covering,
    overall and per archetype; per kind of change, how many got an alarm within 6 hours after
    it."""
    rows: list[dict[str, float]] = []
    found: dict[str, list[int]] = {}
    for s, o in zip(series, outputs, strict=True):
        assert o.drift is not None
        scored = o.drift & (s.ts >= s.scored_from)
        predicted = np.flatnonzero(scored).tolist()
        truth = np.searchsorted(s.ts, np.asarray(s.change_points, dtype=np.float64)).tolist()
        margin_6h = max(CP_MARGIN_ROWS, round(CP_MARGIN_SECONDS / s.step))
        days = (s.ts[-1] - s.scored_from) / DAY
        rows.append(
            {
                "f1": f1_margin(truth, predicted, CP_MARGIN_ROWS)["f1"],
                "f1_6h": f1_margin(truth, predicted, margin_6h)["f1"],
                "cover": covering(truth, predicted, len(s.ts)),
                "precision_6h": f1_margin(truth, predicted, margin_6h)["precision"],
                "recall_6h": f1_margin(truth, predicted, margin_6h)["recall"],
                "alarms_per_day": len(predicted) / days,
            }
        )
        at = s.ts[scored]
        for c, kind in zip(s.change_points, s.change_kinds, strict=True):
            count = found.setdefault(f"{s.archetype}/{kind}", [0, 0])
            count[0] += bool(np.any((at >= c) & (at <= c + CP_MARGIN_SECONDS)))
            count[1] += 1

    def mean(idx: list[int]) -> dict[str, float]:
        return {k: round(float(np.mean([rows[i][k] for i in idx])), 3) for k in rows[0]}

    report: dict[str, Any] = mean(list(range(len(series))))
    report["per_archetype"] = {
        a: mean([i for i, s in enumerate(series) if s.archetype == a])
        for a in ARCHETYPES
        if any(s.archetype == a for s in series)
    }
    report["detected_within_6h_by_kind"] = {k: f"{d}/{n}" for k, (d, n) in sorted(found.items())}
    return report


def evaluate(
    name: str, series: list[Series], labels: list[Labelled], run: Callable[[Series], Output]
) -> dict[str, Any]:
    outputs = [run(s) for s in series]
    events = sum(len(s.ts) for s in series)
    seconds = sum(o.seconds for o in outputs)
    report: dict[str, Any] = {
        "events": events,
        "seconds": round(seconds, 3),
        "events_per_second": round(events / seconds) if seconds > 0 else None,
    }
    notes = {s.name: o.note for s, o in zip(series, outputs, strict=True) if o.note}
    if notes:
        report["notes"] = notes
    if outputs[0].score is not None:
        report["anomalies"] = score_anomalies(series, labels, outputs)
    if outputs[0].drift is not None:
        report["change_points"] = score_change_points(series, outputs)
    print(f"bench_quality: {name} done ({seconds:.1f} s)", file=sys.stderr)
    return report


# --- report -------------------------------------------------------------------------------


def table(detectors: dict[str, Any]) -> str:
    """The headline figures, one detector a line."""
    lines = [
        f"{'detector':22} {'NAB best':>9} {'thr':>9} {'NAB dflt':>9} "
        f"{'CP F1':>6} {'F1 6h':>6} {'cover':>6} {'ev/s':>9}"
    ]
    for name, r in detectors.items():
        if "unavailable" in r:
            lines.append(f"{name:22} unavailable: {r['unavailable'][:70]}")
            continue
        a, c = r.get("anomalies", {}), r.get("change_points", {})

        def fmt(x: Any, spec: str) -> str:
            width = int(spec.split(".")[0].rstrip("dgf") or 0)
            return format(x, spec) if isinstance(x, int | float) else "-".rjust(width)

        lines.append(
            f"{name:22} {fmt(a.get('score'), '9.1f')} {fmt(a.get('best_threshold'), '9.3g')} "
            f"{fmt(a.get('default', {}).get('score'), '9.1f')} {fmt(c.get('f1'), '6.3f')} "
            f"{fmt(c.get('f1_6h'), '6.3f')} {fmt(c.get('cover'), '6.3f')} "
            f"{fmt(r.get('events_per_second'), '9d')}"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--per-archetype", type=int, default=8, help="series per archetype")
    parser.add_argument("--quick", action="store_true", help="a small run, for CI smoke runs")
    parser.add_argument(
        "--half-life-seconds",
        type=float,
        default=HALF_LIFE,
        help="half_life_seconds of the normal_gamma rules",
    )
    parser.add_argument("--only", default="", help="comma-separated detector names (default: all)")
    args = parser.parse_args()
    if args.quick:
        args.per_archetype = 1
    started = time.perf_counter()
    series = corpus(args.seed, args.per_archetype, quick=args.quick)
    labels = [labelled(s) for s in series]
    only = {n for n in args.only.split(",") if n}
    detectors: dict[str, Any] = {}
    for name, run in BASELINES.items():
        if not only or name in only:
            detectors[name] = evaluate(name, series, labels, run)
    with tempfile.TemporaryDirectory(prefix="bench_quality_") as tmp:
        for rule in project_rules(args.half_life_seconds):
            if only and rule.name not in only:
                continue
            if rule.text is None:
                detectors[rule.name] = {"unavailable": rule.unavailable}
                print(f"bench_quality: {rule.name} unavailable", file=sys.stderr)
                continue

            def run_rule(s: Series, rule: ProjectRule = rule) -> Output:
                return run_project(rule, s, Path(tmp))

            run_rule(_warm_up_series())  # compiles (or loads) the kernels outside the timing

            detectors[rule.name] = evaluate(rule.name, series, labels, run_rule)
            detectors[rule.name]["config"] = rule.text.strip()
            if rule.note:
                detectors[rule.name]["note"] = rule.note
    report = {
        "benchmark": "quality",
        "seed": args.seed,
        "quick": args.quick,
        "normal_gamma_half_life_seconds": args.half_life_seconds,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "corpus": {
            "series": len(series),
            "events": sum(len(s.ts) for s in series),
            "anomaly_windows": sum(len(s.anomalies) for s in series),
            "change_points": sum(len(s.change_points) for s in series),
            "per_archetype": {
                a: {
                    "series": sum(s.archetype == a for s in series),
                    "events": sum(len(s.ts) for s in series if s.archetype == a),
                    "anomaly_windows": sum(len(s.anomalies) for s in series if s.archetype == a),
                    "change_points": sum(len(s.change_points) for s in series if s.archetype == a),
                }
                for a in ARCHETYPES
            },
        },
        "detectors": detectors,
        "seconds": round(time.perf_counter() - started, 1),
    }
    json.dump(report, sys.stdout, indent=2, allow_nan=False)  # strict JSON: no NaN, no inf
    print()
    print(table(detectors), file=sys.stderr)


if __name__ == "__main__":
    main()
