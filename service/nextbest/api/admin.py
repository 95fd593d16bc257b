"""AdminService over grpc.aio: translate, call the control plane, translate back."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from nextbest.api.boundary import CALLER, Method
from nextbest.observability.metrics import Metrics
from nextbest.policy.config import Exploration
from nextbest.policy.control import Control, ReloadVerdict
from nextbest.policy.engine import PolicyRuntime
from nextbest.policy.overrides import file_value
from nextbest_proto.v1 import admin_pb2 as pb
from nextbest_proto.v1 import admin_pb2_grpc as rpc

SERVICE = pb.DESCRIPTOR.services_by_name["AdminService"].full_name
METHODS: dict[str, Method] = {
    "ListPolicies": Method(pb.ListPoliciesRequest, pb.ListPoliciesResponse, "read"),
    "GetPolicy": Method(pb.GetPolicyRequest, pb.PolicyStatus, "read"),
    "SetExploration": Method(pb.SetExplorationRequest, pb.PolicyStatus, "admin"),
    "SetMode": Method(pb.SetModeRequest, pb.PolicyStatus, "admin"),
    "ClearOverrides": Method(pb.ClearOverridesRequest, pb.PolicyStatus, "admin"),
    "ReloadConfig": Method(pb.ReloadConfigRequest, pb.ReloadConfigResponse, "admin"),
    "ListModels": Method(pb.ListModelsRequest, pb.ListModelsResponse, "read"),
    "RollbackModel": Method(pb.RollbackModelRequest, pb.PolicyStatus, "admin"),
}
Context = Any  # grpc.aio.ServicerContext
Reload = Callable[[str, str], Awaitable[ReloadVerdict]]  # (reason, caller) → verdict


class AdminServicer(rpc.AdminServiceServicer):
    def __init__(
        self,
        control: Control,
        metrics: Metrics,
        pending: Callable[[], dict[str, int]],
        reload: Reload,
    ) -> None:
        """`reload` re-reads the policy file as SIGHUP does (off the event loop) and audits."""
        self.control = control
        self.metrics = metrics
        self.pending = pending
        self.reload = reload

    async def ListPolicies(
        self, request: pb.ListPoliciesRequest, context: Context
    ) -> pb.ListPoliciesResponse:
        runtimes = self.control.engine.policies
        return pb.ListPoliciesResponse(
            policies=[self._status(runtimes[n]) for n in sorted(runtimes)]
        )

    async def GetPolicy(self, request: pb.GetPolicyRequest, context: Context) -> pb.PolicyStatus:
        return self._status(self.control.engine.policy(request.policy))

    async def SetExploration(
        self, request: pb.SetExplorationRequest, context: Context
    ) -> pb.PolicyStatus:
        epsilon = request.epsilon if request.HasField("epsilon") else None
        rt = self.control.set_exploration(
            request.policy, epsilon, dict(request.per_intent), request.reason, CALLER.get()
        )
        return self._status(rt)

    async def SetMode(self, request: pb.SetModeRequest, context: Context) -> pb.PolicyStatus:
        rt = self.control.set_mode(request.policy, request.mode, request.reason, CALLER.get())
        return self._status(rt)

    async def ClearOverrides(
        self, request: pb.ClearOverridesRequest, context: Context
    ) -> pb.PolicyStatus:
        return self._status(self.control.clear(request.policy, request.reason, CALLER.get()))

    async def ReloadConfig(
        self, request: pb.ReloadConfigRequest, context: Context
    ) -> pb.ReloadConfigResponse:
        verdict = await self.reload(request.reason, CALLER.get())
        return pb.ReloadConfigResponse(
            applied=verdict.applied, error=verdict.error, config_versions=verdict.config_versions
        )

    async def ListModels(
        self, request: pb.ListModelsRequest, context: Context
    ) -> pb.ListModelsResponse:
        serving = self.control.engine.policy(request.policy).model
        return pb.ListModelsResponse(
            models=[
                pb.ModelCheckpoint(
                    version=c.version,
                    learned=c.learned,
                    created_at=c.created_at,
                    vw_args=c.vw_args,
                    serving=c.version == serving.version and c.vw_args == serving.vw_args,
                )
                for c in self.control.checkpoints(request.policy)
            ]
        )

    async def RollbackModel(
        self, request: pb.RollbackModelRequest, context: Context
    ) -> pb.PolicyStatus:
        rt = self.control.rollback(request.policy, request.version, request.reason, CALLER.get())
        return self._status(rt)

    # -- the status of one policy ----------------------------------------------------------------

    def _status(self, rt: PolicyRuntime) -> pb.PolicyStatus:
        return pb.PolicyStatus(
            policy=rt.name,
            config_version=rt.version,
            model_version=rt.model.version,
            learned=rt.model.learned,
            pending=self.pending().get(rt.name, 0),
            exploration=_exploration(rt.config.exploration),
            mode=rt.config.mode,
            file_exploration=_exploration(rt.file_config.exploration),
            file_mode=rt.file_config.mode,
            overrides=[
                pb.Override(
                    setting=o.setting,
                    value=str(o.value),
                    file_value=_text(file_value(rt.file_config, o.setting)),
                    set_by=o.set_by,
                    set_at=o.set_at,
                    reason=o.reason,
                )
                for o in sorted(rt.overrides.values(), key=lambda o: o.setting)
            ],
            counters=self._counters(rt.name),
            vw_args=rt.config.vw_args,
        )

    def _counters(self, policy: str) -> pb.PolicyCounters:
        """Read back from the Prometheus counters, so GetPolicy and /metrics agree."""
        counters = pb.PolicyCounters()
        for metric in self.metrics.decisions.collect():
            for sample in metric.samples:
                labels = sample.labels
                if not sample.name.endswith("_total") or labels.get("policy") != policy:
                    continue
                n = int(sample.value)
                counters.decisions += n
                counters.explored += n if labels.get("explored") == "true" else 0
                counters.fallbacks += n if labels.get("fallback") == "true" else 0
        for metric in self.metrics.rewards.collect():
            for sample in metric.samples:
                if sample.name.endswith("_total") and sample.labels.get("policy") == policy:
                    status = sample.labels["status"]
                    counters.rewards[status] = counters.rewards[status] + int(sample.value)
        return counters


def _exploration(e: Exploration) -> pb.ExplorationSettings:
    return pb.ExplorationSettings(
        epsilon=e.epsilon,
        max_epsilon=e.max_epsilon,
        per_intent=dict(e.per_intent),
        algorithm=e.algorithm,
    )


def _text(value: float | str | None) -> str:
    return "" if value is None else str(value)
