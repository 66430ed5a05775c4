#!/usr/bin/env bash
# Builds reactor.wasm, a wasm32-wasip1 reactor, from reactor.c with zig's
# clang (PyPI `ziglang`). The built module is committed so tests need no zig.
set -euo pipefail
cd "$(dirname "$0")"
python3 -m pip install --quiet 'ziglang==0.17.1' >/dev/null 2>&1 || true
python3 -m ziglang cc -target wasm32-wasi -mexec-model=reactor -O2 -s reactor.c -o reactor.wasm
echo "reactor sha256:$(sha256sum reactor.wasm | cut -d' ' -f1)"
