"""Quix Streams baseline for ``bench_kafka.py``: the same Normal-Gamma posterior and Student-t
tail probability per message, with exactly-once, written as a Quix Streams application.

Run by ``bench_kafka.py`` in a subprocess (``Application.run`` installs signal handlers and wants
the main thread). Prints one JSON line on stdout:

    python benchmarks/quix_baseline.py BOOTSTRAP IN_TOPIC OUT_TOPIC GROUP EVENTS [--verify]

The application: ``Application(processing_guarantee="exactly-once")`` with the benchmark's tuned
consumer fetch settings, ``app.dataframe(input topic)`` with JSON values, a stateful ``apply``
keeping (mu, kappa, alpha, beta, last ts, n_eff) per message key in the RocksDB state store
(with its changelog topic, the Quix default), and ``.to_topic(output topic)``: one JSON record
per event. It stops after EVENTS outputs (``app.run(count=...)``), which ends with a forced
checkpoint commit. ``--verify`` adds kappa, alpha and beta to each output record so that the
caller can compare the final posteriors.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from quixstreams import Application, State
from scipy import special

sys.path.insert(0, str(Path(__file__).resolve().parent))

from workloads import NORMAL_GAMMA_RULES

# The same tuned fetch settings as the hand-written loop and the bayestream runtime.
CONSUMER_CONFIG = {
    "fetch.wait.max.ms": 10,
    "queued.min.messages": 1_000_000,
    "max.partition.fetch.bytes": 8 << 20,
    "fetch.max.bytes": 64 << 20,
}
# ... and the same producer retry backoff (librdkafka's 100 ms default costs ~100 ms per
# transaction: see bayestream.runtime.clients.TUNED_PRODUCER)
PRODUCER_CONFIG = {
    "linger.ms": 5,
    "queue.buffering.max.messages": 2_000_000,
    "retry.backoff.ms": 5,
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("bootstrap")
    parser.add_argument("input_topic")
    parser.add_argument("output_topic")
    parser.add_argument("group")
    parser.add_argument("events", type=int)
    parser.add_argument("--verify", action="store_true")
    args = parser.parse_args()

    rule = NORMAL_GAMMA_RULES[0]
    mu0, k0, a0, b0 = (float(rule["prior"][k]) for k in ("mu", "kappa", "alpha", "beta"))
    h = float(rule["half_life_seconds"])
    verify = args.verify
    first: list[float] = []

    def update(ev: dict[str, Any], state: State) -> dict[str, Any]:
        if not first:
            first.append(time.perf_counter())
        metric, ts, x = ev["metric"], float(ev["ts"]), float(ev["value"])
        s = state.get(metric)
        if s is None:
            s = [mu0, k0, a0, b0, ts, 0.0]
        mu, kappa, alpha, beta, last, n_eff = s
        d = 2.0 ** (-(ts - last if ts > last else 0.0) / h)
        if d != 1.0:
            w1, w0 = d * kappa, (1.0 - d) * k0
            kn = w1 + w0
            beta = d * beta + (1 - d) * b0 + 0.5 * (w1 * w0 / kn) * (mu - mu0) ** 2
            mu, kappa, alpha, n_eff = (
                (w1 * mu + w0 * mu0) / kn,
                kn,
                d * alpha + (1 - d) * a0,
                n_eff * d,
            )
        scale = math.sqrt(beta * (kappa + 1) / (alpha * kappa))
        tail = float(special.stdtr(2 * alpha, -(x - mu) / scale))
        dev = x - mu
        s = [
            mu + dev / (kappa + 1),
            kappa + 1,
            alpha + 0.5,
            beta + kappa * dev * dev / (2 * (kappa + 1)),
            max(last, ts),
            n_eff + 1,
        ]
        state.set(metric, s)
        out = {
            "key": ev["key"],
            "metric": metric,
            "mean": s[0],
            "n_eff": s[5],
            "tail_probability": tail,
        }
        if verify:
            out["kappa"], out["alpha"], out["beta"] = s[1], s[2], s[3]
        return out

    with tempfile.TemporaryDirectory(prefix="quix-state-") as state_dir:
        app = Application(
            broker_address=args.bootstrap,
            consumer_group=args.group,
            auto_offset_reset="earliest",
            processing_guarantee="exactly-once",
            consumer_extra_config=CONSUMER_CONFIG,
            producer_extra_config=PRODUCER_CONFIG,
            state_dir=state_dir,
            loglevel=logging.WARNING,
        )
        source = app.topic(args.input_topic, key_deserializer="bytes", value_deserializer="json")
        sink = app.topic(args.output_topic, key_serializer="bytes", value_serializer="json")
        sdf = app.dataframe(source)
        sdf = sdf.apply(update, stateful=True)
        sdf.to_topic(sink)

        # The time of the last checkpoint commit (the forced one when the run stops): the
        # clock stops there, as the hand-written loop's stops after its last commit.
        context = app._processing_context
        commit = context.commit_checkpoint
        committed: list[float] = []

        def timed_commit(force: bool = False, revoking: bool = False) -> None:
            commit(force=force, revoking=revoking)
            if force and not revoking:
                committed.append(time.perf_counter())

        context.commit_checkpoint = timed_commit  # type: ignore[method-assign]
        started = time.perf_counter()
        app.run(count=args.events, collect=False)
        ended = time.perf_counter()
    seconds = committed[-1] - first[0]
    print(
        json.dumps(
            {
                "events": args.events,
                "seconds": round(seconds, 2),
                "events_per_s": round(args.events / seconds),
                "startup_seconds": round(first[0] - started, 2),
                "shutdown_seconds": round(ended - committed[-1], 2),
            }
        )
    )


if __name__ == "__main__":
    main()
