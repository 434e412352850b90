"""Output records: public contract (README, "Outputs"). JSON via msgspec; NaN is written null.

Each record type mirrors one output topic of the Kafka runtime and one file of the file runner.
"""

from __future__ import annotations

from typing import Any

import msgspec


class PosteriorRecord(msgspec.Struct, gc=False, omit_defaults=True):
    """The latest posterior of one stream (``posteriors``; compacted on Kafka, key = stream).

    ``params``, ``credible_intervals`` and ``predictive_quantiles`` are JSON objects; in Python
    they are small structs generated per rule (for speed), so use :meth:`to_dict` (or
    ``msgspec.to_builtins``) for plain dictionaries. For dirichlet, ``mean`` and ``sd`` map each
    category to its marginal figure, ``credible_intervals`` maps each level to
    {category: [lo, hi]}, and ``predictive_quantiles`` is empty.
    """

    key: str
    metric: str
    family: str
    params: Any
    mean: Any
    sd: Any
    credible_intervals: Any
    predictive_quantiles: Any
    n_eff: float
    last_ts: float | None
    anomaly_probability: float | None  # of the stream's newest event
    drift_statistic: float | None  # the latest windowed KL (None without drift or before one)
    drift_false_alarm_probability: float | None
    ess: float | None = None  # particle family: effective sample size of the weights
    # rules with forecast_horizons_seconds: {"300": {"at": ts, "quantiles": {"0.5": ..}}, ...}
    forecast: dict[str, Any] | None = None
    # rules with slo: {"objective": o, "violation_probability": p, "error_budget_burn": b}
    slo: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """The record as plain JSON-ready Python values (what consumers of the topic see)."""
        out: dict[str, Any] = msgspec.to_builtins(self)
        return out


def object_struct(name: str, fields: list[str]) -> type[msgspec.Struct]:
    """A struct type that encodes as a JSON object with exactly these member names, in order
    (names need not be identifiers: "0.95" is fine)."""
    attrs = [f"f{i}" for i in range(len(fields))]
    return msgspec.defstruct(
        name,
        [(a, Any) for a in attrs],
        rename=dict(zip(attrs, fields, strict=True)),
        gc=False,
    )


class AnomalyRecord(msgspec.Struct, omit_defaults=True, gc=False):
    """One event selected as anomalous by its rule (tail probability below the threshold, or
    per the rule's ``anomaly_probability_threshold`` or ``fdr``); ``alert`` when it is also
    the alert of its incident: more surprising (``-log10`` of its tail probability) than every
    event of the stream's previous ``alert_window_events``."""

    key: str
    metric: str
    ts: float
    value: float | str
    tail_probability: float
    anomaly_probability: float
    tail: str
    # the policy that selected the event and its cut-off: "tail_probability" (tail probability
    # below threshold = anomaly_threshold), "anomaly_probability" (anomaly probability at
    # least threshold = anomaly_probability_threshold) or "fdr" (Benjamini-Hochberg at level
    # threshold = fdr over the rule's events of the batch)
    threshold: float
    selected_by: str
    alert: bool  # page on these: one per incident (always present)
    trials: float | None = None
    exposure: float | None = None
    # the central interval of the predictive the event was scored against, at the rule's
    # widest credible level: {"0.95": [lo, hi]} (absent for categories)
    predictive_interval: dict[str, list[float | None]] | None = None


class DeadLetterRecord(msgspec.Struct, omit_defaults=True):
    """A message that could not be applied, with a stable ``reason`` code (see Reason)."""

    reason: str
    detail: str
    raw: str
    line: int | None = None
    topic: str | None = None
    partition: int | None = None
    offset: int | None = None


class DriftRecord(msgspec.Struct, gc=False):
    """A drift alarm: a window of a stream whose posterior moved away from the reference by
    more than its false-alarm rate allows (``drift``)."""

    key: str
    metric: str
    window_start: float
    window_end: float
    kl: float
    false_alarm_probability: float
    direction: str  # "up" | "down" (the mean), or the category that rose (dirichlet)
    events: float  # events in the window
    reference_events: float  # (weighted) events behind the reference
    reference: str  # "previous" | "baseline"


class CalibrationRecord(msgspec.Struct, gc=False):
    """How honest a rule's predictives and anomaly probabilities have been lately
    (``calibration``): the rolling PIT histogram (densities per tenth; all 1 when calibrated),
    its chi-square uniformity p-value on the effective count, observed against nominal
    coverage of the published quantiles and central intervals, and, with labels, the Brier
    score, expected and maximum calibration error and the reliability table
    ``[lower, upper, count, mean probability, observed frequency]`` per bin."""

    metric: str  # the rule's metric pattern
    family: str
    events: int  # events of the rule seen by the monitor
    watermark: float | None  # newest event time applied when the record was made
    pit_histogram: list[float | None]
    pit_effective_count: float
    pit_uniformity_p_value: float | None
    coverage: list[dict[str, Any]]  # {"kind": "interval" | "quantile", "nominal", "observed"}
    labelled: int = 0
    brier: float | None = None
    ece: float | None = None
    mce: float | None = None
    reliability: list[list[float | None]] = msgspec.field(default_factory=list)


class EvictionRecord(msgspec.Struct):
    """A stream dropped from state (idle past its TTL); a tombstone on Kafka."""

    key: str
    metric: str
    last_ts: float | None
    reason: str


ENCODER = msgspec.json.Encoder()

__all__ = [
    "ENCODER",
    "AnomalyRecord",
    "CalibrationRecord",
    "DeadLetterRecord",
    "DriftRecord",
    "EvictionRecord",
    "PosteriorRecord",
    "object_struct",
]
