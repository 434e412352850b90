"""What the Kafka runtime reports beyond the engine's sensor (the metrics room implements it)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Protocol


class Hooks(Protocol):
    """What the runtime reports beyond the engine's sensor (the metrics room implements it)."""

    def heartbeat(self) -> None: ...

    def set_ready(self, ready: bool) -> None: ...

    def transaction(self, committed: bool) -> None: ...

    def observe_restore(self, seconds: float, streams: int) -> None: ...

    def observe_publish_latency(self, seconds: Iterable[float]) -> None: ...

    def set_lag(self, topic: str, partition: int, lag: float) -> None: ...

    def set_freshness(self, topic: str, partition: int, seconds: float) -> None: ...

    def drop_partition(self, topic: str, partition: int) -> None: ...

    def set_labels(self, counts: Mapping[str, int]) -> None: ...

    def reached(self, point: str) -> None:
        """The runner reached a point of its commit protocol: ``mid_batch`` (between two
        partitions' outputs), ``before_commit`` (records delivered, commit not sent),
        ``after_commit`` and ``restore`` (a batch of changelog records read). Reports nothing
        in production; the crash tests kill the process here."""
        ...


class NoHooks:
    """Hooks that report nothing."""

    def heartbeat(self) -> None:
        return None

    def set_ready(self, ready: bool) -> None:
        return None

    def transaction(self, committed: bool) -> None:
        return None

    def observe_restore(self, seconds: float, streams: int) -> None:
        return None

    def observe_publish_latency(self, seconds: Iterable[float]) -> None:
        return None

    def set_lag(self, topic: str, partition: int, lag: float) -> None:
        return None

    def set_freshness(self, topic: str, partition: int, seconds: float) -> None:
        return None

    def drop_partition(self, topic: str, partition: int) -> None:
        return None

    def set_labels(self, counts: Mapping[str, int]) -> None:
        return None

    def reached(self, point: str) -> None:
        return None


__all__ = ["Hooks", "NoHooks"]
