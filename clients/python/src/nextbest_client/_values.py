"""Python values ↔ ``nextbest.v1.Value``, checked before any call.

A value of the wrong type is refused here, naming the key, so a caller learns about it at
the line that built the context rather than from a server round trip.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence
from typing import Any, TypeAlias

from nextbest_client.errors import InvalidContextValue
from nextbest_client.v1 import decision_pb2 as pb

ContextValue: TypeAlias = str | float | bool | Sequence[str]
"""A feature value: a text, a number (int or float), a flag, or a list of texts."""

Context: TypeAlias = Mapping[str, Any]
"""Features of a decision (or of an inline action): name → :data:`ContextValue`.

Typed ``Any`` on purpose: a dict literal mixing texts, numbers and lists is inferred as
``dict[str, object]``, which a stricter type would refuse; every value is checked at run time
instead, before any call (:class:`InvalidContextValue`)."""

_EXPECTED = "expected str, int, float, bool or list[str]"


def to_value(field: str, value: object) -> pb.Value:
    """Encode one value; ``field`` (e.g. ``context['plan']``) names it in the error."""
    if isinstance(value, bool):  # before numbers: bool is an int
        return pb.Value(flag=value)
    if isinstance(value, str):
        return pb.Value(text=value)
    if isinstance(value, numbers.Real):
        return pb.Value(number=float(value))
    if isinstance(value, list | tuple | set | frozenset):
        texts = list(value)
        for i, item in enumerate(texts):
            if not isinstance(item, str):
                raise InvalidContextValue(
                    f"{field}[{i}]: lists hold texts only, got {type(item).__name__} {item!r}",
                    field=f"{field}[{i}]",
                )
        return pb.Value(
            texts=pb.TextList(values=sorted(texts) if isinstance(value, set | frozenset) else texts)
        )
    raise InvalidContextValue(
        f"{field}: {_EXPECTED}, got {type(value).__name__} {value!r:.80}", field=field
    )


def to_features(features: Mapping[str, object] | None, where: str) -> dict[str, pb.Value]:
    """Encode a context (``where="context"``) or an action's features."""
    if features is None:
        return {}
    if not isinstance(features, Mapping):
        raise InvalidContextValue(
            f"{where}: expected a mapping of name to value, got {type(features).__name__}",
            field=where,
        )
    out: dict[str, pb.Value] = {}
    for name, value in features.items():
        if not isinstance(name, str):
            raise InvalidContextValue(
                f"{where}: feature names are texts, got {type(name).__name__} {name!r}",
                field=where,
            )
        out[name] = to_value(f"{where}[{name!r}]", value)
    return out


def from_value(value: pb.Value) -> ContextValue:
    """Decode a value the server sent back (Explain)."""
    kind = value.WhichOneof("kind")
    if kind == "number":
        return value.number
    if kind == "text":
        return value.text
    if kind == "flag":
        return value.flag
    return list(value.texts.values)


def from_features(features: Mapping[str, pb.Value]) -> dict[str, ContextValue]:
    return {name: from_value(v) for name, v in features.items()}
