"""The built-in scenarios, by the name `--scenario` takes."""

from __future__ import annotations

from collections.abc import Callable

from nextbest.simulate.news import NewsScenario
from nextbest.simulate.scenario import Scenario
from nextbest.simulate.support import SupportScenario

SCENARIOS: dict[str, Callable[[], Scenario]] = {
    "support": SupportScenario,
    "news": NewsScenario,
}


def get(name: str) -> Scenario:
    try:
        return SCENARIOS[name]()
    except KeyError:
        raise ValueError(f"unknown scenario {name!r}; known: {', '.join(SCENARIOS)}") from None
