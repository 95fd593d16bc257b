"""Features → VW text examples.

Where each part of a decision lands, so that the default interactions (``-q ia -q ca
--cubic ica``) cross intent and context with every action's features:

- namespace ``i``: the intent, one feature;
- namespace ``c``: the context: numbers as ``name:value``, texts one-hot as ``name=value``,
  flags as ``name=true|false``, lists of texts multi-hot;
- namespace ``a``: the action: always ``id=<action id>`` (two actions with equal features
  are still told apart), then its features encoded as the context is.

Names and values may hold any character. VW's text format gives meaning to whitespace,
``|`` and ``:``, so everything outside a small safe set is percent-encoded (``%7C``). Two
more tokens are syntax in disguise, so their first character is percent-encoded too: a
token of digits only (VW hashes ``7``, ``007`` and ``2^64+7`` as the same number), and one
starting with ``_`` (a DSJSON directive such as ``_multi`` or ``_label_cost``). The
encoding is injective, so distinct inputs stay distinct features, and a readable name stays
readable in the DSJSON log.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

FeatureValue = bool | float | str | list[str]

INTENT_NS = "i"
CONTEXT_NS = "c"
ACTION_NS = "a"

# Feature values beyond these bounds are refused (requests) or read as 0 (tiny): VW keeps
# float32 weights, and its text parser mangles subnormal numbers.
MAX_MAGNITUDE = 1e18
TINY = 1e-20

_SAFE = re.compile(r"(?![0-9]*$)(?!_)[A-Za-z0-9_.\-/]*")
_SAFE_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-/")
# Escaped names and ``name=value`` tokens, memoized: the same names and values come back in
# every request. Bounded (entries, and the length of a token kept), cleared when full.
_MEMO_ENTRIES = 16_384
_MEMO_CHARS = 64
_escaped: dict[str, str] = {}
_texts: dict[tuple[str, str], str] = {}


def escape(token: str) -> str:
    """Make a name or value safe for VW's text format and DSJSON; injective, identity on
    safe tokens (see the module docstring for what is safe)."""
    found = _escaped.get(token)
    if found is not None:
        return found
    out = _escape(token)
    if len(token) <= _MEMO_CHARS:
        if len(_escaped) >= _MEMO_ENTRIES:
            _escaped.clear()
        _escaped[token] = out
    return out


def _text(name: str, value: str) -> str:
    """The indicator ``name=value`` of a text feature, both escaped."""
    key = (name, value)
    found = _texts.get(key)
    if found is not None:
        return found
    out = f"{escape(name)}={escape(value)}"
    if len(name) + len(value) <= _MEMO_CHARS:
        if len(_texts) >= _MEMO_ENTRIES:
            _texts.clear()
        _texts[key] = out
    return out


def _escape(token: str) -> str:
    if _SAFE.fullmatch(token):
        return token
    head = ""
    if token[:1] == "_" or (token.isascii() and token.isdigit()):
        head, token = f"%{ord(token[0]):02X}", token[1:]
    return head + "".join(
        c if c in _SAFE_CHARS else "".join(f"%{b:02X}" for b in c.encode("utf-8")) for c in token
    )


def feature_pairs(features: Mapping[str, FeatureValue]) -> list[tuple[str, float | None]]:
    """(VW feature name, value) per feature: numbers keep their value, the rest one-hot
    (value None: an indicator). Sorted by name: the same features make the same example,
    whatever order a map came in."""
    pairs: list[tuple[str, float | None]] = []
    for name, value in sorted(features.items()):
        if isinstance(value, str):
            pairs.append((_text(name, value), None))
        elif isinstance(value, bool):
            pairs.append((_text(name, "true" if value else "false"), None))
        elif isinstance(value, float | int):
            pairs.append((escape(name), float(value)))
        else:
            pairs.extend((_text(name, item), None) for item in value)
    return pairs


def encode_features(features: Mapping[str, FeatureValue]) -> list[str]:
    """VW text tokens: ``name:value`` for numbers, ``name`` for indicators."""
    return [name if v is None else f"{name}:{_number(v)}" for name, v in feature_pairs(features)]


def features_json(features: Mapping[str, FeatureValue]) -> dict[str, float]:
    """The same features as a VW JSON namespace object (indicators have value 1), so a
    DSJSON reader hashes exactly what the text example held."""
    return {name: 1.0 if v is None else float(_number(v)) for name, v in feature_pairs(features)}


def action_json(action_id: str, features: Mapping[str, FeatureValue]) -> dict[str, float]:
    return {f"id={escape(action_id)}": 1.0, **features_json(features)}


def _number(value: float) -> str:
    """VW's parser reads float32 with up to ~9 significant digits and no subnormals."""
    if abs(value) < TINY:
        return "0"
    return format(value, ".9g")


def shared_line(intent: str, context: Mapping[str, FeatureValue]) -> str:
    """The ``shared`` line of a multi-line example: intent and context."""
    tokens = encode_features(context)
    line = f"shared |{INTENT_NS} {escape(intent)}"
    if tokens:
        line += f" |{CONTEXT_NS} " + " ".join(tokens)
    return line


def action_line(action_id: str, features: Mapping[str, FeatureValue]) -> str:
    """The line of one action: its id and its features."""
    tokens = [f"id={escape(action_id)}", *encode_features(features)]
    return f"|{ACTION_NS} " + " ".join(tokens)


def labelled(lines: Sequence[str], chosen: int, cost: float, probability: float) -> list[str]:
    """A learnable copy of an example: the chosen action's line carries ``0:cost:probability``."""
    out = list(lines)
    out[chosen + 1] = f"0:{cost!r}:{probability!r} {lines[chosen + 1]}"
    return out


def count_features(features: Mapping[str, FeatureValue]) -> int:
    """How many VW features a feature map becomes (a list is one per text)."""
    return sum(len(v) if isinstance(v, list) else 1 for v in features.values())


def interaction_features(
    crossings: Sequence[str], intent: int, context: int, actions: Sequence[int]
) -> int:
    """Features VW makes from `crossings` (e.g. ``["ia", "ca", "ica"]``) over an example
    with these feature counts per namespace (one shared line, one line per action)."""
    total = 0
    for action in actions:
        counts = {INTENT_NS: intent, CONTEXT_NS: context, ACTION_NS: action}
        every = intent + context + action
        for crossing in crossings:
            product = 1
            for ns in crossing:
                product *= every if ns == ":" else counts.get(ns, 0)
            total += product
    return total
