"""Calibration monitoring: PIT histogram, coverage, labels join, reliability.

Statistical checks use fixed seeds and tolerances of 4 standard errors derived from the
binomial (or weighted-binomial) variance of the quantity checked; the oracles are scipy's normal
distribution, naive pure-Python loops, and hand computation.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import stats

import bayestream.calibration as calibration
from bayestream.calibration import (
    CoverageMonitor,
    LabelEvents,
    PitMonitor,
    ReliabilityMonitor,
    ScoredEvents,
    join_labels,
    reliability,
)
from bayestream.errors import StateError

Z = 4.0  # tolerance in standard errors


def _cuts(rng: np.random.Generator, n: int, k: int) -> list[int]:
    return [0, *sorted(rng.choice(np.arange(1, n), size=k, replace=False).tolist()), n]


def _normal_pit(rng: np.random.Generator, n: int, scale: float) -> np.ndarray:
    """PITs of x ~ N(0, 1) under the predictive N(0, scale^2)."""
    return stats.norm.cdf(rng.standard_normal(n) / scale)


# --- PIT histogram --------------------------------------------------------------------------


def naive_histogram(pit: list[float], bins: int, half_life: float) -> list[float]:
    """[W, S, counts...] by the docstring's recursion, one value at a time in plain Python."""
    d = 2.0 ** (-1.0 / half_life)
    counts = [0.0] * bins
    w = s = 0.0
    for u in pit:
        if math.isnan(u):
            continue
        b = min(int(u * bins), bins - 1)
        if d != 1.0:
            counts = [c * d for c in counts]
        counts[b] += 1.0
        w = w * d + 1.0
        s = s * (d * d) + 1.0
    return [w, s, *counts]


def test_public_names() -> None:
    assert set(calibration.__all__) == {
        "CoverageMonitor",
        "CoverageRow",
        "LabelEvents",
        "LabelJoin",
        "PitMonitor",
        "Reliability",
        "ReliabilityBin",
        "ReliabilityMonitor",
        "ScoredEvents",
        "Uniformity",
        "join_labels",
        "reliability",
    }


@pytest.mark.parametrize("half_life", [math.inf, 7.0])
def test_pit_kernel_equals_naive_reference(half_life: float) -> None:
    rng = np.random.default_rng(1)
    pit = rng.uniform(size=500)
    pit[::17] = np.nan
    pit[3], pit[5], pit[8] = 0.0, 1.0, 0.5
    monitor = PitMonitor(bins=7, half_life=half_life)
    monitor.update(pit)
    assert monitor.state()[3:] == naive_histogram(pit.tolist(), 7, half_life)


def test_half_life_counts_valid_events() -> None:
    monitor = PitMonitor(bins=10, half_life=50.0)
    monitor.update([0.01])
    monitor.update(np.full(20, np.nan))  # skipped: no decay
    monitor.update(np.full(50, 0.55))
    counts = monitor.counts
    assert counts[0] == pytest.approx(0.5, rel=1e-12)
    assert counts[5] == pytest.approx((1 - 0.5) / (1 - 2 ** (-1 / 50)), rel=1e-12)
    assert monitor.total_weight == pytest.approx(counts.sum(), rel=1e-12)


def test_well_specified_predictive_gives_uniform_histogram() -> None:
    n, bins = 50_000, 10
    monitor = PitMonitor(bins=bins, half_life=math.inf)
    monitor.update(_normal_pit(np.random.default_rng(2), n, scale=1.0))
    se = math.sqrt(n * (1 / bins) * (1 - 1 / bins))
    assert np.all(np.abs(monitor.counts - n / bins) <= Z * se)
    assert monitor.effective_count == n == monitor.total_weight
    u = monitor.uniformity()
    assert u.dof == bins - 1
    assert u.p_value > 1e-3
    # without forgetting the statistic is Pearson's chi-square
    pearson = stats.chisquare(monitor.counts).statistic
    assert u.statistic == pytest.approx(pearson, rel=1e-9)


