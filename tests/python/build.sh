#!/usr/bin/env bash
# Builds the Python guest (CPython + app.py, ~18 MB) with componentize-py
# (PyPI `componentize-py`): tests/python/build.sh OUT.wasm
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${1:-$here/pyguest.wasm}"
cd "$here"
python3 -c 'import sys; from componentize_py import script; sys.argv[0] = "componentize-py"; sys.exit(script())' \
    -d wit -w pyguest componentize app -o "$out"
