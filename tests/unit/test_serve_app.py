"""The query service's HTTP answers (aiohttp's test server on a real socket, no Kafka)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp.test_utils import RawTestServer, TestClient
from prometheus_client import CollectorRegistry

from bayestream.metrics.serve import ServeMetrics
from bayestream.serve import PosteriorStore, Service, StreamName, create_handler, pack

Check = Callable[[TestClient[Any, Any]], Awaitable[None]]


def _service(ready: bool = True) -> Service:
    store = PosteriorStore()
    for key, metric in [("svc-a", "lat"), ("svc-b", "lat"), ("svc-b", "err"), ("a/b c", "lat")]:
        value = {
            "key": key,
            "metric": metric,
            "mean": 1.0,
            "last_ts": 1000.0,
            "forecast": {"300": {"at": 1300.0, "quantiles": {"0.5": 3.0, "0.95": 7.5}}},
        }
        store.put(StreamName(key, metric), pack(2, 40, json.dumps(value).encode()))
    metrics = ServeMetrics(CollectorRegistry(), streams=lambda: len(store), ready=lambda: ready)
    return Service(store, ready=lambda: ready, sensor=metrics, clock=lambda: 1004.0)


def _run(service: Service, check: Check) -> None:
    async def main() -> None:
        async with TestClient(RawTestServer(create_handler(service))) as client:
            await check(client)

    asyncio.run(main())


def test_stream_forecast_and_listing() -> None:
    async def check(client: TestClient[Any, Any]) -> None:
        r = await client.get("/v1/streams/svc-a/lat")
        assert r.status == 200 and r.headers["Content-Type"].startswith("application/json")
        body = await r.json()
        assert body["mean"] == 1.0 and body["staleness_seconds"] == 4.0
        assert body["kafka"] == {"partition": 2, "offset": 40}
        # a key with "/" and a space, percent-encoded
        r = await client.get("/v1/streams/a%2Fb%20c/lat")
        assert r.status == 200 and (await r.json())["key"] == "a/b c"
        r = await client.get("/v1/streams/svc-a/lat/forecast?horizon=300&q=0.95")
        assert await r.json() == {"value": 7.5, "at": 1300.0, "staleness_seconds": 4.0}
        r = await client.get("/v1/streams/svc-a/lat/forecast?horizon=600&q=0.95")
        assert r.status == 400
        assert await r.json() == {
            "error": "horizon 600 not published",
            "horizons": [300],
            "quantiles": [0.5, 0.95],
        }
        r = await client.get("/v1/streams/svc-a/lat/forecast?q=0.95")
        assert r.status == 400 and "horizon" in (await r.json())["error"]
        r = await client.get("/v1/streams?prefix=svc-&limit=2")
        page = await r.json()
        assert [(s["key"], s["metric"]) for s in page["streams"]] == [
            ("svc-a", "lat"),
            ("svc-b", "err"),
        ]
        r = await client.get(
            "/v1/streams", params={"prefix": "svc-", "cursor": page["next_cursor"]}
        )
        page = await r.json()
        assert [(s["key"], s["metric"]) for s in page["streams"]] == [("svc-b", "lat")]
        assert page["next_cursor"] is None
        r = await client.get("/v1/streams?metric=err")
        assert [s["key"] for s in (await r.json())["streams"]] == ["svc-b"]

    _run(_service(), check)


def test_errors_are_json() -> None:
    async def check(client: TestClient[Any, Any]) -> None:
        for path, status in [
            ("/v1/streams/nope/lat", 404),
            ("/v1/streams/svc-a/nope", 404),
            ("/v1/streams/svc-a", 404),
            ("/v1/streams/svc-a/lat/other", 404),
            ("/v1/streams/%FF/lat", 400),
            ("/v1/streams?limit=0", 400),
            ("/v1/streams?cursor=zzz", 400),
            ("/v1/streams/svc-a/lat/forecast?horizon=300&q=2", 400),
            ("/nothing", 404),
        ]:
            r = await client.get(path)
            assert r.status == status, path
            assert "error" in await r.json(), path
        r = await client.post("/v1/streams/svc-a/lat")
        assert r.status == 405 and r.headers["Allow"] == "GET, HEAD"

    _run(_service(), check)


def test_probes_and_metrics() -> None:
    async def check(client: TestClient[Any, Any]) -> None:
        assert (await client.get("/healthz")).status == 200
        assert (await client.get("/readyz")).status == 503
        await client.get("/v1/streams/svc-a/lat")
        await client.get("/v1/streams/nope/lat")
        text = await (await client.get("/metrics")).text()
        assert (
            'bayestream_serve_requests_total{route="/v1/streams/{key}/{metric}",status="200"} 1.0'
            in text
        )
        assert 'route="/v1/streams/{key}/{metric}",status="404"} 1.0' in text
        assert "bayestream_serve_streams 4.0" in text
        assert "bayestream_serve_ready 0.0" in text
        count = "bayestream_serve_request_duration_seconds_count"
        assert count + '{route="/v1/streams/{key}/{metric}"} 2.0' in text

        head = await client.head("/v1/streams/svc-a/lat")  # answered like GET, without a body
        assert head.status == 200 and await head.read() == b""
        assert int(head.headers["Content-Length"]) > 0

    _run(_service(ready=False), check)
