"""The Personalizer-compatible REST API as an ASGI app (Starlette): authorize, parse, translate,
call the same engine and control plane as gRPC, translate back.

Every handler is a coroutine on the server's event loop (the engine is single-threaded and
owned by it). Every failure is answered in Personalizer's shape
``{"error": {"code": …, "message": …}}``: a DecisionError with the status its gRPC code maps
to, anything else as 500 with a fixed message (logged with its traceback). Errors are counted
in ``nextbest_errors_total`` with method ``Personalizer.<operation>`` and the gRPC code name,
so the dashboards and alerts see both transports.
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

import grpc
import orjson
from pydantic import BaseModel, ValidationError
from starlette.applications import Starlette
from starlette.convertors import Convertor, register_url_convertor
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from nextbest.api.auth import Authorizer
from nextbest.api.boundary import INTERNAL_MESSAGE, LOGGED_ID_CHARS
from nextbest.api.errors import bounded, code_of
from nextbest.observability.logging import get_logger
from nextbest.observability.metrics import Metrics
from nextbest.policy.control import Control
from nextbest.policy.engine import Engine
from nextbest.policy.errors import DecisionError, InvalidArgument
from nextbest.policy.overrides import check_epsilon, check_mode
from nextbest.policy.requests import RewardInput

from .openapi import API_VERSIONS, OPERATIONS, PREFIX, VERSIONED, Operation, document
from .schemas import RankRequest, RewardRequest, ServiceConfiguration
from .translate import (
    INTENT,
    MODE_OF,
    RankPlan,
    field_name,
    message,
    policy_contract,
    read_only,
    service_configuration,
)

M = TypeVar("M", bound=BaseModel)
Handler = Callable[[Request, str], Awaitable[Response]]  # (request, caller) → response
AUDIT_REASON = "Personalizer API: PUT configurations/service"
KEY_HEADER = "ocp-apim-subscription-key"
HOW = "'Ocp-Apim-Subscription-Key: <token>' or 'Authorization: Bearer <token>'"

# gRPC code → (HTTP status, Personalizer error code)
STATUS: dict[grpc.StatusCode, tuple[int, str]] = {
    grpc.StatusCode.INVALID_ARGUMENT: (400, "BadRequest"),
    grpc.StatusCode.UNAUTHENTICATED: (401, "Unauthorized"),
    grpc.StatusCode.PERMISSION_DENIED: (403, "Forbidden"),
    grpc.StatusCode.NOT_FOUND: (404, "ResourceNotFound"),
    grpc.StatusCode.ALREADY_EXISTS: (409, "Conflict"),
    grpc.StatusCode.FAILED_PRECONDITION: (409, "Conflict"),
    grpc.StatusCode.RESOURCE_EXHAUSTED: (429, "TooManyRequests"),
    grpc.StatusCode.UNAVAILABLE: (503, "ServiceUnavailable"),
}
INTERNAL = (500, "InternalServerError")


class JSON(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        if isinstance(content, BaseModel):
            return content.model_dump_json(exclude_none=True).encode()
        return orjson.dumps(content)


def error_response(
    status: int, code: str, text: str, headers: Mapping[str, str] | None = None
) -> JSON:
    return JSON({"error": {"code": code, "message": bounded(text)}}, status, headers)


class _EventId(Convertor[str]):
    """Any text, also empty or with a / or a newline: the engine judges an event id (a path
    convertor would leave such an id to a 404 for the route)."""

    regex = r"[\s\S]*"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("event_id", _EventId())


class HttpProblem(Exception):
    """A refusal the domain has no word for (body too large, unsupported api-version)."""

    def __init__(self, status: int, code: str, text: str, grpc_code: grpc.StatusCode) -> None:
        super().__init__(text)
        self.status, self.code, self.text, self.grpc_code = status, code, text, grpc_code


class PersonalizerApi:
    """The ASGI app over one engine and its control plane."""

    def __init__(
        self,
        engine: Engine,
        control: Control,
        commit: Callable[[], Awaitable[None]],
        authorizer: Authorizer,
        metrics: Metrics,
        max_body_bytes: int,
        retention_days: int,
    ) -> None:
        """`commit` returns once what the engine stored is durable (as after a gRPC call)."""
        self.engine = engine
        self.control = control
        self.commit = commit
        self.authorizer = authorizer
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes
        self.retention_days = retention_days
        self.log = get_logger("nextbest.personalizer")
        self.openapi = orjson.dumps(document())
        handlers: dict[str, Handler] = {
            "Rank": self.rank,
            "Reward": self.reward,
            "Activate": self.activate,
            "GetServiceConfiguration": self.get_service_configuration,
            "UpdateServiceConfiguration": self.update_service_configuration,
            "GetPolicy": self.get_policy,
        }
        routes = [Route("/openapi.json", self.openapi_json, methods=["GET"])]
        for versioned in (True, False):
            for op in OPERATIONS:
                path = PREFIX + (VERSIONED if versioned else "") + op.path
                path = path.replace("{eventId}", "{eventId:event_id}")
                routes.append(
                    Route(
                        path,
                        self._guarded(op, handlers[op.name], versioned),
                        methods=[op.method],
                        name=op.name + ("_v1.0" if versioned else ""),
                    )
                )
        self.app = Starlette(
            routes=routes,
            exception_handlers={HTTPException: self._http_exception, Exception: self._bug},
        )

    # -- the boundary ---------------------------------------------------------------------------

    def _guarded(
        self, op: Operation, handler: Handler, versioned: bool
    ) -> Callable[[Request], Awaitable[Response]]:
        method = f"Personalizer.{op.name}"

        async def endpoint(request: Request) -> Response:
            try:
                caller = self._authorize(request, op.scope)
                if not versioned:
                    _check_api_version(request)
                return await handler(request, caller)
            except DecisionError as exc:
                return self._refused(method, exc, field_name(exc.field))
            except HttpProblem as exc:
                self._count(method, exc.grpc_code)
                return error_response(exc.status, exc.code, exc.text)
            except Exception:
                event_id = request.path_params.get("eventId")
                extra = {"event_id": event_id[:LOGGED_ID_CHARS]} if event_id else {}
                self.log.exception("http_failed", method=method, **extra)
                self._count(method, grpc.StatusCode.INTERNAL)
                return error_response(*INTERNAL, INTERNAL_MESSAGE)

        return endpoint

    def _refused(self, method: str, exc: DecisionError, field: str) -> Response:
        code = code_of(exc)
        self._count(method, code)
        status, name = STATUS.get(code, INTERNAL)
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        return error_response(status, name, message(exc, field), headers)

    def _count(self, method: str, code: grpc.StatusCode) -> None:
        self.metrics.child(self.metrics.errors, method, code.name).inc()

    def _authorize(self, request: Request, scope: str) -> str:
        if not self.authorizer.enabled:
            return self.authorizer.check_token(None, scope, HOW)
        token = request.headers.get(KEY_HEADER)
        if not token:
            value = request.headers.get("authorization", "")
            if value[:7].lower() == "bearer ":
                token = value[7:].strip()
        return self.authorizer.check_token(token or None, scope, HOW)

    async def _http_exception(self, request: Request, exc: Exception) -> Response:
        """Starlette's own refusals: an unknown route (404), a method a route lacks (405)."""
        assert isinstance(exc, HTTPException)
        if exc.status_code == 405:
            return error_response(
                405, "MethodNotAllowed", f"{request.method} is not allowed here", exc.headers
            )
        if exc.status_code == 404:
            return error_response(
                404,
                "ResourceNotFound",
                f"no such route: {request.url.path[:256]} (nextbest serves rank, "
                "events/{eventId}/reward, events/{eventId}/activate, configurations/service "
                f"and configurations/policy under {PREFIX}[/v1.0]; see /openapi.json)",
            )
        return error_response(exc.status_code, "BadRequest", exc.detail)

    async def _bug(self, request: Request, exc: Exception) -> Response:
        self.log.error("http_failed", path=request.url.path[:256], exc_info=exc)
        return error_response(*INTERNAL, INTERNAL_MESSAGE)

    async def _parse(self, request: Request, model: type[M]) -> M:
        """The body, bounded, as JSON, as `model`; 400 naming the field, 413 when too large."""
        limit = self.max_body_bytes
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise _too_large(limit)
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise _too_large(limit)
            chunks.append(chunk)
        data = b"".join(chunks)
        if not data.strip():
            raise InvalidArgument("the body is empty: send a JSON object", "body")
        try:
            value = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise InvalidArgument(f"not valid JSON: {exc}", "body") from None
        try:
            return model.model_validate(value)
        except ValidationError as exc:
            raise _invalid(exc) from None

    # -- operations -----------------------------------------------------------------------------

    async def openapi_json(self, request: Request) -> Response:
        return Response(self.openapi, media_type="application/json")

    async def rank(self, request: Request, caller: str) -> Response:
        started = time.perf_counter()
        body = await self._parse(request, RankRequest)
        policy = request.path_params["policy"]
        plan = RankPlan(policy, self.engine.policy(policy), body)
        try:
            event = await self.engine.decide(plan.input)
        except DecisionError as exc:
            raise plan.refused(exc) from None
        answer = plan.response(event)
        await self.commit()
        m = self.metrics
        m.child(m.decide_latency, event.policy).observe(time.perf_counter() - started)
        return JSON(answer, 201)

    async def reward(self, request: Request, caller: str) -> Response:
        body = await self._parse(request, RewardRequest)
        await self.engine.reward(RewardInput(request.path_params["eventId"], value=body.value))
        await self.commit()
        return Response(status_code=204)

    async def activate(self, request: Request, caller: str) -> Response:
        await self.engine.activate(request.path_params["eventId"])
        await self.commit()
        return Response(status_code=204)

    async def get_service_configuration(self, request: Request, caller: str) -> Response:
        rt = self.engine.policy(request.path_params["policy"])
        return JSON(service_configuration(rt, self.retention_days))

    async def update_service_configuration(self, request: Request, caller: str) -> Response:
        """Exploration and mode become live overrides through the control plane (checked,
        kept, audited as the admin API's); the reward settings are the file's (refused when
        changed); the rest has no counterpart here and is ignored."""
        body = await self._parse(request, ServiceConfiguration)
        policy = request.path_params["policy"]
        rt = self.engine.policy(policy)
        read_only(rt, body.rewardWaitTime, body.defaultReward, body.rewardAggregation)
        epsilon = body.explorationPercentage
        mode = MODE_OF[body.learningMode] if body.learningMode is not None else None
        # Check both before changing either (the control plane checks again, as it does for
        # every caller).
        if epsilon is not None:
            check_epsilon(rt.file_config, epsilon, "explorationPercentage")
        if mode is not None:
            check_mode(mode, "learningMode")
        exploration = rt.config.exploration
        if epsilon is not None and not math.isclose(
            epsilon, exploration.epsilon_for(INTENT), abs_tol=1e-12
        ):
            per_intent = {INTENT: epsilon} if INTENT in exploration.per_intent else {}
            rt = self.control.set_exploration(policy, epsilon, per_intent, AUDIT_REASON, caller)
        if mode is not None and mode != rt.config.mode:
            rt = self.control.set_mode(policy, mode, AUDIT_REASON, caller)
        return JSON(service_configuration(rt, self.retention_days))

    async def get_policy(self, request: Request, caller: str) -> Response:
        return JSON(policy_contract(self.engine.policy(request.path_params["policy"])))


def _check_api_version(request: Request) -> None:
    version = request.query_params.get("api-version")
    if version not in API_VERSIONS:
        shown = "none" if version is None else repr(version[:64])
        raise InvalidArgument(
            f"{shown} is not supported: use {', '.join(API_VERSIONS)}, or the /v1.0 routes",
            "api-version",
        )


def _too_large(limit: int) -> HttpProblem:
    return HttpProblem(
        413,
        "PayloadTooLarge",
        f"body: larger than {limit} bytes",
        grpc.StatusCode.RESOURCE_EXHAUSTED,
    )


def _invalid(error: ValidationError) -> InvalidArgument:
    """The first problems pydantic found, each with its JSON path (actions[0].id)."""
    parts = []
    for item in error.errors()[:3]:
        path = ""
        for part in item["loc"]:
            path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
        parts.append(f"{path or 'body'}: {item['msg']}")
    first, _, rest = parts[0].partition(": ")
    detail = "; ".join([rest, *parts[1:]])
    return InvalidArgument(detail, first)
