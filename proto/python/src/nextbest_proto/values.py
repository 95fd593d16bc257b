"""Python values ↔ ``nextbest.v1.Value``: the one codec, for the server and the SDK.

Encoding refuses a value the contract cannot carry, naming the field (``context['plan']``),
so that the SDK reports it at the line that built the context. Decoding refuses a ``Value``
with no kind set, which is how the server rejects such a request field. Both raise
:class:`InvalidValue`; each side turns it into its own error (the SDK's
``InvalidContextValue``, the server's ``InvalidArgument``: INVALID_ARGUMENT with the field).
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from typing import TypeAlias

from nextbest_proto.v1 import decision_pb2 as pb

FeatureValue: TypeAlias = bool | float | str | list[str]
"""A decoded value: a flag, a number, a text, or a list of texts."""

EXPECTED = "expected str, int, float, bool or list[str]"
NO_VALUE = "has no value: set number, text, flag or texts"


class InvalidValue(ValueError):
    """A value the contract cannot carry (encoding), or a ``Value`` without one (decoding).

    ``str(error)`` is ``"<field>: <detail>"``.

    Attributes:
        field: The value at fault, e.g. ``context['plan']`` or ``actions[0].features['x']``.
        detail: What is wrong with it, without the field.
    """

    def __init__(self, detail: str, field: str) -> None:
        super().__init__(f"{field}: {detail}")
        self.field = field
        self.detail = detail


def to_value(field: str, value: object) -> pb.Value:
    """Encode one value; ``field`` names it in the error.

    A bool is a flag, an int or float a number, a str a text; a list, tuple, set or frozenset
    of str is a list of texts (a set's, sorted, so that equal sets encode alike).
    """
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
                raise InvalidValue(
                    f"lists hold texts only, got {type(item).__name__} {item!r}", f"{field}[{i}]"
                )
        return pb.Value(
            texts=pb.TextList(values=sorted(texts) if isinstance(value, set | frozenset) else texts)
        )
    raise InvalidValue(f"{EXPECTED}, got {type(value).__name__} {value!r:.80}", field)


def to_features(features: Mapping[str, object] | None, where: str) -> dict[str, pb.Value]:
    """Encode a context (``where="context"``) or an action's features; None is empty."""
    if features is None:
        return {}
    if not isinstance(features, Mapping):
        raise InvalidValue(
            f"expected a mapping of name to value, got {type(features).__name__}", where
        )
    out: dict[str, pb.Value] = {}
    for name, value in features.items():
        if not isinstance(name, str):
            raise InvalidValue(
                f"feature names are texts, got {type(name).__name__} {name!r}", where
            )
        out[name] = to_value(f"{where}[{name!r}]", value)
    return out


def from_value(value: pb.Value, where: str) -> FeatureValue:
    """Decode one value; a ``Value`` with no kind set is refused, naming ``where``."""
    kind = value.WhichOneof("kind")
    if kind == "number":
        return value.number
    if kind == "text":
        return value.text
    if kind == "flag":
        return value.flag
    if kind == "texts":
        return list(value.texts.values)
    raise InvalidValue(NO_VALUE, where)


def from_features(features: Mapping[str, pb.Value], where: str) -> dict[str, FeatureValue]:
    """`from_value` over a map (``where="context"``), inlined: the server runs this for every
    feature of every request, and the field's name is only spelled out for a value that is
    not a text, a number or a flag."""
    out: dict[str, FeatureValue] = {}
    for name, value in features.items():
        kind = value.WhichOneof("kind")
        if kind == "text":
            out[name] = value.text
        elif kind == "number":
            out[name] = value.number
        elif kind == "flag":
            out[name] = value.flag
        else:
            out[name] = from_value(value, f"{where}[{name!r}]")
    return out
