//! The registry: definition files, loading checks, WASI configuration and
//! the JSON payload transport.

mod common;

use serde_json::json;
use std::path::{Path, PathBuf};
use wippy_wasm::registry::Registry;

/// A fresh folder of its own for each call (tests run in parallel).
fn scratch(name: &str) -> PathBuf {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let d = std::env::temp_dir().join(format!("wippy-registry-{name}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn example() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/registry")
}

#[test]
fn calls_with_json_arguments_and_results() {
    let r = Registry::load(example()).unwrap();
    assert_eq!(r.call_json("demo:add", &[json!(40), json!(2)]).unwrap(), json!(42));
    assert_eq!(
        r.call_json("demo:describe", &[json!({"x": 1, "y": 2})]).unwrap(),
        json!("positive")
    );
    assert_eq!(
        r.call_json("demo:describe", &[json!({"x": -5, "y": 2})]).unwrap(),
        json!(null)
    );
    assert_eq!(
        r.call_json("demo:add_inline", &[json!(-1), json!(-2)]).unwrap(),
        json!(-3)
    );
}

#[test]
fn argument_mismatches_name_the_parameter_and_path() {
    let r = Registry::load(example()).unwrap();
    let err = format!(
        "{:#}",
        r.call_json("demo:add", &[json!(1), json!(1u64 << 40)]).unwrap_err()
    );
    assert!(err.contains("parameter `b`") && err.contains("expected s32"), "{err}");
    let err = format!(
        "{:#}",
        r.call_json("demo:describe", &[json!({"x": 1, "y": "two"})])
            .unwrap_err()
    );
    assert!(err.contains("parameter `p`: at `.y`: expected s32"), "{err}");
    let err = format!("{:#}", r.call_json("demo:describe", &[json!({"x": 1})]).unwrap_err());
    assert!(err.contains("missing field `y`"), "{err}");
    let err = format!("{:#}", r.call_json("demo:nope", &[]).unwrap_err());
    assert!(err.contains("unknown function `demo:nope`"), "{err}");
}

fn write_registry(dir: &Path, yaml: &str) -> PathBuf {
    let file = dir.join("_index.yaml");
    std::fs::write(&file, yaml).unwrap();
    file
}

#[test]
fn a_hash_mismatch_is_refused_with_both_digests() {
    let dir = scratch("hash");
    std::fs::create_dir_all(dir.join("bin")).unwrap();
    std::fs::copy(example().join("bin/calc.wasm"), dir.join("bin/calc.wasm")).unwrap();
    let actual = common::sha256(&dir.join("bin/calc.wasm"));
    let wrong = "0".repeat(64);
    let file = write_registry(
        &dir,
        &format!(
            "namespace: t\nentries:\n  - name: bin\n    kind: fs.directory\n    directory: ./bin\n  - name: add\n    kind: function.wasm\n    fs: bin\n    path: /calc.wasm\n    hash: sha256:{wrong}\n    method: add\n"
        ),
    );
    let err = format!("{:#}", Registry::load(&file).err().unwrap());
    assert!(
        err.contains(&format!("expected sha256:{wrong}, actual sha256:{actual}")),
        "{err}"
    );
    assert!(err.contains("entry `t:add`: field `hash`"), "{err}");
}

/// A command component built from a C fixture, and its registry entry.
fn command_registry(dir: &Path, fixture: &str, entry_extra: &str) -> PathBuf {
    std::fs::create_dir_all(dir.join("bin")).unwrap();
    let core = std::fs::read(common::fixture(fixture)).unwrap();
    std::fs::write(dir.join("bin/prog.wasm"), common::componentize_command(&core)).unwrap();
    let hash = common::sha256(&dir.join("bin/prog.wasm"));
    write_registry(
        dir,
        &format!(
            "namespace: t\nentries:\n  - name: bin\n    kind: fs.directory\n    directory: ./bin\n  - name: prog\n    kind: function.wasm\n    fs: t:bin\n    path: /prog.wasm\n    hash: sha256:{hash}\n    method: \"wasi:cli/run#run\"\n{entry_extra}"
        ),
    )
}

const ALL_WASI: &str = "    imports: [wasi:cli, wasi:io, wasi:poll, wasi:clocks, wasi:filesystem, wasi:random]\n";

#[test]
fn an_undeclared_import_is_refused_naming_the_declaration() {
    let dir = scratch("imports");
    let file = command_registry(&dir, "hello.wasm", "    imports: [wasi:cli, wasi:io]\n");
    let err = format!("{:#}", Registry::load(&file).err().unwrap());
    assert!(err.contains("entry `t:prog`: field `imports`"), "{err}");
    assert!(
        err.contains("imports `wasi:filesystem/types@") && err.contains("add `wasi:filesystem` to `imports`"),
        "{err}"
    );
    let file = command_registry(&dir, "hello.wasm", ALL_WASI);
    assert_eq!(
        Registry::load(&file).unwrap().call_json("t:prog", &[]).unwrap(),
        json!({"ok": null})
    );
}

#[test]
fn mounts_and_read_only_mounts() {
    let dir = scratch("mounts");
    std::fs::create_dir_all(dir.join("data")).unwrap();
    let mount = |ro: bool| {
        format!(
            "{ALL_WASI}    wasi:\n      mounts:\n        - fs: t:data\n          guest: /data\n          read_only: {ro}\n  - name: data\n    kind: fs.directory\n    directory: ./data\n"
        )
    };
    // files.c creates, edits and removes files under /data; it fails (exit 1,
    // so `run` returns err) when the mount refuses writes.
    let file = command_registry(&dir, "files.wasm", &mount(false));
    assert_eq!(
        Registry::load(&file).unwrap().call_json("t:prog", &[]).unwrap(),
        json!({"ok": null})
    );
    let file = command_registry(&dir, "files.wasm", &mount(true));
    let r = Registry::load(&file).unwrap();
    let err = format!("{:#}", r.call_json("t:prog", &[]).unwrap_err());
    assert!(err.contains("exited with status 1"), "{err}");
    assert_eq!(
        std::fs::read_dir(dir.join("data")).unwrap().count(),
        0,
        "nothing was written"
    );
}

#[test]
fn env_mapping_and_required_variables() {
    let dir = scratch("env");
    std::fs::copy(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/env.wat"),
        dir.join("env.wat"),
    )
    .unwrap();
    std::fs::write(dir.join("vars.env"), "# settings\nFROM_FILE=file value\n").unwrap();
    let registry = |second: &str| {
        let yaml = format!(
            r#"namespace: t
entries:
  - name: env
    kind: function.wat
    source: file://env.wat
    method: env
    imports: [wasi:cli]
    wasi:
      env:
        - id: t:greeting
          name: GREETING
          required: true
        - id: t:from_file
          name: FILE_VAR
        - id: t:{second}
          name: OTHER
          required: true
        - id: t:path
          name: HOST_PATH
  - name: os
    kind: env.storage.os
  - name: path
    kind: env.variable
    variable: PATH
    storage: t:os
  - name: vars
    kind: env.storage.static
    values:
      GREETING: hello
  - name: file
    kind: env.storage.file
    file_path: vars.env
  - name: greeting
    kind: env.variable
    variable: GREETING
    storage: t:vars
  - name: from_file
    kind: env.variable
    variable: FROM_FILE
    storage: t:file
  - name: missing
    kind: env.variable
    variable: NOT_SET_ANYWHERE
    storage: t:vars
  - name: defaulted
    kind: env.variable
    variable: ALSO_NOT_SET
    storage: t:vars
    default: fallback
"#
        );
        Registry::load(write_registry(&dir, &yaml)).unwrap()
    };
    let r = registry("defaulted");
    assert_eq!(
        r.call_json("t:env", &[]).unwrap(),
        json!([
            ["GREETING", "hello"],
            ["FILE_VAR", "file value"],
            ["OTHER", "fallback"],
            ["HOST_PATH", std::env::var("PATH").unwrap()]
        ])
    );
    let err = format!("{:#}", registry("missing").call_json("t:env", &[]).unwrap_err());
    assert!(
        err.contains("field `wasi.env[2]`: required variable `t:missing` (OTHER) is not set"),
        "{err}"
    );
}

#[test]
fn a_directory_whose_mode_forbids_writing_is_mounted_read_only() {
    let dir = scratch("mode");
    std::fs::create_dir_all(dir.join("data")).unwrap();
    let extra = format!(
        "{ALL_WASI}    wasi:\n      mounts:\n        - fs: t:data\n          guest: /data\n  - name: data\n    kind: fs.directory\n    directory: ./data\n    mode: \"0555\"\n"
    );
    let file = command_registry(&dir, "files.wasm", &extra);
    let err = format!(
        "{:#}",
        Registry::load(&file).unwrap().call_json("t:prog", &[]).unwrap_err()
    );
    assert!(err.contains("exited with status 1"), "{err}");
    assert_eq!(std::fs::read_dir(dir.join("data")).unwrap().count(), 0);
}

#[test]
fn config_errors_name_the_file_the_entry_and_the_field() {
    let dir = scratch("config");
    let cases = [
        ("  - name: f\n    kind: function.wasm\n    fs: x\n    path: /a.wasm\n    hash: md5:abc\n    method: m\n", "entry `t:f`: field `hash`"),
        ("  - name: f\n    kind: function.wat\n    method: m\n", "entry `t:f`: field `source`"),
        ("  - name: f\n    kind: function.wat\n    source: \"(component)\"\n", "entry `t:f`: field `method`"),
        (
            "  - name: f\n    kind: function.wat\n    source: \"(component)\"\n    method: m\n    wasi:\n      cwd: relative\n",
            "entry `t:f`: field `wasi.cwd`",
        ),
        (
            "  - name: f\n    kind: function.wat\n    source: \"(component)\"\n    method: m\n    pool:\n      type: huge\n",
            "entry `t:f`: field `pool.type`",
        ),
        (
            "  - name: f\n    kind: function.wat\n    source: \"(component)\"\n    method: m\n    wasi:\n      env:\n        - id: x\n          nme: Y\n",
            "entry `t:f`: field `wasi.env[0]",
        ),
        ("  - name: f\n    kind: function.wat\n    source: \"(component)\"\n    method: m\n", "entry `t:f`: field `method`: the component exports no function `m`"),
        ("  - name: d\n    kind: fs.directory\n", "entry `t:d`: field `directory`"),
        ("  - name: v\n    kind: env.variable\n    storage: t:nowhere\n", "entry `t:v`: field `storage`: no entry `t:nowhere`"),
    ];
    for (entries, want) in cases {
        let file = write_registry(&dir, &format!("namespace: t\nentries:\n{entries}"));
        let problems = Registry::check(&file);
        let all = problems.join("\n");
        assert!(
            all.contains(want) && all.contains(&file.display().to_string()),
            "want `{want}` in:\n{all}"
        );
    }
}

/// The example registry plus a trapping function and a self-calling one.
fn funcs_registry() -> Registry {
    let dir = scratch("funcs");
    let example = example();
    let relay = std::fs::read_to_string(example.join("src/relay.wat")).unwrap();
    std::fs::write(dir.join("relay.wat"), &relay).unwrap();
    let yaml = r#"namespace: f
entries:
  - name: relay
    kind: function.wat
    source: file://relay.wat
    method: relay
    imports: [funcs]
  - name: boom
    kind: function.wat
    source: |
      (component
        (core module $M (func (export "boom") (param i32 i32) (result i32) unreachable)
          (memory (export "mem") 1)
          (func (export "realloc") (param i32 i32 i32 i32) (result i32) (i32.const 64)))
        (core instance $m (instantiate $M))
        (func (export "boom") (param "s" string) (result string)
          (canon lift (core func $m "boom") (memory (core memory $m "mem")) (realloc (core func $m "realloc")))))
    method: boom
  - name: loop
    kind: function.wat
    source: |
      (component
        (import "wippy:runtime/funcs@0.1.0" (instance $funcs
          (export "call-string" (func (param "target" string) (param "input" string) (result (result string (error string)))))))
        (alias export $funcs "call-string" (func $call-string))
        (core module $Libc
          (memory (export "mem") 1)
          (global $next (mut i32) (i32.const 1024))
          (data (i32.const 256) "f:loop")
          (func (export "realloc") (param i32 i32 i32 i32) (result i32)
            (local $r i32)
            (local.set $r (i32.and (i32.add (global.get $next) (i32.const 7)) (i32.const -8)))
            (global.set $next (i32.add (local.get $r) (local.get 3)))
            (local.get $r)))
        (core instance $libc (instantiate $Libc))
        (core func $call-string' (canon lower (func $call-string)
          (memory (core memory $libc "mem")) (realloc (core func $libc "realloc"))))
        (core module $M
          (import "funcs" "call-string" (func $call (param i32 i32 i32 i32 i32)))
          (func (export "loop") (param i32 i32) (result i32)
            (call $call (i32.const 256) (i32.const 6) (local.get 0) (local.get 1) (i32.const 16))
            (i32.const 16)))
        (core instance $m (instantiate $M (with "funcs" (instance (export "call-string" (func $call-string'))))))
        (func (export "loop") (param "s" string) (result (result string (error string)))
          (canon lift (core func $m "loop") (memory (core memory $libc "mem")) (realloc (core func $libc "realloc")))))
    method: loop
    imports: [funcs]
  - name: hello
    kind: function.wat
    source: |
"#;
    let hello: String = std::fs::read_to_string(example.join("src/hello.wat"))
        .unwrap()
        .lines()
        .map(|l| format!("      {l}\n"))
        .collect();
    std::fs::write(dir.join("_index.yaml"), format!("{yaml}{hello}    method: hello\n")).unwrap();
    Registry::load(dir.join("_index.yaml")).unwrap()
}

#[test]
fn funcs_calls_other_entries_and_natives() {
    let r = funcs_registry();
    assert_eq!(
        r.call_json("f:relay", &[json!("f:hello"), json!("you")]).unwrap(),
        json!({"ok": "hello, you"})
    );
    r.register_native("f:native", |args| Ok(json!(format!("native saw {}", args.len()))));
    assert_eq!(
        r.call_json("f:relay", &[json!("f:native"), json!("[1, 2, 3]")])
            .unwrap(),
        json!({"ok": "native saw 3"})
    );
    // The example registry: one WASM function calling another.
    let ex = Registry::load(example()).unwrap();
    assert_eq!(
        ex.call_json("demo:relay", &[json!("demo:add"), json!("[20, 22]")])
            .unwrap(),
        json!({"ok": "42"})
    );
}

#[test]
fn funcs_failures_are_err_values_never_traps() {
    let r = funcs_registry();
    let err = |v: serde_json::Value| {
        v["err"]
            .as_str()
            .map(String::from)
            .unwrap_or_else(|| panic!("not an err: {v}"))
    };
    let e = err(r.call_json("f:relay", &[json!("f:missing"), json!("x")]).unwrap());
    assert!(e.contains("unknown function `f:missing`"), "{e}");
    let e = err(r.call_json("f:relay", &[json!("no-namespace"), json!("x")]).unwrap());
    assert!(e.contains("invalid target"), "{e}");
    let e = err(r.call_json("f:relay", &[json!("f:boom"), json!("x")]).unwrap());
    assert!(e.contains("unreachable"), "{e}");
    // loop calls itself through funcs: the depth limit ends the cycle.
    let e = err(r.call_json("f:loop", &[json!("again")]).unwrap());
    assert!(e.contains("call depth limit"), "{e}");
    // The registry still serves.
    assert_eq!(
        r.call_json("f:relay", &[json!("f:hello"), json!("again")]).unwrap(),
        json!({"ok": "hello, again"})
    );
}

const SPIN: &str = r#"      (component
        (core module $M
          (func (export "spin") (param i32) (result i32)
            (block $done (loop $l
              (br_if $done (i32.eqz (local.get 0)))
              (local.set 0 (i32.sub (local.get 0) (i32.const 1)))
              (br $l)))
            (i32.const 7))
          (func (export "forever") (result i32) (loop $l (br $l)) (i32.const 0))
          (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0)))
          (memory 1))
        (core instance $m (instantiate $M))
        (func (export "spin") (param "n" u32) (result u32) (canon lift (core func $m "spin")))
        (func (export "forever") (result u32) (canon lift (core func $m "forever")))
        (func (export "grow") (param "pages" u32) (result s32) (canon lift (core func $m "grow"))))
"#;

fn limits_registry() -> Registry {
    let dir = scratch("limits");
    let entry = |name: &str, method: &str, limits: &str| {
        format!("  - name: {name}\n    kind: function.wat\n    method: {method}\n    options:\n      limits:\n{limits}    source: |\n{SPIN}")
    };
    let yaml = format!(
        "namespace: l\nentries:\n{}{}{}",
        entry("forever", "forever", "        max_execution_ms: 200\n"),
        entry("spin", "spin", "        max_execution_ms: 200\n"),
        entry("grow", "grow", "        memory_bytes: 1048576\n"),
    );
    std::fs::write(dir.join("_index.yaml"), yaml).unwrap();
    Registry::load(dir.join("_index.yaml")).unwrap()
}

#[test]
fn a_tight_loop_is_cut_at_max_execution_ms_and_the_host_keeps_serving() {
    let r = limits_registry();
    let start = std::time::Instant::now();
    let err = format!("{:#}", r.call_json("l:forever", &[]).unwrap_err());
    let took = start.elapsed();
    assert!(
        err.contains("max_execution_ms (200 ms)") && err.contains("time limit"),
        "{err}"
    );
    assert!(took < std::time::Duration::from_secs(3), "cut after {took:?}");
    assert_eq!(r.call_json("l:spin", &[json!(1000)]).unwrap(), json!(7));
}

#[test]
fn the_memory_limit_holds() {
    let r = limits_registry();
    // 1 page to start; 1 MiB is 16 pages: growing by 8 fits, by 32 does not.
    assert_eq!(r.call_json("l:grow", &[json!(8)]).unwrap(), json!(1));
    assert_eq!(r.call_json("l:grow", &[json!(32)]).unwrap(), json!(-1));
}

/// A registry with `t:nap`, a reusable sleeping function, in a pool.
fn nap_registry(name: &str, pool: &str) -> Registry {
    let dir = scratch(name);
    std::fs::copy(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/nap.wat"),
        dir.join("nap.wat"),
    )
    .unwrap();
    let file = write_registry(
        &dir,
        &format!(
            "namespace: t\nentries:\n  - name: nap\n    kind: function.wat\n    source: file://nap.wat\n    method: nap\n    imports: [wasi:clocks, wasi:poll]\n    pool:\n{pool}"
        ),
    );
    Registry::load(&file).unwrap()
}

/// Runs `n` concurrent `nap(ms)` calls on one executor.
fn naps(r: &Registry, n: usize, ms: u32) -> Vec<anyhow::Result<Vec<wippy_wasm::Val>>> {
    let ex = async_executor::Executor::new();
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let r = r.clone();
            ex.spawn(async move { r.call("t:nap", &[wippy_wasm::Val::U32(ms)]).await })
        })
        .collect();
    wippy_wasm::dispatch::block_on(ex.run(async {
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await);
        }
        out
    }))
}

