"""Posterior summaries of a rule's streams as output records.

One :class:`PosteriorBatch` holds the summaries of the streams a batch touched, computed at once
by the family's summary kernel into one float table (a snapshot: later updates do not change
it). Its JSON lines are written by a numba kernel that lays the numbers (shortest round-trip
digits, ``null`` for NaN and infinities) between fixed fragments of the record's layout, so
publishing costs no Python per number; :meth:`PosteriorBatch.records` builds the same records
as Python objects for the API and for tests.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator
from typing import Any

import msgspec
import numpy as np

from bayestream.config import Rule
from bayestream.engine.forecasts import forecast_table
from bayestream.engine.kernels import summary_table
from bayestream.engine.slo import slo_table
from bayestream.models._jit import kernel
from bayestream.models._threads import SERIAL, Workers
from bayestream.schema.floatfmt import MAX_FLOAT_BYTES, write_float
from bayestream.schema.records import ENCODER, PosteriorRecord, object_struct
from bayestream.state import RuleStore

_NUMBER = None  # a number's place among the literal fragments of a layout
_NAMES = msgspec.json.Decoder(dict[str, str])
MAX_FORECAST_TRIALS = (
    1e7  # the trials of a Beta-Binomial forecast: at most [engine] max_trials' cap
)


def _horizon(seconds: float) -> str:
    """A horizon's name in records: its seconds, as an integer when it is one ("300")."""
    return str(int(seconds)) if float(seconds).is_integer() else repr(float(seconds))


class _Layout:
    """A rule's record layout: literal JSON fragments around the numbers of one table row."""

    def __init__(self, rule: Rule, width: int) -> None:
        def name(text: str) -> str:
            return ENCODER.encode(text).decode()

        dirichlet = rule.family == "dirichlet"
        names = rule.param_names
        levels = [str(c) for c in rule.credible_levels]
        quantiles = [str(p) for p in rule.predictive_quantiles]
        parts: list[str | None] = [f',"family":{name(rule.family)},"params":{{']
        for i, p in enumerate(names):
            parts += [("," if i else "") + f"{name(p)}:", _NUMBER]
        if dirichlet:
            for field in ("mean", "sd"):
                parts.append(f'}},"{field}":{{')
                for i, c in enumerate(names):
                    parts += [("," if i else "") + f"{name(c)}:", _NUMBER]
            parts.append('},"credible_intervals":{')
            for j, level in enumerate(levels):
                parts.append(("," if j else "") + f"{name(level)}:{{")
                for i, c in enumerate(names):
                    parts += [("," if i else "") + f"{name(c)}:[", _NUMBER, ",", _NUMBER, "]"]
                parts.append("}")
            parts.append('},"predictive_quantiles":{')
        else:
            parts += ['},"mean":', _NUMBER, ',"sd":', _NUMBER, ',"credible_intervals":{']
            for j, level in enumerate(levels):
                parts += [("," if j else "") + f"{name(level)}:[", _NUMBER, ",", _NUMBER, "]"]
            parts.append('},"predictive_quantiles":{')
            for j, q in enumerate(quantiles):
                parts += [("," if j else "") + f"{name(q)}:", _NUMBER]
        parts += ['},"n_eff":', _NUMBER, ',"last_ts":', _NUMBER]
        parts += [',"anomaly_probability":', _NUMBER, ',"drift_statistic":', _NUMBER]
        parts += [',"drift_false_alarm_probability":', _NUMBER]
        if rule.family == "particle":
            parts += [',"ess":', _NUMBER]
        horizons = [_horizon(h) for h in rule.forecast_horizons_seconds]
        forecast_q = [str(p) for p in rule.forecast_q] if horizons else []
        for j, h in enumerate(horizons):
            parts += [(',"forecast":{' if j == 0 else ",") + f'{name(h)}:{{"at":', _NUMBER]
            parts.append(',"quantiles":{')
            for i, q in enumerate(forecast_q):
                parts += [("," if i else "") + f"{name(q)}:", _NUMBER]
            parts.append("}}")
        if horizons:
            parts.append("}")
        self.slo = rule.slo
        if rule.slo is not None:
            objective = ENCODER.encode(rule.slo.objective).decode()
            parts += [f',"slo":{{"objective":{objective},"violation_probability":', _NUMBER]
            parts += [',"error_budget_burn":', _NUMBER, "}"]
        parts.append("}\n")
        fragments: list[bytes] = [b""]
        for part in parts:
            if part is _NUMBER:
                fragments.append(b"")
            else:
                fragments[-1] += part.encode()
        self.count = len(fragments) - 1  # numbers per row
        self.fragments = np.frombuffer(b"".join(fragments), dtype=np.uint8)
        self.offsets = np.cumsum([0] + [len(f) for f in fragments]).astype(np.int64)
        self.names = list(names)
        self.levels = levels
        self.quantiles = quantiles
        self.horizons = horizons
        self.forecast_q = forecast_q
        self.params_t = object_struct("Params", self.names)
        self.intervals_t = object_struct("CredibleIntervals", levels)
        self.quantiles_t = object_struct("PredictiveQuantiles", quantiles)
        self.width = width


