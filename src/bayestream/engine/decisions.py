"""A rule's decision settings as the kernels receive them, and the rows its streams start from.

The anomaly probability, robust updating and drift windows run inside the family kernels
(:mod:`bayestream.models._outlier`, :mod:`bayestream.models._drift`); this module turns a
rule's configuration into their numeric ``settings`` vector and lays out the extra columns of
a stream's row (:mod:`bayestream.models._protocol`).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from bayestream.config import Rule
from bayestream.engine import null
from bayestream.engine.alerts import selection_cutoffs
from bayestream.engine.kernels import observation_kind
from bayestream.models._conditional import EXACT_BASELINE_COUNT, EXACT_TERMS
from bayestream.models._drift import block_width, clear, stats_width
from bayestream.models._protocol import (
    EXTRA,
    KIND_CATEGORY,
    KIND_COUNT_EXPOSURE,
    KIND_COUNT_TRIALS,
    KIND_REAL,
    N_SETTINGS,
    S_ALERT_WINDOW,
    S_BASELINE,
    S_COOLDOWN,
    S_DECAY,
    S_DOF,
    S_DRIFT,
    S_EXACT,
    S_EXACT_COUNT,
    S_EXTRA,
    S_FALSE_ALARM,
    S_HOP,
    S_IVL_PROB,
    S_IVL_TAIL,
    S_IVL_UPPER,
    S_KIND,
    S_MIN_EVENTS,
    S_MONITOR,
    S_MONITOR_ACCEPT,
    S_MONITOR_RUN,
    S_NULL,
    S_OUTLIER_RATE,
    S_OUTLIER_SCALE,
    S_RESET,
    S_ROBUST,
    S_ROBUST_MIN,
    S_RUN_RESET,
    S_SHIFT_LOG_ODDS,
    S_WINDOW_EVENTS,
    S_WINDOW_SECONDS,
    extra_prior,
)
from bayestream.models._sliding import clear_sliding, sliding_width

_KINDS = {
    "real": KIND_REAL,
    "count_exposure": KIND_COUNT_EXPOSURE,
    "count_trials": KIND_COUNT_TRIALS,
    "category": KIND_CATEGORY,
}


def window_kind(rule: Rule) -> int:
    """What the rule's drift windows accumulate (the window model's family)."""
    return _KINDS[observation_kind(rule)]


def family_prior(rule: Rule) -> np.ndarray:
    """The family's parameters a new stream starts from (the kernels' ``prior``)."""
    return np.ascontiguousarray(rule.prior_vector(), dtype=np.float64)


def window_prior(rule: Rule) -> np.ndarray:
    """The weak prior of a drift window. Real values: the reference prior of a normal sample
    (kappa = alpha = beta = 0, proper once a window holds two distinct values), so that window
    posteriors, and the KL between them, do not depend on the data's location or scale. Counts
    over an exposure: Gamma(``window_prior_weight`` alpha, 0), no prior exposure (Jeffreys'
    Gamma(1/2, 0) by default), so the KL depends on the counts, not on the exposure's unit.
    Successes and categories: the rule's prior with its pseudo-counts scaled by
    ``window_prior_weight`` (0.5 turns the default Beta(1, 1) and Dirichlet(1, ..., 1) into
    Jeffreys priors); for a particle rule, centred on ``initial.mean`` (a logit)."""
    assert rule.drift is not None
    w = rule.drift.window_prior_weight
    kind = window_kind(rule)
    if kind == KIND_REAL:
        return np.zeros(4)
    if rule.family != "particle":
        prior = family_prior(rule) * w
        if kind == KIND_COUNT_EXPOSURE:  # no prior exposure: the KL depends on counts only
            prior[1] = 0.0
        return prior
    assert rule.initial is not None
    m = max(min(rule.initial.mean, 700.0), -700.0)
    if kind == KIND_COUNT_EXPOSURE:
        return np.array([w, 0.0])
    p = 1.0 / (1.0 + math.exp(-m))
    return np.array([w * max(p, 1e-6), w * max(1.0 - p, 1e-6)])


def family_width(rule: Rule) -> int:
    return len(rule.prior_vector())


def settings(rule: Rule) -> np.ndarray:
    """The kernels' ``settings`` vector (columns ``S_*``, then the window prior)."""
    drift = rule.drift
    head = np.zeros(N_SETTINGS)
    head[S_ROBUST] = 1.0 if rule.robust else 0.0
    head[S_OUTLIER_RATE] = rule.outlier_rate
    head[S_OUTLIER_SCALE] = rule.outlier_scale
    head[S_ROBUST_MIN] = rule.robust_min_events
    # a dlm row cannot restart between an event's forecast and its update (the forecast lives
    # in the row), and needs not: its variance learns from every event
    restarts = rule.robust and rule.family not in ("particle", "dlm")
    head[S_RUN_RESET] = rule.outlier_run_reset if restarts else 0
    head[S_EXTRA] = family_width(rule)
    head[S_MONITOR] = 1.0 if rule.monitor and rule.family != "particle" else 0.0
    head[S_SHIFT_LOG_ODDS] = math.log(rule.shift_rate) - math.log1p(-rule.shift_rate)
    head[S_MONITOR_RUN] = rule.monitor_run
    head[S_MONITOR_ACCEPT] = math.log(rule.monitor_threshold) - math.log1p(-rule.monitor_threshold)
    head[S_ALERT_WINDOW] = rule.alert_window_events
    kind = window_kind(rule)
    head[S_KIND] = kind
    # predictive intervals for the events the anomaly selection may pick; S_IVL_UPPER 0
    # (categories, or no credible level) turns them off
    head[S_IVL_TAIL], head[S_IVL_PROB] = selection_cutoffs(rule)
    level = interval_level(rule)
    off = rule.family == "dirichlet" or math.isnan(level)
    head[S_IVL_UPPER] = 0.0 if off else 0.5 + 0.5 * level
    if drift is None:
        return head
    head[S_DRIFT] = 1.0
    head[S_WINDOW_SECONDS] = drift.window_seconds or 0.0
    head[S_WINDOW_EVENTS] = drift.window_events or 0
    head[S_BASELINE] = 1.0 if drift.reference == "baseline" else 0.0
    head[S_DECAY] = 1.0 - 1.0 / drift.baseline_windows
    head[S_FALSE_ALARM] = drift.false_alarm_rate
    head[S_COOLDOWN] = drift.cooldown_windows
    head[S_RESET] = 1.0 if drift.reset_on_alarm else 0.0
    head[S_MIN_EVENTS] = drift.min_window_events
    head[S_HOP] = drift.buckets
    k = len(rule.categories)
    head[S_DOF] = {KIND_REAL: 2, KIND_CATEGORY: k - 1}.get(kind, 1)
    if kind != KIND_REAL:  # counts: exact given the totals where they are few
        head[S_EXACT] = EXACT_TERMS
    head[S_EXACT_COUNT] = math.inf
    out = np.concatenate([head, window_prior(rule)])
    if null.needs_table(rule, out):
        table = _cached(null.simulate, rule, out)
        out[S_NULL] = table[0]
        out = np.concatenate([out, table])
    elif null.needs_count_tables(rule, out):
        tables = _cached(null.simulate_counts, rule, out)
        out[S_NULL] = -float(null.COUNT_GRID.shape[0])  # negative: one table per expected count
        if drift.reference == "baseline":  # its effective size is the tables' to beat (above)
            out[S_EXACT_COUNT] = EXACT_BASELINE_COUNT
        out = np.concatenate([out, tables])
    return out


