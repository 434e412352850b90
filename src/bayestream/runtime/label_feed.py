"""The labels topic, read whole by every processor (``[kafka] labels_topic``).

Labels are few next to events, and any processor of the group may hold the partition of a
labelled event, so each one reads every partition of the labels topic from the beginning with
a plain consumer (its own ``<group_id>.labels`` group id; it commits nothing) and keeps what
it reads in its :class:`~bayestream.runtime.labels.LabelJoin`. A message that is not a label
(see :func:`~bayestream.runtime.labels.decode_label`) is logged and counted in ``invalid``:
labels feed monitoring, not outputs, so they have no dead letters. Partitions added to the
topic while running are read after a restart.
"""

from __future__ import annotations

import logging
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from bayestream.errors import BayestreamError
from bayestream.runtime.labels import Label, decode_label
from bayestream.runtime.topics import KafkaRuntimeError

log = logging.getLogger(__name__)

POLL_MESSAGES = 10_000


class LabelFeed:
    """A consumer of every partition of the labels topic, polled without waiting."""

    def __init__(self, conf: dict[str, Any], topic: str) -> None:
        self.topic = topic
        self.invalid = 0
        self.consumer = Consumer(conf)
        found = self.consumer.list_topics(topic, timeout=30).topics.get(topic)
        if found is None or found.error is not None:
            raise KafkaRuntimeError(f"labels topic {topic!r} does not exist")
        self.consumer.assign(
            [TopicPartition(topic, p, OFFSET_BEGINNING) for p in sorted(found.partitions)]
        )

    def poll(self) -> list[Label]:
        """The labels that arrived since the last poll (none waited for)."""
        labels: list[Label] = []
        for m in self.consumer.consume(POLL_MESSAGES, 0):
            if m.error() is not None:
                log.warning("labels consumer: %s", m.error())
                continue
            try:
                labels.append(decode_label(m.value() or b""))
            except BayestreamError as exc:
                self.invalid += 1
                if self.invalid <= 10 or self.invalid % 1000 == 0:
                    log.warning(
                        "labels topic %s partition %s offset %s is not a label (%s); %d so far",
                        m.topic(),
                        m.partition(),
                        m.offset(),
                        exc,
                        self.invalid,
                    )
        return labels

    def close(self) -> None:
        self.consumer.close()


__all__ = ["LabelFeed"]
