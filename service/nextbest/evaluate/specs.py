"""The policies `--policy` names, parsed (no numpy here: the CLI parses flags with it).

``logged``, ``uniform``, ``constant:ID``, ``constant:#K``, ``baseline``, ``vw:ARGS``,
``model:FILE``; what each means is in ``targets``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

Kind = Literal["logged", "uniform", "constant", "position", "baseline", "vw", "model"]
SPECS_HELP = "logged, uniform, constant:ID, constant:#K, baseline, vw:ARGS, model:FILE"


@dataclass(frozen=True, slots=True)
class Spec:
    """One `--policy` value, parsed: its kind and its argument (id, position, args, file)."""

    text: str
    kind: Kind
    argument: str = ""

    @property
    def position(self) -> int:
        return int(self.argument)

    @property
    def learner(self) -> bool:
        """Whether VW must read the events' features for it."""
        return self.kind in ("vw", "model")


def parse(text: str) -> Spec:
    """`--policy` text → Spec; ValueError says what forms exist."""
    text = text.strip()
    if text in ("logged", "uniform", "baseline"):
        return Spec(text, text)  # type: ignore[arg-type]  # one of the three literals
    head, colon, rest = text.partition(":")
    if colon and head == "constant" and rest.startswith("#"):
        if not rest[1:].isdigit() or int(rest[1:]) < 1:
            raise ValueError(f"{text!r}: constant:#K takes a 1-based position, e.g. constant:#2")
        return Spec(text, "position", str(int(rest[1:])))
    if colon and head == "constant" and rest:
        return Spec(text, "constant", rest)
    if colon and head == "vw" and rest.strip():
        return Spec(text, "vw", rest.strip())
    if colon and head == "model" and rest:
        if not Path(rest).is_file():
            raise ValueError(f"{text!r}: no such model file {rest!r}")
        return Spec(text, "model", rest)
    raise ValueError(f"{text!r} is not a policy; use one of: {SPECS_HELP}")
