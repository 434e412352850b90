"""End-to-end engine benchmark: JSON event bytes in, posterior and anomaly JSON out.

Prints one JSON document (machine-readable) with events/s for the engine and for two per-event
plain-Python baselines run in the same process on the same events, bytes of state per stream,
peak RSS and JIT warm-up time. Run: ``python benchmarks/bench_engine.py [--quick]``.

Workloads: 100k streams with Zipf popularity, (a) Normal-Gamma with upper-tail probabilities,
(b) a mix of all four families, (c) the same events through a ``dlm`` rule (level, daily
seasonality with 3 harmonics, weekly with 2; robust with monitoring, as configured by default).
``--dlm`` runs (a) and (c) only, one after the other in the same process. The engine is
measured twice per workload: "cold" (every stream is new to the engine during the run) and
"steady" (a second slice of events for streams the engine already tracks, as in a
long-running processor).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from baselines import scipy_special_baseline, scipy_stats_baseline
from bayestream import Engine, RawBatch, parse_config
from bayestream.schema.lines import split_lines
from bayestream.schema.records import ENCODER
from workloads import MIX_RULES, NORMAL_GAMMA_RULES, mix_lines, normal_gamma_lines

DLM_RULES: list[dict[str, Any]] = [
    {
        "metric": "latency_ms",
        "family": "dlm",
        "tail": "upper",
        "seasonal": [
            {"period_seconds": 86400, "harmonics": 3},
            {"period_seconds": 604800, "harmonics": 2},
        ],
        "discount": {"unit_seconds": 3600, "level": 0.9, "seasonal": 0.995, "variance": 0.95},
        "prior": {"level": 50.0, "variance": 25.0},
        "credible_levels": [0.95],
        "predictive_quantiles": [0.5, 0.9, 0.95, 0.99],
        "anomaly_threshold": 0.001,
    }
]


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def run_engine(engine: Engine, lines: list[bytes], batch_size: int) -> dict[str, Any]:
    """Time the engine over ``lines``; output records are JSON-encoded as they would be sent."""
    block = b"\n".join(lines) + b"\n"  # as the file runner reads it: one block of lines
    out_bytes = 0
    gc.collect()
    gc.freeze()
    gc.disable()
    started = time.perf_counter()
    starts, ends, _ = split_lines(np.frombuffer(block, dtype=np.uint8), engine.workers)
    records = anomalies = 0
    for j in range(0, starts.shape[0], batch_size):
        out = engine.process(RawBatch(block, starts[j : j + batch_size], ends[j : j + batch_size]))
        out_bytes += len(out.posteriors.json_lines())
        out_bytes += len(ENCODER.encode_lines(out.anomalies))
        records += len(out.posteriors)
        anomalies += len(out.anomalies)
        if (j // batch_size) % 50 == 49:
            gc.collect(1)
    seconds = time.perf_counter() - started
    gc.enable()
    gc.unfreeze()
    return {
        "events": len(lines),
        "seconds": round(seconds, 4),
        "events_per_s": round(len(lines) / seconds),
        "posterior_records": records,
        "anomalies": anomalies,
        "output_bytes": out_bytes,
    }


def run_baseline(
    make: Any, rule: dict[str, Any], lines: list[bytes], batch_size: int
) -> dict[str, Any]:
    proc = make(rule)
    gc.collect()
    started = time.perf_counter()
    out_bytes = 0
    for j in range(0, len(lines), batch_size):
        out_bytes += sum(len(b) for b in proc.process(lines[j : j + batch_size]))
    seconds = time.perf_counter() - started
    return {
        "events": len(lines),
        "seconds": round(seconds, 4),
        "events_per_s": round(len(lines) / seconds),
        "output_bytes": out_bytes,
        "state": proc.state,
    }


def jit_warmup_seconds() -> dict[str, float]:
    """Seconds to import bayestream and compile every kernel: with an empty numba cache (first
    run ever) and with the cache filled (every later start), each in a fresh process."""
    code = (
        "import time; t=time.perf_counter(); import bayestream.engine; "
        "from bayestream.models import warm_up; from bayestream.schema.scan import scan; "
        "from bayestream.state.index import StreamIndex; warm_up(); "
        "from bayestream import parse_config, Engine, RawBatch; "
        "e=Engine(parse_config({'rule':[{'metric':'m','family':'normal_gamma'}]})); "
        'e.process(RawBatch.from_messages([b\'{"key":"k","metric":"m","ts":1,'
        '"value":1}\'])); print(time.perf_counter()-t)'
    )
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache}
        cold = float(
            subprocess.run(
                [sys.executable, "-c", code], env=env, check=True, capture_output=True, text=True
            ).stdout
        )
        warm = float(
            subprocess.run(
                [sys.executable, "-c", code], env=env, check=True, capture_output=True, text=True
            ).stdout
        )
    return {"cold_cache_s": round(cold, 2), "warm_cache_s": round(warm, 2)}


def engine_workload(
    name: str,
    rules: list[dict[str, Any]],
    make_lines: Any,
    n: int,
    streams: int,
    exponent: float,
    batch_size: int,
    threads: int | None = None,
) -> tuple[dict[str, Any], Engine]:
    config = parse_config({"engine": {"threads": threads}, "rule": rules})
    cold_lines = make_lines(n, streams, exponent, seed=1)
    steady_lines = make_lines(n, streams, exponent, seed=2, start=1_700_000_000.0 + n * 1e-3)
    rss_before = rss_bytes()
    engine = Engine(config)
    cold = run_engine(engine, cold_lines, batch_size)
    steady = run_engine(engine, steady_lines, batch_size)
    tracked = len(engine)
    numeric = sum(s.numeric_bytes_per_stream() * len(s) for s in engine.stores)
    result = {
        "workload": name,
        "threads": engine.workers.threads,
        "streams_tracked": tracked,
        "batch_size": batch_size,
        "cold": cold,
        "steady": steady,
        "numeric_state_bytes_per_stream": round(numeric / tracked, 1),
        "index_bytes_per_stream": round(engine.index.nbytes() / tracked, 1),
        "rss_bytes_per_stream": round((rss_bytes() - rss_before) / tracked, 1),
    }
    del cold_lines, steady_lines
    return result, engine


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--streams", type=int, default=100_000)
    parser.add_argument("--zipf", type=float, default=1.1)
    parser.add_argument("--batch-size", type=int, default=50_000)
    parser.add_argument("--baseline-events", type=int, default=200_000)
    parser.add_argument("--stats-events", type=int, default=20_000)
    parser.add_argument("--quick", action="store_true", help="small sizes, for CI smoke runs")
    parser.add_argument("--dlm", action="store_true", help="normal_gamma and dlm workloads only")
    args = parser.parse_args()
    if args.quick:
        args.events, args.streams, args.baseline_events, args.stats_events = (
            50_000,
            5_000,
            10_000,
            2_000,
        )

    report: dict[str, Any] = {
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "processor": platform.processor() or platform.machine(),
        },
        "args": vars(args),
    }
    if args.dlm:
        for name, rules in (("normal_gamma", NORMAL_GAMMA_RULES), ("dlm", DLM_RULES)):
            report[name], engine = engine_workload(
                name, rules, normal_gamma_lines, args.events, args.streams, args.zipf,
                args.batch_size,
            )  # fmt: skip
            del engine
            gc.collect()
        print(json.dumps(report, indent=2))
        return
    report["jit"] = jit_warmup_seconds()
    report["normal_gamma_by_batch_size"] = _batch_sizes(args)
    ng, engine = engine_workload(
        "normal_gamma",
        NORMAL_GAMMA_RULES,
        normal_gamma_lines,
        args.events,
        args.streams,
        args.zipf,
        args.batch_size,
    )
    report["normal_gamma"] = ng
    # Baselines on a prefix of the same cold events, with the same batch size.
    rule = NORMAL_GAMMA_RULES[0]
    lines = normal_gamma_lines(args.baseline_events, args.streams, args.zipf, seed=1)
    fresh = Engine(parse_config({"rule": NORMAL_GAMMA_RULES}))
    same_prefix = run_engine(fresh, lines, args.batch_size)
    special = run_baseline(scipy_special_baseline, rule, lines, args.batch_size)
    stats_lines = lines[: args.stats_events]
    stats = run_baseline(scipy_stats_baseline, rule, stats_lines, args.batch_size)
    agree = _agree(fresh, special.pop("state"))
    stats.pop("state")
    report["baselines"] = {
        "engine_on_baseline_events": same_prefix,
        "scipy_special_per_event": special,
        "scipy_stats_per_event": stats,
        "final_posteriors_agree_with_scipy_special_baseline": agree,
        "ratio_vs_scipy_stats": round(same_prefix["events_per_s"] / stats["events_per_s"], 1),
        "ratio_vs_scipy_special": round(same_prefix["events_per_s"] / special["events_per_s"], 2),
        "ratio_steady_vs_scipy_special": round(
            ng["steady"]["events_per_s"] / special["events_per_s"], 2
        ),
    }
    del engine, fresh
    gc.collect()
    report["mix"], _ = engine_workload(
        "mix", MIX_RULES, mix_lines, args.events, args.streams, args.zipf, args.batch_size
    )
    report["peak_rss_bytes"] = peak_rss_bytes()
    print(json.dumps(report, indent=2))


def _batch_sizes(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Steady-state Normal-Gamma throughput per batch size and emit policy (the number of
    posterior records per event falls with the batch size, or with an interval policy), on the
    default number of threads and, for batches of 50k and 200k, on one thread."""
    out = []
    variants: list[tuple[int, str, int | None]] = [
        (b, "every_batch", None) for b in (10_000, 50_000, 200_000)
    ]
    variants += [
        (50_000, "interval", None),
        (50_000, "every_batch", 1),
        (200_000, "every_batch", 1),
    ]
    for batch_size, emit, threads in variants:
        rule = dict(NORMAL_GAMMA_RULES[0])
        if emit == "interval":
            rule.update(emit="interval", emit_interval_seconds=300.0)
        result, engine = engine_workload(
            f"normal_gamma/{emit}",
            [rule],
            normal_gamma_lines,
            args.events,
            args.streams,
            args.zipf,
            batch_size,
            threads,
        )
        out.append(
            {
                "batch_size": batch_size,
                "emit": emit,
                "threads": result["threads"],
                "steady_events_per_s": result["steady"]["events_per_s"],
                "cold_events_per_s": result["cold"]["events_per_s"],
                "posterior_records_per_event": round(
                    result["steady"]["posterior_records"] / args.events, 4
                ),
            }
        )
        del engine
        gc.collect()
    return out


def _agree(engine: Engine, state: dict[tuple[str, str], list[float]]) -> bool:
    rows = {(r.key, r.metric): r for r in engine.state_rows()}
    if rows.keys() != state.keys():
        return False
    return all(np.allclose(rows[k].params[:4], v[:4], rtol=1e-9, atol=0) for k, v in state.items())


if __name__ == "__main__":
    main()
