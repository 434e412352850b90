"""docker-compose.yml: valid against the Compose Specification's JSON Schema (vendored), every
image pinned, every bayestream command one the CLI accepts, every mounted file present."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest

from bayestream.cli.main import _parser
from bayestream.runtime.kafka_jars import KAFKA_VERSION
from tests.deploy import ROOT
from tests.deploy.tools import DEPLOY, load_yaml, missing, module, tool


def _compose() -> dict[str, Any]:
    doc: dict[str, Any] = load_yaml(ROOT / "docker-compose.yml")
    return doc


def _services() -> dict[str, Any]:
    services: dict[str, Any] = _compose()["services"]
    return services


def test_valid_against_the_compose_specification() -> None:
    jsonschema = module("jsonschema")
    schema = json.loads((DEPLOY / "schemas" / "compose-spec.json").read_text("utf-8"))
    validator = jsonschema.Draft7Validator(schema)  # its $schema: draft-07
    errors = sorted(validator.iter_errors(_compose()), key=str)
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors)


def test_the_schema_rejects_a_broken_file() -> None:  # the check above can fail
    jsonschema = module("jsonschema")
    schema = json.loads((DEPLOY / "schemas" / "compose-spec.json").read_text("utf-8"))
    broken = _compose()
    broken["services"]["kafka"]["healthcheck"]["interval"] = ["10s"]
    broken["services"]["kafka"]["restart_policy"] = "always"
    validator = jsonschema.Draft7Validator(schema)  # its $schema: draft-07
    assert len(list(validator.iter_errors(broken))) >= 2


def test_every_image_is_pinned_to_an_exact_version() -> None:
    for name, service in _services().items():
        image = service["image"]
        repository, _, tag = image.rpartition(":")
        assert repository and tag and tag != "latest", f"{name}: {image} is not pinned"
        assert any(c.isdigit() for c in tag), f"{name}: {image} has no version"


def test_the_broker_is_apache_kafka_in_kraft_mode_at_the_tested_version() -> None:
    kafka = _services()["kafka"]
    assert kafka["image"] == f"apache/kafka:{KAFKA_VERSION}"
    assert kafka["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"


def _bayestream_services() -> dict[str, Any]:
    return {n: s for n, s in _services().items() if s["image"].startswith("bayestream:")}


def test_two_processors_in_one_group_a_generator_and_the_query_service() -> None:
    commands = {n: s["command"][0] for n, s in _bayestream_services().items()}
    assert sorted(c for c in commands.values() if c == "run") == ["run", "run"]
    assert "generate" in commands.values() and "serve" in commands.values()
    config = tomllib.loads((DEPLOY / "config" / "bayestream.toml").read_text("utf-8"))
    assert config["kafka"]["group_id"] == "bayestream"


@pytest.mark.parametrize("name", sorted(_bayestream_services()))
def test_every_bayestream_command_exists(name: str) -> None:
    service = _bayestream_services()[name]
    argv = [str(a) for a in service["command"]]
    parser = _parser()
    commands = parser._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    if argv[0] not in commands:
        # a command still on its branch (serve): only behind a profile, off by default
        assert service.get("profiles"), f"{name}: bayestream has no {argv[0]!r} command"
        pytest.skip(f"bayestream {argv[0]} is not merged yet: {shlex.join(argv)}")
    try:
        parser.parse_args(argv)
    except SystemExit as exc:
        pytest.fail(f"{name}: bayestream rejects {shlex.join(argv)} (exit {exc.code})")


def test_every_mounted_file_exists_and_the_config_is_valid() -> None:
    from bayestream.config import load_config

    for name, service in _services().items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), f"{name}: {source} does not exist"
    config = load_config(DEPLOY / "config" / "bayestream.toml")
    assert config.kafka.metrics_host == "0.0.0.0"


def test_prometheus_scrapes_every_processor_on_its_metrics_port() -> None:
    from bayestream.config import load_config

    port = load_config(DEPLOY / "config" / "bayestream.toml").kafka.metrics_port
    scrape = load_yaml(DEPLOY / "prometheus" / "prometheus.yml")
    (job,) = [j for j in scrape["scrape_configs"] if j["job_name"] == "bayestream"]
    targets = {t for c in job["static_configs"] for t in c["targets"]}
    processors = {n for n, s in _bayestream_services().items() if s["command"][0] == "run"}
    assert targets == {f"{n}:{port}" for n in processors}


def test_compose_go_loads_the_file(tmp_path: Path) -> None:
    """The loader of the docker compose CLI itself (compose-go, deploy/tools/composecheck):
    references between services, interpolation, merges and profiles, beyond the schema."""
    go = tool("go")
    source = DEPLOY / "tools" / "composecheck"
    env = {**os.environ, "GOPROXY": "off", "GOFLAGS": "-mod=readonly"}  # nothing downloads
    built = subprocess.run(
        [go, "build", "-o", str(tmp_path / "composecheck"), "."],
        cwd=source, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    if built.returncode != 0:
        missing(f"compose-go (cd {source.relative_to(ROOT)} && go mod download): {built.stderr}")
    done = subprocess.run(
        [str(tmp_path / "composecheck"), str(ROOT / "docker-compose.yml")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    loaded = {line.split("\t")[0] for line in done.stdout.splitlines()}
    assert loaded == set(_services())
    broken = tmp_path / "docker-compose.yml"
    text = (ROOT / "docker-compose.yml").read_text("utf-8")
    broken.write_text(text.replace("- processor-2\n", "- processor-3\n"), "utf-8")
    done = subprocess.run(
        [str(tmp_path / "composecheck"), str(broken)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode != 0 and "processor-3" in done.stderr
