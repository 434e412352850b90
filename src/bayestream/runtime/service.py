"""``bayestream run --kafka``: the Kafka runtime with its metrics endpoint and signal handling."""

from __future__ import annotations

import logging
import signal
import sys
from collections.abc import Callable
from types import FrameType

from bayestream.config import Config
from bayestream.runtime.hooks import NoHooks
from bayestream.runtime.kafka import Hooks, KafkaRunner


def run_kafka(
    config: Config,
    bootstrap: str,
    batch_size: int | None = None,
    hooks_around: Callable[[Hooks], Hooks] | None = None,
) -> int:
    """Run until SIGTERM/SIGINT, then finish the batch, commit and exit 0. ``hooks_around``
    wraps the runner's hooks (the crash tests inject their kills so)."""
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if batch_size:
        config = config.model_copy(
            update={"kafka": config.kafka.model_copy(update={"batch_size": batch_size})}
        )
    hooks: Hooks | None = None
    sensor = None
    server = None
    if config.kafka.metrics_port is not None:
        from bayestream.metrics import Metrics, MetricsServer, PrometheusSensor
        from bayestream.schema.reasons import Reason

        metrics = Metrics(dead_letter_reasons=[r.value for r in Reason])
        sensor = PrometheusSensor(metrics)
        hooks = metrics
        server = MetricsServer(
            metrics, host=config.kafka.metrics_host, port=config.kafka.metrics_port
        )
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
        if server is not None:
            server.stop()


__all__ = ["run_kafka"]
