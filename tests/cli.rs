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

#[test]
fn run_executes_a_wasip1_module_with_args_and_env() {
    let (code, out, err) =
        cli(&["run", "--env", "GREETING=yo", "--argv0", "prog", "spec-tests/fixtures/hello.wasm", "a", "--flag"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "hello from wasip1, argc=3\nargv[0]=prog\nargv[1]=a\nargv[2]=--flag\nGREETING=yo\n");
    assert_eq!(err, "to stderr\n");
    // exit(err) from a non-zero proc_exit is status 1.
    let (code, _, _) = cli(&["run", "spec-tests/fixtures/hello.wasm", "5"]);
    assert_eq!(code, 1);
}

#[test]
fn run_inherits_one_variable_or_all() {
    let out = Command::new(env!("CARGO_BIN_EXE_wippy-wasm"))
        .args(["run", "--env", "GREETING", "spec-tests/fixtures/hello.wasm"])
        .env("GREETING", "from host")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("GREETING=from host"));
    let out = Command::new(env!("CARGO_BIN_EXE_wippy-wasm"))
        .args(["run", "--inherit-env", "spec-tests/fixtures/hello.wasm"])
        .env("GREETING", "all of it")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("GREETING=all of it"));
}

#[test]
fn run_mounts_directories() {
    let dir = std::env::temp_dir().join(format!("wippy-cli-run-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let spec = format!("{}::/data", dir.display());
    let (code, out, err) = cli(&["run", "--dir", &spec, "spec-tests/fixtures/files.wasm"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.ends_with("entries=2 done\n"), "{out}");
    let spec = format!("{}::/ro", dir.display());
    std::fs::write(dir.join("file.txt"), "read me").unwrap();
    let (code, out, _) = cli(&["run", "--dir-ro", &spec, "spec-tests/fixtures/readonly.wasm"]);
    assert_eq!(code, 0);
    assert!(out.contains("create: EPERM"), "{out}");
}

#[test]
fn run_reports_traps_with_status_134() {
    let dir = std::env::temp_dir().join(format!("wippy-cli-trap-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("trap.wat");
    std::fs::write(
        &path,
        r#"(component
  (core module $M (func (export "run") (result i32) unreachable))
  (core instance $m (instantiate $M))
  (func $run (result (result)) (canon lift (core func $m "run")))
  (instance $i (export "run" (func $run)))
  (export "wasi:cli/run@0.2.0" (instance $i)))"#,
    )
    .unwrap();
    let (code, _, err) = cli(&["run", path.to_str().unwrap()]);
    assert_eq!(code, 134);
    assert!(err.contains("unreachable") && err.contains("wasi:cli/run#run"), "{err}");
}

#[test]
fn run_bad_input_gives_one_line_errors() {
    for args in [
        vec!["run", "no/such.wasm"],
        vec!["run", "Cargo.toml"],
        vec!["run", "examples/greet.wat"],
        vec!["run", "--dir", "/no/such/dir", "spec-tests/fixtures/hello.wasm"],
        vec!["run", "--bogus", "x.wasm"],
    ] {
        let (code, _, err) = cli(&args);
        assert_ne!(code, 0, "{args:?}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
    }
    let (_, _, err) = cli(&["run", "examples/greet.wat"]);
    assert!(err.contains("does not export `wasi:cli/run`"), "{err}");
}
