"""``score-csv``: a ``timestamp,value`` CSV through the engine as one stream, a score per row.

The input is read in chunks of ``batch_size`` rows (one :meth:`Engine.process` call each), so a
large file never sits in memory, and the scores do not depend on the chunk size (the engine is
batch-invariant). Every input row gets exactly one output row, in input order::

    timestamp,value,anomaly_probability,tail_probability,drift,drift_statistic,alert

``timestamp`` and ``value`` are echoed as read. ``alert`` is 1 for an event that the rule
selects as an anomaly and that is the alert of its incident (more surprising than the stream's
previous ``alert_window_events`` events: :mod:`bayestream.engine.alerts`), else 0; every row
gets a score, so most rows are 0. A row that cannot be scored (a timestamp or a
value that does not parse, or an event the engine dead-letters, e.g. ``late_event``) keeps its
row with the five score fields empty; its reason is reported once per kind through ``warn``
and counted in :class:`ScoreStats`. Bad rows never stop a run.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol, TextIO

from bayestream.config import Config
from bayestream.engine import Engine
from bayestream.errors import BayestreamError
from bayestream.models._protocol import OUT_ALARM, OUT_KL, OUT_PROB, OUT_TAIL
from bayestream.runtime.gcpolicy import batch_gc
from bayestream.schema.batch import RawBatch
from bayestream.schema.reasons import Reason

KEY = "csv"
"""The ``key`` of the one stream a CSV becomes."""

INPUT_COLUMNS = ("timestamp", "value")
OUTPUT_COLUMNS = (
    "timestamp",
    "value",
    "anomaly_probability",
    "tail_probability",
    "drift",
    "drift_statistic",
    "alert",
)
INVALID_CSV = "invalid_csv"
"""Reason of a row the CSV reader itself rejects (e.g. a field above the csv module's limit);
its ``timestamp`` and ``value`` cannot be echoed and are written empty."""

_GLOB = frozenset("*?[")
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SECOND = timedelta(seconds=1)
_NO_SCORES = ("", "", "", "", "")


@dataclass
class ScoreStats:
    """Counts of a ``score-csv`` run, for the summary line."""

    rows: int = 0
    scored: int = 0
    bad: int = 0
    drift_alarms: int = 0
    alerts: int = 0
    seconds: float = 0.0
    bad_by_reason: dict[str, int] = field(default_factory=dict)


def stream_metric(config: Config, metric: str | None) -> str:
    """The metric name the CSV's events carry: ``metric`` when a rule matches it (the first
    match decides the model), else the first rule's ``metric`` when it is an exact name."""
    if metric is None:
        pattern = config.rule[0].metric
        if _GLOB.intersection(pattern):
            raise BayestreamError(
                f"the first rule's metric {pattern!r} is a pattern, not a name: "
                "say which metric the CSV holds with --metric NAME"
            )
        return pattern
    if not metric:
        raise BayestreamError("--metric must not be empty")
    if config.rule_for(metric) is None:
        patterns = ", ".join(repr(rule.metric) for rule in config.rule)
        raise BayestreamError(f"--metric {metric!r} matches no rule (rule metrics: {patterns})")
    return metric


def parse_timestamp(text: str) -> float | None:
    """Seconds since the Unix epoch of ``text``: plain epoch seconds (``1709294400``,
    ``1709294400.25``) or ISO 8601 with ``T`` or a space between date and time, fractional
    seconds (to the microsecond) and an optional offset or ``Z`` (none: UTC). None when it is
    neither, or not finite."""
    text = text.strip()
    if _NUMBER.fullmatch(text):
        seconds = float(text)
        return seconds if math.isfinite(seconds) else None
    try:
        moment = datetime.fromisoformat(text)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return (moment - _EPOCH) / _SECOND
    except (ValueError, OverflowError):
        return None


def score_csv(
    engine: Engine,
    source: str | Path,
    output: str | Path,
    metric: str | None = None,
    *,
    batch_size: int | None = None,
    warn: Callable[[str], None] | None = None,
) -> ScoreStats:
    """Score the CSV ``source`` (a path, or ``-`` for stdin) as one stream of the rule chosen
    by ``metric`` (see :func:`stream_metric`) into the CSV ``output`` (a path, or ``-`` for
    stdout). ``batch_size`` rows go to each engine call (default: the engine's
    ``[engine] batch_size``); ``warn`` gets one line for the first bad row of each reason.

    Raises :class:`BayestreamError` before writing anything when the metric fits no rule, the
    input cannot be opened or its first row is not a header naming ``timestamp`` and
    ``value`` (any order, any case; other columns are ignored)."""
    name = stream_metric(engine.config, metric)
    index = engine.config.rule_for(name)
    if index is None:  # stream_metric checked it: cannot happen
        raise BayestreamError(f"metric {name!r} matches no rule")
    rule = engine.config.rule[index]
    size = engine.config.engine.batch_size if batch_size is None else batch_size
    if size < 1:
        raise BayestreamError("batch size must be at least 1")
    scorer = _Scorer(engine, name, rule.family == "dirichlet", warn or _to_stderr)
    started = time.perf_counter()
    with _open_input(source) as text:
        reader = csv.reader(text)
        ts_col, value_col = _header(reader, source)
        with _open_output(output) as out:
            writer = csv.writer(out, lineterminator="\n")
            writer.writerow(OUTPUT_COLUMNS)
            with batch_gc() as collector:
                for chunk in _chunks(reader, ts_col, value_col, size):
                    writer.writerows(scorer.score(chunk))
                    collector.after_batch()
    scorer.stats.seconds = time.perf_counter() - started
    return scorer.stats


