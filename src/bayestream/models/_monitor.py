r"""Outlier or new level? Sequential Bayes-factor monitoring, for every family.

West & Harrison (Bayesian Forecasting and Dynamic Models, 2nd ed., ch. 11) monitor a model
by the Bayes factor of its one-step forecasts against an alternative, cumulated over a run of
recent events: one wild value is an outlier; several that together are far more likely under
the alternative are evidence that the model broke, and an intervention lets the posterior
follow. Here the alternative is a *shifted level*, the decision is a posterior probability,
and it is written once, for every family, on the scale every family shares: the normal score

    u = Phi^-1(F(x))    (from the event's tail probability, so it keeps its precision in the
                         far tails: a 50-sd value has u of about 50, not +inf)

of the event under the current posterior's predictive F. Under that predictive, ``u`` is
standard normal. Three explanations of the events of a run ``u_1 .. u_k`` (the events since
one that was more likely an outlier than not):

- *no shift*: each event is regular (density 1, relative to the predictive) or, with the
  rule's outlier rate ``r``, an outlier (the family's log ratio ``lr = log q/p`` of the
  widened predictive): the evidence is ``M0 = prod (1 - r + r e^lr_i)``;
- *a shift at the run's first event*: ``u_i ~ N(delta, 1)`` with an unknown new level
  ``delta ~ N(0, h^2)``, ``h`` the rule's ``outlier_scale`` (a shift as large as an outlier
  is wide). Relative to the predictive, its evidence is

      log B(k, S) = S^2 / (2k) - log(k h^2 + 1) / 2 - (S/k)^2 / (2 (h^2 + 1/k)),  S = sum u_i,

  the marginal likelihood of ``N(delta, 1)`` data under the ``N(0, h^2)`` prior over the
  product of standard normal densities (their ``sum u^2`` terms cancel).

With prior odds ``rho / (1 - rho)`` of a shift per event (``shift_rate``), the log posterior
odds of a shift after the run are ``log rho/(1 - rho) + log B(k, S) - log M0``. A wild value
followed by ordinary ones has a small ``S^2/k`` and large ``log M0``: an outlier. Values wild
in both directions: ``S`` cancels, the odds fall. Consecutive values around one new level:
``S^2/k`` grows like ``k delta^2 / 2``, the odds rise.

Per event (the run state is ``k, S, log M0`` in the stream's row, columns ``X_MON_*``):

1. an event the predictive cannot score (a log ratio NaN or +inf) is an outlier, and leaves
   the run as it is; while there is no run, the anomaly probability is the plain outlier
   probability (the mixture of :func:`._outlier.mixture_probability`); an event with
   probability above 1/2 starts a run;
2. inside a run, with ``pi`` the posterior probability of a shift so far, the event is scored
   against the three-way mixture: regular under the current posterior (weight ``(1 - pi)
   (1 - r)``), an outlier under it (``(1 - pi) r q/p``), regular at the new level (``pi``
   times the normal predictive of ``u`` at the new level, ``N(S / (k + 1/h^2), 1 + 1 /
   (k + 1/h^2))``, relative to ``N(0, 1)``). The anomaly probability is the outlier term's
   share, the robust weight of the current posterior's update the first term's share: an
   event that confirms a shift is neither an anomaly nor evidence for the old level;
3. the event joins the run; when the run's evidence no longer favours a shift (``log B <
   log M0``) the run ends; when it has at least ``monitor_run`` events and the posterior odds
   of a shift reach ``monitor_threshold``, the shift is accepted: the caller intervenes (the
   family widens its level, or restarts from the prior) and updates with the event in full.
"""

from __future__ import annotations

import math

import numpy as np

from bayestream.models._jit import inline
from bayestream.models._outlier import mixture_probability
from bayestream.models._protocol import (
    S_MONITOR_ACCEPT,
    S_MONITOR_RUN,
    S_OUTLIER_RATE,
    S_OUTLIER_SCALE,
    S_SHIFT_LOG_ODDS,
    X_MON_K,
    X_MON_LOGM0,
    X_MON_SUM,
)
from bayestream.models._special import ndtri

U_CLIP = 40.0  # |u| beyond this adds nothing (a tail probability of 1e-300 is u = 37)


