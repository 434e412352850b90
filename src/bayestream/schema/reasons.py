"""Stable dead-letter reason codes: public contract (README, "Dead letters").

A bad event never raises out of the engine and never touches a posterior; it becomes a
dead-letter record carrying one of these codes, the original bytes and its position.
"""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    """Why an input message became a dead letter."""

    INVALID_JSON = "invalid_json"  # not UTF-8 JSON, or not a JSON object
    INVALID_KEY = "invalid_key"  # key missing, not a string, empty, or > 65535 UTF-8 bytes
    INVALID_METRIC = "invalid_metric"  # metric missing, not a string, empty, or > 65535 UTF-8 bytes
    INVALID_TS = "invalid_ts"  # ts missing, not a number / RFC 3339 string, or out of range
    INVALID_VALUE = "invalid_value"  # value missing, wrong type, or not finite
    INVALID_TRIALS = "invalid_trials"  # beta_binomial: trials missing, not a positive integer
    INVALID_EXPOSURE = "invalid_exposure"  # gamma_poisson: exposure not a finite number > 0
    NEGATIVE_COUNT = "negative_count"  # a count (successes, events) below zero
    NON_INTEGER_COUNT = "non_integer_count"  # a count with a fractional part
    SUCCESSES_EXCEED_TRIALS = "successes_exceed_trials"  # beta_binomial: value > trials
    NON_POSITIVE_VALUE = "non_positive_value"  # transform = "log" and value <= 0
    UNKNOWN_METRIC = "unknown_metric"  # no rule matches the metric
    UNKNOWN_CATEGORY = "unknown_category"  # dirichlet: value is not a configured category
    LATE_EVENT = "late_event"  # ts older than the stream's newest by more than the lateness
    STREAM_LIMIT = "stream_limit"  # a new stream while max_streams are tracked


__all__ = ["Reason"]
