r"""The window model of drift detection: statistics that add, their posteriors, KL, the null.

A window's statistics are linear in its observations, so windows add and scale: ``(events,
mean, M2)`` for real values (merged by Chan's formula), ``(events, sum of counts, sum of
exposures)``, ``(events, successes, failures)``, ``(events, count_1..count_K)``. The window model
is the conjugate family of the observation kind, and a window's posterior is its window prior
updated with its statistics (:func:`from_stats`, the batch posterior of each family). See
:mod:`bayestream.models._drift` for the statistic and its null distribution.
"""

from __future__ import annotations

import math

import numpy as np

from bayestream.models._conditional import conditional_false_alarm
from bayestream.models._divergence import kl_beta, kl_dirichlet, kl_gamma, kl_normal_gamma
from bayestream.models._jit import inline, kernel
from bayestream.models._protocol import (
    KIND_CATEGORY,
    KIND_COUNT_EXPOSURE,
    KIND_COUNT_TRIALS,
    KIND_REAL,
    N_SETTINGS,
    OUT_ALARM,
    OUT_CHANGE,
    OUT_EVALUATED,
    OUT_REF_N,
    OUT_WIN_N,
    S_DOF,
    S_EXACT,
    S_EXACT_COUNT,
    S_FALSE_ALARM,
    S_KIND,
    S_NULL,
)
from bayestream.models._special import gammaincc

_TINY = 1e-300


@inline
def stats_add(row: np.ndarray, off: int, kind: int, x: float, size: float) -> None:
    """Add one observation to the statistics at ``row[off:]``."""
    row[off] += 1.0
    if kind == KIND_REAL:  # Welford
        delta = x - row[off + 1]
        row[off + 1] += delta / row[off]
        row[off + 2] += delta * (x - row[off + 1])
    elif kind == KIND_COUNT_EXPOSURE:
        row[off + 1] += x
        row[off + 2] += size
    elif kind == KIND_COUNT_TRIALS:
        row[off + 1] += x
        row[off + 2] += size - x
    else:
        row[off + 1 + int(x)] += 1.0


@inline
def stats_merge(
    dst: np.ndarray, d: int, decay: float, src: np.ndarray, o: int, kind: int, sw: int
) -> None:
    """``dst[d:] = decay * dst[d:] + src[o:]`` (for real values by Chan's formula)."""
    if kind == KIND_REAL:
        na = decay * dst[d]
        nb = src[o]
        n = na + nb
        if n > 0.0:
            diff = src[o + 1] - dst[d + 1]
            m2 = decay * dst[d + 2] + src[o + 2] + na * nb / n * diff * diff
            dst[d + 1] = dst[d + 1] + diff * nb / n
            dst[d + 2] = m2
        dst[d] = n
        return
    for j in range(sw):
        dst[d + j] = decay * dst[d + j] + src[o + j]


@inline
def stats_size(row: np.ndarray, off: int, kind: int) -> float:
    """Size of a window in the units of its information: events, exposure or trials."""
    if kind == KIND_COUNT_EXPOSURE:
        return row[off + 2]  # type: ignore[no-any-return]
    if kind == KIND_COUNT_TRIALS:
        return row[off + 1] + row[off + 2]  # type: ignore[no-any-return]
    return row[off]  # type: ignore[no-any-return]


@kernel
def from_stats(kind: int, prior: np.ndarray, row: np.ndarray, off: int, out: np.ndarray) -> None:
    """Posterior parameters of ``prior`` updated with the statistics ``row[off:]`` (the batch
    posterior of each family written in its statistics)."""
    n = row[off]
    if kind == KIND_REAL:
        mu0, kappa0, alpha0, beta0 = prior[0], prior[1], prior[2], prior[3]
        mean = row[off + 1] if n > 0.0 else mu0
        kappa = kappa0 + n
        out[0] = (kappa0 * mu0 + n * mean) / kappa
        out[1] = kappa
        out[2] = alpha0 + 0.5 * n
        beta = beta0 + 0.5 * row[off + 2] + kappa0 * n * (mean - mu0) ** 2 / (2.0 * kappa)
        out[3] = max(beta, _TINY)  # constant values: a variance of (almost) zero, not NaN
    elif kind == KIND_CATEGORY:
        for j in range(prior.shape[0]):
            out[j] = prior[j] + row[off + 1 + j]
    else:
        out[0] = prior[0] + row[off + 1]
        out[1] = prior[1] + row[off + 2]