#[test]
fn a_lazy_pool_never_exceeds_max_size() {
    let r = nap_registry("lazy", "      type: lazy\n      max_size: 2\n");
    let start = std::time::Instant::now();
    let results = naps(&r, 8, 100);
    assert!(
        results.iter().all(|r| r.is_ok()),
        "{:?}",
        results.iter().find(|r| r.is_err())
    );
    let stats = r.pool_stats("t:nap").unwrap();
    assert_eq!((stats.peak, stats.created), (2, 2), "{stats:?}");
    // 8 naps of 100 ms, two at a time: four rounds.
    let took = start.elapsed();
    assert!(
        took >= std::time::Duration::from_millis(400) && took < std::time::Duration::from_secs(3),
        "{took:?}"
    );
}

#[test]
fn a_full_static_queue_gives_an_overload_error() {
    let r = nap_registry("static", "      type: static\n      workers: 1\n      buffer: 1\n");
    let results = naps(&r, 4, 100);
    let overloaded = results
        .iter()
        .filter(|r| matches!(r, Err(e) if format!("{e:#}").contains("overloaded")))
        .count();
    let ok = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!((ok, overloaded), (2, 2), "one runs, one waits, two are refused");
    assert_eq!(r.pool_stats("t:nap").unwrap().peak, 1);
}