@inline
def normal_score(tail: float, pit: float, side: int) -> float:
    """``u = Phi^-1(F(x))`` from the event's tail probability on ``side`` (0 upper: tail =
    1 - F; 1 lower: tail = F; 2 two-sided: tail = 2 min(F, 1 - F), the PIT gives the
    side). NaN (no score) gives 0."""
    if math.isnan(tail):
        return 0.0
    if side == 0:
        u = -ndtri(min(max(tail, 1e-300), 1.0))
    elif side == 1:
        u = ndtri(min(max(tail, 1e-300), 1.0))
    else:
        half = min(max(0.5 * tail, 1e-300), 0.5)
        u = -ndtri(half) if pit > 0.5 else ndtri(half)
    return min(max(u, -U_CLIP), U_CLIP)


@inline
def log_shift_evidence(k: float, total: float, h2: float) -> float:
    """``log B(k, S)`` of the module docstring: a shift's evidence over ``k`` events with
    normal scores summing to ``total``, relative to the current predictive."""
    mean = total / k
    return (
        0.5 * total * total / k - 0.5 * math.log(k * h2 + 1.0) - 0.5 * mean * mean / (h2 + 1.0 / k)
    )


@inline
def _logaddexp(a: float, b: float) -> float:
    hi = max(a, b)
    if hi == -math.inf:
        return hi
    return hi + math.log(math.exp(a - hi) + math.exp(b - hi))


@inline
def monitor_step(
    row: np.ndarray,
    extra: int,
    settings: np.ndarray,
    tail: float,
    pit: float,
    side: int,
    log_ratio: float,
) -> tuple[float, float, bool]:
    """Score one event inside the monitor and advance the run in ``row`` (steps 1 - 3 of the
    module docstring), from the event's tail probability and PIT on ``side`` and its outlier
    log ratio. Returns ``(anomaly probability, weight of the current posterior's update,
    accepted)``; on acceptance the run is cleared. Outside a run, an ordinary event costs what
    the plain outlier probability costs (its normal score is not computed)."""
    rate = settings[S_OUTLIER_RATE]
    k = row[extra + X_MON_K]
    plain = mixture_probability(log_ratio, rate)
    if math.isnan(log_ratio) or log_ratio == math.inf:  # nothing but an outlier explains it
        return plain, 0.0, False
    if k == 0.0 and plain <= 0.5:
        return plain, 1.0 - plain, False
    u = normal_score(tail, pit, side)
    log_regular = math.log1p(-rate)
    log_outlier = math.log(rate) + log_ratio
    event_m0 = _logaddexp(log_regular, log_outlier)
    if k == 0.0:  # an outlier candidate starts a run
        row[extra + X_MON_K] = 1.0
        row[extra + X_MON_SUM] = u
        row[extra + X_MON_LOGM0] = event_m0
        return plain, 1.0 - plain, False
    h2 = settings[S_OUTLIER_SCALE] ** 2
    prior_odds = settings[S_SHIFT_LOG_ODDS]
    total = row[extra + X_MON_SUM]
    log_m0 = row[extra + X_MON_LOGM0]
    odds = prior_odds + log_shift_evidence(k, total, h2) - log_m0
    log_pi = -_logaddexp(0.0, -odds)  # log sigmoid
    log_not = -_logaddexp(0.0, odds)
    precision = k + 1.0 / h2
    mean = total / precision
    var = 1.0 + 1.0 / precision
    log_shifted = -0.5 * math.log(var) - 0.5 * (u - mean) ** 2 / var + 0.5 * u * u
    a = log_not + log_regular
    b = log_not + log_outlier
    c = log_pi + log_shifted
    log_total = _logaddexp(_logaddexp(a, b), c)
    prob = math.exp(b - log_total)
    weight = math.exp(a - log_total)
    k += 1.0
    total += u
    log_m0 += event_m0
    evidence = log_shift_evidence(k, total, h2) - log_m0
    if evidence < 0.0:  # the run no longer favours a shift: it ends (this event may start one)
        k, total, log_m0 = (1.0, u, event_m0) if plain > 0.5 else (0.0, 0.0, 0.0)
    elif k >= settings[S_MONITOR_RUN] and prior_odds + evidence >= settings[S_MONITOR_ACCEPT]:
        row[extra + X_MON_K] = 0.0
        row[extra + X_MON_SUM] = 0.0
        row[extra + X_MON_LOGM0] = 0.0
        return prob, weight, True
    row[extra + X_MON_K] = k
    row[extra + X_MON_SUM] = total
    row[extra + X_MON_LOGM0] = log_m0
    return prob, weight, False


__all__ = ["log_shift_evidence", "monitor_step", "normal_score"]
