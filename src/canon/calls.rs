//! The call protocols: `canon lift` entered from the host or another
//! component, `canon lower` of host and guest functions, and the resource
//! built-ins (CanonicalABI.md "Canonical Definitions").

use super::layout::{flatten_functype, flatten_types, Flat, MAX_FLAT_PARAMS, MAX_FLAT_RESULTS};
use super::lift::{lift_flat_values, FlatIter};
use super::lower::lower_flat_values;
use super::{trap, Cx, Options, Site, Trap};
use crate::component::instantiate::{FuncDef, Lifted};
use crate::linker::HostDtor;
use crate::store::{StoreCx, StoreData};
use crate::types::{FuncType, ResourceKind, ResourceType, Type};
use crate::val::Val;
use wasmi::{AsContextMut, StoreContextMut};

/// A host function failed: carries the host's error through wasm frames.
#[derive(Debug)]
pub struct HostFault(pub anyhow::Error);

impl std::fmt::Display for HostFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:#}", self.0)
    }
}
impl wasmi::errors::HostError for HostFault {}

fn self_and_ancestors<T>(store: &StoreContextMut<'_, StoreData<T>>, inst: usize) -> Vec<usize> {
    let mut out = vec![inst];
    let mut cur = store.data().rt.instances[inst].parent;
    while let Some(p) = cur {
        out.push(p);
        cur = store.data().rt.instances[p].parent;
    }
    out
}

/// The spec's `entering_set`: instances entered when `caller` calls into `inst`.
fn entering_set<T>(
    store: &StoreContextMut<'_, StoreData<T>>,
    inst: usize,
    caller: Option<usize>,
) -> Vec<usize> {
    let mine = self_and_ancestors(store, inst);
    match caller {
        Some(c) => {
            let theirs = self_and_ancestors(store, c);
            mine.into_iter().filter(|i| !theirs.contains(i)).collect()
        }
        None => mine,
    }
}

fn enter<T>(
    store: &mut StoreContextMut<'_, StoreData<T>>,
    inst: usize,
    caller: Option<usize>,
) -> Result<Vec<usize>, Trap> {
    let set = entering_set(store, inst, caller);
    let rt = &mut store.data_mut().rt;
    if set.iter().any(|&i| !rt.instances[i].may_enter) {
        return Err(trap!("cannot enter component instance"));
    }
    for &i in &set {
        rt.instances[i].may_enter = false;
    }
    Ok(set)
}

fn leave<T>(store: &mut StoreContextMut<'_, StoreData<T>>, set: &[usize]) {
    for &i in set {
        store.data_mut().rt.instances[i].may_enter = true;
    }
}

pub(crate) fn to_wasmi_vals(raw: &[u64], types: &[Flat]) -> Vec<wasmi::Val> {
    raw.iter()
        .zip(types)
        .map(|(&v, t)| match t {
            Flat::I32 => wasmi::Val::I32(v as u32 as i32),
            Flat::I64 => wasmi::Val::I64(v as i64),
            Flat::F32 => wasmi::Val::F32(f32::from_bits(v as u32).into()),
            Flat::F64 => wasmi::Val::F64(f64::from_bits(v).into()),
        })
        .collect()
}

pub(crate) fn from_wasmi_val(v: &wasmi::Val) -> u64 {
    match v {
        wasmi::Val::I32(i) => *i as u32 as u64,
        wasmi::Val::I64(i) => *i as u64,
        wasmi::Val::F32(f) => f.to_bits() as u64,
        wasmi::Val::F64(f) => f.to_bits(),
        _ => 0,
    }
}

fn result_types(ty: &FuncType) -> Vec<&Type> {
    ty.result.iter().collect()
}

/// An entered call of a lifted function whose results have been lifted but
/// whose post-return has not run yet.
pub struct Entered {
    entered: Vec<usize>,
    flat_results: Vec<wasmi::Val>,
}

