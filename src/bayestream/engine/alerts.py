"""Which applied events become anomaly records, and which windows become drift records.

Anomalies, per rule, by one of three policies:

- default: the predictive tail probability is below ``anomaly_threshold``;
- ``anomaly_probability_threshold = p``: the anomaly probability is at least ``p``;
- ``fdr = q``: Benjamini-Hochberg at level ``q`` over the tail probabilities of the rule's
  events in the batch (all its streams), which bounds the expected fraction of false alerts
  among the alerts of each batch at ``q`` when the events' tail probabilities are
  independent (or positively dependent) and uniform under no anomaly. Unlike the other two,
  the set then depends on how the input is cut into batches (``--batch-size``).

Alerts ("one incident, one alert"): a selected anomaly is an alert when its surprise
``-log10(tail probability)`` exceeds every surprise of its stream's previous
``alert_window_events`` events (:mod:`bayestream.models._alerting`: the rule, its state in the
stream's row and the two-record approximation of the window's maximum). Every applied event
goes through the window, selected or not, so that the alerts of a stream depend on its events
only (and on the batches where the selection does: ``fdr``).

Drift records are the windows whose comparison raised an alarm (see
:mod:`bayestream.models._drift`).
"""

from __future__ import annotations

import numpy as np

from bayestream.config import Rule
from bayestream.models._alerting import mark_alerts
from bayestream.models._protocol import (
    OUT_ALARM,
    OUT_CHANGE,
    OUT_FAP,
    OUT_KL,
    OUT_REF_N,
    OUT_WIN_END,
    OUT_WIN_N,
    OUT_WIN_START,
)
from bayestream.schema.records import DriftRecord
from bayestream.state import RuleStore


def benjamini_hochberg(p: np.ndarray, q: float) -> np.ndarray:
    """Rejections of the Benjamini-Hochberg step-up procedure at level ``q``: the k smallest
    p-values, k the largest rank with p_(k) <= k q / m. NaN p-values are never rejected and
    are not counted in m."""
    out = np.zeros(p.shape[0], dtype=np.bool_)
    valid = np.flatnonzero(~np.isnan(p))
    m = valid.size
    if m == 0:
        return out
    order = valid[np.argsort(p[valid], kind="stable")]
    below = p[order] <= q * np.arange(1, m + 1) / m
    if below.any():
        k = int(np.flatnonzero(below)[-1]) + 1
        out[order[:k]] = True
    return out


def selection(rule: Rule) -> tuple[str, float]:
    """The rule's selection policy as its anomaly records name it, with its cut-off."""
    if rule.fdr is not None:
        return "fdr", rule.fdr
    if rule.anomaly_probability_threshold is not None:
        return "anomaly_probability", rule.anomaly_probability_threshold
    return "tail_probability", rule.anomaly_threshold


def select_anomalies(rule: Rule, tail: np.ndarray, prob: np.ndarray) -> np.ndarray:
    """Mask of the events (of one rule, one batch) that become anomaly records."""
    policy, cut = selection(rule)
    if policy == "fdr":
        return benjamini_hochberg(tail, cut)
    if policy == "anomaly_probability":
        return prob >= cut
    return tail < cut


def selection_cutoffs(rule: Rule) -> tuple[float, float]:
    """(tail probability, anomaly probability) cut-offs that every event
    :func:`select_anomalies` may select is past: tail <= the first or probability >= the
    second (-1 and 0: no cut-off on that side). Per event, before the batch is known, as the
    kernels need them."""
    policy, cut = selection(rule)
    if policy == "anomaly_probability":
        return -1.0, cut
    return cut, 0.0  # (Benjamini-Hochberg selects no tail probability above its level)


def alerts(
    settings: np.ndarray,
    store: RuleStore,
    slots: np.ndarray,
    tail: np.ndarray,
    selected: np.ndarray,
) -> np.ndarray:
    """Which of a rule's applied events (in order: their ``slots``, ``tail`` probabilities and
    ``selected`` mask) are alerts; advances each stream's alert window in ``store``.
    ``settings`` is the rule's kernel settings vector (:func:`~.decisions.settings`)."""
    out = np.zeros(slots.shape[0], dtype=np.bool_)
    if slots.shape[0]:
        mark_alerts(
            store.params,
            settings,
            np.ascontiguousarray(slots, dtype=np.int64),
            np.ascontiguousarray(tail, dtype=np.float64),
            np.ascontiguousarray(selected, dtype=np.bool_),
            out,
        )
    return out


def drift_records(
    rule: Rule, store: RuleStore, rows: np.ndarray, slot: np.ndarray, scores: np.ndarray
) -> list[tuple[int, DriftRecord]]:
    """Drift records of the rule's applied events ``rows`` (batch indices) that alarmed."""
    if rule.drift is None or rows.size == 0:
        return []
    hits = rows[scores[rows, OUT_ALARM] == 1.0]
    out: list[tuple[int, DriftRecord]] = []
    categories = rule.categories
    for i in hits.tolist():
        key, metric = store.names[int(slot[i])]
        change = float(scores[i, OUT_CHANGE])
        if categories:
            direction = categories[int(change)]
        else:
            direction = "up" if change > 0 else "down" if change < 0 else "none"
        out.append(
            (
                i,
                DriftRecord(
                    key=key,
                    metric=metric,
                    window_start=float(scores[i, OUT_WIN_START]),
                    window_end=float(scores[i, OUT_WIN_END]),
                    kl=float(scores[i, OUT_KL]),
                    false_alarm_probability=float(scores[i, OUT_FAP]),
                    direction=direction,
                    events=float(scores[i, OUT_WIN_N]),
                    reference_events=float(scores[i, OUT_REF_N]),
                    reference=rule.drift.reference,
                ),
            )
        )
    return out


__all__ = [
    "alerts",
    "benjamini_hochberg",
    "drift_records",
    "select_anomalies",
    "selection",
    "selection_cutoffs",
]
