"""``bayestream serve``: the query service's process (composition of feed, store and HTTP)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import socket
import sys
from collections.abc import AsyncIterator

from bayestream.config.kafka import KafkaSettings
from bayestream.errors import ConfigError
from bayestream.runtime.serve_feed import CONNECT_TIMEOUT, LIBRDKAFKA_LOG, FeedError, PosteriorFeed
from bayestream.serve import PosteriorStore, Service, create_handler
from bayestream.serve.server import bind, serve_until

log = logging.getLogger("bayestream.serve")

# Records are applied on the event loop between requests; the consumer thread still takes the
# GIL to build its batches' message objects, and Python hands the GIL over every switch
# interval (5 ms by default), too coarse for a 5 ms p99: 1 ms here.
SWITCH_INTERVAL = 0.001


def bind_port(host: str, port: int) -> socket.socket:
    """Bind the service's port, or say in one line why not (before any Kafka work).

    Raises
    ------
    ConfigError
        The address cannot be bound.
    """
    try:
        return bind(host, port)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise ConfigError(
            f"--host {host} --port {port}: cannot listen ({reason}); choose another --port "
            "(0 = any free port) or --host"
        ) from None


@contextlib.asynccontextmanager
async def _feeding(feed: PosteriorFeed) -> AsyncIterator[None]:
    """For the application's life: the consumer thread, and the task applying its batches on
    the event loop."""
    task = asyncio.create_task(feed.apply_forever(), name="bayestream-serve-apply")
    feed.start(asyncio.get_running_loop())
    yield
    feed.stop()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def run_serve(
    settings: KafkaSettings,
    bootstrap: str,
    host: str = "127.0.0.1",
    port: int = 8080,
    connect_timeout: float = CONNECT_TIMEOUT,
) -> int:
    """Serve until SIGTERM/SIGINT (exit 0), or until the feed fails (exit 1).

    Raises
    ------
    ConfigError
        The port cannot be bound.
    FeedError
        The broker cannot be reached, or the posteriors topic does not exist.
    """
    from bayestream.metrics.serve import ServeMetrics

    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    sock = bind_port(host, port)
    try:
        store = PosteriorStore()
        feed_holder: list[PosteriorFeed] = []
        metrics = ServeMetrics(
            streams=lambda: len(store),
            lag=lambda: feed_holder[0].lag() if feed_holder else 0,
            ready=lambda: bool(feed_holder) and feed_holder[0].ready,
            process_metrics=True,
        )
        service = Service(store, sensor=metrics)
        feed = PosteriorFeed(settings, bootstrap, store, metrics, connect_timeout)
        feed_holder.append(feed)
        service.ready = lambda: feed.ready
        service.alive = feed.alive
        level = LIBRDKAFKA_LOG.level
        LIBRDKAFKA_LOG.setLevel(logging.CRITICAL)  # an unreachable broker: one line, below
        try:
            feed.connect()
        finally:
            LIBRDKAFKA_LOG.setLevel(level)
        sys.setswitchinterval(SWITCH_INTERVAL)
        log.info(
            "serving %s on http://%s:%d (/v1/streams, /metrics, /healthz, /readyz)",
            settings.posteriors_topic,
            host,
            sock.getsockname()[1],
        )
        app = create_handler(service)
        feeding = functools.partial(_feeding, feed)
        try:
            asyncio.run(serve_until(app, sock, lambda: feed.failure is not None, alongside=feeding))
        finally:
            feed.stop()
        if feed.failure is not None:
            raise FeedError(f"reading {settings.posteriors_topic!r} failed: {feed.failure}")
        return 0
    finally:
        sock.close()


__all__ = ["SWITCH_INTERVAL", "bind_port", "run_serve"]
