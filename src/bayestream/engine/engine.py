"""The transport-free engine: ``Engine(config).process(batch) -> Outputs``.

``process`` is a pure function of (state, batch): no wall clock, no unseeded randomness, and
batch-invariant: the final state of every stream, the anomalies and the dead letters do not
depend on how the input is cut into batches (posterior records are emitted per batch, so their
*number* does; the last record of each stream does not).

Event-time watermark: the newest ``ts`` of the good events seen so far, advanced per event in
input order. With an idle TTL, a stream whose newest event is more than the TTL behind the
watermark is expired: its next event starts from the prior, and at the end of a batch its row
is freed (an eviction record is emitted).
"""

from __future__ import annotations

import functools
import math
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np

from bayestream.config import Config, Rule
from bayestream.engine import decisions, kernels
from bayestream.engine.alerts import alerts, drift_records, select_anomalies, selection
from bayestream.engine.monitoring import CalibrationTracker
from bayestream.engine.publish import PosteriorBatch, Posteriors, posterior_records
from bayestream.engine.sensor import NullSensor, Sensor
from bayestream.engine.streams import group_streams, known_streams, named_rows, pack, unpack
from bayestream.engine.validate import check_names, event_times, family_inputs
from bayestream.models import APPLIED, LATE
from bayestream.models._protocol import (
    N_OUT,
    OUT_PRED_HI,
    OUT_PRED_LO,
    OUT_PROB,
    OUT_TAIL,
)
from bayestream.models._threads import auto_threads, workers
from bayestream.schema.batch import (
    FIELD,
    REASON_CODE,
    REASONS,
    DecodedBatch,
    RawBatch,
    decode_batch,
)
from bayestream.schema.reasons import Reason
from bayestream.schema.records import (
    AnomalyRecord,
    CalibrationRecord,
    DriftRecord,
    EvictionRecord,
)
from bayestream.schema.scan import KIND_NUMBER
from bayestream.state import (
    MAX_NAME_BYTES,
    RuleStore,
    StateRow,
    StreamIndex,
    encode_rows,
    stream_key,
)
from bayestream.state.restore import load_rows, loadable
from bayestream.state.rowbatch import RowBatch

_DETAIL = {
    Reason.INVALID_KEY: f"key must be a non-empty string of at most {MAX_NAME_BYTES} UTF-8 bytes",
    Reason.INVALID_METRIC: f"metric must be a non-empty string of at most {MAX_NAME_BYTES} "
    "UTF-8 bytes",
    Reason.INVALID_TS: "ts must be seconds since the epoch or an RFC 3339 string, in range",
    Reason.INVALID_VALUE: "value has the wrong type or is not finite",
    Reason.INVALID_TRIALS: "trials must be an integer from 1 to the engine's max_trials",
    Reason.INVALID_EXPOSURE: "exposure must be a finite number > 0",
    Reason.NEGATIVE_COUNT: "a count is negative",
    Reason.NON_INTEGER_COUNT: "a count is not an integer",
    Reason.SUCCESSES_EXCEED_TRIALS: "value (successes) exceeds trials",
    Reason.NON_POSITIVE_VALUE: "transform = 'log' needs value > 0 ('log1p': value >= 0)",
    Reason.UNKNOWN_METRIC: "no rule matches the metric",
    Reason.UNKNOWN_CATEGORY: "value is not one of the rule's categories",
    Reason.LATE_EVENT: "ts is older than the stream's newest event by more than the lateness",
    Reason.STREAM_LIMIT: "max_streams streams are tracked already",
}


@dataclass(frozen=True)
class DeadLetter:
    """A message of the batch (by index) that was not applied, and why."""

    index: int
    reason: Reason
    detail: str


