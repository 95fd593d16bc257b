/**
 * Vercel AI SDK tools (`ai` ≥ 6 with zod): let a TypeScript agent ask nextbest for its next
 * action and report how it went. Import from "@nextbest/client/ai"; `ai` and `zod` are optional
 * peer dependencies, needed only here.
 */
import { tool } from "ai";
import { z } from "zod/v4";
import type { NextBest, Reward, RewardStatus } from "./client";
import type { Context } from "./values";

export interface NextBestToolsOptions {
  /** The decision point these tools decide for, e.g. "support.next_step". */
  policy: string;
  /**
   * Features the application knows itself (account age, amount, plan…). They are merged over
   * the model's context and win on conflict, so safety rules that read them cannot be talked
   * around by the model.
   */
  context?: Context | (() => Context | Promise<Context>);
  /** The reward signals of the policy, by name, with what each means (shown to the model). */
  signals?: Readonly<Record<string, string>>;
  /** What the decision point is about; opens the description of chooseNextAction. */
  description?: string;
}

export interface ChooseNextActionInput {
  intent: string;
  context?: Record<string, number | string | boolean | string[]> | undefined;
  exclude?: string[] | undefined;
}

export interface ChooseNextActionOutput {
  eventId: string;
  action: string;
  probability: number;
  explored: boolean;
  fallback: boolean;
  /** Actions ruled out, with why. */
  masked: { action: string; reason: string }[];
}

export interface ReportOutcomeInput {
  eventId: string;
  value?: number | undefined;
  signals?: Record<string, number> | undefined;
}

export interface ReportOutcomeOutput {
  status: RewardStatus;
  value: number;
}

const contextValue = z.union([z.number(), z.string(), z.boolean(), z.array(z.string())]);

/**
 * Two tools for one policy: `chooseNextAction` (Decide) and `reportOutcome` (Reward).
 *
 * ```ts
 * const tools = nextBestTools(client, { policy: "support.next_step" });
 * await generateText({ model, tools, prompt });
 * ```
 */
export function nextBestTools(client: NextBest, options: NextBestToolsOptions) {
  const { policy } = options;

  const signalsSchema: z.ZodType<Record<string, number>> = options.signals
    ? (z
        .object(
          Object.fromEntries(
            Object.entries(options.signals).map(([name, meaning]) => [
              name,
              z.number().describe(meaning).optional(),
            ]),
          ),
        )
        .strict() as unknown as z.ZodType<Record<string, number>>)
    : z.record(z.string(), z.number());

  const chooseNextAction = tool({
    description:
      `${options.description ? `${options.description.trim()} ` : ""}` +
      `Ask the "${policy}" decision service which action to take next. ` +
      "Take the returned action, then call reportOutcome with its eventId once you know how it went.",
    inputSchema: z.object({
      intent: z
        .string()
        .min(1)
        .describe("What the user wants, as a short snake_case label, e.g. billing_dispute"),
      context: z
        .record(z.string(), contextValue)
        .optional()
        .describe("Facts about the situation: numbers, strings, booleans or lists of strings"),
      exclude: z.array(z.string()).optional().describe("Action ids that must not be chosen"),
    }),
    execute: async (input: ChooseNextActionInput, { abortSignal }): Promise<ChooseNextActionOutput> => {
      const trusted =
        typeof options.context === "function" ? await options.context() : options.context;
      const decision = await client.decide(
        {
          policy,
          intent: input.intent,
          context: { ...input.context, ...trusted },
          ...(input.exclude ? { exclude: input.exclude } : {}),
        },
        abortSignal ? { signal: abortSignal } : {},
      );
      return {
        eventId: decision.eventId,
        action: decision.action,
        probability: decision.probability,
        explored: decision.explored,
        fallback: decision.fallback,
        masked: decision.masked.map((m) => ({ action: m.actionId, reason: m.reason })),
      };
    },
  });

  const signalNames = options.signals ? Object.keys(options.signals).join(", ") : "";
  const reportOutcome = tool({
    description:
      "Report how an action chosen by chooseNextAction went, so the service learns. " +
      "Give either value (a number, higher is better) or signals" +
      (signalNames ? ` (${signalNames})` : "") +
      ".",
    inputSchema: z
      .object({
        eventId: z.string().min(1).describe("The eventId returned by chooseNextAction"),
        value: z.number().optional().describe("The reward: higher is better"),
        signals: signalsSchema.optional().describe("Named outcome signals"),
      })
      .refine((r) => (r.value === undefined) !== (r.signals === undefined), {
        message: "give either value or signals, not both",
      }),
    execute: async (input: ReportOutcomeInput, { abortSignal }): Promise<ReportOutcomeOutput> => {
      const reward: Reward =
        input.value !== undefined ? { value: input.value } : { signals: input.signals ?? {} };
      const result = await client.reward(input.eventId, reward, abortSignal ? { signal: abortSignal } : {});
      return { status: result.status, value: result.value };
    },
  });

  return { chooseNextAction, reportOutcome };
}
