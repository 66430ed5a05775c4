//! The instantiator: replays a component's items in section order, keeping
//! per-instance index spaces, as the spec's linking semantics describe.
//! Nested components are instantiated recursively at runtime.

use super::adapter::{AdapterCache, AdapterShape};
use super::calls::{
    adapter_lower_args, adapter_lower_results, call_host_lowered, call_host_lowered_async, core_type,
    lowered_core_type, resource_drop, resource_new, resource_rep,
};
use super::func::{ComponentValue, Export, FuncDef, InstanceValue, Lifted, Outer};
use super::host::{HostImports, HostInstance};
use super::matching::check_module;
use super::names::split_version;
use super::parse::{ComponentDef, Item};
use super::rewrite::START_EXPORT;
use super::typeconv::{func_type, Bindings};
use crate::canon::handles::InstanceState;
use crate::canon::state::StoreData;
use crate::canon::trap::from_wasmi;
use crate::canon::{Options, StringEncoding};
use crate::dispatch::{drive, Timeout};
use crate::values::ResourceType;
use anyhow::{anyhow, bail, Context, Result};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;
use wasmi::{AsContextMut, Caller, Extern, StoreContextMut};
use wasmparser::component_types::{ComponentAnyTypeId, ComponentEntityType, ComponentInstanceTypeId};
use wasmparser::types::Types;
use wasmparser::{CanonicalOption, ComponentExternalKind, ComponentOuterAliasKind, ComponentTypeRef, ExternalKind};

enum CoreInstance {
    Real(wasmi::Instance),
    Exports(Vec<(String, Extern)>),
}

enum Imports<'a, T> {
    /// The root's: resolved ahead ([`resolve_imports`]) as far as they
    /// could be, the rest from the host.
    Host(&'a (dyn HostImports<T> + Sync), &'a Resolved<T>),
    /// A nested component's: its instantiation arguments.
    Args(HashMap<String, Export<T>>),
}

/// A root component's imports resolved against a host once, for any number
/// of instantiations (`crate::InstancePre`): what the host gives each of
/// the first imports, and the resource types they bind.
pub(crate) struct Resolved<T> {
    imports: Vec<Export<T>>,
    bindings: Bindings,
}

/// The index spaces of one component instance while it is being built.
struct Scope<T> {
    id: usize,
    core_funcs: Vec<wasmi::Func>,
    core_tables: Vec<wasmi::Table>,
    core_memories: Vec<wasmi::Memory>,
    core_globals: Vec<wasmi::Global>,
    core_modules: Vec<wasmi::Module>,
    core_instances: Vec<CoreInstance>,
    funcs: Vec<Arc<FuncDef<T>>>,
    components: Vec<ComponentValue>,
    instances: Vec<Arc<InstanceValue<T>>>,
    bindings: Bindings,
    exports: Vec<(String, Export<T>)>,
    /// Imports seen so far.
    imported: usize,
}

impl<T> Scope<T> {
    fn new(id: usize, bindings: Bindings) -> Self {
        Scope {
            id,
            core_funcs: Vec::new(),
            core_tables: Vec::new(),
            core_memories: Vec::new(),
            core_globals: Vec::new(),
            core_modules: Vec::new(),
            core_instances: Vec::new(),
            funcs: Vec::new(),
            components: Vec::new(),
            instances: Vec::new(),
            bindings,
            exports: Vec::new(),
            imported: 0,
        }
    }
}

fn at<'v, V>(v: &'v [V], i: u32, what: &str) -> Result<&'v V> {
    v.get(i as usize)
        .ok_or_else(|| anyhow!("{what} index {i} out of bounds"))
}

