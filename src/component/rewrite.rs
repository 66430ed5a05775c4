//! Core modules as we run them, rewritten at load:
//! - **Start functions run by us**, not by wasmi. wasmi runs a module's
//!   start function inside `Instance::new`, where it can be neither
//!   time-sliced nor stopped at a deadline. So the start section is dropped
//!   and the function exported as [`START_EXPORT`]; instantiation calls
//!   that export through the dispatcher like any guest code.
//! - **State a store can be reset to.** Every memory the module defines and
//!   every mutable global are exported under hidden names
//!   ([`MEMORY_EXPORT`], [`GLOBAL_EXPORT`]), so that a store can snapshot
//!   them after instantiation and restore them later
//!   ([`crate::runtime::snapshot`]). A module that changes tables or drops
//!   segments (state no export reaches) is marked [`UNRESETTABLE_EXPORT`].

use anyhow::{anyhow, Result};
use std::borrow::Cow;
use wasmparser::{Operator, Parser, Payload, TypeRef};

/// The export a rewritten module's start function gets.
pub(crate) const START_EXPORT: &str = "\u{0}wippy-start";
/// Prefixes of the exports of defined memories and mutable globals.
pub(crate) const MEMORY_EXPORT: &str = "\u{0}wippy-memory-";
pub(crate) const GLOBAL_EXPORT: &str = "\u{0}wippy-global-";
/// Present (as function 0) when the module's state cannot be reset.
pub(crate) const UNRESETTABLE_EXPORT: &str = "\u{0}wippy-unresettable";

/// What the first pass learns of a module.
#[derive(Default)]
struct Shape {
    start: Option<u32>,
    has_exports: bool,
    imported_memories: u32,
    imported_globals: u32,
    imported_funcs: u32,
    defined_memories: u32,
    /// Indices of the mutable globals the module defines.
    mutable_globals: Vec<u32>,
    defined_funcs: u32,
    /// An instruction changes a table or drops a segment.
    unresettable: bool,
}

fn shape(module: &[u8]) -> Result<Shape> {
    let mut s = Shape::default();
    for payload in Parser::new(0).parse_all(module) {
        match payload.map_err(|e| anyhow!("{e}"))? {
            Payload::StartSection { func, .. } => s.start = Some(func),
            Payload::ExportSection(_) => s.has_exports = true,
            Payload::ImportSection(reader) => {
                for import in reader.into_imports() {
                    match import.map_err(|e| anyhow!("{e}"))?.ty {
                        TypeRef::Memory(_) => s.imported_memories += 1,
                        TypeRef::Global(_) => s.imported_globals += 1,
                        TypeRef::Func(_) | TypeRef::FuncExact(_) => s.imported_funcs += 1,
                        _ => {}
                    }
                }
            }
            Payload::MemorySection(reader) => s.defined_memories = reader.count(),
            Payload::GlobalSection(reader) => {
                for (i, g) in reader.into_iter().enumerate() {
                    if g.map_err(|e| anyhow!("{e}"))?.ty.mutable {
                        s.mutable_globals.push(s.imported_globals + i as u32);
                    }
                }
            }
            Payload::FunctionSection(reader) => s.defined_funcs = reader.count(),
            Payload::CodeSectionEntry(body) if !s.unresettable => {
                let mut ops = body.get_operators_reader().map_err(|e| anyhow!("{e}"))?;
                while !ops.eof() {
                    if matches!(
                        ops.read().map_err(|e| anyhow!("{e}"))?,
                        Operator::TableSet { .. }
                            | Operator::TableGrow { .. }
                            | Operator::TableFill { .. }
                            | Operator::TableCopy { .. }
                            | Operator::TableInit { .. }
                            | Operator::ElemDrop { .. }
                            | Operator::DataDrop { .. }
                    ) {
                        s.unresettable = true;
                        break;
                    }
                }
            }
            // Nested modules are components' business, not ours.
            Payload::End(_) => break,
            _ => {}
        }
    }
    Ok(s)
}

