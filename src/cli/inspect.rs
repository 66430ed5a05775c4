//! `wippy-wasm inspect`: a component's imports and exports in WIT-like form.

use crate::Component;
use std::collections::HashMap;
use std::fmt::Write;
use wasmparser::component_types::{
    ComponentAnyTypeId, ComponentDefinedType, ComponentDefinedTypeId, ComponentEntityType, ComponentValType, ResourceId,
};
use wasmparser::types::Types;

/// Names that interfaces give their types, so references print as `error-code`
/// rather than the whole definition.
#[derive(Default)]
struct Names {
    defined: HashMap<ComponentDefinedTypeId, String>,
    resources: HashMap<ResourceId, String>,
}

impl Names {
    fn collect(types: &Types, items: &[&ComponentEntityType]) -> Self {
        let mut n = Names::default();
        for ty in items {
            let exports: Vec<(&str, &ComponentEntityType)> = match ty {
                ComponentEntityType::Instance(id) => {
                    types[*id].exports.iter().map(|(k, v)| (k.as_str(), &v.ty)).collect()
                }
                _ => continue,
            };
            for (name, ty) in exports {
                if let ComponentEntityType::Type { referenced, created } = ty {
                    for id in [referenced, created] {
                        match id {
                            ComponentAnyTypeId::Defined(d) => {
                                n.defined.entry(*d).or_insert_with(|| name.to_string());
                            }
                            ComponentAnyTypeId::Resource(r) => {
                                n.resources.entry(r.resource()).or_insert_with(|| name.to_string());
                            }
                            _ => {}
                        }
                    }
                }
            }
        }
        n
    }
}

/// Renders the root imports and exports of `component`.
pub fn describe(component: &Component) -> String {
    let types = component.types();
    let mut out = String::from("world root {\n");
    let imports: Vec<_> = component
        .def
        .imports
        .iter()
        .filter_map(|(n, _)| Some((n, &types.component_item_for_import(n)?.ty)))
        .collect();
    let exports: Vec<_> = component
        .def
        .exports
        .iter()
        .filter_map(|(n, _, _)| Some((n, &types.component_item_for_export(n)?.ty)))
        .collect();
    let all: Vec<&ComponentEntityType> = imports.iter().chain(&exports).map(|(_, t)| *t).collect();
    let names = Names::collect(types, &all);
    for (name, ty) in imports {
        item_line(&mut out, types, &names, "import", name, ty);
    }
    for (name, ty) in exports {
        item_line(&mut out, types, &names, "export", name, ty);
    }
    out.push_str("}\n");
    out
}

fn item_line(out: &mut String, types: &Types, names: &Names, dir: &str, name: &str, ty: &ComponentEntityType) {
    match ty {
        ComponentEntityType::Func(id) => {
            let _ = writeln!(out, "  {dir} {name}: {};", func(types, names, *id));
        }
        ComponentEntityType::Instance(id) => {
            let _ = writeln!(out, "  {dir} {name}: interface {{");
            for (ename, item) in types[*id].exports.iter() {
                match item.ty {
                    ComponentEntityType::Func(f) => {
                        let _ = writeln!(out, "    {ename}: {};", func(types, names, f));
                    }
                    ComponentEntityType::Type { created, .. } => {
                        let _ = writeln!(out, "    {};", type_decl(types, names, ename, created));
                    }
                    _ => {
                        let _ = writeln!(out, "    {ename}: {};", kind(&item.ty));
                    }
                }
            }
            let _ = writeln!(out, "  }}");
        }
        ComponentEntityType::Type { created, .. } => {
            let _ = writeln!(out, "  {dir} {};", type_decl(types, names, name, *created));
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

fn type_decl(types: &Types, names: &Names, name: &str, id: ComponentAnyTypeId) -> String {
    use wasmparser::component_types::ComponentAnyTypeId as A;
    match id {
        A::Resource(_) => format!("resource {name}"),
        A::Defined(d) => format!("type {name} = {}", defined(types, names, &types[d])),
        _ => format!("type {name}"),
    }
}

fn func(types: &Types, names: &Names, id: wasmparser::component_types::ComponentFuncTypeId) -> String {
    let f = &types[id];
    let params: Vec<String> = f
        .params
        .iter()
        .map(|(n, t)| format!("{n}: {}", val(types, names, t)))
        .collect();
    let mut s = format!("func({})", params.join(", "));
    if let Some(r) = &f.result {
        let _ = write!(s, " -> {}", val(types, names, r));
    }
    s
}

fn val(types: &Types, names: &Names, t: &ComponentValType) -> String {
    match t {
        ComponentValType::Primitive(p) => prim(*p).to_string(),
        ComponentValType::Type(id) => match names.defined.get(id) {
            Some(n) => n.clone(),
            None => defined(types, names, &types[*id]),
        },
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

fn defined(types: &Types, names: &Names, t: &ComponentDefinedType) -> String {
    let v = |t: &ComponentValType| val(types, names, t);
    let res = |r: &wasmparser::component_types::AliasableResourceId| {
        names
            .resources
            .get(&r.resource())
            .cloned()
            .unwrap_or_else(|| "resource".into())
    };
    match t {
        ComponentDefinedType::Primitive(p) => prim(*p).to_string(),
        ComponentDefinedType::Record(r) => {
            let fields: Vec<String> = r.fields.iter().map(|(n, t)| format!("{n}: {}", v(t))).collect();
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
        ComponentDefinedType::FixedLengthList { element, length, .. } => format!("list<{}, {length}>", v(element)),
        ComponentDefinedType::Tuple(t) => format!("tuple<{}>", t.types.iter().map(v).collect::<Vec<_>>().join(", ")),
        ComponentDefinedType::Flags(n) => format!(
            "flags {{ {} }}",
            n.iter().map(|s| s.to_string()).collect::<Vec<_>>().join(", ")
        ),
        ComponentDefinedType::Enum(n) => format!(
            "enum {{ {} }}",
            n.iter().map(|s| s.to_string()).collect::<Vec<_>>().join(", ")
        ),
        ComponentDefinedType::Option { ty, .. } => format!("option<{}>", v(ty)),
        ComponentDefinedType::Result { ok, err, .. } => match (ok, err) {
            (None, None) => "result".into(),
            (Some(o), None) => format!("result<{}>", v(o)),
            (None, Some(e)) => format!("result<_, {}>", v(e)),
            (Some(o), Some(e)) => format!("result<{}, {}>", v(o), v(e)),
        },
        ComponentDefinedType::Own(r) => res(r),
        ComponentDefinedType::Borrow(r) => format!("borrow<{}>", res(r)),
        _ => "stream/future".into(),
    }
}
