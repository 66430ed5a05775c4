//! A real large guest: CPython built into a component by componentize-py
//! (`tests/python/`), run as a registry `function.wasm` entry that imports
//! every WASI 0.2 group componentize-py uses (cli, io, clocks, filesystem,
//! random, sockets) and calls a second entry through `funcs`.
//!
//! The component is built at test time (`tests/python/build.sh`); without
//! componentize-py the test is skipped, unless `CI` is set (`.ci/run`
//! installs it), where a missing tool is a failure.

mod common;

use serde_json::json;
use std::path::{Path, PathBuf};
use wippy_wasm::registry::Registry;

/// Builds the guest into `dir`; `None` if componentize-py is not installed.
fn build(dir: &Path) -> Option<PathBuf> {
    common::http::build_python("tests/python/build.sh", &dir.join("pyguest.wasm"))
}

#[test]
fn a_python_component_runs_from_the_registry_and_calls_another_entry() {
    let dir = std::env::temp_dir().join(format!("wippy-python-{}", std::process::id()));
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let Some(py) = build(&bin) else { return };
    let hello = bin.join("hello.wasm");
    std::fs::copy(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/registry/bin/hello.wasm"),
        &hello,
    )
    .unwrap();
    let yaml = format!(
        "namespace: demo
entries:
  - name: bin
    kind: fs.directory
    directory: bin
  - name: hello
    kind: function.wasm
    fs: demo:bin
    path: /hello.wasm
    hash: sha256:{}
    method: hello
  - name: py
    kind: function.wasm
    fs: demo:bin
    path: /pyguest.wasm
    hash: sha256:{}
    method: greet
    imports: [funcs, wasi:cli, wasi:io, wasi:poll, wasi:clocks, wasi:filesystem, wasi:random, wasi:sockets]
    pool:
      type: lazy
      max_size: 2
",
        common::sha256(&hello),
        common::sha256(&py)
    );
    std::fs::write(dir.join("_index.yaml"), yaml).unwrap();
    let r = Registry::load(dir.join("_index.yaml")).unwrap();
    // Twice: a fresh instance, then a warm one.
    for _ in 0..2 {
        assert_eq!(
            r.call_json("demo:py", &[json!("wippy")]).unwrap(),
            json!("python says: hello, wippy")
        );
    }
    let failed = r.call_json("demo:py", &[json!("")]).unwrap();
    assert!(
        failed.as_str().unwrap().starts_with("error: ") && failed.as_str().unwrap().contains("demo:missing"),
        "{failed}"
    );
}
