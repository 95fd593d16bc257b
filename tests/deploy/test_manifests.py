"""deploy/compose*.yaml against the Compose Specification, deploy/k8s against a pinned
Kubernetes version's schemas, and the pieces kept consistent with each other. Redis mode's
own checks (compose.yaml, k8s/redis-mode): test_redis_mode_deploy.py."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml

from nextbest.api.auth import load_auth_file
from nextbest.policy.config import load_config
from tests.deploy.conftest import DEPLOY, ROOT, venv_tool

KUBERNETES = "1.33.0"  # the version the manifests are validated against
K8S = DEPLOY / "k8s"
COMPOSE_SCHEMA = Path(__file__).parent / "schemas" / "compose-spec.json"
# compose.yaml: Redis mode (Redis, two serving replicas, a learner); compose.embedded.yaml:
# one embedded replica. Each with Prometheus and Grafana.
COMPOSE_FILES = ("compose.yaml", "compose.embedded.yaml")


def documents(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def kustomization(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((path / "kustomization.yaml").read_text())
    return data


def resources(directory: Path) -> list[tuple[Path, dict[str, Any]]]:
    """The objects a kustomization lists (following `../`), each with its file."""
    found = []
    for entry in kustomization(directory)["resources"]:
        target = (directory / entry).resolve()
        if target.is_dir():
            found += resources(target)
        else:
            found += [(target, doc) for doc in documents(target)]
    return found


def by_kind(directory: Path) -> dict[tuple[str, str], dict[str, Any]]:
    return {(d["kind"], d["metadata"]["name"]): d for _, d in resources(directory)}


def compose_file(name: str) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((DEPLOY / name).read_text())
    return data


def mounts(service: dict[str, Any]) -> dict[str, str]:
    """A service's bind mounts and volumes: source → path in the container."""
    return dict(v.split(":")[:2] for v in service.get("volumes", []))


def test_the_compose_files_are_these() -> None:
    assert sorted(p.name for p in DEPLOY.glob("compose*.y*ml")) == sorted(COMPOSE_FILES)