/// Resolves the imports at the head of a root component's items against
/// `host`, for [`instantiate_root`]: tools put the imports first, with
/// aliases of the imported instances' types between them. An import after
/// an item made per instance (a guest's resource type, a core instance, a
/// nested component's instance) may name what that item binds, so it is
/// resolved at instantiation instead.
///
/// # Errors
/// As instantiation would give for the first import the host cannot
/// provide.
pub(crate) fn resolve_imports<T: 'static>(def: &ComponentDef, host: &dyn HostImports<T>) -> Result<Resolved<T>> {
    let mut s = Scope::new(0, HashMap::new());
    let mut imports = Vec::new();
    for item in &def.items {
        match item {
            Item::Import { name, ty, type_index } => {
                let e = import_from_host(host, name, &def.types, &mut s)?;
                push_item(&mut s, &def.types, ty.kind(), e.clone(), *type_index)?;
                imports.push(e);
            }
            // While every instance is an import (the host's), an alias of
            // one of its exports is the same in every instantiation: tools
            // alias each interface's resource types before the next import.
            Item::Alias { .. } => alias(&mut s, &def.types, item)?,
            // Definitions made the same way for every instance.
            Item::Module(_)
            | Item::Component(_)
            | Item::OuterAlias {
                kind: ComponentOuterAliasKind::Type | ComponentOuterAliasKind::CoreType,
                ..
            } => {}
            _ => break,
        }
    }
    Ok(Resolved {
        imports,
        bindings: s.bindings,
    })
}

/// Instantiates a root component, its imports `resolved` ahead and the
/// rest resolved against `host`; returns the new component instance's id
/// and exports. Start functions run through the dispatcher: fuel-sliced,
/// and stopped by the store's deadline, which instantiation itself also
/// checks as it goes.
pub(crate) async fn instantiate_root<T: Send + 'static>(
    store: &mut StoreContextMut<'_, StoreData<T>>,
    def: &Arc<ComponentDef>,
    adapters: &AdapterCache,
    host: &(dyn HostImports<T> + Sync),
    resolved: &Resolved<T>,
) -> Result<(usize, InstanceValue<T>)> {
    let value = ComponentValue {
        def: def.clone(),
        outer: None,
    };
    instantiate(store, &value, Imports::Host(host, resolved), None, adapters).await
}

type Instantiating<'a, T> = Pin<Box<dyn Future<Output = Result<(usize, InstanceValue<T>)>> + Send + 'a>>;

fn instantiate<'a, 's: 'a, T: Send + 'static>(
    store: &'a mut StoreContextMut<'s, StoreData<T>>,
    comp: &'a ComponentValue,
    imports: Imports<'a, T>,
    parent: Option<usize>,
    adapters: &'a AdapterCache,
) -> Instantiating<'a, T> {
    Box::pin(async move {
        let id = store.data().rt.instances.len();
        let most = store.data().limiter.limits.component_instances;
        if id >= most {
            bail!("too many component instances in one store (the limit is {most})");
        }
        let handles = store.data().limiter.limits.handles;
        store.data_mut().rt.instances.push(InstanceState::new(parent, handles));
        let bindings = match &imports {
            Imports::Host(_, resolved) => resolved.bindings.clone(),
            Imports::Args(_) => HashMap::new(),
        };
        let mut s = Scope::new(id, bindings);
        let types = &comp.def.types;
        for item in &comp.def.items {
            if store.data().rt.deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(anyhow::Error::new(Timeout).context("while instantiating"));
            }
            match item {
                Item::CoreInstantiate { module, args } => {
                    let inst = core_instantiate(store, &s, *module, args)?;
                    s.core_instances.push(CoreInstance::Real(inst));
                    record_core_state(store, &inst);
                    if let Some(start) = inst.get_func(&*store, START_EXPORT) {
                        drive(store, &start, &[], &mut []).await.map_err(from_wasmi)?;
                    }
                }
                Item::Instantiate { component, args } => {
                    let c = at(&s.components, *component, "component")?.clone();
                    let mut map = HashMap::new();
                    for (name, kind, index) in args {
                        map.insert(name.clone(), item_at(&s, types, *kind, *index)?);
                    }
                    let (_, iv) = instantiate(store, &c, Imports::Args(map), Some(s.id), adapters).await?;
                    push_instance(&mut s, types, Arc::new(iv));
                    // A large tree of instances shares the thread with others.
                    futures_lite::future::yield_now().await;
                }
                item => step(store, comp, &imports, &mut s, types, item, adapters)?,
            }
        }
        Ok((id, InstanceValue { exports: s.exports }))
    })
}