_LAYOUTS: dict[tuple[Any, ...], _Layout] = {}


def _layout(rule: Rule, width: int) -> _Layout:
    key = (
        rule.family,
        rule.param_names,
        rule.credible_levels,
        rule.predictive_quantiles,
        rule.forecast_horizons_seconds,
        rule.forecast_q,
        rule.slo,
    )
    # (a particle rule's width varies with its particle count, but its records do not)
    layout = _LAYOUTS.get(key)
    if layout is None:
        layout = _LAYOUTS[key] = _Layout(rule, width)
    return layout


@kernel
def _write_lines(
    table: np.ndarray,
    names: np.ndarray,
    name_ends: np.ndarray,
    fragments: np.ndarray,
    offsets: np.ndarray,
    room: int,
) -> tuple[np.ndarray, np.ndarray]:
    """JSON lines: ``{`` + names[r] + fragment 0 + number 0 + fragment 1 + ... per row r."""
    m, k = table.shape
    out = np.empty(room, dtype=np.uint8)
    ends = np.empty(m, dtype=np.int64)
    pos = 0
    name_start = 0
    for r in range(m):
        out[pos] = 123  # "{"
        pos += 1
        for j in range(name_start, name_ends[r]):
            out[pos] = names[j]
            pos += 1
        name_start = name_ends[r]
        for c in range(k + 1):
            for j in range(offsets[c], offsets[c + 1]):
                out[pos] = fragments[j]
                pos += 1
            if c < k:
                pos = write_float(out, pos, table[r, c])
        ends[r] = pos
    return out[:pos], ends


class PosteriorBatch:
    """The posterior records of some streams of one rule, summarised at one moment."""

    __slots__ = ("_layout", "_records", "_workers", "family", "name_ends", "names", "table")

    def __init__(
        self, rule: Rule, store: RuleStore, slots: np.ndarray, workers: Workers = SERIAL
    ) -> None:
        self.family = rule.family
        self._workers = workers
        # the JSON members naming each record's stream, back to back, copied now (a slot may
        # be reused after an eviction)
        self.names, self.name_ends = store.names.json(slots)
        if rule.family == "particle":
            self.table = _particle_table(rule, store, slots, workers)
        else:
            self.table = summary_table(rule, store, slots, workers)
        if rule.forecast_horizons_seconds:
            forecasts = forecast_table(rule, store, slots, MAX_FORECAST_TRIALS)
            self.table = np.ascontiguousarray(np.concatenate([self.table, forecasts], axis=1))
        if rule.slo is not None:
            slo = slo_table(rule, store, slots)
            self.table = np.ascontiguousarray(np.concatenate([self.table, slo], axis=1))
        self._layout = _layout(rule, len(rule.prior_vector()))
        self._records: list[PosteriorRecord] | None = None

    def __len__(self) -> int:
        return int(self.name_ends.shape[0])

    def json_lines(self) -> bytes:
        """The records as newline-terminated JSON lines."""
        if not len(self):
            return b""
        out, _ = self._write()
        return out.tobytes()

    def keys(self) -> list[bytes]:
        """Each record's stream as the JSON object ``{"key":...,"metric":...}`` (Kafka key)."""
        if not len(self):
            return []
        data = self.names.tobytes()
        starts = [0, *self.name_ends[:-1].tolist()]
        return [
            b"{" + data[a:b] + b"}" for a, b in zip(starts, self.name_ends.tolist(), strict=True)
        ]

    def json_values(self) -> list[bytes]:
        """One JSON document (no newline) per record, e.g. for Kafka message values."""
        if not len(self):
            return []
        out, ends = self._write()
        data = out.tobytes()
        starts = [0, *ends[:-1].tolist()]
        return [data[a : b - 1] for a, b in zip(starts, ends.tolist(), strict=True)]

    def _write(self) -> tuple[np.ndarray, np.ndarray]:
        """The JSON lines and each line's end, written in row ranges on the engine's threads
        and joined in order."""
        layout = self._layout
        names = self.names
        k = self.table.shape[1]
        per_row = 2 + int(layout.offsets[-1]) + k * MAX_FLOAT_BYTES

        def chunk(a: int, b: int) -> tuple[np.ndarray, np.ndarray]:
            first = int(self.name_ends[a - 1]) if a else 0
            last = int(self.name_ends[b - 1])
            return _write_lines(
                self.table[a:b],
                names[first:last],
                self.name_ends[a:b] - first,
                layout.fragments,
                layout.offsets,
                last - first + (b - a) * per_row,
            )

        ranges = self._workers.ranges(len(self))
        parts = self._workers.run([functools.partial(chunk, a, b) for a, b in ranges])
        if len(parts) == 1:
            return parts[0]
        shift = np.cumsum([0] + [out.shape[0] for out, _ in parts[:-1]])
        return (
            np.concatenate([out for out, _ in parts]),
            np.concatenate([ends + base for (_, ends), base in zip(parts, shift, strict=True)]),
        )

    def records(self) -> list[PosteriorRecord]:
        """The records as Python objects (cached)."""
        if self._records is None:
            self._records = [self._record(r) for r in range(len(self))]
        return self._records

    def _record(self, r: int) -> PosteriorRecord:
        layout = self._layout
        row: list[Any] = [v if math.isfinite(v) else None for v in self.table[r].tolist()]
        a = int(self.name_ends[r - 1]) if r else 0
        names = _NAMES.decode(b"{" + self.names[a : self.name_ends[r]].tobytes() + b"}")
        key, metric = names["key"], names["metric"]
        w = layout.width
        slo = None
        if layout.slo is not None:
            burn = row.pop()
            violation = row.pop()
            slo = {
                "objective": layout.slo.objective,
                "violation_probability": violation,
                "error_budget_burn": burn,
            }
        forecast = None
        if layout.horizons:
            n = len(layout.forecast_q) + 1
            block = row[len(row) - n * len(layout.horizons) :]
            del row[len(row) - n * len(layout.horizons) :]
            forecast = {
                h: {
                    "at": block[n * j],
                    "quantiles": dict(
                        zip(layout.forecast_q, block[n * j + 1 : n * j + n], strict=True)
                    ),
                }
                for j, h in enumerate(layout.horizons)
            }
        ess = row.pop() if self.family == "particle" else None
        prob, drift, fap = row[-3:]
        del row[-3:]
        if self.family == "dirichlet":
            return _dirichlet_record(key, metric, layout, row, (prob, drift, fap), slo)
        w = len(layout.names)  # the published parameters (a particle's two, a dlm's figures)
        n_levels, n_q = len(layout.levels), len(layout.quantiles)
        c0 = w + 2
        q0 = c0 + 2 * n_levels
        return PosteriorRecord(
            key,
            metric,
            self.family,
            layout.params_t(*row[:w]),
            row[w],
            row[w + 1],
            layout.intervals_t(*[row[c0 + 2 * j : c0 + 2 * j + 2] for j in range(n_levels)]),
            layout.quantiles_t(*row[q0 : q0 + n_q]),
            row[-2],
            row[-1],
            prob,
            drift,
            fap,
            ess,
            forecast,
            slo,
        )


