"""A LangGraph decision point backed by nextbest: a node that decides, a router that follows.

A LangGraph router (the ``path`` of ``add_conditional_edges``) cannot write to the state, yet
the event id must reach the node that later sends the reward. So the decision point is two
parts, wired together by :meth:`NextBestRouter.add_to`:

- :meth:`NextBestRouter.decide` (or :meth:`NextBestRouter.adecide`), a node: reads intent
  and context from the state, asks nextbest, writes ``nextbest_event_id`` and
  ``nextbest_action``;
- :meth:`NextBestRouter.route`, the router: returns the node of the chosen action.

A later node (or a human rating, after the graph ends) rewards with
:meth:`NextBestRouter.reward` / :meth:`NextBestRouter.areward`, which read the event id
from the state.

Install with ``pip install nextbest-client[langchain]``.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any, TypedDict

from langgraph.graph import StateGraph

from nextbest_client._values import Context
from nextbest_client.adapters._common import AppContext, awith_app_context, with_app_context
from nextbest_client.aio import AsyncNextBest
from nextbest_client.client import NextBest
from nextbest_client.types import RewardResult

EVENT_KEY = "nextbest_event_id"
ACTION_KEY = "nextbest_action"


class NextBestState(TypedDict, total=False):
    """Keys the router writes; a graph's state TypedDict extends it (or declares them)."""

    nextbest_event_id: str
    nextbest_action: str


def _get(state: Any, key: str) -> Any:
    """A key of a dict state, or an attribute of a pydantic/dataclass state."""
    if isinstance(state, Mapping):
        return state.get(key)
    return getattr(state, key, None)


