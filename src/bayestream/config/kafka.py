"""``[kafka]``: topics, consumer group and librdkafka settings of the Kafka runtime.

librdkafka properties (any of them, SASL/SSL included) come from three places, later ones
winning: the runtime's tuned defaults, the ``client`` / ``consumer`` / ``producer`` tables of
the file, and environment variables ``BAYESTREAM_KAFKA_<PROPERTY>`` with dots written as
underscores (``BAYESTREAM_KAFKA_SASL_PASSWORD`` sets ``sasl.password``) for every client.
Values of secret-looking properties are kept as ``SecretStr`` and never logged.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

_SECRET_WORDS = ("password", "secret", "token", "sasl.oauthbearer.config", "key.pem")
ENV_PREFIX = "BAYESTREAM_KAFKA_"


def is_secret(name: str) -> bool:
    """Is this librdkafka property one whose value must never be printed?"""
    return any(word in name for word in _SECRET_WORDS)


Properties = dict[str, str | int | float | bool | SecretStr]


class KafkaSettings(BaseModel):
    """The ``[kafka]`` table."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    input_topics: Annotated[tuple[str, ...], Field(min_length=1)] = ("telemetry",)
    group_id: Annotated[str, Field(min_length=1)] = "bayestream"
    posteriors_topic: str = "bayestream.posteriors"
    anomalies_topic: str = "bayestream.anomalies"
    drift_topic: str = "bayestream.drift"
    calibration_topic: str = "bayestream.calibration"
    dead_letter_topic: str = "bayestream.dead-letter"
    changelog_topic: str | None = None  # default: "<group_id>.changelog"
    labels_topic: str | None = None  # labels (key, metric, ts, is_anomaly); None: no labels
    labels_capacity: Annotated[int, Field(ge=1)] = 1_000_000  # waiting labels / recent events
    transactional_id: str | None = None  # default: "<group_id>-<host>-<pid>"
    batch_size: Annotated[int, Field(ge=1, le=1_000_000)] = 20_000
    poll_timeout_seconds: Annotated[float, Field(gt=0, le=60)] = 0.1
    create_topics: bool = True
    # input topics must exist, unless this is set: then a missing one is created with this
    # many partitions (the most consumers that can share the work); `run --create-input-topics`
    input_partitions: Annotated[int, Field(ge=1, le=100_000)] | None = None
    # which output records name their input in bayestream.source.* headers: "all" (anomaly and
    # drift records the event behind each, posterior records the newest input message they
    # hold), "events" (anomaly and drift records only), "none"; dead letters always do.
    # confluent-kafka spends about 0.7 us per produce call on headers
    source_headers: Literal["none", "events", "all"] = "all"
    output_partitions: Annotated[int, Field(ge=1)] = 6  # for output topics it creates
    replication_factor: Annotated[int, Field(ge=-1)] = -1  # -1: the broker's default
    metrics_port: Annotated[int, Field(ge=0, le=65535)] | None = 9464
    metrics_host: str = "127.0.0.1"
    client: Properties = Field(default_factory=dict)
    consumer: Properties = Field(default_factory=dict)
    producer: Properties = Field(default_factory=dict)

    @field_validator("client", "consumer", "producer", mode="before")
    @classmethod
    def _hide_secrets(cls, value: Any) -> Any:
        if isinstance(value, Mapping):
            return {
                k: SecretStr(str(v)) if is_secret(str(k)) and not isinstance(v, SecretStr) else v
                for k, v in value.items()
            }
        return value

    @property
    def changelog(self) -> str:
        return self.changelog_topic or f"{self.group_id}.changelog"


def environment_properties(environ: Mapping[str, str] | None = None) -> Properties:
    """librdkafka properties from ``BAYESTREAM_KAFKA_*`` environment variables."""
    environ = os.environ if environ is None else environ
    out: Properties = {}
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX) or name == ENV_PREFIX:
            continue
        prop = name[len(ENV_PREFIX) :].lower().replace("_", ".")
        out[prop] = SecretStr(value) if is_secret(prop) else value
    return out


def reveal(properties: Mapping[str, Any]) -> dict[str, Any]:
    """Plain values for the client library (the only place secrets are unwrapped)."""
    return {
        k: v.get_secret_value() if isinstance(v, SecretStr) else v for k, v in properties.items()
    }


def redacted(properties: Mapping[str, Any]) -> dict[str, Any]:
    """Values safe to log."""
    return {k: "***" if is_secret(k) else v for k, v in reveal(properties).items()}


__all__ = [
    "ENV_PREFIX",
    "KafkaSettings",
    "environment_properties",
    "is_secret",
    "redacted",
    "reveal",
]
