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


# Hostile lines: (template, expected dead-letter reason, or None where more than one reason is
# defensible). "{k}" is a stream key, "{t}" an event time; each line must never touch a posterior.
HOSTILE_KINDS: list[tuple[bytes, str | None]] = [
    (b'{"key":"{k}","metric":"latency_ms","ts":{t},"value":1', "invalid_json"),  # truncated
    (b"not json at all", "invalid_json"),
    (b"[1,2,3]", "invalid_json"),
    (b"null", "invalid_json"),
    (b'"a string"', "invalid_json"),
    (b'{"key":"{k}","metric":"latency_ms","ts":{t},"value":NaN}', "invalid_json"),
    (b'{"key":"{k}","metric":"latency_ms","ts":{t},"value":Infinity}', "invalid_json"),
    (b'{"key":"{k}","metric":"latency_ms","ts":{t},"value":01}', "invalid_json"),
    (b'{"key":"{k}","metric":"latency_ms","ts":{t},"value":1}{"key":"x"}', "invalid_json"),
    (b"\xff\xfe\x00garbage", "invalid_json"),
    (b'{"key":"{k}\xc3","metric":"latency_ms","ts":{t},"value":1}', "invalid_json"),  # bad UTF-8
    (b'\xef\xbb\xbf{"key":"{k}","metric":"latency_ms","ts":{t},"value":1}', "invalid_json"),
    (
        b'{"key":"{k}","metric":"latency_ms","ts":{t},"value":' + b"[" * 5000 + b"]" * 5000 + b"}",
        None,
    ),
    (b'{"key":"\\ud800","metric":"latency_ms","ts":{t},"value":1}', None),  # lone surrogate
    (b'{"metric":"latency_ms","ts":{t},"value":1}', "invalid_key"),
    (b'{"key":"","metric":"latency_ms","ts":{t},"value":1}', "invalid_key"),
    (b'{"key":17,"metric":"latency_ms","ts":{t},"value":1}', "invalid_key"),
    (b'{"key":null,"metric":"latency_ms","ts":{t},"value":1}', "invalid_key"),
    (b'{"key":"' + b"k" * 70_000 + b'","metric":"latency_ms","ts":{t},"value":1}', "invalid_key"),
    (b'{"key":"{k}","ts":{t},"value":1}', "invalid_metric"),
    (b'{"key":"{k}","metric":["latency_ms"],"ts":{t},"value":1}', "invalid_metric"),
    (b'{"key":"{k}","metric":"no_such_metric","ts":{t},"value":1}', "unknown_metric"),
    (b'{"key":"{k}","metric":"latency_ms","value":1}', "invalid_ts"),
    (b'{"key":"{k}","metric":"latency_ms","ts":"yesterday","value":1}', "invalid_ts"),
    (b'{"key":"{k}","metric":"latency_ms","ts":1e999,"value":1}', None),  # out of range
    (b'{"key":"{k}","metric":"latency_ms","ts":true,"value":1}', "invalid_ts"),
    (b'{"key":"{k}","metric":"latency_ms","ts":{t}}', "invalid_value"),
    (b'{"key":"{k}","metric":"latency_ms","ts":{t},"value":"12.5"}', "invalid_value"),
    (b'{"key":"{k}","metric":"latency_ms","ts":{t},"value":null}', "invalid_value"),
    (b'{"key":"{k}","metric":"latency_ms","ts":{t},"value":1e999}', None),  # out of range
    (b'{"key":"{k}","metric":"latency_ms","ts":{t},"value":{"v":1}}', "invalid_value"),
    (b'{"key":"{k}","metric":"errors","ts":{t},"value":3,"trials":2}', "successes_exceed_trials"),
    (b'{"key":"{k}","metric":"errors","ts":{t},"value":-1,"trials":10}', "negative_count"),
    (b'{"key":"{k}","metric":"errors","ts":{t},"value":1.5,"trials":10}', "non_integer_count"),
    (b'{"key":"{k}","metric":"errors","ts":{t},"value":1,"trials":0}', "invalid_trials"),
    (b'{"key":"{k}","metric":"errors","ts":{t},"value":1}', "invalid_trials"),
    (b'{"key":"{k}","metric":"requests","ts":{t},"value":-3}', "negative_count"),
    (b'{"key":"{k}","metric":"requests","ts":{t},"value":3,"exposure":0}', "invalid_exposure"),
    (b'{"key":"{k}","metric":"requests","ts":{t},"value":3,"exposure":"1"}', "invalid_exposure"),
    (b'{"key":"{k}","metric":"status","ts":{t},"value":"6xx"}', "unknown_category"),
    (b'{"key":"{k}","metric":"status","ts":{t},"value":2}', None),
    (b'{"key":"{k}","metric":"latency_ms","ts":{late},"value":1}', "late_event"),
]


def hostile_mix(
    n: int, streams: int, share: float, seed: int
) -> tuple[list[bytes], list[bytes], dict[int, str | None]]:
    """``n`` lines of the four-family mix with a ``share`` of hostile lines mixed in.

    Returns (all lines, the good lines alone in the same order, and the 1-based line number of
    every hostile line in the first list with its expected dead-letter reason, None where more
    than one reason is defensible). Hostile lines start after the first 1,000, so that their
    streams (and the newest event a late one lags) exist; a late event lags by 10^5 s, far past
    the default lateness of an hour.
    """
    rng = np.random.default_rng(seed)
    good = mix_lines(n, streams, 1.1, seed)
    hostile = np.sort(rng.choice(np.arange(1000, n), int(n * share), replace=False))
    kinds = rng.integers(0, len(HOSTILE_KINDS), hostile.shape[0])
    out: list[bytes] = []
    expected: dict[int, str | None] = {}
    g = 0
    for at, kind in zip(hostile.tolist(), kinds.tolist(), strict=True):
        out.extend(good[g:at])
        g = at
        template, reason = HOSTILE_KINDS[kind]
        ts = START_TS + at * 1e-3
        line = (
            template.replace(b"{k}", b"host-%d" % rng.integers(0, 5))
            .replace(b"{late}", b"%.3f" % (ts - 1e5))
            .replace(b"{t}", b"%.3f" % ts)
        )
        out.append(line)
        expected[len(out)] = reason
    out.extend(good[g:])
    return out, good, expected
