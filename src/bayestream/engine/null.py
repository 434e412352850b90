"""Simulated null distributions of the drift statistic, for rules where the chi-square is poor.

For real-valued windows (the Normal-Gamma window model) the KL between two window posteriors of
one normal distribution depends on neither its mean nor its variance: the window prior is the
reference prior of a normal sample (:func:`bayestream.engine.decisions.window_prior`), so the
statistic is pivotal and its null distribution is that of standard normal data. Its
chi-square limit is approached slowly from above (the precision part is a function of an
F-distributed variance ratio): for 50-event windows the chi2_2 tail at 0.001 is exceeded about
twice as often. So for count windows (``window_events``) of real values the engine simulates
the null at start-up, through the kernels' own window-closing step with the rule's reference
and cool-down, and maps each window's statistic to a false-alarm probability
through this table. Count windows of the count families (Gamma-Poisson, Beta-Binomial) get
one table per expected count of a window (:func:`simulate_counts`). Time windows (whose sizes
vary) and Dirichlet keep the chi-square; the measured false-alarm rates are in the README.
Comparisons of count windows with few counts (of either kind of window) use neither: their
false-alarm probability is exact given the windows' total
(:mod:`bayestream.models._conditional`), and these tables serve the larger counts.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import chdtri

from bayestream.config import Rule
from bayestream.models._drift import replay_windows
from bayestream.models._protocol import (
    KIND_COUNT_EXPOSURE,
    KIND_COUNT_TRIALS,
    KIND_REAL,
    S_COOLDOWN,
    S_DOF,
    S_EXACT,
    S_EXTRA,
    S_KIND,
    S_NULL,
)

POINTS = 48
SEED = 20261124


def needs_table(rule: Rule, settings: np.ndarray) -> bool:
    """Does this rule get a simulated null (real-valued count windows)?"""
    drift = rule.drift
    return drift is not None and drift.window_events is not None and settings[S_KIND] == KIND_REAL


def needs_count_tables(rule: Rule, settings: np.ndarray) -> bool:
    """Does this rule get simulated nulls per expected count (count windows of Gamma-Poisson
    or Beta-Binomial)?"""
    drift = rule.drift
    return (
        drift is not None
        and drift.window_events is not None
        and settings[S_KIND] in (KIND_COUNT_EXPOSURE, KIND_COUNT_TRIALS)
    )


def simulate(rule: Rule, settings: np.ndarray, samples: int | None = None) -> np.ndarray:
    """``[T, x_1..x_T, log p_1..log p_T]``: the null survival function of the drift statistic
    for this rule, from ``samples`` simulated window comparisons (default: enough for about 400
    exceedances of its false-alarm rate, at least 50,000 and at most 2,000,000).

    Each window of n standard normal values has independent sufficient statistics: mean
    ~ N(0, 1/n) and M2 ~ chi2_{n-1}, so windows are drawn whole and replayed through the
    kernels' own closing step (:func:`bayestream.models._drift.replay_windows`), with the
    rule's window prior and reference, in chi-square mode; each comparison's statistic is
    recovered from its chi-square false-alarm probability."""
    far = rule.drift.false_alarm_rate if rule.drift else 0.001
    plan = _Plan(rule, settings, samples or int(min(max(400.0 / far, 50_000), 2_000_000)))
    plan.chi[S_EXTRA] = 4  # a Normal-Gamma row's width, whatever the rule's family
    n = plan.n
    draws = plan.draws()
    draws[:, :, 1] = plan.rng.normal(0.0, 1.0 / math.sqrt(n), draws.shape[:2])
    draws[:, :, 2] = plan.rng.chisquare(n - 1.0, draws.shape[:2])
    return plan.table(draws)


class _Plan:
    """What both simulations share: streams of whole windows replayed in chi-square mode
    with the rule's cool-down, the baseline's warm-up windows dropped."""

    def __init__(self, rule: Rule, settings: np.ndarray, samples: int) -> None:
        drift = rule.drift
        assert drift is not None and drift.window_events is not None
        self.n = float(drift.window_events)
        self.warm = int(3 * drift.baseline_windows) if drift.reference == "baseline" else 1
        self.streams = 1_000
        self.windows = self.warm + math.ceil(samples / self.streams)
        self.chi = settings.copy()
        self.chi[S_NULL] = 0.0
        self.chi[S_EXACT] = 0.0  # the statistic is recovered from chi-square probabilities
        # the rule's cool-down: the reference restarts after each (chi-square) alarm and is
        # replaced while cooling down, as live; comparisons cooling down are left out. After
        # a cool-down of c >= 1 windows the reference is the last window alone whatever c, so
        # the comparisons that follow (until the next alarm) have one distribution for every
        # c >= 1: a longer one only spaces them out. It is simulated as at most a tenth of the
        # simulated span, so comparisons are left outside cool-down (a cool-down as long as
        # the span left none, or only those of streams that never alarmed, a biased few)
        span = self.windows - self.warm
        self.chi[S_COOLDOWN] = float(min(drift.cooldown_windows, max(span // 10, 1)))
        self.dof = float(settings[S_DOF])
        self.rng = np.random.default_rng(SEED)

    def draws(self) -> np.ndarray:
        """``[streams, windows, 3]`` window statistics, the event counts filled in."""
        draws = np.empty((self.streams, self.windows, 3))
        draws[:, :, 0] = self.n
        return draws

    def table(self, draws: np.ndarray) -> np.ndarray:
        return _table(replay_windows(self.chi, 3, draws)[:, self.warm :], self.dof)


def _table(fap: np.ndarray, dof: float) -> np.ndarray:
    """``[T, x_1..x_T, log p_1..log p_T]`` from the chi-square false-alarm probabilities of
    simulated comparisons (NaN: none made)."""
    fap = fap.ravel()
    fap = fap[~np.isnan(fap)]
    x_null = np.where(fap < 1.0, chdtri(dof, np.maximum(fap, 1e-300)), 0.0)
    m = x_null.shape[0]
    p = np.geomspace(0.5, 20.0 / m, POINTS)
    xs = np.quantile(x_null, 1.0 - p)
    keep = np.concatenate([[True], np.diff(xs) > 0])  # strictly increasing points only
    xs, p = xs[keep], p[keep]
    return np.concatenate([[xs.shape[0]], xs, np.log(p)])


COUNT_GRID = 2.0 ** np.arange(-1, 13)  # expected counts per window: 0.5 .. 4096
TRIALS_SHARE = 0.05  # the rarer outcome's share in the Beta-Binomial simulations


def simulate_counts(rule: Rule, settings: np.ndarray) -> np.ndarray:
    """Tables for count windows: ``[mu_1..mu_G, block_1..block_G]``, block g the null table
    (padded to ``1 + 2 POINTS``) when a window's expected count is mu_g.

    The null of the KL between Gamma window posteriors depends on how many counts a window
    holds (few counts: discrete and skewed; many: the chi-square), but not on the exposure's
    unit, so windows of N events with exposure 1 each and Poisson(mu_g) counts are drawn whole.
    Between Beta window posteriors it depends chiefly on the count of the rarer outcome, so
    windows of mu_g / TRIALS_SHARE trials (rounded) with Binomial successes of that share are
    drawn (a rare outcome is the common case: error rates; with shares near one half both
    counts are larger and the null is closer to the chi-square anyway). Windows are replayed
    through the kernels' closing step, with the rule's window prior, reference and baseline.
    A comparison reads the two tables around the expected count of its current window under
    the reference (see :func:`bayestream.models._windows.count_false_alarm`) and interpolates
    log p in log mu."""
    far = rule.drift.false_alarm_rate if rule.drift else 0.001
    plan = _Plan(rule, settings, int(min(max(200.0 / far, 20_000), 200_000)))
    blocks = np.zeros((COUNT_GRID.shape[0], 1 + 2 * POINTS))
    trials = settings[S_KIND] == KIND_COUNT_TRIALS
    for g, mu in enumerate(COUNT_GRID):
        draws = plan.draws()
        if trials:
            n = max(round(mu / TRIALS_SHARE), 1)
            draws[:, :, 1] = plan.rng.binomial(n, mu / n, draws.shape[:2])
            draws[:, :, 2] = n - draws[:, :, 1]
        else:
            draws[:, :, 1] = plan.rng.poisson(mu, draws.shape[:2])
            draws[:, :, 2] = plan.n  # exposure 1 per event
        table = plan.table(draws)
        blocks[g, : table.shape[0]] = table
    return np.concatenate([COUNT_GRID, blocks.ravel()])


__all__ = ["needs_count_tables", "needs_table", "simulate", "simulate_counts"]
