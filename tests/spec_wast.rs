//! The Component Model reference scripts (WebAssembly/component-model,
//! `test/`, outside `async/` and `nyi.txt`), run when a checkout is given:
//!
//! ```sh
//! WIPPY_CM_TESTSUITE=/path/to/component-model cargo test --test spec_wast -- --nocapture
//! ```
//!
//! Skipped directives (WASI 0.3 async built-ins, core proposals wasmi lacks)
//! are listed, never counted as passed. The only failures allowed are the
//! known disagreements between the scripts and wasmparser listed below.

use std::path::{Path, PathBuf};

/// Script positions where the pinned wasmparser disagrees with the scripts.
const KNOWN: &[(&str, &str)] = &[(
    "validation/kebab.wast:4",
    "wasmparser 0.263 still treats `a1` and `a-1` as conflicting names",
)];

fn scripts(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir).unwrap().flatten().map(|e| e.path()).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            if p.file_name().is_some_and(|n| n != "async") {
                scripts(&p, out);
            }
        } else if p.extension().is_some_and(|e| e == "wast") {
            out.push(p);
        }
    }
}

#[test]
fn component_model_reference_scripts() {
    let Some(root) = std::env::var_os("WIPPY_CM_TESTSUITE") else {
        eprintln!("skipped: set WIPPY_CM_TESTSUITE to a WebAssembly/component-model checkout");
        return;
    };
    let test_dir = PathBuf::from(root).join("test");
    let nyi: Vec<String> = std::fs::read_to_string(test_dir.join("nyi.txt"))
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| l.trim_start_matches("./").to_string())
        .collect();
    let mut files = Vec::new();
    scripts(&test_dir, &mut files);
    let mut total = wippy_wasm::cli::wast::Summary::default();
    let mut unexpected = Vec::new();
    for file in files {
        let rel = file.strip_prefix(&test_dir).unwrap().display().to_string();
        if nyi.contains(&rel) {
            eprintln!("nyi: {rel}");
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        let mut lines = Vec::new();
        let sum = wippy_wasm::cli::wast::run_script(&rel, &text, &mut |l| lines.push(l)).unwrap();
        eprintln!(
            "{rel}: {} passed, {} failed, {} skipped",
            sum.passed, sum.failed, sum.skipped
        );
        for l in lines.iter().filter(|l| l.starts_with("FAIL")) {
            let known = KNOWN.iter().any(|(at, _)| l.starts_with(&format!("FAIL {at}:")));
            if !known {
                unexpected.push(l.clone());
            }
        }
        total += sum;
    }
    eprintln!(
        "{} passed, {} failed, {} skipped",
        total.passed, total.failed, total.skipped
    );
    assert!(total.passed > 1000, "the suite ran");
    assert!(unexpected.is_empty(), "unexpected failures:\n{}", unexpected.join("\n"));
}
