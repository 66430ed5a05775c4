//! wasmtime's Component Model scripts (`tests/misc_testsuite/component-model`
//! and `component-model-threading`), run against the same spectest host
//! wasmtime links, when a checkout is given:
//!
//! ```sh
//! WIPPY_WASMTIME_TESTSUITE=/path/to/wasmtime cargo test --test wasmtime_wast -- --nocapture
//! ```
//!
//! Skipped directives (WASI 0.3 async, GC, exceptions, 64-bit memories)
//! are listed, never counted as passed. The only failures allowed are the
//! places, listed below, where wasmtime and this runtime knowingly differ.

use std::path::{Path, PathBuf};

/// Script positions that test wasmtime's own restrictions, which this
/// runtime does not share: it supports more.
const KNOWN: &[(&str, &str)] = &[
    (
        "restrictions.wast:1",
        "root-level component imports link here; wasmtime refuses them",
    ),
    ("restrictions.wast:5", "a root component may export a component here"),
    ("restrictions.wast:9", "re-exporting an imported function works here"),
    ("restrictions.wast:16", "root-level component imports link here"),
    ("simple.wast:24", "root-level component imports link here"),
    ("simple.wast:30", "a root component may export a component here"),
    ("import.wast:1", "re-exporting an imported function works here"),
    (
        "implements-disabled.wast:3",
        "`implements` is always on; the runner does not switch features off",
    ),
];

/// Scripts the pinned `wast` parser no longer reads.
const UNPARSED: &[(&str, &str)] = &[
    (
        "async/stackful.wast",
        "uses `cancellable`, removed by component-model#716",
    ),
    (
        "async/task-deletion.wast",
        "uses `cancellable`, removed by component-model#716",
    ),
    (
        "stackful-cancellation.wast",
        "uses `cancellable`, removed by component-model#716",
    ),
    (
        "yield-cancellable.wast",
        "uses `cancellable`, removed by component-model#716",
    ),
];

fn scripts(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let mut entries: Vec<_> = entries.flatten().map(|e| e.path()).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            scripts(&p, out);
        } else if p.extension().is_some_and(|e| e == "wast") {
            out.push(p);
        }
    }
}

#[test]
fn wasmtime_component_model_scripts() {
    let Some(root) = std::env::var_os("WIPPY_WASMTIME_TESTSUITE") else {
        eprintln!("skipped: set WIPPY_WASMTIME_TESTSUITE to a bytecodealliance/wasmtime checkout");
        return;
    };
    let suite = PathBuf::from(root).join("tests/misc_testsuite");
    let mut files = Vec::new();
    for dir in ["component-model", "component-model-threading"] {
        scripts(&suite.join(dir), &mut files);
    }
    let mut total = wippy_wasm::cli::wast::Summary::default();
    let mut unexpected = Vec::new();
    for file in files {
        let rel = file.strip_prefix(&suite).unwrap().display().to_string();
        let short = rel.split_once('/').map_or(rel.as_str(), |(_, r)| r).to_string();
        let text = std::fs::read_to_string(&file).unwrap();
        let mut lines = Vec::new();
        let sum = match wippy_wasm::cli::wast::run_script(&short, &text, &mut |l| lines.push(l)) {
            Ok(sum) => sum,
            Err(e) if UNPARSED.iter().any(|(f, _)| short.ends_with(f)) => {
                eprintln!("{rel}: not read by this wast parser: {e:#}");
                continue;
            }
            Err(e) => panic!("{rel}: {e:#}"),
        };
        eprintln!(
            "{rel}: {} passed, {} failed, {} skipped",
            sum.passed, sum.failed, sum.skipped
        );
        for l in lines.iter().filter(|l| l.starts_with("FAIL")) {
            let known = KNOWN.iter().any(|(at, _)| l.starts_with(&format!("FAIL {at}:")));
            if known {
                eprintln!("  known: {l}");
            } else {
                unexpected.push(l.clone());
            }
        }
        total += sum;
    }
    eprintln!(
        "{} passed, {} failed, {} skipped",
        total.passed, total.failed, total.skipped
    );
    assert!(total.passed > 200, "the suite ran");
    assert!(unexpected.is_empty(), "unexpected failures:\n{}", unexpected.join("\n"));
}