@pytest.mark.parametrize("name", COMPOSE_FILES)
def test_compose_is_valid_against_the_compose_specification(name: str) -> None:
    done = subprocess.run(
        [venv_tool("check-jsonschema"), "--schemafile", str(COMPOSE_SCHEMA), name],
        cwd=DEPLOY,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("name", COMPOSE_FILES)
def test_compose_mounts_files_that_exist_and_builds_the_image(name: str) -> None:
    services = compose_file(name)["services"]
    for service in services.values():
        for source in mounts(service):
            if source.startswith("."):
                assert (DEPLOY / source).exists(), f"{source} is mounted but missing"
        if "build" in service:
            assert (DEPLOY / service["build"]["context"] / "Dockerfile").exists()
    prometheus = mounts(services["prometheus"])
    config = next(s for s, target in prometheus.items() if target.endswith("/prometheus.yml"))
    assert prometheus["./prometheus/alerts.yaml"] == "/etc/prometheus/alerts.yaml"
    scrape = yaml.safe_load((DEPLOY / config).read_text())
    (job,) = scrape["scrape_configs"]
    assert job["job_name"] == "nextbest"  # the alerts match job="nextbest"
    # Prometheus scrapes every nextbest container of the stack on its /metrics port, and
    # nothing else.
    targets = sorted(t for group in job["static_configs"] for t in group["targets"])
    nextbest = sorted(
        f"{n}:9464" for n, s in services.items() if s.get("image", "").startswith("nextbest:")
    )
    assert targets == nextbest
    for target in targets:
        assert "9464" in services[target.split(":")[0]]["expose"]


def test_the_embedded_stack_runs_one_replica_without_redis() -> None:
    services = compose_file("compose.embedded.yaml")["services"]
    assert "redis" not in services
    assert services["nextbest"].get("deploy", {}).get("replicas", 1) == 1
    assert not any(k.startswith("NEXTBEST_REDIS") for k in services["nextbest"]["environment"])
    assert mounts(services["nextbest"])["nextbest-data"] == "/var/lib/nextbest"
    assert services["nextbest"]["ports"] == ["127.0.0.1:50051:50051"]


@pytest.mark.parametrize("name", COMPOSE_FILES)
def test_grafana_is_provisioned_with_prometheus_and_the_dashboards(name: str) -> None:
    grafana = mounts(compose_file(name)["services"]["grafana"])
    provisioning = DEPLOY / "grafana" / "provisioning"
    (source,) = yaml.safe_load((provisioning / "datasources" / "prometheus.yaml").read_text())[
        "datasources"
    ]
    assert source["type"] == "prometheus"
    assert source["url"] == "http://prometheus:9090"
    assert source["isDefault"] is True
    (provider,) = yaml.safe_load((provisioning / "dashboards" / "nextbest.yaml").read_text())[
        "providers"
    ]
    assert grafana["./grafana/dashboards"] == provider["options"]["path"]
    assert grafana["./grafana/provisioning"] == "/etc/grafana/provisioning"


def validated(directory: Path) -> int:
    """Check every object a kustomization lists against the pinned Kubernetes schemas
    (strict: an unknown field fails); how many were checked."""
    checked = 0
    for path, doc in resources(directory):
        try:
            kubernetes_validate.validate(doc, KUBERNETES, strict=True)
        except kubernetes_validate.ValidationError as exc:
            name = f"{doc['kind']}/{doc['metadata']['name']}"
            pytest.fail(f"{path.relative_to(ROOT)} {name}: {exc.message} at {list(exc.path)}")
        checked += 1
    return checked


def test_kubernetes_objects_are_valid() -> None:
    assert validated(K8S) >= 6  # monitoring/ holds CRDs only: see the tests below


def test_embedded_mode_runs_exactly_one_serving_replica() -> None:
    objects = by_kind(K8S)
    serving = objects[("Deployment", "nextbest")]["spec"]
    assert serving["replicas"] == 1
    assert serving["strategy"]["type"] == "Recreate"  # the old pod frees the data dir first
    kinds = {kind for kind, _ in objects}
    assert "HorizontalPodAutoscaler" not in kinds  # scaling out is Redis mode's (issue 9)


def test_probes_ask_grpc_health_and_ports_match_the_image() -> None:
    objects = by_kind(K8S)
    pod = objects[("Deployment", "nextbest")]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["exec"]["command"][:2] == ["nextbest", "health"]
    env = {e["name"]: e["value"] for e in container["env"]}
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert env["NEXTBEST_ADDRESS"].endswith(f":{ports['grpc']}")
    assert env["NEXTBEST_METRICS_ADDRESS"].endswith(f":{ports['metrics']}")
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert f"EXPOSE {ports['grpc']} {ports['metrics']}" in dockerfile
    assert pod["securityContext"]["runAsUser"] == 10001
    assert "USER 10001:10001" in dockerfile
    service = objects[("Service", "nextbest")]["spec"]
    assert {p["targetPort"] for p in service["ports"]} == set(ports)
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert env["NEXTBEST_CONFIG"].startswith(mounts["policies"] + "/")
    assert env["NEXTBEST_DATA_DIR"] == mounts["data"]
    assert env["NEXTBEST_AUTH_FILE"].startswith(mounts["auth"] + "/")


def test_the_auth_secret_is_a_valid_auth_file(tmp_path: Path) -> None:
    secret = by_kind(K8S)[("Secret", "nextbest-auth")]
    (tmp_path / "tokens.yaml").write_text(secret["stringData"]["tokens.yaml"])
    assert load_auth_file(tmp_path / "tokens.yaml").tokens == ()  # refuses all until filled


def test_the_policies_config_map_is_a_valid_policy_file(tmp_path: Path) -> None:
    config_map = by_kind(K8S)[("ConfigMap", "nextbest-policies")]
    (tmp_path / "policies.yaml").write_text(config_map["data"]["policies.yaml"])
    example = load_config(ROOT / "examples" / "support.yaml")
    assert load_config(tmp_path / "policies.yaml") == example


def test_service_monitor_and_prometheus_rule_match_the_service_and_alerts() -> None:
    objects = {**by_kind(K8S), **by_kind(K8S / "monitoring")}
    monitor = objects[("ServiceMonitor", "nextbest")]
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    service = objects[("Service", "nextbest")]
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector.items() <= service["metadata"]["labels"].items()
    port_names = {p["name"] for p in service["spec"]["ports"]}
    assert {e["port"] for e in monitor["spec"]["endpoints"]} <= port_names
    # The Operator names the job after the Service: the alerts' job="nextbest".
    assert service["metadata"]["name"] == "nextbest"
    rule = objects[("PrometheusRule", "nextbest")]
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    alerts = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yaml").read_text())
    assert rule["spec"] == {"groups": alerts["groups"]}, "copy alerts.yaml's groups"


@pytest.mark.parametrize(
    "directory", ["k8s", "k8s/monitoring", "k8s/redis-mode", "k8s/redis-mode/monitoring"]
)
def test_every_kustomization_builds(directory: str) -> None:
    """What the README tells ops to `kubectl apply -k` builds (kustomize refuses, e.g., an
    overlay that lists the directory it sits in)."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is missing")
    done = subprocess.run(
        [kubectl, "kustomize", str(DEPLOY / directory)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
