"""Scores of the quality benchmark: pure functions, implemented from the published definitions.

Anomalies: the windowed early-detection score of the Numenta Anomaly Benchmark (Lavin and
Ahmad 2015, "Evaluating real-time anomaly detection algorithms"), standard profile
``A_TP = 1, A_FP = -0.11, A_FN = -1``. Positions are measured in time (seconds), not rows, so
that irregular spacing and gaps do not stretch or shrink a window. For one series with labelled
windows ``[b_k, e_k]`` and detection times ``t``:

- the scaled sigmoid ``sigma(y) = 2 / (1 + exp(5 y)) - 1`` (``-1`` for ``y > 3``), where ``y`` is
  the relative position ``(t - e) / (e - b)``: -1 at a window's start, 0 at its end, > 0 after;
- a window with a detection earns ``A_TP * sigma(y)`` of its *earliest* detection (later
  detections in it earn nothing); a window without one costs ``A_FN``;
- a detection in no window costs ``A_FP * (-sigma(y))`` with ``y`` measured from the end of the
  preceding window (nearly nothing just after a window, the full ``A_FP`` from 3 window widths
  on), or ``A_FP`` when no window precedes it;
- raw scores, and those of the null detector (never fires: ``A_FN`` per window) and of the
  perfect one (fires at every window's start: ``sigma(-1)`` per window), are summed over the
  series of a corpus, then ``score = 100 (S - S_null) / (S_perfect - S_null)``.

Detections before ``scored_from`` (probation) are not scored, nor those in a neutral zone
``[c, c + neutral)`` after a labelled change point ``c`` that fall in no window.

Change points (van den Burg and Williams 2020, "An evaluation of change point detection
algorithms", one annotator): on row indices, with index 0 added to both the true set ``T`` and
the predicted set ``X``, a true change is found when a prediction within ``margin`` rows of it
is still unused (the closest one is used); ``P = TP / |X|``, ``R = TP / |T|``,
``F1 = 2 P R / (P + R)``. Segmentation covering of the true partition ``G`` by the predicted
``G'``: ``C(G', G) = (1 / n) sum_{A in G} |A| max_{A' in G'} |A n A'| / |A u A'|``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

A_TP, A_FP, A_FN = 1.0, -0.11, -1.0


def scaled_sigmoid(y: float) -> float:
    """NAB's ``sigma(y) = 2 / (1 + exp(5 y)) - 1``, and ``-1`` beyond ``y = 3``."""
    if y > 3.0:
        return -1.0
    return 2.0 / (1.0 + math.exp(5.0 * y)) - 1.0


@dataclass(frozen=True)
class Nab:
    """Summable NAB figures of one or more series."""

    raw: float = 0.0
    null: float = 0.0
    perfect: float = 0.0
    tp: int = 0
    fp: int = 0
    fn: int = 0

    def __add__(self, other: Nab) -> Nab:
        return Nab(
            self.raw + other.raw,
            self.null + other.null,
            self.perfect + other.perfect,
            self.tp + other.tp,
            self.fp + other.fp,
            self.fn + other.fn,
        )

    @property
    def score(self) -> float:
        """The normalised score: 0 for the null detector, 100 for the perfect one (NaN when
        there is no window, and no false positive either)."""
        span = self.perfect - self.null
        if span > 0:
            return 100.0 * (self.raw - self.null) / span
        return math.nan if self.raw == 0 else -math.inf


def eligible(
    ts: np.ndarray,
    windows: Sequence[tuple[float, float]],
    change_points: Sequence[float],
    scored_from: float,
    neutral: float,
) -> np.ndarray:
    """Rows whose detections are scored: from ``scored_from`` on, and not in a neutral zone
    after a change point unless they are in a window."""
    keep = ts >= scored_from
    in_window = np.zeros(len(ts), dtype=bool)
    for b, e in windows:
        in_window |= (ts >= b) & (ts <= e)
    for c in change_points:
        keep &= ~((ts >= c) & (ts < c + neutral)) | in_window
    return keep


