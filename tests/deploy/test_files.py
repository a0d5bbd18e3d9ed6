"""The deployment files agree with the code and with each other (fast, no containers).

What runs for real is in test_compose.py (the compose stack on podman) and
test_k8s.py (the rendered manifests against the Kubernetes schemas).
"""

from __future__ import annotations

import re
import subprocess
from typing import Any

import pytest

from tests.deploy.helpers import DEPLOY, PORTS, ROOT, image_services, load_yaml

SECRETS = ("PRINCIPAL_SECRET", "POSTGRES_PASSWORD", "GATEWAY_BOOTSTRAP_API_KEY", "GATEWAY_METRICS_API_KEY")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data: dict[str, Any] = load_yaml(ROOT / "docker-compose.yml")
    return data


def test_every_service_of_the_image_runs_in_compose(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name in image_services():
        service = services[name]
        assert service["command"][:2] == [name, "serve"], name
        assert "--no-migrate" in service["command"], f"{name} must leave migrations to the migrate step"
        url = f"http://127.0.0.1:{PORTS[name]}/readyz"
        assert service["healthcheck"]["test"] == ["CMD", "python", "/app/deploy/healthcheck.py", url]
        assert service["restart"] == "unless-stopped"
        assert service["read_only"] is True
        assert service["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        if name != "gateway":
            assert service["environment"][f"{name.upper()}_HOST"] == "0.0.0.0"
            host = "matching-lb" if name == "matching" else name
            assert service_url(compose, name) == f"http://{host}:{PORTS[name]}"


def test_the_duplicate_check_runs_beside_the_registry_not_in_it(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert services["registry"]["environment"]["REGISTRY_DUPLICATES_CHECK"] == "false"
    check = services["registry-duplicates"]
    assert check["command"] == ["registry", "duplicates"]  # never migrates: the migrate step does
    assert check["environment"]["REGISTRY_DATABASE_URL"] == services["registry"]["environment"]["REGISTRY_DATABASE_URL"]
    url = f"http://127.0.0.1:{PORTS['registry']}/readyz"
    assert check["healthcheck"]["test"] == ["CMD", "python", "/app/deploy/healthcheck.py", url]
    assert check["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    scrape = {job["job_name"] for job in load_yaml(DEPLOY / "prometheus" / "prometheus.yml")["scrape_configs"]}
    assert "registry-duplicates" in scrape


def service_url(compose: dict[str, Any], name: str) -> str:
    url: str = compose["services"]["gateway"]["environment"][f"GATEWAY_{name.upper()}_URL"]
    return url


def test_matching_replicas_are_balanced_per_request(compose: dict[str, Any]) -> None:
    balancer = compose["services"]["matching-lb"]
    assert "HAPROXY_IMAGE" in balancer["image"]
    assert balancer["depends_on"]["matching"]["condition"] == "service_healthy"
    assert compose["services"]["gateway"]["depends_on"]["matching-lb"]["condition"] == "service_started"
    config = (DEPLOY / "haproxy" / "matching.cfg").read_text(encoding="utf-8")
    assert "bind :8002" in config
    assert re.search(r"^\s*server-template \S+ 1-\d+ matching:8002$", config, re.M)
    assert "option httpchk GET /readyz" in config  # only replicas whose catalogue caught up


def test_the_migrate_step_migrates_every_service_database(compose: dict[str, Any]) -> None:
    migrate = compose["services"]["migrate"]
    assert migrate["command"] == ["migrate"] and migrate["restart"] == "no"
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in image_services():
        url = migrate["environment"][f"{name.upper()}_DATABASE_URL"]
        assert url.endswith(f"@postgres:5432/{name}"), url
        assert name in compose["services"]["postgres"]["environment"]["LINKAGES_DATABASES"].split()
    assert migrate["build"]["dockerfile"] == "deploy/Dockerfile"
    assert "${BASE_IMAGE:-python:3.11-slim" in migrate["build"]["args"]["BASE_IMAGE"]


def test_secrets_have_no_defaults(compose: dict[str, Any]) -> None:
    text = (ROOT / "docker-compose.yml").read_text(encoding="utf-8")
    for secret in SECRETS:
        uses = re.findall(r"\$\{" + secret + r"([^}]*)\}", text)
        assert uses, secret
        assert all(use.startswith(":?") for use in uses), f"{secret} must be ${{{secret}:?...}} everywhere"
    assert "POSTGRES_IMAGE" in compose["services"]["postgres"]["image"]


def test_only_the_gateway_and_prometheus_publish_ports(compose: dict[str, Any]) -> None:
    published = {name for name, service in compose["services"].items() if service.get("ports")}
    assert published == {"gateway", "prometheus"}
    assert "matching" not in published  # `--scale matching=N` needs that
    assert "container_name" not in compose["services"]["matching"]


def test_optional_profiles(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert services["redis"]["profiles"] == ["redis"]
    assert services["prometheus"]["profiles"] == ["metrics"]
    assert services["demo"]["profiles"] == ["demo"]
    gateway_deps = services["gateway"]["depends_on"]
    assert gateway_deps["redis"] == {"condition": "service_healthy", "required": False}
    assert gateway_deps["demo"] == {"condition": "service_completed_successfully", "required": False}
    assert set(compose["volumes"]) == {"postgres-data", "prometheus-data"}


def test_prometheus_scrapes_every_service() -> None:
    config = load_yaml(DEPLOY / "prometheus" / "prometheus.yml")
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    for name in image_services():
        (sd,) = jobs[name]["dns_sd_configs"]
        assert sd["names"] == [name] and sd["port"] == PORTS[name] and sd["type"] == "A"
    assert config["rule_files"] == ["/etc/prometheus/alerts.yml"]
    k8s = load_yaml(DEPLOY / "prometheus" / "prometheus-k8s.yml")
    assert k8s["scrape_configs"][0]["kubernetes_sd_configs"][0]["role"] == "pod"


def test_prometheus_scrapes_the_gateway_with_its_metrics_key(compose: dict[str, Any]) -> None:
    """The gateway's /metrics needs a key: Prometheus sends GATEWAY_METRICS_API_KEY."""
    config = load_yaml(DEPLOY / "prometheus" / "prometheus.yml")
    gateway = next(job for job in config["scrape_configs"] if job["job_name"] == "gateway")
    secret_file = gateway["authorization"]["credentials_file"]
    assert gateway["authorization"]["type"] == "Bearer"
    (secret,) = compose["services"]["prometheus"]["secrets"]
    assert secret_file == f"/run/secrets/{secret}"
    assert compose["secrets"][secret] == {"environment": "GATEWAY_METRICS_API_KEY"}
    assert "GATEWAY_METRICS_API_KEY" in compose["services"]["gateway"]["environment"]
    k8s = load_yaml(DEPLOY / "prometheus" / "prometheus-k8s.yml")
    assert k8s["scrape_configs"][0]["authorization"]["credentials_file"].startswith("/etc/prometheus/secrets/")


def test_alerts_cover_errors_latency_and_feed_lag() -> None:
    rules = load_yaml(DEPLOY / "prometheus" / "alerts.yml")
    alerts = {rule["alert"]: rule for group in rules["groups"] for rule in group["rules"]}
    assert {
        "LinkagesHighErrorRate",
        "LinkagesHighLatency",
        "LinkagesFeedLag",
        "LinkagesFeedStalled",
        "LinkagesTargetDown",
        "LinkagesUpstreamFailures",
        "LinkagesShortlistLatency",
    } <= set(alerts)
    tests = load_yaml(DEPLOY / "prometheus" / "alerts.test.yml")
    tested = {case["alertname"] for test in tests["tests"] for case in test["alert_rule_test"]}
    assert tested == set(alerts), "every alert has a promtool unit test"


def test_dockerfile_runs_as_non_root_from_the_lock_file() -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
    assert re.search(r"^ARG BASE_IMAGE=python:3\.11-slim", dockerfile, re.M)
    assert "uv sync --frozen" in dockerfile and "COPY pyproject.toml uv.lock ./" in dockerfile
    assert re.search(r"^USER 10001:10001$", dockerfile, re.M)
    assert dockerfile.count("FROM ${BASE_IMAGE}") == 2  # build and runtime stages
    assert 'ENTRYPOINT ["/app/deploy/entrypoint.sh"]' in dockerfile
    ignored = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    assert ignored[ignored.index("*") + 1 :] and "*" in ignored, ".dockerignore is an allow-list"


def run_entrypoint(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["sh", str(DEPLOY / "entrypoint.sh"), *args],
        capture_output=True,
        text=True,
        timeout=30,
        env={"PATH": "/usr/bin:/bin", "APP_DIR": str(ROOT), **(env or {})},
    )


def test_entrypoint_lists_the_services_and_execs() -> None:
    listed = run_entrypoint("services")
    assert listed.returncode == 0 and listed.stdout.split() == sorted(
        image_services(), key=["registry", "matching", "reporting", "events", "gateway"].index
    )
    # Anything else runs as given, in place of the shell (exec, no fork): the
    # process the container runtime signals is the command itself.
    process = subprocess.Popen(
        ["sh", str(DEPLOY / "entrypoint.sh"), "sh", "-c", "echo $$"],
        stdout=subprocess.PIPE,
        text=True,
        env={"PATH": "/usr/bin:/bin", "APP_DIR": str(ROOT)},
    )
    out, _ = process.communicate(timeout=30)
    assert process.returncode == 0 and int(out) == process.pid


def test_entrypoint_refuses_to_migrate_without_database_urls() -> None:
    result = run_entrypoint("migrate")
    assert result.returncode == 64
    assert "REGISTRY_DATABASE_URL is not set" in result.stderr
    unknown = run_entrypoint("migrate", "billing")
    assert unknown.returncode == 64 and "no service 'billing'" in unknown.stderr
