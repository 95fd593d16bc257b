"""AutoGen in its own venv (autogen-core pins protobuf 5): AssistantAgents driven by AutoGen's
replay model call the tools against a real server started here."""

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


def test_autogen_agents_close_the_loop(
    server: RunningServer, client: NextBest, tmp_path: Path
) -> None:
    out = run_driver("autogen", server.target, tmp_path)

    chosen, reported = out["chosen"], out["reported"]
    assert chosen["action"] != "offer_refund"
    assert "30 days" in chosen["not_allowed"]["offer_refund"]
    assert reported == {"event_id": chosen["event_id"], "status": "accepted", "reward": 1.0}
    e = client.explain(chosen["event_id"])
    assert (e.action, e.context["plan"]) == (chosen["action"], "gold")
    assert (e.join_status, e.joined_reward) == ("learned", 1.0)

    sync_e = client.explain(out["sync_chosen"]["event_id"])  # FunctionTool over NextBest
    assert (sync_e.join_status, sync_e.joined_reward) == ("learned", 0.5)
    assert client.decide(POLICY, "billing_dispute", NEW_ACCOUNT).model_version == "2"


def test_the_autogen_example_runs(server: RunningServer, tmp_path: Path) -> None:
    out = run_script(
        adapter_python("autogen"), EXAMPLES / "autogen_tools.py", server.target, tmp_path
    )
    assert "join: learned" in out
