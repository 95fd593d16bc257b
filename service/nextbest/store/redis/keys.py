"""Key names: the one place that says what lives where in Redis.

Per event, one hash under a hash tag of its event id, so every change of one event (a
reward, an activation, its close) is one script on one key, in one Redis Cluster slot, in
one round trip, whichever replica makes it: ``nb:e:{<event id>}``.

Per policy, under the policy's hash tag so a policy's keys share one Cluster slot:
``nb:{<policy>}:due`` (sorted set: event id → join deadline, until the joined event is on
the stream), ``nb:{<policy>}:joined`` (stream of joined events, read by the learner's
consumer group), ``nb:{<policy>}:lease`` (the learner's lease: its token),
``nb:{<policy>}:fence`` (the lease's fencing counter), ``nb:{<policy>}:model`` (hash: the
published model snapshot: version, learned, vw_args, data).

Names and ids are never parsed back out of a key, and Redis keys are binary-safe, so no
caller-chosen id or name can become syntax here.
"""

from __future__ import annotations

PREFIX = "nb"
LEARNERS = "learners"  # the consumer group on every policy's joined stream
MODELS_CHANNEL = f"{PREFIX}:models"  # pub/sub: "<policy>\n<version>" when a model is published
CONFIG_CHANNEL = f"{PREFIX}:config"  # pub/sub: "<origin>\n<version>" when config changed
CONFIG = f"{PREFIX}:config:state"  # hash: the shared config changes (see config_sync)


def event(event_id: str) -> str:
    return f"{PREFIX}:e:{{{event_id}}}"


def due(policy: str) -> str:
    return f"{PREFIX}:{{{policy}}}:due"


def joined(policy: str) -> str:
    return f"{PREFIX}:{{{policy}}}:joined"


def lease(policy: str) -> str:
    return f"{PREFIX}:{{{policy}}}:lease"


def fence(policy: str) -> str:
    return f"{PREFIX}:{{{policy}}}:fence"


def model(policy: str) -> str:
    return f"{PREFIX}:{{{policy}}}:model"


def tombstone(event_id: str) -> str:
    """What remains of a closed event once its retention is over: that its id was used
    (a string: policy and fingerprint), for ``remember_ids``. A key of its own beside the
    event hash: on a single Redis the scripts write and check both at once; in a Cluster
    only when both share a slot (an event id may hold braces: one that starts with ``}``
    puts the two keys in different slots), else in a call of their own."""
    return f"{PREFIX}:t:{{{event_id}}}"
