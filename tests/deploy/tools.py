"""What the deployment checks share: the repository's paths, the metrics the code exports,
and the tools they need (skipped when absent, failed instead when
``BAYESTREAM_DEPLOY_STRICT=1``, as ``.ci/run`` sets after installing them)."""

from __future__ import annotations

import importlib
import os
import re
import shutil
from types import ModuleType
from typing import Any

import pytest

from tests.deploy import ROOT

STRICT = os.environ.get("BAYESTREAM_DEPLOY_STRICT") == "1"
DEPLOY = ROOT / "deploy"


def missing(what: str) -> None:
    """Skip, or fail when strict: a tool the check needs is not installed."""
    message = f"{what} is not installed (.ci/run installs it)"
    if STRICT:
        pytest.fail(message)
    pytest.skip(message, allow_module_level=True)  # (also called while a module is imported)


def module(name: str) -> ModuleType:
    """Import ``name`` or skip (fail when strict)."""
    try:
        return importlib.import_module(name)
    except ImportError:
        missing(f"the Python module {name}")
        raise AssertionError("unreachable") from None


def tool(name: str) -> str:
    """The path of the executable ``name`` or skip (fail when strict)."""
    path = shutil.which(name)
    if path is None:
        missing(f"{name}")
        raise AssertionError("unreachable")
    return path


def load_yaml(path: Any) -> Any:
    """One YAML document."""
    yaml = module("yaml")
    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f)


def load_yaml_all(path: Any) -> list[Any]:
    """Every YAML document of a file."""
    yaml = module("yaml")
    with open(path, encoding="utf-8") as f:
        return [doc for doc in yaml.safe_load_all(f) if doc is not None]


def exported_series() -> set[str]:
    """Every series name bayestream's registry exposes (histograms with ``_bucket``,
    ``_sum`` and ``_count``, counters with ``_total``), from a fresh :class:`Metrics`."""
    from prometheus_client import CollectorRegistry

    from bayestream.metrics import Metrics

    metrics = Metrics(CollectorRegistry())
    names: set[str] = set()
    for family in metrics.registry.collect():
        if family.type == "histogram":
            names |= {f"{family.name}{s}" for s in ("_bucket", "_sum", "_count")}
        elif family.type == "counter":
            names.add(f"{family.name}_total")
        else:
            names.add(family.name)
    return names


_NAME = re.compile(r"\b(bayestream[_:][a-zA-Z0-9_:]*)")


def metric_names(expr: str) -> set[str]:
    """The bayestream metric and recording-rule names a PromQL expression mentions."""
    return set(_NAME.findall(expr))


def recording_rules() -> set[str]:
    """Names recorded by ``deploy/prometheus/alerts.yml``."""
    doc = load_yaml(DEPLOY / "prometheus" / "alerts.yml")
    return {r["record"] for g in doc["groups"] for r in g["rules"] if "record" in r}


def alert_rules() -> list[dict[str, Any]]:
    """The alerting rules of ``deploy/prometheus/alerts.yml``."""
    doc = load_yaml(DEPLOY / "prometheus" / "alerts.yml")
    return [r for g in doc["groups"] for r in g["rules"] if "alert" in r]
