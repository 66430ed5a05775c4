//! The registry: definition files, loading checks, WASI configuration and
//! the JSON payload transport.

mod common;

use serde_json::json;
use std::path::{Path, PathBuf};
use wippy_wasm::registry::Registry;

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("wippy-registry-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn sha256(path: &Path) -> String {
    use sha2::Digest;
    let bytes = std::fs::read(path).unwrap();
    sha2::Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn example() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/registry")
}

#[test]
fn calls_with_json_arguments_and_results() {
    let r = Registry::load(example()).unwrap();
    assert_eq!(r.call_json("demo:add", &[json!(40), json!(2)]).unwrap(), json!(42));
    assert_eq!(
        r.call_json("demo:describe", &[json!({"x": 1, "y": 2})]).unwrap(),
        json!("positive")
    );
    assert_eq!(
        r.call_json("demo:describe", &[json!({"x": -5, "y": 2})]).unwrap(),
        json!(null)
    );
    assert_eq!(
        r.call_json("demo:add_inline", &[json!(-1), json!(-2)]).unwrap(),
        json!(-3)
    );
}

#[test]
fn argument_mismatches_name_the_parameter_and_path() {
    let r = Registry::load(example()).unwrap();
    let err = format!(
        "{:#}",
        r.call_json("demo:add", &[json!(1), json!(1u64 << 40)]).unwrap_err()
    );
    assert!(err.contains("parameter `b`") && err.contains("expected s32"), "{err}");
    let err = format!(
        "{:#}",
        r.call_json("demo:describe", &[json!({"x": 1, "y": "two"})])
            .unwrap_err()
    );
    assert!(err.contains("parameter `p`: at `.y`: expected s32"), "{err}");
    let err = format!("{:#}", r.call_json("demo:describe", &[json!({"x": 1})]).unwrap_err());
    assert!(err.contains("missing field `y`"), "{err}");
    let err = format!("{:#}", r.call_json("demo:nope", &[]).unwrap_err());
    assert!(err.contains("unknown function `demo:nope`"), "{err}");
}

fn write_registry(dir: &Path, yaml: &str) -> PathBuf {
    let file = dir.join("_index.yaml");
    std::fs::write(&file, yaml).unwrap();
    file
}

#[test]
fn a_hash_mismatch_is_refused_with_both_digests() {
    let dir = scratch("hash");
    std::fs::create_dir_all(dir.join("bin")).unwrap();
    std::fs::copy(example().join("bin/calc.wasm"), dir.join("bin/calc.wasm")).unwrap();
    let actual = sha256(&dir.join("bin/calc.wasm"));
    let wrong = "0".repeat(64);
    let file = write_registry(
        &dir,
        &format!(
            "namespace: t\nentries:\n  - name: bin\n    kind: fs.directory\n    directory: ./bin\n  - name: add\n    kind: function.wasm\n    fs: bin\n    path: /calc.wasm\n    hash: sha256:{wrong}\n    method: add\n"
        ),
    );
    let err = format!("{:#}", Registry::load(&file).err().unwrap());
    assert!(
        err.contains(&format!("expected sha256:{wrong}, actual sha256:{actual}")),
        "{err}"
    );
    assert!(err.contains("entry `t:add`: field `hash`"), "{err}");
}

/// A command component built from a C fixture, and its registry entry.
fn command_registry(dir: &Path, fixture: &str, entry_extra: &str) -> PathBuf {
    std::fs::create_dir_all(dir.join("bin")).unwrap();
    let core = std::fs::read(common::fixture(fixture)).unwrap();
    std::fs::write(dir.join("bin/prog.wasm"), common::componentize_command(&core)).unwrap();
    let hash = sha256(&dir.join("bin/prog.wasm"));
    write_registry(
        dir,
        &format!(
            "namespace: t\nentries:\n  - name: bin\n    kind: fs.directory\n    directory: ./bin\n  - name: prog\n    kind: function.wasm\n    fs: t:bin\n    path: /prog.wasm\n    hash: sha256:{hash}\n    method: \"wasi:cli/run#run\"\n{entry_extra}"
        ),
    )
}

const ALL_WASI: &str = "    imports: [wasi:cli, wasi:io, wasi:poll, wasi:clocks, wasi:filesystem, wasi:random]\n";

#[test]
fn an_undeclared_import_is_refused_naming_the_declaration() {
    let dir = scratch("imports");
    let file = command_registry(&dir, "hello.wasm", "    imports: [wasi:cli, wasi:io]\n");
    let err = format!("{:#}", Registry::load(&file).err().unwrap());
    assert!(err.contains("entry `t:prog`: field `imports`"), "{err}");
    assert!(
        err.contains("imports `wasi:clocks/wall-clock@") && err.contains("add `wasi:clocks` to `imports`"),
        "{err}"
    );
    let file = command_registry(&dir, "hello.wasm", ALL_WASI);
    assert_eq!(
        Registry::load(&file).unwrap().call_json("t:prog", &[]).unwrap(),
        json!({"ok": null})
    );
}

