"""Labels joined to anomaly probabilities as a run goes, whichever of the two comes first.

A label is one JSON object: ``key``, ``metric``, ``ts`` (seconds since the epoch, or RFC 3339)
and ``is_anomaly`` (true/false or 1/0). The file runner reads them from ``--labels FILE``
before the run; the Kafka runtime reads ``[kafka] labels_topic`` as labels arrive. A label
matches the applied events of its exact (key, metric, ts); each match feeds the event's
anomaly probability and the label to the reliability monitor of the event's rule
(:class:`bayestream.engine.monitoring.CalibrationTracker` of the engine that scored it), which
reports the Brier score, ECE, MCE and reliability table in the calibration records.

- Label first: it waits (at most ``capacity`` waiting labels; the oldest is dropped first) and
  joins every later event of its triple.
- Event first: the last ``recent`` applied events (engine, stream id and its admission
  generation, ts, probability) are kept in a ring of columns; a label that arrives later joins
  the newest of them with its triple, once. The generation keeps a label from joining an event
  of an evicted stream whose id a later stream took over. The file runner, whose labels all
  come first, keeps no ring.

Calibration is monitoring, not output: a batch rolled back and replayed on Kafka is joined
again (its engine's monitor is rebuilt with it, so nothing counts twice in one monitor).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import NamedTuple

import msgspec
import numpy as np

from bayestream.engine import Engine, Outputs
from bayestream.errors import BayestreamError
from bayestream.models._protocol import OUT_PROB
from bayestream.schema.wire import parse_rfc3339

DEFAULT_CAPACITY = 1_000_000


class Label(NamedTuple):
    key: str
    metric: str
    ts: float
    is_anomaly: bool


class _Wire(msgspec.Struct):
    key: str
    metric: str
    ts: float | str
    is_anomaly: bool | int


_DECODER = msgspec.json.Decoder(_Wire)


def decode_label(data: bytes) -> Label:
    """One label from JSON; raises :class:`BayestreamError` naming what is wrong."""
    try:
        wire = _DECODER.decode(data)
    except msgspec.DecodeError as exc:
        raise BayestreamError(str(exc)) from exc
    ts = wire.ts if isinstance(wire.ts, float) else parse_rfc3339(wire.ts)
    if ts is None or ts != ts:
        raise BayestreamError(f"bad ts {wire.ts!r}")
    if not isinstance(wire.is_anomaly, bool) and wire.is_anomaly not in (0, 1):
        raise BayestreamError(f"is_anomaly must be true/false or 1/0, not {wire.is_anomaly!r}")
    return Label(wire.key, wire.metric, float(ts), bool(wire.is_anomaly))


class _Waiting:
    """A label waiting for its events; ``matched`` once one of them came."""

    __slots__ = ("is_anomaly", "matched")

    def __init__(self, is_anomaly: bool) -> None:
        self.is_anomaly = is_anomaly
        self.matched = False


class LabelJoin:
    """Labels by (key, metric, ts) and recent scored events, joined either way round."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY, recent: int | None = None) -> None:
        """``capacity`` waiting labels at most; a ring of the last ``recent`` applied events
        (default: ``capacity``; 0: none, so late labels only wait)."""
        recent = capacity if recent is None else recent
        if capacity < 1 or recent < 0:
            raise ValueError("capacity must be at least 1, recent at least 0")
        self.capacity = capacity
        self.recent = recent
        self.waiting: dict[tuple[str, str], dict[float, _Waiting]] = {}
        self._order: deque[tuple[str, str, float]] = deque()  # waiting labels, oldest first
        self.received = 0
        self.matched = 0  # labels that joined at least one event
        self.dropped = 0  # waiting labels dropped unmatched to stay within capacity
        self._engine = np.full(recent, -1, dtype=np.int64)  # ring: who scored the event
        self._stream = np.full(recent, -1, dtype=np.int64)
        self._generation = np.zeros(recent, dtype=np.int64)
        self._ts = np.full(recent, np.nan)
        self._prob = np.full(recent, np.nan)
        self._head = 0  # the next ring position to write

    @classmethod
    def load(cls, path: str | Path, capacity: int = DEFAULT_CAPACITY) -> LabelJoin:
        """All labels of a JSON-lines file, waiting for their events (file runner)."""
        try:
            lines = Path(path).read_bytes().splitlines()
        except OSError as exc:
            raise BayestreamError(f"--labels {path}: {exc.strerror}") from exc
        labels = []
        for number, line in enumerate(lines, start=1):
            if line.strip():
                try:
                    labels.append(decode_label(line))
                except BayestreamError as exc:
                    raise BayestreamError(f"--labels {path}, line {number}: {exc}") from exc
        join = cls(max(capacity, len(labels)), recent=0)
        join.add(labels, {})
        return join

    @property
    def waiting_count(self) -> int:
        return len(self._order)

    @property
    def unmatched(self) -> int:
        """Labels received that have not joined an event (yet)."""
        return self.received - self.matched

    def counts(self) -> dict[str, int]:
        """Labels by state: joined, unmatched, waiting, dropped."""
        return {
            "joined": self.matched,
            "unmatched": self.unmatched,
            "waiting": self.waiting_count,
            "dropped": self.dropped,
        }

    # --- labels arrive ------------------------------------------------------------------

    def add(self, labels: Iterable[Label], engines: Mapping[int, Engine]) -> None:
        """Join new labels to the recent events ``engines`` scored, or let them wait."""
        labels = list(labels)
        self.received += len(labels)
        late: list[tuple[int, int, int, Label]] = []  # (engine, stream id, generation, label)
        for label in labels if self.recent else ():
            for number, engine in engines.items():
                stream = engine.stream_id(label.key, label.metric)
                if stream >= 0:
                    generation = int(engine.generations(np.array([stream]))[0])
                    late.append((number, stream, generation, label))
        joined = self._join_recent(late, engines)
        for label in labels:
            if (label.key, label.metric, label.ts) not in joined:
                self._wait(label)

    def _join_recent(
        self, late: list[tuple[int, int, int, Label]], engines: Mapping[int, Engine]
    ) -> set[tuple[str, str, float]]:
        if not late:
            return set()
        candidates = np.flatnonzero(
            np.isin(self._stream, [stream for _, stream, _, _ in late])
            & np.isin(self._ts, [label.ts for _, _, _, label in late])
        )
        age = (candidates - self._head) % self.recent  # oldest first
        order = candidates[np.argsort(age, kind="stable")]
        columns = (self._engine, self._stream, self._generation, self._ts)
        entries = zip(*(column[order].tolist() for column in columns), strict=True)
        # the newest entry of each (engine, stream, generation, ts) wins
        newest = {entry: i for entry, i in zip(entries, order.tolist(), strict=True)}
        joined: set[tuple[str, str, float]] = set()
        for number, stream, generation, label in late:
            i = newest.pop((number, stream, generation, label.ts), -1)
            if i < 0:
                continue
            self._stream[i] = -1  # joined once
            engines[number].monitor.label(
                Engine.stream_rule(stream),
                np.array([self._prob[i]]),
                np.array([float(label.is_anomaly)]),
            )
            self.matched += 1
            joined.add((label.key, label.metric, label.ts))
        return joined

    def _wait(self, label: Label) -> None:
        by_ts = self.waiting.setdefault((label.key, label.metric), {})
        if label.ts in by_ts:  # a newer label of the same event replaces the older
            by_ts[label.ts].is_anomaly = label.is_anomaly
            self.received -= 1
            return
        by_ts[label.ts] = _Waiting(label.is_anomaly)
        self._order.append((label.key, label.metric, label.ts))
        while len(self._order) > self.capacity:
            key, metric, ts = self._order.popleft()
            gone = self.waiting[(key, metric)].pop(ts)
            if not self.waiting[(key, metric)]:
                del self.waiting[(key, metric)]
            if not gone.matched:
                self.dropped += 1
                self.received -= 1

    # --- events arrive ------------------------------------------------------------------

    def join(self, number: int, engine: Engine, outputs: Outputs) -> None:
        """After ``engine`` (number ``number``, e.g. its input partition) applied a batch:
        join its events to the labels waiting for them, and keep them for later labels."""
        applied = np.flatnonzero(outputs.stream >= 0)
        if applied.size == 0:
            return
        if self.waiting:
            self._join_waiting(engine, outputs, applied)
        if self.recent:
            self._remember(number, engine, outputs, applied)

    def _join_waiting(self, engine: Engine, outputs: Outputs, applied: np.ndarray) -> None:
        streams = outputs.stream[applied]
        wanted: dict[int, dict[float, _Waiting]] = {}
        for stream in np.unique(streams).tolist():
            name = engine.stream_name(stream)
            by_ts = self.waiting.get(name) if name is not None else None
            if by_ts is not None:
                wanted[stream] = by_ts
        if not wanted:
            return
        found: dict[int, tuple[list[float], list[float]]] = {}
        for i in applied[np.isin(streams, list(wanted))].tolist():
            stream = int(outputs.stream[i])
            waiting = wanted[stream].get(float(outputs.ts[i]))
            if waiting is None:
                continue
            if not waiting.matched:
                waiting.matched = True
                self.matched += 1
            probs, marks = found.setdefault(Engine.stream_rule(stream), ([], []))
            probs.append(float(outputs.scores[i, OUT_PROB]))
            marks.append(float(waiting.is_anomaly))
        for rule, (probs, marks) in found.items():
            engine.monitor.label(rule, np.array(probs), np.array(marks))

    def _remember(self, number: int, engine: Engine, outputs: Outputs, applied: np.ndarray) -> None:
        applied = applied[-self.recent :]
        at = (self._head + np.arange(applied.size)) % self.recent
        self._engine[at] = number
        self._stream[at] = outputs.stream[applied]
        self._generation[at] = engine.generations(outputs.stream[applied])
        self._ts[at] = outputs.ts[applied]
        self._prob[at] = outputs.scores[applied, OUT_PROB]
        self._head = int((self._head + applied.size) % self.recent)

    def forget(self, numbers: Iterable[int]) -> None:
        """Drop the recent events of engines that are gone or rebuilt (their ids are void)."""
        self._stream[np.isin(self._engine, list(numbers))] = -1


__all__ = ["DEFAULT_CAPACITY", "Label", "LabelJoin", "decode_label"]