/// `canon lift`, first half: enter the callee instance, lower the arguments
/// into it, run the core function, lift the results.
pub(crate) fn call_lifted_begin<T>(
    store: &mut StoreContextMut<'_, StoreData<T>>,
    f: &Lifted,
    args: &[Val],
    caller: Option<usize>,
    site: Site,
) -> Result<(Vec<Val>, Entered), wasmi::Error> {
    let entered = enter(store, f.opts.instance, caller)?;
    let task = store.data().rt.tasks.len();
    store.data_mut().rt.tasks.push(Default::default());
    let params: Vec<&Type> = f.ty.param_types().collect();
    let (flat_params, flat_results) = flatten_functype(&f.ty, false);
    let mut cx = Cx::new(store.as_context_mut(), &f.opts, site);
    cx.borrow_scope = Some(task);
    let raw = lower_flat_values(&mut cx, MAX_FLAT_PARAMS, args, &params, None)?;
    let core_args = to_wasmi_vals(&raw, &flat_params);
    let mut core_results: Vec<wasmi::Val> = flat_results
        .iter()
        .map(|t| wasmi::Val::default_for_ty(t.wasmi()))
        .collect();
    f.core
        .call(cx.store.as_context_mut(), &core_args, &mut core_results)?;
    let raw: Vec<u64> = core_results.iter().map(from_wasmi_val).collect();
    let results = lift_flat_values(
        &mut cx,
        MAX_FLAT_RESULTS,
        &mut FlatIter::new(&raw),
        &result_types(&f.ty),
    )?;
    // task.return: every borrow lent to this call must have been dropped.
    let rt = &mut store.data_mut().rt;
    if rt.tasks[task].num_borrows > 0 {
        return Err(trap!("borrow handles still remain at the end of the call").into());
    }
    rt.tasks.pop();
    Ok((
        results,
        Entered {
            entered,
            flat_results: core_results,
        },
    ))
}

/// `canon lift`, second half: post-return (with `may_leave` cleared), then
/// leave the callee instance.
pub(crate) fn call_lifted_finish<T>(
    store: &mut StoreContextMut<'_, StoreData<T>>,
    f: &Lifted,
    e: Entered,
) -> Result<(), wasmi::Error> {
    if let Some(post) = f.opts.post_return {
        let inst = f.opts.instance;
        store.data_mut().rt.instances[inst].may_leave = false;
        post.call(store.as_context_mut(), &e.flat_results, &mut [])?;
        store.data_mut().rt.instances[inst].may_leave = true;
    }
    leave(store, &e.entered);
    Ok(())
}

/// Calls a component function from the host.
pub(crate) fn call_from_host<T>(
    store: &mut StoreContextMut<'_, StoreData<T>>,
    f: &FuncDef<T>,
    args: &[Val],
) -> Result<Vec<Val>, wasmi::Error> {
    match f {
        FuncDef::Lifted(l) => {
            let (results, entered) = call_lifted_begin(store, l, args, None, Site::Host)?;
            call_lifted_finish(store, l, entered)?;
            Ok(results)
        }
        FuncDef::Host { func, .. } => {
            let mut results = Vec::new();
            func(StoreCx(store.as_context_mut()), args, &mut results)
                .map_err(|e| wasmi::Error::host(HostFault(e)))?;
            Ok(results)
        }
    }
}

/// The core signature of `canon lower` of `ty`.
pub(crate) fn lowered_core_type(ty: &FuncType) -> wasmi::FuncType {
    let (params, results) = flatten_functype(ty, true);
    wasmi::FuncType::new(
        params.iter().map(|f| f.wasmi()),
        results.iter().map(|f| f.wasmi()),
    )
}

/// `canon lower`: the body of the core function a guest calls. Lifts the
/// arguments from the caller, calls the host or the other component, lowers
/// the results back.
pub(crate) fn call_lowered<T>(
    mut store: StoreContextMut<'_, StoreData<T>>,
    callee: &FuncDef<T>,
    opts: &Options,
    params: &[wasmi::Val],
    results: &mut [wasmi::Val],
) -> Result<(), wasmi::Error> {
    let caller = opts.instance;
    if !store.data().rt.instances[caller].may_leave {
        return Err(trap!("cannot leave component instance").into());
    }
    let ty = callee.ty();
    let site = match callee {
        FuncDef::Lifted(_) => Site::Adapter,
        FuncDef::Host { .. } => Site::Host,
    };
    let raw: Vec<u64> = params.iter().map(from_wasmi_val).collect();
    let mut vi = FlatIter::new(&raw);
    let param_types: Vec<&Type> = ty.param_types().collect();
    let mut cx = Cx::new(store.as_context_mut(), opts, site);
    let args = lift_flat_values(&mut cx, MAX_FLAT_PARAMS, &mut vi, &param_types)?;
    let lenders = std::mem::take(&mut cx.lenders);
    drop(cx);
    let flat_result_count = flatten_types(ty.result.iter()).len();
    let out_param = if flat_result_count > MAX_FLAT_RESULTS {
        Some(from_wasmi_val(
            params
                .last()
                .ok_or_else(|| trap!("missing return pointer"))?,
        ) as u32)
    } else {
        None
    };
    let lower_results =
        |store: StoreContextMut<'_, StoreData<T>>, vals: &[Val], results: &mut [wasmi::Val]| {
            let mut cx = Cx::new(store, opts, site);
            let flat = lower_flat_values(
                &mut cx,
                MAX_FLAT_RESULTS,
                vals,
                &result_types(ty),
                out_param,
            )?;
            for (slot, v) in results.iter_mut().zip(flat) {
                let new = match &*slot {
                    wasmi::Val::I32(_) => wasmi::Val::I32(v as u32 as i32),
                    wasmi::Val::I64(_) => wasmi::Val::I64(v as i64),
                    wasmi::Val::F32(_) => wasmi::Val::F32(f32::from_bits(v as u32).into()),
                    wasmi::Val::F64(_) => wasmi::Val::F64(f64::from_bits(v).into()),
                    other => other.clone(),
                };
                *slot = new;
            }
            Ok::<(), wasmi::Error>(())
        };
    match callee {
        FuncDef::Host { func, .. } => {
            let mut vals = Vec::new();
            func(StoreCx(store.as_context_mut()), &args, &mut vals)
                .map_err(|e| wasmi::Error::host(HostFault(e)))?;
            lower_results(store.as_context_mut(), &vals, results)?;
        }
        FuncDef::Lifted(l) => {
            let (vals, entered) =
                call_lifted_begin(&mut store, l, &args, Some(caller), Site::Adapter)?;
            lower_results(store.as_context_mut(), &vals, results)?;
            call_lifted_finish(&mut store, l, entered)?;
        }
    }
    // The callee returned: handles lent for borrows are released.
    for i in lenders {
        if let Ok(h) = store.data_mut().rt.instances[caller].handles.get_mut(i) {
            h.num_lends -= 1;
        }
    }
    Ok(())
}

