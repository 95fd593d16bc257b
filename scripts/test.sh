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
bash "$ROOT/scripts/test-typescript.sh"
echo "== adapter venvs (CrewAI and AutoGen pin what the server pins differently)"
bash "$ROOT/scripts/test-adapters.sh" --build-only
echo "== pytest"
NEXTBEST_ADAPTER_VENVS="$VENV/adapters" "$VENV/bin/pytest" -n "${PYTEST_WORKERS:-auto}" "$@"
