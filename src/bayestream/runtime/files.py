"""The file runner: JSON lines from a file or stdin through the engine into JSON-lines files.

Each output file mirrors a topic of the Kafka runtime: ``posteriors.jsonl``,
``anomalies.jsonl``, ``drift.jsonl``, ``calibration.jsonl``, ``dead_letter.jsonl`` and
``evicted.jsonl``. Blank lines
are skipped (the one documented filter), and so is a UTF-8 byte-order mark at the very start
of the input (RFC 8259 lets a parser ignore it; editors on Windows write one); every other
line ends in an output or a dead letter.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np

from bayestream.engine import Engine, Outputs
from bayestream.models._threads import SERIAL, Workers
from bayestream.runtime.gcpolicy import batch_gc
from bayestream.runtime.labels import LabelJoin
from bayestream.schema.batch import RawBatch
from bayestream.schema.lines import split_lines
from bayestream.schema.records import ENCODER, DeadLetterRecord

OUTPUT_FILES = {
    "posteriors": "posteriors.jsonl",
    "anomalies": "anomalies.jsonl",
    "drift": "drift.jsonl",
    "calibration": "calibration.jsonl",
    "dead_letter": "dead_letter.jsonl",
    "evicted": "evicted.jsonl",
}
_BLOCK = 8 << 20
_BOM = b"\xef\xbb\xbf"


@dataclass
class RunStats:
    """Counts of a run, for the summary line and the demo's live view."""

    lines: int = 0
    applied: int = 0
    dead_letters: int = 0
    anomalies: int = 0
    drift: int = 0
    posteriors: int = 0
    evictions: int = 0
    seconds: float = 0.0
    dead_by_reason: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class LineBatch:
    """A batch of input lines and each one's 1-based line number."""

    raw: RawBatch
    line_numbers: np.ndarray


def read_batches(
    stream: BinaryIO, batch_size: int, workers: Workers = SERIAL
) -> Iterator[LineBatch]:
    """Yield batches of at most ``batch_size`` non-blank lines, in order (each block read
    split into lines on ``workers``)."""
    pending = b""
    lines_before = 0
    started = False  # past the place of a byte-order mark
    read = getattr(stream, "read1", stream.read)
    while True:
        chunk = read(_BLOCK)
        at_end = not chunk
        block = pending + chunk
        if not started and (len(block) >= len(_BOM) or at_end or b"\n" in block):
            started = True
            if block.startswith(_BOM):
                block = block[len(_BOM) :]
        cut = len(block) if at_end else block.rfind(b"\n") + 1
        if cut > 0:
            whole, pending = block[:cut], block[cut:]
            starts, ends, numbers = split_lines(np.frombuffer(whole, dtype=np.uint8), workers)
            numbers = numbers + lines_before
            lines_before += whole.count(b"\n")
            for j in range(0, starts.shape[0], batch_size):
                k = j + batch_size
                yield LineBatch(RawBatch(whole, starts[j:k], ends[j:k]), numbers[j:k])
        else:
            pending = block
        if at_end:
            return


class FileSink:
    """Appends engine outputs to the JSON-lines files of an output directory."""

    def __init__(self, output_dir: Path) -> None:
        output_dir.mkdir(parents=True, exist_ok=True)
        self.paths = {name: output_dir / file for name, file in OUTPUT_FILES.items()}
        self._files = {name: path.open("wb") for name, path in self.paths.items()}

    def write(self, outputs: Outputs, batch: LineBatch | None) -> None:
        if outputs.posteriors:
            self._files["posteriors"].write(outputs.posteriors.json_lines())
        if outputs.anomalies:
            self._files["anomalies"].write(ENCODER.encode_lines(outputs.anomalies))
        if outputs.drift:
            self._files["drift"].write(ENCODER.encode_lines(outputs.drift))
        if outputs.calibration:
            self._files["calibration"].write(ENCODER.encode_lines(outputs.calibration))
        if outputs.evictions:
            self._files["evicted"].write(ENCODER.encode_lines(outputs.evictions))
        if outputs.dead_letters and batch is not None:
            records = [
                DeadLetterRecord(
                    reason=dead.reason.value,
                    detail=dead.detail,
                    raw=batch.raw.message(dead.index).decode("utf-8", "backslashreplace"),
                    line=int(batch.line_numbers[dead.index]),
                )
                for dead in outputs.dead_letters
            ]
            self._files["dead_letter"].write(ENCODER.encode_lines(records))

    def close(self) -> None:
        for f in self._files.values():
            f.close()


def run_file(
    engine: Engine,
    source: str | Path,
    output_dir: Path,
    batch_size: int,
    on_batch: Callable[[Outputs, RunStats], None] | None = None,
    labels: LabelJoin | None = None,
) -> RunStats:
    """Replay ``source`` (a path, or ``-`` for stdin) through ``engine`` into ``output_dir``.
    Calibration records come every ``calibration_interval_events`` events of a rule and once
    more per rule at the end; with ``labels``, they include the labels' reliability."""
    stats = RunStats()
    sink = FileSink(output_dir)
    started = time.perf_counter()
    try:
        with _open(source) as stream, batch_gc() as collector:
            for batch in read_batches(stream, batch_size, engine.workers):
                outputs = engine.process(batch.raw)
                if labels is not None:
                    labels.join(0, engine, outputs)
                sink.write(outputs, batch)
                _count(stats, outputs, len(batch.raw))
                if on_batch is not None:
                    on_batch(outputs, stats)
                collector.after_batch()
        final = engine.flush()
        final.calibration = engine.monitor.records(engine.watermark)
        sink.write(final, None)
        _count(stats, final, 0)
    finally:
        sink.close()
    stats.seconds = time.perf_counter() - started
    return stats


@contextmanager
def _open(source: str | Path) -> Iterator[BinaryIO]:
    """The input as a binary stream; stdin is not closed afterwards."""
    if str(source) == "-":
        yield sys.stdin.buffer
        return
    with Path(source).open("rb") as stream:
        yield stream


def _count(stats: RunStats, outputs: Outputs, lines: int) -> None:
    stats.lines += lines
    stats.applied += outputs.applied
    stats.dead_letters += len(outputs.dead_letters)
    stats.anomalies += len(outputs.anomalies)
    stats.drift += len(outputs.drift)
    stats.posteriors += len(outputs.posteriors)
    stats.evictions += len(outputs.evictions)
    for dead in outputs.dead_letters:
        stats.dead_by_reason[dead.reason.value] = stats.dead_by_reason.get(dead.reason.value, 0) + 1


__all__ = ["OUTPUT_FILES", "FileSink", "LineBatch", "RunStats", "read_batches", "run_file"]
