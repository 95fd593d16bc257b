"""Personalizer JSON → engine records: feature flattening, durations, field names."""

from __future__ import annotations

from typing import Any

import pytest

from nextbest.api.personalizer.openapi import document
from nextbest.api.personalizer.schemas import RankRequest
from nextbest.api.personalizer.translate import (
    INTENT,
    RankPlan,
    field_name,
    flatten,
    iso_duration,
    parse_duration,
)
from nextbest.policy.engine import PolicyRuntime
from nextbest.policy.errors import InvalidArgument
from tests.conftest import make_config, support_policy


def test_flatten_nested_objects_into_dotted_names() -> None:
    features = flatten(
        [
            {"user": {"age": 3, "profile": {"plan": "gold", "vip": True}}},
            {"tags": ["a", "b"], "empty": [], "score": 1.5},
        ],
        "contextFeatures",
    )
    assert features == {
        "user.age": 3.0,
        "user.profile.plan": "gold",
        "user.profile.vip": True,
        "tags": ["a", "b"],
        "empty": [],
        "score": 1.5,
    }
    assert isinstance(features["user.profile.vip"], bool)


@pytest.mark.parametrize(
    ("objects", "path"),
    [
        ([{"a": None}], "contextFeatures[0].a"),
        ([{"a": {"b": [1, 2]}}], "contextFeatures[0].a.b"),
        ([{"a": [{"b": "c"}]}], "contextFeatures[0].a"),
        ([{"a": 1}, {"a": 2}], "contextFeatures[1].a"),
        ([{"a": {"b": 1}}, {"a.b": 2}], "contextFeatures[1].a.b"),
    ],
)
def test_flatten_refuses_naming_the_path(objects: list[dict[str, Any]], path: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        flatten(objects, "contextFeatures")
    assert info.value.field == path


def test_flatten_bounds_nesting() -> None:
    deep: dict[str, Any] = {"x": 1}
    for _ in range(40):
        deep = {"n": deep}
    with pytest.raises(InvalidArgument, match="nested deeper"):
        flatten([deep], "contextFeatures")


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(600, "PT10M"), (0.5, "PT0.5S"), (90061, "PT25H1M1S"), (3600, "PT1H"), (0, "PT0S")],
)
def test_durations(seconds: float, text: str) -> None:
    assert iso_duration(seconds) == text
    assert parse_duration(text, "rewardWaitTime") == pytest.approx(seconds)


def test_durations_also_in_dotnet_form_and_refused_otherwise() -> None:
    assert parse_duration("00:10:00", "w") == 600
    assert parse_duration("1.00:00:00", "w") == 86400
    assert parse_duration("P1D", "w") == 86400
    for bad in ("", "P", "PT", "10m", "PT10X"):
        with pytest.raises(InvalidArgument):
            parse_duration(bad, "w")


def test_field_names_are_personalizer_s() -> None:
    assert field_name("context['user.age']") == "contextFeatures['user.age']"
    assert field_name("context key") == "contextFeatures key"
    assert field_name("event_id") == "eventId"
    assert field_name("epsilon") == "explorationPercentage"
    assert field_name("contextFeatures[0].a") == "contextFeatures[0].a"


def _runtime() -> PolicyRuntime:
    config = make_config(support__next_step=support_policy()).policies["support.next_step"]
    return PolicyRuntime("support.next_step", config)


def test_rank_plan_on_a_catalog_policy() -> None:
    rt = _runtime()
    try:
        req = RankRequest.model_validate(
            {
                "actions": [
                    {"id": "new_one", "features": [{"k": "v"}]},
                    {"id": "ask_details"},
                    {"id": "other", "features": []},
                ],
                "excludedActions": ["new_one"],
            }
        )
        plan = RankPlan("support.next_step", rt, req)
        decide = plan.input
        assert decide.intent == INTENT
        assert decide.candidate_action_ids == ["ask_details"]
        assert [a.id for a in decide.actions] == ["new_one", "other"]
        assert decide.excluded_action_ids == ["new_one", "escalate_human"]  # + the fallback
        assert decide.baseline_action_id == "ask_details"
        assert plan.field("actions[1].features['k']") == "actions[2].features['k']"
        assert plan.field("excluded_action_ids[0]") == "excludedActions[0]"
        only_new = RankPlan(
            "support.next_step", rt, RankRequest.model_validate({"actions": [{"id": "n"}]})
        )
        assert only_new.input.candidate_action_ids == []
        assert sorted(only_new.input.excluded_action_ids) == sorted(rt.catalog)
    finally:
        rt.model.close()


def test_openapi_document_has_every_model() -> None:
    doc = document()
    assert doc["openapi"].startswith("3.1")
    refs = {
        value.rsplit("/", 1)[1]
        for path in doc["paths"].values()
        for op in path.values()
        for value in _refs(op)
    }
    assert refs <= set(doc["components"]["schemas"])


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if "$ref" in node else []
        return found + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []
