r"""Dynamic linear models (West & Harrison, *Bayesian Forecasting and Dynamic Models*, 2nd ed.).

Model, per stream, with ``p`` states ``theta_t`` and the observation ``y_t`` at event time ``t``:

    y_t = F_t' theta_t + nu_t,          nu_t ~ N(0, V / w_t)
    theta_t = G_dt theta_{t-1} + omega_t

- components: the level; optionally a local linear trend (``G = [[1, dt], [0, 1]]`` on
  (level, slope)); seasonal periods in *regression form*: per period ``P`` and harmonic
  ``j = 1..h`` two static coefficients with ``F = (cos(2 pi j phi), sin(2 pi j phi))``,
  ``phi = (t mod P) / P`` (or the stream's event number modulo ``P`` for ``period_events``).
  So ``G`` is the identity on the seasonal block and irregular event times need nothing but
  ``F_t``; it is the rotating Fourier form seen in a fixed frame.
- evolution by component discounting (W&H 6.3): with ``P = G C G'``, each component's block
  of ``R`` is ``P_bb / delta_b^dt`` (cross-covariances between components are kept), ``dt`` the
  elapsed event time in units of ``unit_seconds`` (1 per event without it). The inflation is
  capped at ``e^30`` (a stream silent for a year keeps finite numbers).
- unknown observation variance ``V`` with its conjugate Gamma posterior: ``n`` degrees of
  freedom and the point estimate ``S`` (W&H 4.6); the states are kept scale-free,
  ``C* = C / S``, so the one-step forecast is Student-t:

      y_t ~ t_n(f, S Q*),  f = F' a,  Q* = F' R* F + 1,  a = G m,  R* evolved as above;

  variance discounting (W&H 10.8) moves ``n`` toward its prior ``n0`` by ``delta_v^dt``
  (``n <- n0 + delta_v^dt (n - n0)``; W&H's ``n <- delta_v n`` with a floor, so a silent stream
  keeps a proper t).
- update with weight ``w`` (robust updating: the observation variance is ``V / w``; ``w = 1``
  is the textbook update), ``e = y - f``, ``u = R* F``, ``Q*_w = Q* - 1 + 1 / w``:

      m <- a + u e / Q*_w,   C* <- R* - u u' / Q*_w,
      S <- S (n + min(z^2, c^2)) / (n + 1),  n <- n + 1,   z = e / sqrt(S Q*)

  The variance learns from *every* event, its standardised error winsorised at ``c`` (4 with
  ``robust``, none without): learning it only from events accepted as regular makes it
  collapse on quantised, heavy-tailed series, after which everything looks anomalous. And it
  stays at least ``step^2 / 12``, the variance of rounding to the data's resolution (``step``
  the smallest nonzero change between consecutive values, once it has been seen 10 times:
  a resolution, not one small jump of a plateau series; Sheppard): sparse counts (0,
  0, 1, 0, ... after ``log1p``) have rare values 7 sd out that winsorising would cut, so
  without the floor the variance shrinks at every zero and every error became an anomaly of
  probability 1 (the quality benchmark's error counts: 49 false positives a day).

Monitoring's intervention (W&H 11.2) adds ``outlier_scale^2 S`` to the level's variance.

A stream's row (``theta``, ``width`` columns; offsets below, ``p`` states):

    N_AT n, S_AT S, T_AT time of the newest event, COUNT_AT events, GAP_AT an exponentially
    weighted mean of the gaps between events (seconds, or events), P_AT p, CLIP_AT c,
    LASTX_AT the newest value, STEP_AT the smallest nonzero step between consecutive values,
    STEPS_AT how often it was seen,
    M_AT ...           m (p)
    C_AT ...           C*, the upper triangle row by row (p (p + 1) / 2)
    X_AT ...           the event's forecast: u = R* F (p), f, Q*; written by ``advance``
                       and read by ``score``, ``interval``, ``observe`` (a row's scratch)

In the rule's *prior* vector the columns from ``X_AT`` on hold the model's constants instead
(``H_*``: the time unit, the log discounts, trend, the periods and their harmonics): only
``advance`` and the summaries read them, and both get the prior; a row restarting from the
prior gets them as scratch that ``advance`` overwrites before any use.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from bayestream.models._divergence import kl_normal_gamma
from bayestream.models._drift import WINDOW_CLIP
from bayestream.models._jit import inline, kernel
from bayestream.models._outlier import t_log_ratio
from bayestream.models._skeleton import make_update
from bayestream.models._special import stdtrit
from bayestream.models.normal_gamma import t_pit, t_tail

N_AT, S_AT, T_AT, COUNT_AT, GAP_AT, P_AT, CLIP_AT, LASTX_AT, STEP_AT, STEPS_AT = range(10)
M_AT = 10
H_UNIT, H_LD_LEVEL, H_LD_TREND, H_LD_SEASONAL, H_LD_VARIANCE, H_TREND, H_K = 0, 1, 2, 3, 4, 5, 6
H_PERIODS = 7  # then (period, harmonics) per seasonal entry; a period < 0 counts events
GAP_EVENTS = 20.0  # the mean gap weighs the newest gap 1 / min(gaps, GAP_EVENTS)
MAX_LOG_INFLATION = 30.0
TWO_PI = 2.0 * math.pi
STEP_REPEATS = 10.0  # the smallest step, seen this often, is the data's resolution
LEVEL_SHARE = 0.2  # of an intervention's variance, on the level (the rest: seasonal)

kl = kl_normal_gamma  # drift windows are Normal-Gamma posteriors of standardised errors


# --- layout and pure formulas ----------------------------------------------------------------


def states(trend: bool, periods: Sequence[tuple[float, int]]) -> int:
    """Number of states: the level, the slope, two per harmonic."""
    return 1 + int(trend) + 2 * sum(h for _, h in periods)


def width(trend: bool, periods: Sequence[tuple[float, int]]) -> int:
    """Columns of a row (and of the prior vector)."""
    p = states(trend, periods)
    return M_AT + p + p * (p + 1) // 2 + max(p + 2, H_PERIODS + 2 * len(periods))


def prior_row(
    prior: Mapping[str, Any],
    trend: bool,
    periods: Sequence[tuple[float, int]],
    discounts: tuple[float, float, float, float],
    unit: float,
    clip: float,
) -> np.ndarray:
    """The rule's prior vector: ``prior`` (level, level_var, trend_var, seasonal_var, dof,
    variance), the components (``periods``: (period, harmonics), a negative period counting
    events), the discounts (level, trend, seasonal, variance) per ``unit`` of elapsed time and
    the winsorising bound ``clip`` of the variance learning."""
    p = states(trend, periods)
    out = np.zeros(width(trend, periods))
    out[N_AT] = float(prior["dof"])
    out[S_AT] = float(prior["variance"])
    out[T_AT] = np.nan
    out[LASTX_AT] = np.nan
    out[STEP_AT] = np.inf
    out[P_AT] = p
    out[CLIP_AT] = clip
    out[M_AT] = float(prior["level"])
    diag = [float(prior["level_var"])]
    if trend:
        diag.append(float(prior["trend_var"]))
    diag += [float(prior["seasonal_var"])] * (p - len(diag))
    c = M_AT + p
    for i, v in enumerate(diag):
        out[c + i * p - i * (i - 1) // 2] = v
    h = c + p * (p + 1) // 2
    out[h + H_UNIT] = unit
    for k, d in enumerate(discounts):
        out[h + H_LD_LEVEL + k] = math.log(d)
    out[h + H_TREND] = 1.0 if trend else 0.0
    out[h + H_K] = len(periods)
    for b, (period, harmonics) in enumerate(periods):
        out[h + H_PERIODS + 2 * b] = period
        out[h + H_PERIODS + 2 * b + 1] = harmonics
    return out


@inline
def layout(theta: np.ndarray) -> tuple[int, int, int]:
    """(p, offset of C*, offset of the forecast / constants) of a row or prior."""
    p = int(theta[P_AT])
    return p, M_AT + p, M_AT + p + p * (p + 1) // 2


def covariance(theta: np.ndarray) -> np.ndarray:
    """C* of a row as a full symmetric matrix (for tests and readers)."""
    p = int(theta[P_AT])
    c = M_AT + p
    out = np.empty((p, p))
    for i in range(p):
        for j in range(i, p):
            out[i, j] = out[j, i] = theta[c + i * p - i * (i - 1) // 2 + j - i]
    return out


# --- per-event steps (the update kernel is the shared skeleton, :mod:`._skeleton`) ------------


@inline
def _packed(p: int, i: int, j: int) -> int:
    """Index of C[i, j] in the packed upper triangle (any order of i, j)."""
    if i > j:
        i, j = j, i
    return i * p - (i * (i - 1)) // 2 + (j - i)


@inline
def _phase(prior: np.ndarray, h: int, b: int, t: float, count: float) -> float:
    """The angle 2 pi phi of seasonal entry ``b`` at time ``t`` (event number ``count``)."""
    period: float = prior[h + H_PERIODS + 2 * b]
    if period < 0.0:
        return TWO_PI * ((count % -period) / -period)
    return TWO_PI * ((t % period) / period)  # exact: t - k P with no rounding


@inline
def _add_column(theta: np.ndarray, p: int, c: int, x: int, j: int, v: float) -> float:
    """Add ``R*[:, j] F_j`` (``F_j = v``) to ``u`` and return ``F_j (2 u_j + R*_jj F_j)``, this
    column's part of ``F' R* F`` (``u_j`` holds the columns before ``j``: the cross terms)."""
    row_j = c + j * p - (j * (j - 1)) // 2  # C*[j, j:] is contiguous from here
    q: float = v * (2.0 * theta[x + j] + theta[row_j] * v)
    at = c + j  # C*[i, j] for i < j: row i starts at c + i p - i (i - 1) / 2
    for i in range(j):
        theta[x + i] += theta[at] * v
        at += p - i - 1
    for i in range(j, p):
        theta[x + i] += theta[row_j + i - j] * v
    return q


@inline
def forecast(theta: np.ndarray, prior: np.ndarray, t: float, count: float) -> None:
    """Write the one-step forecast at time ``t`` (event number ``count``) from the evolved
    state: ``u = R* F``, ``f = F' a``, ``Q* = F' R* F + 1``, in one pass over the columns of
    ``R*`` with ``F`` generated term by term (a rotation per harmonic): nothing is allocated."""
    p, c, x = layout(theta)
    h = x
    for i in range(p):
        theta[x + i] = 0.0
    f = theta[M_AT]
    q = 1.0 + _add_column(theta, p, c, x, 0, 1.0)  # the level, F_0 = 1 (a slope's F is 0)
    j = 2 if prior[h + H_TREND] == 1.0 else 1
    for b in range(int(prior[h + H_K])):
        angle = _phase(prior, h, b, t, count)
        c1, s1 = math.cos(angle), math.sin(angle)
        ck, sk = c1, s1
        for _ in range(int(prior[h + H_PERIODS + 2 * b + 1])):
            f += ck * theta[M_AT + j] + sk * theta[M_AT + j + 1]
            q += _add_column(theta, p, c, x, j, ck)
            q += _add_column(theta, p, c, x, j + 1, sk)
            j += 2
            ck, sk = ck * c1 - sk * s1, sk * c1 + ck * s1
    theta[x + p] = f
    theta[x + p + 1] = q


@inline
def evolve(theta: np.ndarray, prior: np.ndarray, delta: float) -> None:
    """``a = G m``, ``R* = G C* G'`` discounted per component, ``n`` toward ``n0``, over
    ``delta`` units of time."""
    p, c, h = layout(theta)
    trend = prior[h + H_TREND] == 1.0
    if trend:
        theta[M_AT] += delta * theta[M_AT + 1]
        c00, c01, c11 = theta[c], theta[c + 1], theta[c + p]
        for j in range(2, p):
            theta[c + j] += delta * theta[c + _packed(p, 1, j)]
        theta[c + 1] = c01 + delta * c11
        theta[c] = c00 + 2.0 * delta * c01 + delta * delta * c11
    theta[c] *= math.exp(min(-delta * prior[h + H_LD_LEVEL], MAX_LOG_INFLATION))
    start = 1
    if trend:
        theta[c + p] *= math.exp(min(-delta * prior[h + H_LD_TREND], MAX_LOG_INFLATION))
        start = 2
    grow = math.exp(min(-delta * prior[h + H_LD_SEASONAL], MAX_LOG_INFLATION))
    for b in range(int(prior[h + H_K])):
        end = start + 2 * int(prior[h + H_PERIODS + 2 * b + 1])
        for i in range(start, end):
            row = c + i * p - (i * (i - 1)) // 2 - i  # C*[i, j] at row + j, j >= i
            for j in range(i, end):
                theta[row + j] *= grow
        start = end
    n0 = prior[N_AT]
    theta[N_AT] = n0 + math.exp(delta * prior[h + H_LD_VARIANCE]) * (theta[N_AT] - n0)


@inline
def advance(theta: np.ndarray, prior: np.ndarray, dt: float, t: float) -> None:
    """Evolve the state by the elapsed time ``dt`` to the event at ``t`` and write its
    forecast (module docstring); counts the event and its gap."""
    _, _, h = layout(prior)
    count = theta[COUNT_AT] + 1.0
    theta[COUNT_AT] = count
    if count >= 2.0:
        theta[GAP_AT] += (dt - theta[GAP_AT]) / min(count - 1.0, GAP_EVENTS)
    theta[T_AT] = t
    delta = dt / prior[h + H_UNIT]
    if delta > 0.0:
        evolve(theta, prior, delta)
    forecast(theta, prior, t, count)


@inline
def forget(theta: np.ndarray, prior: np.ndarray, d: float) -> None:
    """Never called: a ``dlm`` rule has no half-life (d = 1); it forgets by its discounts."""


@inline
def _predictive(theta: np.ndarray) -> tuple[float, float, float]:
    """(dof, location, scale) of the Student-t one-step forecast written by ``advance``."""
    p, _, x = layout(theta)
    return theta[N_AT], theta[x + p], math.sqrt(theta[S_AT] * theta[x + p + 1])


@inline
def score(
    theta: np.ndarray, x: float, size: float, side: int, widen: float
) -> tuple[float, float, float, float]:
    """(tail, PIT, log q/p, window value) of ``x`` under the Student-t forecast; the outlier
    component is the same t widened ``widen`` times; drift windows see the standardised
    forecast error ``z``, winsorised at ``WINDOW_CLIP``."""
    df, loc, scale = _predictive(theta)
    z = (x - loc) / scale
    tail = t_tail(df, z, side)
    window_x = min(max(z, -WINDOW_CLIP), WINDOW_CLIP)
    return tail, t_pit(tail, z, side), t_log_ratio(z, df, widen), window_x


@inline
def interval(theta: np.ndarray, size: float, upper: float) -> tuple[float, float]:
    """The central interval of the one-step forecast whose upper end has probability
    ``upper``."""
    df, loc, scale = _predictive(theta)
    half = scale * stdtrit(df, upper)
    return loc - half, loc + half


@inline
def observe(theta: np.ndarray, x: float, size: float, w: float) -> None:
    """The update of the module docstring with weight ``w``."""
    p, c, xa = layout(theta)
    f, q = theta[xa + p], theta[xa + p + 1]
    e = x - f
    n, s = theta[N_AT], theta[S_AT]
    if w > 0.0:
        qw = q - 1.0 + 1.0 / w
        for i in range(p):
            ui = theta[xa + i] / qw
            theta[M_AT + i] += ui * e
            row = c + _packed(p, i, i) - i
            for j in range(i, p):
                theta[row + j] -= ui * theta[xa + j]
    z2 = min(e * e / (s * q), theta[CLIP_AT] ** 2)
    s_new = s * (n + z2) / (n + 1.0)
    last = theta[LASTX_AT]
    if x != last and not math.isnan(last):  # the data's resolution: its smallest step
        change = abs(x - last)
        if change < theta[STEP_AT] * (1.0 - 1e-9):
            theta[STEP_AT] = change
            theta[STEPS_AT] = 1.0
        elif change <= theta[STEP_AT] * (1.0 + 1e-9):
            theta[STEPS_AT] += 1.0
    theta[LASTX_AT] = x
    step = theta[STEP_AT]
    if theta[STEPS_AT] >= STEP_REPEATS:  # a step seen this often is the data's resolution
        s_new = max(s_new, step * step / 12.0)  # Sheppard: the variance of the rounding
    theta[S_AT] = s_new
    theta[N_AT] = n + 1.0


@inline
def intervene(theta: np.ndarray, prior: np.ndarray, widen: float) -> None:
    """An accepted shift (W&H 11.2): the one-step forecast's variance grows by ``widen^2 S``,
    a share ``LEVEL_SHARE`` of it on the level, the rest on the seasonal coefficients (each
    the same, so the seasonal profile may move at every phase: a step in a daily profile is a
    shift the seasonal component must learn, not the level); then the forecast is written
    again from the widened state."""
    p, c, _ = layout(theta)
    _, _, h = layout(prior)
    h2 = widen * widen
    first = 2 if prior[h + H_TREND] == 1.0 else 1
    share = LEVEL_SHARE if p > first else 1.0
    theta[c] += share * h2
    for j in range(first, p):
        theta[c + _packed(p, j, j)] += (1.0 - share) * h2 * 2.0 / (p - first)
    forecast(theta, prior, theta[T_AT], theta[COUNT_AT])


update = make_update("dlm", forget, score, interval, observe, advance, intervene)
"""Apply a batch's events in order (:func:`bayestream.models._skeleton._update`)."""


