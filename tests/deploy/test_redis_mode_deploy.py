"""deploy/k8s/redis-mode and deploy/compose.yaml: valid (Kubernetes 1.33 schemas; the
Compose Specification in test_manifests.py) and wired as Redis mode needs: Redis with AOF,
serving replicas in role server (in Compose each on its own data-dir volume, which holds its
spool), one learner per data dir on a persistent volume, the HPA and PDB on the serving pods,
and only environment variables `nextbest serve` reads."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from typing import Any

import pytest
import yaml

from tests.deploy.conftest import venv_tool
from tests.deploy.test_manifests import (
    COMPOSE_FILES,
    K8S,
    by_kind,
    compose_file,
    mounts,
    resources,
    validated,
)

REDIS_MODE = K8S / "redis-mode"
REDIS_URL = "redis://redis:6379/0"
DATA_DIR = "/var/lib/nextbest"  # the image's NEXTBEST_DATA_DIR
POLICIES = "/etc/nextbest/policies.yaml"  # the image's NEXTBEST_CONFIG
SERVING = {"app.kubernetes.io/name": "nextbest", "app.kubernetes.io/component": "serving"}


def serve_env_names() -> set[str]:
    """Every NEXTBEST_ variable `nextbest serve` reads, as its --help names them: one in
    brackets after each flag, and NEXTBEST_REDIS_PASSWORD in --redis's help."""
    done = subprocess.run(
        [venv_tool("nextbest"), "serve", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert done.returncode == 0, done.stderr
    return set(re.findall(r"\bNEXTBEST_[A-Z_]+\b", done.stdout))


def objects() -> dict[tuple[str, str], dict[str, Any]]:
    return by_kind(REDIS_MODE)


def container(workload: dict[str, Any]) -> dict[str, Any]:
    (only,) = workload["spec"]["template"]["spec"]["containers"]
    found: dict[str, Any] = only
    return found


def env(workload: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container(workload)["env"]}


def test_kubernetes_objects_are_valid() -> None:
    assert validated(REDIS_MODE) >= 10


def test_kustomize_builds_the_directory() -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is missing")
    done = subprocess.run(
        [kubectl, "kustomize", str(REDIS_MODE)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    built = {(d["kind"], d["metadata"]["name"]) for d in yaml.safe_load_all(done.stdout) if d}
    assert built == set(objects())


def test_the_copied_base_files_are_the_base_files() -> None:
    for name in ("namespace.yaml", "policies.yaml", "auth.yaml"):
        assert (REDIS_MODE / name).read_text() == (K8S / name).read_text(), f"copy ../{name}"


def test_redis_runs_with_aof_on_a_persistent_volume_behind_service_redis() -> None:
    found = objects()
    redis = found[("StatefulSet", "redis")]
    (box,) = redis["spec"]["template"]["spec"]["containers"]
    assert box["image"] == "redis:7.4"
    args = " ".join(box["args"])
    assert "--appendonly yes" in args
    assert "--appendfsync everysec" in args
    (claim,) = redis["spec"]["volumeClaimTemplates"]
    mounts = {m["name"]: m["mountPath"] for m in box["volumeMounts"]}
    assert mounts[claim["metadata"]["name"]] == "/data"
    service = found[("Service", "redis")]["spec"]
    labels = redis["spec"]["template"]["metadata"]["labels"]
    assert service["selector"].items() <= labels.items()
    assert [p["port"] for p in service["ports"]] == [6379]
    policy = found[("NetworkPolicy", "redis")]["spec"]
    assert policy["podSelector"]["matchLabels"].items() <= labels.items()
    (allowed,) = policy["ingress"][0]["from"]
    for name in ("nextbest", "nextbest-learner"):
        workload = found[("StatefulSet", name)]
        pod_labels = workload["spec"]["template"]["metadata"]["labels"]
        assert allowed["podSelector"]["matchLabels"].items() <= pod_labels.items()


def test_serving_replicas_in_role_server_keep_their_spool_on_a_volume_of_their_own() -> None:
    """What a replica acknowledged while Redis was unreachable is in its data dir's spool
    until Redis has it: the data dir is a claim per pod (volumeClaimTemplates), so a pod
    deleted or rescheduled during an outage keeps it for its next start."""
    found = objects()
    serving = found[("StatefulSet", "nextbest")]
    spec = serving["spec"]
    assert spec["replicas"] == 3
    assert spec["updateStrategy"]["type"] == "RollingUpdate"
    assert spec["podManagementPolicy"] == "Parallel"  # scaling does not wait pod by pod
    variables = env(serving)
    assert variables["NEXTBEST_ROLE"] == "server"
    assert variables["NEXTBEST_REDIS_URL"] == REDIS_URL
    pod = spec["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["name"]: m["mountPath"] for m in container(serving)["volumeMounts"]}
    (claim,) = spec["volumeClaimTemplates"]
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert variables["NEXTBEST_DATA_DIR"] == mounts[claim["metadata"]["name"]]
    assert claim["metadata"]["name"] not in volumes
    assert spec["persistentVolumeClaimRetentionPolicy"] == {
        "whenScaled": "Retain",  # a replica scaled away may hold a spool: kept until back
        "whenDeleted": "Retain",
    }
    assert variables["NEXTBEST_AUTH_FILE"].startswith(mounts["auth"] + "/")
    assert variables["NEXTBEST_CONFIG"].startswith(mounts["policies"] + "/")
    assert spec["template"]["metadata"]["labels"] == SERVING
    service = found[("Service", "nextbest")]["spec"]
    assert service["selector"] == SERVING
    ports = {p["name"] for p in container(serving)["ports"]}
    assert {p["targetPort"] for p in service["ports"]} == ports == {"grpc", "metrics"}


def test_serving_keeps_the_embedded_deployments_probes_and_security_context() -> None:
    embedded = by_kind(K8S)[("Deployment", "nextbest")]
    serving = objects()[("StatefulSet", "nextbest")]
    assert (
        serving["spec"]["template"]["spec"]["securityContext"]
        == (embedded["spec"]["template"]["spec"]["securityContext"])
    )
    for key in ("startupProbe", "readinessProbe", "livenessProbe", "securityContext", "image"):
        assert container(serving)[key] == container(embedded)[key], key


def test_the_learner_runs_role_learner_on_its_own_persistent_volume() -> None:
    found = objects()
    learner = found[("StatefulSet", "nextbest-learner")]
    spec = learner["spec"]
    assert spec["replicas"] in (1, 2)  # 2: a standby, on its own claim
    variables = env(learner)
    assert variables["NEXTBEST_ROLE"] == "learner"
    assert variables["NEXTBEST_REDIS_URL"] == REDIS_URL
    assert "NEXTBEST_WORKERS" not in variables  # refused with --role learner
    (claim,) = spec["volumeClaimTemplates"]  # one PVC per pod: one learner per data dir
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    mounts = {m["name"]: m["mountPath"] for m in container(learner)["volumeMounts"]}
    assert variables["NEXTBEST_DATA_DIR"] == mounts[claim["metadata"]["name"]]
    pod = spec["template"]["spec"]
    assert claim["metadata"]["name"] not in {v["name"] for v in pod["volumes"]}
    # Its gRPC port serves health only, on loopback (no auth file needed there).
    assert variables["NEXTBEST_ADDRESS"].startswith("127.0.0.1:")
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container(learner)[probe]["exec"]["command"][:2] == ["nextbest", "health"]
    service = found[("Service", spec["serviceName"])]["spec"]
    assert service["clusterIP"] == "None"
    labels = spec["template"]["metadata"]["labels"]
    assert service["selector"].items() <= labels.items()
    assert labels["app.kubernetes.io/component"] == "learner"  # not selected by Service nextbest
    ports = {p["name"]: p["containerPort"] for p in container(learner)["ports"]}
    assert variables["NEXTBEST_METRICS_ADDRESS"].endswith(f":{ports['metrics']}")
    assert {p["targetPort"] for p in service["ports"]} == {"metrics"}


def test_the_hpa_and_the_pdb_target_the_serving_replicas() -> None:
    found = objects()
    serving = found[("StatefulSet", "nextbest")]
    hpa = found[("HorizontalPodAutoscaler", "nextbest")]
    assert hpa["apiVersion"] == "autoscaling/v2"
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["apiVersion"], target["kind"], target["name"]) == (
        "apps/v1",
        "StatefulSet",
        "nextbest",
    )
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (3, 20)
    (metric,) = hpa["spec"]["metrics"]
    assert metric["resource"]["name"] == "cpu"
    assert metric["resource"]["target"] == {"type": "Utilization", "averageUtilization": 70}
    assert "cpu" in container(serving)["resources"]["requests"]  # Utilization needs it
    pdb = found[("PodDisruptionBudget", "nextbest")]["spec"]
    assert pdb["minAvailable"] == 2
    selector = pdb["selector"]["matchLabels"]
    assert selector.items() <= serving["spec"]["template"]["metadata"]["labels"].items()
    learner = found[("StatefulSet", "nextbest-learner")]
    assert not selector.items() <= learner["spec"]["template"]["metadata"]["labels"].items()


def test_compose_runs_redis_with_aof_two_serving_replicas_and_a_learner() -> None:
    services = compose_file("compose.yaml")["services"]
    volumes = compose_file("compose.yaml")["volumes"]
    redis = services["redis"]
    assert redis["image"] == "redis:7.4"
    command = " ".join(redis["command"])
    assert "--appendonly yes" in command
    assert "--appendfsync everysec" in command
    assert mounts(redis)["redis-data"] == "/data"
    assert "ports" not in redis  # reached on the Compose network only
    roles: dict[str, list[str]] = {}
    for name, service in services.items():
        variables = service.get("environment", {})
        if "NEXTBEST_ROLE" in variables:
            roles.setdefault(variables["NEXTBEST_ROLE"], []).append(name)
            assert variables["NEXTBEST_REDIS_URL"] == REDIS_URL
            assert service.get("deploy", {}).get("replicas", 1) == 1  # one per data dir
            assert service["image"] == "nextbest:0.1.0"
    assert roles == {"server": ["nextbest-a", "nextbest-b"], "learner": ["learner"]}
    # Every nextbest container has a data-dir volume of its own: the learner's decision
    # logs and checkpoints, each serving replica's spool.
    data_volumes = []
    for name in ("learner", "nextbest-a", "nextbest-b"):
        (volume,) = [s for s, target in mounts(services[name]).items() if target == DATA_DIR]
        assert volume in volumes, name
        data_volumes.append(volume)
    assert len(set(data_volumes)) == 3
    # Each serving replica on a loopback port of its own; the learner serves only health,
    # on its loopback.
    published = [services[n]["ports"] for n in ("nextbest-a", "nextbest-b")]
    assert published == [["127.0.0.1:50051:50051"], ["127.0.0.1:50052:50051"]]
    learner = services["learner"]
    assert "ports" not in learner
    assert learner["environment"]["NEXTBEST_ADDRESS"].startswith("127.0.0.1:")
    assert "NEXTBEST_WORKERS" not in learner["environment"]  # refused with --role learner
    for name in ("nextbest-a", "nextbest-b"):
        policies = {s for s, to in mounts(services[name]).items() if to == POLICIES}
        assert policies == {s for s, to in mounts(learner).items() if to == POLICIES}  # one file
        depends = services[name]["depends_on"]
        assert depends["redis"] == {"condition": "service_healthy"}


def test_every_variable_named_is_one_nextbest_serve_reads() -> None:
    known = serve_env_names()
    assert {"NEXTBEST_REDIS_URL", "NEXTBEST_ROLE", "NEXTBEST_WORKERS"} <= known
    assert {"NEXTBEST_SPOOL_MAX_BYTES", "NEXTBEST_REDIS_PASSWORD"} <= known
    named: dict[str, set[str]] = {}
    for _, doc in resources(REDIS_MODE):
        if doc["kind"] in ("Deployment", "StatefulSet"):
            for box in doc["spec"]["template"]["spec"]["containers"]:
                for item in box.get("env", []):
                    named.setdefault(item["name"], set()).add(doc["metadata"]["name"])
    for file in COMPOSE_FILES:
        for name, service in compose_file(file)["services"].items():
            for variable in service.get("environment", {}):
                named.setdefault(variable, set()).add(f"{file}: {name}")
    nextbest = {n: where for n, where in named.items() if n.startswith("NEXTBEST_")}
    assert set(nextbest) <= known, {n: w for n, w in nextbest.items() if n not in known}
    assert set(named) - set(nextbest) <= {
        "GF_SECURITY_ADMIN_USER",
        "GF_SECURITY_ADMIN_PASSWORD",
        "GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH",
    }


def test_the_monitoring_overlay_scrapes_replicas_and_learner_as_job_nextbest() -> None:
    monitoring = REDIS_MODE / "monitoring"
    found = {**objects(), **by_kind(monitoring)}
    services = {name: doc for (kind, name), doc in found.items() if kind == "Service"}
    for name, service in (("nextbest", "nextbest"), ("nextbest-learner", "nextbest-learner")):
        monitor = found[("ServiceMonitor", name)]
        assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
        selector = monitor["spec"]["selector"]["matchLabels"]
        assert selector.items() <= services[service]["metadata"]["labels"].items()
        ports = {p["name"] for p in services[service]["spec"]["ports"]}
        assert {e["port"] for e in monitor["spec"]["endpoints"]} <= ports
    # The Operator names a job after its Service: the learner's is relabelled to "nextbest".
    (endpoint,) = found[("ServiceMonitor", "nextbest-learner")]["spec"]["endpoints"]
    assert {"targetLabel": "job", "replacement": "nextbest"} in endpoint["relabelings"]
    copy = (monitoring / "prometheusrule.yaml").read_text()
    assert copy == (K8S / "monitoring" / "prometheusrule.yaml").read_text(), "copy the rules"