/// `canon resource.new`
pub(crate) fn resource_new<T>(
    mut store: StoreContextMut<'_, StoreData<T>>,
    inst: usize,
    rt: &ResourceType,
    rep: u32,
) -> Result<u32, Trap> {
    let state = &mut store.data_mut().rt.instances[inst];
    if !state.may_leave {
        return Err(trap!("cannot leave component instance"));
    }
    state.handles.add(super::handles::Handle {
        rt: rt.clone(),
        rep,
        own: true,
        borrow_scope: None,
        num_lends: 0,
    })
}

/// `canon resource.rep`
pub(crate) fn resource_rep<T>(
    store: StoreContextMut<'_, StoreData<T>>,
    inst: usize,
    rt: &ResourceType,
    i: u32,
) -> Result<u32, Trap> {
    let h = store.data().rt.instances[inst].handles.get(i)?;
    super::handles::check_type(i, h, rt)?;
    Ok(h.rep)
}

/// `canon resource.drop`: removes the handle; for an owned handle runs the
/// destructor (entering its implementing instance), for a borrow ends it.
pub(crate) fn resource_drop<T: 'static>(
    mut store: StoreContextMut<'_, StoreData<T>>,
    inst: usize,
    rt: &ResourceType,
    i: u32,
) -> Result<(), wasmi::Error> {
    let state = &mut store.data_mut().rt.instances[inst];
    if !state.may_leave {
        return Err(trap!("cannot leave component instance").into());
    }
    let h = state.handles.get(i)?;
    super::handles::check_type(i, h, rt)?;
    if h.num_lends != 0 {
        return Err(trap!("cannot remove owned resource while borrowed").into());
    }
    let h = state.handles.remove(i)?;
    if !h.own {
        if let Some(task) = h.borrow_scope {
            store.data_mut().rt.tasks[task].num_borrows -= 1;
        }
        return Ok(());
    }
    drop_own(&mut store, Some(inst), rt, h.rep)
}

/// Runs the destructor of an owned resource `rep` of type `rt`.
pub(crate) fn drop_own<T: 'static>(
    store: &mut StoreContextMut<'_, StoreData<T>>,
    caller: Option<usize>,
    rt: &ResourceType,
    rep: u32,
) -> Result<(), wasmi::Error> {
    match &rt.0.kind {
        ResourceKind::Guest { instance, dtor } => {
            let entered = enter(store, *instance, caller)?;
            if let Some(dtor) = dtor {
                dtor.call(
                    store.as_context_mut(),
                    &[wasmi::Val::I32(rep as i32)],
                    &mut [],
                )?;
            }
            leave(store, &entered);
        }
        ResourceKind::Host { dtor } => {
            if let Some(d) = dtor.as_ref().and_then(|d| d.downcast_ref::<HostDtor<T>>()) {
                d(StoreCx(store.as_context_mut()), rep)
                    .map_err(|e| wasmi::Error::host(HostFault(e)))?;
            }
        }
    }
    Ok(())
}