#[test]
fn an_inline_pool_reuses_one_warm_instance() {
    let r = nap_registry("inline", "      type: inline\n");
    let results = naps(&r, 3, 10);
    assert!(results.iter().all(|r| r.is_ok()));
    assert_eq!(
        r.pool_stats("t:nap").unwrap(),
        wippy_wasm::pool::PoolStats {
            live: 1,
            peak: 1,
            created: 1
        }
    );
}

#[test]
fn a_trapped_instance_is_replaced() {
    let r = limits_registry();
    assert!(r.call_json("l:forever", &[]).is_err());
    assert!(r.call_json("l:forever", &[]).is_err());
    let stats = r.pool_stats("l:forever").unwrap();
    assert_eq!(
        (stats.created, stats.live),
        (2, 0),
        "each failed call discarded its instance"
    );
    r.call_json("l:spin", &[json!(5)]).unwrap();
    r.call_json("l:spin", &[json!(5)]).unwrap();
    let stats = r.pool_stats("l:spin").unwrap();
    assert_eq!((stats.created, stats.live), (1, 1), "a good instance is reused warm");
}

#[test]
fn core_modules_with_a_wit_signature() {
    let dir = scratch("core");
    let file = write_registry(
        &dir,
        r#"namespace: c
entries:
  - name: answer
    kind: function.wat
    source: |
      (module (func (export "answer") (result i32) i32.const 42))
    wit: |
      answer: func() -> s32;
    method: answer
  - name: echo
    kind: function.wat
    source: |
      (module
        (memory (export "memory") 1)
        (global $next (mut i32) (i32.const 1024))
        (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32)
          (local $r i32)
          (local.set $r (global.get $next))
          (global.set $next (i32.add (global.get $next) (local.get 3)))
          (local.get $r))
        (func (export "echo") (param i32 i32) (result i32)
          (i32.store (i32.const 0) (local.get 0))
          (i32.store (i32.const 4) (local.get 1))
          (i32.const 0)))
    wit: |
      echo: func(s: string) -> string;
    method: echo
"#,
    );
    let r = Registry::load(&file).unwrap();
    assert_eq!(r.call_json("c:answer", &[]).unwrap(), json!(42));
    assert_eq!(r.call_json("c:echo", &[json!("ünïcode")]).unwrap(), json!("ünïcode"));
    let file = write_registry(
        &dir,
        "namespace: c\nentries:\n  - name: x\n    kind: function.wat\n    source: \"(module)\"\n    method: x\n",
    );
    let all = Registry::check(&file).join("\n");
    assert!(all.contains("entry `c:x`: field `wit`: missing"), "{all}");
}

