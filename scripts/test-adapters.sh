#!/usr/bin/env bash
# Adapter tests for frameworks whose pins clash with the server's: CrewAI (pydantic<2.13) and
# AutoGen (protobuf~=5.29). Each gets its own venv under .venv/adapters/, installed with
# --no-deps from a pinned list in tests/clients/drivers/ and rebuilt only when that list or
# the client's pyproject changes. The tests run from the main venv: they start the real
# server, run the framework's driver script in its venv, and check the server's record.
# `--build-only` makes the venvs and stops (scripts/test.sh then runs every test at once).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=bootstrap.sh
source "$ROOT/scripts/bootstrap.sh" dev
cd "$ROOT"
ADAPTERS="$VENV/adapters"
for framework in crewai autogen; do
  venv="$ADAPTERS/$framework"
  reqs="$ROOT/tests/clients/drivers/requirements-$framework.txt"
  want="$(cat "$reqs" "$ROOT/clients/python/pyproject.toml" "$ROOT/proto/python/pyproject.toml" |
    sha256sum | cut -c1-16)"
  if [ "$(cat "$venv/.installed" 2>/dev/null)" != "$want" ]; then
    echo "== building $venv"
    rm -rf "$venv"
    "$VENV/bin/python" -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check --no-deps -r "$reqs"
    "$venv/bin/pip" install --quiet --disable-pip-version-check --no-deps \
      -e "$ROOT/proto/python" -e "$ROOT/clients/python"
    echo "$want" >"$venv/.installed"
  fi
done
if [ "${1:-}" = "--build-only" ]; then
  exit 0  # scripts/test.sh runs these tests within the whole suite
fi
echo "== adapter tests (crewai, autogen)"
NEXTBEST_ADAPTER_VENVS="$ADAPTERS" "$VENV/bin/pytest" -q -n 2 \
  tests/clients/test_crewai.py tests/clients/test_autogen.py "$@"
