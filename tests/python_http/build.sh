#!/usr/bin/env bash
# Builds the Python HTTP guest (CPython + app.py, ~18 MB) with componentize-py
# (PyPI `componentize-py`) against the vendored WASI WIT
# (wit/deps links to the repository's wit/deps):
#   tests/python_http/build.sh OUT.wasm
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${1:-$here/pyhttp.wasm}"
cd "$here"
python3 -c 'import sys; from componentize_py import script; sys.argv[0] = "componentize-py"; sys.exit(script())' \
    -d wit -w pyhttp componentize app -o "$out"
