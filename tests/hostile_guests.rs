//! Hostile guests never freeze, exhaust or abort the host: recursion
//! through `funcs` ends at the depth limit whatever the pool; start
//! functions are sliced and stopped at the call's deadline, also behind
//! `serve`; instantiation trees are bounded; `memory.grow` is charged once.

mod common;

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

/// A core module whose start function never returns.
const ENDLESS_START: &str = r#"(module (func $forever (loop $l (br $l))) (start $forever)
      (func (export "run") (result i32) i32.const 1))"#;

#[test]
fn an_endless_start_function_stops_at_max_execution() {
    let dir = scratch("start");
    let r = registry(
        &dir,
        &format!(
            r#"  - name: stuck
    kind: function.wat
    wit: "run: func() -> u32;"
    method: run
    options:
      limits:
        max_execution_ms: 200
    source: |
      {ENDLESS_START}
"#
        ),
    );
    let started = std::time::Instant::now();
    let err = within(Duration::from_secs(30), move || r.call_json("h:stuck", &[])).unwrap_err();
    let err = format!("{err:#}");
    assert!(
        err.contains("instantiating `h:stuck` ran longer than max_execution_ms (200 ms)"),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
}

/// A component instantiating the level below four times, `depth` levels
/// deep: 4^depth instances from a few kilobytes.
fn instantiation_bomb(depth: usize) -> String {
    let mut body = String::from("(core module $m) (core instance (instantiate $m))");
    for _ in 0..depth {
        body = format!("(component $c {body}) {}", "(instance (instantiate $c)) ".repeat(4));
    }
    // The root exports something to call.
    format!(
        r#"(component {body}
      (core module $r (func (export "run") (result i32) i32.const 1)) (core instance $r (instantiate $r))
      (func (export "run") (result u32) (canon lift (core func $r "run"))))"#
    )
}

#[test]
fn an_instantiation_bomb_is_refused_by_the_instance_limit() {
    let bomb = instantiation_bomb(40);
    assert!(bomb.len() < 8 << 10, "{} bytes", bomb.len());
    let dir = scratch("bomb");
    std::fs::write(dir.join("bomb.wat"), &bomb).unwrap();
    let r = registry(
        &dir,
        r#"  - name: bomb
    kind: function.wat
    source: file://bomb.wat
    method: run
    options:
      limits:
        max_execution_ms: 100
        memory_bytes: 1048576
"#,
    );
    let err = within(Duration::from_secs(60), move || r.call_json("h:bomb", &[])).unwrap_err();
    let err = format!("{err:#}");
    assert!(
        err.contains("too many component instances in one store (the limit is 10000)")
            || err.contains("ran longer than max_execution_ms"),
        "{err}"
    );
}

#[test]
fn endless_start_functions_behind_serve_do_not_freeze_it() {
    let dir = scratch("serve-start");
    std::fs::write(
        dir.join("_index.yaml"),
        format!(
            r#"version: "1.0"
namespace: h
entries:
  - name: stuck
    kind: function.wat
    wit: "run: func() -> u32;"
    method: run
    transport: wasi-http
    options:
      limits:
        max_execution_ms: 300
    source: |
      {ENDLESS_START}
  - name: ok
    kind: function.wat
    wit: "run: func() -> u32;"
    method: run
    transport: wasi-http
    source: |
      (module (func (export "run") (result i32) i32.const 7))
  - name: stuck_route
    kind: http.endpoint
    method: GET
    path: /stuck
    func: stuck
  - name: ok_route
    kind: http.endpoint
    method: GET
    path: /ok
    func: ok
"#
        ),
    )
    .unwrap();
    let mut served = common::Served::start(&["-c", dir.to_str().unwrap()]);
    let addr = served.addr;
    // More stuck requests than the server has threads, at once.
    let stuck: Vec<_> = (0..8)
        .map(|_| std::thread::spawn(move || common::http::get(addr, "/stuck")))
        .collect();
    std::thread::sleep(Duration::from_millis(50));
    let started = std::time::Instant::now();
    let ok = common::http::get(addr, "/ok");
    assert_eq!((ok.status, ok.text().trim()), (200, "7"), "{}", served.stderr());
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    for t in stuck {
        let r = t.join().unwrap();
        assert_eq!(r.status, 500, "{}", r.text());
        assert!(r.text().contains("ran longer than max_execution_ms"), "{}", r.text());
    }
    // SIGINT stops it even while start functions spin.
    let _more: Vec<_> = (0..4)
        .map(|_| std::thread::spawn(move || common::http::exchange(addr, b"GET /stuck HTTP/1.1\r\nHost: x\r\n\r\n")))
        .collect();
    std::thread::sleep(Duration::from_millis(50));
    assert!(
        served.interrupt(Duration::from_secs(5)).is_some(),
        "still running after SIGINT"
    );
}

/// Peak RSS of a whole `wippy-wasm call` process running one flood, in KiB:
/// the CLI, the registry and the guest together.
const FLOOD_PEAK_KIB: u64 = 128 * 1024;

