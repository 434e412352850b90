"""What the query service reports, as a protocol: the Prometheus implementation lives in
:mod:`bayestream.metrics.serve` (this room imports no prometheus_client)."""

from __future__ import annotations

from typing import Protocol


class ServeSensor(Protocol):
    """Hooks of the query service: requests served, records materialised, and the text of
    ``GET /metrics``."""

    def on_request(self, route: str, status: int, seconds: float) -> None:
        """A request to ``route`` (a route template, not the path) answered ``status``."""

    def on_record(self, outcome: str) -> None:
        """A message of the posteriors topic: ``stored``, ``deleted`` (a tombstone) or
        ``invalid`` (not a posterior record; skipped)."""

    def exposition(self, accept: str) -> tuple[bytes, str]:
        """The metrics for a scrape that sent this ``Accept`` header, and their content type."""


class NullSensor:
    """Reports nothing; ``/metrics`` answers an empty text."""

    def on_request(self, route: str, status: int, seconds: float) -> None:
        return None

    def on_record(self, outcome: str) -> None:
        return None

    def exposition(self, accept: str) -> tuple[bytes, str]:
        return b"", "text/plain; version=0.0.4; charset=utf-8"


__all__ = ["NullSensor", "ServeSensor"]
