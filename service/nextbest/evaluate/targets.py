"""The policies `--policy` names, and what each would have done on every logged event.

A target is a distribution over each event's logged actions (its ``_multi``), flattened
like the log's slots, plus the events where it is defined at all: ``constant:ID`` is not
defined where no action has that id, ``baseline`` where the caller sent none. Estimates of
such a target are over the events where it applies, and the report says how many.

- ``logged``: the log's own policy: its value is the plain average reward (no weights);
- ``uniform``: each logged action with probability 1/K;
- ``constant:ID``: always the action with id ID (``id=ID`` in its features, or the
  ``_nextbest`` record's id); ``constant:#K``: always the K-th action (1-based) of `_multi`;
- ``baseline``: the caller's ``baseline_action_id``, where the log has one;
- ``vw:ARGS`` and ``model:FILE``: VW learners, see ``learners``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from nextbest.evaluate.reader import FloatArray, IntArray, Log
from nextbest.evaluate.specs import Spec

BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class Distribution:
    """π over each event's actions (flat slots) and the events where the target applies."""

    pi: FloatArray
    applies: BoolArray


def slot_events(log: Log) -> IntArray:
    """The event each flat slot belongs to."""
    return np.repeat(np.arange(log.n, dtype=np.int64), log.sizes)


def distribution(spec: Spec, log: Log) -> Distribution:
    """The target's choice on each event; for every kind except the VW learners."""
    sizes = log.sizes
    if spec.kind == "uniform":
        return Distribution(np.repeat(1.0 / sizes, sizes), np.ones(log.n, dtype=np.bool_))
    if spec.kind == "logged":  # on-policy: π = μ at the logged action, so every weight is 1
        pi = np.zeros(int(log.offsets[-1]), dtype=np.float64)
        pi[log.chosen_slots] = log.probability
        return Distribution(pi, np.ones(log.n, dtype=np.bool_))
    if spec.kind == "position":
        local = np.arange(int(log.offsets[-1])) - np.repeat(log.offsets[:-1], sizes)
        return _choose(log, local == spec.position - 1)
    if log.action_codes is None or log.baseline_codes is None:
        raise ValueError(f"{spec.text}: the log was read without action ids")
    if spec.kind == "constant":
        code = log.code(spec.argument)
        return _choose(log, (log.action_codes == code) & (code >= 0))
    if spec.kind == "baseline":
        wanted = log.baseline_codes[slot_events(log)]
        return _choose(log, (log.action_codes == wanted) & (wanted >= 0))
    raise ValueError(f"{spec.text}: a VW learner's choices come from `learners`")


def _choose(log: Log, match: BoolArray) -> Distribution:
    """Deterministic choice of the matching slot (split evenly if an id appears twice)."""
    counts = np.add.reduceat(match.astype(np.int64), log.offsets[:-1])
    per_slot = np.repeat(np.maximum(counts, 1), log.sizes)
    return Distribution(match / per_slot, counts > 0)


def greedy(scores: FloatArray, log: Log, lowest: bool) -> FloatArray:
    """One-hot π on each event's best slot (the lowest cost, or the highest probability);
    ties go to the first, as nextbest's own greedy choice does."""
    n = log.n
    best = np.empty(n, dtype=np.int64)
    keyed = scores if lowest else -scores
    # Per-event argmin over ragged slices: sort slots by (event, key) once, take each first.
    order = np.lexsort((np.arange(len(keyed)), keyed, slot_events(log)))
    firsts = np.searchsorted(slot_events(log)[order], np.arange(n))
    best[:] = order[firsts]
    pi = np.zeros(len(scores), dtype=np.float64)
    pi[best] = 1.0
    return pi