/// Notes the instance's memories and mutable globals in the store, for
/// snapshots (`runtime::snapshot`).
pub(crate) fn record_core_state<T>(store: &mut StoreContextMut<'_, StoreData<T>>, inst: &wasmi::Instance) {
    use super::rewrite::{GLOBAL_EXPORT, MEMORY_EXPORT, UNRESETTABLE_EXPORT};
    let mut state = Vec::new();
    let mut unresettable = false;
    for export in inst.exports(&*store) {
        let name = export.name();
        if name.starts_with(MEMORY_EXPORT) || name.starts_with(GLOBAL_EXPORT) {
            state.push(export.into_extern());
        } else if name == UNRESETTABLE_EXPORT {
            unresettable = true;
        }
    }
    let rt = &mut store.data_mut().rt;
    rt.core_state.extend(state);
    rt.unresettable |= unresettable;
}

/// A core instance of module `module` with the named instances `args` as
/// its imports, before its start function runs.
fn core_instantiate<T: 'static>(
    store: &mut StoreContextMut<'_, StoreData<T>>,
    s: &Scope<T>,
    module: u32,
    args: &[(String, u32)],
) -> Result<wasmi::Instance> {
    let m = at(&s.core_modules, module, "core module")?.clone();
    let mut externs = Vec::new();
    for imp in m.imports() {
        if super::memories::is_provided(&imp) {
            let wasmi::ExternType::Memory(ty) = imp.ty() else {
                bail!("internal: a provided import that is not a memory");
            };
            externs.push(Extern::Memory(super::memories::provide(store, *ty)?));
            continue;
        }
        let (_, inst) = args.iter().find(|(n, _)| n == imp.module()).ok_or_else(|| {
            anyhow!(
                "core instantiation: no instance given for import module `{}`",
                imp.module()
            )
        })?;
        let inst = at(&s.core_instances, *inst, "core instance")?;
        let e = core_export(store, inst, imp.name()).ok_or_else(|| {
            anyhow!(
                "core instantiation: import `{}::{}` is not provided",
                imp.module(),
                imp.name()
            )
        })?;
        externs.push(e);
    }
    let instance = wasmi::Instance::new(store.as_context_mut(), &m, &externs).map_err(from_wasmi)?;
    let memories: Vec<wasmi::Memory> = externs.iter().filter_map(|e| e.into_memory()).collect();
    super::memories::bind(store, &instance, &memories)?;
    Ok(instance)
}

