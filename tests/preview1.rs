//! Native `wasi_snapshot_preview1` (`wippy_wasm::wasi::preview1`): C programs
//! that call every preview 1 function directly (`spec-tests/fixtures/p1_*.c`,
//! built by `build.sh`), the older WASI fixtures run natively and through
//! the adapter with the same output, exit codes, suspension on the
//! dispatcher, and bad input (pointers out of bounds, malformed modules,
//! unknown imports) ending in errors, never panics.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wippy_wasm::wasi::preview1::{self, Instance};
use wippy_wasm::wasi::{Exit, Sink, Source, WasiCtx};
use wippy_wasm::{Config, CoreModule, Engine, Store, Val};

/// Compiles a module from its text.
fn compile(engine: &Engine, text: &str) -> CoreModule {
    CoreModule::new(engine, &wat::parse_str(text).unwrap()).unwrap()
}

/// A fresh, empty directory for one test.
fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("wippy-p1-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

struct Run {
    status: i32,
    stdout: String,
    stderr: String,
}

/// Bytes a guest wrote, shared with its context.
type Captured = Arc<Mutex<Vec<u8>>>;

/// Captured stdout and stderr, and the context writing into them.
fn captured(ctx: WasiCtx) -> (WasiCtx, Captured, Captured) {
    let (out, err) = (Arc::new(Mutex::new(Vec::new())), Arc::new(Mutex::new(Vec::new())));
    (
        ctx.stdout(Sink::Capture(out.clone()))
            .stderr(Sink::Capture(err.clone())),
        out,
        err,
    )
}

fn text(b: &Captured) -> String {
    String::from_utf8_lossy(&b.lock().unwrap()).into_owned()
}

/// Runs a fixture natively with the library API.
fn run(fixture: &str, ctx: WasiCtx) -> Run {
    let bytes = std::fs::read(common::fixture(fixture)).unwrap();
    let engine = Engine::default();
    let module = CoreModule::new(&engine, &bytes).unwrap();
    let (ctx, out, err) = captured(ctx);
    let status = preview1::run_module(&engine, &module, ctx).unwrap();
    Run {
        status,
        stdout: text(&out),
        stderr: text(&err),
    }
}

/// Runs a fixture through the preview1 adapter component (the WASI 0.2
/// path), for comparison.
fn run_adapted(fixture: &str, ctx: WasiCtx) -> Run {
    let bytes = std::fs::read(common::fixture(fixture)).unwrap();
    let engine = Engine::default();
    let component = wippy_wasm::Component::from_program(&engine, &bytes).unwrap();
    let (ctx, out, err) = captured(ctx);
    let status = wippy_wasm::wasi::command::run_component(&engine, &component, ctx).unwrap();
    Run {
        status,
        stdout: text(&out),
        stderr: text(&err),
    }
}

/// `wippy-wasm ARGS`, with `stdin` piped in.
fn cli(args: &[&str], stdin: &[u8]) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_wippy-wasm"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    let data = stdin.to_vec();
    let writer = std::thread::spawn(move || std::io::Write::write_all(&mut input, &data));
    let out = child.wait_with_output().unwrap();
    let _ = writer.join();
    Run {
        status: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A `p1_*` fixture's run: status 0, no failed check, and exactly `checks`
/// checks made (so a check that silently stopped running fails too).
fn assert_checks(r: &Run, checks: usize) {
    assert!(!r.stdout.contains("FAIL"), "{}", r.stdout);
    assert!(
        r.stdout.contains(&format!("done: {checks} checks, 0 failed")),
        "{}\n{}",
        r.stdout,
        r.stderr
    );
    assert_eq!(r.status, 0, "{}", r.stderr);
}

fn sandbox(dir: &Path) -> WasiCtx {
    WasiCtx::new().preopen_dir(dir, "/sandbox", false).unwrap()
}

/// The 46 functions of `wasi_snapshot_preview1.witx` at their core
/// signatures (as wasi-libc imports them).
const ALL_FUNCTIONS: &[(&str, &str)] = &[
    ("args_get", "(param i32 i32) (result i32)"),
    ("args_sizes_get", "(param i32 i32) (result i32)"),
    ("environ_get", "(param i32 i32) (result i32)"),
    ("environ_sizes_get", "(param i32 i32) (result i32)"),
    ("clock_res_get", "(param i32 i32) (result i32)"),
    ("clock_time_get", "(param i32 i64 i32) (result i32)"),
    ("fd_advise", "(param i32 i64 i64 i32) (result i32)"),
    ("fd_allocate", "(param i32 i64 i64) (result i32)"),
    ("fd_close", "(param i32) (result i32)"),
    ("fd_datasync", "(param i32) (result i32)"),
    ("fd_fdstat_get", "(param i32 i32) (result i32)"),
    ("fd_fdstat_set_flags", "(param i32 i32) (result i32)"),
    ("fd_fdstat_set_rights", "(param i32 i64 i64) (result i32)"),
    ("fd_filestat_get", "(param i32 i32) (result i32)"),
    ("fd_filestat_set_size", "(param i32 i64) (result i32)"),
    ("fd_filestat_set_times", "(param i32 i64 i64 i32) (result i32)"),
    ("fd_pread", "(param i32 i32 i32 i64 i32) (result i32)"),
    ("fd_prestat_get", "(param i32 i32) (result i32)"),
    ("fd_prestat_dir_name", "(param i32 i32 i32) (result i32)"),
    ("fd_pwrite", "(param i32 i32 i32 i64 i32) (result i32)"),
    ("fd_read", "(param i32 i32 i32 i32) (result i32)"),
    ("fd_readdir", "(param i32 i32 i32 i64 i32) (result i32)"),
    ("fd_renumber", "(param i32 i32) (result i32)"),
    ("fd_seek", "(param i32 i64 i32 i32) (result i32)"),
    ("fd_sync", "(param i32) (result i32)"),
    ("fd_tell", "(param i32 i32) (result i32)"),
    ("fd_write", "(param i32 i32 i32 i32) (result i32)"),
    ("path_create_directory", "(param i32 i32 i32) (result i32)"),
    ("path_filestat_get", "(param i32 i32 i32 i32 i32) (result i32)"),
    (
        "path_filestat_set_times",
        "(param i32 i32 i32 i32 i64 i64 i32) (result i32)",
    ),
    ("path_link", "(param i32 i32 i32 i32 i32 i32 i32) (result i32)"),
    ("path_open", "(param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)"),
    ("path_readlink", "(param i32 i32 i32 i32 i32 i32) (result i32)"),
    ("path_remove_directory", "(param i32 i32 i32) (result i32)"),
    ("path_rename", "(param i32 i32 i32 i32 i32 i32) (result i32)"),
    ("path_symlink", "(param i32 i32 i32 i32 i32) (result i32)"),
    ("path_unlink_file", "(param i32 i32 i32) (result i32)"),
    ("poll_oneoff", "(param i32 i32 i32 i32) (result i32)"),
    ("proc_exit", "(param i32)"),
    ("proc_raise", "(param i32) (result i32)"),
    ("sched_yield", "(result i32)"),
    ("random_get", "(param i32 i32) (result i32)"),
    ("sock_accept", "(param i32 i32 i32) (result i32)"),
    ("sock_recv", "(param i32 i32 i32 i32 i32 i32) (result i32)"),
    ("sock_send", "(param i32 i32 i32 i32 i32) (result i32)"),
    ("sock_shutdown", "(param i32 i32) (result i32)"),
];

#[test]
fn every_preview1_function_is_defined_at_its_signature() {
    assert_eq!(ALL_FUNCTIONS.len(), 46);
    let imports: String = ALL_FUNCTIONS
        .iter()
        .map(|(name, sig)| format!("(import \"wasi_snapshot_preview1\" \"{name}\" (func {sig}))\n"))
        .collect();
    let wat = format!("(module {imports} (memory (export \"memory\") 1) (func (export \"_start\")))");
    let engine = Engine::default();
    let module = compile(&engine, &wat);
    let mut store = Store::new(&engine, WasiCtx::new());
    Instance::new(&mut store, &module).expect("every import links");
    // The same name at another signature is refused at link time.
    let wrong = r#"(module (import "wasi_snapshot_preview1" "fd_write" (func (param i32) (result i32)))
                    (memory (export "memory") 1) (func (export "_start")))"#;
    let module = compile(&engine, wrong);
    let e = Instance::new(&mut store, &module)
        .err()
        .expect("a wrong signature does not link");
    assert!(format!("{e:#}").contains("fd_write"), "{e:#}");
}

#[test]
fn fd_lifecycle_bad_fds_errnos_and_argument_checks() {
    let dir = temp_dir("fds");
    let r = run("p1_fds.wasm", sandbox(&dir));
    assert_checks(&r, 140);
}

#[test]
fn files_and_paths() {
    let dir = temp_dir("fs");
    let r = run("p1_fs.wasm", sandbox(&dir));
    assert_checks(&r, 115);
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0, "the program cleaned up");
}

