//! Registry calls: warm-pool latency, throughput by concurrency, the cost
//! of a `funcs` call against a direct one, and Lua beside WASM: a trivial
//! Lua function, Lua → WASM and WASM → Lua, each beside the direct
//! WASM → WASM `funcs` call measured in the same run.
//!
//! ```sh
//! cargo bench --bench registry
//! ```

use serde_json::json;
use std::time::{Duration, Instant};
use wippy_wasm::registry::Registry;
use wippy_wasm::Val;

fn example() -> Registry {
    Registry::load(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/registry")).expect("example registry")
}

/// Best of three runs of `f` doing `n` calls; returns the duration per call.
fn per_call(n: u32, mut f: impl FnMut(u32)) -> Duration {
    f(n / 10);
    (0..3)
        .map(|_| {
            let t = Instant::now();
            f(n);
            t.elapsed() / n
        })
        .min()
        .unwrap()
}

fn main() {
    let r = example();
    let add = |r: &Registry| {
        let r = r.clone();
        move |n: u32| {
            for i in 0..n {
                wippy_wasm::dispatch::block_on(r.call("demo:add", &[Val::S32(i as i32), Val::S32(1)])).unwrap();
            }
        }
    };
    let warm = per_call(20_000, add(&r));
    println!(
        "warm-pool call of demo:add (inline pool): {:.2} µs",
        warm.as_secs_f64() * 1e6
    );
    let json = per_call(20_000, |n| {
        for i in 0..n {
            r.call_json("demo:add", &[json!(i), json!(1)]).unwrap();
        }
    });
    println!(
        "the same through JSON (call_json):        {:.2} µs",
        json.as_secs_f64() * 1e6
    );

    println!("\nthroughput, demo:hello (lazy pool, max 4), one executor thread:");
    for callers in [1usize, 8, 64] {
        let total = 20_000usize;
        let ex = async_executor::Executor::new();
        let t = Instant::now();
        let tasks: Vec<_> = (0..callers)
            .map(|_| {
                let r = r.clone();
                ex.spawn(async move {
                    for _ in 0..total / callers {
                        r.call("demo:hello", &[Val::String("bench".into())]).await.unwrap();
                    }
                })
            })
            .collect();
        wippy_wasm::dispatch::block_on(ex.run(async {
            for task in tasks {
                task.await;
            }
        }));
        let secs = t.elapsed().as_secs_f64();
        println!("  {callers:>3} callers: {:>9.0} calls/s", total as f64 / secs);
    }

    let direct = per_call(10_000, |n| {
        for _ in 0..n {
            wippy_wasm::dispatch::block_on(r.call("demo:hello", &[Val::String("x".into())])).unwrap();
        }
    });
    let relayed = per_call(10_000, |n| {
        for _ in 0..n {
            wippy_wasm::dispatch::block_on(r.call(
                "demo:relay",
                &[Val::String("demo:hello".into()), Val::String("x".into())],
            ))
            .unwrap();
        }
    });
    println!(
        "\nfuncs: demo:relay → demo:hello {:.2} µs, direct demo:hello {:.2} µs, overhead {:.2} µs ({:.2}×)",
        relayed.as_secs_f64() * 1e6,
        direct.as_secs_f64() * 1e6,
        (relayed - direct).as_secs_f64() * 1e6,
        relayed.as_secs_f64() / direct.as_secs_f64()
    );

    lua(direct, relayed);
}

/// The example's WASM functions beside Lua ones: `b:ping` (returns its
/// input), `b:to_wasm` (calls `b:hello` through funcs).
fn lua_registry() -> Registry {
    let dir = std::env::temp_dir().join(format!("wippy-bench-lua-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bin = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/registry/bin");
    let yaml = format!(
        r#"namespace: b
entries:
  - name: bin
    kind: fs.directory
    directory: {bin}
  - name: hello
    kind: function.wasm
    fs: bin
    path: /hello.wasm
    hash: sha256:f8226548da1c33b15c491bf519232f62cad9ac527da3b6386095ec42e488964f
    method: hello
    pool: {{type: inline}}
  - name: relay
    kind: function.wasm
    fs: bin
    path: /relay.wasm
    hash: sha256:51b94da2c97a36f20a4facb93e08a81224abe4ad3d54645ff5dbd99c2e7bb0c9
    method: relay
    imports: [funcs]
    pool: {{type: inline}}
  - name: ping
    kind: function.lua
    source: "return {{ main = function(s) return s end }}"
    method: main
    pool: {{type: inline}}
  - name: to_wasm
    kind: function.lua
    source: "local funcs = require('funcs') return {{ main = function(s) return funcs.call('b:hello', s) end }}"
    method: main
    modules: [funcs]
    pool: {{type: inline}}
"#
    );
    std::fs::write(dir.join("_index.yaml"), yaml).unwrap();
    Registry::load(dir.join("_index.yaml")).expect("bench registry")
}

fn lua(direct: Duration, relayed: Duration) {
    let r = lua_registry();
    let json_call = |id: &'static str, args: Vec<serde_json::Value>| {
        let r = r.clone();
        move |n: u32| {
            for _ in 0..n {
                r.call_json(id, &args).unwrap();
            }
        }
    };
    let wasm = per_call(20_000, json_call("b:hello", vec![json!("x")]));
    let ping = per_call(20_000, json_call("b:ping", vec![json!("x")]));
    let lua_to_wasm = per_call(10_000, json_call("b:to_wasm", vec![json!("x")]));
    let wasm_to_wasm = per_call(10_000, json_call("b:relay", vec![json!("b:hello"), json!("x")]));
    let wasm_to_lua = per_call(10_000, json_call("b:relay", vec![json!("b:ping"), json!("x")]));
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    println!("\nLua beside WASM (call_json, inline pools; µs per call):");
    println!("{:<44} {:>8} {:>18} {:>7}", "call", "µs", "beside (µs)", "ratio");
    let row = |name: &str, a: Duration, what: &str, b: Duration| {
        println!(
            "{name:<44} {:>8.2} {:>8.2} {what:<9} {:>6.2}x",
            us(a),
            us(b),
            a.as_secs_f64() / b.as_secs_f64()
        );
    };
    row("trivial Lua function (warm pool)", ping, "WASM", wasm);
    row("Lua → WASM through funcs", lua_to_wasm, "WASM→WASM", wasm_to_wasm);
    row("WASM → Lua through funcs", wasm_to_lua, "WASM→WASM", wasm_to_wasm);
    println!(
        "overheads: Lua → WASM {:.2} µs over the Lua call alone, WASM → Lua {:.2} µs over WASM → WASM; \
         the WASM → WASM funcs call itself costs {:.2} µs over a direct call ({:.2} µs vs {:.2} µs, typed path)",
        us(lua_to_wasm) - us(ping) - us(wasm),
        us(wasm_to_lua) - us(wasm_to_wasm),
        us(relayed) - us(direct),
        us(relayed),
        us(direct)
    );
}
