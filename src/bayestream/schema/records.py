"""Output records: public contract (README, "Outputs"). JSON via msgspec; NaN is written null.

Each record type mirrors one output topic of the Kafka runtime and one file of the file runner.
"""

from __future__ import annotations

from typing import Any

import msgspec


class PosteriorRecord(msgspec.Struct, omit_defaults=False):
    """The latest posterior of one stream (``posteriors``; compacted on Kafka, key = stream).

    For dirichlet, ``mean`` and ``sd`` map each category to its marginal figure,
    ``credible_intervals`` maps each level to {category: [lo, hi]}, and
    ``predictive_quantiles`` is empty.
    """

    key: str
    metric: str
    family: str
    params: dict[str, float]
    mean: float | dict[str, float] | None
    sd: float | dict[str, float] | None
    credible_intervals: dict[str, Any]
    predictive_quantiles: dict[str, float | None]
    n_eff: float
    last_ts: float | None


class AnomalyRecord(msgspec.Struct, omit_defaults=True):
    """One event whose predictive tail probability fell below its rule's threshold."""

    key: str
    metric: str
    ts: float
    value: float | str
    tail_probability: float
    tail: str
    threshold: float
    trials: float | None = None
    exposure: float | None = None


class DeadLetterRecord(msgspec.Struct, omit_defaults=True):
    """A message that could not be applied, with a stable ``reason`` code (see Reason)."""

    reason: str
    detail: str
    raw: str
    line: int | None = None
    topic: str | None = None
    partition: int | None = None
    offset: int | None = None


class EvictionRecord(msgspec.Struct):
    """A stream dropped from state (idle past its TTL); a tombstone on Kafka."""

    key: str
    metric: str
    last_ts: float | None
    reason: str


ENCODER = msgspec.json.Encoder()

__all__ = ["ENCODER", "AnomalyRecord", "DeadLetterRecord", "EvictionRecord", "PosteriorRecord"]
