from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ListPoliciesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListPoliciesResponse(_message.Message):
    __slots__ = ("policies",)
    POLICIES_FIELD_NUMBER: _ClassVar[int]
    policies: _containers.RepeatedCompositeFieldContainer[PolicyStatus]
    def __init__(self, policies: _Optional[_Iterable[_Union[PolicyStatus, _Mapping]]] = ...) -> None: ...

class GetPolicyRequest(_message.Message):
    __slots__ = ("policy",)
    POLICY_FIELD_NUMBER: _ClassVar[int]
    policy: str
    def __init__(self, policy: _Optional[str] = ...) -> None: ...

class ExplorationSettings(_message.Message):
    __slots__ = ("epsilon", "max_epsilon", "per_intent", "algorithm")
    class PerIntentEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    EPSILON_FIELD_NUMBER: _ClassVar[int]
    MAX_EPSILON_FIELD_NUMBER: _ClassVar[int]
    PER_INTENT_FIELD_NUMBER: _ClassVar[int]
    ALGORITHM_FIELD_NUMBER: _ClassVar[int]
    epsilon: float
    max_epsilon: float
    per_intent: _containers.ScalarMap[str, float]
    algorithm: str
    def __init__(self, epsilon: _Optional[float] = ..., max_epsilon: _Optional[float] = ..., per_intent: _Optional[_Mapping[str, float]] = ..., algorithm: _Optional[str] = ...) -> None: ...

class Override(_message.Message):
    __slots__ = ("setting", "value", "file_value", "set_by", "set_at", "reason")
    SETTING_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    FILE_VALUE_FIELD_NUMBER: _ClassVar[int]
    SET_BY_FIELD_NUMBER: _ClassVar[int]
    SET_AT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    setting: str
    value: str
    file_value: str
    set_by: str
    set_at: float
    reason: str
    def __init__(self, setting: _Optional[str] = ..., value: _Optional[str] = ..., file_value: _Optional[str] = ..., set_by: _Optional[str] = ..., set_at: _Optional[float] = ..., reason: _Optional[str] = ...) -> None: ...

class PolicyCounters(_message.Message):
    __slots__ = ("decisions", "explored", "fallbacks", "rewards")
    class RewardsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    DECISIONS_FIELD_NUMBER: _ClassVar[int]
    EXPLORED_FIELD_NUMBER: _ClassVar[int]
    FALLBACKS_FIELD_NUMBER: _ClassVar[int]
    REWARDS_FIELD_NUMBER: _ClassVar[int]
    decisions: int
    explored: int
    fallbacks: int
    rewards: _containers.ScalarMap[str, int]
    def __init__(self, decisions: _Optional[int] = ..., explored: _Optional[int] = ..., fallbacks: _Optional[int] = ..., rewards: _Optional[_Mapping[str, int]] = ...) -> None: ...

class PolicyStatus(_message.Message):
    __slots__ = ("policy", "config_version", "model_version", "learned", "pending", "exploration", "mode", "file_exploration", "file_mode", "overrides", "counters", "vw_args")
    POLICY_FIELD_NUMBER: _ClassVar[int]
    CONFIG_VERSION_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    LEARNED_FIELD_NUMBER: _ClassVar[int]
    PENDING_FIELD_NUMBER: _ClassVar[int]
    EXPLORATION_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    FILE_EXPLORATION_FIELD_NUMBER: _ClassVar[int]
    FILE_MODE_FIELD_NUMBER: _ClassVar[int]
    OVERRIDES_FIELD_NUMBER: _ClassVar[int]
    COUNTERS_FIELD_NUMBER: _ClassVar[int]
    VW_ARGS_FIELD_NUMBER: _ClassVar[int]
    policy: str
    config_version: str
    model_version: str
    learned: int
    pending: int
    exploration: ExplorationSettings
    mode: str
    file_exploration: ExplorationSettings
    file_mode: str
    overrides: _containers.RepeatedCompositeFieldContainer[Override]
    counters: PolicyCounters
    vw_args: str
    def __init__(self, policy: _Optional[str] = ..., config_version: _Optional[str] = ..., model_version: _Optional[str] = ..., learned: _Optional[int] = ..., pending: _Optional[int] = ..., exploration: _Optional[_Union[ExplorationSettings, _Mapping]] = ..., mode: _Optional[str] = ..., file_exploration: _Optional[_Union[ExplorationSettings, _Mapping]] = ..., file_mode: _Optional[str] = ..., overrides: _Optional[_Iterable[_Union[Override, _Mapping]]] = ..., counters: _Optional[_Union[PolicyCounters, _Mapping]] = ..., vw_args: _Optional[str] = ...) -> None: ...

