from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RewardStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    REWARD_STATUS_UNSPECIFIED: _ClassVar[RewardStatus]
    REWARD_STATUS_ACCEPTED: _ClassVar[RewardStatus]
    REWARD_STATUS_DUPLICATE: _ClassVar[RewardStatus]
    REWARD_STATUS_LATE: _ClassVar[RewardStatus]
    REWARD_STATUS_QUEUED: _ClassVar[RewardStatus]

class ActivationStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ACTIVATION_STATUS_UNSPECIFIED: _ClassVar[ActivationStatus]
    ACTIVATION_STATUS_ACTIVATED: _ClassVar[ActivationStatus]
    ACTIVATION_STATUS_ALREADY_ACTIVE: _ClassVar[ActivationStatus]
    ACTIVATION_STATUS_LATE: _ClassVar[ActivationStatus]

class JoinStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    JOIN_STATUS_UNSPECIFIED: _ClassVar[JoinStatus]
    JOIN_STATUS_PENDING: _ClassVar[JoinStatus]
    JOIN_STATUS_LEARNED: _ClassVar[JoinStatus]
    JOIN_STATUS_SKIPPED: _ClassVar[JoinStatus]
REWARD_STATUS_UNSPECIFIED: RewardStatus
REWARD_STATUS_ACCEPTED: RewardStatus
REWARD_STATUS_DUPLICATE: RewardStatus
REWARD_STATUS_LATE: RewardStatus
REWARD_STATUS_QUEUED: RewardStatus
ACTIVATION_STATUS_UNSPECIFIED: ActivationStatus
ACTIVATION_STATUS_ACTIVATED: ActivationStatus
ACTIVATION_STATUS_ALREADY_ACTIVE: ActivationStatus
ACTIVATION_STATUS_LATE: ActivationStatus
JOIN_STATUS_UNSPECIFIED: JoinStatus
JOIN_STATUS_PENDING: JoinStatus
JOIN_STATUS_LEARNED: JoinStatus
JOIN_STATUS_SKIPPED: JoinStatus

class Value(_message.Message):
    __slots__ = ("number", "text", "flag", "texts")
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    FLAG_FIELD_NUMBER: _ClassVar[int]
    TEXTS_FIELD_NUMBER: _ClassVar[int]
    number: float
    text: str
    flag: bool
    texts: TextList
    def __init__(self, number: _Optional[float] = ..., text: _Optional[str] = ..., flag: _Optional[bool] = ..., texts: _Optional[_Union[TextList, _Mapping]] = ...) -> None: ...

class TextList(_message.Message):
    __slots__ = ("values",)
    VALUES_FIELD_NUMBER: _ClassVar[int]
    values: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, values: _Optional[_Iterable[str]] = ...) -> None: ...

class Action(_message.Message):
    __slots__ = ("id", "features")
    class FeaturesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: Value
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[Value, _Mapping]] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    FEATURES_FIELD_NUMBER: _ClassVar[int]
    id: str
    features: _containers.MessageMap[str, Value]
    def __init__(self, id: _Optional[str] = ..., features: _Optional[_Mapping[str, Value]] = ...) -> None: ...

class DecideRequest(_message.Message):
    __slots__ = ("policy", "intent", "context", "candidate_action_ids", "actions", "excluded_action_ids", "event_id", "baseline_action_id", "defer_activation")
    class ContextEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: Value
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[Value, _Mapping]] = ...) -> None: ...
    POLICY_FIELD_NUMBER: _ClassVar[int]
    INTENT_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    CANDIDATE_ACTION_IDS_FIELD_NUMBER: _ClassVar[int]
    ACTIONS_FIELD_NUMBER: _ClassVar[int]
    EXCLUDED_ACTION_IDS_FIELD_NUMBER: _ClassVar[int]
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    BASELINE_ACTION_ID_FIELD_NUMBER: _ClassVar[int]
    DEFER_ACTIVATION_FIELD_NUMBER: _ClassVar[int]
    policy: str
    intent: str
    context: _containers.MessageMap[str, Value]
    candidate_action_ids: _containers.RepeatedScalarFieldContainer[str]
    actions: _containers.RepeatedCompositeFieldContainer[Action]
    excluded_action_ids: _containers.RepeatedScalarFieldContainer[str]
    event_id: str
    baseline_action_id: str
    defer_activation: bool
    def __init__(self, policy: _Optional[str] = ..., intent: _Optional[str] = ..., context: _Optional[_Mapping[str, Value]] = ..., candidate_action_ids: _Optional[_Iterable[str]] = ..., actions: _Optional[_Iterable[_Union[Action, _Mapping]]] = ..., excluded_action_ids: _Optional[_Iterable[str]] = ..., event_id: _Optional[str] = ..., baseline_action_id: _Optional[str] = ..., defer_activation: _Optional[bool] = ...) -> None: ...

