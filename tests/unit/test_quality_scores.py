"""The quality benchmark's scores against hand-computed values of their definitions."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from benchmarks.quality_scores import (
    A_FP,
    Labelled,
    Nab,
    candidate_thresholds,
    covering,
    eligible,
    f1_margin,
    nab,
    scaled_sigmoid,
    sweep,
    true_positives,
)

S1 = 2 / (1 + math.exp(-5)) - 1  # sigma(-1): a detection at a window's start


def test_scaled_sigmoid_values() -> None:
    assert scaled_sigmoid(-1.0) == pytest.approx(0.9866142981514305, abs=1e-15)
    assert scaled_sigmoid(0.0) == 0.0
    assert scaled_sigmoid(1.0) == pytest.approx(2 / (1 + math.exp(5)) - 1, abs=1e-15)
    assert scaled_sigmoid(3.0) == pytest.approx(2 / (1 + math.exp(15)) - 1, abs=1e-15)
    assert scaled_sigmoid(3.01) == -1.0


def test_nab_null_and_perfect_detectors() -> None:
    windows = [(100.0, 200.0), (500.0, 600.0)]
    null = nab(np.zeros(0), windows)
    assert (null.raw, null.null, null.tp, null.fp, null.fn) == (-2.0, -2.0, 0, 0, 2)
    assert null.score == 0.0
    perfect = nab(np.array([100.0, 500.0]), windows)
    assert perfect.raw == pytest.approx(2 * S1)
    assert perfect.score == pytest.approx(100.0)


def test_nab_earliest_detection_counts_and_later_ones_are_free() -> None:
    # window [100, 200]: detections at 150 (y = -0.5) and 180: only 150 counts
    r = nab(np.array([150.0, 180.0]), [(100.0, 200.0)])
    sig = 2 / (1 + math.exp(-2.5)) - 1
    assert r.raw == pytest.approx(sig)
    assert (r.tp, r.fp, r.fn) == (1, 0, 0)
    assert r.score == pytest.approx(100 * (sig + 1) / (S1 + 1))


def test_nab_false_positives_weighted_by_distance_from_the_preceding_window() -> None:
    # before any window: the full A_FP; 50 s after a 100 s window (y = 0.5): A_FP * -sigma(0.5);
    # 400 s after it (y = 4 > 3): the full A_FP again
    r = nab(np.array([10.0, 250.0, 600.0]), [(100.0, 200.0)])
    expected = A_FP + A_FP * -(2 / (1 + math.exp(2.5)) - 1) + A_FP + -1.0  # window missed
    assert r.raw == pytest.approx(expected)
    assert (r.tp, r.fp, r.fn) == (0, 3, 1)


def test_nab_without_windows_counts_only_false_positives() -> None:
    r = nab(np.array([1.0, 2.0]), [])
    assert r.raw == pytest.approx(2 * A_FP)
    assert (r.null, r.perfect) == (0.0, 0.0)
    assert r.score == -math.inf
    assert math.isnan(nab(np.zeros(0), []).score)


def test_nab_sums_over_series_before_normalising() -> None:
    a = nab(np.array([100.0]), [(100.0, 200.0)])  # perfect
    b = nab(np.array([5.0]), [])  # a false positive on a control
    total = a + b
    assert total.score == pytest.approx(100 * (S1 + A_FP + 1) / (S1 + 1))
    assert (total.tp, total.fp, total.fn) == (1, 1, 0)
    assert Nab() + a == a


def test_eligible_probation_and_neutral_zone() -> None:
    ts = np.arange(0.0, 10.0)
    mask = eligible(ts, [(6.0, 6.0)], [5.0], scored_from=2.0, neutral=3.0)
    # rows 0, 1 in probation; 5, 7 in the neutral zone [5, 8); 6 in a window stays scored
    assert mask.tolist() == [False, False, True, True, True, False, True, False, True, True]


def test_sweep_and_thresholds() -> None:
    ts = np.arange(0.0, 10.0)
    lab = Labelled(ts, ((4.0, 6.0),), np.ones(10, dtype=bool))
    score = np.array([0, 0, 0.5, 0, 0.9, 0, 0, 0, 0, np.nan])
    results = dict(sweep([score], [lab], [0.95, 0.9, 0.5]))
    assert results[0.95][0].score == 0.0  # never fires
    assert results[0.9][0].score == pytest.approx(100.0)  # at the window's start only
    assert (results[0.5][0].tp, results[0.5][0].fp) == (1, 1)
    thresholds = candidate_thresholds([score])
    assert thresholds.tolist() == [0.0, 0.5, 0.9]  # the observed scores, NaN left out


def test_true_positives_each_prediction_used_once() -> None:
    assert true_positives([10, 12], [11], margin=2) == 1
    assert true_positives([10, 12], [11, 13], margin=2) == 2
    assert true_positives([10], [20], margin=5) == 0
    assert true_positives([10], [15], margin=5) == 1  # the margin is inclusive


def test_f1_margin_hand_computed() -> None:
    # T = {0, 50}, X = {0, 52, 80}: TP = 2, P = 2/3, R = 1, F1 = 0.8
    r = f1_margin([50], [52, 80], margin=5)
    assert r["precision"] == pytest.approx(2 / 3)
    assert r["recall"] == 1.0
    assert r["f1"] == pytest.approx(0.8)
    # no prediction: P = 1 (only 0), R = 1/2, F1 = 2/3
    assert f1_margin([50], [], margin=5)["f1"] == pytest.approx(2 / 3)
    # a control without change: silence is perfect, each alarm costs precision
    assert f1_margin([], [], margin=5)["f1"] == 1.0
    assert f1_margin([], [30], margin=5)["f1"] == pytest.approx(2 * 0.5 / 1.5)


def test_covering_hand_computed() -> None:
    # G = [0,5),[5,10); G' = [0,4),[4,10): (5 * 4/5 + 5 * 5/6) / 10
    assert covering([5], [4], 10) == pytest.approx((4 + 25 / 6) / 10)
    assert covering([5], [5], 10) == 1.0
    # no prediction: G' = [0,10): (5 * 0.5 + 5 * 0.5) / 10
    assert covering([5], [], 10) == pytest.approx(0.5)
    # over-segmentation: G = [0,10), G' = ten single rows: max Jaccard 1/10
    assert covering([], list(range(1, 10)), 10) == pytest.approx(0.1)


# --- the generator's labels, as the scores rely on them ---------------------------------


def test_corpus_is_seeded_and_its_labels_are_scorable() -> None:
    from benchmarks.telemetry import MIN_SEPARATION, corpus

    first, again, other = corpus(7, 2, quick=True), corpus(7, 2, quick=True), corpus(8, 2, True)
    assert [s.name for s in first] == [s.name for s in again]
    for a, b in zip(first, again, strict=True):
        assert np.array_equal(a.ts, b.ts) and np.array_equal(a.values, b.values)
        assert a.anomalies == b.anomalies and a.change_points == b.change_points
    assert any(not np.array_equal(a.values, b.values) for a, b in zip(first, other, strict=True))
    for s in first:
        assert np.all(np.diff(s.ts) > 0) and np.all(np.isfinite(s.values))
        labels = sorted([b for b, _ in s.anomalies] + list(s.change_points))
        assert all(s.scored_from < t < s.ts[-1] for t in labels)
        assert np.all(np.diff(labels) >= MIN_SEPARATION)
        assert all(b < e for b, e in s.anomalies)
        for (_, end), (start, _) in itertools.pairwise(s.anomalies):
            assert end < start  # disjoint windows, as nab() requires
        if s.archetype in ("two_level", "weekly_control"):
            assert not s.anomalies and not s.change_points
        if s.kind == "count":
            assert np.all(s.values >= 0) and np.array_equal(s.values, np.round(s.values))
