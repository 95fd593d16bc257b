#!/usr/bin/env bash
# The Python SDK's API reference: pdoc renders nextbest_client and its framework adapters
# (Google-style docstrings) into OUT_DIR, default build/api; open OUT_DIR/index.html.
#   bash scripts/docs.sh [OUT_DIR]
# Any warning pdoc prints (an annotation it cannot resolve, a module it cannot import, a
# docstring it cannot process) fails the build, so a broken docstring fails scripts/test.sh.
# An adapter whose framework this venv lacks (CrewAI and AutoGen pin what the server pins
# differently: they live in .venv/adapters/) is skipped, and named on stdout.
# scripts/test.sh makes .venv before calling this; alone, this makes it when pdoc is missing.
# NEXTBEST_DOCS_PYTHON picks another interpreter (it must have pdoc and nextbest_client).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${1:-$ROOT/build/api}"
PY="${NEXTBEST_DOCS_PYTHON:-$ROOT/.venv/bin/python}"

if [ -z "${NEXTBEST_DOCS_PYTHON:-}" ] && ! "$PY" -c 'import pdoc' >/dev/null 2>&1; then
  # shellcheck source=bootstrap.sh
  source "$ROOT/scripts/bootstrap.sh" dev
  PY="$VENV/bin/python"
fi

# pdoc walks the adapters package: leave out its private module and each adapter whose
# framework is not installed here, and silence only pdoc's warning that it did not import.
# An adapter failing for any other reason is left in, for pdoc to fail on.
missing="$("$PY" - <<'EOF'
import importlib

for adapter in ("langgraph", "langchain", "crewai", "autogen"):
    module = f"nextbest_client.adapters.{adapter}"
    try:
        importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if not (exc.name or "nextbest_client").startswith("nextbest_client"):
            print(f"{module} {exc.name}")
EOF
)"
specs=(nextbest_client nextbest_client.adapters '!nextbest_client\.adapters\._')
ignore=()
while read -r module framework; do
  [ -n "$module" ] || continue
  echo "== docs: skipping $module: $framework is not installed in this venv"
  specs+=("!${module//./\\.}\$")
  ignore+=(-W "ignore:Couldn't import $module:UserWarning")
done <<<"$missing"

mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
# Only pdoc's own files: a page of a module no longer documented must not linger.
rm -rf "$OUT/nextbest_client" "$OUT/nextbest_client.html" "$OUT/index.html" "$OUT/search.js"
warnings="$(mktemp)"
trap 'rm -f "$warnings"' EXIT
cd "$ROOT"
version="$("$PY" -c 'import nextbest_client; print(nextbest_client.__version__)')"
status=0
"$PY" ${ignore[@]+"${ignore[@]}"} -m pdoc --docformat google --footer-text "nextbest-client $version" \
  --output-directory "$OUT" "${specs[@]}" 2>"$warnings" || status=$?
if [ "$status" != 0 ] || [ -s "$warnings" ]; then
  cat "$warnings" >&2
  echo "docs: pdoc failed or printed warnings (above): fix the docstrings or annotations" >&2
  exit 1
fi
echo "== docs: $OUT/index.html"