/// `wippy-wasm call h:flood` on `guest`, under a 1 MiB memory limit and a
/// 20 s deadline: the error it ends with, and the process's peak RSS.
fn flood(guest_file: &str, imports: &str) -> (String, u64) {
    let dir = scratch("flood");
    std::fs::copy(guest(guest_file), dir.join("flood.wat")).unwrap();
    std::fs::write(
        dir.join("_index.yaml"),
        format!(
            "namespace: h\nentries:\n  - name: flood\n    kind: function.wat\n    source: file://flood.wat\n    method: flood\n    imports: {imports}\n    options:\n      limits:\n        memory_bytes: 1048576\n        max_execution_ms: 20000\n"
        ),
    )
    .unwrap();
    let m = common::cli_measured(&["call", "-c", dir.to_str().unwrap(), "h:flood"]);
    assert_ne!(m.status, 0, "the flood cannot succeed: {}", m.stdout);
    eprintln!(
        "{guest_file}: peak RSS {} KiB in {:?}: {}",
        m.peak_kib,
        m.elapsed,
        m.stderr.trim()
    );
    (m.stderr, m.peak_kib)
}

#[test]
fn a_resource_new_flood_stops_at_the_handle_limit() {
    let (err, peak) = flood("handle_flood.wat", "[]");
    assert!(
        err.contains("handle table full") && err.contains("100000 handles"),
        "{err}"
    );
    assert!(peak < FLOOD_PEAK_KIB, "peak RSS {peak} KiB, bound {FLOOD_PEAK_KIB} KiB");
}

#[test]
fn a_host_pollable_flood_stops_at_the_resource_limit() {
    let (err, peak) = flood("pollable_flood.wat", "[wasi:clocks, wasi:io]");
    assert!(err.contains("resource table is full"), "{err}");
    assert!(peak < FLOOD_PEAK_KIB, "peak RSS {peak} KiB, bound {FLOOD_PEAK_KIB} KiB");
}

/// Peak RSS of one `wippy-wasm` process handed a 16 MiB `list<u8>` result,
/// in KiB: the guest's memory, the bytes once, and their text. A `Val` per
/// byte (and a JSON tree on top) took over 1 GiB.
const BYTES_PEAK_KIB: u64 = 256 * 1024;
const SIXTEEN_MIB: usize = 16 << 20;

fn big_registry() -> PathBuf {
    let dir = scratch("big");
    std::fs::copy(guest("big_bytes.wat"), dir.join("big.wat")).unwrap();
    let entry = |name: &str| {
        format!("  - name: {name}\n    kind: function.wat\n    source: file://big.wat\n    method: {name}\n    options:\n      limits:\n        memory_bytes: 134217728\n")
    };
    std::fs::write(
        dir.join("_index.yaml"),
        format!(
            "namespace: h\nentries:\n{}{}{}",
            entry("bytes"),
            entry("words"),
            entry("strings")
        ),
    )
    .unwrap();
    dir
}

#[test]
fn a_large_list_u8_result_is_held_compactly() {
    let dir = big_registry();
    let n = SIXTEEN_MIB.to_string();
    let m = common::cli_measured(&["call", "-c", dir.to_str().unwrap(), "h:bytes", &n]);
    assert_eq!(m.status, 0, "{}", m.stderr);
    let text = m.stdout.trim();
    assert!(
        text.starts_with("[0,1,2,") && text.ends_with(",254,255]"),
        "{}",
        &text[..40]
    );
    assert_eq!(text.matches(',').count(), SIXTEEN_MIB - 1);
    eprintln!("call: peak RSS {} KiB in {:?}", m.peak_kib, m.elapsed);
    assert!(
        m.peak_kib < BYTES_PEAK_KIB,
        "call: peak RSS {} KiB, bound {BYTES_PEAK_KIB} KiB",
        m.peak_kib
    );

    // 8 M `u32`s: 32 MiB compact, 256 MiB as a `Val` each.
    let m = common::cli_measured(&["call", "-c", dir.to_str().unwrap(), "h:words", "8388608"]);
    assert_eq!(m.status, 0, "{}", m.stderr);
    assert_eq!(m.stdout.trim().matches(',').count(), 8388607);
    eprintln!("words: peak RSS {} KiB in {:?}", m.peak_kib, m.elapsed);
    assert!(
        m.peak_kib < BYTES_PEAK_KIB,
        "words: peak RSS {} KiB, bound {BYTES_PEAK_KIB} KiB",
        m.peak_kib
    );

    let wat = guest("big_bytes.wat");
    let invoke = format!("bytes({SIXTEEN_MIB})");
    let m = common::cli_measured(&["run", "--invoke", &invoke, wat.to_str().unwrap()]);
    assert_eq!(m.status, 0, "{}", m.stderr);
    assert!(m.stdout.trim().ends_with(", 254, 255]"), "{}", m.stderr);
    eprintln!("run --invoke: peak RSS {} KiB in {:?}", m.peak_kib, m.elapsed);
    assert!(
        m.peak_kib < BYTES_PEAK_KIB,
        "run: peak RSS {} KiB, bound {BYTES_PEAK_KIB} KiB",
        m.peak_kib
    );
}

#[test]
fn a_result_too_large_to_lift_is_refused_at_the_per_call_bound() {
    // 10 M empty strings are 80 MB of guest memory, but over 300 MB as
    // host values: over the default 256 MiB `Limits::lifted_bytes`, refused
    // before allocating.
    let dir = big_registry();
    let m = common::cli_measured(&["call", "-c", dir.to_str().unwrap(), "h:strings", "10000000"]);
    assert_ne!(m.status, 0, "{}", &m.stdout[..m.stdout.len().min(80)]);
    assert!(
        m.stderr.contains("`Limits::lifted_bytes`") && m.stderr.contains("h:strings"),
        "{}",
        m.stderr
    );
    eprintln!("strings: peak RSS {} KiB in {:?}", m.peak_kib, m.elapsed);
    assert!(
        m.peak_kib < BYTES_PEAK_KIB,
        "peak RSS {} KiB, bound {FLOOD_PEAK_KIB} KiB",
        m.peak_kib
    );
}