class NextBestRouter:
    """Route a graph to the node of the action nextbest picks.

    :meth:`add_to` adds the decision node and its conditional edges to a graph; a later node
    rewards the decision with :meth:`reward` (or :meth:`areward`).

    Args:
        client: A :class:`nextbest_client.NextBest` (sync nodes) or an
            :class:`nextbest_client.AsyncNextBest` (async nodes).
        policy: The policy every decision asks.
        nodes: The action ids that are also node names, or a mapping action id → node name.
            They are the decision's candidates, so the router never returns a node the
            graph lacks.
        intent_key: The state key holding the intent.
        context_key: The state key holding the context.
        inputs: ``inputs(state) -> (intent, context)``, used instead of the two keys.
        context: What the application knows itself (a mapping, or a callable returning
            one): merged over the state's context, it wins, so a value an LLM node wrote into
            the state cannot get past a safety rule that reads it.
        event_key: The state key the decision node writes the event id to.
        action_key: The state key the decision node writes the chosen action to.

    Raises:
        TypeError: ``nodes`` is a str.
        ValueError: ``nodes`` is empty.
    """

    def __init__(
        self,
        client: NextBest | AsyncNextBest,
        policy: str,
        nodes: Sequence[str] | Mapping[str, str],
        *,
        intent_key: str = "intent",
        context_key: str = "context",
        inputs: Callable[[Any], tuple[str, Context]] | None = None,
        context: AppContext | None = None,
        event_key: str = EVENT_KEY,
        action_key: str = ACTION_KEY,
    ) -> None:
        if isinstance(nodes, str):
            raise TypeError("nodes: expected a list of action ids or a mapping, got str")
        self.client = client
        self.policy = policy
        self.nodes: dict[str, str] = (
            dict(nodes) if isinstance(nodes, Mapping) else {n: n for n in nodes}
        )
        if not self.nodes:
            raise ValueError("nodes: at least one action → node is needed")
        self.intent_key = intent_key
        self.context_key = context_key
        self.inputs = inputs
        self.app_context = context
        self.event_key = event_key
        self.action_key = action_key

    def _inputs(self, state: Any) -> tuple[str, Context]:
        if self.inputs is not None:
            return self.inputs(state)
        intent = _get(state, self.intent_key)
        if not isinstance(intent, str):
            raise KeyError(f"state[{self.intent_key!r}] must hold the intent (a str)")
        return intent, _get(state, self.context_key) or {}

    def _update(self, event_id: str, action: str) -> dict[str, str]:
        return {self.event_key: event_id, self.action_key: action}

    def decide(self, state: Any) -> dict[str, str]:
        """The decision node (sync): ask nextbest and record the event in the state.

        Args:
            state: The graph's state (a dict, or an object with attributes).

        Returns:
            The state update: the event id and the chosen action.

        Raises:
            TypeError: The client is an async one (use :meth:`adecide`).
            KeyError: The state holds no intent (a str) under ``intent_key``.
            NextBestError: The decision failed (see :meth:`nextbest_client.NextBest.decide`).
        """
        if not isinstance(self.client, NextBest):
            raise TypeError("decide needs a NextBest client; use adecide with AsyncNextBest")
        intent, context = self._inputs(state)
        context = with_app_context(context, self.app_context)
        d = self.client.decide(self.policy, intent, context, candidates=list(self.nodes))
        return self._update(d.event_id, d.action)

    async def adecide(self, state: Any) -> dict[str, str]:
        """The decision node (asyncio), for graphs run with ``ainvoke``.

        Args:
            state: The graph's state (a dict, or an object with attributes).

        Returns:
            The state update: the event id and the chosen action.

        Raises:
            TypeError: The client is a sync one (use :meth:`decide`).
            KeyError: The state holds no intent (a str) under ``intent_key``.
            NextBestError: The decision failed (see :meth:`nextbest_client.NextBest.decide`).
        """
        if not isinstance(self.client, AsyncNextBest):
            raise TypeError("adecide needs an AsyncNextBest client; use decide with NextBest")
        intent, context = self._inputs(state)
        context = await awith_app_context(context, self.app_context)
        d = await self.client.decide(self.policy, intent, context, candidates=list(self.nodes))
        return self._update(d.event_id, d.action)

    def route(self, state: Any) -> str:
        """The router: the action chosen by the decision node (``path_map`` names its node).

        Args:
            state: The graph's state, after the decision node ran.

        Raises:
            KeyError: The state holds no action of ``nodes``: the decision node did not run.
        """
        action = _get(state, self.action_key)
        if action not in self.nodes:
            raise KeyError(
                f"state[{self.action_key!r}] is {action!r}: run the decision node before routing"
            )
        return str(action)

    @property
    def path_map(self) -> dict[Hashable, str]:
        """Action id → node, for ``add_conditional_edges`` (and the graph's drawing)."""
        path_map: dict[Hashable, str] = {action: node for action, node in self.nodes.items()}
        return path_map

    def add_to(self, graph: StateGraph[Any, Any, Any, Any], name: str = "nextbest") -> None:
        """Add the decision node and its conditional edges to the chosen nodes.

        The node is :meth:`adecide` with an async client, else :meth:`decide`.

        Args:
            graph: The graph to add them to; it must already have, or later get, every node
                of ``nodes``.
            name: The decision node's name.
        """
        node = self.adecide if isinstance(self.client, AsyncNextBest) else self.decide
        graph.add_node(name, node)
        graph.add_conditional_edges(name, self.route, self.path_map)

    def event_id(self, state: Any) -> str:
        """The event id the decision node recorded in ``state``.

        Args:
            state: The graph's state.

        Raises:
            KeyError: The state holds no event id: nothing was decided.
        """
        event_id = _get(state, self.event_key)
        if not isinstance(event_id, str) or not event_id:
            raise KeyError(f"state[{self.event_key!r}] holds no event id: nothing was decided")
        return event_id

    def reward(self, state: Any, value: float | None = None, **signals: float) -> RewardResult:
        """Reward the decision recorded in ``state``: a value, or signals.

        Works after the graph ended too, e.g. for a human rating of its final state.

        Args:
            state: A state holding the event id the decision node wrote.
            value: The reward, higher is better; or give signals instead.
            **signals: Named outcome signals (``resolved=1``).

        Raises:
            TypeError: The client is an async one (use :meth:`areward`).
            KeyError: The state holds no event id.
            NextBestError: The reward failed (see :meth:`nextbest_client.NextBest.reward`).
        """
        if not isinstance(self.client, NextBest):
            raise TypeError("reward needs a NextBest client; use areward with AsyncNextBest")
        return self.client.reward(self.event_id(state), value, signals=signals or None)

    async def areward(
        self, state: Any, value: float | None = None, **signals: float
    ) -> RewardResult:
        """Reward the decision recorded in ``state``, with an async client.

        Args:
            state: A state holding the event id the decision node wrote.
            value: The reward, higher is better; or give signals instead.
            **signals: Named outcome signals (``resolved=1``).

        Raises:
            TypeError: The client is a sync one (use :meth:`reward`).
            KeyError: The state holds no event id.
            NextBestError: The reward failed (see :meth:`nextbest_client.NextBest.reward`).
        """
        if not isinstance(self.client, AsyncNextBest):
            raise TypeError("areward needs an AsyncNextBest client; use reward with NextBest")
        return await self.client.reward(self.event_id(state), value, signals=signals or None)
