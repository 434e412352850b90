"""How the engine calls a rule's family: the one place that knows their kernels' signatures.

Conjugate families share one kernel, ``update(rows, rule, events, out, out_status)`` (the
grouped arguments of :mod:`bayestream.models._protocol`, the per-event skeleton of
:mod:`bayestream.models._skeleton`); the particle family takes its model's settings instead
of a prior and draws its particles from a per-stream counter-based generator seeded at
admission.
"""

from __future__ import annotations

import functools

import numpy as np

from bayestream.config import Rule
from bayestream.models import FAMILIES, TAIL_CODES
from bayestream.models._drift import B_FAP, B_KL
from bayestream.models._protocol import EXTRA, X_GAP, Events, Rows, RuleConstants
from bayestream.models._threads import SERIAL, Workers
from bayestream.state import RuleStore
from bayestream.state.index import fnv1a

PARTICLE_CODE = 5  # family code in state rows
_MODELS = {"local_level": 0, "poisson_rate": 1, "binomial_rate": 2}
_OBSERVATIONS = {"normal": 0, "student_t": 1}
_RESAMPLING = {"systematic": 0, "stratified": 1, "residual": 2}


def family_code(rule: Rule) -> int:
    """The stable family code written into state rows."""
    return PARTICLE_CODE if rule.family == "particle" else FAMILIES[rule.family].code


def observation_kind(rule: Rule) -> str:
    """What an event's ``value`` is for this rule: a real number, a count over an exposure,
    successes (failures for a binomial particle model) out of trials, or a category."""
    if rule.family == "particle":
        return {
            "local_level": "real",
            "poisson_rate": "count_exposure",
            "binomial_rate": "count_trials",
        }[rule.model or "local_level"]
    return {
        "normal_gamma": "real",
        "gamma_poisson": "count_exposure",
        "beta_binomial": "count_trials",
        "dirichlet": "category",
        "dlm": "real",
    }[rule.family]


def per_event(rule: Rule) -> bool:
    """Does elapsed time count events (a half-life in events, a ``dlm`` discounting per
    event)?"""
    if rule.family == "dlm":
        return rule.discounts.unit_seconds is None
    return rule.half_life_events is not None


def back_transform(rule: Rule, values: np.ndarray) -> np.ndarray:
    """Values on the model's scale back on the data's (quantiles commute with the monotone
    back-transform)."""
    out: np.ndarray = values
    with np.errstate(over="ignore"):
        if rule.transform == "log":
            out = np.exp(values)
        elif rule.transform == "log1p":
            out = np.expm1(values)
    return out


def on_admit(rule: Rule, store: RuleStore, slots: np.ndarray) -> None:
    """Prepare fresh rows (particle rules: seed each stream's generator from its name)."""
    if rule.family != "particle" or slots.size == 0:
        return
    from bayestream.models.particle import seed_rows

    keys = np.empty(slots.shape[0], dtype=np.uint64)
    for i, s in enumerate(slots.tolist()):
        key, metric = store.names[s]
        name = (key + "\x00" + metric).encode("utf-8")
        keys[i] = np.uint64(fnv1a(np.frombuffer(name, dtype=np.uint8))) ^ np.uint64(rule.seed)
    seed_rows(store.params, rule.particles, slots, keys)


def update(
    rule: Rule,
    store: RuleStore,
    lateness: float,
    settings: np.ndarray,
    prior: np.ndarray,
    slots: np.ndarray,
    ts: np.ndarray,
    x: np.ndarray,
    size: np.ndarray,
    expire: np.ndarray,
    out: np.ndarray,
    out_status: np.ndarray,
) -> None:
    """Apply events in order to the rows ``slots``, reporting into ``out`` (columns of
    :mod:`bayestream.models._protocol`); see the family modules. ``prior`` is the family's
    part of a new row (:func:`bayestream.engine.decisions.family_prior`)."""
    side = TAIL_CODES[rule.tail]
    if rule.family == "particle":
        from bayestream.models.particle import update as particle_update

        assert rule.model is not None and rule.initial is not None
        assert rule.process_noise is not None
        particle_update(
            store.params,
            store.last_ts,
            store.n_eff,
            store.obs_size,
            rule.particles,
            _MODELS[rule.model],
            _OBSERVATIONS[rule.observation],
            rule.nu,
            rule.process_noise,
            rule.per == "event",
            rule.observation_noise or 0.0,
            rule.initial.mean,
            rule.initial.sd,
            _RESAMPLING[rule.resampling],
            rule.ess_threshold,
            side,
            lateness,
            slots,
            ts,
            x,
            size,
            expire,
            settings,
            out,
            out_status,
        )
        return
    FAMILIES[rule.family].update(
        Rows(store.params, store.last_ts, store.n_eff, store.obs_size),
        RuleConstants(
            prior,
            settings,
            float(rule.half_life),
            per_event(rule),
            side,
            float(lateness),
        ),
        Events(slots, ts, x, size, expire),
        out,
        out_status,
    )


