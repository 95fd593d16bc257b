"""The dashboards and alerts against the real thing: `nextbest serve` under simulated traffic,
and beside it Redis mode (a serving replica and a learner on a real redis-server, given
decisions and rewards), all scraped every second by a real Prometheus that also evaluates
alerts.yaml. Every PromQL expression of every panel, annotation and alert must parse; every
panel, the Redis mode row's included, must return data; every metric they name must be one
the service exports."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import grpc
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from nextbest.simulate.scenarios import get
from nextbest_client.v1 import decision_pb2 as pb
from nextbest_client.v1 import decision_pb2_grpc as rpc
from tests.deploy.conftest import DEPLOY, free_port, prometheus_tool
from tests.integration.conftest import Process
from tests.redis_server import RedisServer

T = TypeVar("T")
RATE_INTERVAL = "10s"  # what Grafana's $__rate_interval is at a 1 s scrape interval, about
POLICY = "simulate.support"
OVERVIEW = DEPLOY / "grafana" / "dashboards" / "nextbest-overview.json"
ALERTS = DEPLOY / "prometheus" / "alerts.yaml"
REDIS_MODE_EVENTS = 40  # decisions (each rewarded) sent through the Redis-mode replica
SUFFIXES = {
    "counter": ("_total",),
    "histogram": ("_bucket", "_sum", "_count"),
    "summary": ("_sum", "_count"),
}


def wait_for(what: str, condition: Callable[[], T | None], timeout: float = 45.0) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout}s")
        time.sleep(0.25)


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as reply:
        return json.loads(reply.read())


class Stack:
    """An embedded `nextbest serve` under simulated traffic; a Redis-mode serving replica and
    learner on `redis`; Prometheus scraping all three as job "nextbest". `start()` starts
    them, `stop()` stops whatever started."""

    def __init__(self, tmp: Path, redis: RedisServer) -> None:
        self.tmp = tmp
        self.redis = redis
        self.config = tmp / "policies.yaml"
        self.policy = get("support").config(None)
        self.config.write_text(yaml.safe_dump(self.policy))
        self.server: Process | None = None
        self.replica: Process | None = None  # Redis mode, role server
        self.learner: Process | None = None  # Redis mode, role learner
        self.prometheus: subprocess.Popen[bytes] | None = None
        self.simulator: subprocess.Popen[bytes] | None = None
        self.stopping = threading.Event()
        self.traffic = threading.Thread(target=self._simulate, daemon=True)

    def _serve(self, data_dir: str, *extra: str) -> Process:
        return Process(
            "serve",
            "--config", str(self.config),
            "--address", "127.0.0.1:0",
            "--metrics-address", "127.0.0.1:0",
            "--data-dir", str(self.tmp / data_dir),
            "--fsync", "never",
            *extra,
        )  # fmt: skip

    def start(self) -> None:
        # The three start side by side; each is waited for in turn.
        self.server = self._serve("data")
        redis = ("--redis", self.redis.url, "--model-publish-interval", "0.2")
        self.learner = self._serve("learner", *redis, "--role", "learner")
        self.replica = self._serve("replica", *redis, "--role", "server")
        serving = self.server.wait_event("serving")
        self.grpc = serving["grpc_address"]
        replica = self.replica.wait_event("serving")
        self.replica_grpc = replica["grpc_address"]
        learner = self.learner.wait_event("serving")
        self.instances = {
            "embedded": serving["metrics_address"],
            "replica": replica["metrics_address"],
            "learner": learner["metrics_address"],
        }
        port = free_port()
        (self.tmp / "prometheus.yml").write_text(
            yaml.safe_dump(
                {
                    "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                    "rule_files": [str(ALERTS)],
                    "scrape_configs": [
                        {
                            "job_name": "nextbest",
                            "static_configs": [{"targets": sorted(self.instances.values())}],
                        }
                    ],
                }
            )
        )
        self.prometheus = subprocess.Popen(
            [
                prometheus_tool("prometheus"),
                f"--config.file={self.tmp / 'prometheus.yml'}",
                f"--storage.tsdb.path={self.tmp / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=(self.tmp / "prometheus.log").open("w"),
        )
        self.api = f"http://127.0.0.1:{port}/api/v1"
        self.traffic.start()

    def _simulate(self) -> None:
        """Traffic until the end: `nextbest simulate` runs after run (each run precomputes
        its rounds, so each is short), with rewards 20 decisions late, as in the scenario."""
        log = (self.tmp / "simulate.log").open("w")
        while not self.stopping.is_set():
            self.simulator = subprocess.Popen(
                [
                    *(sys.executable, "-m", "nextbest", "simulate", "--target", self.grpc),
                    *("--rounds", "2000", "--no-progress", "--seed", str(time.monotonic_ns())),
                ],
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
            self.simulator.wait()

    def query(self, expr: str) -> dict[str, Any]:
        url = f"{self.api}/query?{urllib.parse.urlencode({'query': expr})}"
        try:
            return dict(get_json(url))
        except urllib.error.HTTPError as exc:  # 400: the expression does not parse
            return dict(json.loads(exc.read()))

    def ready(self) -> bool:
        assert self.prometheus is not None
        try:
            get_json(f"{self.api}/status/buildinfo")
        except OSError:
            assert self.prometheus.poll() is None, (self.tmp / "prometheus.log").read_text()
            return False
        return True

    @staticmethod
    def _end(proc: subprocess.Popen[bytes] | None) -> None:
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def stop(self) -> None:
        self.stopping.set()
        deadline = time.monotonic() + 30
        while self.traffic.is_alive() and time.monotonic() < deadline:
            self._end(self.simulator)  # also one the thread started as it was told to stop
            self.traffic.join(timeout=0.5)
        self._end(self.simulator)
        self._end(self.prometheus)
        codes = {}
        stopping = {"replica": self.replica, "learner": self.learner, "server": self.server}
        for name, process in stopping.items():  # the replica before the learner
            if process is not None:
                try:
                    codes[name] = process.stop()
                except subprocess.TimeoutExpired:
                    process.proc.kill()
                    codes[name] = process.proc.wait()
        assert all(code == 0 for code in codes.values()), codes


@pytest.fixture
def stack(tmp_path: Path, redis_server: RedisServer) -> Iterator[Stack]:
    prometheus_tool("promtool")  # skip (or fail in CI) before starting anything
    prometheus_tool("prometheus")
    running = Stack(tmp_path, redis_server)
    try:
        running.start()
        yield running
    finally:
        running.stop()


def samples(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """A /metrics page: (name, sorted labels) → value."""
    with urllib.request.urlopen(url, timeout=5) as reply:
        text = reply.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def drive_redis_mode(stack: Stack) -> None:
    """Decisions on the Redis-mode replica, each rewarded there (`earliest`: the reward
    closes the join); the learner learns them from Redis and the replica serves its model."""
    with grpc.insecure_channel(stack.replica_grpc) as channel:
        stub = rpc.DecisionServiceStub(channel)
        context = {"account_age_days": pb.Value(number=90.0), "amount": pb.Value(number=40.0)}
        for _ in range(REDIS_MODE_EVENTS):
            decided = stub.Decide(
                pb.DecideRequest(policy=POLICY, intent="billing", context=context), timeout=10
            )
            reward = stub.Reward(pb.RewardRequest(event_id=decided.event_id, value=1.0), timeout=10)
            assert reward.status == pb.REWARD_STATUS_ACCEPTED
    replica = f"http://{stack.instances['replica']}/metrics"
    version = ("nextbest_model_version", (("policy", POLICY),))
    wait_for(
        "the learner's model on the replica",
        lambda: samples(replica).get(version, 0) >= REDIS_MODE_EVENTS,
    )


def panel_queries() -> dict[str, str]:
    overview = json.loads(OVERVIEW.read_text())
    found = {}
    for panel in overview["panels"]:
        for target in panel.get("targets", []):
            found[f"{panel['title']} [{target['refId']}]"] = target["expr"]
    return found


def resolve(expr: str) -> str:
    """Grafana's variables, as the dashboard would send them for one policy (Grafana escapes
    a regex's specials for PromQL's string: `\\.`)."""
    policy = re.escape(POLICY).replace("\\", "\\\\")
    return expr.replace("$policy", policy).replace("$__rate_interval", RATE_INTERVAL)


def metric_names(expr: str) -> set[str]:
    return set(re.findall(r"\bnextbest_[a-z_]+\b", expr))


def test_every_panel_and_alert_query_runs_on_real_data(stack: Stack) -> None:
    overview = json.loads(OVERVIEW.read_text())
    alerts = yaml.safe_load(ALERTS.read_text())["groups"][0]["rules"]
    panels = panel_queries()
    annotation = overview["annotations"]["list"][0]["expr"]
    variable = next(v for v in overview["templating"]["list"] if v["name"] == "policy")
    every = {**panels, "annotation": annotation} | {a["alert"]: a["expr"] for a in alerts}

    # Every metric they name is one the service exports (a labelled metric none of whose
    # labels occurred yet has no sample, only its HELP and TYPE: its names count).
    def exported_names(*instances: str) -> set[str]:
        names = set()
        for instance in instances or stack.instances.values():
            with urllib.request.urlopen(f"http://{instance}/metrics", timeout=5) as reply:
                text = reply.read().decode()
            for family in text_string_to_metric_families(text):
                names |= {s.name for s in family.samples}
                names |= {family.name + suffix for suffix in SUFFIXES.get(family.type, ("",))}
        return names

    # An error (the errors panel) and a config change (the annotation) happen too.
    with grpc.insecure_channel(stack.grpc) as channel:
        with pytest.raises(grpc.RpcError) as error:
            rpc.DecisionServiceStub(channel).Decide(
                pb.DecideRequest(policy="no.such.policy", intent="x"), timeout=5
            )
        assert error.value.code() == grpc.StatusCode.NOT_FOUND
    drive_redis_mode(stack)
    embedded = stack.instances["embedded"]
    joined = "nextbest_join_delay_seconds_count"
    wait_for("simulated traffic", lambda: joined in exported_names(embedded))
    exported = exported_names()
    # Redis mode's metrics are Redis mode's: embedded mode exports none of them.
    assert not {n for n in exported_names(embedded) if "redis" in n or "spool" in n}
    for name, expr in every.items():
        missing = metric_names(expr) - exported
        assert not missing, f"{name} uses {missing}, which nextbest does not export"
    assert metric_names(variable["query"]) <= exported

    wait_for("Prometheus up", stack.ready)
    # The embedded server's counter at 0 (the Redis-mode processes' are 0 too, but are not
    # the ones the reload below changes): increase() needs a sample before the change.
    changes = f'nextbest_config_changes_total{{policy="{POLICY}", instance="{embedded}"}} == 0'
    wait_for("a scrape before the change", lambda: stack.query(changes)["data"]["result"])
    stack.policy["policies"][POLICY]["exploration"]["epsilon"] = 0.15
    stack.config.write_text(yaml.safe_dump(stack.policy))
    assert stack.server is not None
    stack.server.proc.send_signal(signal.SIGHUP)
    stack.server.wait_event("config_reloaded")

    for name, expr in every.items():  # each parses
        reply = stack.query(resolve(expr))
        assert reply["status"] == "success", f"{name}: {reply.get('error')}\n{expr}"

    def empty_panels() -> list[str]:
        return [
            name
            for name, expr in panels.items()
            if not stack.query(resolve(expr))["data"]["result"]
        ]

    try:
        wait_for("every panel has data", lambda: not empty_panels())
    except AssertionError:
        pytest.fail(f"panels without data: {empty_panels()}")
    wait_for(
        "the config change annotation", lambda: stack.query(resolve(annotation))["data"]["result"]
    )
    # The Redis mode row shows the Redis-mode processes, each reaching Redis, nothing spooled.
    reachable = stack.query("nextbest_redis_reachable")["data"]["result"]
    by_instance = {r["metric"]["instance"]: r["value"][1] for r in reachable}
    redis_mode = {stack.instances["replica"], stack.instances["learner"]}
    assert by_instance == dict.fromkeys(redis_mode, "1")
    lag = stack.query(resolve(panels["Learner lag [A]"]))["data"]["result"]
    assert [r["metric"]["policy"] for r in lag] == [POLICY]
    spool = stack.query(resolve(panels["Spool by replica [B]"]))["data"]["result"]
    spooled = {r["metric"]["instance"]: r["value"][1] for r in spool}
    assert spooled == {stack.instances["replica"]: "0"}  # a learner has no spool
    policies = stack.query(f"count by (policy) ({variable['query'].split('(')[1].split(',')[0]})")
    assert [r["metric"]["policy"] for r in policies["data"]["result"]] == [POLICY]

    # Prometheus loaded alerts.yaml and evaluates every rule without error; none fires on a
    # healthy service (the ones that need hours of history cannot, the others must not).
    def rules() -> list[dict[str, Any]]:
        groups = get_json(f"{stack.api}/rules")["data"]["groups"]
        every_rule = [r for g in groups for r in g["rules"]]
        never = "0001-01-01T00:00:00Z"  # the lastEvaluation of a rule not yet evaluated
        done = all(r["lastEvaluation"] != never for r in every_rule)
        return every_rule if done and len(every_rule) == len(alerts) else []

    evaluated = wait_for("rules evaluated", rules)
    assert {r["name"]: r["health"] for r in evaluated} == {a["alert"]: "ok" for a in alerts}
    assert [r["name"] for r in evaluated if r["state"] != "inactive"] == []
