"""Labels joined to anomaly probabilities, as a run goes (file runner ``--labels``).

A labels file has one JSON object per line: ``key``, ``metric``, ``ts`` (seconds since the
epoch, or RFC 3339) and ``is_anomaly`` (true/false or 1/0). It is loaded whole (labels are
few next to events); each applied event whose exact (key, metric, ts) is labelled feeds its
rule's reliability monitor (:class:`bayestream.engine.monitoring.CalibrationTracker`), which
reports the Brier score, ECE, MCE and reliability table in the calibration records.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import msgspec
import numpy as np

from bayestream.engine import Engine, Outputs
from bayestream.errors import BayestreamError
from bayestream.models._protocol import OUT_PROB
from bayestream.schema.batch import RawBatch
from bayestream.schema.wire import parse_rfc3339


class _Label(msgspec.Struct):
    key: str
    metric: str
    ts: float | str
    is_anomaly: bool | int


class _Names(msgspec.Struct):
    key: str
    metric: str


_NAMES = msgspec.json.Decoder(_Names)


@dataclass
class Labels:
    """Labels by (key, metric, ts), and how many of them were joined."""

    by_event: dict[tuple[str, str, float], bool]
    matched: set[tuple[str, str, float]] = field(default_factory=set)

    @classmethod
    def load(cls, path: str | Path) -> Labels:
        decoder = msgspec.json.Decoder(_Label)
        out: dict[tuple[str, str, float], bool] = {}
        try:
            lines = Path(path).read_bytes().splitlines()
        except OSError as exc:
            raise BayestreamError(f"--labels {path}: {exc.strerror}") from exc
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                label = decoder.decode(line)
            except msgspec.DecodeError as exc:
                raise BayestreamError(f"--labels {path}, line {number}: {exc}") from exc
            ts = label.ts if isinstance(label.ts, float) else parse_rfc3339(label.ts)
            if ts is None:
                raise BayestreamError(f"--labels {path}, line {number}: bad ts {label.ts!r}")
            out[(label.key, label.metric, float(ts))] = bool(label.is_anomaly)
        return cls(out)

    def join(self, engine: Engine, raw: RawBatch, outputs: Outputs) -> None:
        """Feed the labelled events of one processed batch to the engine's monitors."""
        applied = np.flatnonzero(outputs.rule >= 0)
        found: dict[int, tuple[list[float], list[bool]]] = {}
        for i in applied.tolist():
            names = _NAMES.decode(raw.message(i))
            event = (names.key, names.metric, float(outputs.ts[i]))
            label = self.by_event.get(event)
            if label is None:
                continue
            self.matched.add(event)
            probs, marks = found.setdefault(int(outputs.rule[i]), ([], []))
            probs.append(float(outputs.scores[i, OUT_PROB]))
            marks.append(label)
        for r, (probs, marks) in found.items():
            engine.monitor.label(r, np.array(probs), np.array(marks, dtype=np.float64))

    @property
    def unmatched(self) -> int:
        return len(self.by_event) - len(self.matched)


__all__ = ["Labels"]