#[test]
fn path_open_escapes_are_refused() {
    let root = temp_dir("escape");
    let boxed = root.join("box");
    std::fs::create_dir_all(boxed.join("sub")).unwrap();
    std::fs::write(root.join("outside.txt"), "secret").unwrap();
    std::fs::write(boxed.join("inside.txt"), "in").unwrap();
    std::os::unix::fs::symlink(root.join("outside.txt"), boxed.join("abs-link")).unwrap();
    std::os::unix::fs::symlink("../outside.txt", boxed.join("rel-link")).unwrap();
    let r = run("p1_escape.wasm", sandbox(&boxed));
    assert_checks(&r, 28);
    // Every refusal is the sandbox's `perm`, but for a symlink the guest
    // asked not to follow (`loop`, as O_NOFOLLOW gives).
    for line in r.stdout.lines().filter(|l| !l.starts_with("done")) {
        let want = if line.starts_with("symlink not followed") {
            "ELOOP"
        } else {
            "EPERM"
        };
        assert!(line.ends_with(want), "{line}");
    }
    assert_eq!(r.stdout.lines().count(), 22);
    // Nothing outside changed.
    assert_eq!(std::fs::read_to_string(root.join("outside.txt")).unwrap(), "secret");
    let mut outside: Vec<_> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    outside.sort();
    assert_eq!(outside, ["box", "outside.txt"]);
}

