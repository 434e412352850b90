"""Synthetic telemetry with known truth, for the demo and for tests.

Several services emit request latency (log-normal), errors out of requests and request counts
per 10-second window, and a sampled HTTP status class. Injected on top: latency spikes, error
bursts and request drops (the anomalies), and one level shift: the latency of ``svc-c``
triples at 60 % of the run.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

START_TS = 1_700_000_000.0
SERVICES = ("svc-a", "svc-b", "svc-c", "svc-d", "svc-e", "svc-f")
SHIFTED = "svc-c"
WINDOW = 10.0
STATUS = ("2xx", "3xx", "4xx", "5xx")


HOSTILE = (
    b'{"key":"svc-a","metric":"latency_ms","ts":1700000100,"value":',  # truncated JSON
    b'{"key":"svc-b","metric":"errors","ts":1700000200,"value":-3,"trials":100}',
    b'{"key":"svc-b","metric":"errors","ts":1700000200,"value":30,"trials":10}',
    b'{"key":"svc-c","metric":"latency_ms","ts":1700000300,"value":"fast"}',
    b'{"key":"svc-d","metric":"cpu","ts":1700000400,"value":0.5}',
    b'{"key":"svc-e","metric":"status","ts":1700000500,"value":"6xx"}',
    b'{"key":"svc-f","metric":"latency_ms","ts":"yesterday","value":12}',
    b'{"key":"svc-a","metric":"latency_ms","ts":1700000600,"value":0}',
    b"\xff\xfe not even text",
)
"""Malformed or impossible lines mixed into the demo input: each must become a dead letter."""


MIN_EVENTS = 100
"""The fewest lines :func:`generate` writes (the hostile lines among them)."""

_PER_WINDOW = 20  # lines per service and 10-second window: 12 latency, 1 + 1 counts, 6 status


@dataclass(frozen=True)
class Telemetry:
    """JSON lines in event-time order and what was injected."""

    lines: list[bytes]
    injected: int  # events deliberately anomalous
    shift_ts: float  # when svc-c's latency level shifts
    injected_at: frozenset[tuple[str, str, float]] = frozenset()  # (key, metric, ts) of those


def generate(events: int, seed: int) -> Telemetry:
    """Exactly ``events`` lines (at least :data:`MIN_EVENTS`) over the services, sorted by
    event time, the :data:`HOSTILE` lines among them."""
    if events < MIN_EVENTS:
        raise ValueError(f"events must be at least {MIN_EVENTS}, got {events}")
    rng = np.random.default_rng(seed)
    n_services = len(SERVICES)
    n_windows = max(-(-events // (n_services * _PER_WINDOW)) + 1, 10)  # then cut to size
    duration = n_windows * WINDOW
    shift_ts = START_TS + 0.6 * (events / (n_services * _PER_WINDOW)) * WINDOW
    rows: list[tuple[float, bytes, str, str, bool]] = []
    base_ms = rng.uniform(20.0, 80.0, n_services)
    base_rate = rng.uniform(30.0, 120.0, n_services)  # requests per second
    base_err = rng.uniform(0.002, 0.02, n_services)
    for s, svc in enumerate(SERVICES):
        # latency: 12 samples per window
        m = n_windows * 12
        ts = START_TS + np.sort(rng.uniform(0.0, duration, m))
        level = np.where((svc == SHIFTED) & (ts >= shift_ts), 3.0 * base_ms[s], base_ms[s])
        latency = level * rng.lognormal(0.0, 0.25, m)
        spikes = rng.random(m) < 0.0008
        latency[spikes] *= rng.uniform(8.0, 20.0, int(spikes.sum()))
        rows.extend(
            (
                t,
                b'{"key":"%s","metric":"latency_ms","ts":%.3f,"value":%.2f}' % (svc.encode(), t, v),
                svc,
                "latency_ms",
                spike,
            )
            for t, v, spike in zip(ts.tolist(), latency.tolist(), spikes.tolist(), strict=True)
        )
        # requests and errors per window
        window_ts = START_TS + WINDOW * np.arange(1, n_windows + 1)
        requests = rng.poisson(base_rate[s] * WINDOW, n_windows)
        drops = rng.random(n_windows) < 0.004
        requests[drops] = rng.poisson(base_rate[s] * WINDOW * 0.2, int(drops.sum()))
        err_p = np.full(n_windows, base_err[s])
        bursts = rng.random(n_windows) < 0.004
        err_p[bursts] = 0.3
        errors = rng.binomial(requests, err_p)
        windows = zip(
            window_ts.tolist(),
            requests.tolist(),
            errors.tolist(),
            drops.tolist(),
            bursts.tolist(),
            strict=True,
        )
        for t, r, e, drop, burst in windows:
            rows.append(
                (
                    t,
                    b'{"key":"%s","metric":"requests","ts":%.3f,"value":%d,'
                    b'"exposure":10}' % (svc.encode(), t, r),
                    svc,
                    "requests",
                    drop,
                )
            )
            if r > 0:
                rows.append(
                    (
                        t,
                        b'{"key":"%s","metric":"errors","ts":%.3f,"value":%d,'
                        b'"trials":%d}' % (svc.encode(), t, e, r),
                        svc,
                        "errors",
                        burst,
                    )
                )
        # status: 6 samples per window
        k = n_windows * 6
        st = START_TS + np.sort(rng.uniform(0.0, duration, k))
        probs = np.array([0.9, 0.04, 0.05, 0.01])
        status = rng.choice(4, size=k, p=probs)
        rows.extend(
            (
                t,
                b'{"key":"%s","metric":"status","ts":%.3f,"value":"%s"}'
                % (svc.encode(), t, STATUS[c].encode()),
                svc,
                "status",
                False,
            )
            for t, c in zip(st.tolist(), status.tolist(), strict=True)
        )
    rows.sort(key=lambda row: row[0])
    del rows[events - len(HOSTILE) :]  # the first events by event time: exactly as many lines
    lines = [row[1] for row in rows]
    for j, bad in enumerate(HOSTILE):  # spread a few bad lines through the run
        lines.insert((j + 1) * len(lines) // (len(HOSTILE) + 1), bad)
    injected_at = frozenset((svc, metric, round(t, 3)) for t, _, svc, metric, hit in rows if hit)
    injected = sum(1 for row in rows if row[4])
    return Telemetry(lines, injected, shift_ts, injected_at)


__all__ = ["MIN_EVENTS", "SERVICES", "SHIFTED", "Telemetry", "generate"]
