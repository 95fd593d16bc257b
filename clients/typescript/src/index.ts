export {
  NextBest,
  type ActivationStatus,
  type CallOptions,
  type Decision,
  type DecideRequest,
  type EligibleAction,
  type Explanation,
  type InlineAction,
  type JoinStatus,
  type MaskedAction,
  type NextBestOptions,
  type RankedAction,
  type ReceivedReward,
  type Reward,
  type RewardOptions,
  type RewardResult,
  type RewardStatus,
} from "./client";
export { NextBestError, type StatusName } from "./errors";
export type { Context, ContextValue } from "./values";
