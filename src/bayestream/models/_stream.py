"""What every family kernel does to a stream's row before its own update.

Notation, used by every family module: a stream's state is one row ``s`` of columnar arrays:
``params[s, :]`` (the family's posterior hyperparameters), ``last_ts[s]`` (event time of the
newest event applied, NaN for a stream that has seen nothing), ``n_eff[s]`` (the decayed number
of events behind the posterior). ``prior`` is the rule's prior, in the same parameterisation.

Forgetting: an event at time ``t`` first moves the posterior toward the prior by
``d = 2 ** (-dt / h)``, where ``dt`` is the elapsed event time since ``last_ts`` (clipped at 0
for an out-of-order event) or 1 when the half-life ``h`` counts events. ``h = inf`` means no
forgetting. The predictive for the event is the posterior *after* this decay: the posterior at
the event's time, before the event is seen.
"""

from __future__ import annotations

import math

import numpy as np

from bayestream.models._jit import inline

APPLIED = np.int8(0)
LATE = np.int8(1)


@inline
def reset_row(
    params: np.ndarray, last_ts: np.ndarray, n_eff: np.ndarray, prior: np.ndarray, s: int
) -> None:
    """Put row ``s`` back to the prior, as a stream that has seen nothing."""
    for j in range(prior.shape[0]):
        params[s, j] = prior[j]
    last_ts[s] = np.nan
    n_eff[s] = 0.0


@inline
def begin_event(
    params: np.ndarray,
    last_ts: np.ndarray,
    n_eff: np.ndarray,
    prior: np.ndarray,
    s: int,
    t: float,
    half_life: float,
    per_event: bool,
    max_lateness: float,
    expire_before: float,
) -> float:
    """Advance row ``s`` to event time ``t``; return the decay factor ``d`` in (0, 1].

    Returns -1.0, touching nothing, when the event is later than ``max_lateness`` behind the
    stream's newest event. A stream whose newest event is older than ``expire_before`` (idle
    past its TTL) restarts from the prior. ``n_eff`` is decayed here; the caller adds the event.
    """
    newest = last_ts[s]
    if not math.isnan(newest) and newest < expire_before:
        reset_row(params, last_ts, n_eff, prior, s)
        newest = np.nan
    if math.isnan(newest):
        last_ts[s] = t
        return 1.0
    if t < newest - max_lateness:
        return -1.0
    if per_event:
        dt = 1.0
    else:
        dt = t - newest if t > newest else 0.0
    if t > newest:
        last_ts[s] = t
    d: float = 2.0 ** (-dt / half_life)
    n_eff[s] *= d
    return d


@inline
def forget_linear(theta: np.ndarray, prior: np.ndarray, d: float) -> None:
    """Move a stream's parameters ``theta`` toward the prior by ``d`` < 1: p <- p0 + d (p - p0),
    for families whose parameters are pseudo-counts (Beta, Gamma, Dirichlet)."""
    for j in range(prior.shape[0]):
        theta[j] = prior[j] + d * (theta[j] - prior[j])


@inline
def mid_p_tail(lower_strict: float, at: float, upper_strict: float, side: int) -> float:
    """Mid-p tail probability of a discrete observation from P(X<x), P(X=x), P(X>x)."""
    lower = lower_strict + 0.5 * at
    upper = upper_strict + 0.5 * at
    return side_tail(lower, upper, side)


@inline
def side_tail(lower: float, upper: float, side: int) -> float:
    """Pick the tail: 0 upper, 1 lower, 2 two-sided (twice the smaller, capped at 1)."""
    if side == 0:
        return min(max(upper, 0.0), 1.0)
    if side == 1:
        return min(max(lower, 0.0), 1.0)
    return min(2.0 * min(lower, upper), 1.0) if min(lower, upper) > 0.0 else 0.0


@inline
def outlier_run(
    params: np.ndarray,
    n_eff: np.ndarray,
    prior: np.ndarray,
    s: int,
    extra: int,
    prob: float,
    run_reset: float,
) -> bool:
    """Count the stream's events in a row with P(outlier) > 1/2 (in ``params[s, extra + 1]``);
    at ``run_reset`` of them (0: never) the posterior restarts from the prior, ``n_eff`` from 0,
    and True is returned: so many outliers in a row are a new regime, not a burst (a priori
    their chance is about outlier_rate ** run_reset). The event at hand then updates the prior
    in full (``n_eff`` is below ``robust_min_events``)."""
    run = params[s, extra + 1] + 1.0 if prob > 0.5 else 0.0
    if run_reset > 0.0 and run >= run_reset:
        for j in range(prior.shape[0]):
            params[s, j] = prior[j]
        n_eff[s] = 0.0
        params[s, extra + 1] = 0.0
        return True
    params[s, extra + 1] = run
    return False


@inline
def no_advance(theta: np.ndarray, prior: np.ndarray, dt: float, t: float) -> None:
    """A family whose state does not evolve with time but by forgetting."""


@inline
def restart(theta: np.ndarray, prior: np.ndarray, widen: float) -> None:
    """An accepted shift of level, for pseudo-count families: back to the prior, so that the
    new level's events decide (the event that confirmed the shift first)."""
    for j in range(prior.shape[0]):
        theta[j] = prior[j]
