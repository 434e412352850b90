"""Particle streams through ``bayestream run``, the whole process, against per-event numpy.

Prints one JSON document. Workload (issue 21): one ``family = "particle"`` rule (local level,
Normal observations, ``per = "event"``, P particles, otherwise the defaults: the default emit
policy, predictive quantiles and credible levels, robust updating, ``[engine] batch_size``
50k, the default threads), 10,000 streams visited round robin; each stream's level is a
Gaussian random walk (variance ``Q`` per visit) observed with Normal noise (variance ``R``).
The event files are generated here (:func:`write_events`).

Measured, per P (256 and 1024):

- ``marginal_events_per_s``: ``bayestream run`` on ``N1`` and ``N2`` events (whole batches of
  50k, so both have the same records per event), each run timed from process start to exit,
  the best of ``--repeats`` interleaved runs; rate = (N2 - N1) / (t2 - t1), so start-up
  (imports, loading cached kernels, warm-up) cancels. ``particle_updates_per_s`` is that
  times P;
- ``numpy_per_event_events_per_s``: a per-event numpy implementation of the same bootstrap
  filter (:func:`numpy_step`: propagate, predictive tail, weight, normalise, systematic
  resampling when ESS < P/2; per-stream state, one Python step per event), run in this
  process on the events of the file's first 200 streams (their first visits untimed), once
  after each repeat of the runs (the ratio uses the best). It does less than the engine (no anomaly
  probability, no tempered update, no records), so the ratio understates the engine;
- ``record_us``: the cost of one posterior record, whole process: ``--record-events``
  (default ``N2``) events in batches of 10k (every batch touches every stream: a record per
  event) with the default ``emit = "every_batch"`` against ``emit = "interval"`` with an
  interval longer than the run (a record per stream after its first batch and at the end),
  (t_default - t_interval) / (records_default - records_interval); ``summary_us`` the same
  as a detail, in process: the summary kernel alone per row (10,000 rows after the run's
  events);
- ``filter_events_per_s``: the filter kernel alone in process (events of the file, no decoding
  and no records), for scale.

Run: ``python benchmarks/bench_particle.py [--quick] [--repeats N] [--output FILE]`` (see
``--help``; code whose records cost milliseconds wants ``--record-events 30000 --summary-rows
1000``).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numba
import numpy as np
from scipy.special import ndtr

from bayestream.models import particle as pf
from bayestream.models._protocol import (
    EXTRA,
    N_OUT,
    N_SETTINGS,
    S_EXTRA,
    S_OUTLIER_RATE,
    S_OUTLIER_SCALE,
    S_ROBUST,
    S_ROBUST_MIN,
)

STREAMS = 10_000
Q, R = 0.1, 1.0  # process variance per event, observation variance
INIT_MEAN, INIT_SD = 0.0, 3.0
START_TS = 1_700_000_000.0
N1, N2 = 50_000, 150_000  # the two run lengths of the marginal rate
NUMPY_STREAMS = 200
RECORD_BATCH = 10_000  # batches that touch every stream once: one record per event
TARGETS = {"particle_updates_per_s_P1024": 40e6, "vs_numpy_per_event": 1.5}


# --- the workload ------------------------------------------------------------------------------


def events(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Stream index and value of ``n`` events, streams visited round robin."""
    rng = np.random.default_rng(seed)
    visits = -(-n // STREAMS)
    start = rng.normal(INIT_MEAN, INIT_SD, STREAMS)
    level = start + np.cumsum(rng.normal(0.0, np.sqrt(Q), (visits, STREAMS)), axis=0)
    y = level + rng.normal(0.0, np.sqrt(R), (visits, STREAMS))
    return np.tile(np.arange(STREAMS), visits)[:n], y.reshape(-1)[:n]


def write_events(path: Path, n: int) -> None:
    """``n`` JSON events (one per line) of :func:`events`; event time 1 ms apart."""
    slots, y = events(n)
    ts = START_TS + 0.001 * np.arange(n)
    with path.open("w") as f:
        f.writelines(
            f'{{"key":"s{s}","metric":"level","ts":{t:.3f},"value":{v:.6f}}}\n'
            for s, t, v in zip(slots.tolist(), ts.tolist(), y.tolist(), strict=True)
        )


def write_config(path: Path, p: int, interval: bool = False) -> None:
    emit = 'emit = "interval"\nemit_interval_seconds = 1e9\n' if interval else ""
    path.write_text(
        f"""[[rule]]
metric = "level"
family = "particle"
model = "local_level"
particles = {p}
per = "event"
process_noise = {Q}
observation_noise = {R}
initial = {{ mean = {INIT_MEAN}, sd = {INIT_SD} }}
{emit}"""
    )


def run(config: Path, data: Path, out: Path, batch: int | None = None) -> tuple[float, int]:
    """Wall seconds of one ``bayestream run`` process, and the posterior records it wrote."""
    command = [sys.executable, "-m", "bayestream.cli.main", "run", "--config", str(config)]
    command += ["--input", str(data), "--output-dir", str(out)]
    if batch is not None:
        command += ["--batch-size", str(batch)]
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    seconds = time.perf_counter() - start
    with (out / "posteriors.jsonl").open("rb") as f:
        records = sum(1 for _ in f)
    return seconds, records


# --- the per-event numpy baseline --------------------------------------------------------------


def numpy_step(x: np.ndarray, lw: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> Any:
    """One event per row of x, lw ([B, P]): propagate, predictive upper tail (before the
    weights see y), weight, normalise, systematic resampling where ESS < P/2."""
    b, p = x.shape
    x += np.sqrt(Q) * rng.standard_normal((b, p))
    w = np.exp(lw)
    z = (y[:, None] - x) / np.sqrt(R)
    tail = (w * ndtr(-z)).sum(axis=1)
    lw += -0.5 * z * z
    top = lw.max(axis=1, keepdims=True)
    e = np.exp(lw - top)
    total = e.sum(axis=1, keepdims=True)
    lw[...] = lw - top - np.log(total)
    ess = total[:, 0] ** 2 / (e * e).sum(axis=1)
    low = np.flatnonzero(ess < 0.5 * p)
    if low.size:
        cum = np.cumsum(e[low], axis=1)
        cum /= cum[:, -1:]
        pos = (np.arange(p) + rng.random((low.size, 1))) / p
        idx = np.empty((low.size, p), dtype=np.int64)
        for k in range(low.size):  # searchsorted is 1-D only
            idx[k] = np.minimum(np.searchsorted(cum[k], pos[k]), p - 1)
        x[low] = np.take_along_axis(x[low], idx, axis=1)
        lw[low] = -np.log(p)
    return tail


def numpy_per_event(p: int, n: int, streams: int) -> float:
    """Events per second of :func:`numpy_step`, one event at a time, on the events of the
    first ``streams`` streams among the first ``n`` (their first visits untimed)."""
    slots, y = events(n)
    keep = slots < streams
    slots, y = slots[keep], y[keep]
    rng = np.random.default_rng(1)
    x = rng.normal(INIT_MEAN, INIT_SD, (streams, p))
    lw = np.full((streams, p), -np.log(p))
    for i in range(streams):
        numpy_step(x[i : i + 1], lw[i : i + 1], y[i : i + 1], rng)
    start = time.perf_counter()
    for i in range(streams, slots.shape[0]):
        s = slots[i]
        numpy_step(x[s : s + 1], lw[s : s + 1], y[i : i + 1], rng)
    return (slots.shape[0] - streams) / (time.perf_counter() - start)


# --- in-process details ------------------------------------------------------------------------


class Rows:
    """The engine's columnar particle state for STREAMS streams, driven directly."""

    def __init__(self, p: int) -> None:
        self.p = p
        self.params = np.zeros((STREAMS, pf.row_width(p) + EXTRA))
        self.last_ts = np.full(STREAMS, np.nan)
        self.n_eff = np.zeros(STREAMS)
        self.obs_size = np.full(STREAMS, np.nan)
        keys = np.arange(STREAMS, dtype=np.uint64) * np.uint64(7919)
        pf.seed_rows(self.params, p, np.arange(STREAMS), keys)
        self.settings = np.zeros(N_SETTINGS)  # the engine's defaults for the rule above
        self.settings[S_ROBUST] = 1.0
        self.settings[S_ROBUST_MIN] = 10.0
        self.settings[S_OUTLIER_RATE] = 0.001
        self.settings[S_OUTLIER_SCALE] = 10.0
        self.settings[S_EXTRA] = pf.row_width(p)

    def update(self, slots: np.ndarray, y: np.ndarray) -> float:
        m = slots.size
        start = time.perf_counter()
        pf.update(
            self.params, self.last_ts, self.n_eff, self.obs_size, self.p, pf.MODEL_LOCAL_LEVEL,
            pf.OBS_NORMAL, 4.0, Q, True, R, INIT_MEAN, INIT_SD, pf.RESAMPLE_SYSTEMATIC, 0.5, 0,
            np.inf, slots, np.arange(m, dtype=float), y, np.ones(m), np.full(m, -np.inf),
            self.settings, np.full((m, N_OUT), np.nan), np.empty(m, np.int8),
        )  # fmt: skip
        return time.perf_counter() - start

    def summarize(self, m: int) -> float:
        """Seconds per row of the summary kernel with the default levels and quantiles, over
        the first ``m`` rows."""
        levels, quantiles = np.array([0.95]), np.array([0.5, 0.9, 0.95, 0.99])
        out = [np.empty(m), np.empty(m), np.empty((m, 1)), np.empty((m, 1)), np.empty((m, 4))]
        out += [np.empty(m), np.empty(m), np.empty(m)]
        best = np.inf
        for _ in range(3):
            start = time.perf_counter()
            pf.summarize(
                self.params, self.obs_size, self.p, pf.MODEL_LOCAL_LEVEL, pf.OBS_NORMAL, 4.0, R,
                np.arange(m), levels, quantiles, *out,
            )  # fmt: skip
            best = min(best, (time.perf_counter() - start) / m)
        return best


def in_process(p: int, n: int, summary_rows: int) -> dict[str, float]:
    slots, y = events(n)
    rows = Rows(p)
    rows.update(slots[:STREAMS], y[:STREAMS])  # compile or load, draw the particles
    seconds = rows.update(slots[STREAMS:], y[STREAMS:])
    return {
        "filter_events_per_s": round((n - STREAMS) / seconds),
        "summary_us": round(rows.summarize(summary_rows) * 1e6, 2),
    }


# --- the benchmark -----------------------------------------------------------------------------


def bench(p: int, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    n1, n2, nr = N1, N2, args.record_events
    data = {n: work / f"events_{n}.jsonl" for n in sorted({n1, n2, nr})}
    for n, path in data.items():
        if not path.exists():
            write_events(path, n)
    config, interval = work / f"p{p}.toml", work / f"p{p}_interval.toml"
    write_config(config, p)
    write_config(interval, p, interval=True)
    run(config, data[n1], work / "out")  # compile (or load) the kernels, untimed
    plan = {
        "n1": (config, data[n1], None),
        "n2": (config, data[n2], None),
        "records_default": (config, data[nr], RECORD_BATCH),
        "records_interval": (interval, data[nr], RECORD_BATCH),
    }
    times: dict[str, list[float]] = {name: [] for name in plan}
    records: dict[str, int] = {}
    numpy_rates = []
    for _ in range(args.repeats):  # interleaved, so that a slow spell hits every figure
        for name, (cfg, path, batch) in plan.items():
            seconds, records[name] = run(cfg, path, work / "out", batch)
            times[name].append(round(seconds, 3))
        numpy_rates.append(round(numpy_per_event(p, n2, NUMPY_STREAMS)))
    t1, t2, t_many, t_few = (min(t) for t in times.values())
    marginal = (n2 - n1) / (t2 - t1)
    numpy_rate = max(numpy_rates)
    return {
        "P": p,
        "streams": STREAMS,
        "events": [n1, n2],
        "seconds": times,
        "records": records,
        "record_events": nr,
        "marginal_events_per_s": round(marginal),
        "particle_updates_per_s": round(marginal * p),
        "numpy_per_event_events_per_s": numpy_rates,
        "vs_numpy_per_event": round(marginal / numpy_rate, 2),
        "record_us": round(
            (t_many - t_few) / (records["records_default"] - records["records_interval"]) * 1e6, 1
        ),
        **in_process(p, n2, args.summary_rows),
    }


def source() -> str:
    root = Path(pf.__file__).resolve().parent
    try:
        return subprocess.run(
            ["git", "-C", str(root), "describe", "--always", "--dirty"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="one repeat")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--particles", type=int, nargs="+", default=[256, 1024])
    parser.add_argument(
        "--record-events", type=int, default=N2, help="events of the record-cost pair"
    )
    parser.add_argument("--summary-rows", type=int, default=STREAMS)
    parser.add_argument("--output", type=Path, help="also write the JSON here")
    args = parser.parse_args()
    if args.quick:
        args.repeats = 1
    with tempfile.TemporaryDirectory() as tmp:
        results = [bench(p, args, Path(tmp)) for p in args.particles]
    doc = {
        "unit": "events/s (whole process, marginal), particle-updates/s, us per record",
        "measured": f"{datetime.date.today().isoformat()}, bayestream {source()}",
        "machine": {
            "cpus": os.cpu_count(),
            "load_average_1min": round(os.getloadavg()[0], 2),
            "python": platform.python_version(),
            "numba": numba.__version__,
            "numpy": np.__version__,
        },
        "targets": TARGETS,
        "results": results,
    }
    text = json.dumps(doc, indent=2)
    print(text)
    if args.output:
        args.output.write_text(text + "\n")


if __name__ == "__main__":
    main()