def test_decayed_statistic_is_calibrated_on_the_effective_count() -> None:
    """Under uniformity E[X2] = B - 1 exactly for any weights (module docstring); with W in
    place of n_eff it would be about (B - 1) / 2. Var(X2) ~ 2 (B - 1) sets the tolerance."""
    reps, n, bins, half_life = 400, 4_000, 10, 400.0
    rng = np.random.default_rng(3)
    statistics, p_values = [], []
    for _ in range(reps):
        monitor = PitMonitor(bins=bins, half_life=half_life)
        monitor.update(rng.uniform(size=n))
        u = monitor.uniformity()
        statistics.append(u.statistic)
        p_values.append(u.p_value)
    d = 2 ** (-1 / half_life)
    w, s = (1 - d**n) / (1 - d), (1 - d ** (2 * n)) / (1 - d**2)
    assert u.effective_count == pytest.approx(w * w / s, rel=1e-9)  # ~ (1 + d) / (1 - d)
    assert abs(np.mean(statistics) - (bins - 1)) <= Z * math.sqrt(2 * (bins - 1) / reps)
    rejected = np.mean(np.array(p_values) < 0.05)
    assert abs(rejected - 0.05) <= Z * math.sqrt(0.05 * 0.95 / reps)


@pytest.mark.parametrize("scale", [0.6, 1.6])
def test_miscalibrated_predictive_is_detected(scale: float) -> None:
    """Too narrow (0.6) gives a U shape, too wide (1.6) a hump; each bin's probability under
    x ~ N(0, 1) is Phi(scale Phi^-1(b)) - Phi(scale Phi^-1(a))."""
    n, bins = 20_000, 10
    monitor = PitMonitor(bins=bins, half_life=math.inf)
    monitor.update(_normal_pit(np.random.default_rng(4), n, scale))
    edges = stats.norm.cdf(scale * stats.norm.ppf(monitor.edges))
    expected = np.diff(edges)
    se = np.sqrt(n * expected * (1 - expected))
    assert np.all(np.abs(monitor.counts - n * expected) <= Z * se)
    density = monitor.density()
    outer, middle = density[[0, -1]].mean(), density[4:6].mean()
    assert (outer > 2 * middle) if scale < 1 else (middle > 1.5 * outer)
    assert monitor.uniformity().p_value < 1e-12


def test_pit_batch_invariance() -> None:
    rng = np.random.default_rng(5)
    pit = rng.uniform(size=3_000)
    pit[rng.uniform(size=3_000) < 0.1] = np.nan
    whole = PitMonitor(half_life=300.0)
    whole.update(pit)
    for trial in range(5):
        cut = _cuts(rng, pit.size, 1 + 10 * trial)
        pieces = PitMonitor(half_life=300.0)
        for a, b in itertools.pairwise(cut):
            pieces.update(pit[a:b])
        assert pieces.state() == whole.state()  # bit for bit
    single = PitMonitor(half_life=300.0)
    for u in pit[:200]:
        single.update([u])
    head = PitMonitor(half_life=300.0)
    head.update(pit[:200])
    assert single.state() == head.state()


def test_pit_state_round_trip() -> None:
    rng = np.random.default_rng(6)
    monitor = PitMonitor(bins=12, half_life=123.0)
    monitor.update(rng.uniform(size=1_000))
    state = monitor.state()
    assert all(type(v) is float for v in state)
    restored = PitMonitor.from_state(state)
    assert restored.state() == state
    assert (restored.bins, restored.half_life) == (12, 123.0)
    more = rng.uniform(size=500)
    monitor.update(more)
    restored.update(more)
    assert restored.state() == monitor.state()
    assert PitMonitor.from_state(PitMonitor(half_life=math.inf).state()).half_life == math.inf
    for bad in ([], [2.0, *state[1:]], state[:-1], [*state[:5], math.nan, *state[6:]]):
        with pytest.raises(StateError):
            PitMonitor.from_state(bad)


def test_pit_rejects_bad_input() -> None:
    monitor = PitMonitor()
    for values in ([1.5], [-0.1], [np.inf], [[0.5]]):
        with pytest.raises(ValueError):
            monitor.update(values)
    assert monitor.total_weight == 0.0
    assert math.isnan(monitor.uniformity().p_value)
    for bins, half_life in ((1, 10.0), (2.5, 10.0), (10, 0.0), (10, -1.0), (10, math.nan)):
        with pytest.raises(ValueError):
            PitMonitor(bins, half_life)  # type: ignore[arg-type]


# --- coverage -------------------------------------------------------------------------------

QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)


def test_coverage_checks_pair_quantiles_into_intervals() -> None:
    monitor = CoverageMonitor((0.99, 0.5, 0.05, 0.95), interval_levels=(0.9, 0.8))
    rows = monitor.report()
    assert [(r.kind, r.level) for r in rows] == [
        ("interval", 0.8),
        ("interval", 0.9),  # from the 0.05/0.95 pair; the explicit 0.9 is the same interval
        ("quantile", 0.05),
        ("quantile", 0.5),
        ("quantile", 0.95),
        ("quantile", 0.99),
    ]
    assert (rows[1].lower, rows[1].upper) == (0.05, 0.95)
    assert (rows[0].lower, rows[0].upper) == pytest.approx((0.1, 0.9))
    assert all(math.isnan(r.observed) for r in rows)
    with pytest.raises(ValueError):
        CoverageMonitor((0.0, 0.5))


