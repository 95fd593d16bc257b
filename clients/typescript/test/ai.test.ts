import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { NextBest, NextBestError } from "../src/index";
import type { Tool } from "ai";
import { nextBestTools } from "../src/ai";
import { type RunningServer, eventually, startServer } from "./support/server";

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

/** Call a tool as the AI SDK does after the model asked for it (no model here). */
async function run<I, O>(tool: Tool<I, O>, input: I, toolCallId = "call-1"): Promise<O> {
  assert.ok(tool.execute, "the tool executes");
  const output = await tool.execute(input, { toolCallId, messages: [] });
  assert.ok(!(output !== null && typeof output === "object" && Symbol.asyncIterator in output));
  return output as O;
}

describe("Vercel AI SDK tools", () => {
  test("chooseNextAction and reportOutcome drive the loop to LEARNED", async () => {
    const tools = nextBestTools(nb, {
      policy: "support.next_step",
      context: async () => ({ account_age_days: 12, amount: 80 }), // the app's facts
      signals: { resolved: "1 if the issue was solved", csat: "customer rating 1-5" },
    });
    // The model claims an old account: the application's own fact wins, the refund stays masked.
    const chosen = await run(tools.chooseNextAction, {
      intent: "billing_dispute",
      context: { account_age_days: 999, plan: "gold", tags: ["late"] },
    });
    assert.ok(["ask_details", "transfer_billing", "escalate_human"].includes(chosen.action));
    assert.deepEqual(chosen.masked, [
      { action: "offer_refund", reason: "refunds need 30 days of tenure and at most 200" },
    ]);

    const outcome = await run(
      tools.reportOutcome,
      { eventId: chosen.eventId, signals: { resolved: 1, csat: 3 } },
      "call-2",
    );
    assert.deepEqual(outcome, { status: "ACCEPTED", value: 1 });

    const e = await eventually(async () => {
      const x = await nb.explain(chosen.eventId);
      return x.joinStatus === "LEARNED" ? x : undefined;
    });
    assert.equal(e.context.account_age_days, 12);
    assert.equal(e.context.plan, "gold");
    assert.equal(e.joinedReward, 1);
  });

  test("reportOutcome with a value; errors reach the caller as NextBestError", async () => {
    const tools = nextBestTools(nb, { policy: "support.next_step" });
    const chosen = await run(tools.chooseNextAction, {
      intent: "cancel",
      context: { account_age_days: 400, amount: 10 },
      exclude: ["ask_details"],
    });
    assert.notEqual(chosen.action, "ask_details");
    assert.deepEqual(await run(tools.reportOutcome, { eventId: chosen.eventId, value: -0.5 }), {
      status: "ACCEPTED",
      value: -0.5,
    });
    await assert.rejects(
      run(tools.reportOutcome, { eventId: "made-up", value: 1 }),
      (e: unknown) => e instanceof NextBestError && e.code === "NOT_FOUND" && e.field === "event_id",
    );
  });

  test("the input schemas the model sees", async () => {
    const tools = nextBestTools(nb, { policy: "support.next_step", signals: { resolved: "solved?" } });
    const choose = tools.chooseNextAction.inputSchema as unknown as { safeParse(v: unknown): { success: boolean } };
    assert.equal(choose.safeParse({ intent: "x", context: { a: 1, b: "c", d: true, e: ["f"] } }).success, true);
    assert.equal(choose.safeParse({ intent: "" }).success, false);
    assert.equal(choose.safeParse({ intent: "x", context: { a: { b: 1 } } }).success, false);
    const report = tools.reportOutcome.inputSchema as unknown as { safeParse(v: unknown): { success: boolean } };
    assert.equal(report.safeParse({ eventId: "e", value: 1 }).success, true);
    assert.equal(report.safeParse({ eventId: "e", signals: { resolved: 1 } }).success, true);
    assert.equal(report.safeParse({ eventId: "e" }).success, false);
    assert.equal(report.safeParse({ eventId: "e", value: 1, signals: { resolved: 1 } }).success, false);
    assert.equal(report.safeParse({ eventId: "e", signals: { bogus: 1 } }).success, false);
    assert.match(tools.reportOutcome.description ?? "", /resolved/);
  });
});
