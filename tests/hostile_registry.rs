//! A hostile or careless registry folder never hangs, exhausts or escapes
//! the host: link loops and links out of the folder are not followed,
//! entries cannot name files outside their folders or special files, files
//! are capped in size, deep YAML is refused before it is parsed, and
//! `check` reports references that would only fail at call time.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use wippy_wasm::registry::{LoadOptions, Registry};

fn scratch(name: &str) -> PathBuf {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let d = std::env::temp_dir().join(format!("wippy-hostile-{name}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(d.join("bin")).unwrap();
    d
}

/// A `function.wat` entry returning 7, which must keep working beside
/// whatever is broken.
const GOOD: &str = r#"
  - name: good
    kind: function.wat
    wit: "run: func() -> u32;"
    method: run
    source: |
      (module (func (export "run") (result i32) i32.const 7))
"#;

fn write(dir: &Path, entries: &str) {
    std::fs::write(
        dir.join("_index.yaml"),
        format!("version: \"1.0\"\nnamespace: app\nentries:{GOOD}{entries}"),
    )
    .unwrap();
}

fn problems(dir: &Path) -> String {
    Registry::check(dir).join("\n")
}

fn keep_going(dir: &Path) -> Registry {
    Registry::load_with(
        dir,
        LoadOptions {
            keep_going: true,
            ..LoadOptions::default()
        },
    )
    .unwrap()
}

#[test]
fn link_loops_and_links_out_of_the_folder_are_not_followed() {
    let dir = scratch("links");
    write(&dir, "");
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    std::os::unix::fs::symlink(".", dir.join("sub/a")).unwrap();
    std::os::unix::fs::symlink("..", dir.join("sub/up")).unwrap();
    let outside = scratch("outside");
    write(&outside, "");
    std::os::unix::fs::symlink(&outside, dir.join("out")).unwrap();
    let started = Instant::now();
    let report = problems(&dir);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    assert!(report.contains("sub/a: link loop"), "{report}");
    assert!(report.contains("sub/up: link loop"), "{report}");
    assert!(
        report.contains(&format!("{} leads outside", dir.join("out").display())),
        "{report}"
    );
    // The outside folder's entry was not loaded (it would clash with ours).
    assert!(!report.contains("already defined"), "{report}");
    let r = keep_going(&dir);
    assert_eq!(r.call_json("app:good", &[]).unwrap(), serde_json::json!(7));
}

#[test]
fn entries_cannot_name_files_outside_their_folders_or_special_files() {
    let dir = scratch("escape");
    std::fs::write(dir.join("bin/fifo-target"), b"x").unwrap();
    std::os::unix::fs::symlink("/dev/zero", dir.join("bin/zero.wasm")).unwrap();
    let fifo = dir.join("bin/fifo.wasm");
    assert!(std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    write(
        &dir,
        r#"
  - name: files
    kind: fs.directory
    directory: ./bin
  - name: up
    kind: function.wasm
    fs: app:files
    path: /../../etc/passwd
    hash: sha256:0000000000000000000000000000000000000000000000000000000000000000
    method: run
  - name: zero
    kind: function.wasm
    fs: app:files
    path: /zero.wasm
    hash: sha256:0000000000000000000000000000000000000000000000000000000000000000
    method: run
  - name: fifo
    kind: function.wasm
    fs: app:files
    path: /fifo.wasm
    hash: sha256:0000000000000000000000000000000000000000000000000000000000000000
    method: run
  - name: source
    kind: function.wat
    wit: "run: func() -> u32;"
    method: run
    source: file://../../../../etc/passwd
"#,
    );
    let started = Instant::now();
    let report = problems(&dir);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    for (entry, why) in [
        ("app:up", "is outside"),
        ("app:zero", "leads outside"),
        ("app:fifo", "is not a regular file"),
        ("app:source", "is outside"),
    ] {
        let line = report
            .lines()
            .find(|l| l.contains(&format!("`{entry}`")))
            .unwrap_or_else(|| panic!("no problem for {entry}: {report}"));
        assert!(line.contains(why), "{entry}: {line}");
    }
    let r = keep_going(&dir);
    assert_eq!(r.call_json("app:good", &[]).unwrap(), serde_json::json!(7));
}

#[test]
fn oversized_files_are_refused_without_reading_them() {
    let dir = scratch("big");
    // Sparse: 600 MiB long, no disk used.
    let big = std::fs::File::create(dir.join("bin/big.wasm")).unwrap();
    big.set_len(600 << 20).unwrap();
    write(
        &dir,
        r#"
  - name: files
    kind: fs.directory
    directory: ./bin
  - name: big
    kind: function.wasm
    fs: app:files
    path: /big.wasm
    hash: sha256:0000000000000000000000000000000000000000000000000000000000000000
    method: run
"#,
    );
    let report = problems(&dir);
    assert!(report.contains("over the limit of 536870912"), "{report}");
    // A definition file over its own cap is refused the same way.
    let defs = scratch("big-defs");
    let f = std::fs::File::create(defs.join("_index.yaml")).unwrap();
    f.set_len(20 << 20).unwrap();
    let report = problems(&defs);
    assert!(report.contains("over the limit of 16777216"), "{report}");
}

#[test]
fn deeply_nested_yaml_is_refused_before_parsing() {
    let dir = scratch("deep");
    let deep = 100_000;
    write(
        &dir,
        &format!(
            "\n  - name: deep\n    kind: env.variable\n    meta: {}{}\n",
            "[".repeat(deep),
            "]".repeat(deep)
        ),
    );
    let started = Instant::now();
    let report = problems(&dir);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "took {:?}",
        started.elapsed()
    );
    assert!(report.contains("nested more than 64 levels deep"), "{report}");
    // Block nesting too.
    let mut block = String::from("\n  - name: deep\n    kind: env.variable\n    meta:\n");
    for level in 0..200 {
        block.push_str(&format!("{}k{level}:\n", "  ".repeat(level + 3)));
    }
    write(&dir, &block);
    assert!(problems(&dir).contains("nested more than 64 levels deep"));
    // Brackets inside a block scalar (inline Lua) are text, not nesting.
    let lua = format!(
        "\n  - name: lua\n    kind: function.lua\n    method: run\n    source: |\n      local t = {}\n      function run() return 1 end\n",
        "{".repeat(100)
    );
    write(&dir, &lua);
    let report = problems(&dir);
    assert!(!report.contains("nested more than"), "{report}");
}

#[test]
fn check_reports_references_that_would_fail_at_call_time() {
    let dir = scratch("refs");
    write(
        &dir,
        r#"
  - name: no-mount
    kind: function.wat
    wit: "run: func() -> u32;"
    method: run
    source: |
      (module (func (export "run") (result i32) i32.const 1))
    wasi:
      mounts:
        - fs: app:missing-folder
          guest: /data
  - name: no-variable
    kind: function.wat
    wit: "run: func() -> u32;"
    method: run
    source: |
      (module (func (export "run") (result i32) i32.const 1))
    wasi:
      env:
        - id: app:missing-variable
          name: TOKEN
"#,
    );
    let report = problems(&dir);
    assert!(
        report.contains("`app:no-mount`") && report.contains("no entry `app:missing-folder`"),
        "{report}"
    );
    assert!(
        report.contains("`app:no-variable`") && report.contains("no entry `app:missing-variable`"),
        "{report}"
    );
}
