r"""Forecasts over horizons: what a stream will show ``H`` seconds after its newest event.

A rule with ``forecast_horizons_seconds`` publishes, in each posterior record, for each
horizon ``H`` the time ``at = last_ts + H`` and the ``forecast_quantiles`` of:

- **normal_gamma**: the observation at that time, from the posterior forgotten over the
  horizon (``d = 2^(-H/h)`` toward the prior, as an event at ``at`` would see it; with
  ``half_life_events``, ``H`` is counted in the stream's typical spacing, its exponentially
  weighted mean gap): Student-t quantiles, back-transformed with ``transform = "log"``;
- **gamma_poisson**: the *total* count over the next ``H`` units of exposure at the stream's
  rate: Negative Binomial(a, b / (b + H)) (with exposure measured in seconds, "requests in the
  next 5 minutes"); no forgetting over the horizon;
- **beta_binomial**: the count of what ``value`` counts among the next ``N`` trials, ``N`` the
  stream's recent trials per second (its newest event's trials over its typical spacing)
  times ``H``, rounded, at least 1 and at most ``[engine] max_trials``: Beta-Binomial(N, a, b);
- **particle**, ``local_level``: the observation at that time, each particle moved by the
  process noise over the horizon, ``x + N(0, q H)`` (``H`` counted in events with ``per =
  "event"``), so the predictive mixture's components widen from ``r`` to ``r + q H``: exact
  for Normal observations; for Student-t ones the added variance widens the t's scale
  (an approximation); ``poisson_rate`` / ``binomial_rate``: the count over the horizon at each
  particle's current rate (the cloud is not propagated: documented approximation);
- **dlm**: the observation at that time with the seasonal cycle: the state evolved over the
  horizon (the trend's slope times the horizon, each component's discount over it, the
  Fourier terms at the phase of ``at``), its Student-t forecast (``n`` degrees of freedom,
  ``f = F' a``, scale² ``S (F' R* F + 1)``), back-transformed (log, log1p); with a rule that
  discounts per event, the horizon counts events of the stream's typical spacing;
- **dirichlet**: none (categories have no quantiles; the configuration refuses horizons).

All quantiles are exact (the families' own predictive quantile kernels, no sampling), but for
the particle family's mixture, which is solved to its kernels' tolerance.
"""

from __future__ import annotations

import numpy as np

from bayestream.config import Rule
from bayestream.engine.kernels import back_transform, dlm_ahead
from bayestream.models import FAMILIES
from bayestream.models._protocol import EXTRA, X_GAP
from bayestream.models.normal_gamma import decayed
from bayestream.state import RuleStore


def columns(rule: Rule) -> int:
    """Numbers per record: per horizon, ``at`` and the quantiles."""
    return len(rule.forecast_horizons_seconds) * (1 + len(rule.forecast_q))


def forecast_table(
    rule: Rule, store: RuleStore, slots: np.ndarray, max_trials: float
) -> np.ndarray:
    """``[m, H (1 + Q)]``: per horizon, ``at`` then the forecast quantiles, per stream of
    ``slots``."""
    horizons = rule.forecast_horizons_seconds
    qs = np.asarray(rule.forecast_q, dtype=np.float64)
    m, n_q = slots.shape[0], qs.shape[0]
    out = np.empty((m, len(horizons), 1 + n_q))
    last = store.last_ts[slots]
    k = len(rule.prior_vector())
    gap = np.full(m, np.nan)  # the streams' typical spacing
    if store.params.shape[1] >= k + EXTRA:
        gap = store.params[slots, k + X_GAP]
    for j, h in enumerate(horizons):
        out[:, j, 0] = last + h
        out[:, j, 1:] = _quantiles(rule, store, slots, float(h), gap, qs, max_trials)
    return out.reshape(m, len(horizons) * (1 + n_q))


