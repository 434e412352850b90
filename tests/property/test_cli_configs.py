"""Valid input never ends in a traceback: configurations drawn over every family and every
option, edge values included (empty lists, zero, the bounds, huge and tiny numbers, inf and
nan), go through ``check-config`` and, when it accepts them, through ``run`` on a small input
made for their rules. Every one exits 0, or exits 2 with a field named; every record written
validates against its JSON Schema."""

from __future__ import annotations

import copy
import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from bayestream.cli.main import main
from bayestream.config import parse_config
from bayestream.config.kafka import KafkaSettings
from bayestream.config.model import Drift, EngineSettings, Initial, Rule
from bayestream.errors import ConfigError
from bayestream.schema.contract import RECORDS, json_schema

PROPERTY = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    # no shrinking: a run takes about a second, shrinking one of these configurations took
    # more than five minutes; the failing configuration is printed as drawn
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

FAMILIES = ("normal_gamma", "beta_binomial", "gamma_poisson", "dirichlet", "particle")
TINY, HUGE, INF, NAN = 5e-324, 1e300, math.inf, math.nan


def _edge(*typical: Any) -> st.SearchStrategy[Any]:
    return st.sampled_from(typical)


def _maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.none(), strategy)


POSITIVE = _edge(TINY, 1e-9, 0.5, 1.0, 30.0, 1e9, HUGE)
PROBABILITY = _edge(1e-300, 1e-9, 0.001, 0.05, 0.5, 0.9, 0.999999, 1 - 1e-16)
LEVELS = st.one_of(
    st.just([]),
    st.lists(_edge(1e-300, 1e-12, 0.05, 0.5, 0.9, 0.95, 0.99, 1 - 1e-16), min_size=1, max_size=5),
)
COUNT = _edge(0, 1, 2, 3, 7, 50, 10**6, 2**62)


@st.composite
def _drift(draw: st.DrawFn) -> dict[str, Any]:
    """A ``[rule.drift]`` table with exactly one window kind (``hop_events`` may still not
    divide it: check-config then names the field)."""
    if draw(st.booleans()):
        drift: dict[str, Any] = {"window_events": draw(_edge(2, 3, 4, 10, 10**9))}
        if draw(st.booleans()):
            drift["hop_events"] = draw(_edge(1, 2, 5))
    else:
        drift = {"window_seconds": draw(POSITIVE)}
    if "hop_events" not in drift:
        drift.update(draw(st.fixed_dictionaries({}, optional={"reference": _edge("baseline")})))
    optional = {
        # 1000 is allowed with window_events and a baseline, but its simulated null takes
        # 50 s for count families (engine/null.py): too slow for many examples
        "baseline_windows": _edge(1.000001, 2.0, 10.0, 100.0, 1001.0, 1e6),
        "false_alarm_rate": PROBABILITY,
        "cooldown_windows": _edge(0, 1, 3, 10**6),
        "reset_on_alarm": st.booleans(),
        "min_window_events": _edge(2, 3, 10, 10**9),
        "window_prior_weight": _edge(TINY, 0.5, 1.0),
    }
    drift.update(draw(st.fixed_dictionaries({}, optional=optional)))
    return drift


COMMON = {
    "tail": _edge("upper", "lower", "two_sided"),
    "credible_levels": LEVELS,
    "predictive_quantiles": LEVELS,
    "anomaly_threshold": PROBABILITY,
    "max_streams": _edge(1, 2, 10**9, 2**62),
    "idle_ttl_seconds": POSITIVE,
    "robust": st.booleans(),
    "outlier_rate": _edge(TINY, 0.001, 0.4999),
    "outlier_scale": _edge(1.000001, 10.0, 1e6),
    "robust_min_events": _edge(0.0, 1.0, 10.0, HUGE),
    "outlier_run_reset": COUNT,
    "drift": _drift(),
}


@st.composite
def _emit_and_selection(draw: st.DrawFn) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if draw(st.booleans()):
        out.update(emit="interval", emit_interval_seconds=draw(POSITIVE))
    selection = draw(st.sampled_from(["", "anomaly_probability_threshold", "fdr"]))
    if selection:
        out[selection] = draw(PROBABILITY)
    return out


