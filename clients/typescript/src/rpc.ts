/**
 * What the decision and admin clients share: credentials (token, TLS, mTLS, also from the
 * environment) and one unary call with deadlines, cancellation and retries.
 */
import { readFileSync } from "node:fs";
import * as grpc from "@grpc/grpc-js";
import { NextBestError, isServiceError } from "./errors";

/** A PEM file's path, or its contents (a Buffer, or a string starting with `-----BEGIN`). */
export type Pem = string | Buffer;

export interface TlsOptions {
  /** The CA that signed the server's certificate. Default: the system's roots. */
  ca?: Pem;
  /** The client's certificate chain, for mTLS (with `key`). */
  cert?: Pem;
  /** The client's private key, for mTLS (with `cert`). */
  key?: Pem;
  /** The name checked against the server's certificate, when the target's is another (an IP). */
  serverName?: string;
}

export interface ConnectionOptions {
  /** Sent as `authorization: Bearer <token>` with every call. Default: `NEXTBEST_TOKEN`; `""` sends none. */
  token?: string;
  /**
   * `true`: TLS with the system's roots; `false`: plaintext; `{ca, cert, key, serverName}`: TLS
   * (mTLS with cert and key); or grpc-js credentials. Default: from `NEXTBEST_TLS_CA`,
   * `NEXTBEST_TLS_CERT`, `NEXTBEST_TLS_KEY` (file paths), plaintext when none is set.
   */
  tls?: boolean | TlsOptions | grpc.ChannelCredentials;
  /** Deadline of each attempt, in ms. Default 5000. */
  timeoutMs?: number;
  /** Attempts per call when the server is UNAVAILABLE or the deadline passes; 1 disables retries. Default 3. */
  maxAttempts?: number;
  /** Wait before the second attempt, in ms; doubled for each further one (with jitter). Default 100. */
  initialBackoffMs?: number;
  /** Upper bound of the wait between attempts, in ms. Default 2000. */
  maxBackoffMs?: number;
  /** Extra grpc-js channel options. */
  channelOptions?: grpc.ChannelOptions;
}

/** Options of one call. */
export interface CallOptions {
  /** Overrides the client's per-attempt deadline. */
  timeoutMs?: number;
  /** Cancels the call (and its retries); it then rejects with code CANCELLED. */
  signal?: AbortSignal;
}

/** TLS settings from `NEXTBEST_TLS_CA`, `NEXTBEST_TLS_CERT` and `NEXTBEST_TLS_KEY`; undefined when none is set. */
export function tlsFromEnv(env: NodeJS.ProcessEnv = process.env): TlsOptions | undefined {
  const ca = env.NEXTBEST_TLS_CA || undefined;
  const cert = env.NEXTBEST_TLS_CERT || undefined;
  const key = env.NEXTBEST_TLS_KEY || undefined;
  if (ca === undefined && cert === undefined && key === undefined) return undefined;
  return { ...(ca && { ca }), ...(cert && { cert }), ...(key && { key }) };
}

function pem(value: Pem | undefined, name: string): Buffer | null {
  if (value === undefined) return null;
  if (Buffer.isBuffer(value)) return value;
  if (value.trimStart().startsWith("-----BEGIN")) return Buffer.from(value);
  try {
    return readFileSync(value);
  } catch (err) {
    throw new Error(`tls.${name}: cannot read ${value}: ${(err as Error).message}`, { cause: err });
  }
}

export interface Channel {
  credentials: grpc.ChannelCredentials;
  channelOptions: grpc.ChannelOptions;
  token: string | undefined;
}

