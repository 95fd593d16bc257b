"""No name a caller sends becomes a DSJSON directive or collides in VW's reader."""

from __future__ import annotations

import vowpalwabbit

from nextbest.policy.engine import Engine
from nextbest.policy.features import FeatureValue
from nextbest.policy.ports import NullListener, run_now
from nextbest.policy.requests import DecideInput, InlineAction
from nextbest.store import dsjson
from nextbest.store.memory import MemoryStore
from tests.conftest import make_config, support_policy

DIRECTIVES = ["_text", "_multi", "_label_cost", "_tag", "_slot_id", "_labelIndex"]


def test_directive_names_stay_features_in_the_dsjson_reader() -> None:
    context: dict[str, FeatureValue] = {name: "x" for name in DIRECTIVES}
    context["account_age_days"] = 400.0
    engine = Engine(make_config(p=support_policy()), MemoryStore(), NullListener(), lambda: 0.0)
    event = run_now(
        engine.decide(
            DecideInput(
                policy="p",
                intent="_multi",
                context=context,
                actions=[InlineAction("_text", {"_label_cost": 1.0, "_multi": "y"})],
            )
        )
    )
    event.joined_reward = 1.0
    reader = vowpalwabbit.Workspace("--dsjson --cb_explore_adf --quiet")
    examples = reader.parse(dsjson.line(event).decode())
    try:
        # One shared example and one per eligible action, as the live model saw them.
        assert len(examples) == 1 + len(event.eligible)
        shared = examples[0]
        counts = [shared.num_features_in(shared.get_ns(i)) for i in range(shared.num_namespaces())]
        assert sum(counts) >= len(DIRECTIVES) + 2  # every context name, and the intent
    finally:
        reader.finish_example(examples)
