"""``bayestream generate``: the demo's synthetic services as a steady stream of telemetry.

The lines come from :func:`bayestream.cli.synthetic.generate` (latency, errors out of
requests, request counts and status classes of six services, with injected anomalies, a level
shift and a few hostile lines), chunk after chunk with a new seed each, and each event's
``ts`` is rewritten to the wall-clock time it is sent at, so that freshness and
event-to-publish latency read as they would on live telemetry. With ``--labels-topic`` every
valid event also gets its label (``is_anomaly``: whether it was injected) on that topic, for
the calibration of the anomaly probability against labels (``[kafka] labels_topic``).
"""

from __future__ import annotations

import json
import re
import sys
import time
from collections.abc import Callable, Iterator

from bayestream.cli.synthetic import generate

CHUNK_EVENTS = 12_000  # lines generated at a time (100 s of the services' event time)
_TS = re.compile(rb'"ts":(-?[0-9]+(?:\.[0-9]+)?)')
_KEY_METRIC = re.compile(rb'"key":"([^"]*)","metric":"([^"]*)"')


def stamped(line: bytes, now: float) -> bytes:
    """``line`` with its numeric ``ts`` set to ``now`` (a non-numeric one is left as is)."""
    return _TS.sub(b'"ts":%.3f' % now, line, count=1)


def label_of(line: bytes, now: float, injected: frozenset[tuple[str, str, float]]) -> bytes | None:
    """The label of an event line once stamped ``now``: whether its original (key, metric,
    ts) was injected; None for a line without a numeric ts, key or metric."""
    ts, names = _TS.search(line), _KEY_METRIC.search(line)
    if ts is None or names is None:
        return None
    key, metric = names.group(1).decode(), names.group(2).decode()
    hit = (key, metric, round(float(ts.group(1)), 3)) in injected
    label = {"key": key, "metric": metric, "ts": round(now, 3), "is_anomaly": hit}
    return json.dumps(label).encode()


def telemetry(
    events: int, seed: int, clock: Callable[[], float] = time.time
) -> Iterator[tuple[bytes, bytes | None]]:
    """``events`` lines (0: without end) of the demo's services, stamped with ``clock()`` as
    they are taken, each with its label (None for a hostile line)."""
    chunk = 0
    left = events
    while events == 0 or left > 0:
        data = generate(CHUNK_EVENTS, seed + chunk)
        for line in data.lines:
            if events and left <= 0:
                return
            left -= 1
            now = round(clock(), 3)
            yield stamped(line, now), label_of(line, now, data.injected_at)
        chunk += 1


def run_generate(
    bootstrap: str,
    topic: str,
    rate: float,
    events: int,
    seed: int,
    partitions: int,
    labels_topic: str | None = None,
) -> int:
    """Create the topics if absent, then send the telemetry until done or SIGTERM/SIGINT."""
    from bayestream.runtime.feed import ensure_topic, feed

    ensure_topic(bootstrap, topic, partitions)
    if labels_topic:
        ensure_topic(bootstrap, labels_topic, partitions)
    speed = f"{rate:g} events/s" if rate > 0 else "full speed"
    amount = f"{events} events" if events else "until stopped"
    print(
        f"bayestream: generate: sending to {topic!r} on {bootstrap} at {speed}, {amount}",
        file=sys.stderr,
        flush=True,
    )
    sent = feed(bootstrap, topic, telemetry(events, seed), rate, labels_topic)
    print(f"bayestream: generate: {sent} events sent to {topic!r}", file=sys.stderr)
    return 0


__all__ = ["CHUNK_EVENTS", "label_of", "run_generate", "stamped", "telemetry"]