fn step<T: 'static>(
    store: &mut StoreContextMut<'_, StoreData<T>>,
    comp: &ComponentValue,
    imports: &Imports<'_, T>,
    s: &mut Scope<T>,
    types: &Types,
    item: &Item,
    adapters: &AdapterCache,
) -> Result<()> {
    match item {
        Item::Module(m) => s.core_modules.push(m.clone()),
        Item::Component(def) => {
            let outer = Arc::new(Outer {
                modules: s.core_modules.clone(),
                components: s.components.clone(),
                parent: comp.outer.clone(),
            });
            s.components.push(ComponentValue {
                def: def.clone(),
                outer: Some(outer),
            });
        }
        Item::CoreFromExports(exports) => {
            let mut items = Vec::new();
            for (name, kind, index) in exports {
                items.push((name.clone(), core_item(s, *kind, *index)?));
            }
            s.core_instances.push(CoreInstance::Exports(items));
        }
        Item::CoreAlias { kind, instance, name } => {
            let inst = at(&s.core_instances, *instance, "core instance")?;
            let e = core_export(store, inst, name).ok_or_else(|| anyhow!("core instance has no export `{name}`"))?;
            match (kind, e) {
                (ExternalKind::Func, Extern::Func(f)) => s.core_funcs.push(f),
                (ExternalKind::Table, Extern::Table(t)) => s.core_tables.push(t),
                (ExternalKind::Memory, Extern::Memory(m)) => s.core_memories.push(m),
                (ExternalKind::Global, Extern::Global(g)) => s.core_globals.push(g),
                (k, _) => bail!("core export `{name}` is not a {k:?}"),
            }
        }
        Item::Alias { .. } => alias(s, types, item)?,
        Item::OuterAlias { kind, count, index } => match kind {
            ComponentOuterAliasKind::CoreModule => {
                let m = if *count == 0 {
                    at(&s.core_modules, *index, "core module")?.clone()
                } else {
                    at(&outer_scope(comp, *count)?.modules, *index, "core module")?.clone()
                };
                s.core_modules.push(m);
            }
            ComponentOuterAliasKind::Component => {
                let c = if *count == 0 {
                    at(&s.components, *index, "component")?.clone()
                } else {
                    at(&outer_scope(comp, *count)?.components, *index, "component")?.clone()
                };
                s.components.push(c);
            }
            // Types need no runtime value (resources cannot be outer-aliased).
            ComponentOuterAliasKind::Type | ComponentOuterAliasKind::CoreType => {}
        },
        Item::Lift {
            core_func,
            type_index,
            options,
        } => {
            let ComponentAnyTypeId::Func(fid) = types.component_any_type_at(*type_index) else {
                bail!("canon lift: type {type_index} is not a function type");
            };
            let ty = func_type(types, fid, &s.bindings)?;
            let (core_params, core_results) = crate::canon::layout::flatten_functype(&ty, false);
            let core = *at(&s.core_funcs, *core_func, "core func")?;
            let opts = options_of(s, options)?;
            s.funcs.push(Arc::new(FuncDef::Lifted(Lifted {
                core_params,
                core_results,
                ty,
                core,
                opts,
            })));
        }
        Item::Lower { func, options } => {
            let callee = at(&s.funcs, *func, "func")?.clone();
            let opts = options_of(s, options)?;
            let f = match &*callee {
                FuncDef::Host { ty, func } if func.async_.is_some() => {
                    let compact = func.compact_bytes;
                    let (ty, func) = (Arc::new(ty.clone()), func.async_.clone().expect("checked"));
                    wasmi::Func::new(
                        store.as_context_mut(),
                        lowered_core_type(&ty),
                        move |mut caller: Caller<'_, StoreData<T>>, params, results| {
                            call_host_lowered_async(
                                caller.as_context_mut(),
                                &ty,
                                &func,
                                &opts,
                                (params, compact),
                                results,
                            )
                        },
                    )
                }
                FuncDef::Host { ty, func } => match &func.typed {
                    // The guest imports it at exactly its Rust signature: no `Val`s.
                    Some(t) if ty.param_types().eq(t.params.iter()) && ty.result == t.result => {
                        (t.lower)(store.as_context_mut(), opts)
                    }
                    _ => {
                        let compact = func.compact_bytes;
                        let (ty, func) = (ty.clone(), func.dynamic.clone());
                        wasmi::Func::new(
                            store.as_context_mut(),
                            lowered_core_type(&ty),
                            move |mut caller: Caller<'_, StoreData<T>>, params, results| {
                                call_host_lowered(
                                    caller.as_context_mut(),
                                    &ty,
                                    &func,
                                    &opts,
                                    (params, compact),
                                    results,
                                )
                            },
                        )
                    }
                },
                FuncDef::Lifted(_) => adapter(store, adapters, callee.clone(), opts)?,
            };
            s.core_funcs.push(f);
        }
        Item::ResourceNew(t) => {
            let (rt, inst) = (resource_at(s, types, *t)?, s.id);
            let f = wasmi::Func::wrap(
                store.as_context_mut(),
                move |mut caller: Caller<'_, StoreData<T>>, rep: i32| {
                    resource_new(caller.as_context_mut(), inst, &rt, rep as u32)
                        .map(|i| i as i32)
                        .map_err(wasmi::Error::from)
                },
            );
            s.core_funcs.push(f);
        }
        Item::ResourceRep(t) => {
            let (rt, inst) = (resource_at(s, types, *t)?, s.id);
            let f = wasmi::Func::wrap(
                store.as_context_mut(),
                move |mut caller: Caller<'_, StoreData<T>>, i: i32| {
                    resource_rep(caller.as_context_mut(), inst, &rt, i as u32)
                        .map(|r| r as i32)
                        .map_err(wasmi::Error::from)
                },
            );
            s.core_funcs.push(f);
        }
        Item::ResourceDrop(t) => {
            let (rt, inst) = (resource_at(s, types, *t)?, s.id);
            let f = wasmi::Func::wrap(
                store.as_context_mut(),
                move |mut caller: Caller<'_, StoreData<T>>, i: i32| {
                    resource_drop(caller.as_context_mut(), inst, &rt, i as u32)
                },
            );
            s.core_funcs.push(f);
        }
        Item::ResourceType { index, dtor } => {
            let dtor = dtor.map(|d| at(&s.core_funcs, d, "core func").copied()).transpose()?;
            let rt = ResourceType::guest("resource", s.id, dtor);
            bind_type(types, *index, &rt, &mut s.bindings);
        }
        Item::Import { name, ty, type_index } => {
            let e = match imports {
                Imports::Host(host, resolved) => match resolved.imports.get(s.imported) {
                    Some(e) => e.clone(),
                    None => import_from_host(*host, name, types, s)?,
                },
                Imports::Args(args) => {
                    let e = args
                        .get(name)
                        .ok_or_else(|| anyhow!("missing instantiation argument `{name}`"))?
                        .clone();
                    if let (ComponentTypeRef::Instance(t), Export::Instance(iv)) = (ty, &e) {
                        if let ComponentAnyTypeId::Instance(id) = types.component_any_type_at(*t) {
                            bind_instance(types, id, iv, &mut s.bindings);
                        }
                    }
                    e
                }
            };
            s.imported += 1;
            push_item(s, types, ty.kind(), e, *type_index)?;
        }
        Item::Export {
            name,
            kind,
            index,
            type_index,
        } => {
            let e = item_at(s, types, *kind, *index)?;
            s.exports.push((name.clone(), e.clone()));
            push_item(s, types, *kind, e, *type_index)?;
        }
        Item::FromExports(exports) => {
            let mut iv = InstanceValue { exports: Vec::new() };
            for (name, kind, index) in exports {
                iv.exports.push((name.clone(), item_at(s, types, *kind, *index)?));
            }
            push_instance(s, types, Arc::new(iv));
        }
        Item::CoreInstantiate { .. } | Item::Instantiate { .. } => bail!("internal: instantiated above"),
    }
    Ok(())
}

