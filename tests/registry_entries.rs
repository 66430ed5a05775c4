//! The registry as Wippy users declare it: import groups and single
//! interfaces, world-level types, broken entries kept apart, Wippy's pools
//! (selection, validation, adaptive, retained memory, worker threads),
//! unknown fields, and the `wasi-http` transport's responses. Guests: the C
//! registry component (`tests/c_registry/`, wit-bindgen C + ziglang) and
//! hand-written WAT.

mod common;

use common::http::{get, post};
use common::{cli, Served};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use wippy_wasm::pool::PoolKind;
use wippy_wasm::registry::config::PoolSpec;
use wippy_wasm::registry::imports::Grants;
use wippy_wasm::registry::{LoadOptions, Registry};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A fresh folder of its own for each call (tests run in parallel).
fn scratch(name: &str) -> PathBuf {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let d = std::env::temp_dir().join(format!("wippy-entries-{name}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(d.join("bin")).unwrap();
    d
}

fn write(dir: &Path, yaml: &str) -> PathBuf {
    let file = dir.join("_index.yaml");
    std::fs::write(&file, yaml).unwrap();
    file
}

/// Copies the C guest and the example's hello into `dir/bin`; their hashes.
fn c_guest(dir: &Path) -> (String, String) {
    std::fs::copy(root().join("tests/c_registry/guest.wasm"), dir.join("bin/guest.wasm")).unwrap();
    std::fs::copy(
        root().join("examples/registry/bin/hello.wasm"),
        dir.join("bin/hello.wasm"),
    )
    .unwrap();
    (
        common::sha256(&dir.join("bin/guest.wasm")),
        common::sha256(&dir.join("bin/hello.wasm")),
    )
}

fn c_registry(dir: &Path) -> PathBuf {
    let (guest, hello) = c_guest(dir);
    write(
        dir,
        &format!(
            r#"namespace: c
entries:
  - name: bin
    kind: fs.directory
    directory: ./bin
  - name: hello
    kind: function.wasm
    fs: bin
    path: /hello.wasm
    hash: sha256:{hello}
    method: hello
  - name: summarize
    kind: function.wasm
    fs: bin
    path: /guest.wasm
    hash: sha256:{guest}
    method: summarize
    transport: wasi-http
    imports: [funcs]
  - name: relay
    kind: function.wasm
    fs: bin
    path: /guest.wasm
    hash: sha256:{guest}
    method: relay
    imports: [wippy:runtime/funcs@0.1.0]
  - name: ping
    kind: function.wat
    source: "(module (func (export \"ping\")))"
    wit: "ping: func();"
    method: ping
    transport: wasi-http
  - name: summarize_route
    kind: http.endpoint
    method: POST
    path: /summarize
    func: summarize
  - name: ping_route
    kind: http.endpoint
    method: GET
    path: /ping
    func: ping
"#
        ),
    )
}

#[test]
fn a_c_component_with_a_world_level_record_runs_through_call_and_serve() {
    let dir = scratch("c");
    let file = c_registry(&dir);
    let config = file.to_str().unwrap();
    let (status, out, err) = cli(&["call", "-c", config, "c:summarize", "[3, -1, 4]"]);
    assert_eq!(status, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v, json!({"count": 3, "sum": 6, "min": -1, "max": 4, "mean": 2.0}));
    // `relay` reaches another entry through funcs (declared as the single
    // interface) and hands its `result` back.
    let (status, out, err) = cli(&["call", "-c", config, "c:relay", "\"c:hello\"", "\"c\""]);
    assert_eq!(status, 0, "{err}");
    assert_eq!(out.trim(), r#"{"ok":"hello, c"}"#);
    let (_, out, _) = cli(&["call", "-c", config, "c:relay", "\"c:nobody\"", "\"c\""]);
    assert!(
        out.contains(r#""err""#) && out.contains("unknown function `c:nobody`"),
        "{out}"
    );

    let server = Served::start(&["-c", config]);
    let r = post(server.addr, "/summarize", b"[10, 20]");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/json"));
    let v: serde_json::Value = serde_json::from_str(&r.text()).unwrap();
    assert_eq!(v["sum"], json!(30));
    let r = get(server.addr, "/ping");
    assert_eq!(r.status, 204, "a function returning nothing answers 204");
    assert!(r.body.is_empty());
}

/// The groups exactly as the product page defines them.
const SPEC: &[(&str, &[&str])] = &[
    ("wasi:io", &["wasi:io/error", "wasi:io/streams", "wasi:io/poll"]),
    ("wasi:poll", &["wasi:io/poll"]),
    (
        "wasi:cli",
        &[
            "wasi:cli/environment",
            "wasi:cli/exit",
            "wasi:cli/stdin",
            "wasi:cli/stdout",
            "wasi:cli/stderr",
            "wasi:cli/terminal-input",
            "wasi:cli/terminal-output",
            "wasi:cli/terminal-stdin",
            "wasi:cli/terminal-stdout",
            "wasi:cli/terminal-stderr",
        ],
    ),
    (
        "wasi:clocks",
        &["wasi:clocks/wall-clock", "wasi:clocks/monotonic-clock"],
    ),
    (
        "wasi:filesystem",
        &["wasi:filesystem/types", "wasi:filesystem/preopens"],
    ),
    (
        "wasi:random",
        &[
            "wasi:random/random",
            "wasi:random/insecure",
            "wasi:random/insecure-seed",
        ],
    ),
    (
        "wasi:sockets",
        &[
            "wasi:sockets/network",
            "wasi:sockets/instance-network",
            "wasi:sockets/ip-name-lookup",
            "wasi:sockets/tcp",
            "wasi:sockets/tcp-create-socket",
            "wasi:sockets/udp",
            "wasi:sockets/udp-create-socket",
        ],
    ),
    ("wasi:http", &["wasi:http/types", "wasi:http/outgoing-handler"]),
    ("funcs", &["wippy:runtime/funcs"]),
];

/// Every interface of the vendored WIT, and ours.
fn all_interfaces() -> Vec<String> {
    let mut resolve = wit_parser::Resolve {
        all_features: true,
        ..Default::default()
    };
    resolve.push_dir(root().join("tests/c_http/wit")).unwrap();
    let mut names: Vec<String> = resolve
        .interfaces
        .iter()
        .filter_map(|(id, _)| resolve.id_of(id))
        .map(|n| wippy_wasm::component::names::split_version(&n).0.to_string())
        .collect();
    names.push("wippy:runtime/funcs".into());
    names
}

#[test]
fn each_group_grants_exactly_its_interfaces() {
    let all = all_interfaces();
    assert!(all.len() > 30, "{all:?}");
    for (group, want) in SPEC {
        let g = Grants::resolve(&[group.to_string()], |_| true).unwrap();
        for iface in &all {
            let versioned = format!("{iface}@0.2.3");
            assert_eq!(
                g.allows(&versioned, false),
                want.contains(&iface.as_str()),
                "{group} and {iface}"
            );
        }
    }
    // A single interface grants just itself, at any version.
    let one = Grants::resolve(&["wasi:cli/stdout@0.2.0".into()], |_| true).unwrap();
    assert!(one.allows("wasi:cli/stdout@0.2.12", false));
    assert!(!one.allows("wasi:cli/stderr@0.2.12", false));
    // `wasi1` (any alias) is preview 1: for an adapted core module only.
    for alias in ["wasi1", "wasi-preview1", "preview1", "wasi_snapshot_preview1"] {
        let p1 = Grants::resolve(&[alias.into()], |_| true).unwrap();
        assert!(p1.allows("wasi:cli/stdout@0.2.12", true), "{alias}");
        assert!(!p1.allows("wasi:cli/stdout@0.2.12", false), "{alias}");
        assert!(!p1.allows("wasi:sockets/tcp@0.2.12", true), "{alias}");
    }
    let err = Grants::resolve(&["wasi:nothing".into()], |_| true).unwrap_err();
    assert!(err.contains("unknown import `wasi:nothing`"), "{err}");
}

/// A component using `wasi:cli/environment` (its arguments) only.
const ARGS_WAT: &str = r#"(component
  (import "wasi:cli/environment@0.2.3" (instance $env
    (export "get-arguments" (func (result (list string))))))
  (alias export $env "get-arguments" (func $args))
  (core module $Libc
    (memory (export "mem") 1)
    (global $next (mut i32) (i32.const 1024))
    (func (export "realloc") (param i32 i32 i32 i32) (result i32)
      (local $r i32)
      (local.set $r (i32.and (i32.add (global.get $next) (i32.const 7)) (i32.const -8)))
      (global.set $next (i32.add (local.get $r) (local.get 3)))
      (local.get $r)))
  (core instance $libc (instantiate $Libc))
  (core func $args' (canon lower (func $args) (memory (core memory $libc "mem")) (realloc (core func $libc "realloc"))))
  (core module $M
    (import "" "args" (func $args (param i32)))
    (import "" "mem" (memory 1))
    (func (export "count") (result i32)
      (call $args (i32.const 16))
      (i32.load (i32.const 20))))
  (core instance $m (instantiate $M (with "" (instance
    (export "args" (func $args'))
    (export "mem" (memory $libc "mem"))))))
  (func (export "count") (result u32) (canon lift (core func $m "count"))))"#;

fn args_registry(imports: &str) -> PathBuf {
    let dir = scratch("single");
    std::fs::write(dir.join("args.wat"), ARGS_WAT).unwrap();
    write(
        &dir,
        &format!(
            "namespace: s\nentries:\n  - name: count\n    kind: function.wat\n    source: file://args.wat\n    method: count\n    imports: {imports}\n    wasi:\n      args: [a, b]\n"
        ),
    )
}

#[test]
fn a_single_interface_grants_just_that_interface() {
    let r = Registry::load(args_registry("[wasi:cli/environment]")).unwrap();
    assert_eq!(r.call_json("s:count", &[]).unwrap(), json!(3), "argv0, a, b");
    let r = Registry::load(args_registry("[wasi:cli]")).unwrap();
    assert_eq!(r.call_json("s:count", &[]).unwrap(), json!(3));
    for imports in ["[wasi:cli/stdout]", "[wasi:io]", "[]"] {
        let err = format!("{:#}", Registry::load(args_registry(imports)).err().unwrap());
        assert!(
            err.contains("field `imports`")
                && err.contains("imports `wasi:cli/environment@0.2.3`; add `wasi:cli` to `imports`"),
            "{imports}: {err}"
        );
    }
    let err = format!(
        "{:#}",
        Registry::load(args_registry("[wasi:cli/nothing]")).err().unwrap()
    );
    assert!(err.contains("unknown import `wasi:cli/nothing`"), "{err}");
}

/// Imports an empty instance, a type-only instance and a world-level type.
const EMPTY_WAT: &str = r#"(component
  (import "empty" (instance))
  (import "shapes" (instance (type (record (field "a" u32))) (export "point" (type (eq 0)))))
  (type $stats (record (field "n" u32)))
  (import "stats" (type (eq $stats)))
  (core module $M (func (export "seven") (result i32) i32.const 7))
  (core instance $m (instantiate $M))
  (func (export "seven") (result u32) (canon lift (core func $m "seven"))))"#;

#[test]
fn imports_that_need_no_host_work_under_run_and_in_the_registry() {
    let dir = scratch("empty");
    let wat = dir.join("empty.wat");
    std::fs::write(&wat, EMPTY_WAT).unwrap();
    let (status, out, err) = cli(&["run", "--invoke", "seven()", wat.to_str().unwrap()]);
    assert_eq!((status, out.trim()), (0, "7"), "{err}");
    let file = write(
        &dir,
        "namespace: e\nentries:\n  - name: seven\n    kind: function.wat\n    source: file://empty.wat\n    method: seven\n",
    );
    assert_eq!(
        Registry::load(&file).unwrap().call_json("e:seven", &[]).unwrap(),
        json!(7)
    );
}

/// A tree with healthy entries, a wrong hash in one folder and a file that
/// is not YAML in another.
fn broken_tree() -> PathBuf {
    let dir = scratch("broken");
    let (_, hello) = c_guest(&dir);
    write(
        &dir,
        &format!(
            "namespace: ok\nentries:\n  - name: bin\n    kind: fs.directory\n    directory: ./bin\n  - name: hello\n    kind: function.wasm\n    fs: bin\n    path: /hello.wasm\n    hash: sha256:{hello}\n    method: hello\n    transport: wasi-http\n  - name: route\n    kind: http.endpoint\n    method: POST\n    path: /hello\n    func: hello\n"
        ),
    );
    std::fs::create_dir_all(dir.join("bad")).unwrap();
    let wrong = "1".repeat(64);
    std::fs::write(
        dir.join("bad/_index.yaml"),
        format!("namespace: bad\nentries:\n  - name: hash\n    kind: function.wasm\n    fs: ok:bin\n    path: /hello.wasm\n    hash: sha256:{wrong}\n    method: hello\n"),
    )
    .unwrap();
    std::fs::create_dir_all(dir.join("worse")).unwrap();
    std::fs::write(dir.join("worse/_index.yaml"), "namespace: [unclosed\n").unwrap();
    dir
}

#[test]
fn one_broken_entry_does_not_take_the_registry_down() {
    let dir = broken_tree();
    let config = dir.to_str().unwrap();
    let (status, out, err) = cli(&["call", "-c", config, "ok:hello", "\"tree\""]);
    assert_eq!((status, out.trim()), (0, "\"hello, tree\""), "{err}");
    // Each broken thing is reported once.
    assert_eq!(
        err.matches("entry `bad:hash`: field `hash`: mismatch").count(),
        1,
        "{err}"
    );
    assert_eq!(err.matches("worse/_index.yaml").count(), 1, "{err}");
    // Calling the broken entry returns its load error.
    let (status, _, err) = cli(&["call", "-c", config, "bad:hash"]);
    assert_ne!(status, 0);
    assert!(
        err.contains("`bad:hash` did not load") && err.contains("mismatch"),
        "{err}"
    );
    // --strict makes any problem fatal; check lists them all.
    let (status, _, err) = cli(&["call", "--strict", "-c", config, "ok:hello", "\"x\""]);
    assert_ne!(status, 0, "{err}");
    let (status, out, _) = cli(&["check", "-c", config]);
    assert_ne!(status, 0);
    assert!(out.contains("bad:hash") && out.contains("worse/_index.yaml"), "{out}");
    // The embedding API does the same with `keep_going`.
    let r = Registry::load_with(
        &dir,
        LoadOptions {
            keep_going: true,
            strict: false,
        },
    )
    .unwrap();
    assert_eq!(r.problems().len(), 2, "{:?}", r.problems());
    assert!(Registry::load(&dir).is_err(), "a plain load stops at the first problem");
    // serve -c serves the healthy endpoint.
    let server = Served::start(&["-c", config]);
    assert_eq!(post(server.addr, "/hello", b"web").text(), "hello, web");
    assert!(server.stderr_shows("bad:hash"), "{}", server.stderr());
}

fn pool(yaml: &str) -> Result<PoolKind, String> {
    let spec: PoolSpec = serde_yaml::from_str(yaml).unwrap();
    spec.config()
        .map(|c| c.kind)
        .map_err(|(field, why)| format!("{field}: {why}"))
}

#[test]
fn pools_are_chosen_and_checked_as_wippy_defines_them() {
    // Without a type.
    assert_eq!(pool("{}"), Ok(PoolKind::Lazy { max: 100 }));
    assert_eq!(pool("max_size: 4"), Ok(PoolKind::Lazy { max: 4 }));
    assert_eq!(pool("size: 3"), Ok(PoolKind::Inline));
    assert_eq!(pool("workers: 2"), Ok(PoolKind::Static { workers: 2, queue: 128 }));
    assert_eq!(
        pool("{workers: 2, buffer: 5}"),
        Ok(PoolKind::Static { workers: 2, queue: 5 })
    );
    // Explicit types and their defaults.
    assert_eq!(pool("type: inline"), Ok(PoolKind::Inline));
    assert_eq!(pool("type: lazy"), Ok(PoolKind::Lazy { max: 16 }));
    assert_eq!(pool("type: adaptive"), Ok(PoolKind::Adaptive { max: 16 }));
    assert_eq!(pool("type: static"), Ok(PoolKind::Static { workers: 8, queue: 512 }));
    assert_eq!(
        pool("{type: static, size: 3}"),
        Ok(PoolKind::Static { workers: 3, queue: 192 })
    );
    assert_eq!(
        pool("{type: static, size: 4, workers: 2}"),
        Ok(PoolKind::Static { workers: 2, queue: 128 })
    );
    // Refused, naming the field.
    for (yaml, want) in [
        ("max_size: -1", "pool.max_size: must not be negative"),
        ("{type: static, workers: -2}", "pool.workers: must not be negative"),
        (
            "{type: inline, max_size: 4}",
            "pool.max_size: does not apply to an inline pool",
        ),
        ("{type: inline, size: 2}", "pool.size: an inline pool has one instance"),
        ("{type: lazy, workers: 2}", "pool.workers: applies to static pools"),
        (
            "{type: static, max_size: 2}",
            "pool.max_size: applies to lazy and adaptive pools",
        ),
        ("{workers: 2, max_size: 4}", "pool.max_size: contradicts `workers`"),
        ("buffer: 10", "pool.buffer: applies to static pools"),
        ("type: huge", "pool.type: unknown pool type `huge`"),
        (
            "{worker_class: wasm, buffer: 3}",
            "pool.buffer: does not apply with `worker_class`",
        ),
    ] {
        let got = pool(yaml).unwrap_err();
        assert!(got.starts_with(want), "{yaml}: {got}");
    }
    // The registry reports them at load, with the file and entry.
    let dir = scratch("poolcheck");
    let file = write(
        &dir,
        "namespace: p\nentries:\n  - name: f\n    kind: function.wat\n    source: \"(component)\"\n    method: m\n    pool:\n      type: static\n      workers: -1\n",
    );
    let all = Registry::check(&file).join("\n");
    assert!(
        all.contains("entry `p:f`: field `pool.workers`: must not be negative"),
        "{all}"
    );
}

fn nap_registry(pool: &str) -> Registry {
    let dir = scratch("nap");
    std::fs::copy(root().join("tests/nap.wat"), dir.join("nap.wat")).unwrap();
    let file = write(
        &dir,
        &format!(
            "namespace: t\nentries:\n  - name: nap\n    kind: function.wat\n    source: file://nap.wat\n    method: nap\n    imports: [wasi:clocks, wasi:io]\n    pool:\n{pool}"
        ),
    );
    Registry::load(&file).unwrap()
}

/// Runs `n` concurrent `nap(ms)` calls on one thread.
fn naps(r: &Registry, n: usize, ms: u32) -> Duration {
    let start = Instant::now();
    let ex = async_executor::Executor::new();
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let r = r.clone();
            ex.spawn(async move { r.call("t:nap", &[wippy_wasm::Val::U32(ms)]).await })
        })
        .collect();
    wippy_wasm::dispatch::block_on(ex.run(async {
        for t in tasks {
            t.await.unwrap();
        }
    }));
    start.elapsed()
}

#[test]
fn an_adaptive_pool_grows_while_calls_queue_and_shrinks_when_idle() {
    let adaptive = nap_registry("      type: adaptive\n      max_size: 8\n");
    let lazy = nap_registry("      type: lazy\n      max_size: 8\n");
    naps(&adaptive, 6, 100);
    naps(&lazy, 6, 100);
    let (a, l) = (adaptive.pool_stats("t:nap").unwrap(), lazy.pool_stats("t:nap").unwrap());
    assert!(a.peak > 1 && a.peak <= 6, "adaptive grew while calls queued: {a:?}");
    assert_eq!(l.peak, 6, "lazy makes one per call at once: {l:?}");
    // Idle for longer than the adaptive pool keeps spares (1 s; trimmed
    // every 250 ms): back to one. A lazy pool keeps them for 30 s.
    std::thread::sleep(Duration::from_millis(1800));
    assert_eq!(adaptive.pool_stats("t:nap").unwrap().live, 1, "adaptive shrank");
    assert_eq!(lazy.pool_stats("t:nap").unwrap().live, 6, "lazy kept its instances");
}

/// `grow(pages)` grows memory and keeps it.
const GROW_WAT: &str = r#"(component
  (core module $M
    (memory 1)
    (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0))))
  (core instance $m (instantiate $M))
  (func (export "grow") (param "pages" u32) (result s32) (canon lift (core func $m "grow"))))"#;