def nab(detections: np.ndarray, windows: Sequence[tuple[float, float]]) -> Nab:
    """NAB figures of one series: ``detections`` are the (scored) detection times, sorted;
    ``windows`` are disjoint ``(start, end)`` pairs."""
    wins = sorted(windows)
    det = np.asarray(detections, dtype=np.float64)
    raw, tp, fn = 0.0, 0, 0
    outside = np.ones(len(det), dtype=bool)
    for b, e in wins:
        lo, hi = np.searchsorted(det, b, "left"), np.searchsorted(det, e, "right")
        outside[lo:hi] = False
        if hi > lo:
            tp += 1
            raw += A_TP * scaled_sigmoid((det[lo] - e) / (e - b))
        else:
            fn += 1
            raw += A_FN
    fps = det[outside]
    if len(wins):
        ends = np.array([e for _, e in wins])
        widths = np.array([e - b for b, e in wins])
        before = np.searchsorted(ends, fps, "left") - 1  # the last window ending before t
    else:
        ends = widths = np.zeros(0)
        before = np.full(len(fps), -1)
    for t, k in zip(fps.tolist(), before.tolist(), strict=True):
        raw += A_FP if k < 0 else A_FP * -scaled_sigmoid((t - ends[k]) / widths[k])
    n = len(wins)
    return Nab(raw, A_FN * n, A_TP * scaled_sigmoid(-1.0) * n, tp, len(fps), fn)


@dataclass(frozen=True)
class Labelled:
    """One series' labels, as the anomaly score needs them."""

    ts: np.ndarray
    windows: tuple[tuple[float, float], ...]
    mask: np.ndarray  # eligible rows (see :func:`eligible`)


def sweep(
    scores: Sequence[np.ndarray], series: Sequence[Labelled], thresholds: Iterable[float]
) -> list[tuple[float, list[Nab]]]:
    """For each threshold, the per-series NAB figures of detections ``score >= threshold``
    (NaN scores never detect)."""
    out = []
    for thr in thresholds:
        per = []
        for s, lab in zip(scores, series, strict=True):
            with np.errstate(invalid="ignore"):
                hit = (s >= thr) & lab.mask
            per.append(nab(lab.ts[hit], lab.windows))
        out.append((float(thr), per))
    return out


def candidate_thresholds(scores: Sequence[np.ndarray], count: int = 80) -> np.ndarray:
    """Thresholds to sweep: observed scores at quantiles of the pooled finite scores, denser
    in the upper tail (detectors fire on a small fraction of rows), and the largest score."""
    pooled = np.concatenate([s[np.isfinite(s)] for s in scores] or [np.zeros(0)])
    if not len(pooled):
        return np.zeros(0)
    q = 1.0 - np.logspace(0, -5, count)  # 0 ... 0.99999
    picked = np.quantile(pooled, np.clip(q, 0, 1), method="higher")  # observed scores only
    return np.unique(np.append(picked, pooled.max()))


# --- change points ------------------------------------------------------------------------


def true_positives(truth: Sequence[int], predicted: Sequence[int], margin: int) -> int:
    """Number of true change points matched by a distinct prediction within ``margin`` rows
    (each true change in order takes the closest unused prediction)."""
    unused = sorted(set(predicted))
    found = 0
    for tau in sorted(set(truth)):
        close = [x for x in unused if abs(x - tau) <= margin]
        if close:
            unused.remove(min(close, key=lambda x: (abs(x - tau), x)))
            found += 1
    return found


def f1_margin(truth: Sequence[int], predicted: Sequence[int], margin: int) -> dict[str, float]:
    """Precision, recall and F1 with index 0 added to both sets (the TCPD convention)."""
    t = sorted({0, *truth})
    x = sorted({0, *predicted})
    tp = true_positives(t, x, margin)
    precision, recall = tp / len(x), tp / len(t)
    f1 = 0.0 if tp == 0 else 2 * precision * recall / (precision + recall)
    return {"precision": precision, "recall": recall, "f1": f1}


def _segments(bounds: Sequence[int], n: int) -> np.ndarray:
    cuts = sorted({0, n, *(b for b in bounds if 0 < b < n)})
    return np.array(list(itertools.pairwise(cuts)), dtype=np.int64)


def covering(truth: Sequence[int], predicted: Sequence[int], n: int) -> float:
    """Segmentation covering of the true partition of ``range(n)`` (cut at ``truth``) by the
    predicted one (cut at ``predicted``)."""
    g, gp = _segments(truth, n), _segments(predicted, n)
    total = 0.0
    for a0, a1 in g.tolist():
        inter = np.minimum(gp[:, 1], a1) - np.maximum(gp[:, 0], a0)
        union = np.maximum(gp[:, 1], a1) - np.minimum(gp[:, 0], a0)
        jac = np.where(inter > 0, inter / union, 0.0)
        total += (a1 - a0) * float(jac.max())
    return total / n


__all__ = [
    "A_FN",
    "A_FP",
    "A_TP",
    "Labelled",
    "Nab",
    "candidate_thresholds",
    "covering",
    "eligible",
    "f1_margin",
    "nab",
    "scaled_sigmoid",
    "sweep",
    "true_positives",
]
