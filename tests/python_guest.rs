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

/// Builds the guest into `dir` (once per test binary, then copied);
/// `None` if componentize-py is not installed.
fn build(dir: &Path) -> Option<PathBuf> {
    static BUILT: std::sync::OnceLock<Option<PathBuf>> = std::sync::OnceLock::new();
    let built = BUILT.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("wippy-python-build-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        common::http::build_python("tests/python/build.sh", &dir.join("pyguest.wasm"))
    });
    let built = built.as_ref()?;
    let out = dir.join("pyguest.wasm");
    std::fs::copy(built, &out).unwrap();
    Some(out)
}

/// A fresh folder with `bin/` holding the Python guest and the example's
/// hello; their hashes.
fn setup(name: &str) -> Option<(PathBuf, String, String)> {
    let dir = std::env::temp_dir().join(format!("wippy-python-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let py = build(&bin)?;
    let hello = bin.join("hello.wasm");
    std::fs::copy(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/registry/bin/hello.wasm"),
        &hello,
    )
    .unwrap();
    Some((dir, common::sha256(&py), common::sha256(&hello)))
}

/// The imports our product page lists for a componentize-py component.
const PRODUCT_IMPORTS: &str = "[wasi:cli, wasi:io, wasi:clocks, wasi:filesystem, wasi:random, wasi:sockets, funcs]";

/// A Python function entry `name` calling method `method`.
fn py_entry(name: &str, method: &str, hash: &str, extra: &str) -> String {
    format!(
        "  - name: {name}\n    kind: function.wasm\n    fs: demo:bin\n    path: /pyguest.wasm\n    hash: sha256:{hash}\n    method: {method}\n    imports: {PRODUCT_IMPORTS}\n{extra}"
    )
}

const HEADER: &str = "namespace: demo\nentries:\n  - name: bin\n    kind: fs.directory\n    directory: bin\n";

#[test]
fn lua_and_the_python_component_call_each_other() {
    let Some((dir, py, _)) = setup("lua") else { return };
    let yaml = format!(
        "{HEADER}{}{}  - name: tally\n    kind: function.lua\n    method: main\n    modules: [funcs]\n    source: |\n      local funcs = require(\"funcs\")\n      return {{ main = function(...)\n        local s, err = funcs.call(\"demo:summarize\", {{...}})\n        if err then return nil, err end\n        return {{ total = s.sum, biggest = s.max, n = s.count }}\n      end }}\n  - name: upper\n    kind: function.lua\n    method: main\n    source: |\n      return {{ main = function(s)\n        if s == \"\" then return nil, \"empty input\" end\n        if s == \"raise\" then error(\"raised on purpose\") end\n        return string.upper(s)\n      end }}\n",
        py_entry("summarize", "summarize", &py, ""),
        py_entry("relay", "relay", &py, ""),
    );
    std::fs::write(dir.join("_index.yaml"), yaml).unwrap();
    let r = Registry::load(&dir).unwrap();
    // Lua → Python: a table in, a record (as a table) back.
    assert_eq!(
        r.call_json("demo:tally", &[json!(3), json!(9), json!(4)]).unwrap(),
        json!({"total": 16, "biggest": 9, "n": 3})
    );
    // Python → Lua through funcs: a value, and errors as `err`.
    assert_eq!(
        r.call_json("demo:relay", &[json!("demo:upper"), json!("quiet")])
            .unwrap(),
        json!({"ok": "QUIET"})
    );
    let err = r.call_json("demo:relay", &[json!("demo:upper"), json!("")]).unwrap();
    assert!(err["err"].as_str().unwrap().contains("empty input"), "{err}");
    let err = r
        .call_json("demo:relay", &[json!("demo:upper"), json!("raise")])
        .unwrap();
    assert!(err["err"].as_str().unwrap().contains("raised on purpose"), "{err}");
}

#[test]
fn the_product_pages_python_world_runs_through_call_and_serve() {
    let Some((dir, py, hello)) = setup("world") else { return };
    let yaml = format!(
        "{HEADER}  - name: hello\n    kind: function.wasm\n    fs: demo:bin\n    path: /hello.wasm\n    hash: sha256:{hello}\n    method: hello\n{}{}{}  - name: summarize_route\n    kind: http.endpoint\n    method: POST\n    path: /summarize\n    func: summarize\n",
        py_entry("greet", "greet", &py, ""),
        py_entry("summarize", "summarize", &py, "    transport: wasi-http\n"),
        py_entry("relay", "relay", &py, ""),
    );
    std::fs::write(dir.join("_index.yaml"), yaml).unwrap();
    let config = dir.to_str().unwrap();
    let r = Registry::load(&dir).unwrap();
    assert_eq!(
        r.call_json("demo:greet", &[json!("you")]).unwrap(),
        json!("python says: hello, you")
    );
    assert_eq!(
        r.call_json("demo:summarize", &[json!([4, 8, -3])]).unwrap(),
        json!({"count": 3, "sum": 9, "min": -3, "max": 8, "mean": 3.0})
    );
    assert_eq!(
        r.call_json("demo:summarize", &[json!([])]).unwrap(),
        json!({"count": 0, "sum": 0, "min": null, "max": null, "mean": 0.0})
    );
    assert_eq!(
        r.call_json("demo:relay", &[json!("demo:hello"), json!("relay")])
            .unwrap(),
        json!({"ok": "hello, relay"})
    );
    let failed = r.call_json("demo:relay", &[json!("demo:nobody"), json!("x")]).unwrap();
    assert!(
        failed["err"]
            .as_str()
            .unwrap()
            .contains("unknown function `demo:nobody`"),
        "{failed}"
    );
    // The command line and the server see the same.
    let (status, out, err) = common::cli(&["call", "-c", config, "demo:summarize", "[1, 2]"]);
    assert_eq!(status, 0, "{err}");
    assert_eq!(out.trim(), r#"{"count":2,"max":2,"mean":1.5,"min":1,"sum":3}"#);
    let server = common::Served::start(&["-c", config]);
    let resp = common::http::post(server.addr, "/summarize", b"[5]");
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.header("content-type"), Some("application/json"));
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&resp.text()).unwrap(),
        json!({"count": 1, "sum": 5, "min": 5, "max": 5, "mean": 5.0})
    );
}

/// Peak RSS (KiB) and wall time of `wippy-wasm check -c DIR`.
fn check_cost(dir: &Path) -> (u64, std::time::Duration) {
    let m = common::cli_measured(&["check", "-c", dir.to_str().unwrap()]);
    assert_eq!(m.status, 0, "check failed: {}", m.stderr);
    (m.peak_kib, m.elapsed)
}

#[test]
fn entries_on_one_binary_share_one_compiled_component() {
    let Some((dir, py, _)) = setup("shared") else { return };
    let write = |n: usize| {
        let entries: String = (0..n).map(|i| py_entry(&format!("py{i}"), "greet", &py, "")).collect();
        std::fs::write(dir.join("_index.yaml"), format!("{HEADER}{entries}")).unwrap();
    };
    write(1);
    let (one, t1) = check_cost(&dir);
    write(10);
    let (ten, t10) = check_cost(&dir);
    eprintln!("check of 1 entry: {one} KiB peak RSS, {t1:?}; of 10 entries on the same binary: {ten} KiB, {t10:?}");
    assert!(
        ten < one + one / 4,
        "10 entries cost {ten} KiB against {one} KiB for one"
    );
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
