import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { AdminClient, NextBest, NextBestError, tlsFromEnv } from "../src/index";
import { type Certificates, type RunningServer, makeCertificates, startServer } from "./support/server";

const POLICY = "support.next_step";
const SUBJECT = "CN=agent-7,O=nextbest tests";

async function rejects(call: Promise<unknown>): Promise<NextBestError> {
  const err = await call.then(
    () => assert.fail("expected the call to fail"),
    (e: unknown) => e,
  );
  assert.ok(err instanceof NextBestError, `not a NextBestError: ${String(err)}`);
  return err;
}

/** Runs `fn` with these environment variables set, then puts the old values back. */
async function withEnv<T>(vars: Record<string, string>, fn: () => Promise<T>): Promise<T> {
  const old = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
  Object.assign(process.env, vars);
  try {
    return await fn();
  } finally {
    for (const [k, v] of Object.entries(old)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

const sha256 = (token: string): string => createHash("sha256").update(token).digest("hex");

describe("tokens and scopes", () => {
  let server: RunningServer;
  let pki: Certificates;

  before(async () => {
    pki = makeCertificates(); // only for the auth file's directory
    const auth = join(pki.dir, "auth.yaml");
    writeFileSync(
      auth,
      [
        "tokens:",
        `  - {name: agent, sha256: ${sha256("agent-token")}, scopes: [decide, reward]}`,
        `  - {name: viewer, sha256: ${sha256("viewer-token")}, scopes: [read]}`,
        `  - {name: ops, sha256: ${sha256("ops-token")}, scopes: [read, admin]}`,
      ].join("\n"),
    );
    server = await startServer(undefined, { args: ["--auth-file", auth] });
  });

  after(async () => {
    await server?.stop();
    if (pki) rmSync(pki.dir, { recursive: true, force: true });
  });

  test("the token goes with every call; no token or an unknown one is UNAUTHENTICATED", async () => {
    const agent = new NextBest(server.target, { token: "agent-token" });
    const anonymous = new NextBest(server.target, { token: "" });
    const stranger = new NextBest(server.target, { token: "made-up" });
    try {
      const d = await agent.decide({ policy: POLICY, intent: "billing_dispute" });
      assert.equal((await agent.reward(d.eventId, { value: 1 })).status, "ACCEPTED");
      const denied = await rejects(agent.explain(d.eventId));
      assert.equal(denied.code, "PERMISSION_DENIED");
      assert.match(denied.message, /'read'/);
      for (const client of [anonymous, stranger]) {
        const err = await rejects(client.decide({ policy: POLICY, intent: "billing_dispute" }));
        assert.equal(err.code, "UNAUTHENTICATED");
      }
    } finally {
      agent.close();
      anonymous.close();
      stranger.close();
    }
  });

  test("the token comes from NEXTBEST_TOKEN", async () => {
    await withEnv({ NEXTBEST_TOKEN: "agent-token" }, async () => {
      const nb = new NextBest(server.target);
      try {
        assert.ok((await nb.decide({ policy: POLICY, intent: "billing_dispute" })).action);
      } finally {
        nb.close();
      }
    });
  });

  test("AdminClient reads with `read`, changes with `admin`, and names the caller", async () => {
    const viewer = new AdminClient(server.target, { token: "viewer-token" });
    const ops = new AdminClient(server.target, { token: "ops-token" });
    try {
      const [status] = await viewer.listPolicies();
      assert.equal(status?.policy, POLICY);
      assert.equal((await viewer.getPolicy(POLICY)).exploration.epsilon, 0.1);
      assert.ok(Array.isArray(await viewer.listModels(POLICY)));
      const denied = await rejects(viewer.setExploration(POLICY, { epsilon: 0.05, reason: "x" }));
      assert.equal(denied.code, "PERMISSION_DENIED");
      assert.match(denied.message, /'admin'/);

      const changed = await ops.setExploration(POLICY, { epsilon: 0.05, reason: "3am: explore less" });
      assert.equal(changed.exploration.epsilon, 0.05);
      assert.equal(changed.fileExploration.epsilon, 0.1);
      const override = changed.overrides.find((o) => o.setting === "exploration.epsilon");
      assert.equal(override?.setBy, "ops");
      assert.equal(override?.reason, "3am: explore less");
      assert.ok(override.setAt instanceof Date && Math.abs(override.setAt.getTime() - Date.now()) < 60_000);
      const above = await rejects(ops.setExploration(POLICY, { epsilon: 0.9 }));
      assert.equal(above.code, "INVALID_ARGUMENT");
      assert.equal((await ops.setMode(POLICY, "frozen", "incident")).mode, "frozen");
      const cleared = await ops.clearOverrides(POLICY, "resolved");
      assert.deepEqual(cleared.overrides, []);
      assert.equal(cleared.mode, cleared.fileMode);
      assert.equal((await ops.reloadConfig("file edited")).applied, true);
      assert.equal((await rejects(ops.getPolicy("no.such.policy"))).code, "NOT_FOUND");
    } finally {
      viewer.close();
      ops.close();
    }
  });
});

describe("TLS", () => {
  let server: RunningServer;
  let pki: Certificates;

  before(async () => {
    pki = makeCertificates();
    server = await startServer(undefined, { args: ["--tls-cert", pki.serverCert, "--tls-key", pki.serverKey] });
  });

  after(async () => {
    await server?.stop();
    if (pki) rmSync(pki.dir, { recursive: true, force: true });
  });

  test("with the server's CA the calls go through; plaintext is refused", async () => {
    // serverName: the name the certificate lists (and no IP address as the TLS server name)
    const nb = new NextBest(server.target, { tls: { ca: pki.ca, serverName: "localhost" } });
    const plain = new NextBest(server.target, { tls: false, maxAttempts: 1, timeoutMs: 3000 });
    try {
      const d = await nb.decide({ policy: POLICY, intent: "billing_dispute" });
      assert.equal((await nb.explain(d.eventId)).action, d.action);
      const err = await rejects(plain.decide({ policy: POLICY, intent: "billing_dispute" }));
      assert.equal(err.code, "UNAVAILABLE");
    } finally {
      nb.close();
      plain.close();
    }
  });
});

describe("mTLS", () => {
  let server: RunningServer;
  let pki: Certificates;

  before(async () => {
    pki = makeCertificates();
    server = await startServer(undefined, {
      args: ["--tls-cert", pki.serverCert, "--tls-key", pki.serverKey, "--tls-client-ca", pki.ca],
    });
  });

  after(async () => {
    await server?.stop();
    if (pki) rmSync(pki.dir, { recursive: true, force: true });
  });

  test("a client certificate the CA signed is admitted, and its subject is the caller", async () => {
    const tls = { ca: pki.ca, cert: pki.clientCert, key: pki.clientKey, serverName: "localhost" };
    const nb = new NextBest(server.target, { tls });
    const admin = new AdminClient(server.target, { tls });
    try {
      assert.ok((await nb.decide({ policy: POLICY, intent: "billing_dispute" })).action);
      const status = await admin.setExploration(POLICY, { perIntent: { login_problem: 0.05 }, reason: "t" });
      const override = status.overrides.find((o) => o.setting === "exploration.per_intent.login_problem");
      assert.equal(override?.setBy, SUBJECT);
    } finally {
      nb.close();
      admin.close();
    }
  });

  test("no client certificate, or one another CA signed, is refused", async () => {
    const once = { maxAttempts: 1, timeoutMs: 3000 };
    const without = new NextBest(server.target, { tls: { ca: pki.ca, serverName: "localhost" }, ...once });
    const stranger = new NextBest(server.target, {
      tls: { ca: pki.ca, cert: pki.strangerCert, key: pki.strangerKey, serverName: "localhost" },
      ...once,
    });
    try {
      for (const client of [without, stranger]) {
        const err = await rejects(client.decide({ policy: POLICY, intent: "billing_dispute" }));
        assert.equal(err.code, "UNAVAILABLE");
      }
    } finally {
      without.close();
      stranger.close();
    }
  });

  test("TLS settings come from NEXTBEST_TLS_CA, NEXTBEST_TLS_CERT and NEXTBEST_TLS_KEY", async () => {
    const env = { NEXTBEST_TLS_CA: pki.ca, NEXTBEST_TLS_CERT: pki.clientCert, NEXTBEST_TLS_KEY: pki.clientKey };
    await withEnv(env, async () => {
      assert.deepEqual(tlsFromEnv(), { ca: pki.ca, cert: pki.clientCert, key: pki.clientKey });
      const port = server.target.split(":").pop()!;
      const nb = new NextBest(`localhost:${port}`);
      try {
        assert.ok((await nb.decide({ policy: POLICY, intent: "billing_dispute" })).action);
      } finally {
        nb.close();
      }
    });
  });

  test("cert without key is refused before any call", () => {
    assert.throws(() => new NextBest(server.target, { tls: { cert: pki.clientCert } }), /cert and key go together/);
  });
});
