import assert from "node:assert/strict";
import { describe, test } from "node:test";
import * as grpc from "@grpc/grpc-js";
import { NextBestError } from "../src/index";
import { BAD_REQUEST_TYPE, decodeStatus, fieldViolations } from "../src/status";
import { fromValueMap, toValueMap } from "../src/values";

// google.rpc.Status{code: 3, message: "context['a: b']: must be …", details: [RetryInfo{},
// BadRequest{field_violations: [{field: "context['a: b']", description: "must be …"}]}]},
// serialized by the Python protobuf runtime.
const STATUS_HEX =
  "08031231636f6e746578745b27613a2062275d3a206d75737420626520612066696e697465206e756d6265722c20676f74206e616e1a2a0a28747970652e676f6f676c65617069732e636f6d2f676f6f676c652e7270632e5265747279496e666f1a620a29747970652e676f6f676c65617069732e636f6d2f676f6f676c652e7270632e4261645265717565737412350a330a0f636f6e746578745b27613a2062275d12206d75737420626520612066696e697465206e756d6265722c20676f74206e616e";

function serviceError(code: grpc.status, details: string, trailer?: Buffer): grpc.ServiceError {
  const metadata = new grpc.Metadata();
  if (trailer) metadata.set("grpc-status-details-bin", trailer);
  return Object.assign(new Error(`${code} ${grpc.status[code]}: ${details}`), { code, details, metadata });
}

describe("google.rpc.Status in grpc-status-details-bin", () => {
  test("decodes the status and the BadRequest field violations", () => {
    const status = decodeStatus(Buffer.from(STATUS_HEX, "hex"));
    assert.ok(status);
    assert.equal(status.code, 3);
    assert.equal(status.message, "context['a: b']: must be a finite number, got nan");
    assert.deepEqual(
      status.details.map((d) => d.typeUrl),
      ["type.googleapis.com/google.rpc.RetryInfo", BAD_REQUEST_TYPE],
    );
    assert.deepEqual(fieldViolations(status), [
      { field: "context['a: b']", description: "must be a finite number, got nan" },
    ]);
  });

  test("garbage is no status", () => {
    assert.equal(decodeStatus(Buffer.from([0x0a, 0x05, 0x61])), undefined); // truncated
    assert.equal(decodeStatus(Buffer.from([0x0b])), undefined); // group wire type
    assert.deepEqual(decodeStatus(new Uint8Array()), { code: 0, message: "", details: [] });
  });
});

describe("NextBestError from a grpc-js error", () => {
  test("the field comes from the BadRequest detail", () => {
    const err = NextBestError.fromServiceError(
      serviceError(grpc.status.INVALID_ARGUMENT, "not prefixed", Buffer.from(STATUS_HEX, "hex")),
    );
    assert.equal(err.code, "INVALID_ARGUMENT");
    assert.equal(err.field, "context['a: b']");
    assert.equal(err.description, "must be a finite number, got nan");
    assert.equal(err.message, "not prefixed");
  });

  test("without a detail, from the message prefix", () => {
    for (const [message, field] of [
      ["intent: must not be empty", "intent"],
      ["actions[2].features['x y: z']: must be a finite number", "actions[2].features['x y: z']"],
      [`context["it's"]: is 2000 characters`, `context["it's"]`],
      ["everything is masked and there is no fallback", undefined],
      ["unknown policy 'a: b'", undefined],
    ] as const) {
      const err = NextBestError.fromServiceError(serviceError(grpc.status.INVALID_ARGUMENT, message));
      assert.equal(err.field, field, message);
      if (field) assert.equal(err.description, message.slice(field.length + 2));
    }
  });

  test("codes by name", () => {
    const err = NextBestError.fromServiceError(serviceError(grpc.status.FAILED_PRECONDITION, "no"));
    assert.equal(err.code, "FAILED_PRECONDITION");
    assert.equal(err.grpcCode, 9);
    assert.ok(err instanceof Error);
    assert.ok(err.cause);
  });
});

describe("context values", () => {
  test("number, string, boolean and string[] round-trip through nextbest.v1.Value", () => {
    const context = { n: -1.5, s: "gold", b: false, l: ["a", "b"], empty: [] as string[], "sp ace": "" };
    const wire = toValueMap(context, "context");
    assert.deepEqual(wire.n, { number: -1.5 });
    assert.deepEqual(wire.l, { texts: { values: ["a", "b"] } });
    const back = fromValueMap(
      Object.fromEntries(Object.entries(wire).map(([k, v]) => [k, { ...v, kind: Object.keys(v)[0] }])) as never,
    );
    assert.deepEqual(back, context);
  });

  test("anything else throws a NextBestError naming the field", () => {
    assert.throws(() => toValueMap({ x: Symbol("s") }, "context"), (e: unknown) => {
      return e instanceof NextBestError && e.code === "INVALID_ARGUMENT" && e.field === "context['x']";
    });
    assert.throws(() => toValueMap("text", "context"), (e: unknown) => e instanceof NextBestError && e.field === "context");
  });
});
