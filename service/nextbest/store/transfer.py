"""Model export and import: a policy's model as a plain VW model file.

Export gives the model the running service has (newest checkpoint plus the logged events
learned after it), so `vw -i FILE` and other VW tools can use it. Import refuses a model
made with other VW arguments than the policy's: its weights would mean something else.
"""

from __future__ import annotations

import shlex
from pathlib import Path

import vowpalwabbit

from nextbest.policy.config import Config
from nextbest.policy.errors import ConfigError
from nextbest.policy.model import Model
from nextbest.policy.vw_args import scorer_args
from nextbest.store.durable import Durability, open_store

_IGNORED = {"--quiet", "--no_stdin"}


def model_arguments(args: str) -> set[str]:
    """VW's own account of a workspace's arguments, without those that do not shape it."""
    tokens = shlex.split(args)
    out: set[str] = set()
    skip = False
    for i, token in enumerate(tokens):
        if skip:
            skip = False
            continue
        if token in ("--initial_regressor", "-i"):
            skip = True
            continue
        if token in _IGNORED:
            continue
        value = tokens[i + 1] if i + 1 < len(tokens) and not tokens[i + 1].startswith("-") else ""
        out.add(f"{token} {value}".strip())
        skip = bool(value)
    if not any(t.startswith("--bit_precision") for t in out):
        out.add("--bit_precision 18")  # VW's default, written out once a model is saved
    return out


def _arguments_of(workspace_args: str) -> set[str]:
    ws = vowpalwabbit.Workspace(workspace_args)
    try:
        return model_arguments(ws.get_arguments())
    finally:
        ws.finish()


def export_model(data_dir: Path, config: Config, policy: str, dest: Path) -> int:
    """Write the policy's current model to dest; returns the events it has learned."""
    if policy not in config.policies:
        raise ConfigError(f"unknown policy {policy!r}")
    store, models, _ = open_store(data_dir, config, Durability(), retain_closed=0)
    try:
        models[policy].save(dest)
        return models[policy].learned
    finally:
        store.shutdown()


def import_model(data_dir: Path, config: Config, policy: str, source: Path) -> None:
    """Make `source` the policy's model at the next start (a new newest checkpoint)."""
    if policy not in config.policies:
        raise ConfigError(f"unknown policy {policy!r}")
    vw_args = config.policies[policy].vw_args
    expected = _arguments_of(scorer_args(vw_args))
    try:
        found = _arguments_of(f"--quiet -i {shlex.quote(str(source))}")
    except RuntimeError as exc:
        raise ConfigError(f"{source}: not a VW model: {exc}") from None
    if found != expected:
        differ = sorted(found ^ expected)
        raise ConfigError(
            f"{source} was made with other VW arguments than policy {policy!r} "
            f"({vw_args!r}); they differ in {differ}"
        )
    store, models, _ = open_store(data_dir, config, Durability(), retain_closed=0)
    try:
        imported = Model(vw_args, initial=source, learned=models[policy].learned)
        store.checkpoints(policy).save(policy, imported, store.log(policy).seq)
    finally:
        store.shutdown()