fn grow_registry(limits: &str) -> Registry {
    let dir = scratch("retained");
    std::fs::write(dir.join("grow.wat"), GROW_WAT).unwrap();
    let file = write(
        &dir,
        &format!(
            "namespace: m\nentries:\n  - name: grow\n    kind: function.wat\n    source: file://grow.wat\n    method: grow\n    pool:\n      type: inline\n    options:\n      limits:\n{limits}"
        ),
    );
    Registry::load(&file).unwrap()
}

#[test]
fn a_warm_instance_over_max_retained_memory_is_retired() {
    // 2 pages (128 KiB) allowed; each call grows by one page.
    let r = grow_registry("        max_retained_memory_bytes: 131072\n");
    let created = |r: &Registry| r.pool_stats("m:grow").unwrap().created;
    assert_eq!(r.call_json("m:grow", &[json!(1)]).unwrap(), json!(1), "1 page before");
    assert_eq!(created(&r), 1, "2 pages: kept");
    assert_eq!(r.call_json("m:grow", &[json!(1)]).unwrap(), json!(2));
    assert_eq!(
        r.pool_stats("m:grow").unwrap().live,
        0,
        "3 pages: retired after its call"
    );
    assert_eq!(
        r.call_json("m:grow", &[json!(1)]).unwrap(),
        json!(1),
        "a fresh instance"
    );
    assert_eq!(created(&r), 2);
    // 0 disables the check; an interval spaces it out.
    let r = grow_registry("        max_retained_memory_bytes: 0\n");
    for i in 1..5 {
        assert_eq!(r.call_json("m:grow", &[json!(1)]).unwrap(), json!(i));
    }
    assert_eq!(created(&r), 1);
    let r = grow_registry("        max_retained_memory_bytes: 131072\n        retained_memory_check_interval: 3\n");
    for i in 1..4 {
        assert_eq!(r.call_json("m:grow", &[json!(1)]).unwrap(), json!(i));
    }
    assert_eq!(r.pool_stats("m:grow").unwrap().live, 0, "checked at the third call");
}