def interval_level(rule: Rule) -> float:
    """The level of the predictive interval in a rule's anomaly records: its widest credible
    level (NaN: none configured)."""
    return max(rule.credible_levels) if rule.credible_levels else math.nan


_TABLES: dict[bytes, np.ndarray] = {}


def _cached(make: Any, rule: Rule, settings: np.ndarray) -> np.ndarray:
    """A simulated null depends only on the settings vector (and a fixed seed): simulate it
    once per process (engines are made per partition, per rebalance, per test)."""
    key = make.__name__.encode() + settings.tobytes()
    table = _TABLES.get(key)
    if table is None:
        table = _TABLES[key] = make(rule, settings)
    return table


def row_prior(rule: Rule) -> np.ndarray:
    """The full row a new stream starts from: the family's parameters, the extra columns (no
    anomaly probability yet, no runs, an empty alert window) and, with drift, an empty drift
    block."""
    prior = family_prior(rule)
    extra = extra_prior()
    assert extra.shape[0] == EXTRA
    if rule.drift is None:
        return np.concatenate([prior, extra])
    kind = window_kind(rule)
    k = len(rule.categories)
    sw = stats_width(kind, k)
    if rule.drift.buckets:
        block = np.zeros(sliding_width(rule.drift.buckets, sw))
        clear_sliding(block, 0, rule.drift.buckets, sw)
    else:
        block = np.zeros(block_width(kind, k))
        clear(block, 0, sw)
    return np.concatenate([prior, extra, block])


__all__ = [
    "family_prior",
    "interval_level",
    "row_prior",
    "settings",
    "window_kind",
    "window_prior",
]
