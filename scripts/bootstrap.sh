# Sourced by serve.sh and test.sh: make .venv with Python ≥ 3.11 and install the project.
# Re-installs only when a pyproject.toml changed since the last install.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
EXTRAS="${1:-}"

find_python() {
  for candidate in "${PYTHON:-}" python3 python3.13 python3.12 python3.11; do
    [ -n "$candidate" ] || continue
    if command -v "$candidate" >/dev/null 2>&1 &&
      "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      echo "$candidate"
      return 0
    fi
  done
  echo "nextbest needs Python 3.11 or newer (set PYTHON=/path/to/python3.11)" >&2
  return 1
}

if [ ! -x "$VENV/bin/python" ]; then
  "$(find_python)" -m venv "$VENV"
fi
stamp="$VENV/.installed${EXTRAS:+-$EXTRAS}"
# The three distributions of this repository, editable: the contract (nextbest-proto), the SDK
# (nextbest-client) and the server (nextbest); "dev" brings the simulate extra too.
want="$(cat "$ROOT/pyproject.toml" "$ROOT/clients/python/pyproject.toml" \
  "$ROOT/proto/python/pyproject.toml" | sha256sum | cut -c1-16)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
    -e "$ROOT/proto/python" -e "$ROOT/clients/python" -e "$ROOT${EXTRAS:+[$EXTRAS]}"
  echo "$want" >"$stamp"
fi