/// CPU time used so far by each thread named `name*`, in clock ticks.
fn thread_cpu(prefix: &str) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    for t in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let comm = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
        let comm = comm.trim().to_string();
        if !comm.starts_with(prefix) {
            continue;
        }
        let stat = std::fs::read_to_string(t.path().join("stat")).unwrap_or_default();
        // utime and stime are fields 14 and 15, after the `(comm)`.
        let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
        let fields: Vec<&str> = after.split_whitespace().collect();
        let ticks = fields.get(11).and_then(|u| u.parse::<u64>().ok()).unwrap_or(0)
            + fields.get(12).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0);
        out.push((comm, ticks));
    }
    out
}

fn crunch_registry(class: &str, workers: usize) -> Registry {
    let dir = scratch("workers");
    let (guest, _) = c_guest(&dir);
    let file = write(
        &dir,
        &format!(
            "namespace: w\nentries:\n  - name: bin\n    kind: fs.directory\n    directory: ./bin\n  - name: crunch\n    kind: function.wasm\n    fs: bin\n    path: /guest.wasm\n    hash: sha256:{guest}\n    method: crunch\n    imports: [funcs]\n    pool:\n      worker_class: {class}\n      workers: {workers}\n"
        ),
    );
    Registry::load(&file).unwrap()
}

