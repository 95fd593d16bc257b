#!/usr/bin/env bash
# Run nextbest (embedded mode) on the example policy; extra flags go to `nextbest serve`.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=bootstrap.sh
source "$ROOT/scripts/bootstrap.sh" ""
cd "$ROOT"
exec "$VENV/bin/nextbest" serve --config "${NEXTBEST_CONFIG:-examples/support.yaml}" "$@"
