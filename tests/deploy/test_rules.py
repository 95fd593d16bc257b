"""Alert rules and the Prometheus config, checked and unit-tested by promtool."""

from __future__ import annotations

import subprocess

from tests.deploy.conftest import DEPLOY, prometheus_tool

PROMETHEUS = DEPLOY / "prometheus"


def promtool(*args: str) -> str:
    done = subprocess.run(
        [prometheus_tool("promtool"), *args],
        cwd=PROMETHEUS,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


def test_the_rules_and_the_config_check() -> None:
    assert "SUCCESS: 12 rules found" in promtool("check", "rules", "alerts.yaml")
    # compose.yaml's (Redis mode) and compose.embedded.yaml's; each also loads alerts.yaml
    promtool("check", "config", "prometheus.yml", "prometheus.embedded.yml")


def test_every_alert_fires_when_it_must_and_not_otherwise() -> None:
    out = promtool("test", "rules", "alerts.test.yaml", "alerts.week.test.yaml")
    assert out.count("SUCCESS") == 2, out


def test_every_alert_has_a_unit_test() -> None:
    import yaml

    rules = yaml.safe_load((PROMETHEUS / "alerts.yaml").read_text())["groups"][0]["rules"]
    tested = set()
    for name in ("alerts.test.yaml", "alerts.week.test.yaml"):
        for test in yaml.safe_load((PROMETHEUS / name).read_text())["tests"]:
            tested |= {case["alertname"] for case in test["alert_rule_test"]}
    assert {rule["alert"] for rule in rules} == tested