#[test]
fn poll_oneoff_clocks_in_order_and_fd_readiness() {
    let dir = temp_dir("poll");
    let t = Instant::now();
    let r = run("p1_poll.wasm", sandbox(&dir));
    assert_checks(&r, 62);
    assert!(r.stdout.contains("timers fired in order: 2 3 1"), "{}", r.stdout);
    // 60 ms of timers, 30 ms and 25 ms of sleeps, but never the 10 s ones.
    assert!(t.elapsed() >= Duration::from_millis(110));
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
}

#[test]
fn args_environ_and_random() {
    let ctx = WasiCtx::new()
        .args(["p1_proc", "", "two words", "ünï ☃"])
        .env("A", "1")
        .env("EMPTY", "")
        .env("WITH=EQUALS", "x=y");
    let r = run("p1_proc.wasm", ctx);
    assert_checks(&r, 12);
    assert!(r.stdout.starts_with(
        "arg 0: [p1_proc]\narg 1: []\narg 2: [two words]\narg 3: [ünï ☃]\n\
         env 0: [A=1]\nenv 1: [EMPTY=]\nenv 2: [WITH=EQUALS=x=y]\n"
    ));
    let r = run("p1_proc.wasm", WasiCtx::new());
    assert_checks(&r, 12);
    assert!(r.stdout.starts_with("done"), "no arguments, no variables: {}", r.stdout);
}

