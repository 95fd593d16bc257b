"""DecisionService over grpc.aio: translate, call the engine, translate back."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from nextbest.api import convert
from nextbest.api.errors import abort, code_of
from nextbest.observability.metrics import Metrics
from nextbest.policy.engine import Engine
from nextbest.policy.errors import DecisionError
from nextbest.policy.requests import check_batch
from nextbest_client.v1 import decision_pb2 as pb
from nextbest_client.v1 import decision_pb2_grpc as rpc

BATCH_YIELD_EVERY = 32
Context = Any  # grpc.aio.ServicerContext, whose stubs are generic in ways that add nothing here


class DecisionServicer(rpc.DecisionServiceServicer):
    def __init__(
        self, engine: Engine, metrics: Metrics, commit: Callable[[], Awaitable[None]]
    ) -> None:
        """`commit` returns once what the engine stored is durable (fsync=always)."""
        self.engine = engine
        self.metrics = metrics
        self.commit = commit

    async def Decide(self, request: pb.DecideRequest, context: Context) -> pb.DecideResponse:
        started = time.perf_counter()
        try:
            event = self.engine.decide(convert.decide_input(request))
        except DecisionError as exc:
            await abort(context, exc)
        response = convert.decide_response(event)
        await self.commit()
        m = self.metrics
        m.child(m.decide_latency, event.policy).observe(time.perf_counter() - started)
        return response

    async def DecideBatch(
        self, request: pb.DecideBatchRequest, context: Context
    ) -> pb.DecideBatchResponse:
        """Every item is decided on its own; a bad item fails alone, with its index named."""
        try:
            check_batch(len(request.requests), self.engine.limits)
        except DecisionError as exc:
            await abort(context, exc)
        results: list[pb.DecideBatchResult] = []
        for i, item in enumerate(request.requests):
            if i and i % BATCH_YIELD_EVERY == 0:
                await asyncio.sleep(0)  # let other RPCs in between items of a large batch
            try:
                event = self.engine.decide(convert.decide_input(item))
            except DecisionError as exc:
                error = pb.DecideError(
                    code=code_of(exc).value[0],
                    message=exc.detail,
                    field=f"requests[{i}].{exc.field}" if exc.field else f"requests[{i}]",
                )
                results.append(pb.DecideBatchResult(error=error))
                continue
            results.append(pb.DecideBatchResult(decision=convert.decide_response(event)))
        await self.commit()
        return pb.DecideBatchResponse(results=results)

    async def Reward(self, request: pb.RewardRequest, context: Context) -> pb.RewardResponse:
        try:
            outcome = self.engine.reward(convert.reward_input(request))
        except DecisionError as exc:
            await abort(context, exc)
        await self.commit()
        return pb.RewardResponse(status=convert.REWARD_STATUS[outcome.status], value=outcome.value)

    async def Activate(self, request: pb.ActivateRequest, context: Context) -> pb.ActivateResponse:
        try:
            status = self.engine.activate(request.event_id)
        except DecisionError as exc:
            await abort(context, exc)
        await self.commit()
        return pb.ActivateResponse(status=convert.ACTIVATION_STATUS[status])

    async def Explain(self, request: pb.ExplainRequest, context: Context) -> pb.ExplainResponse:
        try:
            event = self.engine.explain(request.event_id)
        except DecisionError as exc:
            await abort(context, exc)
        return convert.explain_response(event)
