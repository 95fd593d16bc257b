import { loadPackageDefinition } from "@grpc/grpc-js";
import { loadSync, type Options } from "@grpc/proto-loader";
import { join } from "node:path";
import type { ProtoGrpcType as AdminProto } from "./generated/admin";
import type { ProtoGrpcType as DecisionProto } from "./generated/decision";

type ProtoGrpcType = {
  nextbest: { v1: DecisionProto["nextbest"]["v1"] & AdminProto["nextbest"]["v1"] };
};

/** This package's copy of the contract (written by `npm run generate` from the repository's proto/). */
export const PROTO_ROOT = join(__dirname, "..", "..", "proto");
export const PROTO_FILE = "nextbest/v1/decision.proto";
/** Every file of the contract this package loads (keep in step with scripts/generate.mjs). */
export const PROTO_FILES = [PROTO_FILE, "nextbest/v1/admin.proto"];

/** Must match the proto-loader-gen-types flags in scripts/generate.mjs. */
export const LOAD_OPTIONS: Options = {
  keepCase: false,
  enums: String,
  longs: String,
  defaults: true,
  oneofs: true,
  includeDirs: [PROTO_ROOT],
};

let loaded: ProtoGrpcType | undefined;

/** The nextbest.v1 package: both services' constructors and message definitions (loaded once). */
export function nextbestV1(): ProtoGrpcType["nextbest"]["v1"] {
  loaded ??= loadPackageDefinition(
    loadSync(PROTO_FILES, LOAD_OPTIONS),
  ) as unknown as ProtoGrpcType;
  return loaded.nextbest.v1;
}
