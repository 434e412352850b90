r"""Exact false-alarm probabilities of the drift comparison for windows of counts.

A window of few counts makes the KL statistic discrete: its null distribution is a handful of
atoms that move with the expected count, so neither the chi-square nor a simulated table read
between expected counts can say how often it exceeds a value (on no-change streams with about
five counts per window, tables read at 4 and 8 expected counts gave 0.04 - 4.8 times the
configured false-alarm rate). Conditioning removes the unknown rate exactly:

- counts over exposures: with ``c ~ Poisson(lambda e_c)`` in the current window and
  ``r ~ Poisson(lambda e_r)`` in the reference, given ``T = c + r`` the current count is
  ``Binomial(T, e_c / (e_c + e_r))``, whatever lambda is;
- successes out of trials: with ``s_c`` of ``n_c`` and ``s_r`` of ``n_r`` trials, given the
  ``K = s_c + s_r`` successes the current window's are ``Hypergeometric(n_c + n_r, K, n_c)``
  (Fisher's exact test), whatever the success probability is.

The false-alarm probability of the observed split ``j`` is the mid-p value of its KL among
all splits: ``P(KL > KL_j) + P(KL = KL_j) / 2`` under that distribution, the KL of each split
between the window posteriors it gives (window prior plus the split's counts), as live. The
mid-p keeps the rate close to the configured one where the counts allow it (an exact p-value,
P(KL >= KL_j), is below it by construction, by more the fewer the counts); where there are
too few counts for any split to be that unlikely, no alarm is possible and the rate falls
below the configured one (measured in the README: never more than 6% above it).

A baseline reference (an exponentially weighted sum of windows) enters as a window of its
effective size: its statistics scaled by ``n* / n_r`` (Kish's effective size, see
:mod:`bayestream.models._drift`), counts rounded; an approximation, so against a baseline
the caller prefers the simulated tables beyond :data:`EXACT_BASELINE_COUNT`. Comparisons with
more than ``max_terms`` possible splits return NaN: there the counts are large enough for the
simulated tables or the chi-square, which the caller uses instead. Windows of categories go
through the Dirichlet's stick-breaking stages (:func:`_categories`).
"""

from __future__ import annotations

import math

import numpy as np

from bayestream.models._jit import inline, kernel
from bayestream.models._protocol import KIND_CATEGORY, KIND_COUNT_EXPOSURE
from bayestream.models._special import gammaincc, gammaln, psi

EXACT_TERMS = 256
"""Splits summed at most per comparison (about 0.1 us each); beyond, the tables or the
chi-square."""

EXACT_BASELINE_COUNT = 10.0
"""Against a baseline, count windows whose expected count is above this use the simulated
tables instead (``S_EXACT_COUNT``, set where the tables are chosen): there the effective-size
reference made the exact sum 1.07 - 1.24x the configured rate (Beta-Binomial, 30 - 60 rare
counts per window), the tables 0.62 - 1.05x. (Below it the tables are the worse: up to 4.8x at
5 counts.)"""

_TIE = 1e-10  # relative difference below which two splits' KL count as equal


@inline
def _log_choose(n: int, k: int) -> float:
    return gammaln(n + 1.0) - gammaln(k + 1.0) - gammaln(n - k + 1.0)


@kernel
def _mid_p(kl: np.ndarray, mass: np.ndarray, seen: int) -> float:
    """``P(KL > kl[seen]) + P(KL = kl[seen]) / 2`` over splits with KL ``kl`` and mass ``mass``."""
    x = kl[seen]
    tie = _TIE * max(abs(x), 1e-300)
    above = 0.0
    equal = 0.0
    total = 0.0
    for j in range(kl.shape[0]):
        total += mass[j]
        if j == seen:
            equal += mass[j]
        elif kl[j] > x + tie:
            above += mass[j]
        elif kl[j] >= x - tie:
            equal += mass[j]
    return min((above + 0.5 * equal) / total, 1.0)


