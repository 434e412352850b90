"""The answers of the query service, as pure functions of stored entries and the clock.

Each returns ``(status, body)`` with ``body`` the JSON bytes to send; errors are JSON objects
with an ``error`` member (and, for an unpublished forecast, what is published instead).
"""

from __future__ import annotations

import base64
import binascii
import math
from typing import Any

import msgspec

from bayestream.serve.store import Entry, PosteriorStore

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000

_ENCODE = msgspec.json.Encoder()


class Forecast(msgspec.Struct):
    """One horizon of a record's ``forecast``: its event time and quantiles by level."""

    at: float | None = None
    quantiles: dict[str, float | None] = {}


class _Forecasts(msgspec.Struct):
    forecast: dict[str, Forecast] | None = None


_FORECASTS = msgspec.json.Decoder(_Forecasts)


class BadRequest(ValueError):
    """A query parameter the service cannot answer for (400)."""


def _json(value: Any) -> bytes:
    return _ENCODE.encode(value)


def error(message: str, **extra: Any) -> bytes:
    return _json({"error": message, **extra})


def staleness(entry: Entry, now: float) -> float | None:
    """Seconds from the record's ``last_ts`` to ``now`` (None without a ``last_ts``)."""
    return None if entry.last_ts is None else now - entry.last_ts


def stream(entry: Entry, now: float) -> bytes:
    """The record as published, plus ``staleness_seconds`` and ``kafka``: {partition, offset}.

    The members are spliced into the stored JSON object rather than parsed and re-encoded.
    """
    extra = _json(
        {
            "staleness_seconds": staleness(entry, now),
            "kafka": {"partition": entry.partition, "offset": entry.offset},
        }
    )
    record = entry.record
    if record == b"{}":  # (never stored: a record has key and metric; kept total)
        return extra
    return record[:-1] + b"," + extra[1:]


def _level(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


_horizon = _level  # a horizon key: seconds as a string, "300"


def _published(forecasts: dict[str, Forecast], horizon: str | None) -> dict[str, Any]:
    """What the record publishes, for an error body: its horizons (numbers, sorted) and the
    quantile levels of ``horizon`` (or of every horizon, when it is not published)."""
    horizons = sorted(h for h in (_horizon(k) for k in forecasts) if h is not None)
    chosen = [forecasts[horizon]] if horizon is not None else list(forecasts.values())
    levels = sorted({q for f in chosen for q in (_level(k) for k in f.quantiles) if q is not None})
    return {
        "horizons": [int(h) if h.is_integer() else h for h in horizons],
        "quantiles": levels,
    }


def parse_horizon(text: str | None) -> float:
    if text is None or text == "":
        raise BadRequest("horizon is required (seconds, e.g. horizon=300)")
    value = _horizon(text)
    if value is None or value <= 0:
        raise BadRequest(f"horizon must be a positive number of seconds, got {text!r}")
    return value


def parse_quantile(text: str | None) -> float:
    if text is None or text == "":
        raise BadRequest("q is required (a quantile level, e.g. q=0.95)")
    value = _level(text)
    if value is None or not 0 < value < 1:
        raise BadRequest(f"q must be a quantile level in (0, 1), got {text!r}")
    return value


def forecast(entry: Entry, horizon: float, q: float, now: float) -> tuple[int, bytes]:
    """The forecast quantile ``q`` at ``horizon`` seconds of a stream:
    ``{"value", "at", "staleness_seconds"}``; 400 naming the published horizons and quantiles
    when the record does not publish that one."""
    try:
        forecasts = _FORECASTS.decode(entry.record).forecast or {}
    except msgspec.DecodeError:  # a record whose forecast has another shape
        forecasts = {}
    by_horizon = {h: k for k in forecasts if (h := _horizon(k)) is not None}
    horizon, q = float(horizon), float(q)
    label = int(horizon) if horizon.is_integer() else horizon
    if not forecasts:
        return 400, error("no forecast published for this stream", horizons=[], quantiles=[])
    if horizon not in by_horizon:
        return 400, error(f"horizon {label} not published", **_published(forecasts, None))
    key = by_horizon[horizon]
    published = forecasts[key]
    for level, value in published.quantiles.items():
        if _level(level) == q:
            body = {"value": value, "at": published.at, "staleness_seconds": staleness(entry, now)}
            return 200, _json(body)
    return 400, error(
        f"quantile {q} not published at horizon {label}", **_published(forecasts, key)
    )


def encode_cursor(name: tuple[str, str]) -> str:
    """An opaque cursor: the last (key, metric) of a page."""
    return base64.urlsafe_b64encode(_json(list(name))).decode().rstrip("=")


def decode_cursor(text: str) -> tuple[str, str]:
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        key, metric = msgspec.json.decode(raw, type=tuple[str, str])
    except (binascii.Error, ValueError, msgspec.DecodeError):
        raise BadRequest("invalid cursor (use next_cursor of the previous page)") from None
    return key, metric


def parse_limit(text: str | None) -> int:
    if text is None or text == "":
        return DEFAULT_LIMIT
    try:
        value = int(text)
    except ValueError:
        raise BadRequest(f"limit must be a whole number, got {text!r}") from None
    if value < 1:
        raise BadRequest(f"limit must be at least 1, got {value}")
    return min(value, MAX_LIMIT)


class _Listed(msgspec.Struct):
    key: str
    metric: str
    last_ts: float | None
    staleness_seconds: float | None


class _Page(msgspec.Struct):
    streams: list[_Listed]
    next_cursor: str | None


def listing(
    store: PosteriorStore,
    now: float,
    prefix: str = "",
    metric: str | None = None,
    cursor: str | None = None,
    limit: int = DEFAULT_LIMIT,
) -> bytes:
    """A page of streams in (key, metric) order: ``{"streams": [{key, metric, last_ts,
    staleness_seconds}], "next_cursor": str | null}``."""
    after = decode_cursor(cursor) if cursor else None
    heads, last = store.heads(prefix, metric, after, limit)
    streams = [_Listed(key, name, ts, None if ts is None else now - ts) for key, name, ts in heads]
    return _ENCODE.encode(_Page(streams, None if last is None else encode_cursor(last)))


__all__ = [
    "DEFAULT_LIMIT",
    "MAX_LIMIT",
    "BadRequest",
    "decode_cursor",
    "encode_cursor",
    "error",
    "forecast",
    "listing",
    "parse_horizon",
    "parse_limit",
    "parse_quantile",
    "stream",
]
