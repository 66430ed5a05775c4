//! Processes: `process.wasm` entries spawned and waited on (from Rust and
//! from Lua), cancelled, run as commands (`run -c`), and supervised as
//! `process.service` entries (`up -c`). Guests: `tests/process.wat`,
//! `tests/nap.wat`, the C registry guest and the componentize-py guest.

mod common;

use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use wippy_wasm::registry::process::service::ServiceState;
use wippy_wasm::registry::process::Exit;
use wippy_wasm::registry::Registry;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A fresh folder of its own for each call (tests run in parallel).
fn scratch(name: &str) -> PathBuf {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let d = std::env::temp_dir().join(format!("wippy-process-{name}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(d.join("bin")).unwrap();
    d
}

/// The test guests in `dir`, and registry entries for them (namespace `p`).
fn entries(dir: &Path) -> String {
    for (from, to) in [("tests/process.wat", "process.wat"), ("tests/nap.wat", "nap.wat")] {
        std::fs::copy(root().join(from), dir.join("bin").join(to)).unwrap();
    }
    std::fs::copy(root().join("tests/c_registry/guest.wasm"), dir.join("bin/guest.wasm")).unwrap();
    std::fs::copy(
        root().join("examples/registry/bin/hello.wasm"),
        dir.join("bin/hello.wasm"),
    )
    .unwrap();
    let hello_cmd = common::componentize_command(&std::fs::read(common::fixture("hello.wasm")).unwrap());
    std::fs::write(dir.join("bin/hello_cmd.wasm"), hello_cmd).unwrap();
    let hash = |f: &str| common::sha256(&dir.join("bin").join(f));
    let wat = |name: &str, file: &str, method: &str, extra: &str| {
        format!("  - name: {name}\n    kind: process.wasm\n    fs: bin\n    path: /{file}\n    hash: sha256:{}\n    method: {method}\n{extra}", common::sha256(&dir.join("bin").join(file)))
    };
    let mut out = String::from("  - name: bin\n    kind: fs.directory\n    directory: ./bin\n");
    out += &format!("  - name: hello\n    kind: function.wasm\n    fs: bin\n    path: /hello.wasm\n    hash: sha256:{}\n    method: hello\n", hash("hello.wasm"));
    out += &wat("compute", "process.wat", "compute", "    meta:\n      command:\n        name: compute\n        short: Multiplies two numbers\n    pool:\n      type: inline\n");
    out += &wat(
        "boom",
        "process.wat",
        "boom",
        "    meta:\n      command:\n        name: boom\n        short: Traps\n",
    );
    out += &wat(
        "half",
        "process.wat",
        "half",
        "    meta:\n      command:\n        name: half\n        short: Halves an even number\n",
    );
    out += &wat("nap", "nap.wat", "nap", "    imports: [wasi:clocks, wasi:io]\n");
    out += &format!(
        "  - name: relay\n    kind: process.wasm\n    fs: bin\n    path: /guest.wasm\n    hash: sha256:{}\n    method: relay\n    imports: [funcs]\n    meta:\n      command:\n        name: relay\n        short: Asks another entry\n  - name: summarize\n    kind: process.wasm\n    fs: bin\n    path: /guest.wasm\n    hash: sha256:{}\n    method: summarize\n    imports: [funcs]\n    meta:\n      command:\n        name: summarize\n        short: Totals numbers\n",
        hash("guest.wasm"),
        hash("guest.wasm")
    );
    out += &format!(
        "  - name: greet\n    kind: process.wasm\n    fs: bin\n    path: /hello_cmd.wasm\n    hash: sha256:{}\n    method: \"wasi:cli/run#run\"\n    imports: [wasi:cli, wasi:io, wasi:clocks, wasi:filesystem, wasi:random]\n    meta:\n      command:\n        name: greet\n        short: A wasip1 command\n",
        hash("hello_cmd.wasm")
    );
    out
}

fn registry(dir: &Path, extra: &str) -> PathBuf {
    let file = dir.join("_index.yaml");
    std::fs::write(&file, format!("namespace: p\nentries:\n{}{extra}", entries(dir))).unwrap();
    file
}

fn wait(p: &wippy_wasm::registry::process::Process) -> Exit {
    wippy_wasm::dispatch::block_on(p.wait())
}

#[test]
fn spawn_wait_and_cancel_from_rust() {
    let dir = scratch("spawn");
    let r = Registry::load(registry(&dir, "")).unwrap();
    let p = r.spawn("p:compute", &[json!(6), json!(7)]).unwrap();
    assert_eq!(wait(&p), Exit::Returned(json!(42)));
    assert!(
        matches!(wait(&r.spawn("p:boom", &[]).unwrap()), Exit::Failed(e) if e.contains("p:boom") && e.contains("unreachable"))
    );
    assert_eq!(
        wait(&r.spawn("p:half", &[json!(9)]).unwrap()),
        Exit::Returned(json!({"err": "odd number"}))
    );
    // A process waiting in a sleep stops at once when cancelled.
    let long = r.spawn("p:nap", &[json!(60_000)]).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    let start = Instant::now();
    long.cancel();
    assert_eq!(wait(&long), Exit::Cancelled);
    assert!(start.elapsed() < Duration::from_secs(1), "{:?}", start.elapsed());
    // Bad spawns are errors at once.
    for (id, args, want) in [
        ("p:nobody", vec![], "unknown process `p:nobody`"),
        ("p:hello", vec![json!("x")], "is a function, not a process.wasm entry"),
        ("p:compute", vec![json!(1)], "arguments of `p:compute`"),
    ] {
        let err = format!("{:#}", r.spawn(id, &args).err().unwrap());
        assert!(err.contains(want), "{id}: {err}");
    }
}

#[test]
fn a_busy_process_is_cancelled_at_its_next_fuel_slice() {
    let dir = scratch("busy");
    let extra = "  - name: crunch\n    kind: process.wasm\n    fs: bin\n    path: /guest.wasm\n    hash: sha256:HASH\n    method: crunch\n    imports: [funcs]\n";
    let file = registry(&dir, "");
    let text =
        std::fs::read_to_string(&file).unwrap() + &extra.replace("HASH", &common::sha256(&dir.join("bin/guest.wasm")));
    std::fs::write(&file, text).unwrap();
    let r = Registry::load(&file).unwrap();
    let p = r.spawn("p:crunch", &[json!(100_000)]).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let start = Instant::now();
    p.cancel();
    assert_eq!(wait(&p), Exit::Cancelled);
    assert!(start.elapsed() < Duration::from_millis(500), "{:?}", start.elapsed());
}

#[test]
fn lua_spawns_monitors_and_receives_the_exit() {
    let dir = scratch("lua");
    let lua = r#"  - name: parent
    kind: function.lua
    method: main
    modules: [process]
    source: |
      local process = require("process")
      return { main = function(a, b)
        local pid, err = process.spawn_monitored("p:compute", "p:host", a, b)
        if err then return nil, err end
        local events = process.events()
        local event = events:receive()
        if event.kind ~= process.event.EXIT or event.from ~= pid then return nil, "unexpected event" end
        local _, bad = process.spawn("p:nobody", "p:host")
        return { value = event.result.value, error = event.result.error, bad = bad }
      end }
  - name: waits
    kind: function.lua
    method: main
    modules: [process]
    source: |
      local process = require("process")
      return { main = function(n)
        for i = 1, n do process.spawn_monitored("p:nap", "p:host", 100) end
        local got = 0
        local events = process.events()
        while got < n do events:receive() got = got + 1 end
        return got
      end }
"#;
    let r = Registry::load(registry(&dir, lua)).unwrap();
    let out = r.call_json("p:parent", &[json!(6), json!(7)]).unwrap();
    assert_eq!(out["value"], json!(42), "{out}");
    assert!(out["bad"].as_str().unwrap().contains("unknown process"), "{out}");
    // While it waits for events the Lua call is suspended: 50 naps of
    // 100 ms from one call finish together.
    let start = Instant::now();
    assert_eq!(r.call_json("p:waits", &[json!(50)]).unwrap(), json!(50));
    assert!(start.elapsed() < Duration::from_millis(1500), "{:?}", start.elapsed());
}

#[test]
fn commands_run_with_their_arguments_results_and_statuses() {
    let dir = scratch("cmd");
    let file = registry(&dir, "");
    let config = file.to_str().unwrap();
    let run = |args: &[&str]| common::cli(&[&["run", "-c", config][..], args].concat());
    assert_eq!(run(&["compute", "6", "7"]), (0, "42\n".into(), String::new()));
    let (status, out, _) = run(&["summarize", "[1, 2, 3]"]);
    assert_eq!(status, 0);
    assert_eq!(out.trim(), r#"{"count":3,"max":3,"mean":2.0,"min":1,"sum":6}"#);
    // A `result` is unwrapped: ok(v) prints v, err(e) goes to stderr with 1.
    assert_eq!(run(&["half", "8"]).0, 0);
    assert_eq!(run(&["half", "8"]).1, "4\n");
    let (status, out, err) = run(&["half", "7"]);
    assert_eq!((status, out.as_str()), (1, ""));
    assert!(err.contains("odd number"), "{err}");
    let (status, out, _) = run(&["relay", "p:hello", "cmd"]);
    assert_eq!((status, out.as_str()), (0, "hello, cmd\n"), "a string prints as it is");
    let (status, _, err) = run(&["boom"]);
    assert_eq!(status, 134);
    assert!(err.contains("p:boom") && err.contains("unreachable"), "{err}");
    // A command component gets the arguments as its argv, its stdout is ours.
    let (status, out, err) = run(&["greet", "you"]);
    assert_eq!(status, 0, "{err}");
    assert!(out.contains("argv[1]=you"), "{out}");
    // `list`.
    let (status, out, _) = run(&["list"]);
    assert_eq!(status, 0);
    for (name, short) in [
        ("compute", "Multiplies two numbers"),
        ("boom", "Traps"),
        ("greet", "A wasip1 command"),
    ] {
        let listed = out.lines().any(|l| {
            l.trim_start()
                .strip_prefix(name)
                .is_some_and(|rest| rest.trim() == short)
        });
        assert!(listed, "{name} {short:?} in:\n{out}");
    }
    // Bad input: one clear error each.
    for (args, want) in [
        (
            vec!["nosuch"],
            "unknown command `nosuch` (commands: boom, compute, greet, half, relay, summarize)",
        ),
        (
            vec!["compute", "6"],
            "`p:compute` takes 2 argument(s) (a: u32, b: u32), given 1",
        ),
        (vec!["compute", "6", "7", "8"], "takes 2 argument(s)"),
        (vec!["compute", "six", "7"], "argument 1 (`a: u32`): `six` is not a u32"),
        (vec!["compute", "-1", "7"], "argument 1 (`a: u32`)"),
    ] {
        let (status, _, err) = run(&args);
        assert_ne!(status, 0, "{args:?}");
        assert!(err.contains(want), "{args:?}: {err}");
    }
    // `run FILE` is as it was.
    let (status, out, _) = common::cli(&["run", common::fixture("hello.wasm").to_str().unwrap(), "file"]);
    assert_eq!(status, 0);
    assert!(out.contains("argv[1]=file"), "{out}");
}

#[test]
fn a_service_naming_a_missing_or_non_process_entry_is_refused() {
    let dir = scratch("badsvc");
    let extra = "  - name: ghost\n    kind: process.service\n    process: nowhere\n  - name: wrong\n    kind: process.service\n    process: hello\n";
    let all = Registry::check(registry(&dir, extra)).join("\n");
    assert!(
        all.contains("entry `p:ghost`: field `process`: no entry `p:nowhere`"),
        "{all}"
    );
    assert!(
        all.contains("entry `p:wrong`: field `process`: `p:hello` is not a process.wasm entry"),
        "{all}"
    );
}

#[test]
fn a_service_that_exhausts_its_restarts_gives_up() {
    let dir = scratch("exhaust");
    let extra = "  - name: crash\n    kind: process.service\n    process: boom\n    lifecycle:\n      auto_start: true\n      restart:\n        initial_delay: 50ms\n        max_attempts: 2\n";
    let r = Registry::load(registry(&dir, extra)).unwrap();
    let services = r.start_services();
    wippy_wasm::dispatch::block_on(services.wait());
    let states = services.states();
    assert!(
        matches!(
            &states[0].1,
            ServiceState::GaveUp {
                restarts: 2,
                last: Exit::Failed(_)
            }
        ),
        "{states:?}"
    );
}

#[test]
fn up_restarts_a_failing_service_and_stops_cleanly_on_sigint() {
    let dir = scratch("up");
    let extra = "  - name: crash\n    kind: process.service\n    process: boom\n    lifecycle:\n      auto_start: true\n      restart:\n        initial_delay: 20ms\n        max_attempts: 3\n  - name: sleeper\n    kind: process.service\n    process: nap\n    args: [60000]\n    lifecycle:\n      auto_start: true\n";
    let file = registry(&dir, extra);
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_wippy-wasm"))
        .args(["up", "-c", file.to_str().unwrap()])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let err = child.stderr.take().unwrap();
    let lines = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let sink = lines.clone();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for l in std::io::BufReader::new(err).lines().map_while(Result::ok) {
            sink.lock().unwrap().push_str(&(l + "\n"));
        }
    });
    let start = Instant::now();
    while !lines.lock().unwrap().contains("giving up after 3 restart(s)") {
        assert!(start.elapsed() < Duration::from_secs(10), "{}", lines.lock().unwrap());
        std::thread::sleep(Duration::from_millis(20));
    }
    {
        let log = lines.lock().unwrap();
        for n in 1..=3 {
            assert!(
                log.contains("service `p:crash`: `p:boom` failed:") && log.contains(&format!("restart {n}/3 in")),
                "{log}"
            );
        }
    }
    // SAFETY: signals our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(start.elapsed() < Duration::from_secs(5), "still running after SIGINT");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status:?}: {}", lines.lock().unwrap());
    assert!(lines.lock().unwrap().contains("stopped"));
}

#[test]
fn a_service_that_fails_twice_then_stays_up() {
    let dir = scratch("flaky");
    let Some(py) = common::http::build_python("tests/python/build.sh", &dir.join("bin/pyguest.wasm")) else {
        return;
    };
    let extra = format!(
        "  - name: flaky\n    kind: process.wasm\n    fs: bin\n    path: /pyguest.wasm\n    hash: sha256:{}\n    method: flaky\n    imports: [wasi:cli, wasi:io, wasi:clocks, wasi:filesystem, wasi:random, wasi:sockets, funcs]\n  - name: keeper\n    kind: process.service\n    process: flaky\n    args: [\"p:counter\", 2, 2.0]\n    lifecycle:\n      auto_start: true\n      restart:\n        initial_delay: 50ms\n        max_attempts: 5\n",
        common::sha256(&py)
    );
    let r = Registry::load(registry(&dir, &extra)).unwrap();
    let starts = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let s = starts.clone();
    r.register_native("p:counter", move |_| {
        Ok(json!(
            (s.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1).to_string()
        ))
    });
    let services = r.start_services();
    let start = Instant::now();
    while starts.load(std::sync::atomic::Ordering::SeqCst) < 3 {
        assert!(start.elapsed() < Duration::from_secs(60), "{:?}", services.states());
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        services.states()[0].1,
        ServiceState::Running { restarts: 2 },
        "up after two failures"
    );
    assert_eq!(starts.load(std::sync::atomic::Ordering::SeqCst), 3);
    wippy_wasm::dispatch::block_on(services.wait());
    match &services.states()[0].1 {
        ServiceState::Finished(Exit::Returned(v)) => assert_eq!(v, &json!("start 3 ran for 2.0 s")),
        other => panic!("{other:?}"),
    }
}

/// Peak RSS (KiB) and wall time of `wippy-wasm up -c DIR`.
fn up_cost(dir: &Path) -> (u64, std::time::Duration) {
    let m = common::cli_measured(&["up", "-c", dir.to_str().unwrap()]);
    assert_eq!(m.status, 0, "up failed: {}", m.stderr);
    (m.peak_kib, m.elapsed)
}

#[test]
fn ten_thousand_sleeping_processes_all_finish() {
    let dir = scratch("scale");
    let mut extra = String::new();
    for i in 0..10_000 {
        extra += &format!("  - name: s{i}\n    kind: process.service\n    process: nap\n    args: [200]\n    lifecycle:\n      auto_start: true\n");
    }
    registry(&dir, &extra);
    let (rss, took) = up_cost(&dir);
    eprintln!(
        "10,000 processes, each sleeping 200 ms, from one `up`: {took:?} wall, {} MiB peak RSS",
        rss / 1024
    );
    assert!(took < Duration::from_secs(30), "{took:?}");
    // And from the API.
    let r = Registry::load(&dir).unwrap();
    let start = Instant::now();
    let all: Vec<_> = (0..10_000).map(|_| r.spawn("p:nap", &[json!(200)]).unwrap()).collect();
    for p in &all {
        assert_eq!(wait(p), Exit::Returned(json!(200)));
    }
    eprintln!("10,000 processes from the API: {:?}", start.elapsed());
}

#[test]
fn serve_starts_the_services_too() {
    let dir = scratch("serve");
    let extra = "  - name: crash\n    kind: process.service\n    process: boom\n    lifecycle:\n      auto_start: true\n      restart:\n        initial_delay: 20ms\n        max_attempts: 1\n  - name: web\n    kind: function.wasm\n    fs: bin\n    path: /hello.wasm\n    hash: sha256:HASH\n    method: hello\n    transport: wasi-http\n  - name: route\n    kind: http.endpoint\n    method: POST\n    path: /hello\n    func: web\n";
    let file = registry(&dir, "");
    let text =
        std::fs::read_to_string(&file).unwrap() + &extra.replace("HASH", &common::sha256(&dir.join("bin/hello.wasm")));
    std::fs::write(&file, text).unwrap();
    let server = common::Served::start(&["-c", file.to_str().unwrap()]);
    assert_eq!(common::http::post(server.addr, "/hello", b"web").text(), "hello, web");
    let start = Instant::now();
    while !server.stderr().contains("giving up after 1 restart(s)") {
        assert!(start.elapsed() < Duration::from_secs(10), "{}", server.stderr());
        std::thread::sleep(Duration::from_millis(20));
    }
}
