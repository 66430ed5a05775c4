//! Native `wasi_snapshot_preview1` beside raw wasmi: `wippy-wasm run` of a
//! wasm32-wasip1 module against a minimal runner on wasmi and `wasmi_wasi`
//! (wasmi's own preview 1 host), each a fresh process, best of N wall
//! times.
//!
//! ```sh
//! cargo bench --bench preview1
//! ```
//!
//! The raw runner is this bench binary itself, started with
//! `--raw-wasmi FILE ARGS...` (see [`raw`]): it compiles the module,
//! links `wasmi_wasi` with inherited stdio and the arguments, and calls
//! `_start`, which is what `wippy-wasm run` does natively. Both run on
//! wasmi 2.0 with the same (default) engine configuration, built with the
//! same release profile (LTO). The bench names nothing of `wippy_wasm`, so
//! the raw runner carries none of it. (`cargo bench --bench run` shows the
//! adapter path, which `run` took before, beside wasmtime.)

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

/// The raw-wasmi runner: what a program needs to run a wasip1 command
/// with wasmi and nothing else.
mod raw {
    use wasmi::{Engine, Linker, Module, Store};

    pub fn run(file: &str, args: &[String]) -> i32 {
        let engine = Engine::default();
        let bytes = std::fs::read(file).expect("read the module");
        let module = Module::new(&engine, &bytes[..]).expect("compile the module");
        let mut argv = vec![file.to_string()];
        argv.extend_from_slice(args);
        let wasi = wasmi_wasi::WasiCtxBuilder::new()
            .inherit_stdio()
            .args(&argv)
            .expect("arguments")
            .build();
        let mut store = Store::new(&engine, wasi);
        let mut linker = Linker::new(&engine);
        wasmi_wasi::add_to_linker(&mut linker, |cx| cx).expect("link wasi");
        let instance = linker.instantiate_and_start(&mut store, &module).expect("instantiate");
        let start = instance
            .get_typed_func::<(), ()>(&store, "_start")
            .expect("a command exports _start");
        match start.call(&mut store, ()) {
            Ok(()) => 0,
            Err(e) => match e.i32_exit_status() {
                Some(code) => code,
                None => {
                    eprintln!("error: {e}");
                    134
                }
            },
        }
    }
}

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("spec-tests/fixtures")
        .join(name)
}

/// One run of `cmd`: its wall time, checked to succeed with `expect` on
/// stdout.
fn time(expect: &str, mut cmd: Command) -> Duration {
    let t = Instant::now();
    let out = cmd.output().expect("spawn");
    let elapsed = t.elapsed();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains(expect), "unexpected output {stdout:?}");
    elapsed
}

/// The best wall times of `n` runs each of `a` and `b`, taken in turns so
/// that a burst of load elsewhere on the machine hits both alike.
fn best_of(n: usize, expect: &str, a: &dyn Fn() -> Command, b: &dyn Fn() -> Command) -> (Duration, Duration) {
    let (mut best_a, mut best_b) = (Duration::MAX, Duration::MAX);
    for _ in 0..n {
        best_a = best_a.min(time(expect, a()));
        best_b = best_b.min(time(expect, b()));
    }
    (best_a, best_b)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--raw-wasmi") {
        std::process::exit(raw::run(&args[2], &args[3..]));
    }
    if args.iter().any(|a| a == "--list") {
        // `cargo bench -- --list` asks what benchmarks there are.
        return;
    }
    let ours = PathBuf::from(env!("CARGO_BIN_EXE_wippy-wasm"));
    let me = std::env::current_exe().expect("the bench binary");

    // (name, fixture, arguments, expected stdout, runs)
    let cases: [(&str, &str, &[&str], &str, usize); 3] = [
        ("hello (start-up)", "hello.wasm", &["x"], "argv[1]=x", 40),
        ("compute 10 rounds", "compute.wasm", &["10"], "primes=148933", 7),
        ("compute 40 rounds", "compute.wasm", &["40"], "primes=148933", 5),
    ];
    println!(
        "{:<20} {:>12} {:>12} {:>8}",
        "program", "native ms", "wasmi ms", "ratio"
    );
    for (name, file, prog_args, expect, n) in cases {
        let module = fixture(file);
        let (native, wasmi) = best_of(
            n,
            expect,
            &|| {
                let mut c = Command::new(&ours);
                c.arg("run").arg(&module).args(prog_args);
                c
            },
            &|| {
                let mut c = Command::new(&me);
                c.arg("--raw-wasmi").arg(&module).args(prog_args);
                c
            },
        );
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        println!(
            "{name:<20} {:>12.2} {:>12.2} {:>7.2}x",
            ms(native),
            ms(wasmi),
            ms(native) / ms(wasmi)
        );
    }
}
