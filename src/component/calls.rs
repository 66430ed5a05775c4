//! The call protocols: `canon lift` entered from the host or another
//! component, `canon lower` of host and guest functions, and the resource
//! built-ins (CanonicalABI.md "Canonical Definitions").

use super::func::{FuncDef, Lifted};
use super::host::{AsyncHostFn, HostDtor, HostFn};
use crate::canon::layout::{flatten_functype, Flat};
use crate::canon::lift::{lift_flat_values, FlatIter};
use crate::canon::lower::lower_flat_values;
use crate::canon::state::{nested, with_nested_fuel, AdapterFrame, Frame, StoreCx, StoreData};
use crate::canon::trap::{guarded, HostFault};
use crate::canon::{trap, Cx, Options, Site, Trap};
use crate::dispatch::{Completion, Deferred, HostFuture};
use crate::values::types::ResourceKind;
use crate::values::{FuncType, ResourceType, Type, Val};
use wasmi::{AsContextMut, StoreContextMut};

/// Whether `inst` is `of` or one of its ancestors.
fn in_chain<T>(store: &StoreContextMut<'_, StoreData<T>>, inst: usize, of: usize) -> bool {
    let mut cur = Some(of);
    while let Some(i) = cur {
        if i == inst {
            return true;
        }
        cur = store.data().rt.instances[i].parent;
    }
    false
}

/// Walks the spec's `entering_set(caller)` of `inst`: `inst` and its
/// ancestors, less those the caller is already inside.
fn for_entering_set<T>(
    store: &mut StoreContextMut<'_, StoreData<T>>,
    inst: usize,
    caller: Option<usize>,
    mut f: impl FnMut(&mut crate::canon::handles::InstanceState) -> bool,
) -> bool {
    let mut cur = Some(inst);
    while let Some(i) = cur {
        if caller.is_none_or(|c| !in_chain(store, i, c)) && !f(&mut store.data_mut().rt.instances[i]) {
            return false;
        }
        cur = store.data().rt.instances[i].parent;
    }
    true
}

/// `may_enter_from` + `enter_from`.
fn enter<T>(store: &mut StoreContextMut<'_, StoreData<T>>, inst: usize, caller: Option<usize>) -> Result<(), Trap> {
    // Before any guest code runs (a realloc lowering arguments included):
    // a reset's grown pages are guarded by now (`crate::memory::closing`).
    if store.data_mut().rt.memories.ready().is_err() {
        return Err(trap!("out of bounds memory access"));
    }
    if !for_entering_set(store, inst, caller, |s| s.may_enter) {
        return Err(trap!("cannot enter component instance"));
    }
    for_entering_set(store, inst, caller, |s| {
        s.may_enter = false;
        true
    });
    Ok(())
}

/// `leave_to`.
fn leave<T>(store: &mut StoreContextMut<'_, StoreData<T>>, inst: usize, caller: Option<usize>) {
    for_entering_set(store, inst, caller, |s| {
        s.may_enter = true;
        true
    });
}

pub(crate) fn to_wasmi_val(v: u64, t: Flat) -> wasmi::Val {
    match t {
        Flat::I32 => wasmi::Val::I32(v as u32 as i32),
        Flat::I64 => wasmi::Val::I64(v as i64),
        Flat::F32 => wasmi::Val::F32(f32::from_bits(v as u32).into()),
        Flat::F64 => wasmi::Val::F64(f64::from_bits(v).into()),
    }
}

