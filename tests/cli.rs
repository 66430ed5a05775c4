//! The `wippy-wasm` command line: `wast` and `inspect`.

use std::process::Command;

fn cli(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_wippy-wasm"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn wast_runs_a_script_and_ends_with_the_counts() {
    let (code, out, _) = cli(&["wast", "examples/smoke.wast"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(out.lines().last(), Some("10 passed, 0 failed, 0 skipped"));
}

#[test]
fn wast_reports_failures_with_their_position() {
    let dir = std::env::temp_dir().join(format!("wippy-wast-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let script = dir.join("bad.wast");
    std::fs::write(
        &script,
        r#"(component
  (core module $M (func (export "f") (result i32) (i32.const 1)))
  (core instance $m (instantiate $M))
  (func (export "f") (result u32) (canon lift (core func $m "f"))))
(assert_return (invoke "f") (u32.const 2))
"#,
    )
    .unwrap();
    let (code, out, _) = cli(&["wast", script.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(out.contains("bad.wast:5:2: expected 2, got 1"), "{out}");
    assert_eq!(out.lines().last(), Some("1 passed, 1 failed, 0 skipped"));
}

#[test]
fn inspect_prints_imports_and_exports() {
    let (code, out, err) = cli(&["inspect", "examples/greet.wat"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("  import log: func(msg: string);"), "{out}");
    assert!(out.contains("  export greet: func(name: string) -> string;"), "{out}");
}

#[test]
fn bad_files_give_one_line_errors() {
    let (code, _, err) = cli(&["inspect", "no/such/file.wasm"]);
    assert_ne!(code, 0);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("error: cannot read no/such/file.wasm"), "{err}");
    let (code, _, err) = cli(&["inspect", "Cargo.toml"]);
    assert_ne!(code, 0);
    assert_eq!(err.lines().count(), 1, "{err}");
}
