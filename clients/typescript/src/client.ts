import { randomUUID } from "node:crypto";
import * as grpc from "@grpc/grpc-js";
import { NextBestError, pyRepr } from "./errors";
import type { ActivateRequest } from "./generated/nextbest/v1/ActivateRequest";
import type { ActivateResponse__Output } from "./generated/nextbest/v1/ActivateResponse";
import type { ActivationStatus__Output } from "./generated/nextbest/v1/ActivationStatus";
import type { DecideRequest as DecideRequestPb } from "./generated/nextbest/v1/DecideRequest";
import type { DecideResponse__Output } from "./generated/nextbest/v1/DecideResponse";
import type { DecisionServiceClient } from "./generated/nextbest/v1/DecisionService";
import type { ExplainRequest } from "./generated/nextbest/v1/ExplainRequest";
import type { ExplainResponse__Output } from "./generated/nextbest/v1/ExplainResponse";
import type { JoinStatus__Output } from "./generated/nextbest/v1/JoinStatus";
import type { RewardRequest as RewardRequestPb } from "./generated/nextbest/v1/RewardRequest";
import type { RewardResponse__Output } from "./generated/nextbest/v1/RewardResponse";
import type { RewardStatus__Output } from "./generated/nextbest/v1/RewardStatus";
import { nextbestV1 } from "./proto";
import { type CallOptions, Caller, type ConnectionOptions, type Unary, connection } from "./rpc";
import { type Context, type ContextValue, fromValueMap, toValueMap } from "./values";

type Unprefixed<S extends string, P extends string> = S extends `${P}${infer Rest}` ? Rest : S;

/** How a reward was taken: joined to its event, a repeated reward id, or after the join closed. */
export type RewardStatus = Unprefixed<RewardStatus__Output, "REWARD_STATUS_">;
/** ACTIVATED, ALREADY_ACTIVE (or decided without defer), LATE (the window had closed). */
export type ActivationStatus = Unprefixed<ActivationStatus__Output, "ACTIVATION_STATUS_">;
/** PENDING (in the reward window), LEARNED, SKIPPED (not learned). */
export type JoinStatus = Unprefixed<JoinStatus__Output, "JOIN_STATUS_">;

/** How to reach the server: token, TLS, deadlines, retries (see {@link ConnectionOptions}). */
export type NextBestOptions = ConnectionOptions;

export type { CallOptions };

/** An action given with the request, scored like a catalog action (e.g. a dynamic tool choice). */
export interface InlineAction {
  id: string;
  features?: Context;
}

export interface DecideRequest {
  /** The decision point, e.g. "support.next_step". */
  policy: string;
  /** What the caller's LLM understood, e.g. "billing_dispute". */
  intent: string;
  /** Features of the situation. */
  context?: Context;
  /** Restrict the decision to these action ids (default: the whole catalog). */
  candidates?: readonly string[];
  /** Action ids that must not be chosen. */
  exclude?: readonly string[];
  /** The caller's own choice: returned in apprentice mode. */
  baseline?: string;
  /** Learn this event only if `activate(eventId)` comes within the reward window. */
  defer?: boolean;
  /** Actions given with this request. */
  actions?: readonly InlineAction[];
  /** The event id; by default a random UUID made before the first attempt. */
  eventId?: string;
}

export interface RankedAction {
  actionId: string;
  /** The probability with which this action would have been drawn. */
  probability: number;
  /** The model's predicted reward (higher is better). */
  score: number;
}

export interface MaskedAction {
  actionId: string;
  reason: string;
  /** The safety rule that masked it; "" for the caller's exclusions and candidates. */
  rule: string;
}

export interface Decision {
  eventId: string;
  /** The action to take. */
  action: string;
  probability: number;
  /** Not the model's greedy choice. */
  explored: boolean;
  /** Every action was masked: this is the policy's fallback action. */
  fallback: boolean;
  ranking: RankedAction[];
  masked: MaskedAction[];
  modelVersion: string;
  configVersion: string;
  epsilon: number;
}

/** A number, or named signals that the policy's reward spec turns into one. */
export type Reward = { value: number; signals?: never } | { signals: Readonly<Record<string, number>>; value?: never };