pub(crate) fn to_wasmi_vals(raw: &[u64], types: &[Flat]) -> Vec<wasmi::Val> {
    raw.iter().zip(types).map(|(&v, &t)| to_wasmi_val(v, t)).collect()
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

/// `canon lift`, entry: enter the callee instance (`may_enter`), start a task
/// for its borrows, and lower the arguments into the callee with `lower`.
pub(crate) fn lift_enter<T>(
    store: &mut StoreContextMut<'_, StoreData<T>>,
    f: &Lifted,
    caller: Option<usize>,
    site: Site,
    lower: impl FnOnce(&mut Cx<'_, '_, T>) -> Result<Vec<u64>, wasmi::Error>,
) -> Result<(Vec<wasmi::Val>, Frame), wasmi::Error> {
    if caller.is_some_and(|c| in_chain(store, f.opts.instance, c) || in_chain(store, c, f.opts.instance)) {
        // A component-to-component call between an instance and itself or
        // an ancestor could only be recursion: it always traps, as the
        // spec's scripts and wasmtime have it (component-model#589). The
        // later entering-set text (#650) would let donut wrapping through;
        // the conservative rule stays until the scripts change.
        return Err(trap!("cannot enter component instance").into());
    }
    enter(store, f.opts.instance, caller)?;
    let task = store.data().rt.tasks.len();
    store.data_mut().rt.tasks.push(Default::default());
    let mut cx = Cx::new(store.as_context_mut(), &f.opts, site);
    cx.borrow_scope = Some(task);
    let raw = lower(&mut cx)?;
    Ok((to_wasmi_vals(&raw, &f.core_params), Frame { caller, task }))
}

/// Lowers dynamic argument values for [`lift_enter`].
pub(crate) fn lower_args<T>(cx: &mut Cx<'_, '_, T>, ty: &FuncType, args: &[Val]) -> Result<Vec<u64>, wasmi::Error> {
    let mut out = Vec::with_capacity(16);
    lower_flat_values(cx, ty.params_spilled(), args, ty.param_types(), None, &mut out)?;
    Ok(out)
}

/// `canon lift`, return: lift the core results with `lift` and end the task
/// (every borrow lent to it must have been dropped).
pub(crate) fn lift_return<T, R>(
    store: &mut StoreContextMut<'_, StoreData<T>>,
    f: &Lifted,
    frame: &Frame,
    core_results: &[wasmi::Val],
    site: Site,
    lift: impl FnOnce(&mut Cx<'_, '_, T>, &mut FlatIter<'_>) -> Result<R, Trap>,
) -> Result<R, wasmi::Error> {
    // A lifted function returns at most one core value.
    let raw = [core_results.first().map_or(0, from_wasmi_val)];
    let mut cx = Cx::new(store.as_context_mut(), &f.opts, site);
    let results = lift(&mut cx, &mut FlatIter::new(&raw[..core_results.len().min(1)]))?;
    let rt = &mut store.data_mut().rt;
    if rt.tasks[frame.task].num_borrows > 0 {
        return Err(trap!("borrow handles still remain at the end of the call").into());
    }
    rt.tasks.truncate(frame.task);
    Ok(results)
}

/// Lifts dynamic result values for [`lift_return`].
pub(crate) fn lift_results<T>(cx: &mut Cx<'_, '_, T>, ty: &FuncType, vi: &mut FlatIter<'_>) -> Result<Vec<Val>, Trap> {
    // `list<u8>` results come back compact: a `Val` per byte would cost the
    // host ~40 bytes for each byte the guest returns.
    cx.compact_bytes = true;
    lift_flat_values(cx, ty.result_spilled(), vi, ty.result.iter())
}

/// `canon lift`, after the caller has the results: post-return (with
/// `may_leave` cleared), then leave the callee instance.
pub(crate) fn lift_finish<T>(
    store: &mut StoreContextMut<'_, StoreData<T>>,
    f: &Lifted,
    frame: Frame,
    core_results: &[wasmi::Val],
) -> Result<(), wasmi::Error> {
    if let Some(post) = f.opts.post_return {
        let inst = f.opts.instance;
        store.data_mut().rt.instances[inst].may_leave = false;
        with_nested_fuel(store, |store| post.call(store.as_context_mut(), core_results, &mut []))?;
        store.data_mut().rt.instances[inst].may_leave = true;
    }
    leave(store, f.opts.instance, frame.caller);
    Ok(())
}

/// Calls a lifted function from the host: `lower` produces the flat
/// arguments in the callee, `lift` reads the results back.
pub(crate) fn call_lifted<T, R>(
    store: &mut StoreContextMut<'_, StoreData<T>>,
    l: &Lifted,
    lower: impl FnOnce(&mut Cx<'_, '_, T>) -> Result<Vec<u64>, wasmi::Error>,
    lift: impl FnOnce(&mut Cx<'_, '_, T>, &mut FlatIter<'_>) -> Result<R, Trap>,
) -> Result<R, wasmi::Error> {
    let (tasks, frames) = (store.data().rt.tasks.len(), store.data().rt.frames.len());
    let result = (|| {
        let (core_args, frame) = lift_enter(store, l, None, Site::Host, lower)?;
        let mut core_results = [wasmi::Val::I32(0)];
        let core_results = &mut core_results[..l.core_results.len()];
        if let Some(t) = l.core_results.first() {
            core_results[0] = wasmi::Val::default_for_ty(t.wasmi());
        }
        let called = nested(store, |store| {
            l.core.call(store.as_context_mut(), &core_args, core_results)
        });
        // A guest that touched a guarded page (`crate::memory`) ends with
        // the trap a fresh instance would have given there.
        store.data().rt.memories.check()?;
        called?;
        let results = lift_return(store, l, &frame, core_results, Site::Host, lift)?;
        lift_finish(store, l, frame, core_results)?;
        Ok(results)
    })();
    if result.is_err() {
        // A trap unwinds every call in between: drop their bookkeeping.
        let rt = &mut store.data_mut().rt;
        rt.tasks.truncate(tasks);
        rt.frames.truncate(frames);
    }
    result
}

/// Calls a lifted function as a resumable call: host futures suspend it,
/// fuel exhaustion yields a time slice. See [`crate::dispatch`].
pub(crate) async fn call_lifted_async<T: 'static>(
    store: &mut wasmi::Store<StoreData<T>>,
    l: &Lifted,
    args: &[Val],
) -> Result<Vec<Val>, wasmi::Error> {
    let (tasks, frames) = (store.data().rt.tasks.len(), store.data().rt.frames.len());
    let result = drive(store, l, args).await;
    let rt = &mut store.data_mut().rt;
    rt.async_driver = false;
    if result.is_err() {
        rt.tasks.truncate(tasks);
        rt.frames.truncate(frames);
    }
    result
}

async fn drive<T: 'static>(
    store: &mut wasmi::Store<StoreData<T>>,
    l: &Lifted,
    args: &[Val],
) -> Result<Vec<Val>, wasmi::Error> {
    let (core_args, frame) = lift_enter(&mut store.as_context_mut(), l, None, Site::Host, |cx| {
        lower_args(cx, &l.ty, args)
    })?;
    let mut core_results: Vec<wasmi::Val> = l
        .core_results
        .iter()
        .map(|t| wasmi::Val::default_for_ty(t.wasmi()))
        .collect();
    crate::dispatch::drive(store, &l.core, &core_args, &mut core_results).await?;
    let mut cx = store.as_context_mut();
    let results = lift_return(&mut cx, l, &frame, &core_results, Site::Host, |cx, vi| {
        lift_results(cx, &l.ty, vi)
    })?;
    lift_finish(&mut cx, l, frame, &core_results)?;
    Ok(results)
}

/// Calls a component function from the host with dynamic values.
pub(crate) fn call_from_host<T>(
    store: &mut StoreContextMut<'_, StoreData<T>>,
    f: &FuncDef<T>,
    args: &[Val],
) -> Result<Vec<Val>, wasmi::Error> {
    match f {
        FuncDef::Lifted(l) => call_lifted(
            store,
            l,
            |cx| lower_args(cx, &l.ty, args),
            |cx, vi| lift_results(cx, &l.ty, vi),
        ),
        FuncDef::Host { func, .. } => {
            let mut results = Vec::new();
            guarded(|| (func.dynamic)(StoreCx(store.as_context_mut()), args, &mut results))?;
            Ok(results)
        }
    }
}

/// The core signature of `canon lower` of `ty`.
pub(crate) fn lowered_core_type(ty: &FuncType) -> wasmi::FuncType {
    let (params, results) = flatten_functype(ty, true);
    core_type(&params, &results)
}

pub(crate) fn core_type(params: &[Flat], results: &[Flat]) -> wasmi::FuncType {
    wasmi::FuncType::new(params.iter().map(|f| f.wasmi()), results.iter().map(|f| f.wasmi()))
}

fn check_may_leave<T>(store: &StoreContextMut<'_, StoreData<T>>, inst: usize) -> Result<(), Trap> {
    if !store.data().rt.instances[inst].may_leave {
        return Err(trap!("cannot leave component instance"));
    }
    Ok(())
}

/// Lifts a lowered call's arguments from the caller's flat values.
fn lift_args<T>(
    store: &mut StoreContextMut<'_, StoreData<T>>,
    ty: &FuncType,
    opts: &Options,
    params: &[wasmi::Val],
    site: Site,
    compact_bytes: bool,
) -> Result<(Vec<Val>, Vec<u32>), Trap> {
    let raw: Vec<u64> = params.iter().map(from_wasmi_val).collect();
    let mut cx = Cx::new(store.as_context_mut(), opts, site);
    cx.compact_bytes = compact_bytes;
    let args = lift_flat_values(&mut cx, ty.params_spilled(), &mut FlatIter::new(&raw), ty.param_types())?;
    Ok((args, cx.lenders))
}

/// Lowers a call's results into the caller: flat, or through `retptr`.
fn lower_results<T>(
    store: &mut StoreContextMut<'_, StoreData<T>>,
    ty: &FuncType,
    opts: &Options,
    vals: &[Val],
    retptr: Option<u32>,
    results: &mut [wasmi::Val],
    site: Site,
) -> Result<(), wasmi::Error> {
    let mut cx = Cx::new(store.as_context_mut(), opts, site);
    let mut flat = Vec::with_capacity(1);
    lower_flat_values(&mut cx, ty.result_spilled(), vals, ty.result.iter(), retptr, &mut flat)?;
    if let (Some(slot), Some(&v), Some(t)) = (results.first_mut(), flat.first(), ty.result.as_ref()) {
        *slot = to_wasmi_val(v, single_flat(t));
    }
    Ok(())
}

/// The one core type of a type that flattens to a single value.
fn single_flat(t: &Type) -> Flat {
    match t {
        Type::S64 | Type::U64 => Flat::I64,
        Type::F32 => Flat::F32,
        Type::F64 => Flat::F64,
        Type::Record(fields) if fields.len() == 1 => single_flat(&fields[0].ty),
        Type::Tuple(ts) if ts.len() == 1 => single_flat(&ts[0]),
        Type::FixedList(e, 1) => single_flat(e),
        _ => Flat::I32,
    }
}

/// The callee returned: handles the caller lent as borrows are released.
fn release_lenders<T>(store: &mut StoreContextMut<'_, StoreData<T>>, inst: usize, lenders: &[u32]) {
    for &i in lenders {
        if let Ok(h) = store.data_mut().rt.instances[inst].handles.get_mut(i) {
            h.num_lends -= 1;
        }
    }
}

fn retptr_of(ty: &FuncType, params: &[wasmi::Val]) -> Result<Option<u32>, Trap> {
    if ty.result_spilled() {
        let p = params.last().ok_or_else(|| trap!("missing return pointer"))?;
        Ok(Some(from_wasmi_val(p) as u32))
    } else {
        Ok(None)
    }
}

/// `canon lower` of a host function: the body of the core function a guest
/// calls.
pub(crate) fn call_host_lowered<T>(
    mut store: StoreContextMut<'_, StoreData<T>>,
    ty: &FuncType,
    func: &HostFn<T>,
    opts: &Options,
    (params, compact_bytes): (&[wasmi::Val], bool),
    results: &mut [wasmi::Val],
) -> Result<(), wasmi::Error> {
    check_may_leave(&store, opts.instance)?;
    store.data().rt.memories.check()?;
    let (args, lenders) = lift_args(&mut store, ty, opts, params, Site::Host, compact_bytes)?;
    let mut vals = Vec::new();
    guarded(|| func(StoreCx(store.as_context_mut()), &args, &mut vals))?;
    lower_results(&mut store, ty, opts, &vals, retptr_of(ty, params)?, results, Site::Host)?;
    release_lenders(&mut store, opts.instance, &lenders);
    Ok(())
}

/// `canon lower` of an async host function: lifts the arguments, starts the
/// host future, and suspends the guest until it completes (or completes it in
/// place when the call cannot be paused).
pub(crate) fn call_host_lowered_async<T: 'static>(
    mut store: StoreContextMut<'_, StoreData<T>>,
    ty: &std::sync::Arc<FuncType>,
    func: &AsyncHostFn<T>,
    opts: &Options,
    (params, compact_bytes): (&[wasmi::Val], bool),
    results: &mut [wasmi::Val],
) -> Result<(), wasmi::Error> {
    check_may_leave(&store, opts.instance)?;
    store.data().rt.memories.check()?;
    let (args, lenders) = lift_args(&mut store, ty, opts, params, Site::Host, compact_bytes)?;
    let fut = guarded(|| func(StoreCx(store.as_context_mut()), &args))?;
    // A host future that panics becomes an error too.
    let fut: HostFuture = Box::pin(async move {
        use futures_lite::FutureExt;
        std::panic::AssertUnwindSafe(fut)
            .catch_unwind()
            .await
            .unwrap_or_else(|_| Err(anyhow::anyhow!("a host function panicked")))
    });
    let retptr = retptr_of(ty, params)?;
    let (ty, opts) = (ty.clone(), opts.clone());
    let complete: Completion<T> = Box::new(move |mut store, vals| {
        let vals = match vals {
            Ok(vals) => vals,
            Err(e) => match e.downcast_ref::<Deferred<T>>().and_then(|d| d.take()) {
                Some(finish) => guarded(|| finish(StoreCx(store.as_context_mut())))?,
                None => return Err(wasmi::Error::host(HostFault(e))),
            },
        };
        let (_, core_types) = flatten_functype(&ty, true);
        let mut core: Vec<wasmi::Val> = core_types
            .iter()
            .map(|t| wasmi::Val::default_for_ty(t.wasmi()))
            .collect();
        lower_results(&mut store, &ty, &opts, &vals, retptr, &mut core, Site::Host)?;
        release_lenders(&mut store, opts.instance, &lenders);
        Ok(core)
    });
    crate::dispatch::suspend_or_block(store, fut, complete, results)
}

