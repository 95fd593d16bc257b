"""Domain errors → gRPC statuses: by class hierarchy, with bounded messages."""

from __future__ import annotations

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2

from nextbest.api.errors import MAX_MESSAGE_BYTES, bounded, code_of, to_status
from nextbest.policy.errors import (
    DecisionError,
    InvalidArgument,
    NotFound,
    ResourceExhausted,
    Unavailable,
)


class UnknownPolicy(NotFound):
    """A subclass the mapping does not name: it maps as its parent does."""


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (ResourceExhausted("too many pending bytes"), grpc.StatusCode.RESOURCE_EXHAUSTED),
        (UnknownPolicy("nope", "policy"), grpc.StatusCode.NOT_FOUND),
        (Unavailable("disk full"), grpc.StatusCode.UNAVAILABLE),
        (InvalidArgument("bad", "intent"), grpc.StatusCode.INVALID_ARGUMENT),
        (DecisionError("unspecific"), grpc.StatusCode.INVALID_ARGUMENT),
    ],
)
def test_codes_follow_the_class_hierarchy(exc: DecisionError, code: grpc.StatusCode) -> None:
    assert code_of(exc) is code


@pytest.mark.parametrize("char", ["x", "é", "€", "🙂"])
def test_messages_are_bounded_and_stay_utf8(char: str) -> None:
    long_id = char * 10_000
    status = to_status(NotFound(f"unknown event {long_id!r}", f"event_id[{long_id}]"))
    message = status.details.encode()
    assert len(message) <= MAX_MESSAGE_BYTES
    assert status.details.endswith("…")
    details = dict(status.trailing_metadata)["grpc-status-details-bin"]
    assert isinstance(details, bytes)
    assert len(details) <= 2 * MAX_MESSAGE_BYTES
    parsed = status_pb2.Status.FromString(details)
    bad = error_details_pb2.BadRequest()
    assert parsed.details[0].Unpack(bad)
    violation = bad.field_violations[0]
    assert len(violation.field.encode()) <= MAX_MESSAGE_BYTES // 4
    assert len(violation.description.encode()) <= MAX_MESSAGE_BYTES // 2


def test_short_messages_are_kept_whole() -> None:
    assert bounded("context['amount']: must be a finite number", 100) == (
        "context['amount']: must be a finite number"
    )
    assert bounded("ab€", 4) == "a…"  # the ellipsis itself counts
    assert len(bounded("a" * 50, 10).encode()) <= 10