#[test]
fn worker_class_calls_run_on_their_own_threads() {
    let r = crunch_registry("crunchtwo", 2);
    let ex = async_executor::Executor::new();
    let tasks: Vec<_> = (0..6)
        .map(|_| {
            let r = r.clone();
            ex.spawn(async move { r.call("w:crunch", &[wippy_wasm::Val::U32(20)]).await })
        })
        .collect();
    // Driven from this one thread: the work happens on the pool's two.
    wippy_wasm::dispatch::block_on(ex.run(async {
        for t in tasks {
            t.await.unwrap();
        }
    }));
    let threads = thread_cpu("wippy-crunchtwo");
    assert_eq!(threads.len(), 2, "{threads:?}");
    assert!(
        threads.iter().all(|(_, ticks)| *ticks > 0),
        "both threads worked: {threads:?}"
    );
    let one = crunch_registry("crunchone", 1);
    assert_eq!(
        one.call_json("w:crunch", &[json!(1)]).unwrap(),
        r.call_json("w:crunch", &[json!(1)]).unwrap()
    );
    assert_eq!(thread_cpu("wippy-crunchone").len(), 1);
}

#[test]
fn a_sleeping_guest_holds_no_worker_thread() {
    let r = nap_registry("      worker_class: napper\n      workers: 1\n");
    // 20 naps of 100 ms on one thread: together, not one after another.
    let took = naps(&r, 20, 100);
    assert!(took < Duration::from_millis(1000), "{took:?}");
}

