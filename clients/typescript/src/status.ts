/**
 * Reads the `grpc-status-details-bin` trailer: a google.rpc.Status whose details may hold a
 * google.rpc.BadRequest naming the field at fault. Three small messages, so a minimal protobuf
 * wire reader here instead of a second proto toolchain.
 */

export interface FieldViolation {
  field: string;
  description: string;
}

export interface RpcStatus {
  code: number;
  message: string;
  details: { typeUrl: string; value: Uint8Array }[];
}

export const BAD_REQUEST_TYPE = "type.googleapis.com/google.rpc.BadRequest";

type Field = { number: number; varint?: bigint; bytes?: Uint8Array };

/** The fields of one message, in order; throws on malformed input. */
function* fields(buf: Uint8Array): Generator<Field> {
  let pos = 0;
  const varint = (): bigint => {
    let result = 0n;
    for (let shift = 0n; shift < 70n; shift += 7n) {
      if (pos >= buf.length) throw new Error("truncated varint");
      const byte = buf[pos++]!;
      result |= BigInt(byte & 0x7f) << shift;
      if ((byte & 0x80) === 0) return result;
    }
    throw new Error("varint too long");
  };
  const skip = (n: number): void => {
    if (pos + n > buf.length) throw new Error("truncated field");
    pos += n;
  };
  while (pos < buf.length) {
    const key = varint();
    const number = Number(key >> 3n);
    switch (Number(key & 7n)) {
      case 0:
        yield { number, varint: varint() };
        break;
      case 1:
        skip(8);
        break;
      case 2: {
        const length = Number(varint());
        const start = pos;
        skip(length);
        yield { number, bytes: buf.subarray(start, start + length) };
        break;
      }
      case 5:
        skip(4);
        break;
      default:
        throw new Error("unsupported wire type");
    }
  }
}

const text = (bytes: Uint8Array | undefined): string =>
  bytes ? new TextDecoder().decode(bytes) : "";

/** Decode a google.rpc.Status; undefined if the bytes are not one. */
export function decodeStatus(buf: Uint8Array): RpcStatus | undefined {
  try {
    const status: RpcStatus = { code: 0, message: "", details: [] };
    for (const f of fields(buf)) {
      if (f.number === 1 && f.varint !== undefined) status.code = Number(BigInt.asIntN(32, f.varint));
      else if (f.number === 2 && f.bytes) status.message = text(f.bytes);
      else if (f.number === 3 && f.bytes) {
        const any: RpcStatus["details"][number] = { typeUrl: "", value: new Uint8Array() };
        for (const g of fields(f.bytes)) {
          if (g.number === 1 && g.bytes) any.typeUrl = text(g.bytes);
          else if (g.number === 2 && g.bytes) any.value = g.bytes;
        }
        status.details.push(any);
      }
    }
    return status;
  } catch {
    return undefined;
  }
}

/** The field violations of every google.rpc.BadRequest in the status details. */
export function fieldViolations(status: RpcStatus): FieldViolation[] {
  const violations: FieldViolation[] = [];
  for (const detail of status.details) {
    if (detail.typeUrl !== BAD_REQUEST_TYPE) continue;
    try {
      for (const f of fields(detail.value)) {
        if (f.number !== 1 || !f.bytes) continue;
        const v: FieldViolation = { field: "", description: "" };
        for (const g of fields(f.bytes)) {
          if (g.number === 1 && g.bytes) v.field = text(g.bytes);
          else if (g.number === 2 && g.bytes) v.description = text(g.bytes);
        }
        violations.push(v);
      }
    } catch {
      // a malformed detail names no field; the message prefix still may
    }
  }
  return violations;
}