#[test]
fn a_funcs_caller_is_suspended_not_blocking() {
    let dir = scratch("suspend");
    std::fs::copy(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/nap.wat"),
        dir.join("nap.wat"),
    )
    .unwrap();
    std::fs::copy(example().join("src/relay.wat"), dir.join("relay.wat")).unwrap();
    let file = write_registry(
        &dir,
        "namespace: t\nentries:\n  - name: nap\n    kind: function.wat\n    source: file://nap.wat\n    method: nap\n    imports: [wasi:clocks, wasi:poll]\n  - name: relay\n    kind: function.wat\n    source: file://relay.wat\n    method: relay\n    imports: [funcs]\n",
    );
    let r = Registry::load(&file).unwrap();
    let ex = async_executor::Executor::new();
    let start = std::time::Instant::now();
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let r = r.clone();
            ex.spawn(async move {
                let args = [
                    wippy_wasm::Val::String("t:nap".into()),
                    wippy_wasm::Val::String("100".into()),
                ];
                r.call("t:relay", &args).await
            })
        })
        .collect();
    let outs = wippy_wasm::dispatch::block_on(ex.run(async {
        let mut outs = Vec::new();
        for t in tasks {
            outs.push(t.await.unwrap());
        }
        outs
    }));
    let ok = wippy_wasm::Val::Result(Ok(Some(Box::new(wippy_wasm::Val::String("100".into())))));
    assert!(outs.iter().all(|o| o == &vec![ok.clone()]), "{outs:?}");
    // Twenty 100 ms naps behind funcs calls on one thread overlap.
    assert!(
        start.elapsed() < std::time::Duration::from_millis(1000),
        "{:?}",
        start.elapsed()
    );
}

