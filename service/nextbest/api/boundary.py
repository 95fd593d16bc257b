"""The RPC boundary of DecisionService: parse, call, and answer every failure with a status.

Registered instead of the generated ``add_DecisionServiceServicer_to_server``. The handlers
take raw bytes, so a request that does not parse is INVALID_ARGUMENT (grpc's own deserializer
would answer UNKNOWN, echoing the exception). A DecisionError becomes its status; anything
else is a bug: INTERNAL with a fixed message (no internals reach the caller), logged with its
traceback. Every error answered is counted in ``nextbest_errors_total{method, code}``; the
method label is one of METHODS, never the caller's path. A plain wrapper per method costs
one coroutine frame per call, less than a generic aio interceptor.

Reflection is unaffected: it reads file descriptors, not handlers.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, NoReturn

import grpc
from google.protobuf.message import DecodeError, Message

from nextbest.api.errors import status_of, to_status
from nextbest.observability.logging import get_logger
from nextbest.observability.metrics import Metrics
from nextbest.policy.errors import DecisionError, InvalidArgument
from nextbest_client.v1 import decision_pb2 as pb

SERVICE = pb.DESCRIPTOR.services_by_name["DecisionService"].full_name
METHODS: dict[str, tuple[type[Message], type[Message]]] = {
    "Decide": (pb.DecideRequest, pb.DecideResponse),
    "DecideBatch": (pb.DecideBatchRequest, pb.DecideBatchResponse),
    "Reward": (pb.RewardRequest, pb.RewardResponse),
    "Activate": (pb.ActivateRequest, pb.ActivateResponse),
    "Explain": (pb.ExplainRequest, pb.ExplainResponse),
}
INTERNAL_MESSAGE = "internal error (the server logged it)"
LOGGED_ID_CHARS = 256  # an event id in a log line: enough to find it, bounded

Handler = Callable[[Any, Any], Awaitable[Message]]


def add_decision_service(servicer: object, server: grpc.aio.Server, metrics: Metrics) -> None:
    """Register every method of `servicer` (DecisionServiceServicer) behind the boundary."""
    log = get_logger("nextbest.api")
    handlers: dict[str, grpc.RpcMethodHandler[bytes, Message]] = {
        name: grpc.unary_unary_rpc_method_handler(
            _guarded(name, getattr(servicer, name), request_type, metrics, log),
            request_deserializer=None,  # bytes: parsed in the guard
            response_serializer=response_type.SerializeToString,
        )
        for name, (request_type, response_type) in METHODS.items()
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
    server.add_registered_method_handlers(SERVICE, handlers)


def log_bug(log: Any, method: str, request: object, **extra: object) -> None:
    """One error line with the traceback, the method and the request's event id if any."""
    event_id = getattr(request, "event_id", None)
    if event_id is not None:
        extra["event_id"] = event_id[:LOGGED_ID_CHARS]
    log.exception("rpc_failed", method=method, **extra)


def _guarded(
    name: str, method: Handler, request_type: type[Message], metrics: Metrics, log: Any
) -> Callable[[bytes, Any], Awaitable[Message]]:
    parse = request_type.FromString
    not_parsed = f"request: not a valid {request_type.DESCRIPTOR.full_name}"

    async def handle(data: bytes, context: Any) -> Message:
        try:
            request = parse(data)
        except DecodeError:
            await abort(context, name, to_status(InvalidArgument(not_parsed)))
        try:
            return await method(request, context)
        except DecisionError as exc:
            status = to_status(exc)
        except grpc.aio.AbortError:
            raise  # the servicer ended the call itself
        except Exception:
            log_bug(log, name, request)
            status = status_of(grpc.StatusCode.INTERNAL, INTERNAL_MESSAGE)
        await abort(context, name, status)

    async def abort(context: Any, method: str, status: grpc.Status) -> NoReturn:
        metrics.child(metrics.errors, method, status.code.name).inc()
        await context.abort_with_status(status)
        raise AssertionError("abort_with_status returned")  # grpc always raises

    return handle
