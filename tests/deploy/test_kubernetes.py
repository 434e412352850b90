"""deploy/kubernetes: every manifest valid against the Kubernetes OpenAPI schemas (the
kubernetes-validate package's, strict: unknown fields fail) or, for the ServiceMonitor and
the ScaledObject, against the subset schemas in deploy/schemas/; and the pieces fit together
(selectors, ports, probes, the ConfigMap equal to the shipped configuration, KEDA's maximum
equal to the partitions)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.deploy import ROOT
from tests.deploy.tools import DEPLOY, load_yaml, load_yaml_all, module

K8S = DEPLOY / "kubernetes"
CRD_SCHEMAS = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"): "servicemonitor_v1.json",
    ("keda.sh/v1alpha1", "ScaledObject"): "scaledobject_v1alpha1.json",
    ("monitoring.coreos.com/v1", "PrometheusRule"): "prometheusrule_v1.json",
}
KUBERNETES_VERSION = "1.33.0"  # the oldest supported release when this was written


def _manifests() -> list[tuple[Path, dict[str, Any]]]:
    out = []
    for path in sorted(K8S.rglob("*.yaml")):
        if path.name != "kustomization.yaml":
            out.extend((path, doc) for doc in load_yaml_all(path))
    return out


def _one(kind: str, name: str | None = None) -> dict[str, Any]:
    (doc,) = [
        d for _, d in _manifests() if d["kind"] == kind and name in (None, d["metadata"]["name"])
    ]
    return doc


@pytest.mark.parametrize(
    "path", sorted({str(p.relative_to(K8S)) for p, _ in _manifests()}), ids=str
)
def test_valid_against_the_schemas(path: str) -> None:
    for doc in load_yaml_all(K8S / path):
        crd = CRD_SCHEMAS.get((doc["apiVersion"], doc["kind"]))
        if crd is not None:
            jsonschema = module("jsonschema")
            schema = json.loads((DEPLOY / "schemas" / crd).read_text("utf-8"))
            errors = list(jsonschema.Draft7Validator(schema).iter_errors(doc))
            assert not errors, [f"{list(e.absolute_path)}: {e.message}" for e in errors]
            continue
        validate = module("kubernetes_validate")
        try:
            validate.validate(doc, KUBERNETES_VERSION, strict=True)
        except validate.ValidationError as exc:
            pytest.fail(f"{path}: {exc}")


def test_the_validators_reject_broken_manifests() -> None:  # the checks above can fail
    validate = module("kubernetes_validate")
    deployment = _one("Deployment", "bayestream")
    deployment["spec"]["template"]["spec"]["containers"][0]["resource"] = {}
    with pytest.raises(validate.ValidationError):
        validate.validate(deployment, KUBERNETES_VERSION, strict=True)
    jsonschema = module("jsonschema")
    scaled = _one("ScaledObject")
    scaled["spec"]["triggers"][0]["metadata"]["lagThresold"] = "10"
    schema = json.loads((DEPLOY / "schemas" / "scaledobject_v1alpha1.json").read_text("utf-8"))
    assert list(jsonschema.Draft7Validator(schema).iter_errors(scaled))


def test_kustomizations_list_every_manifest_of_their_folder() -> None:
    for folder in (K8S, K8S / "serve"):
        listed = load_yaml(folder / "kustomization.yaml")["resources"]
        present = sorted(p.name for p in folder.glob("*.yaml") if p.name != "kustomization.yaml")
        assert sorted(listed) == present, folder


def test_kustomize_builds_when_kubectl_is_here() -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed (the schemas above need no kubectl)")
    for folder in (K8S, K8S / "serve"):
        done = subprocess.run(
            [kubectl, "kustomize", str(folder)], capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
        assert "namespace: bayestream" in done.stdout


def test_the_configmap_is_the_shipped_configuration() -> None:
    from bayestream.config import parse_config

    text = _one("ConfigMap")["data"]["bayestream.toml"]
    assert text == (DEPLOY / "config" / "bayestream.toml").read_text("utf-8")
    import tomllib

    parse_config(tomllib.loads(text), "configmap")


def _shipped_kafka() -> Any:
    from bayestream.config import load_config

    return load_config(DEPLOY / "config" / "bayestream.toml").kafka


def test_selectors_ports_and_probes_fit_together() -> None:
    deployment = _one("Deployment", "bayestream")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    service = _one("Service", "bayestream-metrics")
    assert service["spec"]["selector"].items() <= pod_labels.items()
    pdb = _one("PodDisruptionBudget")
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    monitor = _one("ServiceMonitor", "bayestream")
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    assert monitor["spec"]["jobLabel"] == "app.kubernetes.io/name"
    assert service["metadata"]["labels"]["app.kubernetes.io/name"] == "bayestream"  # job label
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    (port,) = container["ports"]
    assert port["containerPort"] == _shipped_kafka().metrics_port
    assert port["name"] == service["spec"]["ports"][0]["targetPort"] == "metrics"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"


def test_the_transactional_id_is_stable_from_the_pod_name() -> None:
    from bayestream.cli.main import _parser

    deployment = _one("Deployment", "bayestream")
    spec = deployment["spec"]["template"]["spec"]
    assert spec["shareProcessNamespace"] is False  # bayestream is PID 1
    assert _shipped_kafka().transactional_id is None  # so "<group>-<pod name>-1"
    (container,) = spec["containers"]
    assert "command" not in container  # the image's exec-form ENTRYPOINT
    argv = [a.replace("$(KAFKA_BOOTSTRAP_SERVERS)", "kafka:9092") for a in container["args"]]
    _parser().parse_args(argv)


def test_keda_scales_on_the_group_lag_up_to_the_partition_count() -> None:
    scaled = _one("ScaledObject")
    kafka = _shipped_kafka()
    assert scaled["spec"]["scaleTargetRef"]["name"] == "bayestream"
    assert scaled["spec"]["maxReplicaCount"] == kafka.input_partitions
    (trigger,) = scaled["spec"]["triggers"]
    assert trigger["type"] == "kafka"
    assert trigger["metadata"]["consumerGroup"] == kafka.group_id
    assert trigger["metadata"]["topic"] in kafka.input_topics


def test_processors_are_sized_and_hardened() -> None:
    deployment = _one("Deployment", "bayestream")
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    (container,) = pod["containers"]
    resources = container["resources"]
    assert set(resources) == {"requests", "limits"}
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    mounts = {v["mountPath"] for v in container["volumeMounts"]}
    assert mounts == {"/etc/bayestream", "/tmp", "/var/cache/numba"}
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxSurge"] == 0


@pytest.mark.parametrize("name", ["bayestream", "bayestream-serve"])
def test_the_kernels_compiled_into_the_image_are_copied_where_numba_may_write(name: str) -> None:
    # numba loads its cache only from a writable folder; the root file system is read-only
    pod = _one("Deployment", name)["spec"]["template"]["spec"]
    (init,) = pod["initContainers"]
    assert init["command"] == ["cp", "-a", "/opt/bayestream/numba-cache/.", "/var/cache/numba/"]
    assert "NUMBA_CACHE_DIR=/opt/bayestream/numba-cache" in (ROOT / "Dockerfile").read_text()
    (container,) = pod["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["NUMBA_CACHE_DIR"] == "/var/cache/numba"
    volume = {v["mountPath"]: v["name"] for v in container["volumeMounts"]}["/var/cache/numba"]
    assert {v["mountPath"]: v["name"] for v in init["volumeMounts"]}["/var/cache/numba"] == volume
    assert "emptyDir" in {v["name"]: v for v in pod["volumes"]}[volume]


def test_the_prometheusrule_holds_the_groups_of_alerts_yml() -> None:
    rule = _one("PrometheusRule")
    assert rule["spec"]["groups"] == load_yaml(DEPLOY / "prometheus" / "alerts.yml")["groups"]
    script = DEPLOY / "prometheus" / "prometheusrule.py"
    done = subprocess.run(
        [sys.executable, str(script), "--check"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout
