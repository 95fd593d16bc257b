/**
 * A real nextbest server for the tests: `python -m nextbest serve` from the repository's .venv on
 * a free loopback port with a temporary data dir, and a grpc-js proxy that can inject faults.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createInterface } from "node:readline";
import * as grpc from "@grpc/grpc-js";
import { nextbestV1 } from "../../src/proto";

const REPO = resolve(__dirname, "..", "..", "..", "..", "..");
export const PYTHON = process.env.NEXTBEST_PYTHON ?? join(REPO, ".venv", "bin", "python");

/** The example support policy, with a 2s window joined on the earliest reward (learned at once). */
export const POLICIES = `
policies:
  support.next_step:
    actions:
      - {id: ask_details,      features: {kind: info}}
      - {id: offer_refund,     features: {kind: money}, explore: false}
      - {id: transfer_billing, features: {kind: human}}
      - {id: escalate_human,   features: {kind: human}}
    fallback_action: escalate_human
    exploration: {epsilon: 0.1, max_epsilon: 0.3, per_intent: {billing_dispute: 0.2}}
    safety:
      - name: refund_limits
        actions: [offer_refund]
        deny_when: "context.account_age_days < 30 || context.amount > 200.0"
        reason: "refunds need 30 days of tenure and at most 200"
    reward:
      wait: 2s
      default: 0.0
      aggregation: earliest
      clip: [-1, 1]
      signals:
        resolved:  {weight: 1.0}
        escalated: {weight: -0.5}
        csat:      {weight: 0.5, range: [1, 5]}
    vw_args: "--cb_explore_adf -q ia -q ca --cubic ica --power_t 0 -l 0.1"
    mode: online
  tools.dynamic:
    actions: []
    exploration: {epsilon: 0.1, max_epsilon: 0.3}
    reward: {wait: 2s, aggregation: earliest}
`;

export type LogLine = { event: string; [key: string]: unknown };

export class RunningServer {
  readonly logs: LogLine[] = [];
  target = "";
  metricsUrl = "";
  private readonly exited: Promise<void>;

  constructor(
    private readonly child: ChildProcess,
    private readonly dir: string,
  ) {
    this.exited = new Promise((done) => child.once("exit", () => done()));
  }

  /** The JSON log lines of one event kind ("decision", "reward", "join") for one event id. */
  logsFor(event: string, eventId: string): LogLine[] {
    return this.logs.filter((l) => l.event === event && l.event_id === eventId);
  }

  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      this.child.kill("SIGTERM");
      const timer = setTimeout(() => this.child.kill("SIGKILL"), 10_000);
      await this.exited;
      clearTimeout(timer);
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export interface ServerOptions {
  /** More `nextbest serve` flags (auth, TLS). */
  args?: string[];
  /** More environment variables for the server process. */
  env?: Record<string, string>;
}

export async function startServer(policies: string = POLICIES, options: ServerOptions = {}): Promise<RunningServer> {
  if (!existsSync(PYTHON)) {
    throw new Error(
      `no Python venv at ${PYTHON}: run scripts/test.sh (or scripts/bootstrap.sh) first, ` +
        "or set NEXTBEST_PYTHON",
    );
  }
  const dir = mkdtempSync(join(tmpdir(), "nextbest-ts-"));
  const config = join(dir, "policies.yaml");
  writeFileSync(config, policies);
  const child = spawn(
    PYTHON,
    [
      "-m",
      "nextbest",
      "serve",
      "--config",
      config,
      "--address",
      "127.0.0.1:0",
      "--metrics-address",
      "127.0.0.1:0",
      "--data-dir",
      join(dir, "data"),
      ...(options.args ?? []),
    ],
    { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, PYTHONUNBUFFERED: "1", ...options.env } },
  );
  const server = new RunningServer(child, dir);
  let stderr = "";
  child.stderr!.setEncoding("utf8").on("data", (chunk: string) => {
    stderr = (stderr + chunk).slice(-4000);
  });
  await new Promise<void>((ready, fail) => {
    const timer = setTimeout(() => fail(new Error(`nextbest did not start in 30s:\n${stderr}`)), 30_000);
    child.once("exit", (code) => {
      clearTimeout(timer);
      fail(new Error(`nextbest exited with ${code} before serving:\n${stderr}`));
    });
    createInterface({ input: child.stdout! }).on("line", (line) => {
      let log: LogLine;
      try {
        log = JSON.parse(line) as LogLine;
      } catch {
        return;
      }
      server.logs.push(log);
      if (log.event === "serving") {
        clearTimeout(timer);
        server.target = String(log.grpc_address);
        server.metricsUrl = `http://${String(log.metrics_address)}/metrics`;
        ready();
      }
    });
  }).catch(async (err: unknown) => {
    await server.stop();
    throw err;
  });
  return server;
}

