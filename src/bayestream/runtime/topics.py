"""The topics the Kafka runtime needs: checked, and created with the right configs if absent."""

from __future__ import annotations

import time
from typing import Any

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from bayestream.config import KafkaSettings
from bayestream.errors import BayestreamError


class KafkaRuntimeError(BayestreamError):
    """The Kafka runtime cannot start or continue (topics refused, configuration invalid)."""


def prepare_topics(common: dict[str, Any], settings: KafkaSettings) -> int:
    """Check the input topics (creating missing ones when ``input_partitions`` is set), create
    missing outputs (posteriors and changelog compacted) and return the changelog's partition
    count (the input's, which it must be co-partitioned with)."""
    admin = AdminClient(common)
    metadata = admin.list_topics(timeout=30)
    partitions = 0
    wanted: dict[str, tuple[int, dict[str, str]]] = {}
    for topic in settings.input_topics:
        found = metadata.topics.get(topic)
        if found is not None and found.error is None:
            partitions = max(partitions, len(found.partitions))
        elif settings.input_partitions is not None:
            wanted[topic] = (settings.input_partitions, {})
            partitions = max(partitions, settings.input_partitions)
        else:
            raise KafkaRuntimeError(
                f"input topic {topic!r} does not exist: create it, with as many partitions as "
                "processes that may share the work, or let bayestream create it "
                "(run --create-input-topics N, or [kafka] input_partitions = N)"
            )
    wanted |= {
        settings.posteriors_topic: (
            settings.output_partitions,
            {"cleanup.policy": "compact"},
        ),
        settings.anomalies_topic: (settings.output_partitions, {}),
        settings.drift_topic: (settings.output_partitions, {}),
        settings.calibration_topic: (settings.output_partitions, {"cleanup.policy": "compact"}),
        settings.dead_letter_topic: (settings.output_partitions, {}),
        settings.changelog: (partitions, {"cleanup.policy": "compact"}),
    }
    if settings.labels_topic:  # not compacted: labels of one key are all kept
        wanted[settings.labels_topic] = (settings.output_partitions, {})
    missing = [
        NewTopic(
            name,
            num_partitions=n,
            replication_factor=settings.replication_factor,
            config=conf,
        )
        for name, (n, conf) in wanted.items()
        if name not in metadata.topics
    ]
    changelog = metadata.topics.get(settings.changelog)
    if changelog is not None and len(changelog.partitions) < partitions:
        raise KafkaRuntimeError(
            f"changelog {settings.changelog!r} has {len(changelog.partitions)} "
            f"partitions, the input has {partitions}: it must be co-partitioned"
        )
    if not missing:
        return partitions
    gated = [t.topic for t in missing if t.topic not in settings.input_topics]
    if gated and not settings.create_topics:  # (input topics: created by input_partitions)
        raise KafkaRuntimeError(f"topics missing and create_topics = false: {', '.join(gated)}")
    for topic, future in admin.create_topics(missing).items():
        try:
            future.result(30)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise KafkaRuntimeError(f"the broker refused to create {topic}: {exc}") from exc
    _wait_for_leaders(admin, [t.topic for t in missing])
    return partitions


def _wait_for_leaders(admin: AdminClient, names: list[str], timeout: float = 30.0) -> None:
    """Wait until every partition of the new topics has a leader: a topic is created before
    its partitions are ready, and the first requests to it (the changelog's watermark query,
    the first produce) would otherwise fail and be retried. After ``timeout`` the wait ends
    without a word; what still fails then is retried where it fails."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            topics = admin.list_topics(timeout=max(deadline - time.monotonic(), 0.1)).topics
        except KafkaException:
            topics = {}
        if all(
            name in topics
            and topics[name].error is None
            and topics[name].partitions
            and all(p.leader >= 0 and p.error is None for p in topics[name].partitions.values())
            for name in names
        ):
            return
        time.sleep(0.05)


__all__ = ["KafkaRuntimeError", "prepare_topics"]
