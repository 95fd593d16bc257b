"""Domain errors → gRPC status codes, with the field at fault as a google.rpc.BadRequest.

The message names the field for people; the BadRequest detail names it for programs (the
client SDK raises a typed exception carrying it).
"""

from __future__ import annotations

from typing import NoReturn

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from nextbest.policy.errors import (
    AlreadyExists,
    DecisionError,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    Unavailable,
)

CODES: dict[type[DecisionError], grpc.StatusCode] = {
    InvalidArgument: grpc.StatusCode.INVALID_ARGUMENT,
    NotFound: grpc.StatusCode.NOT_FOUND,
    FailedPrecondition: grpc.StatusCode.FAILED_PRECONDITION,
    AlreadyExists: grpc.StatusCode.ALREADY_EXISTS,
    Unavailable: grpc.StatusCode.UNAVAILABLE,
}


def code_of(exc: DecisionError) -> grpc.StatusCode:
    return CODES.get(type(exc), grpc.StatusCode.INVALID_ARGUMENT)


def to_status(exc: DecisionError) -> grpc.Status:
    code = code_of(exc)
    status = status_pb2.Status(code=code.value[0], message=str(exc))
    if exc.field:
        detail = any_pb2.Any()
        detail.Pack(
            error_details_pb2.BadRequest(
                field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(
                        field=exc.field, description=exc.detail
                    )
                ]
            )
        )
        status.details.append(detail)
    converted: grpc.Status = rpc_status.to_status(status)
    return converted


async def abort(context: grpc.aio.ServicerContext[object, object], exc: DecisionError) -> NoReturn:
    """Abort the RPC with exc's status (grpc raises to end the call)."""
    await context.abort_with_status(to_status(exc))
    raise AssertionError("abort_with_status returned")  # grpc always raises
