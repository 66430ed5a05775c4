//! Hostile guests never freeze, exhaust or abort the host: recursion
//! through `funcs` ends at the depth limit whatever the pool.

use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::Duration;
use wippy_wasm::registry::Registry;

fn scratch(name: &str) -> PathBuf {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let d = std::env::temp_dir().join(format!("wippy-guests-{name}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn guest(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/guests")
        .join(name)
}

/// Runs `f` on a thread and waits at most `limit` for it: a deadlock fails
/// the test instead of hanging it.
fn within<R: Send + 'static>(limit: Duration, f: impl FnOnce() -> R + Send + 'static) -> R {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(limit)
        .unwrap_or_else(|_| panic!("no answer within {limit:?}: the host is stuck"))
}

fn registry(dir: &Path, entries: &str) -> Registry {
    std::fs::write(
        dir.join("_index.yaml"),
        format!("version: \"1.0\"\nnamespace: h\nentries:\n{entries}"),
    )
    .unwrap();
    Registry::load(dir).unwrap_or_else(|e| panic!("{e:#}"))
}

#[test]
fn recursion_through_funcs_ends_at_the_depth_limit_in_every_pool() {
    for pool in [
        "",
        "pool: {type: inline}",
        "pool: {type: lazy, max_size: 2}",
        "pool: {type: static, workers: 1}",
        "pool: {type: adaptive, max_size: 2}",
    ] {
        let dir = scratch("loop");
        std::fs::copy(guest("loop.wat"), dir.join("loop.wat")).unwrap();
        let r = registry(
            &dir,
            &format!(
                "  - name: loop\n    kind: function.wat\n    source: file://loop.wat\n    method: loop\n    imports: [funcs]\n    {pool}\n"
            ),
        );
        let r2 = r.clone();
        let out = within(Duration::from_secs(60), move || {
            r2.call_json("h:loop", &[json!("again")])
        });
        let out = out.unwrap_or_else(|e| panic!("{pool}: {e:#}"));
        let err = out["err"]
            .as_str()
            .unwrap_or_else(|| panic!("{pool}: not an err: {out}"));
        assert!(err.contains("call depth limit"), "{pool}: {err}");
        // The pool is whole afterwards: the next call is served too.
        let r3 = r.clone();
        let again = within(Duration::from_secs(60), move || r3.call_json("h:loop", &[json!("x")])).unwrap();
        assert!(
            again["err"].as_str().is_some_and(|e| e.contains("call depth limit")),
            "{pool}: {again}"
        );
    }
}

#[test]
fn lua_recursion_through_funcs_ends_at_the_depth_limit_in_an_inline_pool() {
    let dir = scratch("lua-loop");
    let r = registry(
        &dir,
        r#"  - name: loop
    kind: function.lua
    method: run
    modules: [funcs]
    pool: {type: inline}
    source: |
      local funcs = require("funcs")
      function run(x)
        local v, err = funcs.call("h:loop", x)
        if err then return err end
        return v
      end
"#,
    );
    let out = within(Duration::from_secs(60), move || {
        r.call_json("h:loop", &[json!("again")])
    })
    .unwrap();
    assert!(out.as_str().is_some_and(|e| e.contains("call depth limit")), "{out}");
}

#[test]
fn a_memory_grow_within_the_limit_succeeds_under_fuel_slicing() {
    // 2048 pages (128 MiB) under a 200 MB limit: the grow costs more fuel
    // than one slice, so it is retried after the slice; it must be charged
    // once. 4096 pages (256 MiB) is over the limit and fails (-1).
    let dir = scratch("grow");
    let r = registry(
        &dir,
        r#"  - name: grow
    kind: function.wat
    wit: "grow: func(pages: u32) -> s32;"
    method: grow
    options:
      limits:
        memory_bytes: 200000000
    source: |
      (module (memory 1)
        (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0))))
"#,
    );
    assert_eq!(r.call_json("h:grow", &[json!(2048)]).unwrap(), json!(1));
    assert_eq!(r.call_json("h:grow", &[json!(4096)]).unwrap(), json!(-1));
}