/// Builds the core function a caller imports for a function lifted by another
/// component: an instance of the generated adapter module (see
/// [`super::adapter`]).
fn adapter<T: 'static>(
    store: &mut StoreContextMut<'_, StoreData<T>>,
    adapters: &AdapterCache,
    callee: Arc<FuncDef<T>>,
    opts: Options,
) -> Result<wasmi::Func> {
    let FuncDef::Lifted(l) = &*callee else {
        bail!("internal: adapter for a host function");
    };
    let shape = AdapterShape::of(&l.ty);
    let engine = store.engine().clone();
    let module = adapters.module(&engine, &shape).map_err(from_wasmi)?;
    let core = l.core;
    let (c1, o1) = (callee.clone(), opts.clone());
    let lower_args = wasmi::Func::new(
        store.as_context_mut(),
        core_type(&shape.lower.0, &shape.lift.0),
        move |mut caller: Caller<'_, StoreData<T>>, params, results| match &*c1 {
            FuncDef::Lifted(l) => adapter_lower_args(caller.as_context_mut(), l, &o1, params, results),
            FuncDef::Host { .. } => unreachable!("adapters join lifted functions"),
        },
    );
    let (c2, o2) = (callee.clone(), opts);
    let lower_results = wasmi::Func::new(
        store.as_context_mut(),
        core_type(&shape.results_helper_params(), &shape.lower.1),
        move |mut caller: Caller<'_, StoreData<T>>, params, results| match &*c2 {
            FuncDef::Lifted(l) => adapter_lower_results(caller.as_context_mut(), l, &o2, params, results),
            FuncDef::Host { .. } => unreachable!("adapters join lifted functions"),
        },
    );
    let inst = wasmi::Instance::new(
        store.as_context_mut(),
        &module,
        &[
            Extern::Func(core),
            Extern::Func(lower_args),
            Extern::Func(lower_results),
        ],
    )
    .map_err(from_wasmi)?;
    inst.get_func(&*store, "adapter")
        .ok_or_else(|| anyhow!("internal: adapter export missing"))
}

/// `Item::Alias`: adds an export of an instance in scope to its index space.
fn alias<T>(s: &mut Scope<T>, types: &Types, item: &Item) -> Result<()> {
    let Item::Alias {
        kind,
        instance,
        name,
        type_index,
    } = item
    else {
        bail!("internal: not an alias");
    };
    let inst = at(&s.instances, *instance, "instance")?.clone();
    let e = inst
        .get(name)
        .ok_or_else(|| anyhow!("instance has no export `{name}`"))?
        .clone();
    push_item(s, types, *kind, e, *type_index)
}