/** What the proxy does with one call: pass it on, or misbehave. */
export type Fault =
  /** Answer UNAVAILABLE without forwarding (the server never saw the call). */
  | { kind: "unavailable" }
  /** Forward, then drop the answer and report UNAVAILABLE (the server did decide). */
  | { kind: "lost-response" }
  /** Forward, then answer only after delayMs (past the client's deadline). */
  | { kind: "slow"; delayMs: number };

export interface ProxiedCall {
  method: string;
  request: Record<string, unknown>;
  authorization: string | undefined;
}

type Handler = (request: unknown, callback: (err: grpc.ServiceError | null, response?: unknown) => void) => void;

/** A DecisionService proxy on 127.0.0.1 that forwards to `upstream` and applies queued faults. */
export class FaultyProxy {
  readonly calls: ProxiedCall[] = [];
  private readonly faults = new Map<string, Fault[]>();
  private readonly server = new grpc.Server();
  private readonly upstream: grpc.Client;
  target = "";

  constructor(upstreamTarget: string) {
    const Service = nextbestV1().DecisionService;
    this.upstream = new Service(upstreamTarget, grpc.credentials.createInsecure());
    const implementation: grpc.UntypedServiceImplementation = {};
    for (const [name, method] of Object.entries(Service.service)) {
      implementation[name] = (
        call: grpc.ServerUnaryCall<unknown, unknown>,
        callback: grpc.sendUnaryData<unknown>,
      ) => this.handle(name, method.originalName ?? name, call, callback);
    }
    this.server.addService(Service.service, implementation);
  }

  /** Queue faults for the next calls of `method` ("Decide", "Reward", …), one per call. */
  inject(method: string, ...faults: Fault[]): void {
    this.faults.set(method, [...(this.faults.get(method) ?? []), ...faults]);
  }

  callsOf(method: string): ProxiedCall[] {
    return this.calls.filter((c) => c.method === method);
  }

  async start(): Promise<this> {
    const port = await new Promise<number>((ok, fail) =>
      this.server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, p) =>
        err ? fail(err) : ok(p),
      ),
    );
    this.target = `127.0.0.1:${port}`;
    return this;
  }

  stop(): void {
    this.upstream.close();
    this.server.forceShutdown();
  }

  private handle(
    name: string,
    clientMethod: string,
    call: grpc.ServerUnaryCall<unknown, unknown>,
    callback: grpc.sendUnaryData<unknown>,
  ): void {
    const auth = call.metadata.get("authorization")[0];
    this.calls.push({
      method: name,
      request: call.request as Record<string, unknown>,
      authorization: auth === undefined ? undefined : String(auth),
    });
    const fault = this.faults.get(name)?.shift();
    if (fault?.kind === "unavailable") {
      callback({ code: grpc.status.UNAVAILABLE, details: "proxy: injected UNAVAILABLE" });
      return;
    }
    const forward = (this.upstream as unknown as Record<string, Handler>)[clientMethod]!.bind(this.upstream);
    forward(call.request, (err, response) => {
      if (fault?.kind === "lost-response") {
        callback({ code: grpc.status.UNAVAILABLE, details: "proxy: answer lost" });
      } else if (fault?.kind === "slow") {
        setTimeout(() => callback(err, response), fault.delayMs);
      } else {
        callback(err, response);
      }
    });
  }
}

/** Poll `check` until it returns a value or `ms` pass. */
export async function eventually<T>(check: () => Promise<T | undefined>, ms = 5000): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > until) throw new Error(`not reached within ${ms}ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * Certificates for the TLS tests, made by the repository's tests/certs.py (Python's
 * `cryptography`): a CA, a server pair for localhost/127.0.0.1, a client pair it signed
 * (subject CN=agent-7,O=nextbest tests) and a client pair another CA signed.
 */
export interface Certificates {
  dir: string;
  ca: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
  strangerCert: string;
  strangerKey: string;
}

export function makeCertificates(): Certificates {
  const dir = mkdtempSync(join(tmpdir(), "nextbest-ts-pki-"));
  const out = execFileSync(PYTHON, ["-m", "tests.certs", dir], { cwd: REPO, encoding: "utf8" });
  return { dir, ...(JSON.parse(out) as Omit<Certificates, "dir">) };
}
