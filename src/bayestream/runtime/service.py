"""``bayestream run --kafka``: the Kafka runtime with its metrics endpoint and signal handling."""

from __future__ import annotations

import errno
import logging
import signal
import socket
import sys
from collections.abc import Callable
from types import FrameType
from typing import TYPE_CHECKING

from bayestream.config import Config, KafkaSettings
from bayestream.errors import ConfigError
from bayestream.runtime.hooks import NoHooks
from bayestream.runtime.kafka import Hooks, KafkaRunner

if TYPE_CHECKING:
    from bayestream.metrics import MetricsServer


def bind_metrics(settings: KafkaSettings) -> MetricsServer | None:
    """Bind the metrics port of ``[kafka]`` (not serving yet; None when ``metrics_port`` is
    unset), so that a port in use stops the start before any other work.

    Raises
    ------
    ConfigError
        The address cannot be bound; the message names ``[kafka] metrics_port`` (or
        ``metrics_host``) and how to choose another.
    """
    if settings.metrics_port is None:
        return None
    from bayestream.metrics import Metrics, MetricsServer
    from bayestream.schema.reasons import Reason

    metrics = Metrics(dead_letter_reasons=[r.value for r in Reason])
    server = MetricsServer(metrics, host=settings.metrics_host, port=settings.metrics_port)
    try:
        server.bind()
    except OSError as exc:
        raise ConfigError(_bind_failure(settings, exc)) from exc
    return server


def _bind_failure(settings: KafkaSettings, exc: OSError) -> str:
    where = f"{settings.metrics_host}:{settings.metrics_port}"
    reason = exc.strerror or str(exc)
    if isinstance(exc, socket.gaierror) or exc.errno == errno.EADDRNOTAVAIL:
        return (
            f"[kafka] metrics_host = {settings.metrics_host!r}: cannot listen on {where} "
            f"({reason}); use an address of this host, e.g. 127.0.0.1 or 0.0.0.0"
        )
    return (
        f"[kafka] metrics_port = {settings.metrics_port}: cannot listen on {where} ({reason}); "
        "choose another port in [kafka] metrics_port (0 = any free port)"
    )


def run_kafka(
    config: Config,
    bootstrap: str,
    batch_size: int | None = None,
    server: MetricsServer | None = None,
    hooks_around: Callable[[Hooks], Hooks] | None = None,
) -> int:
    """Run until SIGTERM/SIGINT, then finish the batch, commit and exit 0.

    ``server`` is the metrics endpoint :func:`bind_metrics` bound; without it one is bound
    here when ``[kafka] metrics_port`` is set. It is stopped on return. ``hooks_around`` wraps
    the runner's hooks (the crash tests inject their kills so).
    """
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if batch_size:
        config = config.model_copy(
            update={"kafka": config.kafka.model_copy(update={"batch_size": batch_size})}
        )
    if server is None:
        server = bind_metrics(config.kafka)
    hooks: Hooks | None = None
    sensor = None
    try:
        if server is not None:
            from bayestream.metrics import PrometheusSensor

            metrics = server.metrics
            sensor = PrometheusSensor(metrics)
            hooks = metrics
            metrics.heartbeat()  # liveness counts from here, not from the kernels' warm-up
            port = server.start()
            logging.getLogger("bayestream").info(
                "metrics on http://%s:%d/metrics", config.kafka.metrics_host, port
            )
        if hooks_around is not None:
            hooks = hooks_around(hooks or NoHooks())
        runner = KafkaRunner(config, bootstrap, sensor=sensor, hooks=hooks)

        def stop(signum: int, frame: FrameType | None) -> None:
            runner.stop()

        previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            return runner.run()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
    finally:
        if server is not None:
            server.stop()


__all__ = ["bind_metrics", "run_kafka"]