class RankedAction(_message.Message):
    __slots__ = ("action_id", "probability", "score")
    ACTION_ID_FIELD_NUMBER: _ClassVar[int]
    PROBABILITY_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    action_id: str
    probability: float
    score: float
    def __init__(self, action_id: _Optional[str] = ..., probability: _Optional[float] = ..., score: _Optional[float] = ...) -> None: ...

class MaskedAction(_message.Message):
    __slots__ = ("action_id", "reason", "rule")
    ACTION_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    RULE_FIELD_NUMBER: _ClassVar[int]
    action_id: str
    reason: str
    rule: str
    def __init__(self, action_id: _Optional[str] = ..., reason: _Optional[str] = ..., rule: _Optional[str] = ...) -> None: ...

class DecideResponse(_message.Message):
    __slots__ = ("event_id", "action_id", "probability", "explored", "fallback", "ranking", "masked", "model_version", "config_version", "epsilon")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    ACTION_ID_FIELD_NUMBER: _ClassVar[int]
    PROBABILITY_FIELD_NUMBER: _ClassVar[int]
    EXPLORED_FIELD_NUMBER: _ClassVar[int]
    FALLBACK_FIELD_NUMBER: _ClassVar[int]
    RANKING_FIELD_NUMBER: _ClassVar[int]
    MASKED_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    CONFIG_VERSION_FIELD_NUMBER: _ClassVar[int]
    EPSILON_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    action_id: str
    probability: float
    explored: bool
    fallback: bool
    ranking: _containers.RepeatedCompositeFieldContainer[RankedAction]
    masked: _containers.RepeatedCompositeFieldContainer[MaskedAction]
    model_version: str
    config_version: str
    epsilon: float
    def __init__(self, event_id: _Optional[str] = ..., action_id: _Optional[str] = ..., probability: _Optional[float] = ..., explored: _Optional[bool] = ..., fallback: _Optional[bool] = ..., ranking: _Optional[_Iterable[_Union[RankedAction, _Mapping]]] = ..., masked: _Optional[_Iterable[_Union[MaskedAction, _Mapping]]] = ..., model_version: _Optional[str] = ..., config_version: _Optional[str] = ..., epsilon: _Optional[float] = ...) -> None: ...

class DecideBatchRequest(_message.Message):
    __slots__ = ("requests",)
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    requests: _containers.RepeatedCompositeFieldContainer[DecideRequest]
    def __init__(self, requests: _Optional[_Iterable[_Union[DecideRequest, _Mapping]]] = ...) -> None: ...

class DecideError(_message.Message):
    __slots__ = ("code", "message", "field")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    FIELD_FIELD_NUMBER: _ClassVar[int]
    code: int
    message: str
    field: str
    def __init__(self, code: _Optional[int] = ..., message: _Optional[str] = ..., field: _Optional[str] = ...) -> None: ...

class DecideBatchResult(_message.Message):
    __slots__ = ("decision", "error")
    DECISION_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    decision: DecideResponse
    error: DecideError
    def __init__(self, decision: _Optional[_Union[DecideResponse, _Mapping]] = ..., error: _Optional[_Union[DecideError, _Mapping]] = ...) -> None: ...

class DecideBatchResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[DecideBatchResult]
    def __init__(self, results: _Optional[_Iterable[_Union[DecideBatchResult, _Mapping]]] = ...) -> None: ...

class RewardRequest(_message.Message):
    __slots__ = ("event_id", "value", "signals", "reward_id")
    class SignalsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    SIGNALS_FIELD_NUMBER: _ClassVar[int]
    REWARD_ID_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    value: float
    signals: _containers.ScalarMap[str, float]
    reward_id: str
    def __init__(self, event_id: _Optional[str] = ..., value: _Optional[float] = ..., signals: _Optional[_Mapping[str, float]] = ..., reward_id: _Optional[str] = ...) -> None: ...

class RewardResponse(_message.Message):
    __slots__ = ("status", "value")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    status: RewardStatus
    value: float
    def __init__(self, status: _Optional[_Union[RewardStatus, str]] = ..., value: _Optional[float] = ...) -> None: ...

class ActivateRequest(_message.Message):
    __slots__ = ("event_id",)
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    def __init__(self, event_id: _Optional[str] = ...) -> None: ...

class ActivateResponse(_message.Message):
    __slots__ = ("status",)
    STATUS_FIELD_NUMBER: _ClassVar[int]
    status: ActivationStatus
    def __init__(self, status: _Optional[_Union[ActivationStatus, str]] = ...) -> None: ...

class ExplainRequest(_message.Message):
    __slots__ = ("event_id",)
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    def __init__(self, event_id: _Optional[str] = ...) -> None: ...

