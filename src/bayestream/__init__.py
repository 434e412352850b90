"""bayestream: online Bayesian inference on telemetry streams.

The public surface is what this module exports (see README, "Python API"); everything else is
private and may change.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from bayestream.errors import BayestreamError, ConfigError, StateError

if TYPE_CHECKING:
    from bayestream.config import Config, load_config, parse_config
    from bayestream.engine import DeadLetter, Engine, Outputs
    from bayestream.schema.batch import RawBatch
    from bayestream.schema.reasons import Reason

__version__ = "0.1.0"

# Imported on first use, so that commands which need none of it (``bayestream broker``,
# ``--help``) start without loading numba, scipy and pydantic.
_LAZY = {
    "Config": "bayestream.config",
    "load_config": "bayestream.config",
    "parse_config": "bayestream.config",
    "DeadLetter": "bayestream.engine",
    "Engine": "bayestream.engine",
    "Outputs": "bayestream.engine",
    "RawBatch": "bayestream.schema.batch",
    "Reason": "bayestream.schema.reasons",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'bayestream' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "BayestreamError",
    "Config",
    "ConfigError",
    "DeadLetter",
    "Engine",
    "Outputs",
    "RawBatch",
    "Reason",
    "StateError",
    "__version__",
    "load_config",
    "parse_config",
]