#[test]
fn exit_codes_are_exact() {
    for code in [0, 1, 33, 125] {
        let r = cli(
            &["run", "spec-tests/fixtures/p1_proc.wasm", "exit", &code.to_string()],
            b"",
        );
        assert_eq!(r.status, code, "proc_exit({code}): {}", r.stderr);
        assert!(r.stdout.contains("done: 12 checks, 0 failed"));
    }
    // As wasmtime: 126 and above (a shell's "cannot run" and signals) trap.
    let r = cli(&["run", "spec-tests/fixtures/p1_proc.wasm", "exit", "200"], b"");
    assert_eq!(r.status, 134);
    assert!(r.stderr.contains("invalid exit status 200"), "{}", r.stderr);
    // A C `main` returning non-zero: its status, not the adapter's 1.
    let r = cli(&["run", "spec-tests/fixtures/hello.wasm", "7"], b"");
    assert_eq!(r.status, 7);
    let r = run("hello.wasm", WasiCtx::new().args(["hello", "7"]));
    assert_eq!(r.status, 7);
    assert_eq!(run_adapted("hello.wasm", WasiCtx::new().args(["hello", "7"])).status, 1);
}

/// The WASI fixtures of `tests/wasi_cli.rs` (there run as components through
/// the adapter) give the same output natively.
#[test]
fn the_wasi_fixtures_run_natively_as_through_the_adapter() {
    type Setup = fn(&Path) -> WasiCtx;
    let cases: &[(&str, Setup)] = &[
        ("hello.wasm", |_| {
            WasiCtx::new().args(["hello", "a b"]).env("GREETING", "hi")
        }),
        ("files.wasm", |d| WasiCtx::new().preopen_dir(d, "/data", false).unwrap()),
        ("readonly.wasm", |d| {
            std::fs::write(d.join("file.txt"), "read me").unwrap();
            WasiCtx::new().preopen_dir(d, "/ro", true).unwrap()
        }),
        ("sandbox.wasm", |d| {
            let boxed = d.join("box");
            std::fs::create_dir_all(boxed.join("sub")).unwrap();
            std::fs::write(d.join("outside.txt"), "secret").unwrap();
            std::fs::write(boxed.join("inside.txt"), "in").unwrap();
            std::os::unix::fs::symlink("/etc/passwd", boxed.join("abs-link")).unwrap();
            std::os::unix::fs::symlink("../outside.txt", boxed.join("rel-link")).unwrap();
            WasiCtx::new().preopen_dir(&boxed, "/box", false).unwrap()
        }),
        ("clocks.wasm", |_| WasiCtx::new()),
        ("random.wasm", |_| WasiCtx::new()),
        ("bigout.wasm", |_| WasiCtx::new()),
        ("stdio.wasm", |_| {
            WasiCtx::new().stdin(Source::Bytes(Arc::new(b"some input\nover lines".to_vec())))
        }),
    ];
    for (fixture, setup) in cases {
        let (a, b) = (temp_dir("native"), temp_dir("adapted"));
        let native = run(fixture, setup(&a));
        let adapted = run_adapted(fixture, setup(&b));
        assert!(!native.stdout.is_empty(), "{fixture}");
        assert!(
            native.stdout == adapted.stdout,
            "{fixture}: {} vs {}",
            native.stdout,
            adapted.stdout
        );
        assert_eq!(native.stderr, adapted.stderr, "{fixture}");
        assert_eq!((native.status, adapted.status), (0, 0), "{fixture}");
    }
}

#[test]
fn the_hosts_stdin_reaches_the_guest_through_run() {
    let input: Vec<u8> = (0..200_000u32).map(|i| b'a' + (i % 26) as u8).collect();
    let r = cli(&["run", "spec-tests/fixtures/stdio.wasm"], &input);
    // The program's `unsigned long` is 32 bits on wasm32.
    let sum = input
        .iter()
        .fold(0u32, |s, &c| s.wrapping_mul(31).wrapping_add(c as u32) % 1_000_000_007);
    assert_eq!(r.stdout, format!("bytes=200000 sum={sum} eof=1\n"), "{}", r.stderr);
    assert_eq!(r.status, 0);
}