@kernel
def conditional_false_alarm(
    kind: int,
    prior: np.ndarray,
    cur: np.ndarray,
    c: int,
    ref: np.ndarray,
    r: int,
    n_star: float,
    max_terms: int,
) -> float:
    """Mid-p false-alarm probability of the current window's statistics ``cur[c:]`` against
    the reference ``ref[r:]`` (effective size ``n_star``) given their total, under the window
    prior ``prior``; NaN when there are more than ``max_terms`` splits.

    Along the splits ``j`` the masses, ``log Gamma`` and digamma of every shape parameter move
    by one per step, so each is carried by its recurrence (``log Gamma(x + 1) = log Gamma(x) +
    log x``, ``psi(x + 1) = psi(x) + 1 / x``) from its value at the first split, and the closed
    forms of :func:`~bayestream.models._divergence.kl_gamma` and ``kl_beta`` are evaluated
    from those terms: a few logarithms per split instead of a dozen special functions.
    Categories: :func:`_categories`."""
    if kind == KIND_CATEGORY:
        scale = n_star / ref[r] if ref[r] > 0.0 else 1.0
        return _categories(prior, cur, c, ref, r, scale, max_terms)
    if kind == KIND_COUNT_EXPOSURE:
        e_r = ref[r + 2]
        scale = n_star / e_r if e_r > 0.0 else 1.0
        e_c, e_r = prior[1] + cur[c + 2], prior[1] + scale * e_r
        total = round(cur[c + 1] + scale * ref[r + 1])
        if total + 1 > max_terms or not (e_c > 0.0 and e_r > 0.0):
            return math.nan
        return _split_counts(prior[0], e_c, e_r, total, round(cur[c + 1]))
    n_ref = ref[r + 1] + ref[r + 2]
    scale = n_star / n_ref if n_ref > 0.0 else 1.0
    return _trials(
        prior[0], prior[1], cur[c + 1], cur[c + 2], scale * ref[r + 1], scale * n_ref, max_terms
    )


@inline
def _trials(
    a0: float, b0: float, s: float, f: float, s_ref: float, n_ref: float, max_terms: int
) -> float:
    """``s`` successes and ``f`` failures against ``s_ref`` of ``n_ref`` (scaled) trials, under
    ``Beta(a0, b0)``; NaN when there are more than ``max_terms`` splits, or when rounding the
    reference left the observed split outside them."""
    seen = round(s)
    n_c = round(s + f)
    successes = round(s + s_ref)
    n = n_c + round(n_ref)
    lo, hi = max(0, n_c - (n - successes)), min(n_c, successes)
    if hi - lo + 1 > max_terms or not lo <= seen <= hi:
        return math.nan
    return _split_trials(a0, b0, n, successes, n_c, lo, hi, seen)


@kernel
def _categories(
    prior: np.ndarray, cur: np.ndarray, c: int, ref: np.ndarray, r: int, scale: float, terms: int
) -> float:
    """Exact false-alarm probability of two windows of category counts (``cur[c + 1 + k]``,
    ``ref[r + 1 + k]``, the reference's scaled by ``scale``), combined from the stick-breaking
    stages of the Dirichlet: stage k splits category k against the categories after it, a
    comparison of successes out of trials under ``Beta(prior[k], sum(prior[k + 1:]))`` (the
    Dirichlet's KL is the sum of these Betas' KLs). Given the pooled counts the stages' splits
    are successive hypergeometric draws, so their mid-p values are independent and about
    uniform under no change; Fisher's method combines them: ``P(chi2_{2(K-1)} >= -2 sum log
    p_k)``. NaN when a stage has more than ``terms`` splits."""
    n_cat = prior.shape[0]
    rest_c, rest_r, rest_prior = 0.0, 0.0, 0.0
    for k in range(n_cat):
        rest_c += cur[c + 1 + k]
        rest_r += ref[r + 1 + k]
        rest_prior += prior[k]
    fisher = 0.0
    for k in range(n_cat - 1):
        rest_c -= cur[c + 1 + k]
        rest_r -= ref[r + 1 + k]
        rest_prior -= prior[k]
        n_ref = ref[r + 1 + k] + rest_r
        if cur[c + 1 + k] + rest_c == 0.0 or n_ref == 0.0:
            continue  # a stage without draws in one window says nothing: p = 1
        p = _trials(
            prior[k], rest_prior, cur[c + 1 + k], rest_c, scale * ref[r + 1 + k], scale * n_ref,
            terms,
        )  # fmt: skip
        if math.isnan(p):
            return math.nan
        fisher -= 2.0 * math.log(max(p, 1e-300))
    return gammaincc(n_cat - 1.0, 0.5 * fisher)


