"""The Kubernetes manifests: every overlay renders with kustomize (``kubectl
kustomize``) and validates, strictly (unknown fields are errors), against the
Kubernetes API schemas of the oldest and newest minor versions we support, with
kubernetes-validate (its schemas ship inside the PyPI package; nothing is fetched
at validation time). Then the rendered objects are checked against each other:
probes, resources, selectors, references to the ConfigMap and Secret.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.helpers import DEPLOY, PORTS, image_services, load_all_yaml

pytestmark = [pytest.mark.deploy, pytest.mark.xdist_group("k8s")]  # one worker renders the manifests once

K8S = DEPLOY / "k8s"
OVERLAYS = ("staging", "production")
KUBERNETES_VERSIONS = ("1.29.0", "1.33.0")
VALIDATOR = "kubernetes-validate==1.37.0"
HPA_TARGETS = {"gateway", "matching"}
WORKERS = {"registry-duplicates": ("registry", "duplicates")}  # deployment: its container's args


def validator_python() -> str:
    """An interpreter with kubernetes_validate: this one, or a cached throwaway venv."""
    if importlib.util.find_spec("kubernetes_validate") is not None:
        return sys.executable
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "linkages-tests"
    venv = cache / VALIDATOR.replace("==", "-")
    python = venv / "bin" / "python"
    if not python.exists():
        shutil.rmtree(venv, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", VALIDATOR], check=True, timeout=600)
    return str(python)


def kubectl() -> str:
    found = shutil.which("kubectl")
    if found is None and os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(["apt-get", "install", "-y", "-qq", "kubectl"], check=False, timeout=600, capture_output=True)
        found = shutil.which("kubectl")
    if found is None:
        pytest.fail("kubectl (for `kubectl kustomize`) is not installed")
    return found


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    """Each overlay rendered to one YAML file, with a secrets.env made from its example."""
    work = tmp_path_factory.mktemp("k8s")
    tree = work / "k8s"
    shutil.copytree(K8S, tree)
    out: dict[str, Path] = {}
    for overlay in OVERLAYS:
        directory = tree / "overlays" / overlay
        shutil.copy(directory / "secrets.env.example", directory / "secrets.env")
        result = subprocess.run([kubectl(), "kustomize", str(directory)], capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        out[overlay] = work / f"{overlay}.yaml"
        out[overlay].write_text(result.stdout, encoding="utf-8")
    yield out


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_manifests_validate_against_the_kubernetes_schemas(rendered: dict[str, Path], overlay: str) -> None:
    versions = [arg for version in KUBERNETES_VERSIONS for arg in ("-k", version)]
    result = subprocess.run(
        [validator_python(), "-m", "kubernetes_validate", "--strict", "--quiet", *versions, str(rendered[overlay])],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ERROR" not in result.stdout


def objects(rendered: dict[str, Path], overlay: str) -> dict[tuple[str, str], dict[str, Any]]:
    docs = load_all_yaml(rendered[overlay].read_text(encoding="utf-8"))
    return {(doc["kind"], doc["metadata"]["name"]): doc for doc in docs}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_service_is_deployed_with_probes_and_resources(rendered: dict[str, Path], overlay: str) -> None:
    found = objects(rendered, overlay)
    deployments = {name: doc for (kind, name), doc in found.items() if kind == "Deployment"}
    assert set(deployments) == set(image_services()) | set(WORKERS)
    for name, deployment in deployments.items():
        spec = deployment["spec"]["template"]["spec"]
        (container,) = spec["containers"]
        port = PORTS[WORKERS[name][0] if name in WORKERS else name]
        assert container["ports"] == [{"name": "http", "containerPort": port}]
        assert container["livenessProbe"]["httpGet"] == {"path": "/livez", "port": "http"}
        assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
        assert {"cpu", "memory"} <= set(container["resources"]["requests"])
        assert "memory" in container["resources"]["limits"]
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert spec["securityContext"]["runAsNonRoot"] is True
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
        assert labels["app.kubernetes.io/part-of"] == "linkages"  # the NetworkPolicies select on it
        assert deployment["spec"]["template"]["metadata"]["annotations"]["prometheus.io/port"] == str(port)
        if name in WORKERS:  # background work: no Service, never migrates
            assert container["args"] == list(WORKERS[name]) and ("Service", name) not in found
            policy = found["NetworkPolicy", f"{name}-ingress"]
            assert policy["spec"]["podSelector"]["matchLabels"].items() <= labels.items()
            continue
        assert container["args"] == [name, "serve", "--no-migrate"]
        # SIGTERM after the preStop sleep; uvicorn drains for 20 s; then SIGKILL.
        assert container["lifecycle"]["preStop"]["exec"]["command"] == ["sleep", "5"]
        assert spec["terminationGracePeriodSeconds"] >= 5 + 20
        service = found["Service", name]
        assert service["spec"]["selector"].items() <= labels.items()
        if name in HPA_TARGETS:
            assert "replicas" not in deployment["spec"], "the HPA owns the replica count"
    assert found["Deployment", "reporting"]["spec"]["strategy"]["type"] == "Recreate"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_autoscalers_and_disruption_budgets_point_at_deployments(rendered: dict[str, Path], overlay: str) -> None:
    found = objects(rendered, overlay)
    hpas = {name: doc for (kind, name), doc in found.items() if kind == "HorizontalPodAutoscaler"}
    assert set(hpas) == HPA_TARGETS
    for name, hpa in hpas.items():
        assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": name}
        assert 1 <= hpa["spec"]["minReplicas"] < hpa["spec"]["maxReplicas"]
    pdbs = [doc for (kind, _), doc in found.items() if kind == "PodDisruptionBudget"]
    assert {pdb["metadata"]["name"] for pdb in pdbs} >= HPA_TARGETS | {"registry"}
    for pdb in pdbs:
        pod_labels = found["Deployment", pdb["metadata"]["name"]]["spec"]["template"]["metadata"]["labels"]
        assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_config_and_secret_references_resolve(rendered: dict[str, Path], overlay: str) -> None:
    found = objects(rendered, overlay)
    (config_name,) = [name for kind, name in found if kind == "ConfigMap"]
    (secret_name,) = [name for kind, name in found if kind == "Secret"]
    secret_keys = set(found["Secret", secret_name]["data"])
    config = found["ConfigMap", config_name]["data"]
    assert config["ENVIRONMENT"] == "production"
    workloads = [doc for (kind, _), doc in found.items() if kind in ("Deployment", "Job")]
    for workload in workloads:
        (container,) = workload["spec"]["template"]["spec"]["containers"]
        assert container["envFrom"] == [{"configMapRef": {"name": config_name}}]
        for variable in container["env"]:
            ref = variable["valueFrom"]["secretKeyRef"]
            assert ref["name"] == secret_name
            assert ref["key"] in secret_keys, f"{workload['metadata']['name']}: {ref['key']}"
    job = found["Job", "linkages-migrate"]
    (migrate,) = job["spec"]["template"]["spec"]["containers"]
    assert migrate["args"] == ["migrate"]
    migrated = {variable["name"] for variable in migrate["env"]}
    assert {f"{name.upper()}_DATABASE_URL" for name in image_services()} <= migrated
    assert config["REGISTRY_DUPLICATES_CHECK"] == "false"  # in registry-duplicates' pods, not the registry's
    for name in image_services():
        if name != "gateway":
            assert config[f"{name.upper()}_HOST"] == "0.0.0.0"
            assert config[f"GATEWAY_{name.upper()}_URL"] == f"http://{name}:{PORTS[name]}"
