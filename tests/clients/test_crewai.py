"""CrewAI tools in CrewAI's own venv (its pins clash with the server's) against a real
server started here: choose → report through the tools, then the server's record."""

from __future__ import annotations

from pathlib import Path

from nextbest_client import NextBest
from tests.clients.support import (
    EXAMPLES,
    NEW_ACCOUNT,
    POLICY,
    adapter_python,
    run_driver,
    run_script,
)
from tests.integration.conftest import RunningServer


def test_crewai_tools_close_the_loop(
    server: RunningServer, client: NextBest, tmp_path: Path
) -> None:
    out = run_driver("crewai", server.target, tmp_path)

    chosen, reported = out["chosen"], out["reported"]
    assert chosen["action"] != "offer_refund"  # masked: a 3-day-old account
    assert reported == {"event_id": chosen["event_id"], "status": "accepted", "reward": 1.0}
    e = client.explain(chosen["event_id"])
    assert (e.action, e.intent) == (chosen["action"], "billing_dispute")
    assert e.context == {"account_age_days": 3.0, "tags": ["vip", "eu"]}  # sent as facts
    assert (e.join_status, e.joined_reward) == ("learned", 1.0)

    async_e = client.explain(out["async_chosen"]["event_id"])  # arun, AsyncNextBest
    assert (async_e.join_status, async_e.joined_reward) == ("learned", 0.5)
    assert async_e.context == {"account_age_days": 3.0, "plan": "gold"}  # sent as a mapping

    assert "Tool Name: choose_next_action" in out["described"]  # what the agent's LLM reads
    assert client.decide(POLICY, "billing_dispute", NEW_ACCOUNT).model_version == "2"


def test_the_crewai_example_runs(server: RunningServer, tmp_path: Path) -> None:
    out = run_script(
        adapter_python("crewai"), EXAMPLES / "crewai_tools.py", server.target, tmp_path
    )
    assert "join: learned" in out