@dataclass
class Outputs:
    """What one call of :meth:`Engine.process` (or :meth:`Engine.flush`) produced.

    ``scores`` is ``float64[n, N_OUT]``, one row per message of the batch (columns of
    :mod:`bayestream.models._protocol`: tail probability, anomaly probability, PIT, drift
    statistic, ...; NaN for messages that were not applied), and ``rule`` the index of each
    message's rule (-1: none): what calibration monitoring and ``score-csv`` read.
    ``stream`` is each applied message's stream id (:meth:`Engine.stream_id`; -1: none).
    ``anomaly_rows`` and ``drift_rows`` give the batch index of the message behind each
    anomaly and drift record (the Kafka runtime names its source offset). ``alert`` marks the
    messages whose anomaly record is an alert (:mod:`bayestream.engine.alerts`; False for the
    rest), ``alerts`` counts them.
    """

    posteriors: Posteriors = field(default_factory=Posteriors)
    anomalies: list[AnomalyRecord] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    evictions: list[EvictionRecord] = field(default_factory=list)
    drift: list[DriftRecord] = field(default_factory=list)
    calibration: list[CalibrationRecord] = field(default_factory=list)
    applied: int = 0
    touched: list[tuple[int, np.ndarray]] = field(default_factory=list)  # (rule, slots)
    scores: np.ndarray = field(default_factory=lambda: np.empty((0, N_OUT)))
    rule: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    ts: np.ndarray = field(default_factory=lambda: np.empty(0))  # event time, NaN: not applied
    stream: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    anomaly_rows: list[int] = field(default_factory=list)
    drift_rows: list[int] = field(default_factory=list)
    alert: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.bool_))
    alerts: int = 0


