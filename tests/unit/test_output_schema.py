"""Every record the engine writes validates against the versioned JSON Schema of its output
(``bayestream schema``), for every family, drift, calibration, dead letters and evictions; the
schemas' enumerations are the configuration's."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, get_args

import pytest
from benchmarks.workloads import mix_lines
from jsonschema import Draft202012Validator

from bayestream.cli.main import main
from bayestream.config.model import FamilyName, Rule
from bayestream.schema.contract import FAMILY_NAMES, NAMES, RECORDS, SCHEMA_VERSION, json_schema
from bayestream.schema.records import ENCODER
from tests.conftest import batch, event, make_engine
from tests.unit.test_engine_particle import RULES as PARTICLE_RULES
from tests.unit.test_engine_particle import _messages as particle_messages


def _errors(name: str, documents: list[Any]) -> list[str]:
    validator = Draft202012Validator(json_schema(name))
    return [
        f"{name}: {e.message} in {doc}"[:300]
        for doc in documents
        for e in validator.iter_errors(doc)
    ]


def _lines(path: Path) -> list[Any]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.parametrize("name", NAMES)
def test_every_schema_is_a_valid_versioned_draft_2020_12_schema(name: str) -> None:
    schema = json_schema(name)
    Draft202012Validator.check_schema(schema)
    assert schema["$id"] == f"urn:bayestream:schema:{name}:v{SCHEMA_VERSION}"


def test_the_demo_outputs_validate(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    assert main(["demo", "--plain", "--events", "20000", "--output-dir", str(out)]) == 0
    seen = {}
    for name in RECORDS:
        documents = _lines(out / f"{name}.jsonl")
        assert _errors(name, documents) == []
        seen[name] = documents
    assert {p["family"] for p in seen["posteriors"]} == {
        "normal_gamma",
        "beta_binomial",
        "gamma_poisson",
        "dirichlet",
    }
    for name in ("anomalies", "drift", "calibration", "dead_letter"):
        assert seen[name], f"the demo wrote no {name} records"
    assert any(a["alert"] for a in seen["anomalies"])


def test_particle_selection_and_eviction_records_validate() -> None:
    rules = [
        *PARTICLE_RULES,
        {"metric": "p", "family": "normal_gamma", "anomaly_probability_threshold": 0.5},
        {"metric": "f", "family": "gamma_poisson", "fdr": 0.2, "idle_ttl_seconds": 5.0},
    ]
    engine = make_engine(rules)
    messages = particle_messages()
    messages += [
        event("k", "p", 1000.0 + i, 40.0 if i % 97 == 50 else float(i % 5)) for i in range(400)
    ]
    messages += [
        event("k", "f", 1000.0, 3, exposure=1.0),
        event("j", "f", 2000.0, 90, exposure=1.0),
    ]
    out = engine.process(batch(messages))
    final = engine.flush()
    posteriors = [
        json.loads(line)
        for line in (out.posteriors.json_lines() + final.posteriors.json_lines()).splitlines()
    ]
    assert {p["family"] for p in posteriors} == {"particle", "normal_gamma", "gamma_poisson"}
    anomalies = [json.loads(ENCODER.encode(a)) for a in out.anomalies]
    assert {a["selected_by"] for a in anomalies} == {
        "tail_probability",
        "anomaly_probability",
        "fdr",
    }
    evicted = [json.loads(ENCODER.encode(e)) for e in out.evictions]
    assert evicted, "the idle stream k/f was evicted"
    assert (
        _errors("posteriors", posteriors)
        + _errors("anomalies", anomalies)
        + _errors("evicted", evicted)
        == []
    )


def test_events_validate_and_enumerations_are_the_configurations() -> None:
    events = [json.loads(line) for line in mix_lines(2_000, 100, 1.1, seed=3)]
    assert _errors("event", events) == []
    assert get_args(FamilyName) == FAMILY_NAMES
    anomalies = json_schema("anomalies")["properties"]
    assert tuple(anomalies["tail"]["enum"]) == get_args(Rule.model_fields["tail"].annotation)


def test_the_schemas_refuse_what_the_contract_does_not_allow() -> None:
    good = {
        "key": "k",
        "metric": "m",
        "ts": 1.0,
        "value": 3.0,
        "tail_probability": 1e-4,
        "anomaly_probability": 0.9,
        "tail": "upper",
        "threshold": 0.001,
        "selected_by": "tail_probability",
        "alert": True,
    }
    assert _errors("anomalies", [good]) == []
    assert _errors("anomalies", [{k: v for k, v in good.items() if k != "selected_by"}])
    assert _errors("anomalies", [{k: v for k, v in good.items() if k != "alert"}])
    assert _errors("anomalies", [{**good, "alert": 1}])
    assert _errors("anomalies", [{**good, "tail": "sideways"}])
    assert _errors("anomalies", [{**good, "ts": "yesterday"}])
    assert _errors("dead_letter", [{"reason": "no_such_reason", "detail": "", "raw": ""}])
    assert _errors("event", [{"key": "k", "metric": "m", "ts": 1.0}])  # no value


def test_the_schema_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema", "anomalies"]) == 0
    assert json.loads(capsys.readouterr().out) == json_schema("anomalies")
    assert main(["schema"]) == 0
    assert list(json.loads(capsys.readouterr().out)) == list(NAMES)
    assert main(["schema", "event", "drift"]) == 0
    assert list(json.loads(capsys.readouterr().out)) == ["event", "drift"]
    assert main(["schema", "nope"]) == 2
    assert "no schema named nope" in capsys.readouterr().err
