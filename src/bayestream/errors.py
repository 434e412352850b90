"""The one error tree of bayestream.

Foreign exceptions are translated at the boundary (``raise ConfigError(...) from exc``).
Bad *input events* are not exceptions: they become dead-letter records with a stable reason
code (see :mod:`bayestream.schema.reasons`); the policy for them lives in the engine alone.
"""

from __future__ import annotations


class BayestreamError(Exception):
    """Base class of every error bayestream raises on purpose."""


class ConfigError(BayestreamError):
    """The configuration file is missing, unreadable or invalid; the message names the field."""


class StateError(BayestreamError):
    """A stored state row cannot be read (unknown version, wrong family or size)."""


__all__ = ["BayestreamError", "ConfigError", "StateError"]