def summary_table(
    rule: Rule, store: RuleStore, slots: np.ndarray, workers: Workers = SERIAL
) -> np.ndarray:
    """One row of published figures per slot, in the record layout's order.

    Conjugate: params | mean sd | lo hi per level | quantiles | n_eff last_ts | decisions.
    Dirichlet: params | means | sds | per level, per category lo hi | n_eff last_ts | decisions.
    Particle: latent mean, latent sd | mean sd | lo hi per level | quantiles | n_eff last_ts |
    decisions | ess. Decisions: the last anomaly probability, the latest drift statistic and its
    false-alarm probability (NaN without drift).
    """
    m = slots.shape[0]
    levels = np.asarray(rule.credible_levels, dtype=np.float64)
    quantiles = np.asarray(rule.predictive_quantiles, dtype=np.float64)
    n_levels = levels.shape[0]
    if rule.family == "particle":
        return _particle_table(rule, store, slots, levels, quantiles)
    if rule.family == "dlm":
        return _dlm_table(rule, store, slots, levels, quantiles, workers)
    dirichlet = rule.family == "dirichlet"
    k = len(rule.prior_vector())
    width = k if dirichlet else 1
    mean = np.empty((m, width))
    sd = np.empty((m, width))
    lo = np.empty((m, n_levels, width))
    hi = np.empty((m, n_levels, width))
    q = np.empty((m, quantiles.shape[0]))
    summarize = FAMILIES[rule.family].summarize

    def chunk(a: int, b: int) -> None:
        summarize(
            store.params,
            store.obs_size,
            slots[a:b],
            levels,
            quantiles,
            mean[a:b],
            sd[a:b],
            lo[a:b],
            hi[a:b],
            q[a:b],
        )

    workers.run([functools.partial(chunk, a, b) for a, b in workers.ranges(m)])
    q = back_transform(rule, q)
    intervals = np.stack([lo, hi], axis=3).reshape(m, 2 * n_levels * width)
    parts = [store.params[slots, :k], mean, sd, intervals]
    if not dirichlet:
        parts.append(q)
    parts += [store.n_eff[slots, None], store.last_ts[slots, None], decisions(rule, store, slots)]
    return np.ascontiguousarray(np.concatenate(parts, axis=1))


def decisions(rule: Rule, store: RuleStore, slots: np.ndarray) -> np.ndarray:
    """``[m, 3]``: each stream's last anomaly probability, latest drift statistic and its
    false-alarm probability (the row's extra columns, :mod:`bayestream.models._protocol`)."""
    k = len(rule.prior_vector())
    out = np.full((slots.shape[0], 3), np.nan)
    out[:, 0] = store.params[slots, k]
    if rule.drift is not None:
        base = k + EXTRA
        out[:, 1] = store.params[slots, base + B_KL]
        out[:, 2] = store.params[slots, base + B_FAP]
    return out


def particle_codes(rule: Rule) -> tuple[int, int]:
    """A particle rule's model and observation codes, as its kernels take them."""
    assert rule.model is not None
    return _MODELS[rule.model], _OBSERVATIONS[rule.observation]