/** The channel's credentials and options, and the token, from the options and the environment. */
export function connection(options: ConnectionOptions): Channel {
  const token = options.token === undefined ? process.env.NEXTBEST_TOKEN || undefined : options.token || undefined;
  const tls = options.tls ?? tlsFromEnv() ?? false;
  const channelOptions: grpc.ChannelOptions = { ...options.channelOptions };
  let credentials: grpc.ChannelCredentials;
  if (tls === true) credentials = grpc.credentials.createSsl();
  else if (tls === false) credentials = grpc.credentials.createInsecure();
  else if (tls instanceof grpc.ChannelCredentials) credentials = tls;
  else {
    if ((tls.cert === undefined) !== (tls.key === undefined)) {
      throw new Error("tls: cert and key go together (both, or neither)");
    }
    credentials = grpc.credentials.createSsl(pem(tls.ca, "ca"), pem(tls.key, "key"), pem(tls.cert, "cert"));
    if (tls.serverName) channelOptions["grpc.ssl_target_name_override"] = tls.serverName;
  }
  return { credentials, channelOptions, token };
}

const RETRYABLE = new Set<grpc.status>([grpc.status.UNAVAILABLE, grpc.status.DEADLINE_EXCEEDED]);

export type Unary<Req, Res> = (
  request: Req,
  metadata: grpc.Metadata,
  options: grpc.CallOptions,
  callback: grpc.requestCallback<Res>,
) => grpc.ClientUnaryCall;

export function cancelled(signal: AbortSignal): NextBestError {
  return new NextBestError(grpc.status.CANCELLED, "cancelled by the caller", {
    cause: signal.reason,
  });
}

/** Unary calls with the token, a deadline per attempt, cancellation, and retries with backoff. */
export class Caller {
  private readonly token: string | undefined;
  private readonly timeoutMs: number;
  private readonly maxAttempts: number;
  private readonly initialBackoffMs: number;
  private readonly maxBackoffMs: number;

  constructor(token: string | undefined, options: ConnectionOptions) {
    this.token = token;
    this.timeoutMs = options.timeoutMs ?? 5000;
    this.maxAttempts = Math.max(1, Math.floor(options.maxAttempts ?? 3));
    this.initialBackoffMs = options.initialBackoffMs ?? 100;
    this.maxBackoffMs = options.maxBackoffMs ?? 2000;
  }

  /** `retry: false` sends the call once (a change that must not be applied twice). */
  async call<Req, Res>(method: Unary<Req, Res>, request: Req, options: CallOptions, retry = true): Promise<Res> {
    const { signal } = options;
    const attempts = retry ? this.maxAttempts : 1;
    for (let attempt = 1; ; attempt++) {
      if (signal?.aborted) throw cancelled(signal);
      try {
        return await this.attempt(method, request, options);
      } catch (err) {
        const error = isServiceError(err) ? NextBestError.fromServiceError(err) : err;
        const again =
          error instanceof NextBestError &&
          RETRYABLE.has(error.grpcCode) &&
          attempt < attempts &&
          !signal?.aborted;
        if (!again) throw signal?.aborted ? cancelled(signal) : error;
      }
      const backoff = Math.min(this.maxBackoffMs, this.initialBackoffMs * 2 ** (attempt - 1));
      await sleep(backoff * (0.5 + Math.random() / 2), signal);
    }
  }

  private attempt<Req, Res>(method: Unary<Req, Res>, request: Req, options: CallOptions): Promise<Res> {
    const metadata = new grpc.Metadata();
    if (this.token) metadata.set("authorization", `Bearer ${this.token}`);
    const deadline = new Date(Date.now() + (options.timeoutMs ?? this.timeoutMs));
    return new Promise<Res>((resolve, reject) => {
      const onAbort = (): void => call.cancel();
      const call = method(request, metadata, { deadline }, (err, response) => {
        options.signal?.removeEventListener("abort", onAbort);
        if (err) reject(err);
        else if (response === undefined) reject(new NextBestError(grpc.status.INTERNAL, "empty response"));
        else resolve(response);
      });
      options.signal?.addEventListener("abort", onAbort, { once: true });
    });
  }
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(cancelled(signal));
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(cancelled(signal!));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