def test_coverage_without_levels_counts_and_reports_nothing() -> None:
    """A rule may publish no quantiles (predictive_quantiles = []): nothing to check."""
    monitor = CoverageMonitor((), half_life=math.inf)
    monitor.update(np.array([0.1, np.nan, 0.7]))
    assert monitor.report() == []
    assert monitor.total_weight == 2.0
    again = CoverageMonitor.from_state(monitor.state())
    assert again.report() == [] and again.total_weight == 2.0


def test_coverage_bounds_are_inclusive() -> None:
    monitor = CoverageMonitor((0.05, 0.95), half_life=math.inf)
    monitor.update([0.05, 0.95, 0.0499, 0.9501])
    interval, q05, q95 = monitor.report()
    assert interval.observed == 0.5
    assert q05.observed == 0.5  # 0.05 and 0.0499 are at or below
    assert q95.observed == 0.75


def test_coverage_from_pit_equals_coverage_of_the_published_quantiles() -> None:
    """Oracle: count x against the predictive's quantile values themselves."""
    rng = np.random.default_rng(7)
    x = rng.standard_normal(10_000)
    monitor = CoverageMonitor(QUANTILES, half_life=math.inf)
    monitor.update(stats.norm.cdf(x))
    for row in monitor.report():
        lo = -np.inf if row.kind == "quantile" else stats.norm.ppf(row.lower)
        inside = (x >= lo) & (x <= stats.norm.ppf(row.upper))
        assert row.observed == inside.mean()


@pytest.mark.parametrize("half_life", [math.inf, 3_000.0])
def test_well_specified_coverage_is_nominal(half_life: float) -> None:
    monitor = CoverageMonitor(QUANTILES, interval_levels=(0.8,), half_life=half_life)
    monitor.update(_normal_pit(np.random.default_rng(8), 40_000, scale=1.0))
    for row in monitor.report():
        assert row.stderr == pytest.approx(
            math.sqrt(row.level * (1 - row.level) / monitor.effective_count)
        )
        assert abs(row.observed - row.level) <= Z * row.stderr, row


def test_too_narrow_predictive_undercovers() -> None:
    """With the predictive N(0, 0.6^2) for x ~ N(0, 1), the central interval of level L holds
    x with probability 2 Phi(0.6 z) - 1, z = Phi^-1((1 + L) / 2)."""
    n, scale = 20_000, 0.6
    monitor = CoverageMonitor(QUANTILES, half_life=math.inf)
    monitor.update(_normal_pit(np.random.default_rng(9), n, scale))
    for row in monitor.report():
        if row.kind == "interval":
            truth = 2 * stats.norm.cdf(scale * stats.norm.ppf((1 + row.level) / 2)) - 1
        else:
            truth = stats.norm.cdf(scale * stats.norm.ppf(row.level))
        assert abs(row.observed - truth) <= Z * math.sqrt(truth * (1 - truth) / n)
        if row.kind == "interval":
            assert row.observed < row.level - 10 * row.stderr  # detected


def test_coverage_batch_invariance_and_state_round_trip() -> None:
    rng = np.random.default_rng(10)
    pit = rng.uniform(size=2_000)
    pit[::13] = np.nan
    whole = CoverageMonitor(QUANTILES, interval_levels=(0.8,), half_life=250.0)
    whole.update(pit)
    cut = _cuts(rng, pit.size, 40)
    pieces = CoverageMonitor(QUANTILES, interval_levels=(0.8,), half_life=250.0)
    for a, b in itertools.pairwise(cut):
        pieces.update(pit[a:b])
        if a == cut[20]:
            pieces = CoverageMonitor.from_state(pieces.state())
    assert pieces.state() == whole.state()
    assert CoverageMonitor.from_state(whole.state()).report() == whole.report()
    state = whole.state()
    for bad in ([], state[:-1], [*state, 0.0], [1.0, 10.0, 3.0, 0.5]):
        with pytest.raises(StateError):
            CoverageMonitor.from_state(bad)


# --- reliability ----------------------------------------------------------------------------


