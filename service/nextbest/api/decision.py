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
from nextbest.api.coalesce import Coalescer
from nextbest.api.errors import bounded, code_of
from nextbest.observability.logging import get_logger
from nextbest.observability.metrics import Metrics
from nextbest.policy.engine import Engine
from nextbest.policy.errors import DecisionError
from nextbest.policy.requests import DecideInput, check_batch
from nextbest_proto.v1 import decision_pb2 as pb
from nextbest_proto.v1 import decision_pb2_grpc as rpc

BATCH_CHUNK = 32
Context = Any  # grpc.aio.ServicerContext, whose stubs are generic in ways that add nothing here


class DecisionServicer(rpc.DecisionServiceServicer):
    def __init__(
        self,
        engine: Engine,
        metrics: Metrics,
        commit: Callable[[], Awaitable[None]],
        coalesce_wait: float = 0.0,
    ) -> None:
        """`commit` returns once what the engine stored is durable (fsync=always);
        `coalesce_wait`: seconds a unary Decide may wait for concurrent ones to be decided
        with (`api.coalesce`; 0: never)."""
        self.engine = engine
        self.metrics = metrics
        self.commit = commit
        self.log = get_logger("nextbest.api")
        self.coalescer = Coalescer(engine, coalesce_wait)

    async def Decide(self, request: pb.DecideRequest, context: Context) -> pb.DecideResponse:
        started = time.perf_counter()
        event = await self.coalescer.decide(convert.decide_input(request))
        response = convert.decide_response(event)
        await self.commit()
        m = self.metrics
        m.child(m.decide_latency, event.policy).observe(time.perf_counter() - started)
        return response

    async def DecideBatch(
        self, request: pb.DecideBatchRequest, context: Context
    ) -> pb.DecideBatchResponse:
        """Every item is decided on its own; a bad item fails alone, with its index named
        (so does an item that hits a bug). Items are decided and kept in chunks of
        BATCH_CHUNK (one journal write, one round trip, one flush of their log lines per
        chunk), and other RPCs get the loop between chunks."""
        items = request.requests
        check_batch(len(items), self.engine.limits)
        response = pb.DecideBatchResponse()
        results = response.results
        for start in range(0, len(items), BATCH_CHUNK):
            if start:
                await asyncio.sleep(0)  # let other RPCs in between the chunks of a large batch
            chunk = items[start : start + BATCH_CHUNK]
            inputs: list[DecideInput | Exception] = []
            for item in chunk:
                try:
                    inputs.append(convert.decide_input(item))
                except Exception as exc:
                    inputs.append(exc)
            decided = iter(
                await self.engine.decide_many([x for x in inputs if not isinstance(x, Exception)])
            )
            for i, x in enumerate(inputs, start):
                outcome = x if isinstance(x, Exception) else next(decided)
                out = results.add()
                if isinstance(outcome, DecisionError):
                    where = f"requests[{i}].{outcome.field}" if outcome.field else f"requests[{i}]"
                    self._failed(out, code_of(outcome), outcome.detail, where)
                    continue
                try:
                    if isinstance(outcome, Exception):
                        raise outcome
                    convert.fill_decision(out.decision, outcome)
                except Exception:
                    log_bug(self.log, "DecideBatch", items[i], item=i)
                    out.Clear()  # half-filled, perhaps
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