/// A registry with the TCP guest (`tests/tcp.wat`) as `t:echo`, with
/// `extra` YAML appended to the entry.
fn socket_registry(name: &str, extra: &str) -> Registry {
    let dir = scratch(name);
    std::fs::copy(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/tcp.wat"),
        dir.join("tcp.wat"),
    )
    .unwrap();
    let yaml = format!(
        "namespace: t\nentries:\n  - name: echo\n    kind: function.wat\n    source: file://tcp.wat\n    method: echo\n    imports: [wasi:sockets, wasi:io, wasi:poll]\n{extra}"
    );
    Registry::load(write_registry(&dir, &yaml)).unwrap()
}

#[test]
fn network_policy_defaults_and_limits() {
    let port = common::pong_server(1);
    // Importing wasi:sockets grants the public network; loopback and private
    // ranges are refused (access-denied) until allowed.
    let r = socket_registry("net-default", "");
    assert_eq!(r.call_json("t:echo", &[json!(port)]).unwrap(), json!(-2));
    let r = socket_registry("net-loopback", "    network:\n      allow_loopback: true\n");
    let pong = u32::from_le_bytes(*b"PONG");
    assert_eq!(r.call_json("t:echo", &[json!(port)]).unwrap(), json!(pong));
    let r = socket_registry(
        "net-deny",
        "    network:\n      allow_loopback: true\n      deny: [127.0.0.0/8]\n",
    );
    assert_eq!(r.call_json("t:echo", &[json!(port)]).unwrap(), json!(-2));
    // No sockets at all: new-socket-limit (10).
    let r = socket_registry(
        "net-limit",
        "    network:\n      allow_loopback: true\n    options:\n      limits:\n        max_open_sockets: 0\n",
    );
    assert_eq!(r.call_json("t:echo", &[json!(port)]).unwrap(), json!(-11));
}

