//! Core start functions, run by us rather than by wasmi. wasmi runs a
//! module's start function inside `Instance::new`, where it can be neither
//! time-sliced nor stopped at a deadline. So a module with a start section
//! is rewritten at load: the section is dropped and the function exported
//! as [`START_EXPORT`]; instantiation calls that export through the
//! dispatcher like any guest code.

use anyhow::{anyhow, Result};
use std::borrow::Cow;
use wasmparser::{Parser, Payload};

/// The export a rewritten module's start function gets.
pub(crate) const START_EXPORT: &str = "\u{0}wippy-start";

/// `module` with its start function exported instead of started, or as it
/// is if it has none.
pub(crate) fn export_start(module: &[u8]) -> Result<Cow<'_, [u8]>> {
    let mut start = None;
    let mut has_exports = false;
    for payload in Parser::new(0).parse_all(module) {
        match payload.map_err(|e| anyhow!("{e}"))? {
            Payload::StartSection { func, .. } => start = Some(func),
            Payload::ExportSection(_) => has_exports = true,
            // Nested modules are components' business, not ours.
            Payload::End(_) => break,
            _ => {}
        }
    }
    let Some(start) = start else {
        return Ok(Cow::Borrowed(module));
    };
    let mut out = wasm_encoder::Module::new();
    let export_start = |exports: &mut wasm_encoder::ExportSection| {
        exports.export(START_EXPORT, wasm_encoder::ExportKind::Func, start);
    };
    for payload in Parser::new(0).parse_all(module) {
        let payload = payload.map_err(|e| anyhow!("{e}"))?;
        match &payload {
            Payload::ExportSection(reader) => {
                let mut exports = wasm_encoder::ExportSection::new();
                for e in reader.clone() {
                    let e = e.map_err(|e| anyhow!("{e}"))?;
                    exports.export(e.name, export_kind(e.kind), e.index);
                }
                export_start(&mut exports);
                out.section(&exports);
            }
            Payload::StartSection { .. } => {
                // In section order the start section follows the exports:
                // a module without exports gets them here.
                if !has_exports {
                    let mut exports = wasm_encoder::ExportSection::new();
                    export_start(&mut exports);
                    out.section(&exports);
                }
            }
            Payload::End(_) => break,
            other => {
                if let Some((id, range)) = other.as_section() {
                    let data = &module[range.start as usize..range.end as usize];
                    out.section(&wasm_encoder::RawSection { id, data });
                }
            }
        }
    }
    Ok(Cow::Owned(out.finish()))
}

fn export_kind(k: wasmparser::ExternalKind) -> wasm_encoder::ExportKind {
    use wasm_encoder::ExportKind as E;
    use wasmparser::ExternalKind as K;
    match k {
        K::Func | K::FuncExact => E::Func,
        K::Table => E::Table,
        K::Memory => E::Memory,
        K::Global => E::Global,
        K::Tag => E::Tag,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exports(bytes: &[u8]) -> Vec<String> {
        let mut names = Vec::new();
        for p in Parser::new(0).parse_all(bytes) {
            if let Payload::ExportSection(r) = p.unwrap() {
                names.extend(r.into_iter().map(|e| e.unwrap().name.to_string()));
            }
        }
        names
    }

    #[test]
    fn a_start_section_becomes_an_export() {
        for wat in [
            r#"(module (func $s) (start $s))"#,
            r#"(module (memory 1) (func $s) (func (export "f")) (start $s) (data (i32.const 0) "x") (@custom "c" "y"))"#,
        ] {
            let bytes = wat::parse_str(wat).unwrap();
            let out = export_start(&bytes).unwrap();
            wasmparser::Validator::new().validate_all(&out).unwrap();
            assert!(exports(&out).contains(&START_EXPORT.to_string()), "{wat}");
            assert!(!Parser::new(0)
                .parse_all(&out)
                .any(|p| matches!(p, Ok(Payload::StartSection { .. }))));
        }
        let plain = wat::parse_str(r#"(module (func (export "f")))"#).unwrap();
        assert!(matches!(export_start(&plain).unwrap(), Cow::Borrowed(_)));
    }
}