@kernel
def model_kl(kind: int, p: np.ndarray, q: np.ndarray) -> float:
    if kind == KIND_REAL:
        return kl_normal_gamma(p, q)
    if kind == KIND_COUNT_EXPOSURE:
        return kl_gamma(p, q)
    if kind == KIND_COUNT_TRIALS:
        return kl_beta(p, q)
    return kl_dirichlet(p, q)


@inline
def model_size(kind: int, p: np.ndarray) -> float:
    """Pseudo-count of a window posterior: kappa, the Gamma rate, a + b, or sum of alpha."""
    if kind == KIND_REAL:
        return p[1]  # type: ignore[no-any-return]
    if kind == KIND_COUNT_EXPOSURE:
        return p[1]  # type: ignore[no-any-return]
    if kind == KIND_COUNT_TRIALS:
        return p[0] + p[1]  # type: ignore[no-any-return]
    return p.sum()  # type: ignore[no-any-return]


@kernel
def mean_change(kind: int, cur: np.ndarray, ref: np.ndarray) -> float:
    """Current minus reference posterior mean; for categories, the index of the category whose
    probability rose most."""
    if kind == KIND_REAL:
        return cur[0] - ref[0]  # type: ignore[no-any-return]
    if kind == KIND_COUNT_EXPOSURE:
        return cur[0] / cur[1] - ref[0] / ref[1]  # type: ignore[no-any-return]
    if kind == KIND_COUNT_TRIALS:
        return cur[0] / (cur[0] + cur[1]) - ref[0] / (ref[0] + ref[1])  # type: ignore[no-any-return]
    best = 0
    best_rise = -math.inf
    total_c = cur.sum()
    total_r = ref.sum()
    for j in range(cur.shape[0]):
        rise = cur[j] / total_c - ref[j] / total_r
        if rise > best_rise:
            best_rise = rise
            best = j
    return float(best)


@inline
def statistic(kl: float, dof: float, n_c: float, n_r: float, n_star: float) -> float:
    """The chi-square-scale statistic X solved from the line of the module docstring
    (asymptotically chi2_dof under no change; <= 0 means no evidence of change)."""
    r = n_r / n_c
    centre = 0.5 * dof * (r - 1.0 - math.log(r))
    spread = n_r * (1.0 / n_c + 1.0 / n_star)
    return 2.0 * (kl - centre) / spread


@kernel
def false_alarm_probability(x: float, dof: float, table: np.ndarray) -> float:
    """P(X >= x) under no change: chi2_dof, or a simulated null table ``[T, x_1..x_T,
    log p_1..log p_T]`` (log-linear between points, the last two points' slope beyond)."""
    if x <= 0.0:
        return 1.0
    t = int(table[0]) if table.shape[0] > 0 else 0
    if t < 2:
        return gammaincc(0.5 * dof, 0.5 * x)
    xs = table[1 : 1 + t]
    lp = table[1 + t : 1 + 2 * t]
    if x <= xs[0]:
        return min(math.exp(lp[0]), 1.0)
    j = 1
    while j < t - 1 and xs[j] < x:
        j += 1
    slope = (lp[j] - lp[j - 1]) / (xs[j] - xs[j - 1])
    return min(math.exp(lp[j - 1] + slope * (x - xs[j - 1])), 1.0)


@inline
def model_width(kind: int, sw: int) -> int:
    """Parameters of the window model, from the width of its statistics."""
    if kind == KIND_REAL:
        return 4
    return sw - 1 if kind == KIND_CATEGORY else 2


