//! Converting the validator's types into runtime [`Type`]s, with resource ids
//! replaced by the runtime resource types bound in the current instance.

use crate::values::{Case, Field, FuncType, ResourceType, Type};
use anyhow::{anyhow, Result};
use std::collections::HashMap;
use std::sync::Arc;
use wasmparser::component_types::{ComponentDefinedType, ComponentFuncTypeId, ComponentValType, ResourceId};
use wasmparser::types::Types;
use wasmparser::PrimitiveValType as P;

/// Resource ids of the validator bound to runtime resource types.
pub type Bindings = HashMap<ResourceId, ResourceType>;

pub fn func_type(types: &Types, id: ComponentFuncTypeId, b: &Bindings) -> Result<FuncType> {
    let f = &types[id];
    let params = f
        .params
        .iter()
        .map(|(name, t)| Ok((name.to_string(), val_type(types, t, b)?)))
        .collect::<Result<Vec<_>>>()?;
    let result = f.result.as_ref().map(|t| val_type(types, t, b)).transpose()?;
    Ok(FuncType::new(params, result))
}

pub fn val_type(types: &Types, t: &ComponentValType, b: &Bindings) -> Result<Type> {
    match t {
        ComponentValType::Primitive(p) => primitive(*p),
        ComponentValType::Type(id) => defined(types, &types[*id], b),
    }
}

fn primitive(p: P) -> Result<Type> {
    Ok(match p {
        P::Bool => Type::Bool,
        P::S8 => Type::S8,
        P::U8 => Type::U8,
        P::S16 => Type::S16,
        P::U16 => Type::U16,
        P::S32 => Type::S32,
        P::U32 => Type::U32,
        P::S64 => Type::S64,
        P::U64 => Type::U64,
        P::F32 => Type::F32,
        P::F64 => Type::F64,
        P::Char => Type::Char,
        P::String => Type::String,
        P::ErrorContext => return Err(anyhow!("unsupported: `error-context` is a WASI 0.3 type")),
    })
}

fn resource(b: &Bindings, id: ResourceId) -> Result<ResourceType> {
    b.get(&id)
        .cloned()
        .ok_or_else(|| anyhow!("internal: resource type {id:?} is not bound in this instance"))
}

fn defined(types: &Types, t: &ComponentDefinedType, b: &Bindings) -> Result<Type> {
    let val = |t: &ComponentValType| val_type(types, t, b);
    Ok(match t {
        ComponentDefinedType::Primitive(p) => primitive(*p)?,
        ComponentDefinedType::Record(r) => Type::Record(
            r.fields
                .iter()
                .map(|(n, t)| {
                    Ok(Field {
                        name: n.to_string(),
                        ty: val(t)?,
                    })
                })
                .collect::<Result<Vec<_>>>()?
                .into(),
        ),
        ComponentDefinedType::Variant(v) => Type::Variant(
            v.cases
                .iter()
                .map(|(n, c)| {
                    Ok(Case {
                        name: n.to_string(),
                        ty: c.ty.as_ref().map(val).transpose()?,
                    })
                })
                .collect::<Result<Vec<_>>>()?
                .into(),
        ),
        ComponentDefinedType::List { element, .. } => Type::List(Arc::new(val(element)?)),
        ComponentDefinedType::Map { key, value, .. } => Type::Map(Arc::new(val(key)?), Arc::new(val(value)?)),
        ComponentDefinedType::FixedLengthList { element, length, .. } => {
            Type::FixedList(Arc::new(val(element)?), *length)
        }
        ComponentDefinedType::Tuple(t) => Type::Tuple(t.types.iter().map(val).collect::<Result<Vec<_>>>()?.into()),
        ComponentDefinedType::Flags(names) => {
            Type::Flags(names.iter().map(|n| n.to_string()).collect::<Vec<_>>().into())
        }
        ComponentDefinedType::Enum(names) => Type::Enum(names.iter().map(|n| n.to_string()).collect::<Vec<_>>().into()),
        ComponentDefinedType::Option { ty, .. } => Type::Option(Arc::new(val(ty)?)),
        ComponentDefinedType::Result { ok, err, .. } => Type::Result {
            ok: ok.as_ref().map(val).transpose()?.map(Arc::new),
            err: err.as_ref().map(val).transpose()?.map(Arc::new),
        },
        ComponentDefinedType::Own(r) => Type::Own(resource(b, r.resource())?),
        ComponentDefinedType::Borrow(r) => Type::Borrow(resource(b, r.resource())?),
        _ => return Err(anyhow!("unsupported: stream/future types are WASI 0.3")),
    })
}