@st.composite
def _prior(draw: st.DrawFn, family: str) -> dict[str, Any]:
    if family == "dirichlet":
        k = draw(st.integers(2, 6))
        categories = [f"c{i}" for i in range(k)]
        alpha = draw(st.one_of(POSITIVE, st.lists(POSITIVE, min_size=k, max_size=k)))
        return {"categories": categories, "alpha": alpha}
    names = {"normal_gamma": ("mu", "kappa", "alpha", "beta")}.get(family, ("alpha", "beta"))
    prior = {}
    for name in names:
        if draw(st.booleans()):
            prior[name] = draw(_edge(-HUGE, -1.0, 0.0, 4.0, HUGE) if name == "mu" else POSITIVE)
    return prior


@st.composite
def rules(draw: st.DrawFn, index: int) -> dict[str, Any]:
    family = draw(st.sampled_from(FAMILIES))
    metric = draw(st.sampled_from([f"m{index}", f"m{index}", f"m{index}*", "*"]))
    rule: dict[str, Any] = {"metric": metric, "family": family}
    rule.update(draw(st.fixed_dictionaries({}, optional=COMMON)))
    rule.update(draw(_emit_and_selection()))
    if family == "particle":
        model = draw(st.sampled_from(("local_level", "poisson_rate", "binomial_rate")))
        rule.update(
            {
                "model": model,
                "process_noise": draw(POSITIVE),
                "initial": {
                    "mean": draw(_edge(-HUGE, -3.0, 0.0, 2.0, HUGE)),
                    "sd": draw(POSITIVE),
                },
            }
        )
        if model == "local_level":
            rule["observation_noise"] = draw(POSITIVE)
        rule.update(
            draw(
                st.fixed_dictionaries(
                    {},
                    optional={
                        "particles": _edge(16, 17, 64, 512, 32_766),
                        "observation": _edge("normal", "student_t"),
                        "nu": POSITIVE,
                        "per": _edge("second", "event"),
                        "resampling": _edge("systematic", "stratified", "residual"),
                        "ess_threshold": _edge(TINY, 0.5, 1.0),
                        "seed": _edge(0, 1, 2**64 - 1),
                    },
                )
            )
        )
        if "drift" in rule:
            rule["drift"].pop("reset_on_alarm", None)  # conjugate families only
        return rule
    prior = draw(_prior(family))
    if prior or family == "dirichlet":
        rule["prior"] = prior
    half_life = draw(st.sampled_from(["", "half_life_seconds", "half_life_events"]))
    if half_life:
        rule[half_life] = draw(POSITIVE)
    if family == "normal_gamma" and draw(st.booleans()):
        rule["transform"] = "log"
    return rule


ENGINE = st.fixed_dictionaries(
    {},
    optional={
        "batch_size": _edge(1, 2, 7, 50_000, 10_000_000),
        "max_streams": _edge(1, 2, 3, 10**9, 2**62),
        "idle_ttl_seconds": POSITIVE,
        "max_lateness_seconds": _edge(0.0, 1.0, 10.0, HUGE, INF),
        "max_trials": _edge(1.0, 10.0, 1e6, 1e7, 2.0**53),
        "calibration_interval_events": _edge(0, 1, 2, 7, 100_000),
        "calibration_half_life_events": POSITIVE,
        "min_ts": _edge(-INF, -HUGE, 0.0, 50.0, 1e9, NAN),
        "max_ts": _edge(150.0, 1e12, HUGE, INF, -1.0, NAN),
        "threads": _edge(1, 2, 3, 64),
    },
)


@st.composite
def configs(draw: st.DrawFn) -> dict[str, Any]:
    n = draw(st.integers(1, 4))
    config: dict[str, Any] = {"rule": [draw(rules(i)) for i in range(n)]}
    engine = draw(ENGINE)
    if engine:
        config["engine"] = engine
    if draw(st.booleans()):  # ignored by the file runner, validated all the same
        config["kafka"] = {"metrics_port": draw(_edge(0, 9464, 65535)), "batch_size": 1}
    return config


