"""Joined events as VW's DSJSON decision-log lines.

``vw --dsjson --cb_explore_adf`` reads them as they are: the shared features and each
eligible action land in the same namespaces, with the same feature names and values, as
the text examples the live model learned from, so a model trained offline on the log
matches the live one. Everything nextbest needs to rebuild the event (raw reward signals,
masks, join status, the VW lines) rides along under ``_nextbest``, a key VW ignores.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import orjson

from nextbest.policy.events import Event, JoinStatus
from nextbest.policy.features import (
    ACTION_NS,
    CONTEXT_NS,
    INTENT_NS,
    FeatureValue,
    action_json,
    escape,
    features_json,
)
from nextbest.store import codec


def line(event: Event, encoded: bytes | None = None) -> bytes:
    """One DSJSON line for a closed event (status and joined reward set); `encoded` is the
    event's :func:`codec.encode` when the caller already has it."""
    n = len(event.eligible)
    order = sorted(range(n), key=lambda i: (i != event.chosen, -event.pmf[i]))
    shared: dict[str, Any] = {INTENT_NS: {escape(event.intent): 1.0}}
    context = features_json(event.context)
    if context:
        shared[CONTEXT_NS] = context
    shared["_multi"] = [_action(a.id, a.features) for a in event.eligible]
    joined = event.joined_reward if event.joined_reward is not None else 0.0
    record: dict[str, Any] = {
        "_label_cost": -joined,
        "_label_probability": event.probability,
        "_label_Action": event.chosen + 1,
        "_labelIndex": event.chosen,
        "Timestamp": datetime.fromtimestamp(event.decided_at, UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z"),
        "Version": "1",
        "EventId": event.event_id,
        "a": [i + 1 for i in order],
        "c": shared,
        "p": [event.pmf[i] for i in order],
        "VWState": {"m": event.model_version},
    }
    if event.defer_activation and not event.activated:
        record["_skipLearn"] = True
    # The event's own encoding is spliced in as is: no second round of dumps and loads.
    encoded = codec.encode(event) if encoded is None else encoded
    return orjson.dumps(record)[:-1] + b',"_nextbest":' + encoded + b"}"


_ACTIONS: dict[bytes, dict[str, Any]] = {}  # an action's encoding → its `_multi` entry
MAX_ACTIONS = 4096  # entries kept (catalog actions repeat; inline ones may not)


def _action(action_id: str, features: Mapping[str, FeatureValue]) -> dict[str, Any]:
    """An action's `_multi` entry, built once per distinct action: the catalog's actions
    come back in every event, and building the namespace costs more than the rest of the
    line. orjson's sorted encoding is the key (a few µs, against ≈ 25 µs to build)."""
    key = orjson.dumps([action_id, features], option=orjson.OPT_SORT_KEYS)
    found = _ACTIONS.get(key)
    if found is None:
        if len(_ACTIONS) >= MAX_ACTIONS:
            _ACTIONS.clear()
        found = _ACTIONS[key] = {ACTION_NS: action_json(action_id, features)}
    return found  # shared: orjson only reads it


def event_of(record: dict[str, Any]) -> Event | None:
    """The event a DSJSON record was written from (None for lines nextbest did not write);
    :class:`codec.BadRecord` when its ``_nextbest`` part has the wrong shape."""
    inner = record.get("_nextbest")
    return codec.from_dict(inner) if isinstance(inner, dict) else None


def learned(event: Event) -> bool:
    return event.join_status is JoinStatus.LEARNED
