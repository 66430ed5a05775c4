//! Whether a host's core module fits the module type a component imports it
//! at. This is core module subtyping: the module may import less than the
//! type declares and export more; each declared export must be exported at a
//! subtype, and each of the module's imports must be declared at a subtype.
//! Tables and memories match by limits (a wider range accepts a narrower
//! one); functions and globals match exactly.

use anyhow::{bail, Result};
use std::fmt;
use wasmi::{ExternType, Module};
use wasmparser::component_types::ModuleType;
use wasmparser::types::{EntityType, Types};
use wasmparser::{CompositeInnerType, RefType, ValType};

/// A core item's type, in one form for both sides of the comparison.
#[derive(Clone, PartialEq)]
enum Shape {
    Func {
        params: Vec<String>,
        results: Vec<String>,
    },
    Table {
        elem: String,
        is64: bool,
        min: u64,
        max: Option<u64>,
    },
    Memory {
        is64: bool,
        min: u64,
        max: Option<u64>,
    },
    Global {
        ty: String,
        mutable: bool,
    },
    /// Tags and anything else wasmi cannot hold: never provided.
    Other(&'static str),
}

impl Shape {
    fn kind(&self) -> &'static str {
        match self {
            Shape::Func { .. } => "func",
            Shape::Table { .. } => "table",
            Shape::Memory { .. } => "memory",
            Shape::Global { .. } => "global",
            Shape::Other(k) => k,
        }
    }

    /// Whether an item of type `self` can stand where `want` is expected.
    fn fits(&self, want: &Shape) -> bool {
        let limits = |min: u64, max: Option<u64>, wmin: u64, wmax: Option<u64>| {
            min >= wmin
                && match (max, wmax) {
                    (_, None) => true,
                    (Some(m), Some(w)) => m <= w,
                    (None, Some(_)) => false,
                }
        };
        match (self, want) {
            (
                Shape::Table { elem, is64, min, max },
                Shape::Table {
                    elem: we,
                    is64: w64,
                    min: wmin,
                    max: wmax,
                },
            ) => elem == we && is64 == w64 && limits(*min, *max, *wmin, *wmax),
            (
                Shape::Memory { is64, min, max },
                Shape::Memory {
                    is64: w64,
                    min: wmin,
                    max: wmax,
                },
            ) => is64 == w64 && limits(*min, *max, *wmin, *wmax),
            (Shape::Other(_), _) => false,
            (a, b) => a == b,
        }
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Shape::Func { params, results } => {
                f.write_str("(func")?;
                if !params.is_empty() {
                    write!(f, " (param {})", params.join(" "))?;
                }
                if !results.is_empty() {
                    write!(f, " (result {})", results.join(" "))?;
                }
                f.write_str(")")
            }
            Shape::Table { elem, min, max, .. } => match max {
                Some(m) => write!(f, "(table {min} {m} {elem})"),
                None => write!(f, "(table {min} {elem})"),
            },
            Shape::Memory { min, max, .. } => match max {
                Some(m) => write!(f, "(memory {min} {m})"),
                None => write!(f, "(memory {min})"),
            },
            Shape::Global { ty, mutable: true } => write!(f, "(global (mut {ty}))"),
            Shape::Global { ty, mutable: false } => write!(f, "(global {ty})"),
            Shape::Other(k) => f.write_str(k),
        }
    }
}

fn parser_val(t: &ValType) -> String {
    match t {
        ValType::Ref(r) if *r == RefType::FUNCREF => "funcref".into(),
        ValType::Ref(r) if *r == RefType::EXTERNREF => "externref".into(),
        t => t.to_string(),
    }
}

fn wasmi_val(t: &wasmi::ValType) -> String {
    use wasmi::ValType as V;
    match t {
        V::I32 => "i32",
        V::I64 => "i64",
        V::F32 => "f32",
        V::F64 => "f64",
        V::V128 => "v128",
        V::FuncRef => "funcref",
        V::ExternRef => "externref",
    }
    .into()
}

fn wasmi_ref(t: wasmi::RefType) -> String {
    match t {
        wasmi::RefType::Func => "funcref",
        wasmi::RefType::Extern => "externref",
    }
    .into()
}

/// The declared side: a validator entity type.
fn declared(types: &Types, e: &EntityType) -> Shape {
    match e {
        EntityType::Func(id) => match &types[*id].composite_type.inner {
            CompositeInnerType::Func(ft) => Shape::Func {
                params: ft.params().iter().map(parser_val).collect(),
                results: ft.results().iter().map(parser_val).collect(),
            },
            _ => Shape::Other("func"),
        },
        EntityType::Table(t) => Shape::Table {
            elem: parser_val(&ValType::Ref(t.element_type)),
            is64: t.table64,
            min: t.initial,
            max: t.maximum,
        },
        EntityType::Memory(m) => Shape::Memory {
            is64: m.memory64,
            min: m.initial,
            max: m.maximum,
        },
        EntityType::Global(g) => Shape::Global {
            ty: parser_val(&g.content_type),
            mutable: g.mutable,
        },
        _ => Shape::Other("tag"),
    }
}

/// The provided side: a compiled module's import or export.
fn provided(e: &ExternType) -> Shape {
    match e {
        ExternType::Func(f) => Shape::Func {
            params: f.params().iter().map(wasmi_val).collect(),
            results: f.results().iter().map(wasmi_val).collect(),
        },
        ExternType::Table(t) => Shape::Table {
            elem: wasmi_ref(t.element()),
            is64: t.is_64(),
            min: t.minimum(),
            max: t.maximum(),
        },
        ExternType::Memory(m) => Shape::Memory {
            is64: m.is_64(),
            min: m.minimum(),
            max: m.maximum(),
        },
        ExternType::Global(g) => Shape::Global {
            ty: wasmi_val(&g.content()),
            mutable: g.mutability().is_mut(),
        },
    }
}

fn mismatch(have: &Shape, want: &Shape) -> String {
    if have.kind() != want.kind() {
        format!("expected {} found {}", want.kind(), have.kind())
    } else {
        format!("expected type `{want}`, found type `{have}`")
    }
}

/// Checks `module` against the declared `want`.
///
/// # Errors
/// Names the first export the module lacks or has at the wrong type, or the
/// first of its imports the type does not declare at a subtype.
pub(crate) fn check_module(types: &Types, want: &ModuleType, module: &Module) -> Result<()> {
    for (name, ty) in want.exports.iter() {
        let want = declared(types, ty);
        let Some(have) = module.get_export(name) else {
            bail!("module export `{name}` not defined");
        };
        let have = provided(&have);
        if !have.fits(&want) {
            bail!("module export `{name}` has the wrong type: {}", mismatch(&have, &want));
        }
    }
    // Memories we provide (`rewrite`) are the module's own definitions.
    for import in module.imports().filter(|i| !super::memories::is_provided(i)) {
        let (m, n) = (import.module(), import.name());
        let Some(decl) = want.imports.get(&(m.to_string(), n.to_string())) else {
            bail!("module import `{m}::{n}` not defined");
        };
        let (have, decl) = (provided(import.ty()), declared(types, decl));
        // Imports are contravariant: what the component will pass (declared)
        // must fit what the module asks for.
        if !decl.fits(&have) {
            bail!(
                "module import `{m}::{n}` has the wrong type: {}",
                mismatch(&decl, &have)
            );
        }
    }
    Ok(())
}
