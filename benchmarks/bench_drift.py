"""Drift detection benchmark: a synthetic changepoint suite with known truth.

Prints one JSON document: per scenario and per detector TP, FP, FN, precision, recall, F1,
median / p90 detection delay, false alarms per 10,000 windows and runtime, for bayestream's
windowed-KL drift (eight configurations) and, in the same run on the same streams, River's
``ADWIN`` and ``PageHinkley`` (defaults, and one tuned setting each); then the measured
per-window false-alarm rate against the configured one on long no-change streams, and a
summary. Run: ``python benchmarks/bench_drift.py [--quick] [--plot]``.

Design (fixed seeds; every detector sees the same values):

- Scenarios, each ``--streams`` independent streams of ``--events`` events. A change stream
  has one change at an index drawn uniformly from [800, 1200); a control has none.
  Real values (``normal_gamma``): N(10, 1), then a level shift of 0.5, 1 or 2 sd, a variance
  x2 or x0.5, or a linear ramp of the mean by 2 sd over 300 events. Counts
  (``gamma_poisson``): Poisson(5) per event, then rate x1.5 or x0.7. Successes out of 20
  trials (``beta_binomial``): p = 0.05, then p x2 or x1.5. One no-change control per family.
- bayestream: ``window_events`` 50 and 100, reference ``previous`` and ``baseline``
  (``baseline_windows = 10``), ``false_alarm_rate`` 0.001 and 0.01, ``cooldown_windows = 1``;
  every other field at its default. One configuration serves all three families. The streams
  go through the family kernels exactly as :meth:`bayestream.Engine.process` calls them
  (``bayestream.engine.kernels.update`` on a ``RuleStore``, settings from
  ``bayestream.engine.decisions``); a cross-check sends some streams of every scenario through
  ``Engine.process`` as JSON messages and asserts identical alarms.
- River (``river.drift``): fed the raw values (real values; counts; successes / trials), one
  detector per stream, ``update(x)`` then ``drift_detected``. Defaults, and one tuned setting
  per family, chosen by grid search for the best F1 on a separate seed (``--tune-streams``
  streams per scenario of that family): ADWIN over ``delta``; PageHinkley over ``threshold``
  and ``delta`` in units of the pooled pre-change standard deviation of the tuning streams.
  The bayestream configuration headlined in the summary is chosen the same way (best suite F1
  on the tuning seed among the eight), but once for all families.
- Scoring. A change stream is a true positive when its first alarm at or after the change
  comes within ``--tolerance`` events of it (delay = that alarm's index - change index);
  otherwise a false negative. Every other alarm is a false positive: alarms before the change
  or in a control, a first alarm later than the tolerance, and repeated alarms after the
  first (reported apart). F1 from TP, FP, FN summed over streams (also at tolerances of 100
  and 200 events). False alarms per 10,000 windows: alarms in no-change stretches (controls,
  and before the change) per 10,000 * 50 such events (windows of 50 events for every
  detector, whatever its own window).
- False-alarm calibration: long no-change streams per family, reference and configured rate
  (``--fa-streams`` x ``--fa-events`` for 50-event windows, twice the events for 100; a fifth
  of the windows at the rate 0.01), alarms per window comparison that could alarm (not
  cooling down), with a Clopper-Pearson 95% interval. The same for sparse no-change controls
  (``SPARSE_LEVELS``: 1 to 5 counts per window, where comparisons take the exact conditional
  false-alarm probability), reported apart: there the rate can only fall below the configured
  one where too few counts make an alarm impossible, and the check is that it never exceeds
  it by more than 20%.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import os
import platform
import sys
import time
import zlib
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import asdict, dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np

WINDOW = 50
TOLERANCE = 500
CHANGE_LO, CHANGE_HI = 800, 1200
RAMP_EVENTS = 300
START_TS = 1_700_000_000.0
MU, SD = 10.0, 1.0
RATE = 5.0
TRIALS, P0 = 20, 0.05
EVAL_SEED, TUNE_SEED, FA_SEED = 20261201, 20261202, 20261203
FAMILY_RULE = {"normal": "normal_gamma", "poisson": "gamma_poisson", "binomial": "beta_binomial"}
TOLERANCES = (100, 200, 500)  # F1 sensitivity to the tolerance (the headline uses TOLERANCE)
CONFIGS = [  # (window_events, reference, false_alarm_rate)
    (window, reference, far)
    for window in (50, 100)
    for reference in ("previous", "baseline")
    for far in (0.001, 0.01)
]
SPARSE_LEVELS = [  # no-change controls with few counts per window: (family, (rate or p, trials))
    ("poisson", (0.1, 1)),
    ("poisson", (0.02, 1)),
    ("binomial", (0.05, 1)),
    ("binomial", (0.005, 20)),
]
SPARSE_CONFIGS = [(50, "previous", 0.01), (50, "baseline", 0.001), (100, "baseline", 0.001)]
ADWIN_GRID = [1e-8, 1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 2e-3, 1e-2, 5e-2, 0.1, 0.3, 0.5, 0.9]
PH_THRESHOLDS = [2.0, 5.0, 10.0, 20.0, 35.0, 50.0, 80.0, 120.0, 200.0]  # x pooled sd
PH_DELTAS = [0.005, 0.05, 0.1, 0.25, 0.5]  # x pooled sd


@dataclass(frozen=True)
class Scenario:
    name: str
    family: str  # normal | poisson | binomial
    kind: str  # level | variance | ramp | rate | control
    param: float

    @property
    def control(self) -> bool:
        return self.kind == "control"


SCENARIOS = [
    Scenario("normal_level_0.5sd", "normal", "level", 0.5),
    Scenario("normal_level_1sd", "normal", "level", 1.0),
    Scenario("normal_level_2sd", "normal", "level", 2.0),
    Scenario("normal_variance_x2", "normal", "variance", 2.0),
    Scenario("normal_variance_x0.5", "normal", "variance", 0.5),
    Scenario("normal_ramp_2sd_300ev", "normal", "ramp", 2.0),
    Scenario("normal_control", "normal", "control", 0.0),
    Scenario("poisson_rate_x1.5", "poisson", "rate", 1.5),
    Scenario("poisson_rate_x0.7", "poisson", "rate", 0.7),
    Scenario("poisson_control", "poisson", "control", 0.0),
    Scenario("binomial_p_x2", "binomial", "rate", 2.0),
    Scenario("binomial_p_x1.5", "binomial", "rate", 1.5),
    Scenario("binomial_control", "binomial", "control", 0.0),
]
BY_NAME = {s.name: s for s in SCENARIOS}
QUICK_CROSSCHECK = ["normal_level_2sd", "poisson_rate_x1.5", "binomial_p_x2"]


# --- data -------------------------------------------------------------------------------------


def generate(
    sc: Scenario, streams: int, events: int, seed: int, level: tuple[float, int] | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(x, size, change)``: values and sizes (trials / exposure) ``[streams, events]`` and the
    change index per stream (-1: none). ``level``: (rate, 1) or (p, trials) instead of the
    suite's Poisson rate or success probability and trials."""
    rate, p0, trials = RATE, P0, TRIALS
    if level is not None:
        rate = p0 = level[0]
        trials = level[1]
    rng = np.random.default_rng([seed, zlib.crc32(sc.name.encode())])
    if sc.control:
        change = np.full(streams, -1, dtype=np.int64)
        after = np.zeros((streams, events), dtype=bool)
    else:
        change = rng.integers(CHANGE_LO, CHANGE_HI, streams)
        after = np.arange(events)[None, :] >= change[:, None]
    size = np.ones((streams, events))
    if sc.family == "normal":
        mu = np.full((streams, events), MU)
        sd = np.full((streams, events), SD)
        if sc.kind == "level":
            mu += sc.param * SD * after
        elif sc.kind == "variance":
            sd = np.where(after, SD * math.sqrt(sc.param), SD)
        elif sc.kind == "ramp":
            frac = (np.arange(events)[None, :] - change[:, None]) / RAMP_EVENTS
            mu += sc.param * SD * np.clip(frac, 0.0, 1.0)
        x = rng.normal(mu, sd)
    elif sc.family == "poisson":
        x = rng.poisson(np.where(after, rate * sc.param, rate)).astype(np.float64)
    else:
        x = rng.binomial(trials, np.where(after, p0 * sc.param, p0)).astype(np.float64)
        size[:] = trials
    return x, size, change