@inline
def expected_count(kind: int, ref_post: np.ndarray, cur: np.ndarray, c: int) -> float:
    """The current window's expected count under the reference: counts over an exposure, the
    reference's rate times the window's exposure; successes out of trials, the reference's
    rarer outcome (successes or failures) times the window's trials."""
    if kind == KIND_COUNT_TRIALS:
        share = ref_post[0] / (ref_post[0] + ref_post[1])
        return min(share, 1.0 - share) * (cur[c + 1] + cur[c + 2])  # type: ignore[no-any-return]
    return ref_post[0] / ref_post[1] * cur[c + 2]  # type: ignore[no-any-return]


@kernel
def count_false_alarm(
    x: float, dof: float, table: np.ndarray, grid: int, kind: int, ref_post: np.ndarray,
    cur: np.ndarray, c: int,
) -> float:  # fmt: skip
    """False-alarm probability from the null tables ``table = [mu_1..mu_G, blocks]`` around
    mu, the current window's :func:`expected_count` (log p interpolated in log mu; the end
    tables beyond the grid)."""
    width = (table.shape[0] - grid) // grid
    mu = expected_count(kind, ref_post, cur, c)
    g = 0
    while g < grid - 2 and table[g + 1] <= mu:
        g += 1
    lo = table[grid + g * width : grid + (g + 1) * width]
    hi = table[grid + (g + 1) * width : grid + (g + 2) * width]
    f_lo = max(false_alarm_probability(x, dof, lo), 1e-300)
    f_hi = max(false_alarm_probability(x, dof, hi), 1e-300)
    w = (math.log(max(mu, 1e-300)) - math.log(table[g])) / (
        math.log(table[g + 1]) - math.log(table[g])
    )
    w = min(max(w, 0.0), 1.0)
    return min(math.exp((1.0 - w) * math.log(f_lo) + w * math.log(f_hi)), 1.0)


@kernel
def compare(
    settings: np.ndarray,
    sw: int,
    cur: np.ndarray,
    c: int,
    ref: np.ndarray,
    r: int,
    n_star: float,
    quiet: bool,
    cur_post: np.ndarray,
    ref_post: np.ndarray,
    out: np.ndarray,
    i: int,
) -> tuple[float, float, bool]:
    """KL(current || reference) of the windows whose statistics are ``cur[c:]`` and
    ``ref[r:]``, its false-alarm probability and whether it alarms (never when ``quiet``);
    reported into ``out[i]`` (all but the window bounds). ``cur_post`` and ``ref_post`` are
    scratch of at least the window model's width."""
    kind = int(settings[S_KIND])
    mw = model_width(kind, sw)
    prior = settings[N_SETTINGS : N_SETTINGS + mw]
    table = settings[N_SETTINGS + mw :]
    p = cur_post[:mw]
    q = ref_post[:mw]
    from_stats(kind, prior, cur, c, p)
    from_stats(kind, prior, ref, r, q)
    kl = model_kl(kind, p, q)
    fap = math.nan  # exact given the totals where the counts are few (NaN: too many)
    exact, up_to = int(settings[S_EXACT]), settings[S_EXACT_COUNT]
    if exact > 0 and (up_to == math.inf or expected_count(kind, q, cur, c) <= up_to):
        fap = conditional_false_alarm(kind, prior, cur, c, ref, r, n_star, exact)
    if math.isnan(fap):
        x = statistic(kl, settings[S_DOF], model_size(kind, p), model_size(kind, q), n_star)
        if settings[S_NULL] == 0.0:
            fap = false_alarm_probability(x, settings[S_DOF], table[:0])
        elif settings[S_NULL] > 0.0:
            fap = false_alarm_probability(x, settings[S_DOF], table)
        else:  # tables per expected count of the current window (the count families)
            grid = -int(settings[S_NULL])
            fap = count_false_alarm(x, settings[S_DOF], table, grid, kind, q, cur, c)
    alarm = fap < settings[S_FALSE_ALARM] and not quiet
    out[i, OUT_EVALUATED] = 1.0
    out[i, OUT_ALARM] = 1.0 if alarm else 0.0
    out[i, OUT_CHANGE] = mean_change(kind, p, q)
    out[i, OUT_WIN_N] = cur[c]
    out[i, OUT_REF_N] = ref[r]
    return kl, fap, alarm
