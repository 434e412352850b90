"""The versioned JSON Schemas of the public contract: the input event and every output record.

``bayestream schema [NAME]`` prints them. Each output schema is generated from its record type
(:mod:`bayestream.schema.records`, what the engine encodes) and then made to say what the
encoder does that the type alone does not: every figure may be ``null`` (NaN and infinities
are written ``null``), and the per-rule objects of a posterior record (``params``, ``mean``,
``credible_intervals``, ...) have the shapes the README documents. ``SCHEMA_VERSION`` names the
contract: fields may be added within a version; a field removed, renamed or retyped makes a new
version. Each schema's ``$id`` carries it (``urn:bayestream:schema:<name>:v<version>``).
"""

from __future__ import annotations

import copy
from typing import Any

import msgspec

from bayestream.schema.reasons import Reason
from bayestream.schema.records import (
    AnomalyRecord,
    CalibrationRecord,
    DeadLetterRecord,
    DriftRecord,
    EvictionRecord,
    PosteriorRecord,
)

SCHEMA_VERSION = 1

DIALECT = "https://json-schema.org/draft/2020-12/schema"

RECORDS: dict[str, type[msgspec.Struct]] = {
    "posteriors": PosteriorRecord,
    "anomalies": AnomalyRecord,
    "drift": DriftRecord,
    "calibration": CalibrationRecord,
    "dead_letter": DeadLetterRecord,
    "evicted": EvictionRecord,
}
"""Output name (file of the file runner, topic of the Kafka runtime) -> its record type. On
Kafka, dead letters are the original message bytes with headers instead (README, "Kafka")."""

NAMES: tuple[str, ...] = ("event", *RECORDS)

_FIGURE: dict[str, Any] = {"type": ["number", "null"]}
_FIGURES: dict[str, Any] = {"type": "object", "additionalProperties": _FIGURE}
_PAIR: dict[str, Any] = {"type": "array", "items": _FIGURE, "minItems": 2, "maxItems": 2}
_PAIRS: dict[str, Any] = {"type": "object", "additionalProperties": _PAIR}

# The members of a posterior record whose shape depends on the rule (typed Any in the record):
# conjugate and particle rules have one figure per parameter, level or quantile; dirichlet
# rules one per category (an interval maps each level to {category: [lo, hi]}).
_POSTERIOR_SHAPES: dict[str, Any] = {
    "params": _FIGURES,
    "mean": {"anyOf": [_FIGURE, _FIGURES]},
    "sd": {"anyOf": [_FIGURE, _FIGURES]},
    "credible_intervals": {
        "type": "object",
        "additionalProperties": {"anyOf": [_PAIR, _PAIRS]},
    },
    "predictive_quantiles": _FIGURES,
    "slo": {
        "type": "object",
        "properties": {
            "objective": {"type": "number"},
            "violation_probability": _FIGURE,
            "error_budget_burn": _FIGURE,
        },
        "required": ["objective", "violation_probability", "error_budget_burn"],
        "additionalProperties": False,
    },
    # horizon seconds ("300") -> the forecast at last_ts + horizon (rules with horizons only)
    "forecast": {
        "type": "object",
        "additionalProperties": {
            "type": "object",
            "properties": {"at": _FIGURE, "quantiles": _FIGURES},
            "required": ["at", "quantiles"],
            "additionalProperties": False,
        },
    },
}

# String members that take one of a few values (a test keeps them equal to the configuration's).
FAMILY_NAMES = ("normal_gamma", "beta_binomial", "gamma_poisson", "dirichlet", "particle", "dlm")
_ENUMS: dict[str, dict[str, tuple[str, ...]]] = {
    "posteriors": {"family": FAMILY_NAMES},
    "anomalies": {
        "tail": ("upper", "lower", "two_sided"),
        "selected_by": ("tail_probability", "anomaly_probability", "fdr"),
    },
    "drift": {"reference": ("previous", "baseline")},
    "calibration": {"family": FAMILY_NAMES},
    "dead_letter": {"reason": tuple(reason.value for reason in Reason)},
    "evicted": {"reason": ("idle_ttl",)},
}

_COVERAGE: dict[str, Any] = {
    "type": "array",
    "items": {
        "type": "object",
        "properties": {
            "kind": {"enum": ["interval", "quantile"]},
            "nominal": {"type": "number"},
            "observed": _FIGURE,
        },
        "required": ["kind", "nominal", "observed"],
    },
}

_EVENT: dict[str, Any] = {
    "title": "Event",
    "description": "One telemetry event: one JSON object per line or Kafka message. Other "
    "members are ignored. Bad values never stop a stream: they become dead letters.",
    "type": "object",
    "properties": {
        "key": {"type": "string", "minLength": 1, "description": "the entity"},
        "metric": {"type": "string", "minLength": 1, "description": "picks the rule"},
        "ts": {
            "anyOf": [{"type": "number"}, {"type": "string", "format": "date-time"}],
            "description": "event time: seconds since the epoch, or an RFC 3339 string",
        },
        "value": {
            "anyOf": [{"type": "number"}, {"type": "string"}],
            "description": "the observation; for dirichlet rules the category (a string)",
        },
        "trials": {"type": "integer", "minimum": 1, "description": "beta_binomial"},
        "exposure": {"type": "number", "exclusiveMinimum": 0, "description": "gamma_poisson"},
    },
    "required": ["key", "metric", "ts", "value"],
}


def json_schema(name: str) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of the input ``event`` or of an output in
    :data:`RECORDS`; raises ``KeyError`` for another name."""
    if name == "event":
        body = copy.deepcopy(_EVENT)
    else:
        generated = msgspec.json.schema(RECORDS[name])
        body = _nullable_figures(generated["$defs"][generated["$ref"].rsplit("/", 1)[1]])
        properties = body["properties"]
        if name == "posteriors":
            for member, shape in _POSTERIOR_SHAPES.items():
                properties[member] = copy.deepcopy(shape)
        if name == "calibration":
            properties["coverage"] = copy.deepcopy(_COVERAGE)
        for member, values in _ENUMS[name].items():
            properties[member]["enum"] = list(values)
    return {
        "$schema": DIALECT,
        "$id": f"urn:bayestream:schema:{name}:v{SCHEMA_VERSION}",
        "x-bayestream-schema-version": SCHEMA_VERSION,
        **body,
    }


def _nullable_figures(node: Any) -> Any:
    """A copy of a generated schema in which every number may also be null."""
    if isinstance(node, list):
        return [_nullable_figures(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _nullable_figures(value) for key, value in node.items()}
    if out.get("type") == "number":  # (counts and positions are never NaN)
        out["type"] = ["number", "null"]
    return out


__all__ = ["FAMILY_NAMES", "NAMES", "RECORDS", "SCHEMA_VERSION", "json_schema"]