def _particle_table(
    rule: Rule, store: RuleStore, slots: np.ndarray, workers: Workers
) -> np.ndarray:
    """:func:`summary_table` of a particle rule in row ranges on the engine's threads (its
    summary kernel releases the GIL; a row of 1024 particles costs about 10 us), joined in
    order: the same table as one call."""
    ranges = workers.ranges(slots.shape[0])
    if len(ranges) == 1:
        return summary_table(rule, store, slots)
    calls = [functools.partial(summary_table, rule, store, slots[a:b]) for a, b in ranges]
    return np.concatenate(workers.run(calls))


def _dirichlet_record(
    key: str,
    metric: str,
    layout: _Layout,
    row: list[Any],
    decided: tuple[Any, Any, Any],
    slo: dict[str, Any] | None,
) -> PosteriorRecord:
    categories = layout.names
    k = layout.width
    intervals = {}
    base = 3 * k
    for level in layout.levels:
        intervals[level] = {
            c: row[base + 2 * i : base + 2 * i + 2] for i, c in enumerate(categories)
        }
        base += 2 * k
    return PosteriorRecord(
        key,
        metric,
        "dirichlet",
        layout.params_t(*row[:k]),
        dict(zip(categories, row[k : 2 * k], strict=True)),
        dict(zip(categories, row[2 * k : 3 * k], strict=True)),
        intervals,
        {},
        row[-2],
        row[-1],
        *decided,
        slo=slo,
    )


class Posteriors:
    """The posterior records of one engine call, as batches of one rule each."""

    __slots__ = ("batches",)

    def __init__(self) -> None:
        self.batches: list[PosteriorBatch] = []

    def add(self, batch: PosteriorBatch) -> None:
        if len(batch):
            self.batches.append(batch)

    def extend(self, other: Posteriors) -> None:
        self.batches.extend(other.batches)

    def __len__(self) -> int:
        return sum(len(b) for b in self.batches)

    def __iter__(self) -> Iterator[PosteriorRecord]:
        for batch in self.batches:
            yield from batch.records()

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Posteriors | list):
            return list(self) == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def json_lines(self) -> bytes:
        return b"".join(batch.json_lines() for batch in self.batches)


def posterior_records(
    rule: Rule, store: RuleStore, slots: np.ndarray, workers: Workers = SERIAL
) -> PosteriorBatch:
    """Summaries of ``slots`` now, as a batch of records (computed on ``workers``)."""
    return PosteriorBatch(rule, store, slots, workers)


__all__ = ["PosteriorBatch", "Posteriors", "posterior_records"]
