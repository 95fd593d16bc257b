import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { type Decision, NextBest, NextBestError } from "../src/index";
import { FaultyProxy, type RunningServer, eventually, startServer } from "./support/server";

const POLICY = "support.next_step";
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
// A new customer: the refund rule (30 days of tenure) masks offer_refund.
const CONTEXT = { account_age_days: 12, amount: 80, plan: "gold", vip: true, tags: ["late", "angry"] };

let server: RunningServer;
let nb: NextBest;

before(async () => {
  server = await startServer();
  nb = new NextBest(server.target);
});

after(async () => {
  nb?.close();
  await server?.stop();
});

async function rejects(call: Promise<unknown>): Promise<NextBestError> {
  const err = await call.then(
    () => assert.fail("expected the call to fail"),
    (e: unknown) => e,
  );
  assert.ok(err instanceof NextBestError, `not a NextBestError: ${String(err)}`);
  return err;
}

function learned(eventId: string) {
  return eventually(async () => {
    const e = await nb.explain(eventId);
    return e.joinStatus === "LEARNED" ? e : undefined;
  });
}

describe("the decision loop", () => {
  test("decide → reward(signals) → explain shows the event LEARNED", async () => {
    const d = await nb.decide({ policy: POLICY, intent: "billing_dispute", context: CONTEXT });
    assert.match(d.eventId, UUID);
    assert.ok(["ask_details", "transfer_billing", "escalate_human"].includes(d.action), d.action);
    assert.ok(d.probability > 0 && d.probability <= 1);
    assert.equal(d.fallback, false);
    assert.equal(d.epsilon, 0.2); // the per-intent override
    assert.deepEqual(
      d.ranking.map((r) => r.actionId).sort(),
      ["ask_details", "escalate_human", "transfer_billing"],
    );
    assert.ok(Math.abs(d.ranking.reduce((s, r) => s + r.probability, 0) - 1) < 1e-9);
    assert.equal(d.ranking.find((r) => r.actionId === d.action)?.probability, d.probability);
    assert.deepEqual(d.masked, [
      {
        actionId: "offer_refund",
        reason: "refunds need 30 days of tenure and at most 200",
        rule: "refund_limits",
      },
    ]);
    assert.ok(d.configVersion.length > 0 && d.modelVersion.length > 0);

    const r = await nb.reward(d.eventId, { signals: { resolved: 1, csat: 5 } });
    assert.deepEqual(r, { status: "ACCEPTED", value: 1 }); // 1 + 0.5·1, clipped to 1

    const e = await learned(d.eventId);
    assert.equal(e.eventId, d.eventId);
    assert.equal(e.policy, POLICY);
    assert.equal(e.intent, "billing_dispute");
    assert.deepEqual(e.context, CONTEXT);
    assert.equal(e.action, d.action);
    assert.equal(e.probability, d.probability);
    assert.equal(e.joinedReward, 1);
    assert.equal(e.rewards.length, 1);
    assert.deepEqual(e.rewards[0]!.signals, { resolved: 1, csat: 5 });
    assert.equal(e.rewards[0]!.status, "ACCEPTED");
    assert.ok(e.decidedAt instanceof Date && Math.abs(e.decidedAt.getTime() - Date.now()) < 60_000);
    assert.deepEqual(e.eligible.map((a) => a.actionId).sort(), d.ranking.map((a) => a.actionId).sort());
    assert.deepEqual(e.eligible.find((a) => a.actionId === "ask_details")?.features, { kind: "info" });
    assert.match(e.vwExample[0]!, /^shared \|i billing_dispute \|c /);

    // The same reward id again is not applied twice.
    const again = await nb.reward(d.eventId, { value: -1 }, { rewardId: e.rewards[0]!.rewardId });
    assert.equal(again.status, "DUPLICATE");
  });

  test("reward with a number; the event's record before and after", async () => {
    const d = await nb.decide({ policy: POLICY, intent: "cancel", context: { account_age_days: 400, amount: 20 } });
    assert.equal(d.masked.length, 0);
    assert.equal((await nb.explain(d.eventId)).joinStatus, "PENDING");
    assert.equal(d.epsilon, 0.1);
    assert.deepEqual(await nb.reward(d.eventId, { value: 0.25 }), { status: "ACCEPTED", value: 0.25 });
    assert.equal((await learned(d.eventId)).joinedReward, 0.25);
  });

  test("candidates, exclusions, baseline and a caller-chosen event id", async () => {
    const eventId = `ts-${Date.now()}`;
    const d = await nb.decide({
      policy: POLICY,
      intent: "billing_dispute",
      context: { account_age_days: 400, amount: 20 },
      candidates: ["ask_details", "escalate_human"],
      exclude: ["escalate_human"],
      baseline: "ask_details",
      eventId,
    });
    assert.equal(d.eventId, eventId);
    assert.equal(d.action, "ask_details");
    assert.equal(d.probability, 1);
    assert.deepEqual(d.masked.map((m) => m.actionId).sort(), ["escalate_human", "offer_refund", "transfer_billing"]);
    assert.equal((await nb.explain(eventId)).baseline, "ask_details");
  });

  test("everything masked: the fallback action", async () => {
    const d = await nb.decide({
      policy: POLICY,
      intent: "x",
      context: { account_age_days: 1, amount: 1 },
      candidates: ["offer_refund"],
    });
    assert.equal(d.fallback, true);
    assert.equal(d.action, "escalate_human");
  });

  test("actions given with the request, on a policy with an empty catalog", async () => {
    const d = await nb.decide({
      policy: "tools.dynamic",
      intent: "research",
      actions: [
        { id: "web_search", features: { cost: 1, kind: "search" } },
        { id: "read_docs", features: { cost: 0.2, tags: ["local", "fast"], cached: true } },
      ],
    });
    assert.ok(["web_search", "read_docs"].includes(d.action));
    const e = await nb.explain(d.eventId);
    assert.deepEqual(e.eligible.find((a) => a.actionId === "read_docs")?.features, {
      cost: 0.2,
      tags: ["local", "fast"],
      cached: true,
    });
  });

  test("defer → activate → learned only then", async () => {
    const d = await nb.decide({ policy: POLICY, intent: "billing_dispute", context: CONTEXT, defer: true });
    const pending = await nb.explain(d.eventId);
    assert.equal(pending.defer, true);
    assert.equal(pending.activated, false);
    assert.equal(await nb.activate(d.eventId), "ACTIVATED");
    assert.equal(await nb.activate(d.eventId), "ALREADY_ACTIVE");
    assert.equal((await nb.reward(d.eventId, { value: 1 })).status, "ACCEPTED");
    const e = await learned(d.eventId);
    assert.equal(e.activated, true);
  });
});

