"""The gRPC floors: DecisionService servers that do no work, so what they cost is what gRPC
and protobuf cost in Python on this machine. Every nextbest figure is read against one."""

from __future__ import annotations

import uuid
from typing import Any

import grpc

from nextbest_client.v1 import decision_pb2 as pb
from nextbest_client.v1 import decision_pb2_grpc as rpc

UNSERVED = "the floor serves Decide and Reward"


class FloorServicer(rpc.DecisionServiceServicer):
    """No work: the same prebuilt response for every Decide (and every batch item), and one
    prebuilt ACCEPTED for every Reward."""

    def __init__(self, response: pb.DecideResponse) -> None:
        self.response = response
        self.reward = pb.RewardResponse(status=pb.REWARD_STATUS_ACCEPTED, value=0.5)
        self._batches: dict[int, pb.DecideBatchResponse] = {}

    async def Decide(self, request: pb.DecideRequest, context: Any) -> pb.DecideResponse:
        return self.response

    async def DecideBatch(
        self, request: pb.DecideBatchRequest, context: Any
    ) -> pb.DecideBatchResponse:
        n = len(request.requests)
        found = self._batches.get(n)
        if found is None:
            item = pb.DecideBatchResult(decision=self.response)
            found = self._batches[n] = pb.DecideBatchResponse(results=[item] * n)
        return found

    async def Reward(self, request: pb.RewardRequest, context: Any) -> pb.RewardResponse:
        return self.reward

    async def Activate(self, request: pb.ActivateRequest, context: Any) -> pb.ActivateResponse:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, UNSERVED)
        raise AssertionError("unreachable: abort raises")

    async def Explain(self, request: pb.ExplainRequest, context: Any) -> pb.ExplainResponse:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, UNSERVED)
        raise AssertionError("unreachable: abort raises")


def floor_response() -> pb.DecideResponse:
    """A response shaped like a real support.next_step decision: 4 ranked, 1 masked."""
    return pb.DecideResponse(
        event_id=uuid.uuid4().hex,
        action_id="ask_details",
        probability=0.9333333333333333,
        explored=False,
        fallback=False,
        ranking=[
            pb.RankedAction(
                action_id="ask_details", probability=0.9333333333333333, score=0.018375396728515625
            ),
            pb.RankedAction(
                action_id="transfer_billing",
                probability=0.03333333333333333,
                score=-0.0071258544921875,
            ),
            pb.RankedAction(
                action_id="escalate_human", probability=0.03333333333333333, score=-0.012451171875
            ),
            pb.RankedAction(action_id="offer_refund", probability=0.0, score=-0.0242767333984375),
        ],
        masked=[
            pb.MaskedAction(
                action_id="offer_refund",
                reason="refunds need 30 days of tenure and at most 200",
                rule="refund_limits",
            ),
        ],
        model_version="0",
        config_version="0123456789ab",
        epsilon=0.1,
    )


def floor_bytes_handler(response: bytes, sync: bool) -> grpc.GenericRpcHandler:
    """DecisionService's Decide and Reward answering fixed bytes, neither parsing nor
    serializing anything: what the transport alone costs (sync: for grpc.server)."""
    reward = pb.RewardResponse(status=pb.REWARD_STATUS_ACCEPTED, value=0.5).SerializeToString()
    handlers: dict[str, grpc.RpcMethodHandler[Any, Any]] = {}
    for name, body in (("Decide", response), ("Reward", reward)):
        if sync:

            def answer(request: bytes, context: Any, body: bytes = body) -> bytes:
                return body

            handlers[name] = grpc.unary_unary_rpc_method_handler(answer)
        else:

            async def answer_aio(request: bytes, context: Any, body: bytes = body) -> bytes:
                return body

            handlers[name] = grpc.unary_unary_rpc_method_handler(answer_aio)
    service = pb.DESCRIPTOR.services_by_name["DecisionService"].full_name
    return grpc.method_handlers_generic_handler(service, handlers)
