"""Decision logs with a known truth, generated in process with numpy.

A small world: C contexts (one text feature ``x``), K actions (``id=a<k>``), a hidden mean
reward per (context, action), rewards drawn 0/1 from it. The logging policy is not
uniform: in each context it favours one action (0.55) and spreads the rest evenly (0.15
each with 4 actions), so importance weights of a constant target reach 1/0.15. Lines are
written in DSJSON exactly as documented (``_label_cost`` = −reward, ``a`` chosen first,
``p`` in the order of ``a``), with a ``_nextbest`` record or without one (a foreign
producer).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson

from nextbest.policy.features import escape

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class World:
    context_p: FloatArray  # C
    mu: FloatArray  # C × K: mean reward
    logging: FloatArray  # C × K: the logging pmf

    @property
    def actions(self) -> int:
        return int(self.mu.shape[1])

    def value(self, target: FloatArray) -> float:
        """The true value of a target pmf (C × K): E_x Σ_a π(a|x) μ(x, a)."""
        return float(self.context_p @ (target * self.mu).sum(axis=1))

    def uniform(self) -> FloatArray:
        return np.full_like(self.mu, 1.0 / self.actions)

    def constant(self, k: int) -> FloatArray:
        out = np.zeros_like(self.mu)
        out[:, k] = 1.0
        return out


def world(seed: int, contexts: int = 3, actions: int = 4, favoured: float = 0.55) -> World:
    rng = np.random.default_rng(1000 + seed)
    mu = rng.uniform(0.1, 0.9, size=(contexts, actions))
    logging = np.full((contexts, actions), (1.0 - favoured) / (actions - 1))
    for x in range(contexts):
        logging[x, rng.integers(actions)] = favoured
    return World(np.full(contexts, 1.0 / contexts), mu, logging)


def record(
    x: int,
    pmf: FloatArray,
    chosen: int,
    reward: float,
    *,
    nextbest: Mapping[str, Any] | None = None,
    timestamp: str = "2026-01-01T00:00:00.000Z",
    ids: list[str] | None = None,
) -> dict[str, Any]:
    """One DSJSON event as nextbest writes it (documented fields only)."""
    k = len(pmf)
    ids = ids or [f"a{j}" for j in range(k)]
    order = [chosen, *(j for j in range(k) if j != chosen)]
    out: dict[str, Any] = {
        "_label_cost": -reward,
        "_label_probability": float(pmf[chosen]),
        "_label_Action": chosen + 1,
        "_labelIndex": chosen,
        "Timestamp": timestamp,
        "Version": "1",
        "a": [j + 1 for j in order],
        "c": {
            "i": {"demo": 1.0},
            "c": {f"x=x{x}": 1.0},
            "_multi": [{"a": {f"id={escape(name)}": 1.0}} for name in ids],
        },
        "p": [float(pmf[j]) for j in order],
    }
    if nextbest is not None:
        out["_nextbest"] = dict(nextbest)
    return out


def generate(
    w: World,
    n: int,
    seed: int,
    *,
    logging: FloatArray | None = None,
    extra: Callable[[int, int, int, float], Mapping[str, Any]] | None = None,
) -> list[bytes]:
    """n DSJSON lines drawn from the world under `logging` (default: the world's); `extra`
    (event, context, chosen, reward) → a ``_nextbest`` record to attach."""
    rng = np.random.default_rng(seed)
    pmfs = w.logging if logging is None else logging
    xs = rng.choice(len(w.context_p), size=n, p=w.context_p)
    draws = rng.random(n)
    chosen_all = np.minimum(
        (draws[:, None] > np.cumsum(pmfs, axis=1)[xs]).sum(axis=1), w.actions - 1
    )
    rewards = (rng.random(n) < w.mu[xs, chosen_all]).astype(np.float64)
    lines = []
    for i, (x, chosen, reward) in enumerate(
        zip(xs.tolist(), chosen_all.tolist(), rewards.tolist(), strict=True)
    ):
        nb = extra(i, x, chosen, reward) if extra is not None else None
        lines.append(orjson.dumps(record(x, pmfs[x], chosen, reward, nextbest=nb)))
    return lines


def write(path: Path, lines: list[bytes]) -> Path:
    path.write_bytes(b"".join(line + b"\n" for line in lines))
    return path
