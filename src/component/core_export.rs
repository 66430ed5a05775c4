//! Lifting an export of a bare core instance at a component function type,
//! as `canon lift` would in a component wrapping it: for core modules that
//! run without a component (wasip1 reactors given a `wit` signature). The
//! options are the conventional ones: the `memory` export, `cabi_realloc`,
//! `cabi_post_<name>`, UTF-8 strings, and an instance state of its own.

use super::func::{FuncDef, Lifted};
use crate::canon::handles::InstanceState;
use crate::canon::state::StoreData;
use crate::canon::{Options, StringEncoding};
use crate::values::FuncType;
use anyhow::{bail, Result};
use wasmi::StoreContextMut;

pub(crate) fn lift_core_export<T>(
    mut store: StoreContextMut<'_, StoreData<T>>,
    instance: &wasmi::Instance,
    name: &str,
    ty: FuncType,
) -> Result<FuncDef<T>> {
    let Some(core) = instance.get_func(&store, name) else {
        bail!("the module exports no function `{name}`");
    };
    let (core_params, core_results) = crate::canon::layout::flatten_functype(&ty, false);
    let want = super::calls::core_type(&core_params, &core_results);
    let have = core.ty(&store);
    if have.params() != want.params() || have.results() != want.results() {
        bail!("`{name}` has core type {have:?}; `{ty}` lifts from {want:?}");
    }
    let id = store.data().rt.instances.len();
    let handles = store.data().limiter.limits.handles;
    store.data_mut().rt.instances.push(InstanceState::new(None, handles));
    let opts = Options {
        instance: id,
        memory: instance.get_memory(&store, "memory"),
        realloc: instance.get_func(&store, "cabi_realloc"),
        post_return: instance.get_func(&store, &format!("cabi_post_{name}")),
        encoding: StringEncoding::Utf8,
    };
    Ok(FuncDef::Lifted(Lifted {
        ty,
        core,
        opts,
        core_params,
        core_results,
    }))
}