BAD = (0, -1, 0.0, -1.0, 1.0, 1.5, 2**70, INF, -INF, NAN, "x", "", [], [NAN], True, {})


@st.composite
def mutated(draw: st.DrawFn) -> tuple[dict[str, Any], str | None]:
    """A drawn configuration, and in one of three one field set to a value drawn from
    :data:`BAD` (often invalid, not always): returns the configuration and that field's name
    (None when nothing was set, or when the configuration drawn was invalid already)."""
    config = draw(configs())
    if draw(st.integers(0, 2)):
        return config, None
    try:  # a configuration already invalid may be reported by its first problem only
        parse_config(copy.deepcopy(config))
    except ConfigError:
        return config, None
    tables = [config.get("engine", {}), config.get("kafka", {})]
    for rule in config["rule"]:
        tables += [rule] + [v for v in rule.values() if isinstance(v, dict)]
    tables = [t for t in tables if t]
    table = draw(st.sampled_from(tables))
    name = draw(st.sampled_from(sorted(table)))
    table[name] = draw(st.sampled_from(BAD))
    return config, name


# --- TOML text ------------------------------------------------------------------------------


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(value)


def to_toml(config: dict[str, Any]) -> str:
    lines = []
    for table in ("engine", "kafka"):
        if table in config:
            lines.append(f"[{table}]")
            lines += [f"{k} = {_toml_value(v)}" for k, v in config[table].items()]
    for rule in config["rule"]:
        lines.append("[[rule]]")
        lines += [f"{k} = {_toml_value(v)}" for k, v in rule.items()]
    return "\n".join(lines) + "\n"


# --- input made for the rules ---------------------------------------------------------------


def events_for(config: dict[str, Any], seed: int, n: int = 50) -> list[str]:
    """``n`` JSON lines: rule i's metric ``m{i}`` gets observations of its family's kind (one
    in six of another kind, or an edge value), keys k0..k2, mostly increasing event times."""
    rng = np.random.default_rng(seed)
    rules_ = config["rule"]
    lines = []
    for j in range(n):
        i = j % len(rules_)
        rule = rules_[i]
        kind = _kind(rule)
        if rng.random() < 1 / 6:
            kind = str(rng.choice(["real", "trials", "count", "category", "edge"]))
        event: dict[str, Any] = {
            "key": f"k{rng.integers(3)}",
            "metric": f"m{i}",
            "ts": 100.0 + j * float(rng.choice([1.0, 0.5, 30.0])) - float(rng.random() < 0.1) * 40,
        }
        if kind == "real":
            event["value"] = float(rng.normal(5.0, 2.0)) if rng.random() < 0.9 else 1e300
        elif kind == "trials":
            trials = int(rng.choice([1, 10, 100, 2**40]))
            event.update(value=int(rng.integers(0, min(trials, 10**6) + 1)), trials=trials)
        elif kind == "count":
            event["value"] = int(rng.choice([0, 1, 3, 12, 2**50]))
            if rng.random() < 0.5:
                event["exposure"] = float(rng.choice([1e-300, 0.5, 10.0, 1e300]))
        elif kind == "category":
            k = len(rule.get("prior", {}).get("categories", ["c0", "c1"]))
            event["value"] = f"c{rng.integers(k + 1)}"  # one in k+1 unknown
        else:
            event["value"] = float(rng.choice([0.0, -1e308, 1e308, 5e-324, -5e-324]))
        lines.append(json.dumps(event))
    return lines


def _kind(rule: dict[str, Any]) -> str:
    family = rule["family"]
    if family == "particle":
        family = {"poisson_rate": "gamma_poisson", "binomial_rate": "beta_binomial"}.get(
            rule["model"], "normal_gamma"
        )
    return {
        "normal_gamma": "real",
        "beta_binomial": "trials",
        "gamma_poisson": "count",
        "dirichlet": "category",
    }[family]


# --- the property ---------------------------------------------------------------------------

FIELDS = {
    name
    for model in (EngineSettings, KafkaSettings, Rule, Drift, Initial)
    for name in model.model_fields
} | {"mu", "kappa", "alpha", "beta", "categories"}
_ERROR_LINE = re.compile(r"^  (engine|kafka|rule\[\d+\])\S*( \(metric [^)]*\))?: (.+)$")


