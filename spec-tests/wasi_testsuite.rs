//! Runs WebAssembly/wasi-testsuite's wasm32-wasip1 tests (branch
//! `prod/testsuite-base`, prebuilt): each core module runs natively on
//! `wasi_snapshot_preview1` (`wippy_wasm::wasi::preview1`) with the args,
//! env and root directory of its JSON spec, checking the exit code exactly
//! and stdout/stderr as the suite's own runner does (the stream must start
//! with the expected text). With `WIPPY_WASI_TESTSUITE_ADAPTER=1` each test
//! is instead wrapped with the preview1 adapter and run as a P2 component.
//!
//! ```sh
//! WIPPY_WASI_TESTSUITE=/path/to/wasi-testsuite cargo test --release --test wasi_testsuite -- --nocapture
//! ```
//!
//! Skipped (passes) when the variable is not set; fails on any failed test.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use wippy_wasm::wasi::{preview1, Sink, WasiCtx};

fn tests(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for lang in ["assemblyscript", "c", "rust"] {
        let dir = root.join("tests").join(lang).join("testsuite").join("wasm32-wasip1");
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        let mut wasm: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "wasm"))
            .collect();
        wasm.sort();
        out.extend(wasm);
    }
    out
}

/// Copies a fixture folder, keeping symlinks as symlinks.
fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for e in std::fs::read_dir(from)? {
        let e = e?;
        let (src, dst) = (e.path(), to.join(e.file_name()));
        let ty = e.file_type()?;
        if ty.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&src)?, &dst)?;
        } else if ty.is_dir() {
            copy_dir(&src, &dst)?;
        } else {
            std::fs::copy(&src, &dst)?;
        }
    }
    Ok(())
}

struct Spec {
    args: Vec<String>,
    env: Vec<(String, String)>,
    root: Option<String>,
    exit_code: i32,
    stdout: Option<String>,
    stderr: Option<String>,
}

fn spec(wasm: &Path) -> Spec {
    let json: serde_json::Value = std::fs::read_to_string(wasm.with_extension("json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(serde_json::json!({}));
    let strs = |v: &serde_json::Value| -> Vec<String> {
        v.as_array()
            .map(|a| a.iter().filter_map(|s| s.as_str().map(String::from)).collect())
            .unwrap_or_default()
    };
    Spec {
        args: strs(&json["args"]),
        env: json["env"]
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                    .collect()
            })
            .unwrap_or_default(),
        root: json["root"].as_str().map(String::from),
        exit_code: json["exit_code"].as_i64().unwrap_or(0) as i32,
        stdout: json["stdout"].as_str().map(String::from),
        stderr: json["stderr"].as_str().map(String::from),
    }
}

/// Runs one test; `Err` says why it failed.
fn run_one(wasm: &Path, scratch: &Path) -> Result<(), String> {
    let spec = spec(wasm);
    let dir = wasm.parent().unwrap();
    for e in std::fs::read_dir(dir).map_err(|e| e.to_string())?.flatten() {
        if e.path().extension().is_some_and(|x| x == "cleanup") {
            let _ = std::fs::remove_dir_all(e.path()).or_else(|_| std::fs::remove_file(e.path()));
        }
    }
    let (out, err) = (Arc::new(Mutex::new(Vec::new())), Arc::new(Mutex::new(Vec::new())));
    let name = wasm.file_name().unwrap().to_string_lossy().into_owned();
    let mut ctx = WasiCtx::new()
        .args(std::iter::once(name.clone()).chain(spec.args.clone()))
        .stdout(Sink::Capture(out.clone()))
        .stderr(Sink::Capture(err.clone()));
    for (k, v) in &spec.env {
        ctx = ctx.env(k, v);
    }
    if let Some(root) = &spec.root {
        let copy = scratch.join(&name);
        let _ = std::fs::remove_dir_all(&copy);
        copy_dir(&dir.join(root), &copy).map_err(|e| format!("cannot copy {root}: {e}"))?;
        ctx = ctx.preopen_dir(&copy, "/", false).map_err(|e| e.to_string())?;
    }
    let bytes = std::fs::read(wasm).map_err(|e| e.to_string())?;
    let engine = wippy_wasm::Engine::default();
    let status = if std::env::var_os("WIPPY_WASI_TESTSUITE_ADAPTER").is_some() {
        let component = wippy_wasm::Component::from_program(&engine, &bytes).map_err(|e| format!("{e:#}"))?;
        wippy_wasm::wasi::command::run_component(&engine, &component, ctx)
    } else {
        let module = wippy_wasm::CoreModule::new(&engine, &bytes).map_err(|e| format!("{e:#}"))?;
        preview1::run_module(&engine, &module, ctx)
    }
    .map_err(|e| format!("{e:#}"))?;
    let text = |b: &Arc<Mutex<Vec<u8>>>| String::from_utf8_lossy(&b.lock().unwrap()).into_owned();
    if status != spec.exit_code {
        return Err(format!(
            "exit code {status}, expected {}; stderr: {}",
            spec.exit_code,
            text(&err).trim()
        ));
    }
    for (what, want, got) in [
        ("stdout", &spec.stdout, text(&out)),
        ("stderr", &spec.stderr, text(&err)),
    ] {
        if let Some(want) = want {
            if !got.starts_with(want.as_str()) {
                return Err(format!("{what} {got:?} does not start with {want:?}"));
            }
        }
    }
    Ok(())
}

#[test]
fn wasi_testsuite_wasip1() {
    let Some(root) = std::env::var_os("WIPPY_WASI_TESTSUITE") else {
        eprintln!("skipped: set WIPPY_WASI_TESTSUITE to a wasi-testsuite checkout (branch prod/testsuite-base)");
        return;
    };
    let root = PathBuf::from(root);
    let scratch = std::env::temp_dir().join(format!("wippy-wasi-testsuite-{}", std::process::id()));
    let (mut passed, mut failed) = (0, 0);
    for wasm in tests(&root) {
        let rel = wasm.strip_prefix(&root).unwrap().display().to_string();
        let (w, s) = (wasm.clone(), scratch.clone());
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let r = std::panic::catch_unwind(|| run_one(&w, &s)).unwrap_or_else(|_| Err("panicked".into()));
            let _ = tx.send(r);
        });
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(Ok(())) => passed += 1,
            Ok(Err(why)) => {
                failed += 1;
                println!("FAIL {rel}: {why}");
            }
            Err(_) => {
                failed += 1;
                println!("FAIL {rel}: timed out");
            }
        }
    }
    let _ = std::fs::remove_dir_all(&scratch);
    println!("{passed} passed, {failed} failed");
    assert!(passed + failed > 0, "no tests found under {}", root.display());
    assert_eq!(failed, 0, "{failed} wasi-testsuite tests failed");
}