# --- reading ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Row:
    """One input row: its echoed fields, line, and why it is bad before the engine (or None)."""

    ts: str
    value: str
    line: int
    reason: str | None = None
    detail: str = ""


class _Reader(Protocol):
    """What ``csv.reader`` returns."""

    line_num: int

    def __iter__(self) -> Iterator[list[str]]: ...
    def __next__(self) -> list[str]: ...


def _header(reader: _Reader, source: str | Path) -> tuple[int, int]:
    """Columns of ``timestamp`` and ``value`` in the first non-blank row."""
    try:
        for row in reader:
            if _blank(row):
                continue
            names = [name.strip().lower() for name in row]
            if all(column in names for column in INPUT_COLUMNS):
                return names.index("timestamp"), names.index("value")
            shown = ",".join(row)
            shown = shown if len(shown) <= 80 else shown[:77] + "..."
            raise BayestreamError(
                f"{_name(source)}: the first row must be a header naming the columns "
                f"timestamp and value, got {shown!r}"
            )
    except csv.Error as exc:
        raise BayestreamError(f"{_name(source)}: cannot read the CSV header: {exc}") from exc
    raise BayestreamError(f"{_name(source)}: empty, expected a header row timestamp,value")


def _chunks(reader: _Reader, ts_col: int, value_col: int, size: int) -> Iterator[list[_Row]]:
    """The data rows in lists of at most ``size``; blank lines are skipped."""
    chunk: list[_Row] = []
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            chunk.append(_Row("", "", reader.line_num, INVALID_CSV, str(exc)))
        else:
            if _blank(fields):
                continue
            ts = fields[ts_col] if ts_col < len(fields) else ""
            value = fields[value_col] if value_col < len(fields) else ""
            chunk.append(_Row(ts, value, reader.line_num))
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _blank(fields: list[str]) -> bool:
    return not fields or (len(fields) == 1 and not fields[0].strip())


# --- scoring ------------------------------------------------------------------------------


