#!/usr/bin/env bash
# The image's build steps, run by both the Dockerfile and tests/deploy/test_image.py, so what
# the test checks is what the image does:
#
#   build-wheels.sh build OUT            wheels of nextbest, nextbest-client, nextbest-proto and
#                                        every pinned dependency into OUT (needs the package
#                                        index); no extra: the simulate extra (rich, matplotlib)
#                                        stays out of the image
#   build-wheels.sh install WHEELS VENV  a fresh virtualenv at VENV with nextbest installed
#                                        from WHEELS alone (--no-index: no network, no compiler)
#
# Run from the source tree (the Dockerfile's build stage WORKDIR); PYTHON picks the interpreter.
set -euo pipefail
PYTHON="${PYTHON:-python3}"
pip_flags=(--disable-pip-version-check --no-input --quiet)

case "${1:-}" in
  build)
    out="${2:?build-wheels.sh build OUT}"
    mkdir -p "$out"
    # The contract and the client first: the server pins nextbest-proto==0.1.0 and
    # nextbest-client==0.1.0, which are these directories.
    "$PYTHON" -m pip wheel "${pip_flags[@]}" --wheel-dir "$out" ./proto/python ./clients/python .
    ;;
  install)
    wheels="${2:?build-wheels.sh install WHEELS VENV}"
    venv="${3:?build-wheels.sh install WHEELS VENV}"
    "$PYTHON" -m venv "$venv"
    "$venv/bin/python" -m pip install "${pip_flags[@]}" --no-index --find-links "$wheels" nextbest
    "$venv/bin/nextbest" --help >/dev/null  # the entry point imports
    ;;
  *)
    echo "usage: build-wheels.sh build OUT | install WHEELS VENV" >&2
    exit 2
    ;;
esac