fn outer_scope(comp: &ComponentValue, count: u32) -> Result<&Outer> {
    let mut o = comp
        .outer
        .as_deref()
        .ok_or_else(|| anyhow!("outer alias beyond the root"))?;
    for _ in 1..count {
        o = o
            .parent
            .as_deref()
            .ok_or_else(|| anyhow!("outer alias beyond the root"))?;
    }
    Ok(o)
}

fn core_export<T>(store: &StoreContextMut<'_, StoreData<T>>, inst: &CoreInstance, name: &str) -> Option<Extern> {
    match inst {
        CoreInstance::Real(i) => i.get_export(store, name),
        CoreInstance::Exports(items) => items.iter().find(|(n, _)| n == name).map(|(_, e)| *e),
    }
}

fn core_item<T>(s: &Scope<T>, kind: ExternalKind, index: u32) -> Result<Extern> {
    Ok(match kind {
        ExternalKind::Func => Extern::Func(*at(&s.core_funcs, index, "core func")?),
        ExternalKind::Table => Extern::Table(*at(&s.core_tables, index, "core table")?),
        ExternalKind::Memory => Extern::Memory(*at(&s.core_memories, index, "core memory")?),
        ExternalKind::Global => Extern::Global(*at(&s.core_globals, index, "core global")?),
        k => bail!("unsupported core export kind {k:?}"),
    })
}

fn item_at<T>(s: &Scope<T>, types: &Types, kind: ComponentExternalKind, index: u32) -> Result<Export<T>> {
    Ok(match kind {
        ComponentExternalKind::Func => Export::Func(at(&s.funcs, index, "func")?.clone()),
        ComponentExternalKind::Instance => Export::Instance(at(&s.instances, index, "instance")?.clone()),
        ComponentExternalKind::Module => Export::Module(at(&s.core_modules, index, "core module")?.clone()),
        ComponentExternalKind::Component => Export::Component(at(&s.components, index, "component")?.clone()),
        ComponentExternalKind::Type => Export::Type(type_value(s, types, index)),
        ComponentExternalKind::Value => bail!("unsupported: component-model values"),
    })
}

/// The runtime resource type at a type index, if it is a bound resource.
fn type_value<T>(s: &Scope<T>, types: &Types, index: u32) -> Option<ResourceType> {
    match types.component_any_type_at(index) {
        ComponentAnyTypeId::Resource(r) => s.bindings.get(&r.resource()).cloned(),
        _ => None,
    }
}

fn resource_at<T>(s: &Scope<T>, types: &Types, index: u32) -> Result<ResourceType> {
    type_value(s, types, index).ok_or_else(|| anyhow!("type {index} is not a bound resource type"))
}

fn bind_type(types: &Types, index: u32, rt: &ResourceType, b: &mut Bindings) {
    if let ComponentAnyTypeId::Resource(r) = types.component_any_type_at(index) {
        b.insert(r.resource(), rt.clone());
    }
}

/// Binds the resource ids of an instance type to the runtime types the
/// instance value exports under the same names.
fn bind_instance<T>(types: &Types, id: ComponentInstanceTypeId, iv: &InstanceValue<T>, b: &mut Bindings) {
    for (name, item) in types[id].exports.iter() {
        match (item.ty, iv.get(name)) {
            (ComponentEntityType::Type { referenced, created }, Some(Export::Type(Some(rt)))) => {
                for any in [referenced, created] {
                    if let ComponentAnyTypeId::Resource(r) = any {
                        b.insert(r.resource(), rt.clone());
                    }
                }
            }
            (ComponentEntityType::Instance(sub), Some(Export::Instance(sub_iv))) => {
                bind_instance(types, sub, sub_iv, b)
            }
            _ => {}
        }
    }
}

/// Whether an imported instance of this type needs the host: it exports a
/// function, a resource type or an instance that does. Plain types (records,
/// enums, ...) are the guest's own definitions, not capabilities.
pub(crate) fn needs_host(types: &Types, itype: &wasmparser::component_types::ComponentInstanceType) -> bool {
    itype.exports.values().any(|item| match item.ty {
        ComponentEntityType::Type { created, .. } => matches!(created, ComponentAnyTypeId::Resource(_)),
        ComponentEntityType::Instance(sub) => needs_host(types, &types[sub]),
        _ => true,
    })
}

