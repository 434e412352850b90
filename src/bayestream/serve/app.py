"""The HTTP application of ``bayestream serve`` (aiohttp's low-level server), read-only.

One handler routes by the raw path itself: aiohttp's ``Application`` (router, middleware
chain, match info) cost about 15 % more CPU per request (measured: 178 - 192 against 152 -
157 us at 1,000 requests/s) for nothing these few routes need.

Routes (every answer JSON, errors ``{"error": ...}``, except ``/metrics`` and the probes):

``GET /v1/streams/{key}/{metric}``
    The stream's latest posterior record, plus ``staleness_seconds`` and ``kafka``; 404 when
    the stream is not held.
``GET /v1/streams/{key}/{metric}/forecast?horizon=S&q=L``
    ``{"value", "at", "staleness_seconds"}``; 400 naming what the record publishes.
``GET /v1/streams?prefix=&metric=&limit=&cursor=``
    A page of streams in (key, metric) order.
``GET /metrics``, ``/healthz``, ``/readyz``
    Prometheus text; liveness; readiness (503 until the topic is caught up).

Keys and metrics are path segments, percent-decoded after the path is split at ``/``: a key
containing ``/`` is sent as ``%2F``.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from urllib.parse import unquote

from aiohttp import web

from bayestream.serve import queries
from bayestream.serve.sensor import NullSensor, ServeSensor
from bayestream.serve.store import PosteriorStore

JSON = "application/json"
NO_STORE = {"Cache-Control": "no-store"}

# route templates: the label of the request metrics (never the raw path: unbounded)
STREAM = "/v1/streams/{key}/{metric}"
FORECAST = "/v1/streams/{key}/{metric}/forecast"
LIST = "/v1/streams"
METRICS = "/metrics"
HEALTHZ = "/healthz"
READYZ = "/readyz"
OTHER = "other"


@dataclass
class Service:
    """What the application answers from: the store, readiness and liveness, the sensor."""

    store: PosteriorStore
    ready: Callable[[], bool] = lambda: True
    # (alive, why not) -- the feed thread is running and not stuck
    alive: Callable[[], tuple[bool, str]] = lambda: (True, "")
    sensor: ServeSensor = field(default_factory=NullSensor)
    clock: Callable[[], float] = time.time


def _respond(status: int, body: bytes, content_type: str = JSON) -> web.Response:
    return web.Response(status=status, body=body, content_type=content_type, headers=NO_STORE)


def _error(status: int, message: str) -> web.Response:
    return _respond(status, queries.error(message))


Handler = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]


def create_handler(service: Service) -> Handler:
    """The request handler answering from ``service`` (for ``aiohttp.web.Server``, or
    ``aiohttp.test_utils.RawTestServer``)."""

    async def dispatch(request: web.BaseRequest) -> web.StreamResponse:
        started = time.perf_counter()
        route, response = _route(service, request)
        service.sensor.on_request(route, response.status, time.perf_counter() - started)
        return response

    return dispatch


def _route(service: Service, request: web.BaseRequest) -> tuple[str, web.Response]:
    if request.method not in ("GET", "HEAD"):
        response = _error(405, f"method {request.method} not allowed: the service is read-only")
        response.headers["Allow"] = "GET, HEAD"
        return OTHER, response
    path = request.raw_path.split("?", 1)[0]
    if path.startswith("/v1/streams"):
        return _streams(service, request, path)
    if path == METRICS:
        body, content_type = service.sensor.exposition(request.headers.get("Accept", ""))
        response = web.Response(status=200, body=body, headers=NO_STORE)
        response.headers["Content-Type"] = content_type
        return METRICS, response
    if path == HEALTHZ:
        alive, why = service.alive()
        status, text = (200, "ok\n") if alive else (503, f"{why}\n")
        return HEALTHZ, _respond(status, text.encode(), "text/plain")
    if path == READYZ:
        status, text = (200, "ready\n") if service.ready() else (503, "catching up\n")
        return READYZ, _respond(status, text.encode(), "text/plain")
    return OTHER, _error(404, f"no route {path}: see /v1/streams, /metrics, /healthz, /readyz")


def _streams(service: Service, request: web.BaseRequest, path: str) -> tuple[str, web.Response]:
    parts = path.split("/")[3:]  # "", "v1", "streams", ...
    if parts in ([], [""]):
        query = request.query
        try:
            body = queries.listing(
                service.store,
                service.clock(),
                prefix=query.get("prefix", ""),
                metric=query.get("metric") or None,
                cursor=query.get("cursor") or None,
                limit=queries.parse_limit(query.get("limit")),
            )
        except queries.BadRequest as exc:
            return LIST, _error(400, str(exc))
        return LIST, _respond(200, body)
    if len(parts) == 2 or (len(parts) == 3 and parts[2] == "forecast"):
        route = STREAM if len(parts) == 2 else FORECAST
        try:
            key, metric = unquote(parts[0], errors="strict"), unquote(parts[1], errors="strict")
        except UnicodeDecodeError:
            return route, _error(400, "key and metric must be percent-encoded UTF-8")
        entry = service.store.get(key, metric) if key and metric else None
        if entry is None:
            return route, _error(404, f"no stream key={key!r} metric={metric!r}")
        now = service.clock()
        if route == STREAM:
            return route, _respond(200, queries.stream(entry, now))
        try:
            horizon = queries.parse_horizon(request.query.get("horizon"))
            q = queries.parse_quantile(request.query.get("q"))
        except queries.BadRequest as exc:
            return route, _error(400, str(exc))
        status, body = queries.forecast(entry, horizon, q, now)
        return route, _respond(status, body)
    return OTHER, _error(
        404,
        "no route: /v1/streams/{key}/{metric}[/forecast] with key and metric "
        "percent-encoded (a / in a key as %2F)",
    )


__all__ = [
    "FORECAST",
    "HEALTHZ",
    "LIST",
    "METRICS",
    "READYZ",
    "STREAM",
    "Handler",
    "Service",
    "create_handler",
]
