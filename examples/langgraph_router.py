"""A LangGraph whose decision point is a nextbest decision. Run bash scripts/serve.sh first;
pip install nextbest-client[langchain]."""

import os
from typing import Any

from langgraph.graph import END, START, StateGraph

from nextbest_client import NextBest
from nextbest_client.adapters.langgraph import NextBestRouter, NextBestState


class State(NextBestState, total=False):  # adds nextbest_event_id, nextbest_action
    intent: str
    context: dict[str, Any]
    reply: str


nb = NextBest(os.environ.get("NEXTBEST_TARGET", "127.0.0.1:50051"))
# Each action id is also a node of the graph; nextbest picks among them.
router = NextBestRouter(nb, "support.next_step", ["ask_details", "transfer_billing"])


def ask_details(state: State) -> dict[str, Any]:
    return {"reply": "Could you send the invoice number?"}


def transfer_billing(state: State) -> dict[str, Any]:
    return {"reply": "Transferring you to billing."}


def rate(state: State) -> dict[str, Any]:
    router.reward(state, resolved=1)  # the event id is in the state
    return {}


graph = StateGraph(State)
router.add_to(graph, "next_step")  # the decision node + conditional edges to the nodes
graph.add_edge(START, "next_step")
graph.add_node("ask_details", ask_details)
graph.add_node("transfer_billing", transfer_billing)
graph.add_node("rate", rate)
graph.add_edge("ask_details", "rate")
graph.add_edge("transfer_billing", "rate")
graph.add_edge("rate", END)

out = graph.compile().invoke({"intent": "billing_dispute", "context": {"amount": 80.0}})
print(out["nextbest_action"], "→", out["reply"])
print("join:", nb.explain(out["nextbest_event_id"]).join_status)
nb.close()
