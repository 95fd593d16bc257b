"""Features land in the namespaces the interactions cross; no string can corrupt an example."""

from __future__ import annotations

import vowpalwabbit
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from nextbest.policy.features import action_line, escape, shared_line

WS = vowpalwabbit.Workspace("--cb_adf --quiet")


def parsed(lines: list[str]) -> list[dict[str, list[tuple[int, float]]]]:
    """Each example's namespaces → (hash, value) features, as VW parsed them."""
    examples = WS.parse(lines)
    try:
        out = []
        for ex in examples:
            spaces: dict[str, list[tuple[int, float]]] = {}
            for i in range(ex.num_namespaces()):
                ns = ex.namespace(i)
                if ns == 128:  # VW's constant namespace
                    continue
                handle = ex.get_ns(i)
                spaces[chr(ns)] = [
                    (ex.feature(handle, j), ex.feature_weight(handle, j))
                    for j in range(ex.num_features_in(handle))
                ]
            out.append(spaces)
        return out
    finally:
        WS.finish_example(examples)


def test_numbers_keep_their_value_and_texts_are_one_hot() -> None:
    line = shared_line(
        "billing_dispute",
        {"amount": 42.5, "plan": "gold", "vip": True, "tags": ["a", "b"]},
    )
    assert line == "shared |i billing_dispute |c amount:42.5 plan=gold tags=a tags=b vip=true"
    assert action_line("offer_refund", {"kind": "money"}) == "|a id=offer_refund kind=money"


def test_intent_context_and_action_land_in_i_c_a() -> None:
    shared, action = parsed(
        [shared_line("billing", {"amount": 3.0}), action_line("x", {"kind": "info"})]
    )
    assert set(shared) == {"i", "c"}
    assert [v for _, v in shared["c"]] == [3.0]
    assert set(action) == {"a"}
    assert len(action["a"]) == 2  # id=x and kind=info


def test_escape_is_identity_on_safe_tokens_and_injective_on_the_rest() -> None:
    assert escape("plan_gold-1.5/x") == "plan_gold-1.5/x"
    assert escape("a b") == "a%20b"
    assert escape("a|b:c") == "a%7Cb%3Ac"
    assert escape("%20") != escape(" ")
    assert escape("a=b") != "a=b"  # '=' separates name from value


@settings(max_examples=300, deadline=None)
@given(
    name=st.text(min_size=1, max_size=40),
    value=st.text(max_size=40),
    number=st.floats(-1e18, 1e18).filter(lambda x: abs(x) >= 1e-20),
)
def test_any_string_parses_without_disturbing_other_features(
    name: str, value: str, number: float
) -> None:
    assume(name != "amount")  # the reference feature's own name
    reference = parsed([shared_line("intent", {"amount": 42.5}), action_line("act", {})])
    hostile = parsed(
        [
            shared_line(name, {name: value, "amount": 42.5, f"{name}#n": number}),
            action_line(value or "v", {name: value}),
        ]
    )
    shared, action = hostile
    # The hostile features stayed in their namespaces: one intent feature, three context
    # features, and the reference `amount:42.5` feature exactly as without them.
    assert set(shared) == {"i", "c"}
    assert len(shared["i"]) == 1
    assert len(shared["c"]) == 3
    assert reference[0]["c"][0] in shared["c"]
    weights = [w for _, w in shared["c"]]
    assert any(abs(w - number) <= 1e-6 * abs(number) for w in weights)  # float32 precision
    assert set(action) == {"a"}
    assert len(action["a"]) == 2


@given(a=st.text(max_size=20), b=st.text(max_size=20))
def test_distinct_strings_stay_distinct(a: str, b: str) -> None:
    assert (escape(a) == escape(b)) == (a == b)


def test_all_digit_names_hash_as_strings_not_numbers() -> None:
    """VW reads an all-digit name as a number: 7, 007 and 2^64+7 would be one feature."""
    names = ["7", "007", "18446744073709551623"]
    intents = [parsed([shared_line(n, {}), action_line("a", {})])[0]["i"] for n in names]
    assert len({tuple(f) for f in intents}) == 3
    keys = [parsed([shared_line("x", {n: 1.0}), action_line("a", {})])[0]["c"] for n in names]
    assert len({tuple(f) for f in keys}) == 3


def test_a_leading_underscore_never_reaches_dsjson_as_a_directive() -> None:
    for name in ("_text", "_multi", "_label_cost", "_tag", "_slot_id"):
        assert not escape(name).startswith("_")
    assert escape("plan_gold") == "plan_gold"