def assert_names_a_field(err: str, field: str | None = None) -> None:
    """``err`` is bayestream's error (no traceback) and a line of it names a field (``field``
    when given)."""
    assert "Traceback" not in err, err
    named = []
    for line in err.splitlines():
        match = _ERROR_LINE.match(line)
        if match:
            location = line.split(":", 1)[0].split(" (metric")[0]
            text = location + " " + match.group(3)
            named += [f for f in FIELDS if re.search(rf"\b{f}\b", text)]
    assert named, f"no field named in:\n{err}"
    if field is not None:
        assert field in named, f"{field} not named in:\n{err}"


@PROPERTY
@given(drawn=mutated(), seed=st.integers(0, 2**16))
def test_every_accepted_configuration_runs_or_names_a_field(
    drawn: tuple[dict[str, Any], str | None], seed: int, tmp_path_factory: pytest.TempPathFactory
) -> None:
    check_config_then_run(*drawn, seed, tmp_path_factory.mktemp("config"))


@pytest.mark.slow
@settings(PROPERTY, max_examples=500)
@given(drawn=mutated(), seed=st.integers(0, 2**16))
def test_many_more_configurations(
    drawn: tuple[dict[str, Any], str | None], seed: int, tmp_path_factory: pytest.TempPathFactory
) -> None:
    check_config_then_run(*drawn, seed, tmp_path_factory.mktemp("config"))


def check_config_then_run(config: dict[str, Any], bad: str | None, seed: int, work: Path) -> None:
    """``check-config`` exits 0, or 2 naming a field (``bad``, the field given a bad value,
    if any); when it accepts, ``run`` on input made for the rules exits 0 and every record it
    writes validates, or it exits 2 naming a field."""
    path = work / "config.toml"
    text = to_toml(config)
    path.write_text(text)
    check, err = _call(["check-config", str(path)])
    if check != 0:
        assert check == 2, f"check-config exited {check} for\n{text}\n{err}"
        assert_names_a_field(err, bad)
        return
    source = work / "input.jsonl"
    source.write_text("\n".join(events_for(config, seed)) + "\n")
    out = work / "out"
    code, err = _call(["run", "--config", str(path), "--input", str(source), "--output-dir",
                       str(out)])  # fmt: skip
    if code == 2:
        assert_names_a_field(err, None)
        return
    assert code == 0, f"run exited {code} for\n{text}\n{err}"
    for name in RECORDS:
        written = out / f"{name}.jsonl"
        if written.exists():
            validator = Draft202012Validator(json_schema(name))
            for line in written.read_text().splitlines():
                errors = [e.message for e in validator.iter_errors(json.loads(line))]
                assert not errors, f"{name} record {line[:300]} for\n{text}\n{errors[:3]}"


def _call(argv: list[str]) -> tuple[int, str]:
    """``main(argv)`` with stdout and stderr captured (an exception escapes: a traceback)."""
    import contextlib
    import io

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, err.getvalue()


def test_the_toml_writer_round_trips() -> None:
    import tomllib

    config = {
        "engine": {"min_ts": -INF, "max_ts": 1e300, "threads": 2},
        "rule": [
            {
                "metric": "m*",
                "family": "dirichlet",
                "credible_levels": [],
                "prior": {"categories": ["a", "b"], "alpha": [TINY, 2.0]},
            }
        ],
    }
    assert tomllib.loads(to_toml(config)) == config
    assert math.isnan(tomllib.loads(to_toml({"rule": [{"x": NAN}]}))["rule"][0]["x"])


def test_an_error_that_names_no_field_is_caught() -> None:
    with pytest.raises(AssertionError):
        assert_names_a_field("c.toml: invalid configuration\n  rule[0] (metric 'm'): bad\n")
    assert_names_a_field("c.toml: invalid configuration\n  rule[0].fdr: too big\n")
    assert_names_a_field("c.toml: invalid configuration\n  rule[0] (metric 'm'): set fdr\n")
