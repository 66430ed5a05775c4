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
//! - **Memories we provide** (`crate::memory`). Every memory the module
//!   defines becomes an import from [`MEMORY_MODULE`], so that the runtime
//!   makes it in address space of its own; and every `memory.size` and
//!   `memory.grow` becomes a `call_indirect` through a hidden table
//!   ([`MEMORY_OPS_EXPORT`]: slot `2m` is memory `m`'s size, `2m + 1` its
//!   grow) that the runtime fills after instantiation. A recycled memory can
//!   so be shorter to its guest than wasmi's real one: wasmi cannot shrink
//!   a memory. Memory indices do not move (the new imports come after the
//!   old ones, and every defined memory is moved), nor do function or
//!   table indices (the table comes last).

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
/// The import module of the memories the runtime provides; each is named
/// `memory-<index>`.
pub(crate) const MEMORY_MODULE: &str = "\u{0}wippy";
/// The table of memory size and grow functions the runtime fills.
pub(crate) const MEMORY_OPS_EXPORT: &str = "\u{0}wippy-memory-ops";

/// What the first pass learns of a module.
#[derive(Default)]
struct Shape {
    start: Option<u32>,
    has_exports: bool,
    imported_memories: u32,
    imported_globals: u32,
    imported_funcs: u32,
    imported_tables: u32,
    /// The module has an import section, a table section.
    has_imports: bool,
    has_tables: bool,
    /// Each memory's index type (`true`: 64-bit), imported ones first.
    memory64: Vec<bool>,
    /// The memories the module defines, if they can all become imports
    /// (64 KiB pages, not shared).
    movable: Vec<wasmparser::MemoryType>,
    defined_memories: u32,
    defined_tables: u32,
    types: u32,
    /// The function bodies (in code-section order) where `memory.size` or
    /// `memory.grow` occurs.
    sizing_bodies: Vec<usize>,
    bodies: usize,
    /// Indices of the mutable globals the module defines.
    mutable_globals: Vec<u32>,
    defined_funcs: u32,
    /// An instruction changes a table or drops a segment.
    unresettable: bool,
}

impl Shape {
    /// `memory.size` or `memory.grow` occurs.
    fn memory_ops(&self) -> bool {
        !self.sizing_bodies.is_empty()
    }
}

fn shape(module: &[u8]) -> Result<Shape> {
    let mut s = Shape::default();
    for payload in Parser::new(0).parse_all(module) {
        match payload.map_err(|e| anyhow!("{e}"))? {
            Payload::StartSection { func, .. } => s.start = Some(func),
            Payload::ExportSection(_) => s.has_exports = true,
            Payload::ImportSection(reader) => {
                s.has_imports = true;
                for import in reader.into_imports() {
                    match import.map_err(|e| anyhow!("{e}"))?.ty {
                        TypeRef::Memory(m) => {
                            s.imported_memories += 1;
                            s.memory64.push(m.memory64);
                        }
                        TypeRef::Table(_) => s.imported_tables += 1,
                        TypeRef::Global(_) => s.imported_globals += 1,
                        TypeRef::Func(_) | TypeRef::FuncExact(_) => s.imported_funcs += 1,
                        _ => {}
                    }
                }
            }
            Payload::TypeSection(reader) => s.types = reader.count(),
            Payload::TableSection(reader) => {
                s.has_tables = true;
                s.defined_tables = reader.count();
            }
            Payload::MemorySection(reader) => {
                s.defined_memories = reader.count();
                for m in reader {
                    let m = m.map_err(|e| anyhow!("{e}"))?;
                    s.memory64.push(m.memory64);
                    s.movable.push(m);
                }
            }
            Payload::GlobalSection(reader) => {
                for (i, g) in reader.into_iter().enumerate() {
                    if g.map_err(|e| anyhow!("{e}"))?.ty.mutable {
                        s.mutable_globals.push(s.imported_globals + i as u32);
                    }
                }
            }
            Payload::FunctionSection(reader) => s.defined_funcs = reader.count(),
            Payload::CodeSectionEntry(body) => {
                let index = s.bodies;
                s.bodies += 1;
                let mut ops = body.get_operators_reader().map_err(|e| anyhow!("{e}"))?;
                while !ops.eof() {
                    match ops.read().map_err(|e| anyhow!("{e}"))? {
                        Operator::TableSet { .. }
                        | Operator::TableGrow { .. }
                        | Operator::TableFill { .. }
                        | Operator::TableCopy { .. }
                        | Operator::TableInit { .. }
                        | Operator::ElemDrop { .. }
                        | Operator::DataDrop { .. } => s.unresettable = true,
                        Operator::MemorySize { .. } | Operator::MemoryGrow { .. }
                            if s.sizing_bodies.last() != Some(&index) =>
                        {
                            s.sizing_bodies.push(index)
                        }
                        _ => {}
                    }
                }
            }
            // Nested modules are components' business, not ours.
            Payload::End(_) => break,
            _ => {}
        }
    }
    let plain_pages = |m: &wasmparser::MemoryType| !m.shared && m.page_size_log2.is_none_or(|p| p == 16);
    if !s.movable.iter().all(plain_pages) {
        s.movable.clear();
    }
    Ok(s)
}

