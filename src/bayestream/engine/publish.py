"""Posterior summaries of a rule's streams as output records."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from bayestream.config import Rule
from bayestream.models import FAMILIES
from bayestream.schema.records import PosteriorRecord
from bayestream.state import RuleStore


def _num(value: float) -> float | None:
    return value if math.isfinite(value) else None


def posterior_records(rule: Rule, store: RuleStore, slots: np.ndarray) -> list[PosteriorRecord]:
    """One :class:`PosteriorRecord` per slot, in the order given."""
    m = slots.shape[0]
    if m == 0:
        return []
    family = FAMILIES[rule.family]
    levels = np.asarray(rule.credible_levels, dtype=np.float64)
    quantiles = np.asarray(rule.predictive_quantiles, dtype=np.float64)
    width = store.width if rule.family == "dirichlet" else 1
    mean = np.empty((m, width))
    sd = np.empty((m, width))
    lo = np.empty((m, levels.shape[0], width))
    hi = np.empty((m, levels.shape[0], width))
    q = np.empty((m, quantiles.shape[0]))
    family.summarize(store.params, store.obs_size, slots, levels, quantiles, mean, sd, lo, hi, q)
    if rule.transform == "log":
        with np.errstate(over="ignore"):
            q = np.exp(q)  # quantiles commute with the monotone back-transform
    names = rule.param_names
    level_keys = [str(level) for level in rule.credible_levels]
    quantile_keys = [str(p) for p in rule.predictive_quantiles]
    dirichlet = rule.family == "dirichlet"
    params = store.params[slots].tolist()
    n_eff = store.n_eff[slots].tolist()
    last_ts = store.last_ts[slots].tolist()
    mean_l, sd_l, lo_l, hi_l, q_l = mean.tolist(), sd.tolist(), lo.tolist(), hi.tolist(), q.tolist()
    records = []
    for r, slot in enumerate(slots.tolist()):
        key, metric = store.names[slot]  # type: ignore[misc]
        intervals: dict[str, Any]
        if dirichlet:
            mean_v: Any = dict(zip(names, mean_l[r], strict=True))
            sd_v: Any = dict(zip(names, sd_l[r], strict=True))
            intervals = {
                level: {c: [lo_l[r][j][k], hi_l[r][j][k]] for k, c in enumerate(names)}
                for j, level in enumerate(level_keys)
            }
            predictive: dict[str, float | None] = {}
        else:
            mean_v = _num(mean_l[r][0])
            sd_v = _num(sd_l[r][0])
            intervals = {
                level: [_num(lo_l[r][j][0]), _num(hi_l[r][j][0])]
                for j, level in enumerate(level_keys)
            }
            predictive = {p: _num(v) for p, v in zip(quantile_keys, q_l[r], strict=True)}
        records.append(
            PosteriorRecord(
                key=key,
                metric=metric,
                family=rule.family,
                params=dict(zip(names, params[r], strict=True)),
                mean=mean_v,
                sd=sd_v,
                credible_intervals=intervals,
                predictive_quantiles=predictive,
                n_eff=n_eff[r],
                last_ts=_num(last_ts[r]),
            )
        )
    return records


__all__ = ["posterior_records"]
