"""A checkpoint's file work does not stall the calls being served: while a thread writes
the model file, Decide and Reward are answered."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from nextbest.store import checkpoints
from nextbest_proto.v1 import decision_pb2 as pb
from tests.integration.conftest import RunningServer, ctx, wait_for
from tests.unit.store.test_checkpoint_thread import WAIT, Gate

POLICY = "support.next_step"


def test_calls_are_answered_while_a_checkpoint_is_written(
    server: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    request = pb.DecideRequest(
        policy=POLICY, intent="billing_dispute", context=ctx(account_age_days=400, amount=50)
    )
    for _ in range(30):
        decision = server.stub.Decide(request)
        server.stub.Reward(pb.RewardRequest(event_id=decision.event_id, value=1.0))
    model = server.server.engine.policies[POLICY].model
    wait_for(lambda: model.learned == 30)
    gate = Gate()
    monkeypatch.setattr(checkpoints, "write_atomic", gate)

    async def begin() -> asyncio.Task[None] | None:
        started: asyncio.Task[None] | None = server.server.start_checkpoint()
        return started

    task = server._run(begin())
    assert task is not None
    assert gate.entered.wait(WAIT)  # the thread holds the model file
    decision = server.stub.Decide(request, timeout=WAIT)  # the loop answers meanwhile
    server.stub.Reward(pb.RewardRequest(event_id=decision.event_id, value=1.0), timeout=WAIT)
    wait_for(lambda: model.learned == 31)  # and learns
    assert not task.done()
    gate.opened.set()

    async def end() -> None:
        await task

    server._run(end())
    models = Path(server.server.settings.data_dir) / "policies" / POLICY / "models"
    [manifest] = [m for _, m in checkpoints.Checkpoints(models).manifests() if m]
    assert manifest.learned == 30  # as the bytes were taken, not as the model is now
