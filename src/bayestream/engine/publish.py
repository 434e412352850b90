"""Posterior summaries of a rule's streams as output records.

The summary kernel fills one float matrix for all the streams a batch touched; records are then
built from plain Python lists, row by row, with non-finite figures (an undefined sd, an
overflowing quantile) written as null.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from bayestream.config import Rule
from bayestream.models import FAMILIES
from bayestream.schema.records import PosteriorRecord, object_struct
from bayestream.state import RuleStore


def _finite_or_none(values: list[float]) -> list[float | None]:
    return [v if math.isfinite(v) else None for v in values]


def posterior_records(rule: Rule, store: RuleStore, slots: np.ndarray) -> list[PosteriorRecord]:
    """One :class:`PosteriorRecord` per slot, in the order given."""
    m = slots.shape[0]
    if m == 0:
        return []
    family = FAMILIES[rule.family]
    levels = np.asarray(rule.credible_levels, dtype=np.float64)
    quantiles = np.asarray(rule.predictive_quantiles, dtype=np.float64)
    n_levels, n_q = levels.shape[0], quantiles.shape[0]
    dirichlet = rule.family == "dirichlet"
    width = store.width if dirichlet else 1
    mean = np.empty((m, width))
    sd = np.empty((m, width))
    lo = np.empty((m, n_levels, width))
    hi = np.empty((m, n_levels, width))
    q = np.empty((m, n_q))
    family.summarize(store.params, store.obs_size, slots, levels, quantiles, mean, sd, lo, hi, q)
    if rule.transform == "log":
        with np.errstate(over="ignore"):
            q = np.exp(q)  # quantiles commute with the monotone back-transform
    if dirichlet:
        return _dirichlet_records(rule, store, slots, mean, sd, lo, hi)
    # one row per stream: params | mean sd | lo_1 hi_1 .. lo_L hi_L | q_1 .. q_Q | n_eff last_ts
    table = np.concatenate(
        [
            store.params[slots],
            mean,
            sd,
            np.stack([lo[:, :, 0], hi[:, :, 0]], axis=2).reshape(m, 2 * n_levels),
            q,
            store.n_eff[slots, None],
            store.last_ts[slots, None],
        ],
        axis=1,
    )
    finite = np.isfinite(table).all(axis=1).tolist()
    rows = table.tolist()
    shape = _shape(rule)
    params_t, intervals_t, quantiles_t = shape
    w = store.width
    c0 = w + 2
    q0 = c0 + 2 * n_levels
    family_name = rule.family
    store_names = store.names
    records = []
    for r, slot in enumerate(slots.tolist()):
        row: list[Any] = rows[r] if finite[r] else _finite_or_none(rows[r])
        key, metric = store_names[slot]
        records.append(
            PosteriorRecord(
                key,
                metric,
                family_name,
                params_t(*row[:w]),
                row[w],
                row[w + 1],
                intervals_t(*[row[c0 + 2 * j : c0 + 2 * j + 2] for j in range(n_levels)]),
                quantiles_t(*row[q0 : q0 + n_q]),
                row[-2],
                row[-1],
            )
        )
    return records


_SHAPES: dict[tuple[Any, ...], tuple[Any, Any, Any]] = {}


def _shape(rule: Rule) -> tuple[Any, Any, Any]:
    """Struct types for a rule's params, credible intervals and predictive quantiles."""
    key = (rule.param_names, rule.credible_levels, rule.predictive_quantiles)
    shape = _SHAPES.get(key)
    if shape is None:
        shape = _SHAPES[key] = (
            object_struct("Params", list(rule.param_names)),
            object_struct("CredibleIntervals", [str(c) for c in rule.credible_levels]),
            object_struct("PredictiveQuantiles", [str(p) for p in rule.predictive_quantiles]),
        )
    return shape


def _dirichlet_records(
    rule: Rule,
    store: RuleStore,
    slots: np.ndarray,
    mean: np.ndarray,
    sd: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
) -> list[PosteriorRecord]:
    names = rule.param_names
    level_keys = [str(level) for level in rule.credible_levels]
    params = store.params[slots].tolist()
    means, sds, los, his = mean.tolist(), sd.tolist(), lo.tolist(), hi.tolist()
    n_eff = store.n_eff[slots].tolist()
    last_ts = _finite_or_none(store.last_ts[slots].tolist())
    records = []
    for r, slot in enumerate(slots.tolist()):
        key, metric = store.names[slot]
        intervals = {
            level: {c: [los[r][j][k], his[r][j][k]] for k, c in enumerate(names)}
            for j, level in enumerate(level_keys)
        }
        records.append(
            PosteriorRecord(
                key,
                metric,
                rule.family,
                dict(zip(names, params[r], strict=True)),
                dict(zip(names, means[r], strict=True)),
                dict(zip(names, sds[r], strict=True)),
                intervals,
                {},
                n_eff[r],
                last_ts[r],
            )
        )
    return records


__all__ = ["posterior_records"]
