import type { AdminServiceClient } from "./generated/nextbest/v1/AdminService";
import type { ExplorationSettings__Output } from "./generated/nextbest/v1/ExplorationSettings";
import type { ListModelsResponse__Output } from "./generated/nextbest/v1/ListModelsResponse";
import type { ListPoliciesResponse__Output } from "./generated/nextbest/v1/ListPoliciesResponse";
import type { PolicyStatus__Output } from "./generated/nextbest/v1/PolicyStatus";
import type { ReloadConfigResponse__Output } from "./generated/nextbest/v1/ReloadConfigResponse";
import type { SetExplorationRequest } from "./generated/nextbest/v1/SetExplorationRequest";
import { nextbestV1 } from "./proto";
import { type CallOptions, Caller, type ConnectionOptions, type Unary, connection } from "./rpc";

export interface ExplorationSettings {
  epsilon: number;
  maxEpsilon: number;
  perIntent: Record<string, number>;
  /** "epsilon_greedy" or "squarecb". */
  algorithm: string;
}

/** One live override over the policy file, with who set it, when and why. */
export interface Override {
  /** "exploration.epsilon", "exploration.per_intent.<intent>" or "mode". */
  setting: string;
  /** As text: "0.05", "frozen". */
  value: string;
  /** The file's value under it ("" when the file has none). */
  fileValue: string;
  /** The caller: token name, client certificate subject, or "anonymous". */
  setBy: string;
  setAt: Date;
  reason: string;
}

export interface PolicyCounters {
  decisions: number;
  explored: number;
  fallbacks: number;
  /** By status: accepted, duplicate, late. */
  rewards: Record<string, number>;
}

/** A policy as it runs: settings in force, the file's under them, overrides, versions, counters. */
export interface PolicyStatus {
  policy: string;
  configVersion: string;
  modelVersion: string;
  learned: number;
  pending: number;
  /** In force: the file with the overrides on top. */
  exploration: ExplorationSettings;
  mode: string;
  fileExploration: ExplorationSettings;
  fileMode: string;
  overrides: Override[];
  /** Since the server process started. */
  counters: PolicyCounters;
  vwArgs: string;
}

export interface ReloadResult {
  applied: boolean;
  /** Why not, when not applied. */
  error: string;
  /** Policy → config_version in force. */
  configVersions: Record<string, string>;
}

export interface ModelCheckpoint {
  /** The model_version decisions report. */
  version: string;
  learned: number;
  createdAt: Date;
  vwArgs: string;
  /** The model serving now is this checkpoint with nothing learned since. */
  serving: boolean;
}

export interface ExplorationChange {
  /** The new ε; omitted: keep the current one. */
  epsilon?: number;
  /** Intent → ε, merged over the current per-intent values. */
  perIntent?: Readonly<Record<string, number>>;
  reason?: string;
}

function exploration(e: ExplorationSettings__Output | null): ExplorationSettings {
  return {
    epsilon: e?.epsilon ?? 0,
    maxEpsilon: e?.maxEpsilon ?? 0,
    perIntent: { ...e?.perIntent },
    algorithm: e?.algorithm ?? "",
  };
}

function policyStatus(p: PolicyStatus__Output): PolicyStatus {
  return {
    policy: p.policy,
    configVersion: p.configVersion,
    modelVersion: p.modelVersion,
    learned: Number(p.learned),
    pending: Number(p.pending),
    exploration: exploration(p.exploration),
    mode: p.mode,
    fileExploration: exploration(p.fileExploration),
    fileMode: p.fileMode,
    overrides: p.overrides.map((o) => ({
      setting: o.setting,
      value: o.value,
      fileValue: o.fileValue,
      setBy: o.setBy,
      setAt: new Date(o.setAt * 1000),
      reason: o.reason,
    })),
    counters: {
      decisions: Number(p.counters?.decisions ?? 0),
      explored: Number(p.counters?.explored ?? 0),
      fallbacks: Number(p.counters?.fallbacks ?? 0),
      rewards: Object.fromEntries(Object.entries(p.counters?.rewards ?? {}).map(([k, v]) => [k, Number(v)])),
    },
    vwArgs: p.vwArgs,
  };
}

