"""The routes of the Personalizer-compatible API, and the OpenAPI document describing exactly
them (served at ``/openapi.json``), built from the same models that parse the requests."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel

from .schemas import (
    ErrorResponse,
    PolicyContract,
    RankRequest,
    RankResponse,
    RewardRequest,
    ServiceConfiguration,
    ServiceConfigurationView,
)

PREFIX = "/policies/{policy}/personalizer"
VERSIONED = "/v1.0"  # the v1.0 SDKs put the version in the path
API_VERSIONS = ("2022-09-01-preview",)  # the newer SDK: no version in the path, a query one
POLICY_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$"  # policy.config.POLICY_NAME


@dataclass(frozen=True, slots=True)
class Operation:
    """One Personalizer operation: served at PREFIX + VERSIONED + path, and at PREFIX + path
    with ``?api-version=``."""

    name: str
    method: str
    path: str  # in OpenAPI's syntax: {eventId}
    scope: str  # the auth file's scope it needs
    summary: str
    status: int  # on success
    request: type[BaseModel] | None = None
    response: type[BaseModel] | None = None


OPERATIONS = (
    Operation(
        "Rank",
        "POST",
        "/rank",
        "decide",
        "Choose one of the request's actions for its context",
        201,
        RankRequest,
        RankResponse,
    ),
    Operation(
        "Reward",
        "POST",
        "/events/{eventId}/reward",
        "reward",
        "Report the reward of an event's chosen action",
        204,
        RewardRequest,
    ),
    Operation(
        "Activate",
        "POST",
        "/events/{eventId}/activate",
        "decide",
        "Activate an event ranked with deferActivation, so that it is learned",
        204,
    ),
    Operation(
        "GetServiceConfiguration",
        "GET",
        "/configurations/service",
        "read",
        "The policy's reward wait, default reward, aggregation, exploration and mode",
        200,
        response=ServiceConfigurationView,
    ),
    Operation(
        "UpdateServiceConfiguration",
        "PUT",
        "/configurations/service",
        "admin",
        "Set explorationPercentage and learningMode live (audited, as the admin API does)",
        200,
        ServiceConfiguration,
        ServiceConfigurationView,
    ),
    Operation(
        "GetPolicy",
        "GET",
        "/configurations/policy",
        "read",
        "The policy's learning settings: its VW arguments",
        200,
        response=PolicyContract,
    ),
)

ERRORS = {
    "400": "The request is malformed; the message names the field.",
    "401": "Auth is configured and no valid key was sent.",
    "403": "The key lacks the operation's scope.",
    "404": "Unknown policy or event.",
    "409": (
        "The eventId was used for another request, or every action is masked (excluded or "
        "denied by a safety rule)."
    ),
    "413": "The body is larger than the server accepts.",
    "429": "A bound that protects every caller was reached; retry later.",
    "500": "A bug (the server logged it).",
    "503": "The data dir cannot be written; nothing was kept.",
}
_REF = "#/components/schemas/{model}"


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": _REF.format(model=model.__name__)}


def _parameters(op: Operation, versioned: bool) -> list[dict[str, Any]]:
    params: list[dict[str, Any]] = [
        {
            "name": "policy",
            "in": "path",
            "required": True,
            "description": "The nextbest policy: the endpoint is http://HOST:PORT/policies/{policy}",
            "schema": {"type": "string", "pattern": POLICY_PATTERN},
        }
    ]
    if "{eventId}" in op.path:
        params.append(
            {
                "name": "eventId",
                "in": "path",
                "required": True,
                "description": "The eventId a rank answered.",
                "schema": {"type": "string", "minLength": 1},
            }
        )
    if not versioned:
        params.append(
            {
                "name": "api-version",
                "in": "query",
                "required": True,
                "schema": {"type": "string", "enum": list(API_VERSIONS)},
            }
        )
    return params


def _operation(op: Operation, versioned: bool) -> dict[str, Any]:
    success: dict[str, Any] = {"description": op.summary}
    if op.response is not None:
        success["content"] = {"application/json": {"schema": _ref(op.response)}}
    error = {"application/json": {"schema": _ref(ErrorResponse)}}
    spec: dict[str, Any] = {
        "operationId": op.name + ("_v1.0" if versioned else ""),
        "summary": op.summary,
        "description": f"Needs a key with the `{op.scope}` scope when auth is configured.",
        "parameters": _parameters(op, versioned),
        "responses": {
            str(op.status): success,
            **{code: {"description": text, "content": error} for code, text in ERRORS.items()},
        },
    }
    if op.request is not None:
        spec["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": _ref(op.request)}},
        }
    return spec


def document() -> dict[str, Any]:
    """The OpenAPI 3.1 document of every route this API serves."""
    paths: dict[str, dict[str, Any]] = {}
    for versioned in (True, False):
        for op in OPERATIONS:
            path = PREFIX + (VERSIONED if versioned else "") + op.path
            paths.setdefault(path, {})[op.method.lower()] = _operation(op, versioned)
    schemas: dict[str, Any] = {}
    models: list[type[BaseModel]] = [ErrorResponse]
    models += [m for op in OPERATIONS for m in (op.request, op.response) if m is not None]
    for model in models:
        requests: tuple[type[BaseModel], ...] = (RankRequest, RewardRequest, ServiceConfiguration)
        mode: Literal["validation", "serialization"] = (
            "validation" if model in requests else "serialization"
        )
        schema = model.model_json_schema(ref_template=_REF, mode=mode)
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "nextbest: Azure Personalizer-compatible API",
            "version": "1.0",
            "description": (
                "Azure Personalizer's REST API over nextbest's engine: one policy per "
                "endpoint, http://HOST:PORT/policies/{policy}. Rank, reward, activate and the "
                "service configuration, with nextbest's safety masks, bounded exploration and "
                'durable logging. Errors: {"error": {"code", "message"}}.'
            ),
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "apiKey": {"type": "apiKey", "in": "header", "name": "Ocp-Apim-Subscription-Key"},
                "bearer": {"type": "http", "scheme": "bearer"},
            },
        },
        "security": [{"apiKey": []}, {"bearer": []}, {}],
    }
