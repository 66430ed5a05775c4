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
    let (code, out, err) = cli(&[
        "run",
        "--env",
        "GREETING=yo",
        "--argv0",
        "prog",
        "spec-tests/fixtures/hello.wasm",
        "a",
        "--flag",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        "hello from wasip1, argc=3\nargv[0]=prog\nargv[1]=a\nargv[2]=--flag\nGREETING=yo\n"
    );
    assert_eq!(err, "to stderr\n");
    // A wasip1 module runs natively: proc_exit(5) is status 5 (the
    // preview1 adapter made it exit(err), status 1).
    let (code, _, _) = cli(&["run", "spec-tests/fixtures/hello.wasm", "5"]);
    assert_eq!(code, 5);
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

#[test]
fn run_invoke_calls_an_export_with_wave_values() {
    let dir = std::env::temp_dir().join(format!("wippy-cli-invoke-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("calc.wat");
    std::fs::write(
        &path,
        r#"(component
  (core module $M
    (memory (export "mem") 1)
    (func (export "add") (param i32 i32) (result i32) (i32.add (local.get 0) (local.get 1)))
    (func (export "pair") (param i32) (result i32)
      (i32.store (i32.const 0) (local.get 0)) (i32.store8 (i32.const 4) (i32.const 1)) (i32.const 0)))
  (core instance $m (instantiate $M))
  (type $P (record (field "n" u32) (field "ok" bool)))
  (export $P' "p" (type $P))
  (func (export "add") (param "a" u32) (param "b" u32) (result u32) (canon lift (core func $m "add")))
  (func (export "pair") (param "n" u32) (result $P') (canon lift (core func $m "pair") (memory (core memory $m "mem")))))"#,
    )
    .unwrap();
    let p = path.to_str().unwrap();
    assert_eq!(
        cli(&["run", "--invoke", "add(40, 2)", p]),
        (0, "42\n".into(), String::new())
    );
    assert_eq!(cli(&["run", "--invoke", "pair(7)", p]).1, "{n: 7, ok: true}\n");
    let (code, _, err) = cli(&["run", "--invoke", "add(1)", p]);
    assert_ne!(code, 0);
    assert!(err.contains("invalid arguments in `add(1)`"), "{err}");
    let (code, _, err) = cli(&["run", "--invoke", "nope()", p]);
    assert_ne!(code, 0);
    assert!(err.contains("no exported function `nope`"), "{err}");
}

#[test]
fn run_exit_with_code_sets_the_status() {
    let dir = std::env::temp_dir().join(format!("wippy-cli-exit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("exit.wat");
    std::fs::write(
        &path,
        r#"(component
  (import "wasi:cli/exit@0.2.6" (instance $exit (export "exit-with-code" (func (param "status-code" u8)))))
  (alias export $exit "exit-with-code" (func $ewc))
  (core func $ewc' (canon lower (func $ewc)))
  (core module $M
    (import "" "exit" (func $exit (param i32)))
    (func (export "run") (result i32) (call $exit (i32.const 42)) (i32.const 0)))
  (core instance $m (instantiate $M (with "" (instance (export "exit" (func $ewc'))))))
  (func $run (result (result)) (canon lift (core func $m "run")))
  (instance $i (export "run" (func $run)))
  (export "wasi:cli/run@0.2.6" (instance $i)))"#,
    )
    .unwrap();
    let (code, _, err) = cli(&["run", path.to_str().unwrap()]);
    assert_eq!(code, 42, "{err}");
}

#[test]
fn call_and_check_a_registry() {
    let (code, out, err) = cli(&[
        "call",
        "-c",
        "examples/registry",
        "demo:relay",
        "\"demo:hello\"",
        "\"cli\"",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "{\"ok\":\"hello, cli\"}\n");
    let (code, out, _) = cli(&["check", "-c", "examples/registry"]);
    assert_eq!((code, out.as_str()), (0, "ok: no problems found\n"));
    let dir = std::env::temp_dir().join(format!("wippy-cli-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("_index.yaml"),
        "namespace: x\nentries:\n  - name: a\n    kind: function.wat\n    source: \"(component)\"\n    method: m\n  - name: b\n    kind: env.variable\n    storage: x:none\n",
    )
    .unwrap();
    let (code, out, _) = cli(&["check", "-c", dir.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(
        out.contains("entry `x:a`: field `method`") && out.contains("entry `x:b`: field `storage`"),
        "{out}"
    );
    assert!(out.ends_with("2 problem(s)\n"), "{out}");
    let (code, _, err) = cli(&["call", "-c", "examples/registry", "demo:add", "not json"]);
    assert_ne!(code, 0);
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn run_ip_name_lookup_is_denied_unless_allowed() {
    let lookup = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/lookup.wat");
    let count = |flags: &[&str], name: &str| -> String {
        let call = format!("count({name:?})");
        let mut args = vec!["run"];
        args.extend_from_slice(flags);
        args.extend_from_slice(&["--invoke", &call, lookup]);
        let (code, out, err) = cli(&args);
        assert_eq!(code, 0, "{args:?}: {err}");
        out.trim().to_string()
    };
    // Results are a count of addresses, or -(1 + error-code).
    assert_eq!(count(&[], "localhost"), "-2", "access-denied without a grant");
    for flag in ["--allow-ip-name-lookup", "--inherit-network"] {
        assert_eq!(count(&[flag], "127.0.0.1"), "1");
        assert_eq!(count(&[flag], "::1"), "1");
        assert!(count(&[flag], "localhost").parse::<i32>().unwrap() > 0);
        assert_eq!(count(&[flag], ""), "-4", "invalid-argument");
        assert_eq!(count(&[flag], "bad name!"), "-4", "invalid-argument");
        // name-unresolvable, or temporary-resolver-failure on a host without DNS.
        let missing = count(&[flag], "no-such-host.invalid");
        assert!(missing == "-19" || missing == "-20", "{missing}");
    }
    let (code, _, err) = cli(&["run", "--net-allow", "bogus", "--invoke", "count(\"x\")", lookup]);
    assert_ne!(code, 0);
    assert!(err.contains("`bogus` is not an IP address or CIDR range"), "{err}");
}

#[test]
fn timezone_is_utc() {
    let dir = std::env::temp_dir().join(format!("wippy-cli-tz-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("tz.wat");
    std::fs::write(
        &path,
        r#"(component
  (import "wasi:clocks/wall-clock@0.2.0" (instance $wc
    (type $dt (record (field "seconds" u64) (field "nanoseconds" u32)))
    (export "datetime" (type (eq $dt)))))
  (alias export $wc "datetime" (type $datetime))
  (import "wasi:clocks/timezone@0.2.0" (instance $tz
    (alias outer 1 $datetime (type $d))
    (export "datetime" (type $dd (eq $d)))
    (type $disp (record (field "utc-offset" s32) (field "name" string) (field "in-daylight-saving-time" bool)))
    (export "timezone-display" (type $de (eq $disp)))
    (export "display" (func (param "when" $dd) (result $de)))
    (export "utc-offset" (func (param "when" $dd) (result s32)))))
  (alias export $tz "display" (func $display))
  (alias export $tz "utc-offset" (func $offset))
  (core module $Libc
    (memory (export "mem") 1)
    (global $next (mut i32) (i32.const 1024))
    (func (export "realloc") (param i32 i32 i32 i32) (result i32)
      (global.set $next (i32.add (global.get $next) (local.get 3)))
      (i32.sub (global.get $next) (local.get 3))))
  (core instance $libc (instantiate $Libc))
  (core func $display' (canon lower (func $display) (memory (core memory $libc "mem")) (realloc (core func $libc "realloc"))))
  (core func $offset' (canon lower (func $offset)))
  (core module $M
    (import "h" "display" (func $display (param i64 i32 i32)))
    (import "h" "offset" (func $offset (param i64 i32) (result i32)))
    ;; display's record lands at 32; its string (pointer, length) at 36.
    (func (export "zone") (result i32) (call $display (i64.const 1700000000) (i32.const 0) (i32.const 32)) (i32.const 36))
    (func (export "offset") (result i32) (call $offset (i64.const 1700000000) (i32.const 0))))
  (core instance $m (instantiate $M (with "h" (instance (export "display" (func $display')) (export "offset" (func $offset'))))))
  (func (export "zone") (result string) (canon lift (core func $m "zone") (memory (core memory $libc "mem"))))
  (func (export "offset") (result s32) (canon lift (core func $m "offset"))))"#,
    )
    .unwrap();
    let p = path.to_str().unwrap();
    assert_eq!(
        cli(&["run", "--invoke", "zone()", p]),
        (0, "\"UTC\"\n".into(), String::new())
    );
    assert_eq!(
        cli(&["run", "--invoke", "offset()", p]),
        (0, "0\n".into(), String::new())
    );
}