#[test]
fn network_config_errors_name_the_field() {
    let dir = scratch("net-config");
    let cases = [
        (
            "    imports: [wasi:io]\n    network:\n      allow_loopback: true\n",
            "field `network`: is set, but the entry imports neither `wasi:sockets` nor `wasi:http`",
        ),
        (
            "    imports: [wasi:sockets]\n    network:\n      allow: [10.0.0.0/33]\n",
            "field `network.allow[0]`: `10.0.0.0/33`: bad prefix length",
        ),
        (
            "    imports: [wasi:sockets]\n    network:\n      loopback: yes\n",
            "unknown field `loopback`",
        ),
    ];
    for (extra, want) in cases {
        let yaml = format!(
            "namespace: t\nentries:\n  - name: f\n    kind: function.wat\n    source: \"(component)\"\n    method: m\n{extra}"
        );
        let all = Registry::check(write_registry(&dir, &yaml)).join("\n");
        assert!(all.contains(want), "want `{want}` in:\n{all}");
    }
}

/// Raises the open-file limit towards `want`; the limit obtained.
fn raise_fd_limit(want: u64) -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain getrlimit/setrlimit on a local struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 1024;
        }
        if lim.rlim_cur < want {
            lim.rlim_cur = want.min(lim.rlim_max);
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
        lim.rlim_cur
    }
}

