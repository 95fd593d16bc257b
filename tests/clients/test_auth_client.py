"""The SDK against a server with tokens: `token=` or NEXTBEST_TOKEN, typed refusals, and the
Admin clients (sync and asyncio)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from nextbest_client import (
    Admin,
    AsyncAdmin,
    AsyncNextBest,
    InvalidArgument,
    NextBest,
    NotFound,
    PermissionDenied,
    Unauthenticated,
)
from tests.clients.support import NEW_ACCOUNT, POLICY
from tests.conftest import make_config, support_policy
from tests.integration.secure import SecureServer, write_auth_file

TOKENS = {
    "agent": ("agent-token", ["decide", "reward"]),
    "viewer": ("viewer-token", ["read"]),
    "ops": ("ops-token", ["read", "admin"]),
}


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureServer]:
    directory = tmp_path_factory.mktemp("auth")
    server = SecureServer(
        make_config(support__next_step=support_policy()),
        directory / "data",
        auth_file=write_auth_file(directory / "auth.yaml", TOKENS),
    )
    yield server
    server.stop()


def test_the_token_goes_with_every_call(secured: SecureServer) -> None:
    with NextBest(secured.target, token="agent-token") as nb:
        d = nb.decide(POLICY, "billing_dispute", NEW_ACCOUNT)
        assert d.reward(resolved=1).status == "accepted"
        with pytest.raises(PermissionDenied, match="'read'") as denied:
            nb.explain(d.event_id)
        assert denied.value.code.name == "PERMISSION_DENIED"
    with NextBest(secured.target, token="viewer-token") as nb:
        assert nb.explain(d.event_id).action == d.action


def test_no_or_unknown_token_is_unauthenticated(secured: SecureServer) -> None:
    for token in (None, "made-up"):
        with NextBest(secured.target, token=token) as nb, pytest.raises(Unauthenticated):
            nb.decide(POLICY, "billing_dispute")


def test_the_token_comes_from_the_environment(
    secured: SecureServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NEXTBEST_TOKEN", "agent-token")
    with NextBest(secured.target) as nb:
        assert nb.decide(POLICY, "billing_dispute").action
    with NextBest(secured.target, token="") as nb, pytest.raises(Unauthenticated):
        nb.decide(POLICY, "billing_dispute")  # "" sends none, whatever the environment says

    async def run() -> str:
        async with AsyncNextBest(secured.target) as nb:
            return (await nb.decide(POLICY, "billing_dispute")).action

    assert asyncio.run(run())


def test_admin_reads_changes_and_is_refused_without_the_scope(secured: SecureServer) -> None:
    with Admin(secured.target, token="viewer-token") as viewer:
        (status,) = viewer.list_policies()
        assert status.policy == POLICY
        assert viewer.get_policy(POLICY).exploration.epsilon == pytest.approx(0.1)
        assert isinstance(viewer.list_models(POLICY), list)
        with pytest.raises(PermissionDenied, match="'admin'"):
            viewer.set_exploration(POLICY, 0.05, reason="not mine to change")
        with pytest.raises(NotFound) as unknown:
            viewer.get_policy("no.such.policy")
        assert unknown.value.field == "policy"

    with Admin(secured.target, token="ops-token") as ops:
        status = ops.set_exploration(POLICY, 0.05, reason="3am: explore less")
        assert status.exploration.epsilon == pytest.approx(0.05)
        (override,) = [o for o in status.overrides if o.setting == "exploration.epsilon"]
        assert (override.set_by, override.reason) == ("ops", "3am: explore less")
        with pytest.raises(InvalidArgument) as above:
            ops.set_exploration(POLICY, 0.9, reason="too much")
        assert above.value.field
        assert ops.set_mode(POLICY, "frozen", reason="incident").mode == "frozen"
        cleared = ops.clear_overrides(POLICY, reason="resolved")
        assert (cleared.mode, list(cleared.overrides)) == (cleared.file_mode, [])
        assert ops.reload_config(reason="file edited").applied

    with Admin(secured.target) as anonymous, pytest.raises(Unauthenticated):
        anonymous.list_policies()


def test_async_admin(secured: SecureServer) -> None:
    async def run() -> None:
        async with AsyncAdmin(secured.target, token="ops-token") as ops:
            assert [p.policy for p in await ops.list_policies()] == [POLICY]
            status = await ops.set_exploration(
                POLICY, per_intent={"login_problem": 0.02}, reason="quiet"
            )
            assert status.exploration.per_intent["login_problem"] == pytest.approx(0.02)
            assert (await ops.get_policy(POLICY)).overrides
            await ops.clear_overrides(POLICY, reason="done")
            assert (await ops.reload_config(reason="r")).applied
            assert isinstance(await ops.list_models(POLICY), list)
            with pytest.raises(InvalidArgument):
                await ops.set_mode(POLICY, "sideways", reason="no such mode")
        async with AsyncAdmin(secured.target, token="agent-token") as agent:
            with pytest.raises(PermissionDenied):
                await agent.rollback_model(POLICY, "1", reason="x")

    asyncio.run(run())
