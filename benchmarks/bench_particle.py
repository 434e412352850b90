"""Particle-filter kernel benchmark: particle-updates per second (events x P / s).

Prints one JSON document. Workload: the local-level model with Normal noise (per-event
propagation, upper-tail probability, systematic resampling at ESS < P/2), 10k streams, events
spread uniformly over the streams, P = 256 and 1024. Measured in the same run:

- ``numba_1core``: ``update`` (serial kernel);
- ``numba_2cores``: ``update_parallel`` with ``numba.set_num_threads(2)``;
- ``numpy_per_event``: the same filter vectorised over P with numpy, one Python step per event
  (measured on a slice of the events, rate extrapolated);
- ``numpy_batched``: the same filter on B x P matrices, one event per stream per step (all
  10k streams advance together).

All three include the generator (numpy: PCG64 normals and uniforms; numba: Philox4x32-10 with
a ziggurat), the predictive tail, the log-weight update and resampling. Also: state bytes per
stream. Run: ``python benchmarks/bench_particle.py [--quick]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
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
Q, R = 0.1, 1.0


class Rows:
    def __init__(self, p: int, n: int) -> None:
        self.p = p
        # particles, weights, generator, then the last anomaly probability (as in the engine)
        self.params = np.zeros((n, pf.row_width(p) + EXTRA))
        self.last_ts = np.full(n, np.nan)
        self.n_eff = np.zeros(n)
        self.obs_size = np.full(n, np.nan)
        keys = np.arange(n, dtype=np.uint64) * np.uint64(7919)
        pf.seed_rows(self.params, p, np.arange(n), keys)
        # the engine's defaults: robust updating (tempered likelihood) and anomaly probability
        self.settings = np.zeros(N_SETTINGS)
        self.settings[S_ROBUST] = 1.0
        self.settings[S_ROBUST_MIN] = 10.0
        self.settings[S_OUTLIER_RATE] = 0.001
        self.settings[S_OUTLIER_SCALE] = 10.0
        self.settings[S_EXTRA] = pf.row_width(p)

    def run(self, fn: Any, slots: np.ndarray, ts: np.ndarray, y: np.ndarray) -> None:
        m = slots.size
        fn(
            self.params, self.last_ts, self.n_eff, self.obs_size, self.p, pf.MODEL_LOCAL_LEVEL,
            pf.OBS_NORMAL, 5.0, Q, True, R, 0.0, 1.0, pf.RESAMPLE_SYSTEMATIC, 0.5, 0, np.inf,
            slots, ts, y, np.ones(m), np.full(m, -np.inf), self.settings,
            np.full((m, N_OUT), np.nan), np.empty(m, np.int8),
        )  # fmt: skip


def numpy_step(x: np.ndarray, lw: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> Any:
    """One event per row of x, lw ([B, P]); returns the tail probabilities."""
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


def bench(p: int, events_per_stream: int, per_event_slice: int) -> dict[str, Any]:
    rng = np.random.default_rng(0)
    n = STREAMS * events_per_stream
    slots = rng.integers(0, STREAMS, n)
    ts = np.arange(n, dtype=float)
    y = rng.normal(0.0, 1.5, n)
    out: dict[str, Any] = {"P": p, "streams": STREAMS, "events": n}

    for name, fn, threads in (
        ("numba_1core", pf.update, 1),
        ("numba_2cores", pf.update_parallel, 2),
    ):
        numba.set_num_threads(threads)
        rows = Rows(p, STREAMS)
        rows.run(fn, np.arange(STREAMS), np.zeros(STREAMS), np.zeros(STREAMS))  # warm + init
        start = time.perf_counter()
        rows.run(fn, slots, ts + 1.0, y)
        out[name] = n * p / (time.perf_counter() - start)
    numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)

    x = rng.normal(0.0, 1.0, (1, p))
    lw = np.full((1, p), -np.log(p))
    k = per_event_slice
    start = time.perf_counter()
    for i in range(k):
        numpy_step(x, lw, y[i : i + 1], rng)
    out["numpy_per_event"] = k * p / (time.perf_counter() - start)

    xb = rng.normal(0.0, 1.0, (STREAMS, p))
    lwb = np.full((STREAMS, p), -np.log(p))
    start = time.perf_counter()
    for step in range(events_per_stream):
        numpy_step(xb, lwb, y[step * STREAMS : (step + 1) * STREAMS], rng)
    out["numpy_batched"] = STREAMS * events_per_stream * p / (time.perf_counter() - start)

    best = max(out["numpy_per_event"], out["numpy_batched"])
    out["speedup_vs_best_numpy_1core"] = out["numba_1core"] / best
    out["speedup_2cores_vs_1core"] = out["numba_2cores"] / out["numba_1core"]
    out["state_bytes_per_stream"] = pf.row_width(p) * 8 + 3 * 8
    for key in ("numba_1core", "numba_2cores", "numpy_per_event", "numpy_batched"):
        out[key] = round(out[key] / 1e6, 2)  # M particle-updates / s
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer events")
    args = parser.parse_args()
    eps = 1 if args.quick else 4
    results = [bench(256, eps, 2000), bench(1024, eps, 1000)]
    print(
        json.dumps(
            {
                "unit": "M particle-updates/s",
                "machine": {
                    "cpus": os.cpu_count(),
                    "python": platform.python_version(),
                    "numba": numba.__version__,
                    "numpy": np.__version__,
                },
                "targets": {"numba_1core_P1024": 50.0, "vs_best_numpy": 1.5, "second_core": 1.6},
                "results": results,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