def test_reliability_hand_computed() -> None:
    # bins of 0.2: [0.1] y=0 | [0.25, 0.35] y=0,1 | empty | [0.7] y=1 | [1.0] y=1
    r = reliability([0.1, 0.25, 0.35, 0.7, 1.0], [0, 0, 1, 1, 1], bins=5)
    assert r.count == 5
    assert r.brier == pytest.approx((0.01 + 0.0625 + 0.4225 + 0.09 + 0.0) / 5, abs=1e-15)
    # gaps 0.1, |0.3 - 0.5| = 0.2, -, 0.3, 0, weighted by 1, 2, 0, 1, 1 out of 5
    assert r.ece == pytest.approx((0.1 + 2 * 0.2 + 0.3 + 0.0) / 5, abs=1e-15)
    assert r.mce == pytest.approx(0.3, abs=1e-15)
    assert [b.count for b in r.table] == [1, 2, 0, 1, 1]
    assert [b.lower for b in r.table] == pytest.approx([0.0, 0.2, 0.4, 0.6, 0.8])
    assert [b.upper for b in r.table] == pytest.approx([0.2, 0.4, 0.6, 0.8, 1.0])
    assert r.table[1].mean_probability == pytest.approx(0.3)
    assert r.table[1].observed_frequency == 0.5
    assert math.isnan(r.table[2].mean_probability)
    assert math.isnan(r.table[2].observed_frequency)


def _bin_noise(p: np.ndarray, bins: int) -> tuple[np.ndarray, np.ndarray]:
    """Per bin: count, and sd of the observed frequency given p: sqrt(sum p(1-p)) / n_b."""
    b = np.minimum((p * bins).astype(int), bins - 1)
    count = np.bincount(b, minlength=bins).astype(float)
    var = np.bincount(b, weights=p * (1 - p), minlength=bins)
    return count, np.sqrt(var) / count


def test_calibrated_probabilities_have_small_ece() -> None:
    rng = np.random.default_rng(11)
    n, bins = 20_000, 10
    p = rng.uniform(size=n)
    y = rng.uniform(size=n) < p
    r = reliability(p, y, bins)
    count, sd = _bin_noise(p, bins)
    bound = float(np.sum(count / n * Z * sd))  # every gap within Z sd of 0
    assert r.ece <= bound
    assert r.mce <= Z * sd.max()
    # E[Brier] = E[p (1 - p)] given p; Var((p - y)^2 | p) = p (1 - p) (1 - 2p)^2
    expected = np.mean(p * (1 - p))
    assert abs(r.brier - expected) <= Z * math.sqrt(np.sum(p * (1 - p) * (1 - 2 * p) ** 2)) / n


def test_miscalibrated_probabilities_have_large_ece() -> None:
    """Labels ~ Bernoulli(p^2): each bin's frequency tends to mean(p^2), ECE to about 1/6."""
    rng = np.random.default_rng(12)
    n, bins = 20_000, 10
    p = rng.uniform(size=n)
    y = rng.uniform(size=n) < p**2
    r = reliability(p, y, bins)
    b = np.minimum((p * bins).astype(int), bins - 1)
    count = np.bincount(b, minlength=bins)
    truth = np.abs(np.bincount(b, p, bins) - np.bincount(b, p**2, bins)) / count
    sd = np.sqrt(np.bincount(b, p**2 * (1 - p**2), bins)) / count
    assert abs(r.ece - np.sum(count / n * truth)) <= np.sum(count / n * Z * sd)
    calibrated_bound = float(np.sum(count / n * Z * _bin_noise(p, bins)[1]))
    assert r.ece > 3 * calibrated_bound
    assert r.ece == pytest.approx(1 / 6, abs=0.02)


def test_reliability_monitor_equals_the_function_whatever_the_batches() -> None:
    rng = np.random.default_rng(13)
    p = rng.uniform(size=3_000)
    y = (rng.uniform(size=3_000) < p).astype(int)
    p[::29] = np.nan  # no score: skipped
    once = reliability(p, y, bins=8)
    assert once.count == np.count_nonzero(~np.isnan(p))
    monitor = ReliabilityMonitor(bins=8)
    cut = _cuts(rng, p.size, 25)
    for a, b in itertools.pairwise(cut):
        monitor.update(p[a:b], y[a:b])
    assert monitor.report() == once  # bit for bit (NaN-free fields compared exactly)
    restored = ReliabilityMonitor.from_state(monitor.state())
    assert restored.state() == monitor.state()
    assert restored.report() == once
    with pytest.raises(StateError):
        ReliabilityMonitor.from_state(monitor.state()[:-1])