class _Scorer:
    """Turns chunks of rows into output rows through the engine, counting as it goes."""

    def __init__(
        self, engine: Engine, metric: str, categorical: bool, warn: Callable[[str], None]
    ) -> None:
        self.engine = engine
        self.prefix = f'{{"key":{json.dumps(KEY)},"metric":{json.dumps(metric)},"ts":'
        self.categorical = categorical
        self.warn = warn
        self.stats = ScoreStats()

    def score(self, chunk: list[_Row]) -> list[tuple[str, ...]]:
        """Output rows of ``chunk``, in order."""
        scores: list[tuple[str, ...] | None] = [None] * len(chunk)
        bad: list[tuple[str, str]] = [("", "")] * len(chunk)
        messages: list[bytes] = []
        where: list[int] = []
        for j, row in enumerate(chunk):
            if row.reason is not None:
                bad[j] = (row.reason, row.detail)
                continue
            message = self._message(row)
            if isinstance(message, tuple):
                bad[j] = message
                continue
            messages.append(message)
            where.append(j)
        if messages:
            self._apply(messages, where, scores, bad)
        out: list[tuple[str, ...]] = []
        for j, row in enumerate(chunk):
            self.stats.rows += 1
            scored = scores[j]
            if scored is None:
                self._bad(row, *bad[j])
                scored = _NO_SCORES
            out.append((row.ts, row.value, *scored))
        return out

    def _message(self, row: _Row) -> bytes | tuple[str, str]:
        """The event of a row, or (reason, detail) when its fields do not parse."""
        ts = parse_timestamp(row.ts)
        if ts is None:
            return Reason.INVALID_TS.value, (
                f"timestamp {_clip(row.ts)!r} is neither ISO 8601 nor epoch seconds"
            )
        text = row.value.strip()
        if self.categorical:
            if not _utf8(text):
                return Reason.INVALID_VALUE.value, f"value {_clip(row.value)!r} is not UTF-8"
            value = json.dumps(text)
        elif _NUMBER.fullmatch(text) and math.isfinite(float(text)):
            value = repr(float(text))
        else:
            return Reason.INVALID_VALUE.value, f"value {_clip(row.value)!r} is not a finite number"
        return f'{self.prefix}{ts!r},"value":{value}}}'.encode()

    def _apply(
        self,
        messages: list[bytes],
        where: list[int],
        scores: list[tuple[str, ...] | None],
        bad: list[tuple[str, str]],
    ) -> None:
        outputs = self.engine.process(RawBatch.from_messages(messages))
        dead = {letter.index: letter for letter in outputs.dead_letters}
        applied = (outputs.rule >= 0).tolist()
        columns = outputs.scores[:, [OUT_PROB, OUT_TAIL, OUT_ALARM, OUT_KL]].tolist()
        alerts = outputs.alert.tolist()
        for k, j in enumerate(where):
            if applied[k]:
                prob, tail, alarm, kl = columns[k]
                drift = alarm == 1.0
                alert = alerts[k]
                scores[j] = (
                    _number(prob),
                    _number(tail),
                    "1" if drift else "0",
                    _number(kl),
                    "1" if alert else "0",
                )
                self.stats.scored += 1
                self.stats.drift_alarms += drift
                self.stats.alerts += alert
            elif k in dead:
                bad[j] = (dead[k].reason.value, dead[k].detail)
            else:  # not applied and not dead-lettered: the engine's contract says it cannot be
                bad[j] = ("not_applied", "the engine neither applied nor dead-lettered the event")

    def _bad(self, row: _Row, reason: str, detail: str) -> None:
        self.stats.bad += 1
        seen = self.stats.bad_by_reason.get(reason, 0)
        self.stats.bad_by_reason[reason] = seen + 1
        if not seen:
            self.warn(
                f"bayestream: score-csv: line {row.line}: {reason}: {detail} "
                f"(further {reason} rows are counted, not shown)"
            )


def _utf8(text: str) -> bool:
    """Is ``text`` free of undecodable input bytes (kept as surrogates)?"""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _number(x: float) -> str:
    return "" if math.isnan(x) else repr(x)


def _clip(text: str, width: int = 40) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def _to_stderr(message: str) -> None:
    print(message, file=sys.stderr)


def _name(source: str | Path) -> str:
    return "stdin" if str(source) == "-" else str(source)


# --- files --------------------------------------------------------------------------------


@contextmanager
def _open_input(source: str | Path) -> Iterator[TextIO]:
    """The input as text (UTF-8, a leading BOM dropped; undecodable bytes kept as surrogates so
    that they are echoed unchanged); stdin is not closed afterwards."""
    if str(source) == "-":
        with _wrapped(sys.stdin, "r") as stream:
            yield stream
        return
    path = Path(source)
    if not path.is_file():
        raise BayestreamError(f"{source}: no such file")
    with ExitStack() as stack:
        try:
            stream = stack.enter_context(
                path.open(encoding="utf-8-sig", errors="surrogateescape", newline="")
            )
        except OSError as exc:
            raise BayestreamError(f"{source}: cannot read: {exc.strerror or exc}") from exc
        yield stream


@contextmanager
def _open_output(output: str | Path) -> Iterator[TextIO]:
    """The output as text (UTF-8); stdout is flushed, not closed."""
    if str(output) == "-":
        with _wrapped(sys.stdout, "w") as stream:
            yield stream
        return
    with ExitStack() as stack:
        try:
            stream = stack.enter_context(
                Path(output).open("w", encoding="utf-8", errors="surrogateescape", newline="")
            )
        except OSError as exc:
            raise BayestreamError(
                f"--output {output}: cannot write: {exc.strerror or exc}"
            ) from exc
        yield stream


@contextmanager
def _wrapped(stream: TextIO, mode: str) -> Iterator[TextIO]:
    """A standard stream re-wrapped over its bytes with the encoding settings above."""
    buffer = getattr(stream, "buffer", None)
    if buffer is None:  # a replaced stream without bytes underneath (tests): use it as it is
        yield stream
        return
    stream.flush()  # what was written through the stream before goes first
    encoding = "utf-8-sig" if mode == "r" else "utf-8"
    wrapper = io.TextIOWrapper(buffer, encoding=encoding, errors="surrogateescape", newline="")
    try:
        yield wrapper
    finally:
        if mode == "w":
            wrapper.flush()
        wrapper.detach()


__all__ = [
    "INPUT_COLUMNS",
    "INVALID_CSV",
    "KEY",
    "OUTPUT_COLUMNS",
    "ScoreStats",
    "parse_timestamp",
    "score_csv",
    "stream_metric",
]
