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
from nextbest_proto.v1 import admin_pb2 as apb
from nextbest_proto.v1 import admin_pb2_grpc as arpc

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
    """A synchronous AdminService client: steer a running service's policies.

    Changes need a token with the ``admin`` scope, reads the ``read`` scope. Reads are
    retried like the decision client's calls; changes are sent once. Close it with
    ``close()``, or use it as a context manager.

    Args:
        target: The server's address, ``host:port``.
        token: Sent as ``authorization: Bearer <token>``; None reads ``NEXTBEST_TOKEN``,
            ``""`` sends no token.
        tls: As for :class:`NextBest`: a :class:`TLSConfig`, True, False, grpc credentials,
            or None to read ``NEXTBEST_TLS_*`` (plaintext when unset).
        timeout: Seconds each attempt may take.
        retry: Retries of reads on UNAVAILABLE and DEADLINE_EXCEEDED; None uses ``Retry()``.
        options: gRPC channel arguments, over the client's defaults.

    Raises:
        ValueError, OSError, TypeError: As for :class:`NextBest`.
    """

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
        """Every policy, as :meth:`get_policy` shows it (``read`` scope).

        Raises:
            NextBestError: The call failed, e.g. :class:`PermissionDenied`.
        """
        return list(self._call(self._stub.ListPolicies, apb.ListPoliciesRequest()).policies)

    def get_policy(self, policy: str) -> apb.PolicyStatus:
        """A policy's settings in force, the file's under them, overrides, counters.

        Each override records who set it, when and why (``read`` scope).

        Args:
            policy: The policy's name.

        Raises:
            NotFound: No policy of that name.
            NextBestError: Any other failure, e.g. :class:`PermissionDenied`.
        """
        return self._call(self._stub.GetPolicy, apb.GetPolicyRequest(policy=policy))

    def set_exploration(
        self,
        policy: str,
        epsilon: float | None = None,
        *,
        per_intent: Mapping[str, float] | None = None,
        reason: str = "",
    ) -> apb.PolicyStatus:
        """Override the exploration rate ε live, for the whole policy and/or per intent.

        Sent once, never retried (``admin`` scope).

        Args:
            policy: The policy's name.
            epsilon: The new ε for every intent without its own; None leaves it.
            per_intent: Intent → ε, for those intents.
            reason: Why; required (an empty one is refused), kept with the override
                and in the audit log.

        Returns:
            The policy's status after the change.

        Raises:
            InvalidArgument: An ε outside 0 to the policy's ``max_epsilon``, neither
                ``epsilon`` nor ``per_intent``, or no reason.
            NotFound: No policy of that name.
            NextBestError: Any other failure, e.g. :class:`PermissionDenied`.
        """
        request = _exploration(policy, epsilon, per_intent, reason)
        return self._call(self._stub.SetExploration, request, _ONCE)

    def set_mode(self, policy: str, mode: str, *, reason: str = "") -> apb.PolicyStatus:
        """Override the learning mode live; sent once, never retried (``admin`` scope).

        Args:
            policy: The policy's name.
            mode: ``online``, ``apprentice``, ``frozen`` or ``logging_only``.
            reason: Why; required (an empty one is refused), kept with the override
                and in the audit log.

        Returns:
            The policy's status after the change.

        Raises:
            InvalidArgument: An unknown mode, or no reason.
            NotFound: No policy of that name.
            NextBestError: Any other failure, e.g. :class:`PermissionDenied`.
        """
        request = apb.SetModeRequest(policy=policy, mode=mode, reason=reason)
        return self._call(self._stub.SetMode, request, _ONCE)

    def clear_overrides(self, policy: str, *, reason: str = "") -> apb.PolicyStatus:
        """Drop every live override: the file's settings apply again (``admin`` scope).

        Args:
            policy: The policy's name.
            reason: Why; required (an empty one is refused), kept in the audit log.

        Returns:
            The policy's status after the change.

        Raises:
            InvalidArgument: No reason.
            NotFound: No policy of that name.
            NextBestError: Any other failure, e.g. :class:`PermissionDenied`.
        """
        request = apb.ClearOverridesRequest(policy=policy, reason=reason)
        return self._call(self._stub.ClearOverrides, request, _ONCE)

    def reload_config(self, *, reason: str = "") -> apb.ReloadConfigResponse:
        """Re-read the policy file, as SIGHUP does (``admin`` scope).

        Args:
            reason: Why, recorded in the audit log.

        Returns:
            ``applied`` when the new file is in force, else ``error`` says why not (the
            settings in force stay).

        Raises:
            NextBestError: The call failed, e.g. :class:`PermissionDenied`.
        """
        request = apb.ReloadConfigRequest(reason=reason)
        return self._call(self._stub.ReloadConfig, request, _ONCE)

    def list_models(self, policy: str) -> list[apb.ModelCheckpoint]:
        """The policy's model checkpoints, newest first (``read`` scope).

        Args:
            policy: The policy's name.

        Raises:
            NotFound: No policy of that name.
            NextBestError: Any other failure, e.g. :class:`PermissionDenied`.
        """
        request = apb.ListModelsRequest(policy=policy)
        return list(self._call(self._stub.ListModels, request).models)

    def rollback_model(self, policy: str, version: str, *, reason: str = "") -> apb.PolicyStatus:
        """Serve the checkpoint ``version`` from now on, and after a restart (``admin`` scope).

        Args:
            policy: The policy's name.
            version: A checkpoint's version, as :meth:`list_models` lists it.
            reason: Why; required (an empty one is refused), kept in the audit log.

        Returns:
            The policy's status after the change.

        Raises:
            InvalidArgument: No reason, or no version.
            NotFound: No policy of that name, or no checkpoint of that version.
            NextBestError: Any other failure, e.g. :class:`PermissionDenied`.
        """
        request = apb.RollbackModelRequest(policy=policy, version=version, reason=reason)
        return self._call(self._stub.RollbackModel, request, _ONCE)


