"""Read a TOML file into a validated :class:`Config`, with errors that name the bad field."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from bayestream.config.model import Config
from bayestream.errors import ConfigError


def parse_config(data: dict[str, Any], source: str = "<config>") -> Config:
    """Validate an already-parsed TOML document."""
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, source, data)) from exc


def load_config(path: str | Path) -> Config:
    """Load and validate a TOML configuration file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read configuration: {exc.strerror or exc}") from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    return parse_config(data, str(path))


def _describe(exc: ValidationError, source: str, data: dict[str, Any]) -> str:
    lines = [f"{source}: invalid configuration"]
    errors = exc.errors()
    bad_rules = any(len(e["loc"]) > 1 and e["loc"][0] == "rule" for e in errors)
    for error in errors:
        if bad_rules and error["loc"] == ("rule",) and error["type"] == "too_short":
            continue  # pydantic's echo of the invalid rules, not a separate problem
        location = _location(error["loc"], data)
        message = error["msg"].removeprefix("Value error, ")
        lines.append(f"  {location}: {message}")
    return "\n".join(lines)


def _location(loc: tuple[int | str, ...], data: dict[str, Any]) -> str:
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts[-1:] = [f"{parts[-1]}[{item}]" if parts else f"[{item}]"]
        else:
            parts.append(str(item))
    text = ".".join(parts) or "(top level)"
    if loc[:1] == ("rule",) and len(loc) > 1 and isinstance(loc[1], int):
        rules = data.get("rule")
        if isinstance(rules, list) and loc[1] < len(rules) and isinstance(rules[loc[1]], dict):
            metric = rules[loc[1]].get("metric")
            if metric is not None:
                text += f" (metric {metric!r})"
    return text
