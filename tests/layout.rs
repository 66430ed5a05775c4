//! The source tree's layering rules, checked on the sources themselves:
//! the engine's layers only look down, `wasi:io` names no other WASI group,
//! and nothing outside the command line uses it.

use std::path::{Path, PathBuf};

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            sources(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The file's code (outside tests), without comments.
fn code(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    let text = text.split("#[cfg(test)]").next().unwrap_or_default();
    text.lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every `crate::NAME` the code names.
fn crate_refs(code: &str) -> Vec<String> {
    code.match_indices("crate::")
        .filter(|(i, _)| !code[..*i].ends_with('$'))
        .map(|(i, m)| {
            code[i + m.len()..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect()
        })
        .collect()
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn files() -> Vec<(String, String)> {
    let mut paths = Vec::new();
    sources(&src(), &mut paths);
    paths
        .iter()
        .map(|p| (p.strip_prefix(src()).unwrap().display().to_string(), code(p)))
        .collect()
}

#[test]
fn engine_layers_only_look_down() {
    let layers = ["values", "canon", "dispatch", "component", "runtime"];
    let rank = |name: &str| layers.iter().position(|l| *l == name);
    let mut wrong = Vec::new();
    for (file, code) in files() {
        let Some(mine) = rank(file.split('/').next().unwrap()) else {
            continue;
        };
        for r in crate_refs(&code) {
            if rank(&r).is_some_and(|theirs| theirs > mine) {
                wrong.push(format!("{file} uses crate::{r}"));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "a lower layer names a higher one:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn wasi_io_names_no_other_group() {
    let groups = ["cli", "clocks", "command", "filesystem", "http", "random", "sockets"];
    let mut wrong = Vec::new();
    let mut checked = 0;
    for (file, code) in files() {
        if !file.starts_with("wasi/io") {
            continue;
        }
        checked += 1;
        for g in groups {
            for pat in [format!("crate::wasi::{g}"), format!("wasi::{g}::")] {
                if code.contains(&pat) {
                    wrong.push(format!("{file} uses {pat}"));
                }
            }
        }
        if code.contains("super::super") {
            wrong.push(format!("{file} reaches above wasi::io"));
        }
    }
    assert!(checked >= 4, "only {checked} io files found");
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn only_the_command_line_uses_cli() {
    let mut wrong = Vec::new();
    for (file, code) in files() {
        if file.starts_with("cli/") || file == "main.rs" || file == "lib.rs" {
            continue;
        }
        if crate_refs(&code).iter().any(|r| r == "cli") {
            wrong.push(file);
        }
    }
    assert!(wrong.is_empty(), "library code uses crate::cli: {wrong:?}");
}