/// Adapter helper before the callee runs: lift from the caller, enter the
/// callee, lower into it; returns the callee's core arguments.
pub(crate) fn adapter_lower_args<T>(
    mut store: StoreContextMut<'_, StoreData<T>>,
    callee: &Lifted,
    caller_opts: &Options,
    params: &[wasmi::Val],
    results: &mut [wasmi::Val],
) -> Result<(), wasmi::Error> {
    check_may_leave(&store, caller_opts.instance)?;
    let (args, lenders) = lift_args(&mut store, &callee.ty, caller_opts, params, Site::Adapter, false)?;
    let (core_args, frame) = lift_enter(&mut store, callee, Some(caller_opts.instance), Site::Adapter, |cx| {
        lower_args(cx, &callee.ty, &args)
    })?;
    for (slot, v) in results.iter_mut().zip(core_args) {
        *slot = v;
    }
    store.data_mut().rt.frames.push(AdapterFrame { frame, lenders });
    Ok(())
}

/// Adapter helper after the callee returned: lift its results, lower them
/// into the caller, run post-return and leave.
pub(crate) fn adapter_lower_results<T>(
    mut store: StoreContextMut<'_, StoreData<T>>,
    callee: &Lifted,
    caller_opts: &Options,
    params: &[wasmi::Val],
    results: &mut [wasmi::Val],
) -> Result<(), wasmi::Error> {
    let AdapterFrame { frame, lenders } = store
        .data_mut()
        .rt
        .frames
        .pop()
        .ok_or_else(|| trap!("adapter frame missing"))?;
    let core_results = &params[..callee.core_results.len()];
    let retptr = params.get(callee.core_results.len()).map(|p| from_wasmi_val(p) as u32);
    let vals = lift_return(&mut store, callee, &frame, core_results, Site::Adapter, |cx, vi| {
        lift_results(cx, &callee.ty, vi)
    })?;
    lower_results(
        &mut store,
        &callee.ty,
        caller_opts,
        &vals,
        retptr,
        results,
        Site::Adapter,
    )?;
    lift_finish(&mut store, callee, frame, core_results)?;
    release_lenders(&mut store, caller_opts.instance, &lenders);
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
    state.handles.add(crate::canon::handles::Handle {
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
    crate::canon::handles::check_type(i, h, rt)?;
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
    crate::canon::handles::check_type(i, h, rt)?;
    if h.num_lends != 0 {
        return Err(trap!("cannot remove owned resource while borrowed").into());
    }
    let h = state.handles.remove(i)?;
    if !h.own {
        // The task may be gone if a trap unwound it; then nothing to count.
        if let Some(task) = h.borrow_scope.and_then(|t| store.data_mut().rt.tasks.get_mut(t)) {
            task.num_borrows = task.num_borrows.saturating_sub(1);
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
            enter(store, *instance, caller)?;
            if let Some(dtor) = dtor {
                nested(store, |store| {
                    dtor.call(store.as_context_mut(), &[wasmi::Val::I32(rep as i32)], &mut [])
                })?;
            }
            leave(store, *instance, caller);
        }
        ResourceKind::Host { dtor } => {
            if let Some(d) = dtor.as_ref().and_then(|d| d.downcast_ref::<HostDtor<T>>()) {
                guarded(|| d(StoreCx(store.as_context_mut()), rep))?;
            }
        }
    }
    Ok(())
}