/// Adds an item to its index space (imports, aliases and exports all do).
fn push_item<T>(
    s: &mut Scope<T>,
    types: &Types,
    kind: ComponentExternalKind,
    e: Export<T>,
    type_index: Option<u32>,
) -> Result<()> {
    match (kind, e) {
        (ComponentExternalKind::Func, Export::Func(f)) => s.funcs.push(f),
        (ComponentExternalKind::Instance, Export::Instance(i)) => push_instance(s, types, i),
        (ComponentExternalKind::Module, Export::Module(m)) => s.core_modules.push(m),
        (ComponentExternalKind::Component, Export::Component(c)) => s.components.push(c),
        (ComponentExternalKind::Type, Export::Type(rt)) => {
            if let (Some(rt), Some(index)) = (rt, type_index) {
                bind_type(types, index, &rt, &mut s.bindings);
            }
        }
        (kind, _) => bail!("item is not a {}", kind.desc()),
    }
    Ok(())
}

fn push_instance<T>(s: &mut Scope<T>, types: &Types, iv: Arc<InstanceValue<T>>) {
    let index = s.instances.len() as u32;
    bind_instance(types, types.component_instance_at(index), &iv, &mut s.bindings);
    s.instances.push(iv);
}

fn options_of<T>(s: &Scope<T>, options: &[CanonicalOption]) -> Result<Options> {
    let mut o = Options {
        instance: s.id,
        ..Options::default()
    };
    for opt in options {
        match opt {
            CanonicalOption::UTF8 => o.encoding = StringEncoding::Utf8,
            CanonicalOption::UTF16 => o.encoding = StringEncoding::Utf16,
            CanonicalOption::CompactUTF16 => o.encoding = StringEncoding::CompactUtf16,
            CanonicalOption::Memory(i) => o.memory = Some(*at(&s.core_memories, *i, "core memory")?),
            CanonicalOption::Realloc(i) => o.realloc = Some(*at(&s.core_funcs, *i, "core func")?),
            CanonicalOption::PostReturn(i) => o.post_return = Some(*at(&s.core_funcs, *i, "core func")?),
            CanonicalOption::CoreType(_) => {}
            other => bail!("unsupported canonical option {other:?}"),
        }
    }
    Ok(o)
}

/// Resolves a root import against the host. Errors name the import and the
/// type the guest expects.
fn import_from_host<T: 'static>(
    linker: &dyn HostImports<T>,
    name: &str,
    types: &Types,
    s: &mut Scope<T>,
) -> Result<Export<T>> {
    let Some(item) = types.component_item_for_import(name) else {
        bail!("internal: no type for import `{name}`");
    };
    let root = linker.root();
    // At the root, interfaces are looked up by (semver) name.
    let kind_at_root = |name: &str| root.kind_of(name).or(linker.lookup(name).map(|_| "instance"));
    match item.ty {
        ComponentEntityType::Instance(id) if needs_host(types, &types[id]) => {
            let host = linker.lookup(name).ok_or_else(|| match root.kind_of(name) {
                Some(kind) => anyhow!("import `{name}`: expected instance found {kind}"),
                None => anyhow!(
                    "import `{name}` was not found in the host: expected an instance{}",
                    version_hint(linker, name)
                ),
            })?;
            host_instance(host, name, id, types, s)
        }
        ty => {
            if let (Some(kind), Some(want)) = (kind_at_root(name), kind_word(&ty)) {
                if kind == "instance" && want != "instance" {
                    bail!("import `{name}`: expected {want} found instance");
                }
            }
            host_item(root, name, name, ty, types, s)
        }
    }
}

/// How wasmtime's linker names what an import expects, in mismatch errors.
fn kind_word(ty: &ComponentEntityType) -> Option<&'static str> {
    Some(match ty {
        ComponentEntityType::Func(_) => "function",
        ComponentEntityType::Instance(_) => "instance",
        ComponentEntityType::Module(_) => "module",
        ComponentEntityType::Component(_) => "component",
        ComponentEntityType::Type {
            created: ComponentAnyTypeId::Resource(_),
            ..
        } => "resource",
        _ => return None,
    })
}