#[test]
fn mounts_and_read_only_mounts() {
    let dir = scratch("mounts");
    std::fs::create_dir_all(dir.join("data")).unwrap();
    let mount = |ro: bool| {
        format!(
            "{ALL_WASI}    wasi:\n      mounts:\n        - fs: t:data\n          guest: /data\n          read_only: {ro}\n  - name: data\n    kind: fs.directory\n    directory: ./data\n"
        )
    };
    // files.c creates, edits and removes files under /data; it fails (exit 1,
    // so `run` returns err) when the mount refuses writes.
    let file = command_registry(&dir, "files.wasm", &mount(false));
    assert_eq!(
        Registry::load(&file).unwrap().call_json("t:prog", &[]).unwrap(),
        json!({"ok": null})
    );
    let file = command_registry(&dir, "files.wasm", &mount(true));
    let r = Registry::load(&file).unwrap();
    let err = format!("{:#}", r.call_json("t:prog", &[]).unwrap_err());
    assert!(err.contains("exited with status 1"), "{err}");
    assert_eq!(
        std::fs::read_dir(dir.join("data")).unwrap().count(),
        0,
        "nothing was written"
    );
}

#[test]
fn env_mapping_and_required_variables() {
    let dir = scratch("env");
    let env = |required: &str| {
        format!(
            "{ALL_WASI}    wasi:\n      env:\n        - id: t:greeting\n          name: GREETING\n          required: true\n        - id: t:{required}\n          name: OTHER\n          required: true\n  - name: vars\n    kind: env.storage.static\n    values:\n      GREETING: hello\n  - name: greeting\n    kind: env.variable\n    variable: GREETING\n    storage: t:vars\n  - name: missing\n    kind: env.variable\n    variable: NOT_SET_ANYWHERE\n    storage: t:vars\n  - name: defaulted\n    kind: env.variable\n    variable: ALSO_NOT_SET\n    storage: t:vars\n    default: fallback\n"
        )
    };
    let file = command_registry(&dir, "hello.wasm", &env("defaulted"));
    assert_eq!(
        Registry::load(&file).unwrap().call_json("t:prog", &[]).unwrap(),
        json!({"ok": null})
    );
    let file = command_registry(&dir, "hello.wasm", &env("missing"));
    let err = format!(
        "{:#}",
        Registry::load(&file).unwrap().call_json("t:prog", &[]).unwrap_err()
    );
    assert!(
        err.contains("field `wasi.env[1]`: required variable `t:missing` (OTHER) is not set"),
        "{err}"
    );
}

#[test]
fn config_errors_name_the_file_the_entry_and_the_field() {
    let dir = scratch("config");
    let cases = [
        ("  - name: f\n    kind: function.wasm\n    fs: x\n    path: /a.wasm\n    hash: md5:abc\n    method: m\n", "entry `t:f`: field `hash`"),
        ("  - name: f\n    kind: function.wat\n    method: m\n", "entry `t:f`: field `source`"),
        ("  - name: f\n    kind: function.wat\n    source: \"(component)\"\n", "entry `t:f`: field `method`"),
        (
            "  - name: f\n    kind: function.wat\n    source: \"(component)\"\n    method: m\n    wasi:\n      cwd: relative\n",
            "entry `t:f`: field `wasi.cwd`",
        ),
        (
            "  - name: f\n    kind: function.wat\n    source: \"(component)\"\n    method: m\n    pool:\n      type: huge\n",
            "entry `t:f`: field `pool.type`",
        ),
        (
            "  - name: f\n    kind: function.wat\n    source: \"(component)\"\n    method: m\n    wasi:\n      env:\n        - id: x\n          nme: Y\n",
            "entry `t:f`: field `wasi.env[0]",
        ),
        ("  - name: f\n    kind: function.wat\n    source: \"(component)\"\n    method: m\n", "entry `t:f`: field `method`: the component exports no function `m`"),
        ("  - name: d\n    kind: fs.directory\n", "entry `t:d`: field `directory`"),
        ("  - name: v\n    kind: env.variable\n    storage: t:nowhere\n", "entry `t:v`: field `storage`: no entry `t:nowhere`"),
    ];
    for (entries, want) in cases {
        let file = write_registry(&dir, &format!("namespace: t\nentries:\n{entries}"));
        let problems = Registry::check(&file);
        let all = problems.join("\n");
        assert!(
            all.contains(want) && all.contains(&file.display().to_string()),
            "want `{want}` in:\n{all}"
        );
    }
}
