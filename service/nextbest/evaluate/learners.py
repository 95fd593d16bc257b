"""VW on the log: candidate learners, saved models, the DR reward model, feature weights.

Every learner reads the events through VW's own DSJSON parser (``--dsjson``), so features
are hashed exactly as ``vw --dsjson`` and nextbest's live model hash them, whatever system
wrote the log. Lines come from ``reader.replay``, calls go straight to pylibvw (parse,
predict, learn, finish), as ``nextbest.policy.model`` does on the hot path.

- ``vw:ARGS`` is trained progressively: each event is scored first, then learned, so its
  choice on an event never saw that event's reward (progressive validation). With
  ``--cb_explore_adf`` the target is VW's pmf (its exploration included); with ``--cb_adf``
  it is greedy on the predicted costs.
- ``model:FILE`` (``nextbest model export``) only scores: greedy, never learning.
- The reward model of the doubly robust estimator is VW too: ``--cb_adf -q ::`` on lines
  whose logged probability is set to 1, i.e. a plain (unweighted) regression of the reward
  on the logged action's features crossed with the context, every pair of namespaces, so it
  fits any producer's namespace names. (``--cb_type dm`` would be the obvious choice, but
  VW's ADF DM also trains the actions not taken towards cost 0, which biases q̂ to 0; MTR
  with probability 1 is the regression wanted.) It is cross-fitted over two folds (even and
  odd events): each fold's model learns its own events and predicts the other's, so no
  event's q̂ was fitted on that event and DR stays unbiased with a flexible model. VW rather
  than a ridge regression in numpy because it reads any DSJSON feature layout (nested
  namespaces, strings, arrays) exactly as the learners do, with no second feature parser to
  keep in step, and it is as fast.
- ``--features``: VW's ``--invert_hash`` (its audit of the weights, with feature names)
  written at the end of the run; the largest weights by magnitude.
"""

from __future__ import annotations

import re
import shlex
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pylibvw
import vowpalwabbit

from nextbest.evaluate.reader import FloatArray, Log, LogError, Progress, replay, vw_line
from nextbest.evaluate.specs import Spec
from nextbest.evaluate.targets import greedy
from nextbest.policy.vw_args import FILE_OPTIONS

REWARD_MODEL_ARGS = "--cb_adf -q ::"
PROGRESS_EVERY = 1024
# Files, daemons and input formats belong to the evaluation.
_FORBIDDEN = FILE_OPTIONS | {"-P", "--progress"}
_ADF = ("--cb_adf", "--cb_explore_adf")
_INVERT_HASH_LINE = re.compile(r"^(.*):(\d+):(\S+)(?:\s.*)?$")


def check_args(args: str, what: str) -> str:
    """Arguments of a VW learner on the log; ValueError names what is not allowed."""
    try:
        tokens = shlex.split(args)
    except ValueError as exc:
        raise ValueError(f"{what}: cannot split the arguments: {exc}") from None
    if not any(t in _ADF for t in tokens):
        raise ValueError(f"{what}: the arguments need --cb_adf or --cb_explore_adf")
    for token in tokens:
        flag = token.split("=", 1)[0]
        if flag in _FORBIDDEN:
            raise ValueError(f"{what}: {flag} is not allowed here (evaluate reads the log)")
    return shlex.join(tokens)


@dataclass(slots=True)
class Learned:
    """What VW made of the log under one reward: each learner's π, the reward model's q̂."""

    pi: dict[str, FloatArray] = field(default_factory=dict)  # spec text → flat π
    features: dict[str, list[tuple[str, float]]] = field(default_factory=dict)
    reward_hat: FloatArray | None = None  # flat: predicted reward of every action


class _Workspace:
    """A VW workspace reading DSJSON lines; scores come back in `_multi` order."""

    def __init__(self, args: str, what: str, audit: Path | None = None) -> None:
        full = f"{args} --dsjson --quiet"
        if audit is not None:
            full += f" --invert_hash {shlex.quote(str(audit))}"
        try:
            self.ws = vowpalwabbit.Workspace(full)
        except (RuntimeError, ValueError) as exc:
            raise ValueError(f"{what}: VW refused the arguments: {exc}") from None
        kind = self.ws.get_prediction_type()
        if kind == vowpalwabbit.PredictionType.ACTION_PROBS:
            self.probabilities = True
        elif kind == vowpalwabbit.PredictionType.ACTION_SCORES:
            self.probabilities = False
        else:
            self.ws.finish()
            raise ValueError(f"{what}: not a contextual-bandit learner over actions (ADF)")
        self.audit = audit
        self.what = what

    def step(self, line: str, size: int, predict: bool, learn: bool) -> list[float]:
        ws = self.ws
        examples = ws._parse(line)
        try:
            scores: list[float] = []
            if predict:
                pylibvw.vw.predict_multi(ws, examples)
                scores = examples[0].get_action_scores()
                if len(scores) != size:
                    raise ValueError(f"VW read {len(scores)} actions, the log has {size}")
            if learn:
                pylibvw.vw.learn_multi(ws, examples)
            elif not predict:
                pylibvw.vw.predict_multi(ws, examples)  # finishing needs a prediction
        finally:
            pylibvw.vw._finish_example_multi_ex(ws, examples)
        return scores

    def finish(self, top: int) -> list[tuple[str, float]]:
        self.ws.finish()
        if self.audit is None or top <= 0:
            return []
        return top_weights(self.audit, top)


