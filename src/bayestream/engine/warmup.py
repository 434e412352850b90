"""Compile every kernel a configuration needs before the first real message arrives."""

from __future__ import annotations

import json
from typing import Any

from bayestream.config import Config
from bayestream.engine.engine import Engine
from bayestream.engine.kernels import observation_kind
from bayestream.schema.batch import RawBatch

_SAMPLE: dict[str, dict[str, Any]] = {
    "real": {"value": 1.5},
    "count_exposure": {"value": 2, "exposure": 1.5},
    "count_trials": {"value": 1, "trials": 3},
}


def warm_up(config: Config) -> None:
    """Run a few events per rule through a scratch engine with this configuration (decoders,
    stream index, family kernels, summaries and the JSON writer all compile, or load from the
    on-disk cache); the real engine's state is not touched."""
    rules = tuple(
        rule.model_copy(update={"metric": f"__warm_up_{i}__"}) for i, rule in enumerate(config.rule)
    )
    scratch = Engine(config.model_copy(update={"rule": rules}))
    messages = []
    for i, rule in enumerate(rules):
        kind = observation_kind(rule)
        fields: dict[str, Any] = (
            {"value": rule.categories[0]} if kind == "category" else _SAMPLE[kind]
        )
        for t in (1.0, 2.0):
            event = {"key": "k", "metric": f"__warm_up_{i}__", "ts": 1e9 + t, **fields}
            messages.append(json.dumps(event).encode())
    messages.append('{"key":"ü","metric":"__warm_up_0__","ts":1e9,"value":1}'.encode())
    messages.append(b"not json")
    out = scratch.process(RawBatch.from_messages(messages))
    out.posteriors.json_lines()
    scratch.flush().posteriors.json_lines()


__all__ = ["warm_up"]
