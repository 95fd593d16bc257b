import { loadPackageDefinition } from "@grpc/grpc-js";
import { loadSync, type Options } from "@grpc/proto-loader";
import { join } from "node:path";
import type { ProtoGrpcType } from "./generated/decision";

/** This package's copy of the contract (written by `npm run generate` from the repository's proto/). */
export const PROTO_ROOT = join(__dirname, "..", "..", "proto");
export const PROTO_FILE = "nextbest/v1/decision.proto";

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

/** The nextbest.v1 package: service constructors and message definitions (loaded once). */
export function nextbestV1(): ProtoGrpcType["nextbest"]["v1"] {
  loaded ??= loadPackageDefinition(
    loadSync(PROTO_FILE, LOAD_OPTIONS),
  ) as unknown as ProtoGrpcType;
  return loaded.nextbest.v1;
}
