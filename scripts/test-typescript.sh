#!/usr/bin/env bash
# The TypeScript client's check: install its npm dependencies, build it (the types generated from
# proto/, then tsc) and run its tests (node --test) against a real nextbest server from .venv.
# scripts/test.sh makes .venv before calling this; alone, this makes it when it is missing.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PKG="$ROOT/clients/typescript"
NODE_MIN=18

have_node() { command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; }

if ! have_node; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "== installing node and npm (Debian packages)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
  fi
  if ! have_node; then
    echo "test-typescript: node and npm are required (Node.js $NODE_MIN or newer)." >&2
    echo "  Install them, e.g. 'sudo apt-get install nodejs npm', or run this script as root." >&2
    exit 1
  fi
fi
major="$(node -p 'process.versions.node.split(".")[0]')"
if [ "$major" -lt "$NODE_MIN" ]; then
  echo "test-typescript: Node.js $NODE_MIN or newer is required, found $(node --version)." >&2
  exit 1
fi

if [ ! -x "$ROOT/.venv/bin/python" ]; then
  # shellcheck source=bootstrap.sh
  source "$ROOT/scripts/bootstrap.sh" ""
fi

cd "$PKG"
echo "== npm install (clients/typescript; node $(node --version), npm $(npm --version))"
npm install --no-audit --no-fund --loglevel=error
echo "== build and node --test (clients/typescript)"
npm test --silent