describe("errors", () => {
  test("empty intent: INVALID_ARGUMENT naming the field", async () => {
    const err = await rejects(nb.decide({ policy: POLICY, intent: "", context: CONTEXT }));
    assert.equal(err.code, "INVALID_ARGUMENT");
    assert.equal(err.grpcCode, 3);
    assert.equal(err.field, "intent");
    assert.equal(err.description, "must not be empty");
    assert.equal(err.message, "intent: must not be empty");
    assert.equal(err.name, "NextBestError");
  });

  test("a non-finite number, an unknown candidate, an unknown signal", async () => {
    const nan = await rejects(nb.decide({ policy: POLICY, intent: "x", context: { amount: Number.NaN } }));
    assert.equal(nan.field, "context['amount']");
    const unknownAction = await rejects(
      nb.decide({ policy: POLICY, intent: "x", candidates: ["ask_details", "teleport"] }),
    );
    assert.equal(unknownAction.field, "candidate_action_ids[1]");
    const d = await nb.decide({ policy: POLICY, intent: "x", context: CONTEXT });
    const signal = await rejects(nb.reward(d.eventId, { signals: { happiness: 1 } }));
    assert.equal(signal.code, "INVALID_ARGUMENT");
    assert.equal(signal.field, "signals['happiness']");
  });

  test("unknown policy and unknown event: NOT_FOUND", async () => {
    const policy = await rejects(nb.decide({ policy: "no.such", intent: "x" }));
    assert.equal(policy.code, "NOT_FOUND");
    assert.equal(policy.field, "policy");
    const event = await rejects(nb.explain("never-decided"));
    assert.equal(event.code, "NOT_FOUND");
    assert.equal(event.field, "event_id");
  });

  test("an event id reused by another policy: ALREADY_EXISTS", async () => {
    const d = await nb.decide({ policy: POLICY, intent: "x", context: CONTEXT });
    const err = await rejects(
      nb.decide({ policy: "tools.dynamic", intent: "x", actions: [{ id: "a" }], eventId: d.eventId }),
    );
    assert.equal(err.code, "ALREADY_EXISTS");
    assert.equal(err.field, "event_id");
  });

  test("bad context values throw before any call", async () => {
    const proxy = await new FaultyProxy(server.target).start();
    const client = new NextBest(proxy.target);
    try {
      const cases: [unknown, string][] = [
        [{ when: new Date() }, "context['when']"],
        [{ nothing: null }, "context['nothing']"],
        [{ missing: undefined }, "context['missing']"],
        [{ nested: { a: 1 } }, "context['nested']"],
        [{ big: 10n }, "context['big']"],
        [{ mixed: ["a", 1] }, "context['mixed'][1]"],
        [{ "it's": () => 1 }, `context["it's"]`],
        [["a"], "context"],
      ];
      for (const [context, field] of cases) {
        const err = await rejects(client.decide({ policy: POLICY, intent: "x", context: context as never }));
        assert.equal(err.code, "INVALID_ARGUMENT");
        assert.equal(err.field, field);
      }
      const features = await rejects(
        client.decide({ policy: "tools.dynamic", intent: "x", actions: [{ id: "a", features: { f: null as never } }] }),
      );
      assert.equal(features.field, "actions[0].features['f']");
      const both = await rejects(client.reward("e", { value: 1, signals: { resolved: 1 } } as never));
      assert.equal(both.field, "signals");
      const neither = await rejects(client.reward("e", {} as never));
      assert.equal(neither.field, "value");
      assert.equal(proxy.calls.length, 0);
    } finally {
      client.close();
      proxy.stop();
    }
  });
});

