"""Configuration: frozen pydantic models read from TOML, validated once at start."""

from bayestream.config.kafka import KafkaSettings
from bayestream.config.load import load_config, parse_config
from bayestream.config.model import Config, EngineSettings, Rule

__all__ = ["Config", "EngineSettings", "KafkaSettings", "Rule", "load_config", "parse_config"]