class Engine:
    """Per-stream posteriors for every rule of a configuration."""

    def __init__(self, config: Config, sensor: Sensor | None = None) -> None:
        self.config = config
        self.sensor: Sensor = sensor or NullSensor()
        self._streams_reported = 0  # this engine's share of the sensor's tracked streams
        self.rules: tuple[Rule, ...] = config.rule
        self.stores = [RuleStore(decisions.row_prior(rule)) for rule in self.rules]
        self._settings = [decisions.settings(rule) for rule in self.rules]
        self._priors = [decisions.family_prior(rule) for rule in self.rules]
        self.index = StreamIndex()  # (key, metric) -> stream id, pack(rule, slot)
        self.watermark = -math.inf
        self._rule_cache: dict[str, int] = {}
        self._ttl = [rule.idle_ttl_seconds or config.engine.idle_ttl_seconds for rule in self.rules]
        self._lateness = config.engine.max_lateness_seconds
        self._pending = Outputs()  # evictions made while admitting streams, sent with the batch
        self.monitor = CalibrationTracker(config)
        self.workers = workers(config.engine.threads or auto_threads())

    # --- queries ------------------------------------------------------------------------

    def __len__(self) -> int:
        """Number of tracked streams."""
        return len(self.index)

    def rule_index(self, metric: str) -> int:
        """Index of the rule for ``metric`` (cached), or -1 when none matches."""
        index = self._rule_cache.get(metric)
        if index is None:
            found = self.config.rule_for(metric)
            index = -1 if found is None else found
            if len(self._rule_cache) < 100_000:
                self._rule_cache[metric] = index
        return index

    def stream_id(self, key: str, metric: str) -> int:
        """The id of a tracked stream (as in ``Outputs.stream``), or -1. An id names its
        stream until the stream is evicted or the engine is rebuilt."""
        return self.index.get(key, metric)

    def stream_name(self, stream_id: int) -> tuple[str, str] | None:
        """(key, metric) of a tracked stream's id, or None."""
        rule, slot = unpack(stream_id)
        return self.stores[rule].names.get(slot)

    def generations(self, stream_ids: np.ndarray) -> np.ndarray:
        """The admission generation of each tracked stream id: an id that an evicted stream
        leaves to a later one comes back with a higher generation, so (id, generation) names
        one stream for the life of the engine."""
        ids = np.asarray(stream_ids, dtype=np.int64)
        out = np.empty(ids.shape[0], dtype=np.int64)
        rules, slots = unpack(ids)
        for r in np.unique(rules).tolist():
            mine = rules == r
            out[mine] = self.stores[r].generation[slots[mine]]
        return out

    @staticmethod
    def stream_rule(stream_id: int) -> int:
        """The index of the rule of a stream's id."""
        return unpack(stream_id)[0]

    # --- the batch step -------------------------------------------------------------------

    def process(self, batch: RawBatch) -> Outputs:
        """Apply a batch of raw messages; return its outputs. Never raises on bad input."""
        started = time.perf_counter()
        n = len(batch)
        decoded = decode_batch(batch, self.workers)
        reason = decoded.reason
        named = named_rows(decoded)
        value = known_streams(self.index, batch, decoded, named, self.workers)
        stream, keys, metrics = group_streams(batch, decoded, named & (value < 0))
        check_names(reason, stream, keys, metrics, decoded)

        stream_rule = np.array([self.rule_index(m) for m in metrics], dtype=np.int64)
        known_rule, known_slot = unpack(value)
        rule = np.where(value >= 0, known_rule, -1)
        slot = np.where(value >= 0, known_slot, -1)
        pending = stream >= 0
        rule[pending] = stream_rule[stream[pending]]
        reason[(reason == 0) & (rule < 0)] = REASON_CODE[Reason.UNKNOWN_METRIC]
        ts = event_times(reason, batch, decoded, self.config)
        x = np.full(n, np.nan)
        size = np.ones(n)
        for r, rule_r in enumerate(self.rules):
            rows = np.flatnonzero((rule == r) & (reason == 0))
            if rows.size:
                family_inputs(reason, rows, rule_r, self.config, batch, decoded, x, size)

        good = reason == 0
        watermark = np.maximum.accumulate(np.where(good, ts, -np.inf)) if n else np.empty(0)
        watermark = np.maximum(watermark, self.watermark)
        self._admit(stream, keys, metrics, stream_rule, reason, watermark, slot, value)
        good = reason == 0

        outputs = Outputs()
        scores = np.full((n, N_OUT), np.nan)
        status = np.full(n, LATE, dtype=np.int8)
        touched: list[np.ndarray] = []
        for r, rule_r in enumerate(self.rules):
            rows = np.flatnonzero(good & (rule == r))
            if rows.size == 0:
                touched.append(rows)
                continue
            self._update(r, rule_r, rows, slot, ts, x, size, watermark, scores, status)
            touched.append(rows[status[rows] == APPLIED])
        reason[good & (status == LATE)] = REASON_CODE[Reason.LATE_EVENT]
        if n:
            self.watermark = max(self.watermark, float(watermark[-1]))

        anomalies: list[tuple[int, AnomalyRecord]] = []
        drift: list[tuple[int, DriftRecord]] = []
        alert = np.zeros(n, dtype=np.bool_)
        for r, rule_r in enumerate(self.rules):
            rows = touched[r]
            outputs.applied += int(rows.size)
            changed = self.stores[r].distinct(slot[rows])
            if changed.size:
                outputs.touched.append((r, changed))
            store = self.stores[r]
            tail = scores[rows, OUT_TAIL]
            selected = select_anomalies(rule_r, tail, scores[rows, OUT_PROB])
            alert[rows] = alerts(self._settings[r], store, slot[rows], tail, selected)
            hits = rows[selected]
            anomalies += self._anomalies(
                rule_r, store, hits, alert, batch, decoded, slot, ts, scores
            )
            drift += drift_records(rule_r, store, rows, slot, scores)
            outputs.posteriors.add(self._emit(r, rule_r, changed))
        anomalies.sort(key=lambda a: a[0])
        drift.sort(key=lambda a: a[0])
        outputs.anomaly_rows = [i for i, _ in anomalies]
        outputs.anomalies = [record for _, record in anomalies]
        outputs.drift_rows = [i for i, _ in drift]
        outputs.drift = [record for _, record in drift]
        outputs.scores = scores
        outputs.alert = alert
        outputs.alerts = int(np.count_nonzero(alert))
        outputs.rule = np.where(status == APPLIED, rule, -1)
        outputs.ts = np.where(status == APPLIED, ts, np.nan)
        outputs.stream = np.where(status == APPLIED, pack(rule, slot), -1)
        outputs.calibration = self.monitor.observe(outputs.rule, scores, watermark)
        outputs.dead_letters = self._dead_letters(reason, decoded.detail)
        self._sweep()
        outputs.posteriors.extend(self._pending.posteriors)
        outputs.evictions = self._pending.evictions
        self._pending = Outputs()
        self._report(n, outputs, time.perf_counter() - started)
        return outputs

    def flush(self) -> Outputs:
        """Posterior records of every stream whose latest state has not been published."""
        outputs = Outputs()
        for r, rule_r in enumerate(self.rules):
            store = self.stores[r]
            dirty = np.flatnonzero(store.dirty)
            store.dirty[dirty] = False
            store.last_emit_ts[dirty] = store.last_ts[dirty]
            outputs.posteriors.add(posterior_records(rule_r, store, dirty, self.workers))
        return outputs

    # --- steps ----------------------------------------------------------------------------

    def _admit(
        self,
        stream: np.ndarray,
        keys: list[str],
        metrics: list[str],
        stream_rule: np.ndarray,
        reason: np.ndarray,
        watermark: np.ndarray,
        slot: np.ndarray,
        value: np.ndarray,
    ) -> None:
        """Admit the new streams of good events, in order of their first event; fill their
        events' slots, or reject them with ``stream_limit`` when there is no room."""
        rows = np.flatnonzero((reason == 0) & (stream >= 0))
        if rows.size == 0:
            return
        new, first = np.unique(stream[rows], return_index=True)
        order = np.argsort(first, kind="stable")
        stream_slot = np.full(len(keys), -1, dtype=np.int64)
        if self._room_for(stream_rule[new]):
            self._admit_all(new[order], keys, metrics, stream_rule, stream_slot)
            slot[rows] = stream_slot[stream[rows]]
            return
        in_batch: set[int] | None = None
        admitted: list[int] = []
        for u, i in zip(new[order].tolist(), rows[first[order]].tolist(), strict=True):
            r = int(stream_rule[u])
            if self._full(r):
                if in_batch is None:  # streams this batch uses may not be evicted
                    in_batch = set(np.unique(value[value >= 0]).tolist()) | set(admitted)
                self._evict_expired(float(watermark[i]), in_batch)
                if self._full(r):
                    continue
            s = self.stores[r].admit(keys[u], metrics[u])
            kernels.on_admit(self.rules[r], self.stores[r], np.array([s], dtype=np.int64))
            packed = pack(r, s)
            self.index.insert(keys[u], metrics[u], packed)
            stream_slot[u] = s
            admitted.append(packed)
            if in_batch is not None:
                in_batch.add(packed)
        slot[rows] = stream_slot[stream[rows]]
        reason[rows[slot[rows] < 0]] = REASON_CODE[Reason.STREAM_LIMIT]

    def _room_for(self, rules: np.ndarray) -> bool:
        """Can every one of these new streams (their rules given) be admitted as it is?"""
        if len(self) + rules.shape[0] > self.config.engine.max_streams:
            return False
        counts = np.bincount(rules, minlength=len(self.rules))
        for r, rule in enumerate(self.rules):
            if rule.max_streams is not None and len(self.stores[r]) + counts[r] > rule.max_streams:
                return False
        return True

    def _admit_all(
        self,
        new: np.ndarray,
        keys: list[str],
        metrics: list[str],
        stream_rule: np.ndarray,
        stream_slot: np.ndarray,
    ) -> None:
        """Admit the streams ``new`` (in order), rule by rule, in bulk."""
        rules = stream_rule[new]
        for r in np.unique(rules).tolist():
            mine = new[rules == r].tolist()
            k = [keys[u] for u in mine]
            m = [metrics[u] for u in mine]
            slots = self.stores[r].admit_many(k, m)
            kernels.on_admit(self.rules[r], self.stores[r], slots)
            self.index.insert_many(k, m, pack(r, slots))
            stream_slot[mine] = slots

    def _full(self, r: int) -> bool:
        cap = self.rules[r].max_streams
        over_rule = cap is not None and len(self.stores[r]) >= cap
        return over_rule or len(self) >= self.config.engine.max_streams

    def _evict_expired(self, watermark: float, keep: set[int]) -> None:
        """Evict every stream expired at ``watermark`` except those in ``keep``."""
        for j, rule in enumerate(self.rules):
            ttl = self._ttl[j]
            if ttl is None:
                continue
            idle = self.stores[j].idle_slots(watermark - ttl)
            self._evict(
                j,
                rule,
                np.array([s for s in idle.tolist() if pack(j, s) not in keep], dtype=np.int64),
            )

    def _evict(self, r: int, rule: Rule, slots: np.ndarray) -> None:
        """Free rows, publishing their final state first if it was not sent."""
        if slots.size == 0:
            return
        store = self.stores[r]
        self._pending.posteriors.add(
            posterior_records(rule, store, slots[store.dirty[slots]], self.workers)
        )
        last = store.last_ts[slots].tolist()
        for (key, metric), t in zip(store.evict_many(slots), last, strict=True):
            self.index.remove(key, metric)
            self._pending.evictions.append(EvictionRecord(key, metric, t, "idle_ttl"))

    def _update(
        self,
        r: int,
        rule: Rule,
        rows: np.ndarray,
        slot: np.ndarray,
        ts: np.ndarray,
        x: np.ndarray,
        size: np.ndarray,
        watermark: np.ndarray,
        scores: np.ndarray,
        status: np.ndarray,
    ) -> None:
        store = self.stores[r]
        ttl = self._ttl[r]
        expire = watermark[rows] - ttl if ttl is not None else np.full(rows.shape[0], -np.inf)
        at = slot[rows]
        # distinct streams are independent: their events split by stream across threads (the
        # particle filter's too: its generator is per stream, so the split changes nothing)
        parts = self.workers.by_stream(at)

        def call(part: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            out = np.full((part.shape[0], N_OUT), np.nan)
            out_status = np.empty(part.shape[0], dtype=np.int8)
            kernels.update(
                rule,
                store,
                self._lateness,
                self._settings[r],
                self._priors[r],
                at[part],
                ts[rows[part]],
                x[rows[part]],
                size[rows[part]],
                expire[part],
                out,
                out_status,
            )
            return out, out_status

        for part, (out, out_status) in zip(
            parts, self.workers.run([functools.partial(call, p) for p in parts]), strict=True
        ):
            scores[rows[part]] = out
            status[rows[part]] = out_status

    def _anomalies(
        self,
        rule: Rule,
        store: RuleStore,
        hits: np.ndarray,
        alert: np.ndarray,
        batch: RawBatch,
        decoded: DecodedBatch,
        slot: np.ndarray,
        ts: np.ndarray,
        scores: np.ndarray,
    ) -> list[tuple[int, AnomalyRecord]]:
        """Anomaly records of the rule's selected events ``hits`` (``alert``: per message of
        the batch), with their index in the batch."""
        if hits.size == 0:
            return []
        # columns to Python values once: this runs per anomaly, and with a low threshold an
        # anomaly record per event is a supported way to publish every score
        index = hits.tolist()
        streams = store.names.names(slot[hits])
        if rule.family == "dirichlet":
            values: list[float | str] = [decoded.string(batch, i, "value") for i in index]
        else:
            values = decoded.number[hits, FIELD["value"]].tolist()
        intervals = _intervals(rule, scores[hits, OUT_PRED_LO], scores[hits, OUT_PRED_HI])
        columns = zip(
            index,
            streams,
            ts[hits].tolist(),
            values,
            scores[hits, OUT_TAIL].tolist(),
            scores[hits, OUT_PROB].tolist(),
            _present(decoded, hits, "trials"),
            _present(decoded, hits, "exposure"),
            intervals,
            alert[hits].tolist(),
            strict=True,
        )
        tail, (selected_by, threshold) = rule.tail, selection(rule)
        return [
            (
                i,
                AnomalyRecord(
                    key,
                    metric,
                    t,
                    v,
                    p_tail,
                    p_anomaly,
                    tail,
                    threshold,
                    selected_by,
                    is_alert,
                    n,
                    e,
                    interval,
                ),
            )
            for i, (key, metric), t, v, p_tail, p_anomaly, n, e, interval, is_alert in columns
        ]

    def _emit(self, r: int, rule: Rule, slots: np.ndarray) -> PosteriorBatch:
        """Posterior records of the streams this batch changed (distinct, in order of first
        touch), per the rule's emit policy."""
        store = self.stores[r]
        if slots.size == 0:
            return posterior_records(rule, store, slots, self.workers)
        store.dirty[slots] = True
        if rule.emit == "interval":
            assert rule.emit_interval_seconds is not None
            since = store.last_ts[slots] - store.last_emit_ts[slots]
            due = np.isnan(store.last_emit_ts[slots]) | (since >= rule.emit_interval_seconds)
            slots = slots[due]
        store.dirty[slots] = False
        store.last_emit_ts[slots] = store.last_ts[slots]
        return posterior_records(rule, store, slots, self.workers)

    def _dead_letters(self, reason: np.ndarray, detail: dict[int, str]) -> list[DeadLetter]:
        out = []
        for i in np.flatnonzero(reason).tolist():
            why = REASONS[int(reason[i])]
            assert why is not None
            out.append(DeadLetter(i, why, detail.get(i) or _DETAIL.get(why, why.value)))
        return out

    def _sweep(self) -> None:
        """Free the rows of streams idle past their TTL at the current watermark."""
        for r, rule in enumerate(self.rules):
            ttl = self._ttl[r]
            if ttl is not None:
                self._evict(r, rule, self.stores[r].idle_slots(self.watermark - ttl))

    def _report(self, n: int, outputs: Outputs, seconds: float) -> None:
        self.sensor.on_batch(n, outputs.applied, len(outputs.anomalies), seconds)
        if outputs.alerts:
            self.sensor.on_alerts(outputs.alerts)
        if outputs.drift:
            self.sensor.on_drift(len(outputs.drift))
        for record in outputs.calibration:
            self.sensor.on_calibration(record)
        if outputs.dead_letters:
            counts = Counter(d.reason.value for d in outputs.dead_letters)
            self.sensor.on_dead_letters(counts)
        self._report_streams(len(outputs.evictions))

    def _report_streams(self, evicted: int = 0) -> None:
        held = len(self)
        self.sensor.on_streams(held - self._streams_reported, evicted)
        self._streams_reported = held

    def release_streams(self) -> None:
        """Take this engine's streams out of the sensor's count (an engine dropped or replaced:
        several engines of one process share a sensor, and each reports its changes)."""
        self.sensor.on_streams(-self._streams_reported, 0)
        self._streams_reported = 0

    # --- state rows (changelog) -------------------------------------------------------------

    def changelog(self, outputs: Outputs) -> list[tuple[bytes, bytes | None]]:
        """Changelog records for one batch's outputs: ``(key, row)`` for every stream the batch
        changed, then ``(key, None)`` tombstones for evicted streams. Keys are the JSON object
        ``{"key":...,"metric":...}``; rows are :func:`bayestream.state.encode_row` bytes."""
        out: list[tuple[bytes, bytes | None]] = []
        for r, slots in outputs.touched:
            store = self.stores[r]
            live = slots[store.live[slots]]
            code = kernels.family_code(self.rules[r])
            out.extend(zip(store.keys_json(live), encode_rows(store, live, code), strict=True))
        for eviction in outputs.evictions:
            out.append((stream_key(eviction.key, eviction.metric), None))
        return out

    def state_rows(self) -> Iterator[StateRow]:
        """Every tracked stream's state, rule by rule."""
        for r, rule in enumerate(self.rules):
            store = self.stores[r]
            code = kernels.family_code(rule)
            live = store.live_slots()
            for s, (key, metric) in zip(live.tolist(), store.names.names(live), strict=True):
                yield StateRow(
                    key,
                    metric,
                    code,
                    float(store.last_ts[s]),
                    float(store.n_eff[s]),
                    float(store.obs_size[s]),
                    float(store.last_emit_ts[s]),
                    store.params[s].copy(),
                )

    def restore_batch(self, batch: RowBatch) -> int:
        """Load many decoded changelog rows at once (see :meth:`restore`; same rules; rows of
        another width load as :mod:`bayestream.state.restore` says)."""
        n = len(batch)
        if n == 0:
            return 0
        rule_of_metric = {m: self.rule_index(m) for m in set(batch.metrics)}
        rule_of = np.fromiter((rule_of_metric[m] for m in batch.metrics), dtype=np.int64, count=n)
        loaded = 0
        for r, rule in enumerate(self.rules):
            store = self.stores[r]
            k = self._priors[r].shape[0]
            fixed = rule.family in ("normal_gamma", "beta_binomial", "gamma_poisson")
            rows = np.flatnonzero(
                (rule_of == r)
                & (batch.family_code == kernels.family_code(rule))
                & loadable(batch, store, k, fixed)
            )
            if rows.size == 0:
                continue
            keys = [batch.keys[i] for i in rows.tolist()]
            metrics = [batch.metrics[i] for i in rows.tolist()]
            last = {name: j for j, name in enumerate(zip(keys, metrics, strict=True))}
            if len(last) != len(keys):  # a later row of a stream wins
                keep = sorted(last.values())
                rows = rows[keep]
                keys = [keys[j] for j in keep]
                metrics = [metrics[j] for j in keep]
            del last
            ids = self.index.get_many(keys, metrics) if len(self.index) else None
            slots = np.full(len(keys), -1, dtype=np.int64) if ids is None else unpack(ids)[1]
            new = np.arange(len(keys)) if ids is None else np.flatnonzero(ids < 0)
            if new.size:
                new_keys = [keys[j] for j in new.tolist()]
                new_metrics = [metrics[j] for j in new.tolist()]
                slots[new] = store.admit_many(new_keys, new_metrics)
                self.index.insert_many(new_keys, new_metrics, pack(r, slots[new]))
            load_rows(store, batch, rows, slots, k)
            last_ts = batch.columns[rows, 0]
            if not np.isnan(last_ts).all():
                self.watermark = max(self.watermark, float(np.nanmax(last_ts)))
            loaded += int(rows.size)
        if loaded:
            self._report_streams()
        return loaded

    def restore(self, rows: Iterable[StateRow]) -> int:
        """Load stream states (e.g. from a changelog; a later row of a stream wins). Rows
        whose metric no longer maps to a rule of the same family and width are skipped;
        returns how many streams were loaded. Work is per rule, in bulk."""
        return self.restore_batch(RowBatch.of(list(rows)))


def _intervals(
    rule: Rule, lo: np.ndarray, hi: np.ndarray
) -> list[dict[str, list[float | None]] | None]:
    """Each anomaly's predictive interval (``{level: [lo, hi]}``, None where it has none)."""
    lo, hi = kernels.back_transform(rule, lo), kernels.back_transform(rule, hi)
    level = str(decisions.interval_level(rule))
    inf = math.inf  # (NaN: no interval; an infinite end is written as null)
    return [
        None
        if a != a or b != b
        else {level: [a if -inf < a < inf else None, b if -inf < b < inf else None]}
        for a, b in zip(lo.tolist(), hi.tolist(), strict=True)
    ]


def _present(decoded: DecodedBatch, rows: np.ndarray, name: str) -> list[float | None]:
    """Field ``name`` of each of ``rows`` where it was a number, else None."""
    f = FIELD[name]
    have = (decoded.kind[rows, f] == KIND_NUMBER).tolist()
    numbers = decoded.number[rows, f].tolist()
    return [v if h else None for v, h in zip(numbers, have, strict=True)]


__all__ = ["DeadLetter", "Engine", "Outputs"]