def test_reliability_rejects_bad_input_and_reports_nothing_when_empty() -> None:
    with pytest.raises(ValueError):
        reliability([0.5, 1.2], [0, 1])
    with pytest.raises(ValueError):
        reliability([0.5, 0.2], [0, 2])
    with pytest.raises(ValueError):
        reliability([0.5], [0, 1])
    with pytest.raises(ValueError):
        ReliabilityMonitor(bins=0)
    empty = ReliabilityMonitor().report()
    assert empty.count == 0
    assert math.isnan(empty.brier) and math.isnan(empty.ece) and math.isnan(empty.mce)


# --- labels join ----------------------------------------------------------------------------


def test_join_small_example() -> None:
    scores = ScoredEvents(
        key=["a", "a", "b", "a", "a"],
        metric=["x", "x", "x", "y", "x"],
        ts=[1.0, 2.0, 1.0, 1.0, 2.0],
        anomaly_probability=[0.1, 0.2, 0.3, 0.4, 0.25],
    )
    labels = LabelEvents(
        key=["a", "b", "a", "b", "a", "a", "a", "a"],
        metric=["x", "x", "x", "y", "x", "x", "y", "x"],
        ts=[2.0, 1.0, 1.0, 1.0, 3.0, math.nan, 1.0, 1.0],
        is_anomaly=[1, 0, 1, 1, 1, 0, 0, 1],
    )
    joined = join_labels(scores, labels)
    assert joined.label_index.tolist() == [0, 1, 2, 6, 7]
    # (a, x, 2.0) has two scores: the later one (row 4) wins; label 7 repeats label 2
    assert joined.score_index.tolist() == [4, 2, 0, 3, 0]
    assert joined.anomaly_probability.tolist() == [0.25, 0.3, 0.1, 0.4, 0.1]
    assert joined.is_anomaly.tolist() == [True, False, True, False, True]
    assert joined.metric.tolist() == ["x", "x", "x", "y", "x"]
    assert joined.unmatched_label_index.tolist() == [3, 4, 5]  # no (b, y), no ts 3, NaN ts
    assert (joined.matched, joined.unmatched_labels) == (5, 3)


def naive_join(scores: ScoredEvents, labels: LabelEvents) -> tuple[list[int], list[int]]:
    latest: dict[tuple[str, str, float], int] = {}
    for i, triple in enumerate(zip(scores.key, scores.metric, scores.ts.tolist(), strict=True)):
        latest[triple] = i  # later rows overwrite: the last score wins
    matched = []
    for j, triple in enumerate(zip(labels.key, labels.metric, labels.ts.tolist(), strict=True)):
        if triple in latest:
            matched.append((j, latest[triple]))
    return [j for j, _ in matched], [i for _, i in matched]


def test_join_equals_naive_reference() -> None:
    rng = np.random.default_rng(14)
    keys, metrics = np.array(["k0", "k1", "k2", "k10"]), np.array(["lat", "err"])
    n, m = 400, 300
    scores = ScoredEvents(
        rng.choice(keys, n),
        rng.choice(metrics, n),
        rng.integers(0, 40, n) * 0.5,
        rng.uniform(size=n),
    )
    labels = LabelEvents(
        rng.choice(keys, m),
        rng.choice(metrics, m),
        rng.integers(0, 50, m) * 0.5,
        rng.integers(0, 2, m),
    )
    joined = join_labels(scores, labels)
    label_rows, score_rows = naive_join(scores, labels)
    assert joined.label_index.tolist() == label_rows
    assert joined.score_index.tolist() == score_rows
    assert 0 < joined.unmatched_labels < m
    assert sorted([*label_rows, *joined.unmatched_label_index.tolist()]) == list(range(m))
    r = reliability(joined.anomaly_probability, joined.is_anomaly)
    assert r.count == joined.matched


def test_join_with_empty_sides_and_bad_columns() -> None:
    scores = ScoredEvents(["a"], ["x"], [1.0], [0.5])
    none = LabelEvents([], [], [], [])
    assert join_labels(scores, none).matched == 0
    joined = join_labels(ScoredEvents([], [], [], []), LabelEvents(["a"], ["x"], [1.0], [True]))
    assert joined.unmatched_label_index.tolist() == [0]
    with pytest.raises(ValueError):
        LabelEvents(["a"], ["x"], [1.0, 2.0], [1])
    with pytest.raises(ValueError):
        LabelEvents(["a"], ["x"], [1.0], [2])
