"""The VW model of one policy: scores eligible actions, learns joined events.

VW workspaces are not thread-safe; the engine calls a model from one thread at a time.
"""

from __future__ import annotations

from collections.abc import Sequence

import vowpalwabbit

from nextbest.policy.errors import ConfigError
from nextbest.policy.features import labelled
from nextbest.policy.vw_args import scorer_args


class Model:
    """A ``--cb_adf`` workspace and the count of events it has learned (its version)."""

    def __init__(self, vw_args: str) -> None:
        self.vw_args = vw_args
        try:
            self._ws = vowpalwabbit.Workspace(scorer_args(vw_args))
        except (RuntimeError, ValueError) as exc:
            raise ConfigError(f"vw_args {vw_args!r}: VW refused them: {exc}") from None
        self.learned = 0

    @property
    def version(self) -> str:
        return str(self.learned)

    def costs(self, lines: Sequence[str]) -> list[float]:
        """Predicted cost (−reward) of each action line, in the order given."""
        return [float(c) for c in self._ws.predict(list(lines))]

    def learn(self, lines: Sequence[str], chosen: int, cost: float, probability: float) -> None:
        """One update from a joined event: the chosen action, its cost and logged probability."""
        self._ws.learn(labelled(lines, chosen, cost, probability))
        self.learned += 1

    def close(self) -> None:
        self._ws.finish()
