"""Python values → ``nextbest.v1.Value``, checked before any call.

The codec itself is the contract's (:mod:`nextbest_proto.values`, shared with the server);
here its refusal becomes :class:`InvalidContextValue`, naming the key, so a caller learns
about a value of the wrong type at the line that built the context rather than from a server
round trip.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeAlias

from nextbest_client.errors import InvalidContextValue
from nextbest_proto import values
from nextbest_proto.v1 import decision_pb2 as pb

ContextValue: TypeAlias = str | float | bool | Sequence[str]
"""A feature value: a text, a number (int or float), a flag, or a list of texts."""

Context: TypeAlias = Mapping[str, Any]
"""Features of a decision (or of an inline action): name → :data:`ContextValue`.

Typed ``Any`` on purpose: a dict literal mixing texts, numbers and lists is inferred as
``dict[str, object]``, which a stricter type would refuse; every value is checked at run time
instead, before any call (:class:`InvalidContextValue`)."""


def to_features(features: Mapping[str, object] | None, where: str) -> dict[str, pb.Value]:
    """Encode a context (``where="context"``) or an action's features."""
    try:
        return values.to_features(features, where)
    except values.InvalidValue as exc:
        raise InvalidContextValue(str(exc), field=exc.field) from None