describe("retries", () => {
  let proxy: FaultyProxy;
  let client: NextBest;

  before(async () => {
    proxy = await new FaultyProxy(server.target).start();
    client = new NextBest(proxy.target, { token: "s3cret", timeoutMs: 1000, initialBackoffMs: 20 });
  });

  after(() => {
    client.close();
    proxy.stop();
  });

  async function assertOneEvent(d: Decision, attempts: number): Promise<void> {
    const calls = proxy.callsOf("Decide").filter((c) => c.request.eventId === d.eventId);
    assert.equal(calls.length, attempts, "every attempt carries the same event id");
    // The server logs one "decision" line per event it decides; a repeated id adds none.
    await eventually(async () => (server.logsFor("decision", d.eventId).length > 0 ? true : undefined));
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(server.logsFor("decision", d.eventId).length, 1, "the server decided once");
  }

  test("UNAVAILABLE after the server decided: the retry returns that decision, one event", async () => {
    proxy.inject("Decide", { kind: "lost-response" });
    const d = await client.decide({ policy: POLICY, intent: "billing_dispute", context: CONTEXT });
    await assertOneEvent(d, 2);
    const e = await client.explain(d.eventId);
    assert.equal(e.action, d.action);
    assert.equal(e.probability, d.probability);
    assert.equal(proxy.callsOf("Decide").at(-1)?.authorization, "Bearer s3cret");
  });

  test("UNAVAILABLE before the server saw it, twice: the third attempt decides", async () => {
    proxy.inject("Decide", { kind: "unavailable" }, { kind: "unavailable" });
    const d = await client.decide({ policy: POLICY, intent: "billing_dispute", context: CONTEXT });
    await assertOneEvent(d, 3);
  });

  test("DEADLINE_EXCEEDED on a slow answer: retried, one event", async () => {
    proxy.inject("Decide", { kind: "slow", delayMs: 2500 });
    const d = await client.decide(
      { policy: POLICY, intent: "billing_dispute", context: CONTEXT },
      { timeoutMs: 750 },
    );
    await assertOneEvent(d, 2);
  });

  test("a lost reward answer: retried with its reward id, applied once", async () => {
    const d = await client.decide({ policy: POLICY, intent: "billing_dispute", context: CONTEXT });
    proxy.inject("Reward", { kind: "lost-response" });
    const r = await client.reward(d.eventId, { value: 0.5 });
    assert.equal(r.status, "DUPLICATE"); // the first attempt arrived
    const calls = proxy.callsOf("Reward");
    assert.equal(calls.length, 2);
    assert.equal(calls[0]!.request.rewardId, calls[1]!.request.rewardId);
    const e = await client.explain(d.eventId);
    assert.equal(e.rewards.filter((w) => w.status === "ACCEPTED").length, 1);
    assert.equal(e.joinedReward, 0.5);
  });

  test("gives up after maxAttempts; other errors are not retried", async () => {
    proxy.inject("Decide", { kind: "unavailable" }, { kind: "unavailable" }, { kind: "unavailable" });
    const seen = proxy.callsOf("Decide").length;
    const err = await rejects(client.decide({ policy: POLICY, intent: "x", context: CONTEXT }));
    assert.equal(err.code, "UNAVAILABLE");
    assert.equal(proxy.callsOf("Decide").length - seen, 3);

    const invalid = await rejects(client.decide({ policy: POLICY, intent: "", context: CONTEXT }));
    assert.equal(invalid.field, "intent");
    assert.equal(proxy.callsOf("Decide").length - seen, 4);
  });

  test("an aborted call rejects with CANCELLED and is not retried", async () => {
    proxy.inject("Decide", { kind: "slow", delayMs: 800 });
    const seen = proxy.callsOf("Decide").length;
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 100);
    const err = await rejects(
      client.decide({ policy: POLICY, intent: "x", context: CONTEXT }, { signal: controller.signal }),
    );
    assert.equal(err.code, "CANCELLED");
    assert.equal(proxy.callsOf("Decide").length - seen, 1);
  });

  test("no server: UNAVAILABLE", async () => {
    const nobody = new NextBest("127.0.0.1:1", { maxAttempts: 2, initialBackoffMs: 1 });
    try {
      const err = await rejects(nobody.decide({ policy: POLICY, intent: "x" }));
      assert.equal(err.code, "UNAVAILABLE");
      assert.equal(err.field, undefined);
    } finally {
      nobody.close();
    }
  });
});
