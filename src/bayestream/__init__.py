"""bayestream: online Bayesian inference on telemetry streams.

The public surface is what this module exports (see README, "Python API"); everything else is
private and may change.
"""

from bayestream.config import Config, load_config, parse_config
from bayestream.engine import DeadLetter, Engine, Outputs
from bayestream.errors import BayestreamError, ConfigError, StateError
from bayestream.schema.batch import RawBatch
from bayestream.schema.reasons import Reason

__version__ = "0.1.0"

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