/// `module` as we run it (see the module docs), or as it is if nothing
/// needs changing.
pub(crate) fn prepare(module: &[u8]) -> Result<Cow<'_, [u8]>> {
    let s = shape(module)?;
    let marker = s.unresettable && s.imported_funcs + s.defined_funcs > 0;
    let moved = !s.movable.is_empty();
    if s.start.is_none() && s.defined_memories == 0 && s.mutable_globals.is_empty() && !marker && !s.memory_ops() {
        return Ok(Cow::Borrowed(module));
    }
    let ops_table = s.imported_tables + s.defined_tables;
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
        if s.memory_ops() {
            exports.export(MEMORY_OPS_EXPORT, ExportKind::Table, ops_table);
        }
    };
    // Our imports: the moved memories, at the indices they had.
    let mut imports = wasm_encoder::ImportSection::new();
    for (i, m) in s.movable.iter().enumerate() {
        let name = format!("memory-{}", s.imported_memories as usize + i);
        let ty = wasm_encoder::MemoryType {
            minimum: m.initial,
            maximum: m.maximum,
            memory64: m.memory64,
            shared: false,
            page_size_log2: None,
        };
        imports.import(MEMORY_MODULE, &name, ty);
    }
    // The ops table, and the types of its functions (size and grow, for
    // 32- and 64-bit memories): appended, so no index moves.
    let mut tables = wasm_encoder::TableSection::new();
    let mut types = wasm_encoder::TypeSection::new();
    if s.memory_ops() {
        let slots = 2 * s.memory64.len() as u64;
        tables.table(wasm_encoder::TableType {
            element_type: wasm_encoder::RefType::FUNCREF,
            table64: false,
            minimum: slots,
            maximum: Some(slots),
            shared: false,
        });
        use wasm_encoder::ValType::{I32, I64};
        for t in [I32, I64] {
            types.ty().function([], [t]);
            types.ty().function([t], [t]);
        }
    }
    let ops = MemoryOps {
        first_type: s.types,
        table: ops_table,
        memory64: &s.memory64,
        bodies: &s.sizing_bodies,
    };

    let mut out = wasm_encoder::Module::new();
    let (mut exported, mut imported, mut tabled) = (false, !moved || s.has_imports, !s.memory_ops() || s.has_tables);
    for payload in Parser::new(0).parse_all(module) {
        let payload = payload.map_err(|e| anyhow!("{e}"))?;
        // Sections we add go where section order puts them: imports after
        // types, the table after functions.
        let rank = match (&payload, payload.as_section()) {
            (Payload::End(_), _) => Some(u8::MAX),
            (_, Some((id, _))) => section_rank(id),
            _ => None,
        };
        if !imported && rank.is_some_and(|r| r > section_rank(1).unwrap_or(0)) {
            out.section(&imports);
            imported = true;
        }
        if !tabled && rank.is_some_and(|r| r > section_rank(3).unwrap_or(0)) {
            out.section(&tables);
            tabled = true;
        }
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
            Payload::TypeSection(reader) if s.memory_ops() => {
                out.section(&appended(module, reader.range(), reader.count(), &types)?);
            }
            Payload::ImportSection(reader) if moved => {
                out.section(&appended(module, reader.range(), reader.count(), &imports)?);
            }
            Payload::TableSection(reader) if s.memory_ops() => {
                out.section(&appended(module, reader.range(), reader.count(), &tables)?);
            }
            Payload::MemorySection(_) if moved => {}
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
            Payload::CodeSectionStart { unchecked_range, .. } if s.memory_ops() => {
                let range = unchecked_range.start as usize..unchecked_range.end as usize;
                let data = module
                    .get(range.clone())
                    .ok_or_else(|| anyhow!("code section out of bounds"))?;
                let reader =
                    wasmparser::CodeSectionReader::new(wasmparser::BinaryReader::new(data, range.start as u64))
                        .map_err(|e| anyhow!("{e}"))?;
                out.section(&ops.code(reader)?);
            }
            Payload::CodeSectionEntry(_) => {}
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

/// Where a known section goes in a module (custom sections go anywhere).
fn section_rank(id: u8) -> Option<u8> {
    // Type, import, function, table, memory, tag, global, export, start,
    // element, data count, code, data.
    [1, 2, 3, 4, 5, 13, 6, 7, 8, 9, 12, 10, 11]
        .iter()
        .position(|&i| i == id)
        .map(|p| p as u8 + 1)
}

/// A section of `module` (its contents at `range`, `count` entries) with the
/// entries of `extra` (an encoded section of the same kind) after its own.
fn appended(
    module: &[u8],
    range: std::ops::Range<u64>,
    count: u32,
    extra: &impl wasm_encoder::Section,
) -> Result<Owned> {
    let entries = |data: &[u8]| -> Result<(u32, Vec<u8>)> {
        let mut r = wasmparser::BinaryReader::new(data, 0);
        let n = r.read_var_u32().map_err(|e| anyhow!("{e}"))?;
        Ok((n, data[r.original_position() as usize..].to_vec()))
    };
    let mut encoded = Vec::new();
    wasm_encoder::Encode::encode(extra, &mut encoded);
    // `encode` writes the section's size, then its contents.
    let mut r = wasmparser::BinaryReader::new(&encoded, 0);
    r.read_var_u32().map_err(|e| anyhow!("{e}"))?;
    let (more, tail) = entries(&encoded[r.original_position() as usize..])?;
    let (_, own) = entries(&module[range.start as usize..range.end as usize])?;
    let mut data = Vec::new();
    wasm_encoder::Encode::encode(&(count + more), &mut data);
    data.extend(own);
    data.extend(tail);
    Ok(Owned { id: extra.id(), data })
}

/// A section's id and contents, made here.
struct Owned {
    id: u8,
    data: Vec<u8>,
}

impl wasm_encoder::Encode for Owned {
    fn encode(&self, sink: &mut Vec<u8>) {
        self.data.encode(sink);
    }
}

impl wasm_encoder::Section for Owned {
    fn id(&self) -> u8 {
        self.id
    }
}

/// How `memory.size` and `memory.grow` are rewritten: into calls through
/// the ops table.
struct MemoryOps<'a> {
    first_type: u32,
    table: u32,
    memory64: &'a [bool],
    /// The bodies to re-encode ([`Shape`]'s `sizing_bodies`).
    bodies: &'a [usize],
}