/**
 * The operators' client for `nextbest.v1.AdminService`: live exploration and mode overrides,
 * reloads, model history and rollbacks. Changes need a token with the `admin` scope;
 * `listPolicies`, `getPolicy` and `listModels` need `read`.
 *
 * Reads are retried like the decision client's calls; changes are sent once, so that one
 * request is never applied (and audited) twice: after an error, read the policy to see.
 */
export class AdminClient {
  private readonly stub: AdminServiceClient;
  private readonly caller: Caller;

  constructor(target: string, options: ConnectionOptions = {}) {
    const { credentials, channelOptions, token } = connection(options);
    const Service = nextbestV1().AdminService;
    this.stub = new Service(target, credentials, channelOptions);
    this.caller = new Caller(token, options);
  }

  /** Every policy, as `getPolicy` shows it. */
  async listPolicies(options: CallOptions = {}): Promise<PolicyStatus[]> {
    const r = await this.read<object, ListPoliciesResponse__Output>(this.stub.ListPolicies, {}, options);
    return r.policies.map(policyStatus);
  }

  async getPolicy(policy: string, options: CallOptions = {}): Promise<PolicyStatus> {
    return policyStatus(await this.read(this.stub.GetPolicy, { policy }, options));
  }

  /** Override ε and/or per-intent ε live (never above the policy's max_epsilon). */
  async setExploration(policy: string, change: ExplorationChange, options: CallOptions = {}): Promise<PolicyStatus> {
    const request: SetExplorationRequest = { policy, reason: change.reason ?? "", perIntent: { ...change.perIntent } };
    if (change.epsilon !== undefined) request.epsilon = change.epsilon;
    return policyStatus(await this.change(this.stub.SetExploration, request, options));
  }

  /** Override the learning mode: "online", "apprentice", "frozen" or "logging_only". */
  async setMode(policy: string, mode: string, reason = "", options: CallOptions = {}): Promise<PolicyStatus> {
    return policyStatus(await this.change(this.stub.SetMode, { policy, mode, reason }, options));
  }

  /** Drop every live override: the file's settings apply again. */
  async clearOverrides(policy: string, reason = "", options: CallOptions = {}): Promise<PolicyStatus> {
    return policyStatus(await this.change(this.stub.ClearOverrides, { policy, reason }, options));
  }

  /** Re-read the policy file, as SIGHUP does. */
  async reloadConfig(reason = "", options: CallOptions = {}): Promise<ReloadResult> {
    const r = await this.change<object, ReloadConfigResponse__Output>(this.stub.ReloadConfig, { reason }, options);
    return { applied: r.applied, error: r.error, configVersions: { ...r.configVersions } };
  }

  /** The policy's model checkpoints, newest first. */
  async listModels(policy: string, options: CallOptions = {}): Promise<ModelCheckpoint[]> {
    const r = await this.read<object, ListModelsResponse__Output>(this.stub.ListModels, { policy }, options);
    return r.models.map((m) => ({
      version: m.version,
      learned: Number(m.learned),
      createdAt: new Date(m.createdAt * 1000),
      vwArgs: m.vwArgs,
      serving: m.serving,
    }));
  }

  /** Serve the checkpoint `version` from now on (and after a restart). */
  async rollbackModel(policy: string, version: string, reason = "", options: CallOptions = {}): Promise<PolicyStatus> {
    return policyStatus(await this.change(this.stub.RollbackModel, { policy, version, reason }, options));
  }

  /** Close the channel; calls after this fail. */
  close(): void {
    this.stub.close();
  }

  private read<Req, Res>(method: Unary<Req, Res>, request: Req, options: CallOptions): Promise<Res> {
    return this.caller.call(method.bind(this.stub) as Unary<Req, Res>, request, options);
  }

  private change<Req, Res>(method: Unary<Req, Res>, request: Req, options: CallOptions): Promise<Res> {
    return this.caller.call(method.bind(this.stub) as Unary<Req, Res>, request, options, false);
  }
}