class SetExplorationRequest(_message.Message):
    __slots__ = ("policy", "epsilon", "per_intent", "reason")
    class PerIntentEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    POLICY_FIELD_NUMBER: _ClassVar[int]
    EPSILON_FIELD_NUMBER: _ClassVar[int]
    PER_INTENT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    policy: str
    epsilon: float
    per_intent: _containers.ScalarMap[str, float]
    reason: str
    def __init__(self, policy: _Optional[str] = ..., epsilon: _Optional[float] = ..., per_intent: _Optional[_Mapping[str, float]] = ..., reason: _Optional[str] = ...) -> None: ...

class SetModeRequest(_message.Message):
    __slots__ = ("policy", "mode", "reason")
    POLICY_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    policy: str
    mode: str
    reason: str
    def __init__(self, policy: _Optional[str] = ..., mode: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class ClearOverridesRequest(_message.Message):
    __slots__ = ("policy", "reason")
    POLICY_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    policy: str
    reason: str
    def __init__(self, policy: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class ReloadConfigRequest(_message.Message):
    __slots__ = ("reason",)
    REASON_FIELD_NUMBER: _ClassVar[int]
    reason: str
    def __init__(self, reason: _Optional[str] = ...) -> None: ...

class ReloadConfigResponse(_message.Message):
    __slots__ = ("applied", "error", "config_versions")
    class ConfigVersionsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    APPLIED_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    CONFIG_VERSIONS_FIELD_NUMBER: _ClassVar[int]
    applied: bool
    error: str
    config_versions: _containers.ScalarMap[str, str]
    def __init__(self, applied: _Optional[bool] = ..., error: _Optional[str] = ..., config_versions: _Optional[_Mapping[str, str]] = ...) -> None: ...

class ListModelsRequest(_message.Message):
    __slots__ = ("policy",)
    POLICY_FIELD_NUMBER: _ClassVar[int]
    policy: str
    def __init__(self, policy: _Optional[str] = ...) -> None: ...

class ModelCheckpoint(_message.Message):
    __slots__ = ("version", "learned", "created_at", "vw_args", "serving")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    LEARNED_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    VW_ARGS_FIELD_NUMBER: _ClassVar[int]
    SERVING_FIELD_NUMBER: _ClassVar[int]
    version: str
    learned: int
    created_at: float
    vw_args: str
    serving: bool
    def __init__(self, version: _Optional[str] = ..., learned: _Optional[int] = ..., created_at: _Optional[float] = ..., vw_args: _Optional[str] = ..., serving: _Optional[bool] = ...) -> None: ...

class ListModelsResponse(_message.Message):
    __slots__ = ("models",)
    MODELS_FIELD_NUMBER: _ClassVar[int]
    models: _containers.RepeatedCompositeFieldContainer[ModelCheckpoint]
    def __init__(self, models: _Optional[_Iterable[_Union[ModelCheckpoint, _Mapping]]] = ...) -> None: ...

class RollbackModelRequest(_message.Message):
    __slots__ = ("policy", "version", "reason")
    POLICY_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    policy: str
    version: str
    reason: str
    def __init__(self, policy: _Optional[str] = ..., version: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...