def river_values(sc: Scenario, x: np.ndarray, size: np.ndarray) -> np.ndarray:
    """What River detectors are fed: the value, or for binomial the fraction of successes."""
    return x / size if sc.family == "binomial" else x


# --- detectors --------------------------------------------------------------------------------


def rule_dict(family: str, window: int, reference: str, far: float) -> dict[str, Any]:
    return {
        "metric": "m",
        "family": FAMILY_RULE[family],
        "drift": {
            "window_events": window,
            "reference": reference,
            "false_alarm_rate": far,
            "cooldown_windows": 1,
        },
    }


def config_name(window: int, reference: str, far: float) -> str:
    return f"bayestream/w{window}/{reference}/far={far:g}"


class Kernel:
    """A rule's streams driven through the family kernel exactly as ``Engine._update`` does."""

    def __init__(self, rule: dict[str, Any]) -> None:
        from bayestream import parse_config
        from bayestream.engine import decisions

        started = time.perf_counter()
        self.config = parse_config({"rule": [rule]})
        self.rule = self.config.rule[0]
        self.settings = decisions.settings(self.rule)  # includes the simulated null table
        self.prior = decisions.family_prior(self.rule)
        self.row_prior = decisions.row_prior(self.rule)
        self.startup_s = time.perf_counter() - started
        self.seconds = 0.0

    def scores(
        self, x: np.ndarray, size: np.ndarray, columns: list[int], chunk_events: int = 1_000_000
    ) -> dict[int, np.ndarray]:
        """Per-event output columns (``bayestream.models._protocol.OUT_*``) of streams
        ``x[s, t]`` (event ``t`` of stream ``s`` at ``START_TS + t``), each ``[streams,
        events]``; the kernel time is added to ``self.seconds``."""
        from bayestream.engine import kernels
        from bayestream.models._protocol import N_OUT
        from bayestream.state import RuleStore

        streams, events = x.shape
        store = RuleStore(self.row_prior)
        slots_all = store.admit_many([f"s{i}" for i in range(streams)], ["m"] * streams)
        result = {c: np.empty((streams, events)) for c in columns}
        ts_row = START_TS + np.arange(events, dtype=np.float64)
        per = max(1, chunk_events // events)
        self.seconds = 0.0
        for a in range(0, streams, per):
            b = min(streams, a + per)
            k = b - a
            m = k * events
            slots = np.repeat(slots_all[a:b], events)  # each stream's events in time order
            ts = np.tile(ts_row, k)
            xs = np.ascontiguousarray(x[a:b].ravel(), dtype=np.float64)
            sz = np.ascontiguousarray(size[a:b].ravel(), dtype=np.float64)
            out = np.full((m, N_OUT), np.nan)
            status = np.empty(m, dtype=np.int8)
            started = time.perf_counter()
            kernels.update(
                self.rule,
                store,
                self.config.engine.max_lateness_seconds,
                self.settings,
                self.prior,
                slots,
                ts,
                xs,
                sz,
                np.full(m, -np.inf),
                out,
                status,
            )
            self.seconds += time.perf_counter() - started
            for c in columns:
                result[c][a:b] = out[:, c].reshape(k, events)
        return result

    def run(self, x: np.ndarray, size: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
        """``(alarm, evaluated, kernel seconds)``, boolean ``[streams, events]``."""
        from bayestream.models._protocol import OUT_ALARM, OUT_EVALUATED

        out = self.scores(x, size, [OUT_ALARM, OUT_EVALUATED])
        return out[OUT_ALARM] == 1.0, out[OUT_EVALUATED] == 1.0, self.seconds


@functools.lru_cache(maxsize=64)
def kernel_for(family: str, window: int, reference: str, far: float) -> Kernel:
    """One :class:`Kernel` per configuration and process (its null table is simulated once)."""
    return Kernel(rule_dict(family, window, reference, far))


def make_river(name: str, params: dict[str, float]) -> Any:
    from river import drift

    return drift.ADWIN(**params) if name == "ADWIN" else drift.PageHinkley(**params)


def river_run(name: str, params: dict[str, float], values: np.ndarray) -> tuple[np.ndarray, float]:
    """``(alarm, seconds)``: one fresh detector per stream, ``update(x)`` then
    ``drift_detected``."""
    streams, events = values.shape
    alarm = np.zeros((streams, events), dtype=bool)
    started = time.perf_counter()
    for s in range(streams):
        det = make_river(name, params)
        update = det.update
        hits = []
        for t, v in enumerate(values[s].tolist()):
            update(v)
            if det.drift_detected:
                hits.append(t)
        alarm[s, hits] = True
    return alarm, time.perf_counter() - started


# --- scoring ----------------------------------------------------------------------------------


def score(alarm: np.ndarray, change: np.ndarray) -> dict[str, Any]:
    """Counts of one detector on one scenario (see the module docstring)."""
    tp = fn = fp_before = fp_after = 0
    quiet_events = 0
    delays: list[int] = []
    events = alarm.shape[1]
    at = dict.fromkeys(TOLERANCES, 0)  # true positives at other tolerances
    for s in range(alarm.shape[0]):
        hits = np.flatnonzero(alarm[s])
        c = int(change[s])
        if c < 0:
            fp_before += hits.size
            quiet_events += events
            continue
        quiet_events += c
        before = hits[hits < c]
        post = hits[hits >= c]
        fp_before += before.size
        for tol in TOLERANCES:
            at[tol] += int(bool(post.size) and post[0] - c <= tol)
        if post.size and post[0] - c <= TOLERANCE:
            tp += 1
            delays.append(int(post[0] - c))
            fp_after += post.size - 1
        else:
            fn += 1
            fp_after += post.size
    return {
        "tp": tp,
        "fn": fn,
        "fp_before_change": fp_before,
        "fp_after_change": fp_after,
        "quiet_events": quiet_events,
        "delays": delays,
        **{f"tp@{tol}": k for tol, k in at.items()},
    }


def figures(c: dict[str, Any]) -> dict[str, Any]:
    """Precision, recall, F1, delays and false alarms per 10k windows from summed counts."""
    tp, fn = c["tp"], c["fn"]
    fp = c["fp_before_change"] + c["fp_after_change"]
    precision = tp / (tp + fp) if tp + fp else math.nan
    recall = tp / (tp + fn) if tp + fn else math.nan
    f1 = 2 * tp / (2 * tp + fp + fn) if tp + fn else math.nan  # none without positives
    alarms = tp + fp
    by_tol = {}
    for tol in TOLERANCES:  # a first alarm later than tol: a false negative and a false positive
        k = c[f"tp@{tol}"]
        by_tol[str(tol)] = _r(2 * k / (alarms + tp + fn)) if tp + fn else None
    d = np.asarray(c["delays"])
    quiet_windows = c["quiet_events"] / WINDOW
    return {
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "fp_before_change": c["fp_before_change"],
        "fp_after_change": c["fp_after_change"],
        "precision": _r(precision),
        "recall": _r(recall),
        "f1": _r(f1),
        "delay_median": float(np.median(d)) if d.size else None,
        "delay_p90": float(np.percentile(d, 90)) if d.size else None,
        "fa_per_10k_windows": _r(c["fp_before_change"] / quiet_windows * 1e4)
        if quiet_windows
        else None,
        "f1_by_tolerance": by_tol,
    }


def _r(v: float, digits: int = 4) -> float | None:
    return None if v is None or not math.isfinite(v) else round(float(v), digits)


def add_counts(total: dict[str, Any], c: dict[str, Any]) -> None:
    for k, v in c.items():
        total[k] = total.get(k, [] if isinstance(v, list) else 0) + v


# --- tasks (run in worker processes) ---------------------------------------------------------


def task_bayestream(
    scenario: str, streams: int, events: int, seed: int, example: bool = False
) -> dict[str, Any]:
    """Every bayestream configuration on one scenario."""
    sc = BY_NAME[scenario]
    x, size, change = generate(sc, streams, events, seed)
    out: dict[str, Any] = {}
    for window, reference, far in CONFIGS:
        kernel = kernel_for(sc.family, window, reference, far)
        alarm, _, seconds = kernel.run(x, size)
        counts = score(alarm, change)
        counts["runtime_s"] = seconds
        counts["startup_s"] = kernel.startup_s
        if example:
            counts["example_alarms"] = np.flatnonzero(alarm[0]).tolist()
        out[config_name(window, reference, far)] = counts
    return out


def task_river(
    scenario: str,
    streams: int,
    events: int,
    seed: int,
    detectors: list[tuple[str, str, dict[str, float]]],
    example: bool = False,
) -> dict[str, Any]:
    """River detectors ``(label, class name, params)`` on one scenario."""
    sc = BY_NAME[scenario]
    x, size, change = generate(sc, streams, events, seed)
    values = river_values(sc, x, size)
    out: dict[str, Any] = {}
    for label, name, params in detectors:
        alarm, seconds = river_run(name, params, values)
        counts = score(alarm, change)
        counts["runtime_s"] = seconds
        if example:
            counts["example_alarms"] = np.flatnonzero(alarm[0]).tolist()
        out[label] = counts
    return out


def task_tune(family: str, streams: int, events: int, quick: bool) -> dict[str, Any]:
    """Grid search on the tuning seed: River per family, bayestream configurations' F1."""
    scenarios = [s for s in SCENARIOS if s.family == family]
    data = [generate(s, streams, events, TUNE_SEED) for s in scenarios]
    values = [river_values(s, x, size) for s, (x, size, _) in zip(scenarios, data, strict=True)]
    pre = np.concatenate([v[:, :CHANGE_LO] for v in values])
    scale = float(np.sqrt(np.mean(np.var(pre, axis=1, ddof=1))))
    grids: dict[str, list[dict[str, float]]] = {
        "ADWIN": [{"delta": d} for d in (ADWIN_GRID[::2] if quick else ADWIN_GRID)],
        "PageHinkley": [
            {"threshold": t * scale, "delta": d * scale}
            for t in (PH_THRESHOLDS[::3] if quick else PH_THRESHOLDS)
            for d in (PH_DELTAS[::2] if quick else PH_DELTAS)
        ],
    }
    result: dict[str, Any] = {"pooled_sd": scale, "river": {}, "bayestream": {}}
    for name, grid in grids.items():
        trials = []
        for params in grid:
            total: dict[str, Any] = {}
            for (_, _, change), v in zip(data, values, strict=True):
                alarm, _ = river_run(name, params, v)
                add_counts(total, score(alarm, change))
            f = figures(total)
            trials.append({"params": params, "f1": f["f1"], "fp": f["fp"]})
        best = max(trials, key=lambda r: (r["f1"] or 0.0, -r["fp"]))
        result["river"][name] = {"best": best["params"], "f1": best["f1"], "grid": trials}
    for window, reference, far in CONFIGS:
        kernel = kernel_for(family, window, reference, far)
        total = {}
        for x, size, change in data:
            alarm, _, _ = kernel.run(x, size)
            add_counts(total, score(alarm, change))
        result["bayestream"][config_name(window, reference, far)] = total
    return result


def task_false_alarms(
    family: str,
    window: int,
    reference: str,
    far: float,
    streams: int,
    events: int,
    level: tuple[float, int] | None = None,
) -> dict[str, Any]:
    """Measured per-window false-alarm rate on long no-change streams (``level``: see
    :func:`generate`)."""
    from scipy import stats

    sc = BY_NAME[f"{family}_control"]
    x, size, _ = generate(sc, streams, events, FA_SEED + int(far * 1e6), level)
    kernel = kernel_for(family, window, reference, far)
    alarm, evaluated, seconds = kernel.run(x, size)
    # a comparison right after an alarm is cooling down (cooldown_windows = 1): it cannot alarm
    order = np.cumsum(evaluated, axis=1)  # comparison number at each event
    eligible = 0
    alarms = int(alarm.sum())
    warm_eligible = warm_alarms = 0
    warm = 30  # comparisons a baseline of 10 windows needs to settle (3 x baseline_windows)
    for s in range(streams):
        ev = np.flatnonzero(evaluated[s])
        al = np.flatnonzero(alarm[s])
        cooling = np.searchsorted(ev, al) + 1  # index (in ev) of the comparison after each alarm
        cooling = cooling[cooling < ev.size]
        ok = np.ones(ev.size, dtype=bool)
        ok[cooling] = False
        eligible += int(ok.sum())
        late = order[s, ev] > warm
        warm_eligible += int((ok & late).sum())
        warm_alarms += int((alarm[s, ev] & late).sum())

    def rate(k: int, n: int) -> dict[str, Any]:
        lo = stats.beta.ppf(0.025, k, n - k + 1) if k > 0 else 0.0
        hi = stats.beta.ppf(0.975, k + 1, n - k) if k < n else 1.0
        p = k / n if n else math.nan
        return {
            "alarms": k,
            "comparisons": n,
            "rate": _r(p, 6),
            "ci95": [_r(lo, 6), _r(hi, 6)],
            "ratio_to_configured": _r(p / far, 3),
            "ratio_ci95": [_r(lo / far, 3), _r(hi / far, 3)],
        }

    return {
        "config": config_name(window, reference, far),
        "family": FAMILY_RULE[family],
        "window_events": window,
        "reference": reference,
        "configured_rate": far,
        "streams": streams,
        "events_per_stream": events,
        "windows": streams * events // window,
        "all_comparisons": rate(alarms, eligible),
        "after_first_30_comparisons": rate(warm_alarms, warm_eligible),
        "within_20pct": bool(abs(alarms / eligible / far - 1.0) <= 0.2),
        **(_sparse_info(family, window, level, alarms / eligible / far) if level else {}),
        "events_per_s": round(x.size / seconds),
    }


def _sparse_info(
    family: str, window: int, level: tuple[float, int], ratio: float
) -> dict[str, Any]:
    rare = min(level[0], 1.0 - level[0]) if family == "binomial" else level[0]
    return {
        "level": f"rate={level[0]:g}" if family == "poisson" else f"p={level[0]:g}x{level[1]}",
        "expected_counts_per_window": _r(rare * level[1] * window, 3),  # the rarer outcome's
        "not_above_120pct": bool(ratio <= 1.2),
    }


def task_crosscheck(scenario: str, streams: int, events: int, seed: int) -> dict[str, Any]:
    """The same streams through ``Engine.process`` (JSON messages in time order, batches of
    20,000) and through the kernel path: are the alarms and comparisons identical?"""
    from bayestream import Engine, RawBatch, parse_config
    from bayestream.models._protocol import OUT_ALARM, OUT_EVALUATED

    sc = BY_NAME[scenario]
    x, size, _ = generate(sc, streams, events, seed)
    result = {}
    for window, reference, far in CONFIGS:
        rule = rule_dict(sc.family, window, reference, far)
        k_alarm, k_eval, _ = kernel_for(sc.family, window, reference, far).run(x, size)
        engine = Engine(parse_config({"rule": [rule]}))
        msgs = []
        xs = x.tolist()
        for t in range(events):
            ts = START_TS + t
            for s in range(streams):
                v = xs[s][t]
                if sc.family == "normal":
                    msgs.append(b'{"key":"s%d","metric":"m","ts":%r,"value":%r}' % (s, ts, v))
                elif sc.family == "poisson":
                    msgs.append(b'{"key":"s%d","metric":"m","ts":%r,"value":%d}' % (s, ts, v))
                else:
                    msgs.append(
                        b'{"key":"s%d","metric":"m","ts":%r,"value":%d,"trials":%d}'
                        % (s, ts, v, TRIALS)
                    )
        e_alarm = np.zeros(len(msgs), dtype=bool)
        e_eval = np.zeros(len(msgs), dtype=bool)
        for j in range(0, len(msgs), 20_000):
            out = engine.process(RawBatch.from_messages(msgs[j : j + 20_000]))
            assert not out.dead_letters, out.dead_letters[:3]
            e_alarm[j : j + 20_000] = out.scores[:, OUT_ALARM] == 1.0
            e_eval[j : j + 20_000] = out.scores[:, OUT_EVALUATED] == 1.0
        same = bool(
            np.array_equal(e_alarm.reshape(events, streams).T, k_alarm)
            and np.array_equal(e_eval.reshape(events, streams).T, k_eval)
        )
        result[config_name(window, reference, far)] = {
            "identical": same,
            "alarms": int(k_alarm.sum()),
        }
    return result


def source_info() -> dict[str, Any]:
    """Which bayestream the figures come from: its path, and its git commit (and whether its
    ``src`` differs from that commit) when it lives in a git checkout."""
    import subprocess

    import bayestream

    root = Path(bayestream.__file__).resolve().parent
    info: dict[str, Any] = {"module": str(root), "version": bayestream.__version__}
    try:
        git = ["git", "-C", str(root)]
        info["git_commit"] = subprocess.run(
            [*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        status = subprocess.run(
            [*git, "status", "--porcelain", "--", str(root)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        info["src_modified_since_commit"] = bool(status.strip())
    except (OSError, subprocess.CalledProcessError):
        info["git_commit"] = None
    return info


def task_warm() -> None:
    """Compile (or load) the kernels of every family once."""
    for family in FAMILY_RULE:
        task_bayestream(f"{family}_control", 1, 200, 0)


# --- the report -------------------------------------------------------------------------------


def _plot(path: Path, examples: dict[str, dict[str, list[int]]], events: int, seed: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = 3
    rows = math.ceil(len(SCENARIOS) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 2.6 * rows), squeeze=False)
    marks = {}
    for i, sc in enumerate(SCENARIOS):
        ax = axes[i // cols][i % cols]
        x, size, change = generate(sc, 1, events, seed)  # stream 0 of the evaluation seed
        v = river_values(sc, x, size)[0]
        ax.plot(v, lw=0.4, color="0.55")
        if change[0] >= 0:
            ax.axvline(change[0], color="k", ls="--", lw=1.0)
        lo, hi = float(v.min()), float(v.max())
        dets = examples[sc.name]
        for j, (label, hits) in enumerate(dets.items()):
            y = hi + (j + 1) * 0.08 * (hi - lo)
            marks[label] = ax.plot(
                hits, [y] * len(hits), "|", ms=8, mew=1.6, color=f"C{j}", label=label
            )[0]
        ax.set_title(sc.name, fontsize=9)
        ax.tick_params(labelsize=7)
    for j in range(len(SCENARIOS), rows * cols):
        axes[j // cols][j % cols].axis("off")
    fig.legend(list(marks.values()), list(marks.keys()), loc="lower right", fontsize=8)
    fig.suptitle("stream 0 of each scenario: alarms per detector (dashed: the change)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--streams", type=int, default=200)
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--tune-streams", type=int, default=40)
    parser.add_argument("--fa-streams", type=int, default=1000)
    parser.add_argument("--fa-events", type=int, default=10_000)
    parser.add_argument("--crosscheck-streams", type=int, default=4)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--plot", action="store_true", help="write benchmarks/results/drift.png")
    parser.add_argument("--quick", action="store_true", help="small sizes, for CI smoke runs")
    args = parser.parse_args()
    if args.quick:
        args.streams, args.tune_streams = 8, 6
        args.fa_streams, args.fa_events = 20, 1000
        args.crosscheck_streams = 1
    started = time.perf_counter()

    ctx = get_context("spawn")
    with ProcessPoolExecutor(max_workers=args.workers, mp_context=ctx) as pool:
        # the numba cache is filled once, before the workers load it
        pool.submit(task_warm).result()
        tune = {
            f: pool.submit(task_tune, f, args.tune_streams, args.events, args.quick)
            for f in FAMILY_RULE
        }
        ours = {
            s.name: pool.submit(task_bayestream, s.name, args.streams, args.events, EVAL_SEED, True)
            for s in SCENARIOS
        }
        defaults = [("ADWIN/default", "ADWIN", {}), ("PageHinkley/default", "PageHinkley", {})]
        river_default = {
            s.name: pool.submit(
                task_river, s.name, args.streams, args.events, EVAL_SEED, defaults, True
            )
            for s in SCENARIOS
        }
        fa_jobs: list[Future[dict[str, Any]]] = []
        for family in FAMILY_RULE:
            for window, reference, far in CONFIGS:
                # the same number of windows for either window length
                n_streams, n_events = args.fa_streams, args.fa_events * window // WINDOW
                if far >= 0.01 and not args.quick:  # 10x the rate: a fifth of the windows
                    n_streams, n_events = n_streams * 2 // 5, n_events // 2
                fa_jobs.append(
                    pool.submit(
                        task_false_alarms, family, window, reference, far, n_streams, n_events
                    )
                )
        sparse_jobs = []
        for family, level in SPARSE_LEVELS:
            for window, reference, far in SPARSE_CONFIGS:
                n_events = args.fa_events * window // WINDOW
                sparse_jobs.append(
                    pool.submit(
                        task_false_alarms,
                        family,
                        window,
                        reference,
                        far,
                        args.fa_streams,
                        n_events,
                        level,
                    )
                )
        checked = QUICK_CROSSCHECK if args.quick else [s.name for s in SCENARIOS]
        cross = {
            name: pool.submit(
                task_crosscheck, name, args.crosscheck_streams, args.events, EVAL_SEED
            )
            for name in checked
        }
        tuned_params = {f: job.result() for f, job in tune.items()}
        river_tuned = {}
        for s in SCENARIOS:
            best = tuned_params[s.family]["river"]
            dets = [
                (f"{name}/tuned", name, best[name]["best"]) for name in ("ADWIN", "PageHinkley")
            ]
            river_tuned[s.name] = pool.submit(
                task_river, s.name, args.streams, args.events, EVAL_SEED, dets, True
            )
        per_scenario_raw = {
            s.name: {
                **ours[s.name].result(),
                **river_default[s.name].result(),
                **river_tuned[s.name].result(),
            }
            for s in SCENARIOS
        }
        false_alarms = [job.result() for job in fa_jobs]
        sparse = [job.result() for job in sparse_jobs]
        crosscheck = {name: job.result() for name, job in cross.items()}

    # choose the headline bayestream configuration on the tuning seed (one for all families)
    tune_totals: dict[str, dict[str, Any]] = {}
    for fam in tuned_params.values():
        for name, counts in fam["bayestream"].items():
            add_counts(tune_totals.setdefault(name, {}), counts)
    tune_f1 = {name: figures(c)["f1"] for name, c in tune_totals.items()}
    headline = max(tune_f1, key=lambda n: tune_f1[n] or 0.0)

    detectors = list(next(iter(per_scenario_raw.values())).keys())
    per_scenario: dict[str, Any] = {}
    suite: dict[str, dict[str, Any]] = {d: {} for d in detectors}
    suite_mean_only: dict[str, dict[str, Any]] = {d: {} for d in detectors}
    controls: dict[str, dict[str, Any]] = {d: {} for d in detectors}
    runtime: dict[str, float] = dict.fromkeys(detectors, 0.0)
    examples: dict[str, dict[str, list[int]]] = {}
    for s in SCENARIOS:
        rows = {}
        examples[s.name] = {}
        for d in detectors:
            c = dict(per_scenario_raw[s.name][d])
            secs = c.pop("runtime_s")
            c.pop("startup_s", None)
            hits = c.pop("example_alarms", [])
            if d == headline or not d.startswith("bayestream"):
                examples[s.name][d] = hits
            runtime[d] += secs
            add_counts(suite[d], c)
            if s.kind != "variance":
                add_counts(suite_mean_only[d], c)
            if s.control:
                add_counts(controls[d], c)
            rows[d] = {
                **figures(c),
                "runtime_s": round(secs, 3),
                "events_per_s": round(args.streams * args.events / secs),
            }
        per_scenario[s.name] = {
            "family": FAMILY_RULE[s.family],
            "kind": s.kind,
            "param": s.param,
            "detectors": rows,
        }
    suite_fig = {d: figures(suite[d]) | {"runtime_s": round(runtime[d], 2)} for d in detectors}
    river = [d for d in detectors if not d.startswith("bayestream")]
    best_river = max(river, key=lambda d: suite_fig[d]["f1"] or 0.0)
    wins = {
        s.name: {
            "bayestream_f1": per_scenario[s.name]["detectors"][headline]["f1"],
            "best_river": max(
                river, key=lambda d: per_scenario[s.name]["detectors"][d]["f1"] or 0.0
            ),
            "best_river_f1": max(per_scenario[s.name]["detectors"][d]["f1"] or 0.0 for d in river),
        }
        for s in SCENARIOS
        if not s.control
    }
    fa_ok = all(f["within_20pct"] for f in false_alarms)
    report: dict[str, Any] = {
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "processor": platform.processor() or platform.machine(),
        },
        "args": vars(args),
        "bayestream": source_info(),
        "design": {
            "window_events": WINDOW,
            "tolerance_events": TOLERANCE,
            "change_index": [CHANGE_LO, CHANGE_HI],
            "seeds": {"evaluation": EVAL_SEED, "tuning": TUNE_SEED, "false_alarms": FA_SEED},
            "scenarios": [asdict(s) for s in SCENARIOS],
            "bayestream_configs": [config_name(*c) for c in CONFIGS],
        },
        "tuning": {
            "seed": TUNE_SEED,
            "streams_per_scenario": args.tune_streams,
            "river_per_family": {
                FAMILY_RULE[f]: {
                    "pooled_sd": _r(t["pooled_sd"]),
                    **{n: {"best": v["best"], "f1": v["f1"]} for n, v in t["river"].items()},
                }
                for f, t in tuned_params.items()
            },
            "bayestream_suite_f1": tune_f1,
            "bayestream_headline": headline,
        },
        "per_scenario": per_scenario,
        "suite": suite_fig,
        "suite_without_variance_scenarios": {d: figures(suite_mean_only[d]) for d in detectors},
        "controls": {d: figures(controls[d]) for d in detectors},
        "false_alarm_calibration": false_alarms,
        "sparse_false_alarm_calibration": sparse,
        "engine_crosscheck": crosscheck,
    }
    all_identical = all(v["identical"] for c in crosscheck.values() for v in c.values())
    beats = {
        d: bool((suite_fig[d]["f1"] or 0) > (suite_fig[best_river]["f1"] or 0))
        for d in detectors
        if d.startswith("bayestream")
    }
    report["summary"] = {
        "headline_config": headline,
        "suite_f1": {d: suite_fig[d]["f1"] for d in detectors},
        "suite_f1_without_variance_scenarios": {
            d: report["suite_without_variance_scenarios"][d]["f1"] for d in detectors
        },
        "best_river": best_river,
        "target_f1_better_than_both_river_detectors": beats[headline],
        "every_bayestream_config_beats_best_river": all(beats.values()),
        "scenarios_where_best_river_beats_headline": sorted(
            n for n, w in wins.items() if (w["bayestream_f1"] or 0.0) < w["best_river_f1"]
        ),
        "per_scenario_f1": wins,
        "target_false_alarm_rate_within_20pct": fa_ok,
        "false_alarm_ratio_to_configured": {
            f"{f['family']}/{f['config']}": f["all_comparisons"]["ratio_to_configured"]
            for f in false_alarms
        },
        "sparse_false_alarm_ratio_to_configured": {
            f"{f['family']}/{f['level']}/{f['config']}": f["all_comparisons"]["ratio_to_configured"]
            for f in sparse
        },
        "sparse_false_alarm_rate_never_above_120pct": all(f["not_above_120pct"] for f in sparse),
        "engine_path_identical_to_kernel_path": all_identical,
        "seconds": round(time.perf_counter() - started, 1),
    }
    if args.plot:
        out_dir = Path(__file__).resolve().parent / "results"
        out_dir.mkdir(exist_ok=True)
        _plot(out_dir / "drift.png", examples, args.events, EVAL_SEED)
        report["summary"]["plot"] = str(out_dir / "drift.png")
    json.dump(report, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
