"""An example autoscaling controller on ``bayestream serve``: desired replicas from a forecast
quantile of a stream's load, with a safety buffer.

Every ``--interval`` seconds it reads

    GET {url}/v1/streams/{key}/{metric}/forecast?horizon={horizon}&q={q}

(the ``q`` quantile of the load ``horizon`` seconds ahead, e.g. requests per second) and prints

    desired = ceil(value * (1 + buffer) / capacity_per_replica), clamped to [min, max]

The safety buffer. The quantile already covers the posterior's uncertainty about the load
(q = 0.95: the load exceeds it one time in twenty under the model); ``--buffer`` (default 0.2,
20 %) is headroom for what the model does not know: a model that is wrong (a level shift it has
not yet followed), the capacity figure being optimistic, and the time a new replica takes to
start. Choose q for how often you accept running hot, the buffer for how wrong you may be.

Two guards. A forecast older than ``--max-staleness`` seconds (the stream stopped reporting,
or the processors are behind) never scales down: the last decision is kept. Scaling down waits
until the lower figure has held for ``--down-polls`` consecutive polls (scaling up is at once),
so one low forecast does not remove capacity.

Standard library only; run against a local service:

    python examples/autoscaler.py --url http://127.0.0.1:8080 --key svc-a --metric requests \\
        --capacity-per-replica 200 --once
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any


def desired_replicas(
    value: float, capacity_per_replica: float, buffer: float, low: int, high: int
) -> int:
    """Replicas that carry ``value`` with ``buffer`` headroom, within [low, high]."""
    needed = math.ceil(value * (1.0 + buffer) / capacity_per_replica) if value > 0 else 0
    return max(low, min(high, needed))


def read_forecast(url: str, key: str, metric: str, horizon: int, q: float) -> dict[str, Any]:
    quote = lambda s: urllib.parse.quote(s, safe="")  # noqa: E731  (a "/" in a key: %2F)
    query = urllib.parse.urlencode({"horizon": horizon, "q": q})
    path = f"{url.rstrip('/')}/v1/streams/{quote(key)}/{quote(metric)}/forecast?{query}"
    try:
        with urllib.request.urlopen(path, timeout=5) as response:
            body: dict[str, Any] = json.loads(response.read())
            return body
    except urllib.error.HTTPError as exc:  # 404 unknown stream, 400 horizon/q not published
        detail = exc.read().decode("utf-8", "replace")
        raise RuntimeError(f"{exc.code} from the query service: {detail}") from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="desired replicas from a forecast quantile")
    parser.add_argument("--url", default="http://127.0.0.1:8080")
    parser.add_argument("--key", required=True)
    parser.add_argument("--metric", required=True)
    parser.add_argument("--horizon", type=int, default=300, help="seconds ahead (published)")
    parser.add_argument("--q", type=float, default=0.95, help="quantile level (published)")
    parser.add_argument("--capacity-per-replica", type=float, required=True)
    parser.add_argument("--buffer", type=float, default=0.2, help="safety headroom (0.2 = 20%%)")
    parser.add_argument("--min", type=int, default=1, dest="low")
    parser.add_argument("--max", type=int, default=100, dest="high")
    parser.add_argument("--max-staleness", type=float, default=600.0)
    parser.add_argument("--down-polls", type=int, default=3)
    parser.add_argument("--interval", type=float, default=30.0)
    parser.add_argument("--once", action="store_true", help="one poll, then exit")
    args = parser.parse_args(argv)

    current: int | None = None
    lower_for = 0
    while True:
        try:
            forecast = read_forecast(args.url, args.key, args.metric, args.horizon, args.q)
        except (RuntimeError, OSError) as exc:
            print(f"autoscaler: no forecast ({exc}); keeping {current}", file=sys.stderr)
        else:
            value, staleness = forecast["value"], forecast["staleness_seconds"]
            want = (
                None
                if value is None
                else desired_replicas(
                    value, args.capacity_per_replica, args.buffer, args.low, args.high
                )
            )
            stale = staleness is None or staleness > args.max_staleness
            if want is None:
                decision = current
            elif current is None or want >= current:
                decision, lower_for = want, 0
            elif stale:
                decision = current  # never scale down on an old forecast
            else:
                lower_for += 1
                decision = want if lower_for >= args.down_polls else current
                if decision == want:
                    lower_for = 0
            current = decision
            print(
                json.dumps(
                    {
                        "forecast": value,
                        "at": forecast["at"],
                        "staleness_seconds": staleness,
                        "wanted": want,
                        "desired_replicas": decision,
                    }
                ),
                flush=True,
            )
        if args.once:
            return 0 if current is not None else 1
        time.sleep(args.interval)


if __name__ == "__main__":
    sys.exit(main())
