//! `wippy-wasm inspect`: a component's imports and exports in WIT-like form.

use crate::Component;
use std::fmt::Write;
use wasmparser::component_types::{ComponentDefinedType, ComponentEntityType, ComponentValType};
use wasmparser::types::Types;

/// Renders the root imports and exports of `component`.
pub fn describe(component: &Component) -> String {
    let types = component.types();
    let mut out = String::from("world root {\n");
    for (name, _) in &component.def.imports {
        if let Some(item) = types.component_item_for_import(name) {
            item_line(&mut out, types, "import", name, &item.ty);
        }
    }
    for (name, _, _) in &component.def.exports {
        if let Some(item) = types.component_item_for_export(name) {
            item_line(&mut out, types, "export", name, &item.ty);
        }
    }
    out.push_str("}\n");
    out
}

fn item_line(out: &mut String, types: &Types, dir: &str, name: &str, ty: &ComponentEntityType) {
    match ty {
        ComponentEntityType::Func(id) => {
            let _ = writeln!(out, "  {dir} {name}: {};", func(types, *id));
        }
        ComponentEntityType::Instance(id) => {
            let _ = writeln!(out, "  {dir} {name}: interface {{");
            for (ename, item) in types[*id].exports.iter() {
                match item.ty {
                    ComponentEntityType::Func(f) => {
                        let _ = writeln!(out, "    {ename}: {};", func(types, f));
                    }
                    ComponentEntityType::Type { created, .. } => {
                        let _ = writeln!(out, "    {};", type_decl(types, ename, created));
                    }
                    _ => {
                        let _ = writeln!(out, "    {ename}: {};", kind(&item.ty));
                    }
                }
            }
            let _ = writeln!(out, "  }}");
        }
        ComponentEntityType::Type { created, .. } => {
            let _ = writeln!(out, "  {dir} {};", type_decl(types, name, *created));
        }
        other => {
            let _ = writeln!(out, "  {dir} {name}: {};", kind(other));
        }
    }
}

fn kind(ty: &ComponentEntityType) -> &'static str {
    match ty {
        ComponentEntityType::Module(_) => "core module",
        ComponentEntityType::Func(_) => "func",
        ComponentEntityType::Value(_) => "value",
        ComponentEntityType::Type { .. } => "type",
        ComponentEntityType::Instance(_) => "instance",
        ComponentEntityType::Component(_) => "component",
    }
}

fn type_decl(
    types: &Types,
    name: &str,
    id: wasmparser::component_types::ComponentAnyTypeId,
) -> String {
    use wasmparser::component_types::ComponentAnyTypeId as A;
    match id {
        A::Resource(_) => format!("resource {name}"),
        A::Defined(d) => format!("type {name} = {}", defined(types, &types[d])),
        _ => format!("type {name}"),
    }
}

fn func(types: &Types, id: wasmparser::component_types::ComponentFuncTypeId) -> String {
    let f = &types[id];
    let params: Vec<String> = f
        .params
        .iter()
        .map(|(n, t)| format!("{n}: {}", val(types, t)))
        .collect();
    let mut s = format!("func({})", params.join(", "));
    if let Some(r) = &f.result {
        let _ = write!(s, " -> {}", val(types, r));
    }
    s
}

fn val(types: &Types, t: &ComponentValType) -> String {
    match t {
        ComponentValType::Primitive(p) => prim(*p).to_string(),
        ComponentValType::Type(id) => defined(types, &types[*id]),
    }
}

fn prim(p: wasmparser::PrimitiveValType) -> &'static str {
    use wasmparser::PrimitiveValType as P;
    match p {
        P::Bool => "bool",
        P::S8 => "s8",
        P::U8 => "u8",
        P::S16 => "s16",
        P::U16 => "u16",
        P::S32 => "s32",
        P::U32 => "u32",
        P::S64 => "s64",
        P::U64 => "u64",
        P::F32 => "f32",
        P::F64 => "f64",
        P::Char => "char",
        P::String => "string",
        P::ErrorContext => "error-context",
    }
}

fn defined(types: &Types, t: &ComponentDefinedType) -> String {
    let v = |t: &ComponentValType| val(types, t);
    match t {
        ComponentDefinedType::Primitive(p) => prim(*p).to_string(),
        ComponentDefinedType::Record(r) => {
            let fields: Vec<String> = r
                .fields
                .iter()
                .map(|(n, t)| format!("{n}: {}", v(t)))
                .collect();
            format!("record {{ {} }}", fields.join(", "))
        }
        ComponentDefinedType::Variant(var) => {
            let cases: Vec<String> = var
                .cases
                .iter()
                .map(|(n, c)| match &c.ty {
                    Some(t) => format!("{n}({})", v(t)),
                    None => n.to_string(),
                })
                .collect();
            format!("variant {{ {} }}", cases.join(", "))
        }
        ComponentDefinedType::List { element, .. } => format!("list<{}>", v(element)),
        ComponentDefinedType::Map { key, value, .. } => format!("map<{}, {}>", v(key), v(value)),
        ComponentDefinedType::FixedLengthList {
            element, length, ..
        } => format!("list<{}, {length}>", v(element)),
        ComponentDefinedType::Tuple(t) => format!(
            "tuple<{}>",
            t.types.iter().map(v).collect::<Vec<_>>().join(", ")
        ),
        ComponentDefinedType::Flags(n) => format!(
            "flags {{ {} }}",
            n.iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        ComponentDefinedType::Enum(n) => format!(
            "enum {{ {} }}",
            n.iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        ComponentDefinedType::Option { ty, .. } => format!("option<{}>", v(ty)),
        ComponentDefinedType::Result { ok, err, .. } => match (ok, err) {
            (None, None) => "result".into(),
            (Some(o), None) => format!("result<{}>", v(o)),
            (None, Some(e)) => format!("result<_, {}>", v(e)),
            (Some(o), Some(e)) => format!("result<{}, {}>", v(o), v(e)),
        },
        ComponentDefinedType::Own(_) => "own<resource>".into(),
        ComponentDefinedType::Borrow(_) => "borrow<resource>".into(),
        _ => "stream/future".into(),
    }
}
