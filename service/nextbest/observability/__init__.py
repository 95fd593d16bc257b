"""Metrics and structured logs: the engine's :class:`~nextbest.policy.ports.Listener`."""
