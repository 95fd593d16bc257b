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
export {
  AdminClient,
  type ExplorationChange,
  type ExplorationSettings,
  type ModelCheckpoint,
  type Override,
  type PolicyCounters,
  type PolicyStatus,
  type ReloadResult,
} from "./admin";
export { NextBestError, type StatusName } from "./errors";
export { type ConnectionOptions, type Pem, type TlsOptions, tlsFromEnv } from "./rpc";
export type { Context, ContextValue } from "./values";