def _quantiles(
    rule: Rule,
    store: RuleStore,
    slots: np.ndarray,
    h: float,
    gap: np.ndarray,
    qs: np.ndarray,
    max_trials: float,
) -> np.ndarray:
    m = slots.shape[0]
    if rule.family == "particle":
        return _particle(rule, store, slots, h, gap, qs, max_trials)
    if rule.family == "dlm":
        return _dlm(rule, store, slots, h, gap, qs)
    params = store.params[slots]
    size = store.obs_size[slots]
    if rule.family == "normal_gamma":
        params = params.copy()
        params[:, :4] = decayed(
            params[:, :4], np.asarray(rule.prior_vector()), _decay(rule, h, gap)
        )
    elif rule.family == "gamma_poisson":
        size = np.full(m, h)
    elif rule.family == "beta_binomial":
        size = _trials(size, gap, h, max_trials)
    else:
        raise ValueError(f"no forecast for family {rule.family!r}")
    q = np.empty((m, qs.shape[0]))
    one = np.empty((m, 1))
    none = np.empty((m, 0, 1))
    FAMILIES[rule.family].summarize(
        params, size, np.arange(m), np.empty(0), qs, one, one.copy(), none, none.copy(), q
    )
    return back_transform(rule, q)


def _dlm(
    rule: Rule, store: RuleStore, slots: np.ndarray, h: float, gap: np.ndarray, qs: np.ndarray
) -> np.ndarray:
    return dlm_ahead(rule, store, slots, np.full(slots.shape[0], h), qs)


def _decay(rule: Rule, h: float, gap: np.ndarray) -> np.ndarray:
    """The forgetting factor over the horizon, per stream (1: no forgetting)."""
    if rule.half_life_seconds is not None:
        return np.full(np.shape(gap), 2.0 ** (-h / rule.half_life_seconds))
    if rule.half_life_events is not None:  # the horizon in the stream's typical spacing
        events = np.where(np.isfinite(gap) & (gap > 0), h / np.where(gap > 0, gap, 1.0), 0.0)
        return np.asarray(2.0 ** (-events / rule.half_life_events))
    return np.ones(np.shape(gap))


def _trials(size: np.ndarray, gap: np.ndarray, h: float, max_trials: float) -> np.ndarray:
    """The trials expected over the horizon: the newest event's trials per typical gap."""
    with np.errstate(divide="ignore", invalid="ignore"):
        n = np.where(np.isfinite(gap) & (gap > 0), np.round(size / gap * h), size)
    return np.asarray(np.clip(n, 1.0, max_trials))


def _particle(
    rule: Rule,
    store: RuleStore,
    slots: np.ndarray,
    h: float,
    gap: np.ndarray,
    qs: np.ndarray,
    max_trials: float,
) -> np.ndarray:
    from bayestream.engine.kernels import particle_codes
    from bayestream.models.particle import summarize

    assert rule.model is not None and rule.process_noise is not None
    m = slots.shape[0]
    model, observation = particle_codes(rule)
    params = store.params[slots]
    size = store.obs_size[slots]
    added = np.zeros(m)  # the process noise's variance over the horizon
    if rule.model == "local_level":
        if rule.per == "second":
            added[:] = rule.process_noise * h
        else:  # the horizon in the stream's typical spacing
            ok = np.isfinite(gap) & (gap > 0)
            added[ok] = rule.process_noise * h / gap[ok]
    elif rule.model == "poisson_rate":
        size = np.full(m, h)
    else:
        size = _trials(size, gap, h, max_trials)
    q = np.empty((m, qs.shape[0]))
    r = rule.observation_noise or 0.0
    groups = [np.arange(m)] if (added == added[0]).all() else [np.array([i]) for i in range(m)]
    for rows in groups:
        n = rows.shape[0]
        scratch = [np.empty(n) for _ in range(5)]
        out = np.empty((n, qs.shape[0]))
        summarize(
            params,
            size,
            rule.particles,
            model,
            observation,
            rule.nu,
            r + float(added[rows[0]]),
            rows,
            np.empty(0),
            qs,
            scratch[0],
            scratch[1],
            np.empty((n, 0)),
            np.empty((n, 0)),
            out,
            scratch[2],
            scratch[3],
            scratch[4],
        )
        q[rows] = out
    return q


__all__ = ["columns", "forecast_table"]
