"""``bayestream demo``: synthetic telemetry through the real engine, with a live terminal view."""

from __future__ import annotations

import math
import time
from collections import deque
from importlib import resources
from pathlib import Path

from rich import box
from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from bayestream.cli.synthetic import SHIFTED, Telemetry, generate
from bayestream.config import parse_config
from bayestream.engine import Engine, Outputs
from bayestream.engine.warmup import warm_up
from bayestream.runtime.files import OUTPUT_FILES, RunStats, run_file
from bayestream.schema.records import AnomalyRecord, DriftRecord, PosteriorRecord

_LIVE_SECONDS = 8.0  # pace the live view so that a person can watch it,
_PACED_UNTIL_S = 40.0  # but no later than this after the start (a first run compiles first)


def demo_config_text() -> str:
    """The TOML the demo runs with (shipped in the package)."""
    return resources.files("bayestream.examples").joinpath("demo.toml").read_text("utf-8")


def run_demo(output_dir: Path, events: int, seed: int, live: bool) -> int:
    """Generate telemetry, run it through the engine into ``output_dir``, show it live."""
    import tomllib

    console = Console()
    started = time.perf_counter()
    output_dir.mkdir(parents=True, exist_ok=True)
    config_text = demo_config_text()
    config = parse_config(tomllib.loads(config_text), "demo.toml")
    (output_dir / "config.toml").write_text(config_text, encoding="utf-8")
    telemetry = generate(events, seed)
    source = output_dir / "input.jsonl"
    source.write_bytes(b"\n".join(telemetry.lines) + b"\n")
    console.print(
        f"[bold]bayestream demo[/]: {len(telemetry.lines):,} events from 6 services "
        f"({telemetry.injected} injected anomalies, svc-c latency triples at "
        f"ts={telemetry.shift_ts:.0f}) -> {output_dir}/"
    )
    with console.status("compiling kernels (cached after the first run)"):
        warm_up(config)
    view = _View(len(telemetry.lines), telemetry)
    paced = min(_LIVE_SECONDS, max(_PACED_UNTIL_S - (time.perf_counter() - started), 1.0))
    pause = paced / max(len(telemetry.lines) / config.engine.batch_size, 1.0)
    if live:
        with Live(view.render(), console=console, refresh_per_second=8) as screen:

            def on_batch(outputs: Outputs, stats: RunStats) -> None:
                view.absorb(outputs, stats)
                screen.update(view.render())
                time.sleep(pause)

            stats = run_file(Engine(config), source, output_dir, config.engine.batch_size, on_batch)
            view.absorb(Outputs(), stats)
            screen.update(view.render())
    else:
        stats = run_file(Engine(config), source, output_dir, config.engine.batch_size, view.absorb)
        console.print(view.render())
    console.print(
        f"[green]done[/] in {time.perf_counter() - started:.1f} s: {stats.lines:,} lines, "
        f"{stats.applied:,} applied, {stats.anomalies} anomalies, {stats.drift} drift alarms, "
        f"{stats.dead_letters} dead letters."
    )
    console.print(view.reconcile())
    console.print(
        f"Outputs in [bold]{output_dir}/[/]: {', '.join(OUTPUT_FILES.values())} "
        "(and the input.jsonl and config.toml they came from)"
    )
    return 0