class AsyncAdmin(AsyncConnection):
    """The asyncio twin of :class:`Admin`; create it inside the running event loop.

    Every method is awaited and takes the arguments of its :class:`Admin` twin. Close it with
    ``await close()``, or use it with ``async with``.

    Args:
        target: The server's address, ``host:port``.
        token: Sent as ``authorization: Bearer <token>``; None reads ``NEXTBEST_TOKEN``.
        tls: As for :class:`NextBest`.
        timeout: Seconds each attempt may take.
        retry: Retries of reads on UNAVAILABLE and DEADLINE_EXCEEDED; None uses ``Retry()``.
        options: gRPC channel arguments, over the client's defaults.

    Raises:
        ValueError, OSError, TypeError: As for :class:`NextBest`.
    """

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
        """Every policy; see :meth:`Admin.list_policies`."""
        response = await self._call(self._stub.ListPolicies, apb.ListPoliciesRequest())
        return list(response.policies)

    async def get_policy(self, policy: str) -> apb.PolicyStatus:
        """A policy's settings, overrides and counters; see :meth:`Admin.get_policy`.

        Args:
            policy: The policy's name.
        """
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
        """Override ε live; see :meth:`Admin.set_exploration`.

        Args:
            policy: The policy's name.
            epsilon: The new ε for every intent without its own; None leaves it.
            per_intent: Intent → ε, for those intents.
            reason: Why; required (an empty one is refused), kept with the override
                and in the audit log.
        """
        request = _exploration(policy, epsilon, per_intent, reason)
        status: apb.PolicyStatus = await self._call(self._stub.SetExploration, request, _ONCE)
        return status

    async def set_mode(self, policy: str, mode: str, *, reason: str = "") -> apb.PolicyStatus:
        """Override the learning mode live; see :meth:`Admin.set_mode`.

        Args:
            policy: The policy's name.
            mode: ``online``, ``apprentice``, ``frozen`` or ``logging_only``.
            reason: Why; required (an empty one is refused), kept with the override
                and in the audit log.
        """
        request = apb.SetModeRequest(policy=policy, mode=mode, reason=reason)
        status: apb.PolicyStatus = await self._call(self._stub.SetMode, request, _ONCE)
        return status

    async def clear_overrides(self, policy: str, *, reason: str = "") -> apb.PolicyStatus:
        """Drop every live override; see :meth:`Admin.clear_overrides`.

        Args:
            policy: The policy's name.
            reason: Why; required (an empty one is refused), kept in the audit log.
        """
        request = apb.ClearOverridesRequest(policy=policy, reason=reason)
        status: apb.PolicyStatus = await self._call(self._stub.ClearOverrides, request, _ONCE)
        return status

    async def reload_config(self, *, reason: str = "") -> apb.ReloadConfigResponse:
        """Re-read the policy file; see :meth:`Admin.reload_config`.

        Args:
            reason: Why, recorded in the audit log.
        """
        request = apb.ReloadConfigRequest(reason=reason)
        response: apb.ReloadConfigResponse = await self._call(
            self._stub.ReloadConfig, request, _ONCE
        )
        return response

    async def list_models(self, policy: str) -> list[apb.ModelCheckpoint]:
        """The policy's model checkpoints, newest first; see :meth:`Admin.list_models`.

        Args:
            policy: The policy's name.
        """
        response = await self._call(self._stub.ListModels, apb.ListModelsRequest(policy=policy))
        return list(response.models)

    async def rollback_model(
        self, policy: str, version: str, *, reason: str = ""
    ) -> apb.PolicyStatus:
        """Serve the checkpoint ``version`` from now on; see :meth:`Admin.rollback_model`.

        Args:
            policy: The policy's name.
            version: A checkpoint's version, as :meth:`list_models` lists it.
            reason: Why; required (an empty one is refused), kept in the audit log.
        """
        request = apb.RollbackModelRequest(policy=policy, version=version, reason=reason)
        status: apb.PolicyStatus = await self._call(self._stub.RollbackModel, request, _ONCE)
        return status