/// `module` as we run it (see the module docs), or as it is if nothing
/// needs changing.
pub(crate) fn prepare(module: &[u8]) -> Result<Cow<'_, [u8]>> {
    let s = shape(module)?;
    let marker = s.unresettable && s.imported_funcs + s.defined_funcs > 0;
    if s.start.is_none() && s.defined_memories == 0 && s.mutable_globals.is_empty() && !marker {
        return Ok(Cow::Borrowed(module));
    }
    let hidden = |exports: &mut wasm_encoder::ExportSection| {
        use wasm_encoder::ExportKind;
        if let Some(start) = s.start {
            exports.export(START_EXPORT, ExportKind::Func, start);
        }
        for m in 0..s.defined_memories {
            let index = s.imported_memories + m;
            exports.export(&format!("{MEMORY_EXPORT}{index}"), ExportKind::Memory, index);
        }
        for &g in &s.mutable_globals {
            exports.export(&format!("{GLOBAL_EXPORT}{g}"), ExportKind::Global, g);
        }
        if marker {
            exports.export(UNRESETTABLE_EXPORT, ExportKind::Func, 0);
        }
    };
    let mut out = wasm_encoder::Module::new();
    let mut exported = false;
    for payload in Parser::new(0).parse_all(module) {
        let payload = payload.map_err(|e| anyhow!("{e}"))?;
        // The export section's place in section order: after globals,
        // before start, elements, data count and code.
        let after_exports = matches!(
            payload,
            Payload::StartSection { .. }
                | Payload::ElementSection(_)
                | Payload::DataCountSection { .. }
                | Payload::CodeSectionStart { .. }
                | Payload::DataSection(_)
                | Payload::End(_)
        );
        if after_exports && !exported && !s.has_exports {
            let mut exports = wasm_encoder::ExportSection::new();
            hidden(&mut exports);
            out.section(&exports);
            exported = true;
        }
        match &payload {
            Payload::ExportSection(reader) => {
                let mut exports = wasm_encoder::ExportSection::new();
                for e in reader.clone() {
                    let e = e.map_err(|e| anyhow!("{e}"))?;
                    exports.export(e.name, export_kind(e.kind), e.index);
                }
                hidden(&mut exports);
                out.section(&exports);
                exported = true;
            }
            Payload::StartSection { .. } => {}
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
            let out = prepare(&bytes).unwrap();
            wasmparser::Validator::new().validate_all(&out).unwrap();
            assert!(exports(&out).contains(&START_EXPORT.to_string()), "{wat}");
            assert!(!Parser::new(0)
                .parse_all(&out)
                .any(|p| matches!(p, Ok(Payload::StartSection { .. }))));
        }
        let plain = wat::parse_str(r#"(module (func (export "f")))"#).unwrap();
        assert!(matches!(prepare(&plain).unwrap(), Cow::Borrowed(_)));
    }

    #[test]
    fn memories_and_mutable_globals_get_hidden_exports() {
        let wat = r#"(module (import "" "g" (global $i (mut i32))) (memory 1) (global (mut i64) (i64.const 0))
          (global i32 (i32.const 1)) (table 1 funcref) (func (export "f") (i32.const 0) (ref.null func) (table.set 0)))"#;
        let bytes = wat::parse_str(wat).unwrap();
        let out = prepare(&bytes).unwrap();
        wasmparser::Validator::new().validate_all(&out).unwrap();
        let names = exports(&out);
        for want in [
            &format!("{MEMORY_EXPORT}0"),
            &format!("{GLOBAL_EXPORT}1"),
            UNRESETTABLE_EXPORT,
        ] {
            assert!(names.iter().any(|n| n == want), "{want}: {names:?}");
        }
        assert!(
            !names.iter().any(|n| n == &format!("{GLOBAL_EXPORT}2")),
            "immutable: {names:?}"
        );
    }
}
