"""Turn decoded columns into the numbers a family kernel takes, or a reason per event.

Checks run in a fixed order and the first failure is the event's reason: ``key``, ``metric``,
``unknown_metric``, ``ts``, then the family's ``value`` / ``trials`` / ``exposure`` checks.
Each check is a vectorised mask over the batch; only RFC 3339 timestamps and dirichlet
categories need a Python step, once per distinct string.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bayestream.config import Config, Rule
from bayestream.engine.kernels import observation_kind
from bayestream.schema.batch import FIELD, REASON_CODE, DecodedBatch, RawBatch
from bayestream.schema.reasons import Reason
from bayestream.schema.scan import KIND_ABSENT, KIND_NUMBER, KIND_STRING
from bayestream.schema.wire import parse_rfc3339
from bayestream.state import MAX_NAME_BYTES

_TS, _VALUE, _TRIALS, _EXPOSURE = FIELD["ts"], FIELD["value"], FIELD["trials"], FIELD["exposure"]


@dataclass
class Columns:
    """Per-event inputs of the kernels (meaningful where ``reason == 0``)."""

    ts: np.ndarray  # float64 seconds since the epoch
    x: np.ndarray  # the observation on the model's scale (category index for dirichlet)
    size: np.ndarray  # trials (beta_binomial), exposure (gamma_poisson), else 1


def _reject(reason: np.ndarray, mask: np.ndarray, why: Reason) -> None:
    reason[(reason == 0) & mask] = REASON_CODE[why]


def _bad_name(name: str) -> bool:
    """Empty, or longer than ``MAX_NAME_BYTES`` in UTF-8 (at most 4 bytes a character)."""
    return not name or (4 * len(name) > MAX_NAME_BYTES and len(name.encode()) > MAX_NAME_BYTES)


def check_names(
    reason: np.ndarray,
    stream: np.ndarray,
    keys: list[str],
    metrics: list[str],
    decoded: DecodedBatch,
) -> None:
    """Key and metric must be non-empty strings of at most ``MAX_NAME_BYTES`` UTF-8 bytes.

    The bound keeps every stream's changelog row and output records well inside Kafka's
    default 1 MB message size, so no valid event can make a record the broker refuses.
    """
    kind = decoded.kind
    _reject(reason, kind[:, FIELD["key"]] != KIND_STRING, Reason.INVALID_KEY)
    _reject(reason, kind[:, FIELD["metric"]] != KIND_STRING, Reason.INVALID_METRIC)
    if keys:
        unfit_key = np.fromiter(map(_bad_name, keys), dtype=np.bool_, count=len(keys))
        unfit_metric = np.fromiter(map(_bad_name, metrics), dtype=np.bool_, count=len(metrics))
        has = stream >= 0
        bad_key = np.zeros(stream.shape[0], dtype=np.bool_)
        bad_metric = np.zeros(stream.shape[0], dtype=np.bool_)
        bad_key[has] = unfit_key[stream[has]]
        bad_metric[has] = unfit_metric[stream[has]]
        _reject(reason, bad_key, Reason.INVALID_KEY)
        _reject(reason, bad_metric, Reason.INVALID_METRIC)


def event_times(
    reason: np.ndarray, batch: RawBatch, decoded: DecodedBatch, config: Config
) -> np.ndarray:
    """Seconds since the epoch per event: a JSON number, or an RFC 3339 string."""
    kind = decoded.kind[:, _TS]
    ts = np.where(kind == KIND_NUMBER, decoded.number[:, _TS], np.nan)
    parsed: dict[str, float | None] = {}
    for i in np.flatnonzero((kind == KIND_STRING) & (reason == 0)).tolist():
        text = decoded.string(batch, i, "ts")
        if text not in parsed:
            parsed[text] = parse_rfc3339(text)
        value = parsed[text]
        ts[i] = np.nan if value is None else value
    with np.errstate(invalid="ignore"):
        in_range = (ts >= config.engine.min_ts) & (ts <= config.engine.max_ts)
    _reject(reason, ~in_range, Reason.INVALID_TS)
    return ts


def family_inputs(
    reason: np.ndarray,
    rows: np.ndarray,
    rule: Rule,
    config: Config,
    batch: RawBatch,
    decoded: DecodedBatch,
    x: np.ndarray,
    size: np.ndarray,
) -> None:
    """Validate the events ``rows`` of one rule and fill ``x`` and ``size`` for them."""
    kind = decoded.kind[rows]
    num = decoded.number[rows]
    local = reason[rows]
    value = num[:, _VALUE]
    finite_value = (kind[:, _VALUE] == KIND_NUMBER) & np.isfinite(value)
    observed = observation_kind(rule)
    if observed == "category":
        local_x = _categories(local, rows, rule, batch, decoded)
        local_size = np.ones(rows.shape[0])
    elif observed == "real":
        _reject(local, ~finite_value, Reason.INVALID_VALUE)
        local_size = np.ones(rows.shape[0])
        if rule.transform == "log":
            with np.errstate(invalid="ignore"):
                _reject(local, ~(value > 0), Reason.NON_POSITIVE_VALUE)
            with np.errstate(divide="ignore", invalid="ignore"):
                local_x = np.log(value)
        elif rule.transform == "log1p":  # counts with zeros
            with np.errstate(invalid="ignore"):
                _reject(local, ~(value >= 0), Reason.NON_POSITIVE_VALUE)
            with np.errstate(invalid="ignore"):
                local_x = np.log1p(value)
        else:
            local_x = value
    else:
        _reject(local, ~finite_value, Reason.INVALID_VALUE)
        _count_checks(local, value)
        if observed == "count_trials":
            trials = num[:, _TRIALS]
            finite_trials = (kind[:, _TRIALS] == KIND_NUMBER) & np.isfinite(trials)
            _reject(local, ~finite_trials, Reason.INVALID_TRIALS)
            with np.errstate(invalid="ignore"):
                _reject(local, trials < 0, Reason.NEGATIVE_COUNT)
                _reject(local, np.floor(trials) != trials, Reason.NON_INTEGER_COUNT)
                # the Beta-Binomial tail is a sum over up to `trials` terms: bound the work
                _reject(
                    local, (trials < 1) | (trials > config.engine.max_trials), Reason.INVALID_TRIALS
                )
                _reject(local, value > trials, Reason.SUCCESSES_EXCEED_TRIALS)
            local_size = trials
        else:
            exposure = np.where(kind[:, _EXPOSURE] == KIND_ABSENT, 1.0, num[:, _EXPOSURE])
            ok_exposure = (kind[:, _EXPOSURE] == KIND_ABSENT) | (
                (kind[:, _EXPOSURE] == KIND_NUMBER) & np.isfinite(exposure)
            )
            _reject(local, ~ok_exposure, Reason.INVALID_EXPOSURE)
            with np.errstate(invalid="ignore"):
                _reject(local, ~(exposure > 0), Reason.INVALID_EXPOSURE)
            local_size = exposure
        local_x = value
    reason[rows] = local
    x[rows] = local_x
    size[rows] = local_size


def _count_checks(local: np.ndarray, value: np.ndarray) -> None:
    with np.errstate(invalid="ignore"):
        _reject(local, value < 0, Reason.NEGATIVE_COUNT)
        _reject(local, np.floor(value) != value, Reason.NON_INTEGER_COUNT)


def _categories(
    local: np.ndarray, rows: np.ndarray, rule: Rule, batch: RawBatch, decoded: DecodedBatch
) -> np.ndarray:
    """Category index of each event's string value."""
    index = {name: float(k) for k, name in enumerate(rule.categories)}
    out = np.full(rows.shape[0], np.nan)
    is_string = decoded.kind[rows, _VALUE] == KIND_STRING
    _reject(local, ~is_string, Reason.INVALID_VALUE)
    for j in np.flatnonzero(local == 0).tolist():
        out[j] = index.get(decoded.string(batch, int(rows[j]), "value"), np.nan)
    _reject(local, np.isnan(out), Reason.UNKNOWN_CATEGORY)
    return out


__all__ = ["Columns", "check_names", "event_times", "family_inputs"]
