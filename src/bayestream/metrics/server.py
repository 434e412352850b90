"""A small HTTP server for scrapes and probes, on a daemon thread.

``GET /metrics``
    The registry in the Prometheus text format (OpenMetrics when the scraper asks for it).
``GET /healthz``
    Liveness: 200 ``ok`` while the processing loop calls :meth:`Metrics.heartbeat` at least once
    per ``liveness_timeout`` seconds, else 503.
``GET /readyz``
    Readiness: 200 while :meth:`Metrics.set_ready` last said ready, else 503.

``HEAD`` is answered like ``GET`` without a body; any other path is 404.
"""

from __future__ import annotations

import logging
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlsplit

from prometheus_client.exposition import choose_encoder

from bayestream.metrics.instruments import Metrics

logger = logging.getLogger(__name__)

TEXT = "text/plain; charset=utf-8"


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, host: str, port: int, metrics: Metrics, liveness_timeout: float) -> None:
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.metrics = metrics
        self.liveness_timeout = liveness_timeout
        super().__init__((host, port), _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: _HTTPServer

    def do_GET(self) -> None:
        self._respond(body=True)

    def do_HEAD(self) -> None:
        self._respond(body=False)

    def _respond(self, body: bool) -> None:
        metrics = self.server.metrics
        path = urlsplit(self.path).path.rstrip("/") or "/"
        content_type = TEXT
        if path == "/metrics":
            encoder, content_type = choose_encoder(self.headers.get("Accept", ""))
            status, payload = 200, encoder(metrics.registry)
        elif path == "/healthz":
            age = metrics.seconds_since_heartbeat()
            if age <= self.server.liveness_timeout:
                status, payload = 200, b"ok\n"
            else:
                status, payload = 503, f"no heartbeat for {age:.1f} s\n".encode()
        elif path == "/readyz":
            status, payload = (200, b"ready\n") if metrics.ready else (503, b"not ready\n")
        else:
            status, payload = 404, b"not found: try /metrics, /healthz or /readyz\n"
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if body:
            self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s - " + format, self.address_string(), *args)


class MetricsServer:
    """Serves ``/metrics``, ``/healthz`` and ``/readyz`` for one :class:`Metrics`.

    Parameters
    ----------
    metrics
        The instruments, heartbeat and readiness to serve.
    host
        Address to bind; ``"0.0.0.0"`` (or ``"::"``) to be scraped from outside the host.
    port
        Port to bind; 0 picks a free one (read it from :meth:`start` or :attr:`port`).
    liveness_timeout
        Seconds without a heartbeat after which ``/healthz`` answers 503.

    Examples
    --------
    >>> with MetricsServer(Metrics()) as server:  # doctest: +SKIP
    ...     print(f"http://127.0.0.1:{server.port}/metrics")
    """

    def __init__(
        self,
        metrics: Metrics,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        liveness_timeout: float = 30.0,
    ) -> None:
        if not liveness_timeout > 0:
            raise ValueError(f"liveness_timeout must be > 0, got {liveness_timeout!r}")
        self.metrics = metrics
        self.host = host
        self.liveness_timeout = float(liveness_timeout)
        self._requested_port = port
        self._server: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int | None:
        """The bound port while bound (serving or not yet), else None."""
        return None if self._server is None else int(self._server.server_address[1])

    def bind(self) -> int:
        """Bind and listen, without serving yet; return the bound port. Idempotent.

        A start-up binds first, so that a port in use is reported before any other work;
        requests wait in the listen backlog until :meth:`start`.

        Raises
        ------
        OSError
            The address cannot be bound (port in use, unknown host).
        """
        if self._server is None:
            self._server = _HTTPServer(
                self.host, self._requested_port, self.metrics, self.liveness_timeout
            )
        return int(self._server.server_address[1])

    def start(self) -> int:
        """Bind (unless :meth:`bind` did) and serve on a daemon thread; return the bound port.
        Idempotent.

        Raises
        ------
        OSError
            The address cannot be bound (port in use, unknown host).
        """
        port = self.bind()
        if self._thread is not None:
            return port
        assert self._server is not None
        thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="bayestream-metrics",
            daemon=True,
        )
        thread.start()
        self._thread = thread
        logger.info("metrics server listening on %s:%d", self.host, port)
        return port

    def stop(self) -> None:
        """Stop serving (if serving) and release the port. Idempotent."""
        server, thread = self._server, self._thread
        if server is None:
            return
        if thread is not None:
            server.shutdown()
            thread.join()
        server.server_close()
        self._server = self._thread = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


__all__ = ["MetricsServer"]
