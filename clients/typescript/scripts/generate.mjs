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
const file = "nextbest/v1/decision.proto";

if (!existsSync(join(source, file))) {
  console.error(`generate: ${join(source, file)} not found (run inside the nextbest repository)`);
  process.exit(1);
}
rmSync(join(pkg, "proto"), { recursive: true, force: true });
mkdirSync(dirname(join(pkg, "proto", file)), { recursive: true });
cpSync(join(source, file), join(pkg, "proto", file));

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
    file,
  ],
  { stdio: "inherit" },
);
console.log(`generate: proto/${file} and src/generated/ written`);