@kernel
def _split_counts(a0: float, e_c: float, e_r: float, total: int, seen: int) -> float:
    """Splits ``j`` of ``total`` counts: ``Binomial(total, e_c / (e_c + e_r))``, KL between
    ``Gamma(a0 + j, e_c)`` and ``Gamma(a0 + total - j, e_r)``."""
    kl = np.empty(total + 1)
    mass = np.empty(total + 1)
    log_odds = math.log(e_c / e_r)
    log_mass = total * math.log(e_r / (e_c + e_r))
    a1, a2 = a0, a0 + total  # the two shapes at j = 0
    lg1, lg2, psi1 = gammaln(a1), gammaln(a2), psi(a1)
    log_rates = math.log(e_c) - math.log(e_r)
    for j in range(total + 1):
        mass[j] = math.exp(log_mass)
        kl[j] = (a1 - a2) * psi1 - lg1 + lg2 + a2 * log_rates + a1 * (e_r - e_c) / e_c
        if j < total:
            log_mass += math.log((total - j) / (j + 1.0)) + log_odds
            lg1 += math.log(a1)
            psi1 += 1.0 / a1
            a1 += 1.0
            a2 -= 1.0
            lg2 -= math.log(a2)
    return _mid_p(kl, mass, seen)


@kernel
def _split_trials(
    a0: float, b0: float, n: int, successes: int, n_c: int, lo: int, hi: int, seen: int
) -> float:
    """Splits ``j`` of ``successes`` among ``n`` trials, ``n_c`` of them current:
    ``Hypergeometric(n, successes, n_c)``, KL between ``Beta(a0 + j, b0 + n_c - j)`` and
    ``Beta(a0 + successes - j, b0 + n - n_c - successes + j)``."""
    kl = np.empty(hi - lo + 1)
    mass = np.empty(hi - lo + 1)
    fails = n - successes
    log_mass = _log_choose(successes, lo) + _log_choose(fails, n_c - lo) - _log_choose(n, n_c)
    # shapes at j = lo: current (a1, b1), reference (a2, b2); a1 and b2 rise with j
    a1, b1 = a0 + lo, b0 + (n_c - lo)
    a2, b2 = a0 + (successes - lo), b0 + (fails - n_c + lo)
    lg_a1, lg_b1, lg_a2, lg_b2 = gammaln(a1), gammaln(b1), gammaln(a2), gammaln(b2)
    psi_a1, psi_b1 = psi(a1), psi(b1)
    psi_n1 = psi(a1 + b1)  # a1 + b1 and a2 + b2 do not move
    lg_n1, lg_n2 = gammaln(a1 + b1), gammaln(a2 + b2)
    for j in range(lo, hi + 1):
        i = j - lo
        mass[i] = math.exp(log_mass)
        kl[i] = (
            (lg_a2 + lg_b2 - lg_n2)
            - (lg_a1 + lg_b1 - lg_n1)
            + (a1 - a2) * psi_a1
            + (b1 - b2) * psi_b1
            + (a2 - a1 + b2 - b1) * psi_n1
        )
        if j < hi:
            log_mass += math.log(
                (successes - j) * (n_c - j) / ((j + 1.0) * (fails - n_c + j + 1.0))
            )
            lg_a1 += math.log(a1)
            psi_a1 += 1.0 / a1
            a1 += 1.0
            lg_b2 += math.log(b2)
            b2 += 1.0
            b1 -= 1.0
            lg_b1 -= math.log(b1)
            psi_b1 -= 1.0 / b1
            a2 -= 1.0
            lg_a2 -= math.log(a2)
    return _mid_p(kl, mass, seen - lo)


__all__ = [
    "EXACT_BASELINE_COUNT",
    "EXACT_TERMS",
    "conditional_false_alarm",
]
