"""``bayestream serve``: the read side. The latest posterior of every stream, materialised from
the compacted posteriors topic (by :mod:`bayestream.runtime.serve_feed`), answered over HTTP.

This room imports neither confluent_kafka nor prometheus_client: the Kafka feed lives in the
runtime, the Prometheus instruments in :mod:`bayestream.metrics.serve`.
"""

from bayestream.serve.app import Handler, Service, create_handler
from bayestream.serve.sensor import NullSensor, ServeSensor
from bayestream.serve.store import InvalidRecord, PosteriorStore, StreamName, pack, parse_name

__all__ = [
    "Handler",
    "InvalidRecord",
    "NullSensor",
    "PosteriorStore",
    "ServeSensor",
    "Service",
    "StreamName",
    "create_handler",
    "pack",
    "parse_name",
]
