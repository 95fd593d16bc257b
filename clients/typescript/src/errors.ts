import { status as Status, type ServiceError } from "@grpc/grpc-js";
import { decodeStatus, fieldViolations } from "./status";

/** A gRPC status code by name: "INVALID_ARGUMENT", "NOT_FOUND", "UNAVAILABLE", … */
export type StatusName = keyof typeof Status;

// `context['amount']: …`, `actions[2].id: …`, `intent: …`: the server puts the field first.
const FIELD_PREFIX =
  /^([A-Za-z_][A-Za-z0-9_]*(?:\[(?:\d+|'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")\]|\.[A-Za-z_][A-Za-z0-9_]*)*): /;

/**
 * Every failure of a nextbest call: the gRPC status code and, when the server named one, the
 * request field at fault (as the proto spells it: `intent`, `context['amount']`,
 * `candidate_action_ids[1]`, `signals['csat']`).
 */
export class NextBestError extends Error {
  override readonly name = "NextBestError";
  /** The status code by name, e.g. "INVALID_ARGUMENT". */
  readonly code: StatusName;
  /** The numeric gRPC status code. */
  readonly grpcCode: Status;
  /** The request field at fault, if any. */
  readonly field: string | undefined;
  /** What is wrong with the field (the message without the field prefix). */
  readonly description: string;

  constructor(
    code: Status,
    message: string,
    options: { field?: string | undefined; description?: string; cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.grpcCode = code;
    this.code = (Status[code] ?? "UNKNOWN") as StatusName;
    this.field = options.field || undefined;
    this.description = options.description ?? message;
  }

  /** From a grpc-js error: the field from the google.rpc.BadRequest detail, else the message. */
  static fromServiceError(err: ServiceError): NextBestError {
    const message = err.details || err.message;
    let field: string | undefined;
    let description: string | undefined;
    const raw = err.metadata?.get("grpc-status-details-bin")[0];
    if (raw instanceof Uint8Array) {
      const status = decodeStatus(raw);
      const violation = status && fieldViolations(status)[0];
      if (violation?.field) {
        field = violation.field;
        description = violation.description || undefined;
      }
    }
    if (field === undefined) {
      const match = FIELD_PREFIX.exec(message);
      if (match) field = match[1];
    }
    if (field !== undefined && description === undefined && message.startsWith(`${field}: `)) {
      description = message.slice(field.length + 2);
    }
    return new NextBestError(err.code, message, { field, description: description ?? message, cause: err });
  }
}

export function isServiceError(err: unknown): err is ServiceError {
  return (
    err instanceof Error &&
    typeof (err as Partial<ServiceError>).code === "number" &&
    "metadata" in err
  );
}

/** Python's repr of a str, as the server writes names into fields: 'amount', "it's". */
export function pyRepr(name: string): string {
  const quote = name.includes("'") && !name.includes('"') ? '"' : "'";
  const body = name.replace(/\\/g, "\\\\").replace(quote === "'" ? /'/g : /"/g, `\\${quote}`);
  return `${quote}${body}${quote}`;
}
