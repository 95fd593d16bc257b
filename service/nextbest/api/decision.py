"""DecisionService over grpc.aio: translate, call the engine, translate back.

Methods raise DecisionError for a refused request; the boundary (``api.boundary``) turns it,
and any unexpected exception, into the call's status.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import grpc

from nextbest.api import convert
from nextbest.api.boundary import INTERNAL_MESSAGE, log_bug
from nextbest.api.errors import bounded, code_of
from nextbest.observability.logging import get_logger
from nextbest.observability.metrics import Metrics
from nextbest.policy.engine import Engine
from nextbest.policy.errors import DecisionError
from nextbest.policy.requests import check_batch
from nextbest_proto.v1 import decision_pb2 as pb
from nextbest_proto.v1 import decision_pb2_grpc as rpc

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
        self.log = get_logger("nextbest.api")

    async def Decide(self, request: pb.DecideRequest, context: Context) -> pb.DecideResponse:
        started = time.perf_counter()
        event = await self.engine.decide(convert.decide_input(request))
        response = convert.decide_response(event)
        await self.commit()
        m = self.metrics
        m.child(m.decide_latency, event.policy).observe(time.perf_counter() - started)
        return response

    async def DecideBatch(
        self, request: pb.DecideBatchRequest, context: Context
    ) -> pb.DecideBatchResponse:
        """Every item is decided on its own; a bad item fails alone, with its index named.
        So does an item that hits a bug: the items before it are kept, so their ids must
        reach the caller."""
        check_batch(len(request.requests), self.engine.limits)
        response = pb.DecideBatchResponse()
        results = response.results
        for i, item in enumerate(request.requests):
            if i and i % BATCH_YIELD_EVERY == 0:
                await asyncio.sleep(0)  # let other RPCs in between items of a large batch
            try:
                event = await self.engine.decide(convert.decide_input(item))
                convert.fill_decision(results.add().decision, event)
            except DecisionError as exc:
                where = f"requests[{i}].{exc.field}" if exc.field else f"requests[{i}]"
                self._failed(results.add(), code_of(exc), exc.detail, where)
            except Exception:
                log_bug(self.log, "DecideBatch", item, item=i)
                out = results[i] if len(results) > i else results.add()  # half-filled: redo
                out.Clear()
                self._failed(out, grpc.StatusCode.INTERNAL, INTERNAL_MESSAGE, f"requests[{i}]")
        await self.commit()
        return response

    async def Reward(self, request: pb.RewardRequest, context: Context) -> pb.RewardResponse:
        outcome = await self.engine.reward(convert.reward_input(request))
        await self.commit()
        return pb.RewardResponse(status=convert.REWARD_STATUS[outcome.status], value=outcome.value)

    async def Activate(self, request: pb.ActivateRequest, context: Context) -> pb.ActivateResponse:
        status = await self.engine.activate(request.event_id)
        await self.commit()
        return pb.ActivateResponse(status=convert.ACTIVATION_STATUS[status])

    async def Explain(self, request: pb.ExplainRequest, context: Context) -> pb.ExplainResponse:
        event = await self.engine.explain(request.event_id)
        return convert.explain_response(event)

    def _failed(
        self, out: pb.DecideBatchResult, code: grpc.StatusCode, message: str, field: str
    ) -> None:
        """One failed batch item, counted like an error status of DecideBatch."""
        m = self.metrics
        m.child(m.errors, "DecideBatch", code.name).inc()
        out.error.code = code.value[0]
        out.error.message = bounded(message)
        out.error.field = bounded(field)
