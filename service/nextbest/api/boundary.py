"""The RPC boundary of every nextbest service: authorize, parse, call, and answer every
failure with a status.

Registered instead of the generated ``add_*Servicer_to_server``. Each method needs a scope
(``decide``, ``reward``, ``read``, ``admin``); the `authorize` hook (see ``api.auth``) turns
the call's credentials into the caller's identity or refuses it, and the identity is
available to the servicer, for audit records, as :data:`CALLER`. The handlers
take raw bytes, so a request that does not parse is INVALID_ARGUMENT (grpc's own deserializer
would answer UNKNOWN, echoing the exception). A DecisionError becomes its status; anything
else is a bug: INTERNAL with a fixed message (no internals reach the caller), logged with its
traceback. Every error answered is counted in ``nextbest_errors_total{method, code}``; the
method label is one of METHODS, never the caller's path. A plain wrapper per method costs
one coroutine frame per call, less than a generic aio interceptor.

Reflection is unaffected: it reads file descriptors, not handlers.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, NoReturn

import grpc
from google.protobuf.message import DecodeError, Message

from nextbest.api.auth import ANONYMOUS
from nextbest.api.errors import status_of, to_status
from nextbest.observability.logging import get_logger
from nextbest.observability.metrics import Metrics
from nextbest.policy.errors import DecisionError, InvalidArgument
from nextbest_proto.v1 import decision_pb2 as pb


@dataclass(frozen=True, slots=True)
class Method:
    """One RPC: its messages, and the scope a caller needs for it."""

    request: type[Message]
    response: type[Message]
    scope: str


SERVICE = pb.DESCRIPTOR.services_by_name["DecisionService"].full_name
METHODS: dict[str, Method] = {
    "Decide": Method(pb.DecideRequest, pb.DecideResponse, "decide"),
    "DecideBatch": Method(pb.DecideBatchRequest, pb.DecideBatchResponse, "decide"),
    "Reward": Method(pb.RewardRequest, pb.RewardResponse, "reward"),
    "Activate": Method(pb.ActivateRequest, pb.ActivateResponse, "decide"),
    "Explain": Method(pb.ExplainRequest, pb.ExplainResponse, "read"),
}
INTERNAL_MESSAGE = "internal error (the server logged it)"
LOGGED_ID_CHARS = 256  # an event id in a log line: enough to find it, bounded
# Who is calling, for the duration of one call: set by the boundary, read by servicers
# that record the caller (audit records).
CALLER: ContextVar[str] = ContextVar("nextbest_caller", default=ANONYMOUS)

Handler = Callable[[Any, Any], Awaitable[Message]]
# (the call's context, the scope the method needs) → the caller's identity; raises a
# DecisionError subclass (Unauthenticated, PermissionDenied) to refuse the call.
Authorize = Callable[[Any, str], str]


def add_service(
    server: grpc.aio.Server,
    service: str,
    methods: Mapping[str, Method],
    servicer: object,
    metrics: Metrics,
    authorize: Authorize | None = None,
) -> None:
    """Register every method of `servicer` behind the boundary."""
    log = get_logger("nextbest.api")
    handlers: dict[str, grpc.RpcMethodHandler[bytes, Message]] = {
        name: grpc.unary_unary_rpc_method_handler(
            _guarded(name, getattr(servicer, name), method, metrics, log, authorize),
            request_deserializer=None,  # bytes: parsed in the guard
            response_serializer=method.response.SerializeToString,
        )
        for name, method in methods.items()
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service, handlers),))
    server.add_registered_method_handlers(service, handlers)


def add_decision_service(
    servicer: object,
    server: grpc.aio.Server,
    metrics: Metrics,
    authorize: Authorize | None = None,
) -> None:
    """Register DecisionService (`servicer`: a DecisionServiceServicer)."""
    add_service(server, SERVICE, METHODS, servicer, metrics, authorize)


def log_bug(log: Any, method: str, request: object, **extra: object) -> None:
    """One error line with the traceback, the method and the request's event id if any."""
    event_id = getattr(request, "event_id", None)
    if event_id is not None:
        extra["event_id"] = event_id[:LOGGED_ID_CHARS]
    log.exception("rpc_failed", method=method, **extra)


def _guarded(
    name: str,
    method: Handler,
    spec: Method,
    metrics: Metrics,
    log: Any,
    authorize: Authorize | None,
) -> Callable[[bytes, Any], Awaitable[Message]]:
    parse = spec.request.FromString
    not_parsed = f"request: not a valid {spec.request.DESCRIPTOR.full_name}"
    scope = spec.scope

    async def handle(data: bytes, context: Any) -> Message:
        if authorize is not None:
            try:
                CALLER.set(authorize(context, scope))
            except DecisionError as exc:
                await abort(context, name, to_status(exc))
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
