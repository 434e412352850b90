"""Shared helpers for the test suite."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bayestream import Engine, RawBatch, parse_config

BASE_RULES: list[dict[str, Any]] = [
    {
        "metric": "lat",
        "family": "normal_gamma",
        "prior": {"mu": 0.0, "kappa": 1.0, "alpha": 2.0, "beta": 2.0},
        "tail": "upper",
    },
    {"metric": "loglat", "family": "normal_gamma", "transform": "log"},
    {"metric": "err", "family": "beta_binomial", "prior": {"alpha": 1.0, "beta": 9.0}},
    {"metric": "req", "family": "gamma_poisson", "prior": {"alpha": 2.0, "beta": 1.0}},
    {
        "metric": "status",
        "family": "dirichlet",
        "prior": {"categories": ["ok", "warn", "fail"], "alpha": [1.0, 1.0, 0.5]},
    },
]


def make_engine(rules: list[dict[str, Any]] | None = None, **engine: Any) -> Engine:
    """An engine over BASE_RULES (or ``rules``) with ``[engine]`` settings ``engine``. Rules
    get the plain conjugate update (``robust = false``) unless they say otherwise, so that
    posteriors can be compared with closed forms exactly."""
    rules = [{"robust": False, **rule} for rule in rules or BASE_RULES]
    return Engine(parse_config({"engine": engine, "rule": rules}))


def event(key: str, metric: str, ts: float | str, value: Any, **extra: Any) -> bytes:
    return json.dumps({"key": key, "metric": metric, "ts": ts, "value": value, **extra}).encode()


def batch(messages: list[bytes]) -> RawBatch:
    return RawBatch.from_messages(messages)


@pytest.fixture
def engine() -> Engine:
    return make_engine()