#[test]
fn a_thousand_guests_wait_on_sockets_on_one_thread() {
    // Each guest connects, sends "ping" and blocks reading the answer. The
    // server answers only once every guest has connected, so this finishes
    // only if the blocked guests all suspend and share the one thread.
    let n = 1000.min((raise_fd_limit(2 * 1000 + 200).saturating_sub(200) / 2) as usize);
    assert!(n >= 100, "too few file descriptors for the test: {n}");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        let mut conns = Vec::new();
        for c in listener.incoming().take(n) {
            conns.push(c.unwrap());
        }
        for mut c in conns {
            let mut buf = [0; 4];
            if c.read_exact(&mut buf).is_ok() {
                let _ = c.write_all(b"PONG");
            }
        }
    });
    let r = socket_registry(
        "net-thousand",
        &format!("    network:\n      allow_loopback: true\n    pool:\n      type: lazy\n      max_size: {n}\n"),
    );
    let (done, results) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let ex = async_executor::Executor::new();
        let tasks: Vec<_> = (0..n)
            .map(|_| {
                let r = r.clone();
                ex.spawn(async move { r.call("t:echo", &[wippy_wasm::Val::U16(port)]).await })
            })
            .collect();
        let out = wippy_wasm::dispatch::block_on(ex.run(async {
            let mut out = Vec::new();
            for t in tasks {
                out.push(t.await);
            }
            out
        }));
        let _ = done.send(out);
    });
    let results = results
        .recv_timeout(std::time::Duration::from_secs(120))
        .expect("the guests did not all finish: a blocked guest held the thread");
    let pong = wippy_wasm::Val::S64(u32::from_le_bytes(*b"PONG") as i64);
    assert_eq!(results.len(), n);
    for r in results {
        assert_eq!(r.unwrap(), vec![pong.clone()]);
    }
}

