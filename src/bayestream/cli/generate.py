"""``bayestream generate``: the demo's synthetic services as a steady stream of telemetry.

The lines come from :func:`bayestream.cli.synthetic.generate` (latency, errors out of
requests, request counts and status classes of six services, with injected anomalies, a level
shift and a few hostile lines), chunk after chunk with a new seed each, and each event's
``ts`` is rewritten to the wall-clock time it is sent at, so that freshness and
event-to-publish latency read as they would on live telemetry.
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Callable, Iterator

from bayestream.cli.synthetic import generate

CHUNK_EVENTS = 12_000  # lines generated at a time (100 s of the services' event time)
_TS = re.compile(rb'"ts":-?[0-9]+(?:\.[0-9]+)?')


def stamped(line: bytes, now: float) -> bytes:
    """``line`` with its numeric ``ts`` set to ``now`` (a non-numeric one is left as is)."""
    return _TS.sub(b'"ts":%.3f' % now, line, count=1)


def telemetry(events: int, seed: int, clock: Callable[[], float] = time.time) -> Iterator[bytes]:
    """``events`` lines (0: without end) of the demo's services, stamped with ``clock()``
    as they are taken."""
    chunk = 0
    left = events
    while events == 0 or left > 0:
        for line in generate(CHUNK_EVENTS, seed + chunk).lines:
            if events and left <= 0:
                return
            left -= 1
            yield stamped(line, clock())
        chunk += 1


def run_generate(
    bootstrap: str, topic: str, rate: float, events: int, seed: int, partitions: int
) -> int:
    """Create ``topic`` if absent, then send the telemetry until done or SIGTERM/SIGINT."""
    from bayestream.runtime.feed import ensure_topic, feed

    ensure_topic(bootstrap, topic, partitions)
    print(
        f"bayestream: generate: sending to {topic!r} on {bootstrap} at "
        f"{f'{rate:g} events/s' if rate > 0 else 'full speed'}"
        f"{f', {events} events' if events else ', until stopped'}",
        file=sys.stderr,
        flush=True,
    )
    sent = feed(bootstrap, topic, telemetry(events, seed), rate)
    print(f"bayestream: generate: {sent} events sent to {topic!r}", file=sys.stderr)
    return 0


__all__ = ["CHUNK_EVENTS", "run_generate", "stamped", "telemetry"]