impl MemoryOps<'_> {
    /// The code section with every function that sizes or grows a memory
    /// re-encoded, the others copied as they are.
    fn code(&self, reader: wasmparser::CodeSectionReader<'_>) -> Result<wasm_encoder::CodeSection> {
        use wasm_encoder::reencode::{Reencode, RoundtripReencoder};
        use wasm_encoder::Instruction as I;
        let mut code = wasm_encoder::CodeSection::new();
        let mut sizing = self.bodies.iter().peekable();
        for (index, body) in reader.into_iter().enumerate() {
            let body = body.map_err(|e| anyhow!("{e}"))?;
            if sizing.next_if_eq(&&index).is_none() {
                code.raw(body.as_bytes());
                continue;
            }
            let mut re = RoundtripReencoder;
            let mut f = re.new_function_with_parsed_locals(&body).map_err(|e| anyhow!("{e}"))?;
            let mut ops = body.get_operators_reader().map_err(|e| anyhow!("{e}"))?;
            while !ops.eof() {
                let (mem, grow) = match ops.read().map_err(|e| anyhow!("{e}"))? {
                    Operator::MemorySize { mem } => (mem, 0),
                    Operator::MemoryGrow { mem } => (mem, 1),
                    op => {
                        f.instruction(&re.instruction(op).map_err(|e| anyhow!("{e}"))?);
                        continue;
                    }
                };
                let wide = self.memory64.get(mem as usize).copied().unwrap_or(false);
                f.instruction(&I::I32Const((2 * mem + grow) as i32));
                f.instruction(&I::CallIndirect {
                    type_index: self.first_type + 2 * u32::from(wide) + grow,
                    table_index: self.table,
                });
            }
            code.function(&f);
        }
        Ok(code)
    }
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