#[test]
fn unknown_fields_are_warnings_and_errors_when_strict() {
    let dir = scratch("unknown");
    let file = write(
        &dir,
        "namespace: u\nentries:\n  - name: seven\n    kind: function.wat\n    source: \"(component (core module $M (func (export \\\"s\\\") (result i32) i32.const 7)) (core instance $m (instantiate $M)) (func (export \\\"s\\\") (result u32) (canon lift (core func $m \\\"s\\\"))))\"\n    method: s\n    poool:\n      type: inline\n    pool:\n      worker_clas: wasm\n    meta:\n      comment: anything goes here\n  - name: x\n    kind: function.wsam\n",
    );
    let config = file.to_str().unwrap();
    let r = Registry::load(&file).unwrap();
    let warnings = r.warnings().join("\n");
    let path = file.display().to_string();
    for want in [
        format!("{path}: entry `u:seven`: field `poool` is not a field of function.wat"),
        format!("{path}: entry `u:seven`: field `pool.worker_clas` is not a field of function.wat"),
        format!("{path}: entry `u:x`: kind `function.wsam` is unknown"),
    ] {
        assert!(warnings.contains(&want), "want `{want}` in:\n{warnings}");
    }
    assert!(!warnings.contains("meta"), "{warnings}");
    let (status, out, err) = cli(&["call", "-c", config, "u:seven"]);
    assert_eq!((status, out.trim()), (0, "7"), "{err}");
    assert!(err.contains("warning: ") && err.contains("`poool`"), "{err}");
    let (status, _, err) = cli(&["call", "--strict", "-c", config, "u:seven"]);
    assert_ne!(status, 0);
    assert!(err.contains("`poool`"), "{err}");
    let (status, out, _) = cli(&["check", "-c", config]);
    assert_ne!(status, 0);
    assert!(out.contains("`poool`") && out.contains("`pool.worker_clas`"), "{out}");
}