#[test]
fn socket_timeouts_end_a_silent_read_and_a_stalled_connect() {
    let extra =
        "    network:\n      allow_loopback: true\n    options:\n      limits:\n        socket_timeout_ms: 300\n";
    // A server that accepts and never answers: the blocking read gives up
    // (the guest sees a closed stream, -101).
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let conn = silent.accept();
        std::thread::sleep(std::time::Duration::from_secs(3));
        drop(conn);
    });
    let r = socket_registry("net-timeout-read", extra);
    let start = std::time::Instant::now();
    assert_eq!(r.call_json("t:echo", &[json!(port)]).unwrap(), json!(-101));
    assert!(
        start.elapsed() < std::time::Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );

    // A listener whose accept queue is full drops new SYNs: the connect
    // stalls until the timeout (timeout is code 5: -6).
    let (addr, _held) = common::full_listener();
    let start = std::time::Instant::now();
    assert_eq!(r.call_json("t:echo", &[json!(addr.port())]).unwrap(), json!(-6));
    assert!(
        start.elapsed() < std::time::Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn a_realloc_that_never_returns_traps_within_its_bounded_budget() {
    // Lowering the string argument calls the guest's realloc synchronously,
    // where no time slice can end: its fuel budget is what stops it.
    let dir = scratch("spin-realloc");
    let yaml = r#"namespace: l
entries:
  - name: len
    kind: function.wat
    method: len
    options:
      limits:
        max_execution_ms: 200
    source: |
      (component
        (core module $M
          (memory (export "mem") 1)
          (func (export "realloc") (param i32 i32 i32 i32) (result i32) (loop $l (br $l)) (i32.const 0))
          (func (export "len") (param i32 i32) (result i32) (local.get 1)))
        (core instance $m (instantiate $M))
        (func (export "len") (param "s" string) (result u32)
          (canon lift (core func $m "len") (memory (core memory $m "mem")) (realloc (core func $m "realloc")))))
"#;
    std::fs::write(dir.join("_index.yaml"), yaml).unwrap();
    let r = Registry::load(dir.join("_index.yaml")).unwrap();
    let start = std::time::Instant::now();
    let err = format!("{:#}", r.call_json("l:len", &[json!("abc")]).unwrap_err());
    assert!(err.contains("fuel"), "{err}");
    assert!(
        start.elapsed() < std::time::Duration::from_secs(20),
        "{:?}",
        start.elapsed()
    );
}
