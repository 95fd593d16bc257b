import { status as Status } from "@grpc/grpc-js";
import { NextBestError, pyRepr } from "./errors";
import type { Value } from "./generated/nextbest/v1/Value";
import type { Value__Output } from "./generated/nextbest/v1/Value";

/** A feature value: a number, a categorical text, a flag, or a set of texts. */
export type ContextValue = number | string | boolean | readonly string[];
/** Features of the situation (or of an action), by name. */
export type Context = Readonly<Record<string, ContextValue>>;

function invalid(field: string, description: string): NextBestError {
  return new NextBestError(Status.INVALID_ARGUMENT, `${field}: ${description}`, {
    field,
    description,
  });
}

const kind = (v: unknown): string => (v === null ? "null" : Array.isArray(v) ? "array" : typeof v);

/** One value → nextbest.v1.Value; anything but number, string, boolean, string[] throws. */
export function toValue(value: unknown, field: string): Value {
  switch (typeof value) {
    case "number":
      return { number: value };
    case "string":
      return { text: value };
    case "boolean":
      return { flag: value };
  }
  if (Array.isArray(value)) {
    value.forEach((item, i) => {
      if (typeof item !== "string") {
        throw invalid(`${field}[${i}]`, `must be a string in a list of texts, got ${kind(item)}`);
      }
    });
    return { texts: { values: [...(value as string[])] } };
  }
  throw invalid(field, `must be a number, string, boolean or string[], got ${kind(value)}`);
}

/** A context (or action features) map → map<string, Value>, named as the server names fields. */
export function toValueMap(map: unknown, field: string): Record<string, Value> {
  if (map === undefined) return {};
  if (typeof map !== "object" || map === null || Array.isArray(map)) {
    throw invalid(field, `must be an object of features, got ${kind(map)}`);
  }
  const out: Record<string, Value> = {};
  for (const [name, value] of Object.entries(map)) {
    out[name] = toValue(value, `${field}[${pyRepr(name)}]`);
  }
  return out;
}

export function fromValue(value: Value__Output): ContextValue | undefined {
  switch (value.kind) {
    case "number":
      return value.number;
    case "text":
      return value.text;
    case "flag":
      return value.flag;
    case "texts":
      return value.texts?.values ?? [];
    default:
      return undefined;
  }
}

export function fromValueMap(map: Record<string, Value__Output> | undefined): Record<string, ContextValue> {
  const out: Record<string, ContextValue> = {};
  for (const [name, value] of Object.entries(map ?? {})) {
    const v = fromValue(value);
    if (v !== undefined) out[name] = v;
  }
  return out;
}