/// A `_start` that sleeps 100 ms in `poll_oneoff`.
const SLEEPER: &str = r#"(module
  (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "_start")
    (i32.store (i32.const 16) (i32.const 1))              ;; clock: monotonic
    (i64.store (i32.const 24) (i64.const 100000000))      ;; 100 ms, relative
    (if (call $poll (i32.const 0) (i32.const 64) (i32.const 1) (i32.const 128))
      (then unreachable))))"#;

#[test]
fn waiting_guests_are_suspended_not_blocking_the_thread() {
    let engine = Engine::default();
    let module = compile(&engine, SLEEPER);
    let executor = async_executor::Executor::new();
    let t = Instant::now();
    let tasks: Vec<_> = (0..200)
        .map(|_| {
            let (engine, module) = (engine.clone(), module.clone());
            executor.spawn(async move {
                let mut store = Store::new(&engine, WasiCtx::new());
                let instance = Instance::new(&mut store, &module).unwrap();
                instance.call_async(&mut store, "_start", &[]).await.unwrap();
            })
        })
        .collect();
    wippy_wasm::dispatch::block_on(executor.run(async {
        for t in tasks {
            t.await;
        }
    }));
    // One thread, 200 guests sleeping 100 ms each: together, not one by one.
    let took = t.elapsed();
    assert!(took >= Duration::from_millis(100));
    assert!(took < Duration::from_secs(3), "{took:?}");
}

#[test]
fn fuel_slices_and_deadlines_hold_for_core_modules() {
    let spin = r#"(module (memory (export "memory") 1)
                    (func (export "_start") (loop $l (br $l))))"#;
    let mut config = Config::default();
    config.consume_fuel(true);
    let engine = Engine::new(&config);
    let module = compile(&engine, spin);
    let mut store = Store::new(&engine, WasiCtx::new());
    store.set_fuel_slice(Some(10_000));
    store.set_deadline(Some(Instant::now() + Duration::from_millis(200)));
    let instance = Instance::new(&mut store, &module).unwrap();
    let t = Instant::now();
    let e = wippy_wasm::dispatch::block_on(instance.call_async(&mut store, "_start", &[])).unwrap_err();
    assert!(format!("{e:#}").contains("execution time limit exceeded"), "{e:#}");
    assert!(t.elapsed() < Duration::from_secs(5));
    // Without slices, fuel running out is a trap.
    let mut store = Store::new(&engine, WasiCtx::new());
    store.set_fuel(1000).unwrap();
    let instance = Instance::new(&mut store, &module).unwrap();
    let e = wippy_wasm::dispatch::block_on(instance.call_async(&mut store, "_start", &[])).unwrap_err();
    assert!(format!("{e:#}").contains("fuel"), "{e:#}");
}

