"""Join labels ``(key, metric, ts, is_anomaly)`` to scored events on the exact triple.

A label matches a scored event when key, metric and event time are all equal; times are float
seconds compared exactly (as parsed: ``0.0 == -0.0``, and a NaN time matches nothing). When
several scores share a triple, the label takes the last of them in input order (a re-scored
event is published after the earlier score). Every label row is matched on its own, so a
duplicated label counts twice. Unmatched labels are counted and reported by index; unmatched
scores are ignored.

The join is sort-based and vectorised: keys and metrics are coded by ``np.unique`` over both
inputs, all rows are sorted by (key, metric, ts, scores before labels, input order), and each
label reads the last score row at or before it through a running maximum; it matches when that
row lies in the same (key, metric, ts) group. Cost ``O((n + m) log(n + m))``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike


def _column(values: ArrayLike, name: str, n: int | None) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 1 or (n is not None and array.shape[0] != n):
        raise ValueError(f"{name} must be a vector of the same length as the other columns")
    return array


@dataclass(frozen=True, init=False)
class ScoredEvents:
    """Columns of scored events: stream key, metric, event time (s), anomaly probability."""

    key: np.ndarray
    metric: np.ndarray
    ts: np.ndarray
    anomaly_probability: np.ndarray

    def __init__(
        self, key: ArrayLike, metric: ArrayLike, ts: ArrayLike, anomaly_probability: ArrayLike
    ) -> None:
        k = _column(key, "key", None)
        object.__setattr__(self, "key", k)
        object.__setattr__(self, "metric", _column(metric, "metric", k.shape[0]))
        object.__setattr__(self, "ts", _column(ts, "ts", k.shape[0]).astype(np.float64))
        p = _column(anomaly_probability, "anomaly_probability", k.shape[0]).astype(np.float64)
        object.__setattr__(self, "anomaly_probability", p)


@dataclass(frozen=True, init=False)
class LabelEvents:
    """Columns of labels: stream key, metric, event time (s), whether it was an anomaly."""

    key: np.ndarray
    metric: np.ndarray
    ts: np.ndarray
    is_anomaly: np.ndarray

    def __init__(
        self, key: ArrayLike, metric: ArrayLike, ts: ArrayLike, is_anomaly: ArrayLike
    ) -> None:
        k = _column(key, "key", None)
        object.__setattr__(self, "key", k)
        object.__setattr__(self, "metric", _column(metric, "metric", k.shape[0]))
        object.__setattr__(self, "ts", _column(ts, "ts", k.shape[0]).astype(np.float64))
        y = _column(is_anomaly, "is_anomaly", k.shape[0])
        if y.dtype != np.bool_:
            if np.any((y != 0) & (y != 1)):
                raise ValueError("is_anomaly must be boolean, 0 or 1")
            y = y.astype(np.bool_)
        object.__setattr__(self, "is_anomaly", y)


@dataclass(frozen=True)
class LabelJoin:
    """Labels matched to scores. Matched rows are in the order of the labels."""

    label_index: np.ndarray  # int64: the matched label rows, ascending
    score_index: np.ndarray  # int64: the score row each of them matched
    metric: np.ndarray  # the metric of each matched row (to report per rule)
    anomaly_probability: np.ndarray  # float64: the score's probability
    is_anomaly: np.ndarray  # bool: the label
    unmatched_label_index: np.ndarray  # int64: label rows with no score, ascending

    @property
    def matched(self) -> int:
        return int(self.label_index.shape[0])

    @property
    def unmatched_labels(self) -> int:
        return int(self.unmatched_label_index.shape[0])


def join_labels(scores: ScoredEvents, labels: LabelEvents) -> LabelJoin:
    """Match every label to the score of the same (key, metric, ts); see the module docstring."""
    n, m = scores.key.shape[0], labels.key.shape[0]
    _, key_code = np.unique(np.concatenate([scores.key, labels.key]), return_inverse=True)
    _, metric_code = np.unique(np.concatenate([scores.metric, labels.metric]), return_inverse=True)
    ts = np.concatenate([scores.ts, labels.ts])
    is_label = np.concatenate([np.zeros(n, np.int8), np.ones(m, np.int8)])
    row = np.arange(n + m)
    order = np.lexsort((row, is_label, ts, metric_code, key_code))
    key_s, metric_s, ts_s, label_s = key_code[order], metric_code[order], ts[order], is_label[order]

    new_group = np.ones(n + m, dtype=np.bool_)
    new_group[1:] = (key_s[1:] != key_s[:-1]) | (metric_s[1:] != metric_s[:-1])
    new_group[1:] |= ts_s[1:] != ts_s[:-1]  # NaN != NaN: a NaN time is a group of its own
    group = np.cumsum(new_group)
    last_score = np.maximum.accumulate(np.where(label_s == 0, np.arange(n + m), -1))

    at = np.flatnonzero(label_s == 1)  # sorted positions of the labels
    candidate = last_score[at]
    hit = candidate >= 0
    hit[hit] = group[candidate[hit]] == group[at[hit]]
    label_rows = order[at] - n
    matched = np.argsort(label_rows[hit], kind="stable")
    label_index = label_rows[hit][matched].astype(np.int64)
    score_index = order[candidate[hit]][matched].astype(np.int64)
    return LabelJoin(
        label_index=label_index,
        score_index=score_index,
        metric=labels.metric[label_index],
        anomaly_probability=scores.anomaly_probability[score_index],
        is_anomaly=labels.is_anomaly[label_index],
        unmatched_label_index=np.sort(label_rows[~hit]).astype(np.int64),
    )


__all__ = ["LabelEvents", "LabelJoin", "ScoredEvents", "join_labels"]
