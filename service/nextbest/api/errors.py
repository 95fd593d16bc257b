"""Domain errors → gRPC status codes, with the field at fault as a google.rpc.BadRequest.

The message names the field for people; the BadRequest detail names it for programs (the
client SDK raises a typed exception carrying it). Both travel as trailing metadata, which a
client refuses above its limit (8 KiB by default): every text sent is bounded here, so no
caller-chosen id echoed in a message can make the answer unreadable.
"""

from __future__ import annotations

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from nextbest.api.auth import PermissionDenied, Unauthenticated
from nextbest.policy.errors import (
    AlreadyExists,
    DecisionError,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    ResourceExhausted,
    Unavailable,
)

CODES: dict[type[DecisionError], grpc.StatusCode] = {
    InvalidArgument: grpc.StatusCode.INVALID_ARGUMENT,
    NotFound: grpc.StatusCode.NOT_FOUND,
    FailedPrecondition: grpc.StatusCode.FAILED_PRECONDITION,
    AlreadyExists: grpc.StatusCode.ALREADY_EXISTS,
    ResourceExhausted: grpc.StatusCode.RESOURCE_EXHAUSTED,
    Unavailable: grpc.StatusCode.UNAVAILABLE,
    Unauthenticated: grpc.StatusCode.UNAUTHENTICATED,
    PermissionDenied: grpc.StatusCode.PERMISSION_DENIED,
}
# grpc-message is percent-encoded (≤ 3 bytes per byte) and the details base64-encoded (4/3):
# with these bounds a whole error stays under 5 KiB of metadata.
MAX_MESSAGE_BYTES = 1024
_MAX_FIELD_BYTES = MAX_MESSAGE_BYTES // 4
_MAX_DESCRIPTION_BYTES = MAX_MESSAGE_BYTES // 2
_ELLIPSIS = "…"


def code_of(exc: DecisionError) -> grpc.StatusCode:
    """The code of the nearest mapped class, so a subclass maps as its parent does."""
    for cls in type(exc).__mro__:
        code = CODES.get(cls)
        if code is not None:
            return code
    return grpc.StatusCode.INVALID_ARGUMENT


def bounded(text: str, limit: int = MAX_MESSAGE_BYTES) -> str:
    """`text` cut to at most `limit` UTF-8 bytes, ending with … when cut (never mid-character)."""
    if len(text) * 4 <= limit:  # fast path: even all 4-byte characters fit
        return text
    data = text.encode(errors="replace")  # a lone surrogate cannot travel in a status
    if len(data) <= limit:
        return data.decode()
    room = limit - len(_ELLIPSIS.encode())
    return data[: max(room, 0)].decode(errors="ignore") + _ELLIPSIS


def status_of(code: grpc.StatusCode, message: str) -> grpc.Status:
    """A status with no details (for errors that are not a DecisionError)."""
    converted: grpc.Status = rpc_status.to_status(
        status_pb2.Status(code=code.value[0], message=bounded(message))
    )
    return converted


def to_status(exc: DecisionError) -> grpc.Status:
    code = code_of(exc)
    status = status_pb2.Status(code=code.value[0], message=bounded(str(exc)))
    if exc.field:
        detail = any_pb2.Any()
        detail.Pack(
            error_details_pb2.BadRequest(
                field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(
                        field=bounded(exc.field, _MAX_FIELD_BYTES),
                        description=bounded(exc.detail, _MAX_DESCRIPTION_BYTES),
                    )
                ]
            )
        )
        status.details.append(detail)
    converted: grpc.Status = rpc_status.to_status(status)
    return converted