/// A wasip1 reactor built by zig's clang (`tests/c_reactor/`) as a
/// `function.wasm` entry with a `wit` signature: the runtime serves its
/// preview 1 imports natively and lifts `greet` from the core module.
fn reactor_registry(imports: &str) -> PathBuf {
    let dir = scratch("reactor");
    let wasm = root().join("tests/c_reactor/reactor.wasm");
    std::fs::copy(&wasm, dir.join("bin/reactor.wasm")).unwrap();
    std::fs::create_dir_all(dir.join("data")).unwrap();
    std::fs::write(dir.join("data/motto.txt"), "keep it small\n").unwrap();
    let hash = common::sha256(&wasm);
    write(
        &dir,
        &format!(
            r#"namespace: r
entries:
  - name: bin
    kind: fs.directory
    directory: bin
  - name: data
    kind: fs.directory
    directory: data
  - name: vars
    kind: env.storage.static
    values:
      GREETING: salut
  - name: greeting
    kind: env.variable
    variable: GREETING
    storage: r:vars
  - name: greet
    kind: function.wasm
    fs: r:bin
    path: /reactor.wasm
    hash: sha256:{hash}
    method: greet
    wit: "greet: func(name: string) -> string;"
    imports: {imports}
    wasi:
      env:
        - id: r:greeting
          name: GREETING
      mounts:
        - fs: r:data
          guest: /data
          read_only: true
"#
        ),
    )
}

#[test]
fn a_wasip1_reactor_runs_natively_with_its_wit_signature() {
    let r = Registry::load(reactor_registry("[wasi1]")).unwrap();
    for name in ["wörld", "again"] {
        assert_eq!(
            r.call_json("r:greet", &[json!(name)]).unwrap(),
            json!(format!("salut, {name}! keep it small [clock ok, random ok]"))
        );
    }
    let stats = r.pool_stats("r:greet").unwrap();
    assert_eq!(stats.created, 1, "the second call reused the warm instance");
    // Preview 1 is a capability like any other group.
    let err = format!("{:#}", Registry::load(reactor_registry("[wasi:cli]")).err().unwrap());
    assert!(err.contains("field `imports`") && err.contains("wasi1"), "{err}");
}