class _View:
    """The live view: progress, the latest posterior per stream, the latest anomalies."""

    def __init__(self, total: int, telemetry: Telemetry | None = None) -> None:
        self.progress = Progress(
            TextColumn("events"),
            BarColumn(),
            TextColumn("{task.completed:,}/{task.total:,}"),
            TimeElapsedColumn(),
        )
        self.task = self.progress.add_task("events", total=total)
        self.latest: dict[tuple[str, str], PosteriorRecord] = {}
        self.anomalies: deque[AnomalyRecord] = deque(maxlen=8)
        self.drift: deque[DriftRecord] = deque(maxlen=3)
        self.stats = RunStats()
        self.telemetry = telemetry
        self.found = self.shifted = self.others = 0  # reported anomalies by what they are

    def absorb(self, outputs: Outputs, stats: RunStats) -> None:
        for record in outputs.posteriors:
            self.latest[(record.key, record.metric)] = record
        self.anomalies.extend(outputs.anomalies)
        self.drift.extend(outputs.drift)
        self.stats = stats
        self.progress.update(self.task, completed=stats.lines)
        truth = self.telemetry
        if truth is None:
            return
        for a in outputs.anomalies:
            if (a.key, a.metric, round(a.ts, 3)) in truth.injected_at:
                self.found += 1
            elif a.key == SHIFTED and a.metric == "latency_ms" and a.ts >= truth.shift_ts:
                self.shifted += 1
            else:
                self.others += 1

    def reconcile(self) -> str:
        """Why the anomalies reported are not the anomalies injected."""
        truth = self.telemetry
        if truth is None:
            return ""
        return (
            f"{self.found + self.shifted + self.others} anomalies reported for "
            f"{truth.injected} injected: {self.found} of the injected ones, {self.shifted} "
            f"from {SHIFTED}'s latency level shift (until drift resets its posterior), "
            f"{self.others} others (natural tails: a clean event is reported when its "
            "predictive tail probability is below its rule's anomaly_threshold)"
        )

    def render(self) -> Group:
        # fits 80 columns: no vertical rules, short cells, one line per stream
        table = Table(
            title="posteriors (latest per stream; p99: of the next observation)",
            box=box.SIMPLE_HEAD,
            pad_edge=False,
        )
        for column in ("stream", "metric", "estimate", "credible interval", "p99", "n_eff"):
            table.add_column(column, no_wrap=True, overflow="ellipsis")
        for (key, metric), rec in sorted(self.latest.items()):
            table.add_row(key, metric, *_describe(rec))
        lines = [_anomaly_line(a) for a in self.anomalies]
        title = f"anomalies ({self.stats.anomalies}), dead letters ({self.stats.dead_letters})"
        anomalies = Panel("\n".join(lines) or "none yet", title=title)
        shifts = [
            f"{d.key} {d.metric} {d.direction} in [{d.window_start:.0f}, {d.window_end:.0f}]: "
            f"KL {d.kl:.1f}, false-alarm p {d.false_alarm_probability:.1e}"
            for d in self.drift
        ]
        drift = Panel("\n".join(shifts) or "none yet", title=f"drift ({self.stats.drift})")
        return Group(self.progress, table, anomalies, drift)


def _anomaly_line(a: AnomalyRecord) -> str:
    """One anomaly, with what was expected instead (the predictive interval it was scored
    against) where its rule gives one."""
    value = f"{a.value:.4g}" if isinstance(a.value, float) else a.value
    expected = ""
    if a.predictive_interval:
        level, (lo, hi) = next(iter(a.predictive_interval.items()))
        ends = ("inf" if v is None else f"{v:.4g}" for v in (lo, hi))
        expected = f" (expected {' .. '.join(ends)} at {level})"
    return (
        f"{a.ts:.0f} {a.key} {a.metric}={value}{expected} "
        f"P(anomalous)={a.anomaly_probability:.3f} tail p={a.tail_probability:.2e}"
    )


def _describe(record: PosteriorRecord) -> tuple[str, str, str, str]:
    rec = record.to_dict()
    if record.family == "dirichlet":  # the share of server errors among status classes
        first: tuple[str, dict[str, list[float]]] = next(
            iter(rec["credible_intervals"].items()), ("", {})
        )
        lo, hi = first[1].get("5xx", [math.nan, math.nan])
        return (
            f"P(5xx) {rec['mean']['5xx']:.4f}",
            f"{lo:.4f}..{hi:.4f} {_percent(first[0])}",
            "-",
            f"{record.n_eff:.0f}",
        )
    level = next(iter(rec["credible_intervals"]), "")
    lo, hi = rec["credible_intervals"].get(level, [math.nan, math.nan])
    lo, hi = (math.nan if v is None else v for v in (lo, hi))
    p99 = rec["predictive_quantiles"].get("0.99")
    mean = rec["mean"] if isinstance(rec["mean"], float) else math.nan
    if record.metric == "latency_ms":  # modelled on the log scale: show the median latency
        est = f"median {math.exp(mean):.1f} ms"
        interval = f"{math.exp(lo):.1f}..{math.exp(hi):.1f} ms {_percent(level)}"
    elif record.metric == "errors":
        est = f"rate {mean:.4f}"
        interval = f"{lo:.4f}..{hi:.4f} {_percent(level)}"
    else:
        est = f"{mean:.1f} /s"
        interval = f"{lo:.1f}..{hi:.1f} /s {_percent(level)}"
    return est, interval, "-" if p99 is None else f"{p99:.1f}", f"{record.n_eff:.0f}"


def _percent(level: str) -> str:
    """A credible level as published ("0.95") written as a percentage ("95%")."""
    try:
        return f"{float(level) * 100:g}%"
    except ValueError:
        return level


__all__ = ["demo_config_text", "run_demo"]