/// A module with exports that pass preview 1 bad pointers and fds.
const BAD_CALLS: &str = r#"(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_open"
    (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_get" (func $args_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func $iov (param $buf i32) (param $len i32)
    (i32.store (i32.const 0) (local.get $buf))
    (i32.store (i32.const 4) (local.get $len)))
  (func (export "iovs_out_of_bounds") (result i32)
    (call $fd_write (i32.const 1) (i32.const 65532) (i32.const 1) (i32.const 16)))
  (func (export "iov_count_overflows") (result i32)
    (call $fd_write (i32.const 1) (i32.const 0) (i32.const 0x7fffffff) (i32.const 16)))
  (func (export "buffer_out_of_bounds") (result i32)
    (call $iov (i32.const 65530) (i32.const 100))
    (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 16)))
  (func (export "result_misaligned") (result i32)
    (call $iov (i32.const 100) (i32.const 1))
    (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 17)))
  (func (export "result_out_of_bounds") (result i32)
    (call $iov (i32.const 100) (i32.const 1))
    (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const -4)))
  (func (export "path_out_of_bounds") (result i32)
    (call $path_open (i32.const 3) (i32.const 0) (i32.const 65000) (i32.const 1000)
      (i32.const 0) (i64.const 0) (i64.const 0) (i32.const 0) (i32.const 16)))
  (func (export "argv_out_of_bounds") (result i32)
    (call $args_get (i32.const 65536) (i32.const 0)))
  (func (export "subscriptions_out_of_bounds") (result i32)
    (call $poll (i32.const 65504) (i32.const 0) (i32.const 2) (i32.const 16)))
  (func (export "bad_fd") (result i32)
    (call $iov (i32.const 100) (i32.const 1))
    (call $fd_write (i32.const 99) (i32.const 0) (i32.const 1) (i32.const 16)))
  (func (export "fine") (result i32)
    (i32.store8 (i32.const 100) (i32.const 0x41))
    (call $iov (i32.const 100) (i32.const 1))
    (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 16))))"#;

#[test]
fn bad_pointers_trap_and_bad_fds_are_errnos() {
    let engine = Engine::default();
    let module = compile(&engine, BAD_CALLS);
    let dir = temp_dir("bad-calls");
    let (ctx, out, _) = captured(WasiCtx::new().args(["x"]).preopen_dir(&dir, "/d", false).unwrap());
    let mut store = Store::new(&engine, ctx);
    let instance = Instance::new(&mut store, &module).unwrap();
    let mut call = |name: &str| wippy_wasm::dispatch::block_on(instance.call_async(&mut store, name, &[]));
    for (name, why) in [
        ("iovs_out_of_bounds", "pointer out of bounds"),
        ("iov_count_overflows", "out of bounds"),
        ("buffer_out_of_bounds", "pointer out of bounds"),
        ("result_misaligned", "pointer not aligned"),
        ("result_out_of_bounds", "pointer out of bounds"),
        ("path_out_of_bounds", "pointer out of bounds"),
        ("argv_out_of_bounds", "pointer out of bounds"),
        ("subscriptions_out_of_bounds", "pointer out of bounds"),
    ] {
        let e = call(name).expect_err(name);
        let msg = format!("{e:#}");
        assert!(
            msg.contains(why) && msg.contains("wasi_snapshot_preview1"),
            "{name}: {msg}"
        );
    }
    // After traps the instance still answers; a bad fd is an errno.
    assert_eq!(call("bad_fd").unwrap(), [Val::S32(8)]);
    assert_eq!(call("fine").unwrap(), [Val::S32(0)]);
    // (The two calls whose result pointer was bad wrote their byte first,
    // as in wasmtime: the result is stored after the operation.)
    assert_eq!(text(&out), "\0\0A");
}