def top_weights(path: Path, top: int) -> list[tuple[str, float]]:
    """The `top` largest weights by magnitude in an ``--invert_hash`` file."""
    weights: list[tuple[str, float]] = []
    body = False
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if not body:
            body = line.startswith(":")  # the header ends with a line ":<n>"
            continue
        match = _INVERT_HASH_LINE.match(line)
        if match and match.group(1):
            weights.append((match.group(1), float(match.group(3))))
    weights.sort(key=lambda item: -abs(item[1]))
    return weights[:top]


def learn(
    log: Log,
    specs: Sequence[Spec],
    costs: FloatArray,
    *,
    reward_model: str = REWARD_MODEL_ARGS,
    features: int = 0,
    progress: Progress | None = None,
    label: str = "",
) -> Learned:
    """Run the learners (`vw:`, `model:` in `specs`) and the cross-fitted reward model over
    the log, each event's ``_label_cost`` taken from `costs`."""
    learned = Learned()
    with tempfile.TemporaryDirectory(prefix="nextbest-evaluate-") as tmp:
        learners: list[tuple[Spec, _Workspace, list[float]]] = []
        folds: list[_Workspace] = []
        try:
            for k, spec in enumerate(specs):
                audit = Path(tmp) / f"audit{k}.txt" if features > 0 else None
                args = (
                    check_args(spec.argument, spec.text)
                    if spec.kind == "vw"
                    else f"-i {shlex.quote(spec.argument)}"
                )
                learners.append((spec, _Workspace(args, spec.text, audit), []))
            folds = [_Workspace(reward_model, "--reward-model") for _ in range(2)]
            _first_pass(log, costs, learners, folds, progress, label)
            learned.reward_hat = _second_pass(log, folds, progress, label)
            for spec, workspace, flat in learners:
                scores = np.asarray(flat, dtype=np.float64)
                if workspace.probabilities and spec.kind == "vw":
                    learned.pi[spec.text] = scores
                else:
                    learned.pi[spec.text] = greedy(scores, log, not workspace.probabilities)
        finally:
            for spec, workspace, _ in learners:
                found = workspace.finish(features)
                if found:
                    learned.features[spec.text] = found
            for fold in folds:
                fold.finish(0)
    return learned


def _first_pass(
    log: Log,
    costs: FloatArray,
    learners: list[tuple[Spec, _Workspace, list[float]]],
    folds: list[_Workspace],
    progress: Progress | None,
    label: str,
) -> None:
    """Each learner scores then learns each event (a saved model only scores); the reward
    model of each fold learns that fold's events."""
    sizes, chosen, cost = log.sizes.tolist(), log.chosen.tolist(), costs.tolist()
    for i, record in enumerate(replay(log)):
        size = sizes[i]
        try:
            if learners:
                line = vw_line(record, chosen[i], cost[i])
                for spec, workspace, flat in learners:
                    flat.extend(workspace.step(line, size, True, spec.kind == "vw"))
            folds[i % 2].step(vw_line(record, chosen[i], cost[i], 1.0), size, False, True)
        except (RuntimeError, ValueError) as exc:
            path, number = log.where(i)
            raise LogError(f"VW could not read the event: {exc}", path, number) from None
        if progress is not None and i % PROGRESS_EVERY == 0:
            progress(f"learn{label}", i, log.n)
    if progress is not None:
        progress(f"learn{label}", log.n, log.n)


def _second_pass(
    log: Log,
    folds: list[_Workspace],
    progress: Progress | None,
    label: str,
) -> FloatArray:
    """q̂ for every action of every event, from the fold model that did not learn it."""
    out: list[float] = []
    sizes, chosen = log.sizes.tolist(), log.chosen.tolist()
    for i, record in enumerate(replay(log)):
        line = vw_line(record, chosen[i], 0.0, 1.0)  # the label is not read when predicting
        try:
            out.extend(folds[1 - i % 2].step(line, sizes[i], True, False))
        except (RuntimeError, ValueError) as exc:
            path, number = log.where(i)
            raise LogError(f"VW could not read the event: {exc}", path, number) from None
        if progress is not None and i % PROGRESS_EVERY == 0:
            progress(f"reward model{label}", i, log.n)
    if progress is not None:
        progress(f"reward model{label}", log.n, log.n)
    return -np.asarray(out, dtype=np.float64)  # VW predicts costs: reward = −cost