export interface RewardOptions extends CallOptions {
  /**
   * Idempotency key: a reward repeating it is not applied twice. By default a random UUID, so
   * that a retried call cannot count twice (a retry whose first attempt did arrive answers
   * DUPLICATE).
   */
  rewardId?: string;
}

export interface RewardResult {
  status: RewardStatus;
  /** The value computed from this reward (signals weighted, scaled, clipped). */
  value: number;
}

export interface EligibleAction {
  actionId: string;
  features: Record<string, ContextValue>;
  probability: number;
  score: number;
  /** false: chosen only when it is the greedy choice. */
  explore: boolean;
}

export interface ReceivedReward {
  rewardId: string;
  value: number;
  signals: Record<string, number>;
  status: RewardStatus;
  receivedAt: Date;
}

/** The stored record of one event. */
export interface Explanation {
  eventId: string;
  policy: string;
  intent: string;
  context: Record<string, ContextValue>;
  eligible: EligibleAction[];
  action: string;
  probability: number;
  explored: boolean;
  fallback: boolean;
  masked: MaskedAction[];
  epsilon: number;
  modelVersion: string;
  configVersion: string;
  mode: string;
  baseline: string;
  /** The action the model would have chosen greedily. */
  greedyAction: string;
  defer: boolean;
  activated: boolean;
  rewards: ReceivedReward[];
  joinStatus: JoinStatus;
  /** The aggregated reward the event was (or will be) learned with. */
  joinedReward: number | undefined;
  decidedAt: Date;
  joinDeadline: Date;
  /** The VW example as the model saw it: the shared line, then one line per eligible action. */
  vwExample: string[];
}

const unprefix = <P extends string, S extends string>(prefix: P, value: S): Unprefixed<S, P> =>
  (value.startsWith(prefix) ? value.slice(prefix.length) : value) as Unprefixed<S, P>;

function invalid(field: string, description: string): NextBestError {
  return new NextBestError(grpc.status.INVALID_ARGUMENT, `${field}: ${description}`, {
    field,
    description,
  });
}

function text(value: unknown, field: string): string {
  if (typeof value !== "string") throw invalid(field, `must be a string, got ${typeof value}`);
  return value;
}

function texts(value: unknown, field: string): string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) throw invalid(field, `must be an array of strings`);
  return value.map((item, i) => text(item, `${field}[${i}]`));
}

/**
 * The nextbest client: ask which action to take (`decide`), report how it went (`reward`),
 * activate deferred events (`activate`), read the stored record (`explain`).
 *
 * UNAVAILABLE and DEADLINE_EXCEEDED are retried with backoff. Every call is safe to repeat:
 * `decide` makes its event id before the first attempt (the server returns the stored decision
 * for a repeated id), `reward` sends a reward id, `activate` and `explain` are idempotent.
 */
export class NextBest {
  private readonly stub: DecisionServiceClient;
  private readonly caller: Caller;

  constructor(target: string, options: NextBestOptions = {}) {
    const { credentials, channelOptions, token } = connection(options);
    const Service = nextbestV1().DecisionService;
    this.stub = new Service(target, credentials, channelOptions);
    this.caller = new Caller(token, options);
  }

  /** Pick the next action. Context values: number, string, boolean or string[]; anything else throws. */
  async decide(req: DecideRequest, options: CallOptions = {}): Promise<Decision> {
    const request: DecideRequestPb = {
      policy: text(req.policy, "policy"),
      intent: text(req.intent, "intent"),
      context: toValueMap(req.context, "context"),
      candidateActionIds: texts(req.candidates, "candidate_action_ids"),
      excludedActionIds: texts(req.exclude, "excluded_action_ids"),
      actions: (req.actions ?? []).map((action, i) => ({
        id: text(action?.id, `actions[${i}].id`),
        features: toValueMap(action.features, `actions[${i}].features`),
      })),
      eventId: req.eventId === undefined ? randomUUID() : text(req.eventId, "event_id"),
      baselineActionId: req.baseline === undefined ? "" : text(req.baseline, "baseline_action_id"),
      deferActivation: req.defer ?? false,
    };
    const r = await this.call<DecideRequestPb, DecideResponse__Output>(
      this.stub.Decide.bind(this.stub),
      request,
      options,
    );
    return {
      eventId: r.eventId,
      action: r.actionId,
      probability: r.probability,
      explored: r.explored,
      fallback: r.fallback,
      ranking: r.ranking.map((a) => ({ actionId: a.actionId, probability: a.probability, score: a.score })),
      masked: r.masked.map((m) => ({ actionId: m.actionId, reason: m.reason, rule: m.rule })),
      modelVersion: r.modelVersion,
      configVersion: r.configVersion,
      epsilon: r.epsilon,
    };
  }