class EligibleAction(_message.Message):
    __slots__ = ("action_id", "features", "probability", "score", "explore")
    class FeaturesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: Value
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[Value, _Mapping]] = ...) -> None: ...
    ACTION_ID_FIELD_NUMBER: _ClassVar[int]
    FEATURES_FIELD_NUMBER: _ClassVar[int]
    PROBABILITY_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    EXPLORE_FIELD_NUMBER: _ClassVar[int]
    action_id: str
    features: _containers.MessageMap[str, Value]
    probability: float
    score: float
    explore: bool
    def __init__(self, action_id: _Optional[str] = ..., features: _Optional[_Mapping[str, Value]] = ..., probability: _Optional[float] = ..., score: _Optional[float] = ..., explore: _Optional[bool] = ...) -> None: ...

class ReceivedReward(_message.Message):
    __slots__ = ("reward_id", "value", "signals", "status", "received_at")
    class SignalsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    REWARD_ID_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    SIGNALS_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    RECEIVED_AT_FIELD_NUMBER: _ClassVar[int]
    reward_id: str
    value: float
    signals: _containers.ScalarMap[str, float]
    status: RewardStatus
    received_at: float
    def __init__(self, reward_id: _Optional[str] = ..., value: _Optional[float] = ..., signals: _Optional[_Mapping[str, float]] = ..., status: _Optional[_Union[RewardStatus, str]] = ..., received_at: _Optional[float] = ...) -> None: ...

class ExplainResponse(_message.Message):
    __slots__ = ("event_id", "policy", "intent", "context", "eligible", "action_id", "probability", "explored", "fallback", "masked", "epsilon", "model_version", "config_version", "mode", "baseline_action_id", "greedy_action_id", "defer_activation", "activated", "rewards", "join_status", "joined_reward", "decided_at", "join_deadline", "vw_example")
    class ContextEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: Value
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[Value, _Mapping]] = ...) -> None: ...
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    INTENT_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    ELIGIBLE_FIELD_NUMBER: _ClassVar[int]
    ACTION_ID_FIELD_NUMBER: _ClassVar[int]
    PROBABILITY_FIELD_NUMBER: _ClassVar[int]
    EXPLORED_FIELD_NUMBER: _ClassVar[int]
    FALLBACK_FIELD_NUMBER: _ClassVar[int]
    MASKED_FIELD_NUMBER: _ClassVar[int]
    EPSILON_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    CONFIG_VERSION_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    BASELINE_ACTION_ID_FIELD_NUMBER: _ClassVar[int]
    GREEDY_ACTION_ID_FIELD_NUMBER: _ClassVar[int]
    DEFER_ACTIVATION_FIELD_NUMBER: _ClassVar[int]
    ACTIVATED_FIELD_NUMBER: _ClassVar[int]
    REWARDS_FIELD_NUMBER: _ClassVar[int]
    JOIN_STATUS_FIELD_NUMBER: _ClassVar[int]
    JOINED_REWARD_FIELD_NUMBER: _ClassVar[int]
    DECIDED_AT_FIELD_NUMBER: _ClassVar[int]
    JOIN_DEADLINE_FIELD_NUMBER: _ClassVar[int]
    VW_EXAMPLE_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    policy: str
    intent: str
    context: _containers.MessageMap[str, Value]
    eligible: _containers.RepeatedCompositeFieldContainer[EligibleAction]
    action_id: str
    probability: float
    explored: bool
    fallback: bool
    masked: _containers.RepeatedCompositeFieldContainer[MaskedAction]
    epsilon: float
    model_version: str
    config_version: str
    mode: str
    baseline_action_id: str
    greedy_action_id: str
    defer_activation: bool
    activated: bool
    rewards: _containers.RepeatedCompositeFieldContainer[ReceivedReward]
    join_status: JoinStatus
    joined_reward: float
    decided_at: float
    join_deadline: float
    vw_example: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, event_id: _Optional[str] = ..., policy: _Optional[str] = ..., intent: _Optional[str] = ..., context: _Optional[_Mapping[str, Value]] = ..., eligible: _Optional[_Iterable[_Union[EligibleAction, _Mapping]]] = ..., action_id: _Optional[str] = ..., probability: _Optional[float] = ..., explored: _Optional[bool] = ..., fallback: _Optional[bool] = ..., masked: _Optional[_Iterable[_Union[MaskedAction, _Mapping]]] = ..., epsilon: _Optional[float] = ..., model_version: _Optional[str] = ..., config_version: _Optional[str] = ..., mode: _Optional[str] = ..., baseline_action_id: _Optional[str] = ..., greedy_action_id: _Optional[str] = ..., defer_activation: _Optional[bool] = ..., activated: _Optional[bool] = ..., rewards: _Optional[_Iterable[_Union[ReceivedReward, _Mapping]]] = ..., join_status: _Optional[_Union[JoinStatus, str]] = ..., joined_reward: _Optional[float] = ..., decided_at: _Optional[float] = ..., join_deadline: _Optional[float] = ..., vw_example: _Optional[_Iterable[str]] = ...) -> None: ...
