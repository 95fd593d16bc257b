"""The JSON shapes of Azure Personalizer's REST API, as it documented them.

One set of models parses the requests and describes them in ``/openapi.json``, so the document
cannot drift from what the server accepts and answers. Unknown fields are ignored (an SDK may
send fields a newer API version added); known ones are strictly typed (``"true"`` is not a
boolean, ``"1"`` not a number).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

MAX_ACTIONS = 50  # Personalizer's limit per Rank
MAX_ACTION_ID_LENGTH = 256  # Personalizer's limit on an action id

Features = list[dict[str, Any]]
LearningMode = Literal["Online", "Apprentice", "LoggingOnly", "Frozen"]


class _Request(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)


class _Response(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RankableAction(_Request):
    """An action to rank: its id and its features."""

    id: str = Field(min_length=1, max_length=MAX_ACTION_ID_LENGTH, description="Id of the action.")
    features: Features = Field(
        default_factory=list,
        description=(
            "Features of the action: a list of objects, flattened like contextFeatures. "
            "Ignored for an action of the policy's catalog (its catalog features are used)."
        ),
    )


class RankRequest(_Request):
    """A Rank request: a context and the actions to choose from."""

    contextFeatures: Features | None = Field(
        None,
        description=(
            "Features of the context: a list of objects. Nested objects are flattened into "
            'dotted names ({"user": {"age": 3}} is the feature user.age); numbers stay numbers, '
            "strings are one-hot, booleans flags, lists of strings multi-hot. Anything else "
            "(null, a list of numbers) is refused naming its path."
        ),
    )
    actions: list[RankableAction] = Field(
        min_length=1, max_length=MAX_ACTIONS, description="The actions to rank."
    )
    excludedActions: list[str] | None = Field(
        None,
        description=(
            "Ids of actions (among `actions`) that must not be chosen. The first action not "
            "excluded is the baseline (apprentice mode, offline evaluation)."
        ),
    )
    eventId: str | None = Field(
        None,
        description=(
            "Identifies this event for its reward and activation; generated when absent. A "
            "retry of the same request with the same id gets the same answer; another request "
            "with a used id is refused (409)."
        ),
    )
    deferActivation: bool | None = Field(
        None,
        description=(
            "True: the event is learned only if it is activated (POST …/activate) before the "
            "reward wait time ends."
        ),
    )


class RankedAction(_Response):
    id: str = Field(description="Id of the action.")
    probability: float = Field(ge=0.0, le=1.0, description="Probability of the action.")


class RankResponse(_Response):
    """The ranking of the request's actions, and the one to use (rewardActionId)."""

    ranking: list[RankedAction] = Field(
        description=(
            "Every action of the request: the eligible ones by decreasing probability, then "
            "the excluded and safety-masked ones with probability 0."
        )
    )
    eventId: str = Field(description="The event id, for the reward and the activation.")
    rewardActionId: str = Field(
        description="The action to use, and to reward; not always the first of the ranking."
    )


class RewardRequest(_Request):
    """A reward for an event's chosen action."""

    value: float = Field(
        description="The reward; clipped to the policy's reward.clip (default [-1, 1])."
    )


class ServiceConfiguration(_Request):
    """Personalizer's service configuration. nextbest reports every field; a PUT may change
    explorationPercentage and learningMode (live overrides, audited). rewardWaitTime,
    defaultReward and rewardAggregation are the policy file's reward settings: a PUT that
    changes them is refused (400). The other fields have no nextbest counterpart and are
    ignored by a PUT. Every field of a PUT is optional: an absent one is left as it is."""

    rewardWaitTime: str | None = Field(
        None,
        description="ISO 8601 duration (PT10M): the policy's reward.wait. Read-only here.",
    )
    defaultReward: float | None = Field(
        None, description="The policy's reward.default. Read-only here."
    )
    rewardAggregation: str | None = Field(
        None,
        description=(
            "earliest or average (nextbest also has sum and last): the policy's "
            "reward.aggregation. Read-only here."
        ),
    )
    explorationPercentage: float | None = Field(
        None,
        description=(
            "The ε in force, from 0 to 1 (0.2 = 20 %); at most the policy's max_epsilon. "
            "A PUT sets it as a live override, as `nextbest admin set-exploration` does."
        ),
    )
    learningMode: LearningMode | None = Field(
        None,
        description=(
            "Online, Apprentice or LoggingOnly (nextbest also has Frozen: exploit, no "
            "learning). A PUT sets it as a live override, as `nextbest admin set-mode` does."
        ),
    )
    modelExportFrequency: str | None = Field(
        None, description="PT0S: nextbest learns online; every rank uses the newest model."
    )
    logRetentionDays: int | None = Field(
        None, description="Days the decision log is kept (the data dir's retention)."
    )
    modelRetrainDays: int | None = Field(None, description="0: not applicable.")
    lastConfigurationEditDate: str | None = Field(
        None, description="When a live override was last set (ISO 8601, UTC), if any."
    )
    isAutoOptimizationEnabled: bool | None = Field(None, description="false: not applicable.")
    autoOptimizationFrequency: str | None = Field(None, description="Not applicable.")
    autoOptimizationStartDate: str | None = Field(None, description="Not applicable.")
    logMirrorEnabled: bool | None = Field(None, description="Not applicable.")
    logMirrorSasUri: str | None = Field(None, description="Not applicable.")
    latestApprenticeModeMetrics: dict[str, Any] | None = Field(
        None, description="Not reported (see nextbest_apprentice_decisions_total)."
    )


class ServiceConfigurationView(_Response):
    """What GET (and PUT) …/configurations/service answer."""

    rewardWaitTime: str
    defaultReward: float
    rewardAggregation: str
    explorationPercentage: float = Field(ge=0.0, le=1.0)
    learningMode: LearningMode
    modelExportFrequency: str
    logRetentionDays: int
    modelRetrainDays: int
    isAutoOptimizationEnabled: bool
    lastConfigurationEditDate: str | None = None


class PolicyContract(_Response):
    """The learning settings: the policy's VW arguments."""

    name: str = Field(description="The policy.")
    arguments: str = Field(description="The policy's vw_args.")


class ErrorBody(_Response):
    code: str = Field(
        description=(
            "BadRequest (400), Unauthorized (401), Forbidden (403), ResourceNotFound (404), "
            "MethodNotAllowed (405), Conflict (409), PayloadTooLarge (413), "
            "TooManyRequests (429), InternalServerError (500), ServiceUnavailable (503)."
        )
    )
    message: str = Field(description="What is wrong; a field at fault is named first.")


class ErrorResponse(_Response):
    """Personalizer's error shape."""

    error: ErrorBody
