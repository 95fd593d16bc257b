"""Typed errors: one class per gRPC status the server uses, carrying the field at fault.

The server names the offending field in a ``google.rpc.BadRequest`` detail (and at the start
of the message, for people). Programs read :attr:`NextBestError.field` instead of parsing text.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import grpc
from google.rpc import error_details_pb2, status_pb2

_DETAILS_KEY = "grpc-status-details-bin"


class NextBestError(Exception):
    """An RPC failed: the base of every error the clients raise.

    Catch it to handle any failure; catch a subclass (one per gRPC status the server uses)
    to handle one kind. ``str(error)`` is ``"<STATUS>: <message>"``.

    Args:
        message: What went wrong, as the server (or the client's own check) said it.
        code: The gRPC status; None keeps the class's own.
        field: The request field at fault, as the server named it in a
            ``google.rpc.BadRequest`` detail (e.g. ``"context['amount']"``); None if none.
        description: The violation without the field; None uses ``message``.

    Attributes:
        code: The gRPC status code.
        message: What went wrong.
        field: The request field at fault, or None: what a program reads instead of
            parsing the message.
        description: The violation without the field.
    """

    code: grpc.StatusCode = grpc.StatusCode.UNKNOWN

    def __init__(
        self,
        message: str,
        *,
        code: grpc.StatusCode | None = None,
        field: str | None = None,
        description: str | None = None,
    ) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code
        self.message = message
        self.field = field
        # The server's description of the violation, without the field prefix.
        self.description = description if description is not None else message

    def __str__(self) -> str:
        return f"{self.code.name}: {self.message}"


class InvalidArgument(NextBestError):
    """The request was refused as malformed; ``field`` names what to fix."""

    code = grpc.StatusCode.INVALID_ARGUMENT


class InvalidContextValue(InvalidArgument, TypeError):
    """A context or feature value of a type nextbest cannot encode, caught before any call."""


class NotFound(NextBestError):
    """Unknown policy or event (never decided, or past retention)."""

    code = grpc.StatusCode.NOT_FOUND


class FailedPrecondition(NextBestError):
    """Every action was masked and the policy has no usable fallback, or similar."""

    code = grpc.StatusCode.FAILED_PRECONDITION


class AlreadyExists(NextBestError):
    """An event id was reused with another policy."""

    code = grpc.StatusCode.ALREADY_EXISTS


class Unauthenticated(NextBestError):
    """No token, or one the server does not know (see ``token=`` / ``NEXTBEST_TOKEN``)."""

    code = grpc.StatusCode.UNAUTHENTICATED


class PermissionDenied(NextBestError):
    """The token is known but lacks the scope the call needs; the message names it."""

    code = grpc.StatusCode.PERMISSION_DENIED


class Unavailable(NextBestError):
    """The server could not be reached, after every retry."""

    code = grpc.StatusCode.UNAVAILABLE


class DeadlineExceeded(NextBestError):
    """No answer within the timeout, after every retry."""

    code = grpc.StatusCode.DEADLINE_EXCEEDED


_CLASSES: dict[grpc.StatusCode, type[NextBestError]] = {
    cls.code: cls
    for cls in (
        InvalidArgument,
        NotFound,
        FailedPrecondition,
        AlreadyExists,
        Unauthenticated,
        PermissionDenied,
        Unavailable,
    )
}
_CLASSES[grpc.StatusCode.DEADLINE_EXCEEDED] = DeadlineExceeded
_BY_NUMBER: dict[int, grpc.StatusCode] = {c.value[0]: c for c in grpc.StatusCode}


def error_for(
    code: grpc.StatusCode | int,
    message: str,
    field: str | None = None,
    description: str | None = None,
) -> NextBestError:
    """The typed exception for a status code: the subclass of :class:`NextBestError` for it.

    Args:
        code: The gRPC status, or its number (as in DecideBatch's DecideError).
        message: The error's message.
        field: The request field at fault; empty or None for none.
        description: The violation without the field; None uses ``message``.
    """
    status = _BY_NUMBER.get(code, grpc.StatusCode.UNKNOWN) if isinstance(code, int) else code
    cls = _CLASSES.get(status, NextBestError)
    return cls(message, code=status, field=field or None, description=description)


def _violations(metadata: Iterable[Any] | None) -> list[tuple[str, str]]:
    """(field, description) pairs of the BadRequest detail in the trailing metadata."""
    found: list[tuple[str, str]] = []
    for key, value in metadata or ():
        if key != _DETAILS_KEY or not isinstance(value, bytes):
            continue
        status = status_pb2.Status.FromString(value)
        for detail in status.details:
            bad = error_details_pb2.BadRequest()
            if detail.Unpack(bad):
                found.extend((str(v.field), str(v.description)) for v in bad.field_violations)
    return found


def from_rpc_error(error: grpc.RpcError | grpc.aio.AioRpcError) -> NextBestError:
    """Translate a failed call (sync or asyncio) into its typed exception.

    The field at fault comes from the ``google.rpc.BadRequest`` detail of the trailing
    metadata, when the server sent one.

    Args:
        error: The grpc error a stub raised.
    """
    code: grpc.StatusCode = error.code()
    message: str = error.details() or code.name
    metadata = error.trailing_metadata()
    violations = _violations(metadata)
    field, description = violations[0] if violations else (None, None)
    return error_for(code, message, field, description)