#[test]
fn bad_modules_are_clear_errors() {
    let engine = Engine::default();
    let mut store = Store::new(&engine, WasiCtx::new());
    // Malformed bytes, and text that is not a module.
    let e = CoreModule::new(&engine, b"\0asm\x01\0\0\0\x01\xff").err().unwrap();
    assert!(format!("{e:#}").contains("core module"), "{e:#}");
    let invalid = wat::parse_str("(module (func $f (i32.add)))").unwrap();
    assert!(CoreModule::new(&engine, &invalid).is_err());
    // An import preview 1 does not have.
    let wat = r#"(module (import "wasi_snapshot_preview1" "fd_frobnicate" (func (param i32) (result i32)))
                  (memory (export "memory") 1) (func (export "_start")))"#;
    let module = compile(&engine, wat);
    let e = Instance::new(&mut store, &module).err().unwrap();
    assert!(format!("{e:#}").contains("fd_frobnicate"), "{e:#}");
    // Preview 1 functions need the memory exported as `memory`.
    let wat = r#"(module (import "wasi_snapshot_preview1" "random_get" (func $r (param i32 i32) (result i32)))
                  (memory 1) (func (export "_start") (drop (call $r (i32.const 0) (i32.const 4)))))"#;
    let module = compile(&engine, wat);
    let instance = Instance::new(&mut store, &module).unwrap();
    let e = wippy_wasm::dispatch::block_on(instance.call_async(&mut store, "_start", &[])).unwrap_err();
    assert!(format!("{e:#}").contains("exports no memory"), "{e:#}");
    // Through `run`: one line on stderr, no panic.
    let dir = temp_dir("bad-modules");
    for (name, bytes) in [
        ("truncated.wasm", &b"\0asm\x01\0\0\0\x01"[..]),
        ("reactor.wat", &b"(module (func (export \"_initialize\")))"[..]),
        ("no-start.wat", &b"(module (memory (export \"memory\") 1))"[..]),
    ] {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        let r = cli(&["run", path.to_str().unwrap()], b"");
        assert_eq!(r.status, 1, "{name}: {}", r.stderr);
        assert_eq!(r.stderr.lines().count(), 1, "{name}: {}", r.stderr);
        assert!(!r.stderr.contains("panicked"), "{name}: {}", r.stderr);
    }
}

#[test]
fn invoke_calls_a_core_export_with_wave_arguments() {
    let dir = temp_dir("invoke");
    let path = dir.join("reactor.wat");
    std::fs::write(
        &path,
        r#"(module
          (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
          (memory (export "memory") 1)
          (global $base (mut i32) (i32.const 0))
          (func (export "_initialize") (global.set $base (i32.const 1000)))
          (func (export "add") (param i32 i32) (result i32)
            (i32.add (global.get $base) (i32.add (local.get 0) (local.get 1))))
          (func (export "mix") (param i64 f64) (result i64 f64)
            (local.get 0) (f64.mul (local.get 1) (f64.const 2)))
          (func (export "hello")
            (i32.store (i32.const 0) (i32.const 16))
            (i32.store (i32.const 4) (i32.const 3))
            (i32.store (i32.const 16) (i32.const 0x0a6968))
            (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))"#,
    )
    .unwrap();
    let file = path.to_str().unwrap();
    let r = cli(&["run", "--invoke", "add(2, 40)", file], b"");
    assert_eq!((r.status, r.stdout.as_str()), (0, "1042\n"), "{}", r.stderr);
    let r = cli(&["run", "--invoke", "mix(-5, 1.25)", file], b"");
    assert_eq!(r.stdout, "(-5, 2.5)\n", "{}", r.stderr);
    let r = cli(&["run", "--invoke", "hello()", file], b"");
    assert_eq!(r.stdout, "hi\n");
    let r = cli(&["run", "--invoke", "nope()", file], b"");
    assert_eq!(r.status, 1);
    assert!(r.stderr.contains("no exported function `nope`"), "{}", r.stderr);
    let r = cli(&["run", "--invoke", "add(1)", file], b"");
    assert_eq!(r.status, 1);
    assert!(r.stderr.contains("invalid arguments"), "{}", r.stderr);
    let r = cli(&["run", file], b"");
    assert_eq!(r.status, 1);
    assert!(r.stderr.contains("reactor"), "{}", r.stderr);
}

#[test]
fn exit_is_an_error_value_for_embedders() {
    let wat = r#"(module (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
                  (memory (export "memory") 1) (func (export "_start") (call $exit (i32.const 42))))"#;
    let engine = Engine::default();
    let module = compile(&engine, wat);
    let mut store = Store::new(&engine, WasiCtx::new());
    let instance = Instance::new(&mut store, &module).unwrap();
    let e = wippy_wasm::dispatch::block_on(instance.call_async(&mut store, "_start", &[])).unwrap_err();
    assert_eq!(e.downcast_ref::<Exit>(), Some(&Exit(42)));
    assert_eq!(preview1::run_module(&engine, &module, WasiCtx::new()).unwrap(), 42);
}
