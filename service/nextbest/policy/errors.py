"""Errors the domain raises; each transport maps them to its own status codes.

Every error names the request field at fault (``context["amount"]``, ``actions[2].id``) so
that a caller can fix the request without reading server logs.
"""

from __future__ import annotations


class DecisionError(Exception):
    """Base class: a request the engine refuses, with the field at fault when there is one."""

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field
        self.detail = message


class InvalidArgument(DecisionError):
    """The request itself is malformed: sizes, names, numbers, unknown ids."""


class NotFound(DecisionError):
    """An unknown policy or event."""


class FailedPrecondition(DecisionError):
    """A valid request the current state cannot serve (everything masked, no fallback)."""


class AlreadyExists(DecisionError):
    """An event id reused for another policy."""


class ResourceExhausted(DecisionError):
    """A bound that protects every caller is reached (pending bytes, rewards per event):
    this request is shed, nothing was kept, and it may succeed later."""


class Unavailable(DecisionError):
    """The store cannot keep the change (disk full, read-only): nothing was acknowledged."""


class ConfigError(Exception):
    """A policy configuration that cannot be loaded; the message names the policy and key."""