  /** Report how a decision went: `{value}` or `{signals}` (named per the policy's reward spec). */
  async reward(eventId: string, reward: Reward, options: RewardOptions = {}): Promise<RewardResult> {
    const request: RewardRequestPb = {
      eventId: text(eventId, "event_id"),
      rewardId: options.rewardId === undefined ? randomUUID() : text(options.rewardId, "reward_id"),
    };
    const { value, signals } = (reward ?? {}) as { value?: unknown; signals?: unknown };
    if (value !== undefined && signals !== undefined) {
      throw invalid("signals", "give either value or signals, not both");
    } else if (value !== undefined) {
      if (typeof value !== "number") throw invalid("value", `must be a number, got ${typeof value}`);
      request.value = value;
    } else if (signals !== undefined) {
      if (typeof signals !== "object" || signals === null || Array.isArray(signals)) {
        throw invalid("signals", "must be an object of numbers");
      }
      request.signals = {};
      for (const [name, v] of Object.entries(signals)) {
        if (typeof v !== "number") throw invalid(`signals[${pyRepr(name)}]`, `must be a number, got ${typeof v}`);
        request.signals[name] = v;
      }
    } else {
      throw invalid("value", "give either value or signals");
    }
    const r = await this.call<RewardRequestPb, RewardResponse__Output>(
      this.stub.Reward.bind(this.stub),
      request,
      options,
    );
    return { status: unprefix("REWARD_STATUS_", r.status), value: r.value };
  }

  /** Activate an event decided with `defer: true`, so that it is learned. */
  async activate(eventId: string, options: CallOptions = {}): Promise<ActivationStatus> {
    const r = await this.call<ActivateRequest, ActivateResponse__Output>(
      this.stub.Activate.bind(this.stub),
      { eventId: text(eventId, "event_id") },
      options,
    );
    return unprefix("ACTIVATION_STATUS_", r.status);
  }

  /** The stored record of one event: what was seen, masked, scored, chosen, rewarded, learned. */
  async explain(eventId: string, options: CallOptions = {}): Promise<Explanation> {
    const r = await this.call<ExplainRequest, ExplainResponse__Output>(
      this.stub.Explain.bind(this.stub),
      { eventId: text(eventId, "event_id") },
      options,
    );
    return {
      eventId: r.eventId,
      policy: r.policy,
      intent: r.intent,
      context: fromValueMap(r.context),
      eligible: r.eligible.map((a) => ({
        actionId: a.actionId,
        features: fromValueMap(a.features),
        probability: a.probability,
        score: a.score,
        explore: a.explore,
      })),
      action: r.actionId,
      probability: r.probability,
      explored: r.explored,
      fallback: r.fallback,
      masked: r.masked.map((m) => ({ actionId: m.actionId, reason: m.reason, rule: m.rule })),
      epsilon: r.epsilon,
      modelVersion: r.modelVersion,
      configVersion: r.configVersion,
      mode: r.mode,
      baseline: r.baselineActionId,
      greedyAction: r.greedyActionId,
      defer: r.deferActivation,
      activated: r.activated,
      rewards: r.rewards.map((w) => ({
        rewardId: w.rewardId,
        value: w.value,
        signals: { ...w.signals },
        status: unprefix("REWARD_STATUS_", w.status),
        receivedAt: new Date(w.receivedAt * 1000),
      })),
      joinStatus: unprefix("JOIN_STATUS_", r.joinStatus),
      joinedReward: r.joinedReward,
      decidedAt: new Date(r.decidedAt * 1000),
      joinDeadline: new Date(r.joinDeadline * 1000),
      vwExample: r.vwExample,
    };
  }

  /** Close the channel; calls after this fail. */
  close(): void {
    this.stub.close();
  }

  private call<Req, Res>(method: Unary<Req, Res>, request: Req, options: CallOptions): Promise<Res> {
    return this.caller.call(method, request, options);
  }
}