fn version_hint<T>(linker: &dyn HostImports<T>, name: &str) -> String {
    let similar: Vec<&str> = linker
        .names()
        .into_iter()
        .filter(|n| split_version(n).0 == split_version(name).0)
        .collect();
    if similar.is_empty() {
        String::new()
    } else {
        format!(" (the host has {}, which is not semver-compatible)", similar.join(", "))
    }
}

/// The exports of a host instance at the instance type the guest imports.
fn host_instance<T: 'static>(
    host: &HostInstance<T>,
    path: &str,
    id: ComponentInstanceTypeId,
    types: &Types,
    s: &mut Scope<T>,
) -> Result<Export<T>> {
    let mut exports = Vec::new();
    // In export order: a resource type precedes the functions using it.
    for (ename, item) in types[id].exports.iter() {
        let e = host_item(host, &format!("{path}#{ename}"), ename, item.ty, types, s)?;
        exports.push((ename.clone(), e));
    }
    Ok(Export::Instance(Arc::new(InstanceValue { exports })))
}

/// One item of a host instance (or the root), named `name` there and
/// `path` in messages (`iface#item`), at the type `ty` the guest expects.
fn host_item<T: 'static>(
    host: &HostInstance<T>,
    path: &str,
    name: &str,
    ty: ComponentEntityType,
    types: &Types,
    s: &mut Scope<T>,
) -> Result<Export<T>> {
    let missing = |want: &str| match (host.kind_of(name), kind_word(&ty)) {
        (Some(kind), Some(word)) => anyhow!("import `{path}`: expected {word} found {kind}"),
        _ => anyhow!("import `{path}` was not found in the host: expected {want}"),
    };
    Ok(match ty {
        ComponentEntityType::Func(fid) => {
            let fty = func_type(types, fid, &s.bindings).with_context(|| format!("import `{path}`"))?;
            let func = host
                .funcs
                .get(name)
                .ok_or_else(|| missing(&format!("a function of type {fty}")))?;
            Export::Func(Arc::new(FuncDef::Host {
                ty: fty,
                func: func.clone(),
            }))
        }
        ComponentEntityType::Type { referenced, created } => {
            let ids: Vec<_> = [referenced, created]
                .into_iter()
                .filter_map(|any| match any {
                    ComponentAnyTypeId::Resource(r) => Some(r.resource()),
                    _ => None,
                })
                .collect();
            if ids.is_empty() {
                return Ok(Export::Type(None));
            }
            // A type given with `(eq ..)` to an earlier import (WIT `use`)
            // is already bound; the host must then not name another type.
            let bound = ids.iter().find_map(|r| s.bindings.get(r).cloned());
            let rt = match (bound, host.resources.get(name)) {
                (Some(b), Some(h)) if b != *h => bail!("import `{path}`: mismatched resource types"),
                (Some(b), _) => b,
                (None, Some(h)) => h.clone(),
                (None, None) => return Err(missing("a resource type")),
            };
            for r in ids {
                s.bindings.insert(r, rt.clone());
            }
            Export::Type(Some(rt))
        }
        ComponentEntityType::Instance(id) => {
            if !needs_host(types, &types[id]) {
                // An empty instance, or one exporting only plain types (a
                // WIT interface of type definitions): nothing to provide,
                // unless the name is something else.
                if let Some(kind) = host.kind_of(name).filter(|k| *k != "instance") {
                    bail!("import `{path}`: expected instance found {kind}");
                }
                let exports = types[id]
                    .exports
                    .keys()
                    .map(|n| (n.clone(), Export::Type(None)))
                    .collect();
                return Ok(Export::Instance(Arc::new(InstanceValue { exports })));
            }
            let sub = host.instances.get(name).ok_or_else(|| missing("an instance"))?;
            host_instance(sub, path, id, types, s)?
        }
        ComponentEntityType::Module(mid) => {
            let module = host.modules.get(name).ok_or_else(|| missing("a core module"))?;
            check_module(types, &types[mid], module).with_context(|| format!("import `{path}`"))?;
            Export::Module(module.clone())
        }
        ComponentEntityType::Component(_) => bail!("import `{path}`: the host cannot provide a component"),
        ComponentEntityType::Value(_) => bail!("unsupported: component-model values (import `{path}`)"),
    })
}
