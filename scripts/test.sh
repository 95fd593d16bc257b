#!/usr/bin/env bash
# The whole check: lint, types, stubs, unit and integration tests. CI runs exactly this.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=bootstrap.sh
source "$ROOT/scripts/bootstrap.sh" dev
cd "$ROOT"
echo "== ruff"
"$VENV/bin/ruff" check .
"$VENV/bin/ruff" format --check .
echo "== mypy"
"$VENV/bin/mypy"
echo "== docs"
bash "$ROOT/scripts/docs.sh"
bash "$ROOT/scripts/test-typescript.sh"
echo "== adapter venvs (CrewAI and AutoGen pin what the server pins differently)"
bash "$ROOT/scripts/test-adapters.sh" --build-only
# tests/deploy run promtool and a real Prometheus server: Debian's prometheus package.
if ! command -v promtool >/dev/null 2>&1 || ! command -v prometheus >/dev/null 2>&1; then
  sudo_=()
  [ "$(id -u)" = 0 ] || sudo_=(sudo -n)
  if command -v apt-get >/dev/null 2>&1 && { [ "$(id -u)" = 0 ] || sudo -n true 2>/dev/null; }; then
    echo "== installing prometheus and promtool (Debian package)"
    "${sudo_[@]}" apt-get update -qq
    "${sudo_[@]}" env DEBIAN_FRONTEND=noninteractive \
      apt-get install -y -qq --no-install-recommends prometheus >/dev/null
  else
    echo "== prometheus/promtool missing (needs root or sudo): tests/deploy skip their Prometheus tests"
  fi
fi
# tests start their own redis-server processes (Redis mode): Debian's redis-server package.
if ! command -v redis-server >/dev/null 2>&1 || ! command -v redis-cli >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1 && { [ "$(id -u)" = 0 ] || sudo -n true 2>/dev/null; }; then
    sudo_=()
    [ "$(id -u)" = 0 ] || sudo_=(sudo -n)
    echo "== installing redis-server (Debian package)"
    "${sudo_[@]}" apt-get update -qq
    "${sudo_[@]}" env DEBIAN_FRONTEND=noninteractive \
      apt-get install -y -qq --no-install-recommends redis-server >/dev/null
  else
    echo "== redis-server is missing and cannot be installed (needs root or sudo)" >&2
    exit 1
  fi
fi
echo "== pytest"
NEXTBEST_ADAPTER_VENVS="$VENV/adapters" "$VENV/bin/pytest" -n "${PYTEST_WORKERS:-auto}" "$@"