# --- batch kernels -----------------------------------------------------------------------------


@kernel
def summarize(
    params: np.ndarray,
    prior: np.ndarray,
    slots: np.ndarray,
    levels: np.ndarray,
    quantiles: np.ndarray,
    out_params: np.ndarray,
    out_mean: np.ndarray,
    out_sd: np.ndarray,
    out_lo: np.ndarray,
    out_hi: np.ndarray,
    out_q: np.ndarray,
) -> None:
    """Per row in ``slots``: ``out_params`` (level, slope with a trend, each period's seasonal
    effect at the newest event, S, n); mean, sd and central credible intervals of the level
    (Student-t, n dof, scale sqrt(S C*_00); sd NaN while n <= 2); the predictive quantiles of
    the next observation one typical spacing (the mean gap) after the newest event. (The
    engine publishes :func:`forecast_quantiles` one spacing in seconds ahead instead: for a
    rule that discounts per event ``GAP_AT`` counts events, and the seasonal phase one event
    ahead was taken one second ahead.)

    Shapes: out_params ``[m, names]``; out_mean, out_sd ``[m, 1]``; out_lo, out_hi
    ``[m, L, 1]``; out_q ``[m, Q]``.
    """
    p, c, h = layout(prior)
    trend = prior[h + H_TREND] == 1.0
    n_periods = int(prior[h + H_K])
    work = np.empty(prior.shape[0])
    for r in range(slots.shape[0]):
        s = slots[r]
        theta = params[s]
        n, var, t, count = theta[N_AT], theta[S_AT], theta[T_AT], theta[COUNT_AT]
        k = 0
        out_params[r, k] = theta[M_AT]
        k += 1
        if trend:
            out_params[r, k] = theta[M_AT + 1]
            k += 1
        j = 2 if trend else 1
        for b in range(n_periods):
            angle = _phase(prior, h, b, t, count)
            effect = 0.0
            for m in range(int(prior[h + H_PERIODS + 2 * b + 1])):
                effect += theta[M_AT + j] * math.cos((m + 1) * angle)
                effect += theta[M_AT + j + 1] * math.sin((m + 1) * angle)
                j += 2
            out_params[r, k] = effect
            k += 1
        out_params[r, k] = var
        out_params[r, k + 1] = n
        level, scale = theta[M_AT], math.sqrt(var * theta[c])
        out_mean[r, 0] = level
        out_sd[r, 0] = scale * math.sqrt(n / (n - 2.0)) if n > 2.0 else np.nan
        for li in range(levels.shape[0]):
            half = scale * stdtrit(n, 0.5 + 0.5 * levels[li]) if levels[li] > 0.0 else 0.0
            out_lo[r, li, 0] = level - half
            out_hi[r, li, 0] = level + half
        if quantiles.shape[0] == 0:  # (the engine asks for none: see the docstring)
            continue
        for i in range(p + M_AT + p * (p + 1) // 2):
            work[i] = theta[i]
        gap = theta[GAP_AT]
        advance(work, prior, gap, t + gap)
        df, loc, pscale = _predictive(work)
        for qi in range(quantiles.shape[0]):
            prob = quantiles[qi]
            out_q[r, qi] = loc if prob == 0.5 else loc + pscale * stdtrit(df, prob)


@kernel
def forecast_quantiles(
    params: np.ndarray,
    prior: np.ndarray,
    slots: np.ndarray,
    dt: np.ndarray,
    at: np.ndarray,
    events_ahead: np.ndarray,
    quantiles: np.ndarray,
    out_q: np.ndarray,
) -> None:
    """Per row in ``slots``: the ``quantiles`` of the observation at event time ``at[r]``,
    ``dt[r]`` of elapsed time after the newest event (seconds, or events for a rule without
    ``unit_seconds``, as ``advance`` takes it) and about ``events_ahead[r]`` events later (for
    periods counted in events): the state evolved over the horizon (trend, discounting, the
    seasonal phase then), its Student-t forecast. Shapes: ``dt``, ``at``, ``events_ahead``
    ``[m]``; ``out_q`` ``[m, Q]``."""
    p, _, _ = layout(prior)
    work = np.empty(prior.shape[0])
    for r in range(slots.shape[0]):
        theta = params[slots[r]]
        for i in range(p + M_AT + p * (p + 1) // 2):
            work[i] = theta[i]
        work[COUNT_AT] += max(events_ahead[r], 1.0) - 1.0  # advance counts the last one
        advance(work, prior, dt[r], at[r])
        df, loc, pscale = _predictive(work)
        for qi in range(quantiles.shape[0]):
            prob = quantiles[qi]
            out_q[r, qi] = loc if prob == 0.5 else loc + pscale * stdtrit(df, prob)


@kernel
def level_marginal(params: np.ndarray, slots: np.ndarray) -> np.ndarray:
    """``[m, 3]``: the deseasonalised level's Student-t marginal per row: (dof, location,
    scale), as in :func:`summarize`."""
    out = np.empty((slots.shape[0], 3))
    for r in range(slots.shape[0]):
        theta = params[slots[r]]
        _, c, _ = layout(theta)
        out[r, 0] = theta[N_AT]
        out[r, 1] = theta[M_AT]
        out[r, 2] = math.sqrt(theta[S_AT] * theta[c])
    return out


__all__ = [
    "covariance",
    "forecast_quantiles",
    "kl",
    "level_marginal",
    "prior_row",
    "states",
    "summarize",
    "update",
    "width",
]
