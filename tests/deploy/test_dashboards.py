"""The Grafana dashboards: generated from deploy/grafana/dashboards.py, never stale, and
shaped as Grafana's provisioning loads them."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.deploy.conftest import DEPLOY

GRAFANA = DEPLOY / "grafana"
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))
# Metrics without a policy label: a panel on them alone cannot filter by $policy.
WITHOUT_POLICY = {
    "nextbest_errors_total",
    "nextbest_redis_reachable",
    "nextbest_spool_bytes",
    "nextbest_spool_records",
    "nextbest_spooled_total",
    "nextbest_spool_replayed_total",
    "nextbest_spool_dropped_total",
}
# What panels group by: label values from the config, fixed sets, or one per scrape target;
# never an unbounded value (an event id, a caller's action).
BOUNDED = {"policy", "action", "intent", "rule", "status", "method", "code", "le"}
BOUNDED |= {"kind", "reason", "instance"}


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in dashboard["panels"] if p["type"] != "row"]


def test_the_committed_json_is_what_the_code_generates(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(GRAFANA / "dashboards.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    subprocess.run(
        [sys.executable, str(GRAFANA / "dashboards.py"), "--out", str(tmp_path)],
        check=True,
        timeout=60,
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == [p.name for p in DASHBOARDS]


def test_the_overview_has_the_policy_variable_and_a_query_in_every_panel() -> None:
    (overview,) = [json.loads(p.read_text()) for p in DASHBOARDS if "overview" in p.name]
    assert overview["uid"] == "nextbest-overview"
    variables = {v["name"]: v for v in overview["templating"]["list"]}
    assert variables["datasource"]["query"] == "prometheus"
    assert variables["policy"]["allValue"] == ".*"
    ids = [p["id"] for p in overview["panels"]]
    assert len(ids) == len(set(ids))
    titles = {p["title"] for p in panels(overview)}
    for wanted in (
        "Decisions/s by action",
        "Explored share vs ε",
        "Fallbacks/s",
        "Masked/s by rule",
        "Decide latency",
        "Errors/s by gRPC code",
        "Rewards/s by status",
        "Default-reward share",
        "Average reward and model version (is it learning?)",
        "Reward value distribution",
        "Pending events",
        "Join delay",
        "Learned events/s",
        "Model version",
        "Since the last model update",
        "Learner lag",
        "Redis reachable by replica",
        "Spool by replica",
        "Spooled, replayed and dropped/s",
    ):
        assert wanted in titles
    for panel in panels(overview):
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            expr = target["expr"]
            assert expr, panel["title"]
            if not set(re.findall(r"\bnextbest_[a-z_]+\b", expr)) <= WITHOUT_POLICY:
                assert '{policy=~"$policy"' in expr, panel["title"]
            for grouped in re.findall(r"\b(?:by|on) \(([^)]*)\)", expr):
                labels = {label.strip() for label in grouped.split(",")}
                assert labels <= BOUNDED, f"{panel['title']}: by {labels - BOUNDED}"
    (annotation,) = overview["annotations"]["list"]
    assert "nextbest_config_changes_total" in annotation["expr"]
