// npm run generate: copy the contract from the repository's proto/ into this package and
// generate TypeScript types for it with @grpc/proto-loader's proto-loader-gen-types.
// Both outputs are build products (git-ignored); `npm run build` runs this first, so they can
// never be stale. The gen-types flags must match LOAD_OPTIONS in src/proto.ts.
import { execFileSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, rmSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const pkg = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const source = resolve(pkg, "../../proto");
// DecisionService (agents) and AdminService (operators); keep in step with PROTO_FILES in src/proto.ts.
const files = ["nextbest/v1/decision.proto", "nextbest/v1/admin.proto"];

for (const file of files) {
  if (!existsSync(join(source, file))) {
    console.error(`generate: ${join(source, file)} not found (run inside the nextbest repository)`);
    process.exit(1);
  }
}
rmSync(join(pkg, "proto"), { recursive: true, force: true });
for (const file of files) {
  mkdirSync(dirname(join(pkg, "proto", file)), { recursive: true });
  cpSync(join(source, file), join(pkg, "proto", file));
}

const out = join(pkg, "src", "generated");
rmSync(out, { recursive: true, force: true });
execFileSync(
  process.execPath,
  [
    join(pkg, "node_modules", "@grpc", "proto-loader", "build", "bin", "proto-loader-gen-types.js"),
    "--grpcLib=@grpc/grpc-js",
    "--enums=String",
    "--longs=String",
    "--defaults",
    "--oneofs",
    "--includeComments",
    `--includeDirs=${join(pkg, "proto")}`,
    `--outDir=${out}`,
    ...files,
  ],
  { stdio: "inherit" },
);
console.log(`generate: ${files.map((f) => `proto/${f}`).join(", ")} and src/generated/ written`);
