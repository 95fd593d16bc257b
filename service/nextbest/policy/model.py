"""The VW model of one policy: scores eligible actions, learns joined events.

VW workspaces are not thread-safe; the engine calls a model from one thread at a time.

Scoring is on the hot path, so it calls pylibvw (VW's C++ binding) directly: pyvw's
``predict`` wraps every line in a Python ``Example`` object and costs 4× more (16 µs vs 4 µs
for five lines). A test checks that both paths give the same scores.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pylibvw
import vowpalwabbit

from nextbest.policy.errors import ConfigError
from nextbest.policy.features import labelled
from nextbest.policy.vw_args import scorer_args


class Model:
    """A ``--cb_adf`` workspace and the count of events it has learned (its version)."""

    def __init__(self, vw_args: str, initial: Path | None = None, learned: int = 0) -> None:
        self.vw_args = vw_args
        args = scorer_args(vw_args)
        if initial is not None:
            args += f" -i {initial}"
        try:
            self._ws = vowpalwabbit.Workspace(args)
        except (RuntimeError, ValueError) as exc:
            raise ConfigError(f"vw_args {vw_args!r}: VW refused them: {exc}") from None
        self.learned = learned

    @classmethod
    def from_bytes(cls, vw_args: str, data: bytes, learned: int) -> Model:
        """A model from the bytes `snapshot` (or `save`) gave, with its learned count: a
        published model, loaded in another process. VW loads only from a path, so the bytes
        go through a private temporary file. ConfigError if VW cannot load them."""
        with tempfile.TemporaryDirectory(prefix="nextbest-model-") as scratch:
            path = Path(scratch) / "model.vw"
            path.write_bytes(data)
            return cls(vw_args, initial=path, learned=learned)

    @property
    def version(self) -> str:
        return str(self.learned)

    def costs(self, lines: Sequence[str]) -> list[float]:
        """Predicted cost (−reward) of each action line, in the order given."""
        ws = self._ws
        examples = ws._parse("\n".join(lines))
        try:
            pylibvw.vw.predict_multi(ws, examples)
            scores: list[float] = examples[0].get_action_scores()
        finally:
            pylibvw.vw._finish_example_multi_ex(ws, examples)
        return scores

    def learn(self, lines: Sequence[str], chosen: int, cost: float, probability: float) -> None:
        """One update from a joined event: the chosen action, its cost and logged probability."""
        self.learn_example(self.example(lines, chosen, cost, probability))

    def example(self, lines: Sequence[str], chosen: int, cost: float, probability: float) -> Any:
        """The labelled example, parsed: what can fail is done before anything is learned
        (or logged as learned). Hand it to `learn_example` or `discard`."""
        return self.parse("\n".join(labelled(lines, chosen, cost, probability)))

    def parse(self, text: str) -> Any:
        """A labelled multi-line example's text, parsed (see `example`)."""
        return self._ws._parse(text)

    def learn_example(self, examples: Any) -> None:
        ws = self._ws
        try:
            pylibvw.vw.learn_multi(ws, examples)
        finally:
            pylibvw.vw._finish_example_multi_ex(ws, examples)
        self.learned += 1

    def discard(self, examples: Any) -> None:
        """Release a parsed example unlearned. VW's finish step reads the prediction, so
        one is made first (finishing an example never predicted crashes the process)."""
        ws = self._ws
        try:
            pylibvw.vw.predict_multi(ws, examples)
        finally:
            pylibvw.vw._finish_example_multi_ex(ws, examples)

    def save(self, path: Path) -> None:
        """Write the model with its learning state, so a loaded copy learns on identically."""
        self._ws.save(str(path))

    def snapshot(self, scratch: Path) -> bytes:
        """The bytes `save` writes, taken without writing them to disk, so that a thread can
        (the workspace itself must stay on this one). VW saves only to a path: it writes
        ``<path>.writing`` and renames it, so that name is made a link to a file in memory
        (Linux; elsewhere VW writes it in `scratch`). OSError if VW cannot save."""
        path = scratch / "snapshot.vw.tmp"  # a crash's leftovers are pruned as ``*.tmp*``
        writing = Path(f"{path}.writing")
        memory = os.memfd_create("nextbest-model") if hasattr(os, "memfd_create") else None
        try:
            if memory is not None:
                writing.unlink(missing_ok=True)
                with contextlib.suppress(OSError):  # no links on this file system: VW writes it
                    os.symlink(f"/proc/self/fd/{memory}", writing)
            try:
                self.save(path)
            except RuntimeError as exc:
                raise OSError(f"VW could not save the model: {exc}") from exc
            return path.read_bytes()  # through the renamed link: from memory
        finally:
            if memory is not None:
                os.close(memory)
            path.unlink(missing_ok=True)
            writing.unlink(missing_ok=True)

    def close(self) -> None:
        self._ws.finish()
