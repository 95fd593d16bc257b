"""The operators' client: :class:`Admin` (sync) and :class:`AsyncAdmin` over AdminService.

Live exploration and mode overrides, reloads, model history and rollbacks. Changes need a
token with the ``admin`` scope; ``list_policies``, ``get_policy`` and ``list_models`` need
``read``. Answers are the protobuf messages of :mod:`nextbest_client.v1.admin_pb2`
(``PolicyStatus``, ``ReloadConfigResponse``, ``ModelCheckpoint``); failures raise the typed
errors of :mod:`nextbest_client.errors`.

Reads are retried like the decision client's calls (UNAVAILABLE, DEADLINE_EXCEEDED); changes
are sent once, so a change is never audited twice for one request: on an error, read the
policy to see whether it was applied.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from nextbest_client import _channel
from nextbest_client._connection import AsyncConnection, Connection
from nextbest_client.v1 import admin_pb2 as apb
from nextbest_client.v1 import admin_pb2_grpc as arpc

_ONCE = _channel.Retry(attempts=1)


def _exploration(
    policy: str, epsilon: float | None, per_intent: Mapping[str, float] | None, reason: str
) -> apb.SetExplorationRequest:
    request = apb.SetExplorationRequest(policy=policy, reason=reason)
    if epsilon is not None:
        request.epsilon = float(epsilon)
    for intent, value in (per_intent or {}).items():
        request.per_intent[intent] = float(value)
    return request


class Admin(Connection):
    """A synchronous AdminService client; the connection arguments are those of
    :class:`nextbest_client.NextBest` (``token`` and ``tls`` also from the environment)."""

    def __init__(
        self,
        target: str,
        *,
        token: str | None = None,
        tls: _channel.TLS = None,
        timeout: float = 10.0,
        retry: _channel.Retry | None = None,
        options: Sequence[tuple[str, Any]] | None = None,
    ) -> None:
        super().__init__(
            target, token=token, tls=tls, timeout=timeout, retry=retry, options=options
        )
        self._stub = arpc.AdminServiceStub(self._channel)

    def list_policies(self) -> list[apb.PolicyStatus]:
        """Every policy, as :meth:`get_policy` shows it."""
        return list(self._call(self._stub.ListPolicies, apb.ListPoliciesRequest()).policies)

    def get_policy(self, policy: str) -> apb.PolicyStatus:
        """Settings in force, the file's under them, overrides (who, when, why), counters."""
        return self._call(self._stub.GetPolicy, apb.GetPolicyRequest(policy=policy))

    def set_exploration(
        self,
        policy: str,
        epsilon: float | None = None,
        *,
        per_intent: Mapping[str, float] | None = None,
        reason: str = "",
    ) -> apb.PolicyStatus:
        """Override ε and/or per-intent ε live (never above the policy's max_epsilon)."""
        request = _exploration(policy, epsilon, per_intent, reason)
        return self._call(self._stub.SetExploration, request, _ONCE)

    def set_mode(self, policy: str, mode: str, *, reason: str = "") -> apb.PolicyStatus:
        """Override the learning mode: online, apprentice, frozen or logging_only."""
        request = apb.SetModeRequest(policy=policy, mode=mode, reason=reason)
        return self._call(self._stub.SetMode, request, _ONCE)

    def clear_overrides(self, policy: str, *, reason: str = "") -> apb.PolicyStatus:
        """Drop every live override: the file's settings apply again."""
        request = apb.ClearOverridesRequest(policy=policy, reason=reason)
        return self._call(self._stub.ClearOverrides, request, _ONCE)

    def reload_config(self, *, reason: str = "") -> apb.ReloadConfigResponse:
        """Re-read the policy file (as SIGHUP does): ``applied``, else ``error``."""
        request = apb.ReloadConfigRequest(reason=reason)
        return self._call(self._stub.ReloadConfig, request, _ONCE)

    def list_models(self, policy: str) -> list[apb.ModelCheckpoint]:
        """The policy's model checkpoints, newest first."""
        request = apb.ListModelsRequest(policy=policy)
        return list(self._call(self._stub.ListModels, request).models)

    def rollback_model(self, policy: str, version: str, *, reason: str = "") -> apb.PolicyStatus:
        """Serve the checkpoint ``version`` from now on (and after a restart)."""
        request = apb.RollbackModelRequest(policy=policy, version=version, reason=reason)
        return self._call(self._stub.RollbackModel, request, _ONCE)


class AsyncAdmin(AsyncConnection):
    """The asyncio twin of :class:`Admin`; create it inside the running loop."""

    def __init__(
        self,
        target: str,
        *,
        token: str | None = None,
        tls: _channel.TLS = None,
        timeout: float = 10.0,
        retry: _channel.Retry | None = None,
        options: Sequence[tuple[str, Any]] | None = None,
    ) -> None:
        super().__init__(
            target, token=token, tls=tls, timeout=timeout, retry=retry, options=options
        )
        self._stub = arpc.AdminServiceStub(self._channel)

    async def list_policies(self) -> list[apb.PolicyStatus]:
        response = await self._call(self._stub.ListPolicies, apb.ListPoliciesRequest())
        return list(response.policies)

    async def get_policy(self, policy: str) -> apb.PolicyStatus:
        status: apb.PolicyStatus = await self._call(
            self._stub.GetPolicy, apb.GetPolicyRequest(policy=policy)
        )
        return status

    async def set_exploration(
        self,
        policy: str,
        epsilon: float | None = None,
        *,
        per_intent: Mapping[str, float] | None = None,
        reason: str = "",
    ) -> apb.PolicyStatus:
        request = _exploration(policy, epsilon, per_intent, reason)
        status: apb.PolicyStatus = await self._call(self._stub.SetExploration, request, _ONCE)
        return status

    async def set_mode(self, policy: str, mode: str, *, reason: str = "") -> apb.PolicyStatus:
        request = apb.SetModeRequest(policy=policy, mode=mode, reason=reason)
        status: apb.PolicyStatus = await self._call(self._stub.SetMode, request, _ONCE)
        return status

    async def clear_overrides(self, policy: str, *, reason: str = "") -> apb.PolicyStatus:
        request = apb.ClearOverridesRequest(policy=policy, reason=reason)
        status: apb.PolicyStatus = await self._call(self._stub.ClearOverrides, request, _ONCE)
        return status

    async def reload_config(self, *, reason: str = "") -> apb.ReloadConfigResponse:
        request = apb.ReloadConfigRequest(reason=reason)
        response: apb.ReloadConfigResponse = await self._call(
            self._stub.ReloadConfig, request, _ONCE
        )
        return response

    async def list_models(self, policy: str) -> list[apb.ModelCheckpoint]:
        response = await self._call(self._stub.ListModels, apb.ListModelsRequest(policy=policy))
        return list(response.models)

    async def rollback_model(
        self, policy: str, version: str, *, reason: str = ""
    ) -> apb.PolicyStatus:
        request = apb.RollbackModelRequest(policy=policy, version=version, reason=reason)
        status: apb.PolicyStatus = await self._call(self._stub.RollbackModel, request, _ONCE)
        return status