def _dlm_table(
    rule: Rule,
    store: RuleStore,
    slots: np.ndarray,
    levels: np.ndarray,
    quantiles: np.ndarray,
    workers: Workers,
) -> np.ndarray:
    """:func:`summary_table` of a ``dlm`` rule: its published parameters are figures of the
    state (:func:`bayestream.models.dlm.summarize`), not the row's columns."""
    from bayestream.models import dlm

    m = slots.shape[0]
    prior = np.ascontiguousarray(rule.prior_vector(), dtype=np.float64)
    n_levels = levels.shape[0]
    named = np.empty((m, len(rule.param_names)))
    mean, sd = np.empty((m, 1)), np.empty((m, 1))
    lo, hi = np.empty((m, n_levels, 1)), np.empty((m, n_levels, 1))
    none = np.empty((m, 0))  # its quantiles come from dlm_ahead below, not the summary's

    def chunk(a: int, b: int) -> None:
        dlm.summarize(
            store.params, prior, slots[a:b], levels, np.empty(0),
            named[a:b], mean[a:b], sd[a:b], lo[a:b], hi[a:b], none[a:b],
        )  # fmt: skip

    workers.run([functools.partial(chunk, a, b) for a, b in workers.ranges(m)])
    # the next observation one typical spacing (the row's X_GAP, seconds) after the newest
    gap = store.params[slots, len(prior) + X_GAP]
    q = dlm_ahead(rule, store, slots, np.where(np.isfinite(gap), gap, 0.0), quantiles)
    intervals = np.stack([lo, hi], axis=3).reshape(m, 2 * n_levels)
    parts = [named, mean, sd, intervals, q]
    parts += [store.n_eff[slots, None], store.last_ts[slots, None], decisions(rule, store, slots)]
    return np.ascontiguousarray(np.concatenate(parts, axis=1))


def dlm_ahead(
    rule: Rule, store: RuleStore, slots: np.ndarray, ahead: np.ndarray, quantiles: np.ndarray
) -> np.ndarray:
    """``[m, Q]``: a ``dlm`` rule's forecast quantiles of the observation ``ahead`` seconds
    (per stream) after each stream's newest event, on the data's scale
    (:func:`bayestream.models.dlm.forecast_quantiles`); a rule that discounts per event counts
    the horizon in events of the stream's typical spacing (one event when it has none yet)."""
    from bayestream.models import dlm

    prior = np.ascontiguousarray(rule.prior_vector(), dtype=np.float64)
    gap = store.params[slots, len(prior) + X_GAP]
    known = np.isfinite(gap) & (gap > 0)
    events = np.where(known, ahead / np.where(known, gap, 1.0), 1.0)
    dt = events if per_event(rule) else np.asarray(ahead, dtype=np.float64)
    at = store.last_ts[slots] + ahead
    q = np.empty((slots.shape[0], quantiles.shape[0]))
    dlm.forecast_quantiles(store.params, prior, slots, dt, at, events, quantiles, q)
    return back_transform(rule, q)


def _particle_table(
    rule: Rule, store: RuleStore, slots: np.ndarray, levels: np.ndarray, quantiles: np.ndarray
) -> np.ndarray:
    from bayestream.models.particle import summarize

    assert rule.model is not None
    m = slots.shape[0]
    mean, sd = np.empty(m), np.empty(m)
    latent_mean, latent_sd, ess = np.empty(m), np.empty(m), np.empty(m)
    lo, hi = np.empty((m, levels.shape[0])), np.empty((m, levels.shape[0]))
    q = np.empty((m, quantiles.shape[0]))
    summarize(
        store.params,
        store.obs_size,
        rule.particles,
        _MODELS[rule.model],
        _OBSERVATIONS[rule.observation],
        rule.nu,
        rule.observation_noise or 0.0,
        slots,
        levels,
        quantiles,
        mean,
        sd,
        lo,
        hi,
        q,
        latent_mean,
        latent_sd,
        ess,
    )
    intervals = np.stack([lo, hi], axis=2).reshape(m, 2 * levels.shape[0])
    return np.ascontiguousarray(
        np.column_stack(
            [
                latent_mean,
                latent_sd,
                mean,
                sd,
                intervals,
                q,
                store.n_eff[slots],
                store.last_ts[slots],
                decisions(rule, store, slots),
                ess,
            ]
        )
    )


__all__ = [
    "back_transform",
    "dlm_ahead",
    "family_code",
    "observation_kind",
    "on_admit",
    "particle_codes",
    "per_event",
    "summary_table",
    "update",
]
