"""Synthetic JSON telemetry for the benchmarks: Zipf-popular streams, one JSON event per line."""

from __future__ import annotations

from typing import Any

import numpy as np

START_TS = 1_700_000_000.0

NORMAL_GAMMA_RULES: list[dict[str, Any]] = [
    {
        "metric": "latency_ms",
        "family": "normal_gamma",
        "transform": "none",
        "tail": "upper",
        "prior": {"mu": 50.0, "kappa": 1.0, "alpha": 2.0, "beta": 50.0},
        "half_life_seconds": 600.0,
        "credible_levels": [0.95],
        "predictive_quantiles": [0.5, 0.9, 0.95, 0.99],
        "anomaly_threshold": 0.001,
        # the plain conjugate update, so that the final posteriors can be checked against the
        # per-event baselines exactly; the anomaly probability is computed all the same
        "robust": False,
    },
]

MIX_RULES: list[dict[str, Any]] = [
    *NORMAL_GAMMA_RULES,
    {
        "metric": "errors",
        "family": "beta_binomial",
        "prior": {"alpha": 1.0, "beta": 99.0},
        "half_life_seconds": 900.0,
        "tail": "upper",
        "anomaly_threshold": 0.001,
    },
    {
        "metric": "requests",
        "family": "gamma_poisson",
        "prior": {"alpha": 1.0, "beta": 0.1},
        "half_life_events": 60.0,
        "tail": "two_sided",
        "anomaly_threshold": 0.001,
    },
    {
        "metric": "status",
        "family": "dirichlet",
        "anomaly_threshold": 0.001,
        "prior": {"categories": ["2xx", "3xx", "4xx", "5xx"], "alpha": 1.0},
        "half_life_events": 500.0,
    },
]


def zipf_keys(rng: np.random.Generator, n: int, streams: int, exponent: float) -> np.ndarray:
    """Stream ranks 0..streams-1 with Zipf popularity (rank 0 the most popular)."""
    weights = 1.0 / np.arange(1, streams + 1) ** exponent
    return rng.choice(streams, size=n, p=weights / weights.sum())


def normal_gamma_lines(
    n: int, streams: int, exponent: float, seed: int, start: float = START_TS
) -> list[bytes]:
    rng = np.random.default_rng(seed)
    keys = zipf_keys(rng, n, streams, exponent)
    ts = start + np.arange(n) * 1e-3
    values = rng.normal(50.0, 5.0, n)
    return [
        b'{"key":"host-%d","metric":"latency_ms","ts":%.3f,"value":%.3f}' % row
        for row in zip(keys.tolist(), ts.tolist(), values.tolist(), strict=True)
    ]


def mix_lines(
    n: int, streams: int, exponent: float, seed: int, start: float = START_TS
) -> list[bytes]:
    rng = np.random.default_rng(seed)
    keys = zipf_keys(rng, n, streams, exponent).tolist()
    ts = (start + np.arange(n) * 1e-3).tolist()
    kind = rng.choice(4, size=n, p=[0.5, 0.2, 0.2, 0.1]).tolist()
    values = rng.normal(50.0, 5.0, n).tolist()
    trials = rng.integers(50, 500, n).tolist()
    counts = rng.poisson(0.01 * np.array(trials)).tolist()
    requests = rng.poisson(100.0, n).tolist()
    status = rng.choice(4, size=n, p=[0.9, 0.04, 0.05, 0.01]).tolist()
    names = ("2xx", "3xx", "4xx", "5xx")
    out = []
    for i in range(n):
        k, t, c = keys[i], ts[i], kind[i]
        if c == 0:
            out.append(
                b'{"key":"host-%d","metric":"latency_ms","ts":%.3f,"value":%.3f}'
                % (k, t, values[i])
            )
        elif c == 1:
            out.append(
                b'{"key":"host-%d","metric":"errors","ts":%.3f,"value":%d,"trials":%d}'
                % (k, t, counts[i], trials[i])
            )
        elif c == 2:
            out.append(
                b'{"key":"host-%d","metric":"requests","ts":%.3f,"value":%d,'
                b'"exposure":10}' % (k, t, requests[i])
            )
        else:
            out.append(
                b'{"key":"host-%d","metric":"status","ts":%.3f,"value":"%s"}'
                % (k, t, names[status[i]].encode())
            )
    return out
