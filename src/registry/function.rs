//! `function.wasm` / `function.wat` entries: loading (the code, its hash,
//! one compiled component per distinct binary, the import check, the
//! method's type), warm instances, and calls on the entry's pool — on the
//! caller's executor, or on the entry's own worker threads.

use super::chain::Chain;
use super::config::{Entry, FunctionSpec};
use super::files;
use super::imports::{self, Grants};
use super::{CallCtx, Inner, Registry};
use crate::component::wrap::{componentize_core, imports_preview1, is_core_module};
use crate::pool::workers::WorkerPool;
use crate::pool::Pool;
use crate::values::FuncType;
use crate::{Component, CoreModule, Func, InstancePre, Store, Val};
use anyhow::{anyhow, Context, Result};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Weak};
use std::time::Instant;

/// A loaded, checked function entry.
pub struct Function {
    pub id: String,
    pub spec: FunctionSpec,
    pub file: PathBuf,
    code: Code,
    /// The method's type (`None` if it involves resources, which JSON and
    /// `funcs` cannot carry).
    pub(super) ty: Option<FuncType>,
    pub(super) pool: Pool<Warm>,
    /// `pool.worker_class`: the threads its calls run on.
    workers: Option<WorkerPool>,
    /// Retire a warm instance whose memory is over the limit, checked
    /// every so many calls.
    retained: Option<(u64, u64)>,
    /// The first instance's snapshot, whose memory images later instances
    /// holding the same share (`pool.fresh_instances`).
    template: std::sync::OnceLock<crate::Snapshot>,
}

/// What an entry runs.
enum Code {
    /// A component, its imports resolved once.
    Component(InstancePre<CallCtx>),
    /// A core module (a wasip1 reactor, or plain wasm) run natively, its
    /// method lifted at the `wit` signature; `wasi_snapshot_preview1`
    /// imports are served by the preview 1 layer, no adapter.
    Core { module: CoreModule, ty: FuncType },
}

/// A warm instance: its store, the method to call, and calls made so far.
pub(super) struct Warm {
    pub store: Store<CallCtx>,
    pub func: Func,
    calls: u64,
    /// With `pool.fresh_instances`: the state after instantiation, to reset
    /// to after each call (`None` if it cannot be reset).
    snapshot: Option<crate::Snapshot>,
}

/// Components and core modules compiled during one load, by the sha256 of
/// their bytes: entries on the same binary share one.
#[derive(Default)]
pub(super) struct Compiled {
    components: HashMap<[u8; 32], Component>,
    /// The components' imports resolved against the registry's linker.
    pres: HashMap<[u8; 32], InstancePre<CallCtx>>,
    cores: HashMap<[u8; 32], CoreModule>,
}

/// Fuel per time slice of a registry call: a busy guest yields to the
/// executor after this much work.
const FUEL_SLICE: u64 = 200_000;

impl Inner {
    /// Reads the code, verifies the hash, loads the component (or reuses
    /// the one compiled from the same bytes) and checks its imports and
    /// the method.
    pub(super) fn prepare(&self, entry: &Entry, spec: &FunctionSpec, compiled: &mut Compiled) -> Result<Function> {
        let (bytes, file_digest) = self.code(entry, spec)?;
        // A core module (binary or text) needs its `wit` signature.
        let text_module = spec.wat
            && std::str::from_utf8(&bytes).is_ok_and(|t| {
                t.trim_start()
                    .trim_start_matches(|c: char| c == '(' || c.is_whitespace())
                    .starts_with("module")
            });
        let mut adapted = false;
        let mut core_module = None;
        let (bytes, digest) = if is_core_module(&bytes) || text_module {
            let core = if text_module {
                wat::parse_bytes(&bytes)
                    .map_err(|e| Self::fail(entry, "source", e))?
                    .into_owned()
            } else {
                bytes
            };
            let Some(wit) = &spec.wit else {
                return Err(Self::fail(
                    entry,
                    "wit",
                    "missing: a core module needs the WIT signature of its exports",
                ));
            };
            adapted = imports_preview1(&core);
            // The module runs natively; the component wrapping it (with the
            // preview1 adapter) is made to check the signature and imports.
            let core_digest: [u8; 32] = Sha256::digest(&core).into();
            core_module = Some(match compiled.cores.get(&core_digest) {
                Some(m) => m.clone(),
                None => {
                    let m = CoreModule::new(&self.engine, &core).map_err(|e| Self::fail(entry, "source", e))?;
                    compiled.cores.insert(core_digest, m.clone());
                    m
                }
            });
            let wrapped = componentize_core(&core, wit).map_err(|e| Self::fail(entry, "wit", format!("{e:#}")))?;
            let digest = Sha256::digest(&wrapped).into();
            (wrapped, digest)
        } else {
            (bytes, file_digest)
        };
        let component = match compiled.components.get(&digest) {
            Some(c) => c.clone(),
            None => {
                let c = Component::new(&self.engine, &bytes)
                    .map_err(|e| Self::fail(entry, if spec.wat { "source" } else { "path" }, format!("{e:#}")))?;
                compiled.components.insert(digest, c.clone());
                c
            }
        };
        self.check_imports(entry, spec, &component, adapted)?;
        // Mounts, variables and the network policy resolve now, so that
        // `check` reports a broken reference rather than the first call.
        self.check_references(&entry.id, spec)?;
        let Some(ty) = export_type(&component, &spec.method) else {
            return Err(Self::fail(
                entry,
                "method",
                format!("the component exports no function `{}`", spec.method),
            ));
        };
        let pool = spec
            .pool
            .config()
            .map_err(|(field, why)| Self::fail(entry, &field, why))?;
        let workers = match &pool.worker_class {
            Some((class, threads)) => {
                Some(WorkerPool::new(class, *threads).map_err(|e| Self::fail(entry, "pool.worker_class", e))?)
            }
            None => None,
        };
        let code = match core_module {
            None => Code::Component(match compiled.pres.get(&digest) {
                Some(pre) => pre.clone(),
                None => {
                    let pre = self
                        .linker
                        .instantiate_pre(&component)
                        .map_err(|e| Self::fail(entry, "imports", format!("{e:#}")))?;
                    compiled.pres.insert(digest, pre.clone());
                    pre
                }
            }),
            Some(module) => {
                let Some(ty) = ty.clone() else {
                    return Err(Self::fail(
                        entry,
                        "wit",
                        "a core module's signature cannot use resources",
                    ));
                };
                Code::Core { module, ty }
            }
        };
        Ok(Function {
            id: entry.id.clone(),
            spec: spec.clone(),
            file: entry.file.clone(),
            code,
            ty,
            pool: Pool::new(pool.kind),
            workers,
            retained: spec.limits().retained_memory(),
            template: std::sync::OnceLock::new(),
        })
    }

    /// The entry's code (the file, hash checked, or the inline source) and
    /// its sha256.
    fn code(&self, entry: &Entry, spec: &FunctionSpec) -> Result<(Vec<u8>, [u8; 32])> {
        if spec.wat {
            let source = spec.source.as_deref().unwrap_or_default();
            let bytes = match source.strip_prefix("file://") {
                Some(rel) => self.registry_file(entry, "source", rel)?.1,
                None => source.as_bytes().to_vec(),
            };
            let digest = Sha256::digest(&bytes).into();
            return Ok((bytes, digest));
        }
        // `path` is inside the `fs.directory` (a leading `/` is its top).
        let dir = self.directory(entry, "fs", spec.fs.as_deref().unwrap_or_default())?;
        let real_dir = dir
            .canonicalize()
            .map_err(|e| Self::fail(entry, "fs", format!("cannot read {}: {e}", dir.display())))?;
        let path = dir.join(spec.path.as_deref().unwrap_or_default().trim_start_matches('/'));
        let bytes = files::within(&real_dir, &path, "its fs.directory")
            .and_then(|real| files::read_capped(&real, files::MAX_CODE_BYTES))
            .map_err(|e| Self::fail(entry, "path", e))?;
        let want = spec
            .hash
            .as_deref()
            .unwrap_or_default()
            .trim_start_matches("sha256:")
            .to_ascii_lowercase();
        let digest: [u8; 32] = Sha256::digest(&bytes).into();
        let got: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        if want != got {
            return Err(Self::fail(
                entry,
                "hash",
                format!("mismatch: expected sha256:{want}, actual sha256:{got}"),
            ));
        }
        Ok((bytes, digest))
    }

    /// Every import the component makes must be granted by `imports:`;
    /// types and type-only instances need nothing.
    fn check_imports(&self, entry: &Entry, spec: &FunctionSpec, component: &Component, adapted: bool) -> Result<()> {
        use wasmparser::component_types::ComponentAnyTypeId;
        use wasmparser::{ComponentTypeRef, TypeBounds};
        let grants = Grants::resolve(&spec.imports, |iface| self.linker.defines(iface))
            .map_err(|e| Self::fail(entry, "imports", e))?;
        let types = component.types();
        for (name, ty) in &component.def.imports {
            let needs_host = match ty {
                ComponentTypeRef::Type(TypeBounds::Eq(_)) => false,
                ComponentTypeRef::Instance(t) => match types.component_any_type_at(*t) {
                    ComponentAnyTypeId::Instance(id) => crate::component::instantiate::needs_host(types, &types[id]),
                    _ => true,
                },
                _ => true,
            };
            if !needs_host || grants.allows(name, adapted) {
                continue;
            }
            let msg = match imports::hint(name, adapted) {
                Some(group) => format!("the component imports `{name}`; add `{group}` to `imports`"),
                None => format!("the component imports `{name}`, which no host provides"),
            };
            return Err(Self::fail(entry, "imports", msg));
        }
        Ok(())
    }
}

impl Inner {
    /// A new instance of `f` with its own store and host state; `registry`
    /// is this registry, for `funcs`. Start functions are sliced and stop
    /// at `deadline`, the deadline of the call the instance is made for.
    pub(super) async fn instantiate(
        &self,
        registry: &Weak<Inner>,
        f: &Function,
        deadline: Option<Instant>,
    ) -> Result<Warm> {
        self.instantiate_in(registry, f, self.wasi_ctx(&f.id, &f.spec)?, deadline)
            .await
    }

    /// A new instance of process `f`: its stdout and stderr are the host's,
    /// and `argv` follows its `wasi.args`.
    pub(super) async fn instantiate_process(
        &self,
        registry: &Weak<Inner>,
        f: &Function,
        argv: &[String],
        deadline: Option<Instant>,
    ) -> Result<Warm> {
        let mut wasi = self.wasi_ctx(&f.id, &f.spec)?;
        wasi.args.extend(argv.iter().cloned());
        let wasi = wasi
            .stdout(crate::wasi::Sink::Inherit)
            .stderr(crate::wasi::Sink::Inherit);
        self.instantiate_in(registry, f, wasi, deadline).await
    }

    async fn instantiate_in(
        &self,
        registry: &Weak<Inner>,
        f: &Function,
        wasi: crate::wasi::WasiCtx,
        deadline: Option<Instant>,
    ) -> Result<Warm> {
        let ctx = CallCtx {
            wasi,
            chain: Default::default(),
            registry: registry.clone(),
        };
        let mut store = Store::new(&self.engine, ctx);
        store.set_fuel_slice(Some(FUEL_SLICE));
        store.set_deadline(deadline);
        if let Some(bytes) = f.spec.limits().memory_bytes() {
            store.set_limits(crate::Limits {
                memory_bytes: bytes as usize,
                ..Default::default()
            });
        }
        let made = match &f.code {
            Code::Component(pre) => pre.instantiate_async(&mut store).await.and_then(|instance| {
                instance
                    .get_func(&store, &f.spec.method)
                    .ok_or_else(|| anyhow!("`{}` exports no function `{}`", f.id, f.spec.method))
            }),
            Code::Core { module, ty } => instantiate_core(&mut store, module, &f.spec.method, ty).await,
        };
        let func = match made {
            Ok(func) => func,
            Err(e) if e.downcast_ref::<crate::dispatch::Timeout>().is_some() => {
                return Err(e.context(format!(
                    "instantiating `{}` ran longer than max_execution_ms ({} ms)",
                    f.id,
                    f.spec.limits().max_execution().unwrap_or_default().as_millis()
                )))
            }
            Err(e) => return Err(e.context(format!("instantiating `{}`", f.id))),
        };
        let snapshot = store.settle(f.spec.pool.fresh_instances, &f.template);
        Ok(Warm {
            store,
            func,
            calls: 0,
            snapshot,
        })
    }

    /// Makes an instance of `f` now (`pool.warm_start`).
    pub(super) fn warm_start(&self, registry: &Weak<Inner>, f: &Function) -> Result<()> {
        let deadline = f.spec.limits().max_execution().map(|d| Instant::now() + d);
        f.pool
            .put_back(crate::dispatch::block_on(self.instantiate(registry, f, deadline))?);
        Ok(())
    }
}

impl Registry {
    /// A new instance of `f`, for a call ending by `deadline`.
    pub(super) async fn warm(&self, f: &Function, deadline: Option<Instant>) -> Result<Warm> {
        self.inner.instantiate(&Arc::downgrade(&self.inner), f, deadline).await
    }

    /// Runs `call` on a warm instance of `f`, on `f`'s worker threads if it
    /// has them (the caller is suspended meanwhile). `reentrant`: a caller
    /// of this call holds one of `f`'s instances, so none may be waited for.
    pub(super) async fn on_instance<R: Send + 'static>(
        &self,
        f: Arc<Function>,
        reentrant: bool,
        deadline: Option<Instant>,
        call: WarmCall<R>,
    ) -> Result<R> {
        let run = {
            let registry = self.clone();
            let renewer = self.clone();
            let f = f.clone();
            async move {
                // A command's `run` may only be called once per instance.
                let reuse = !f.spec.method.starts_with("wasi:cli/run");
                f.pool
                    .with(
                        &f.id,
                        reentrant,
                        async || registry.warm(&f, deadline).await,
                        async |w: &mut Warm| call(w).await,
                        |w, ended| reuse && f.keeps(w) && renewer.renews(&f, w, ended),
                    )
                    .await
            }
        };
        match &f.workers {
            None => run.await,
            Some(workers) => workers.spawn(run).await,
        }
    }

    /// With `pool.fresh_instances`, whether a warm instance could be put
    /// back as fresh, however its call `ended`: its store reset to its
    /// snapshot, its host state new. Without, whether its call returned
    /// (a failed or cancelled one may have left it half-changed).
    fn renews(&self, f: &Function, w: &mut Warm, ended: crate::pool::Ended) -> bool {
        if !f.spec.pool.fresh_instances {
            return ended == crate::pool::Ended::Returned;
        }
        let Some(snapshot) = &w.snapshot else { return false };
        if !w.store.reset(snapshot) {
            return false;
        }
        match self.inner.wasi_ctx(&f.id, &f.spec) {
            Ok(wasi) => {
                let ctx = w.store.data_mut();
                ctx.wasi = wasi;
                ctx.chain = Default::default();
                true
            }
            Err(_) => false,
        }
    }

    /// Calls function entry `f` with dynamic values.
    pub(super) async fn call_wasm(&self, f: Arc<Function>, args: Vec<Val>, chain: Chain) -> Result<Vec<Val>> {
        let limit = f.spec.limits().max_execution();
        // One deadline for making an instance (if the pool has none free)
        // and for the call.
        let deadline = limit.map(|d| Instant::now() + d);
        let id = f.id.clone();
        let reentrant = chain.holds(&f.id);
        let calls_from = chain.through(&f.id);
        let call: WarmCall<Vec<Val>> = Box::new(move |w: &mut Warm| {
            Box::pin(async move {
                w.store.data_mut().chain = calls_from;
                w.store.set_deadline(deadline);
                match w.func.call_async(&mut w.store, &args).await {
                    Err(e) if e.downcast_ref::<crate::dispatch::Timeout>().is_some() => Err(e.context(format!(
                        "`{id}` ran longer than max_execution_ms ({} ms)",
                        limit.unwrap_or_default().as_millis()
                    ))),
                    r => r.with_context(|| format!("calling `{id}`")),
                }
            })
        });
        self.on_instance(f, reentrant, deadline, call).await
    }
}

/// A native instance of a core module (preview 1 served directly), its
/// reactor initialiser run, and its method lifted at `ty`.
async fn instantiate_core(
    store: &mut Store<CallCtx>,
    module: &CoreModule,
    method: &str,
    ty: &FuncType,
) -> Result<Func> {
    let instance = crate::wasi::preview1::Instance::new_async(store, module).await?;
    if crate::wasi::preview1::exports_func(module, "_initialize") {
        instance.call_async(store, "_initialize", &[]).await?;
    }
    instance.lift(store, method, ty.clone())
}

/// What to do with a warm instance: a boxed closure, so that the call can
/// move to another thread.
pub(super) type WarmCall<R> =
    Box<dyn for<'a> FnOnce(&'a mut Warm) -> Pin<Box<dyn Future<Output = Result<R>> + Send + 'a>> + Send>;

impl Function {
    /// Whether a warm instance may serve another call: not if its linear
    /// memory grew past `max_retained_memory_bytes` (checked every
    /// `retained_memory_check_interval` calls).
    fn keeps(&self, w: &mut Warm) -> bool {
        w.calls += 1;
        match self.retained {
            Some((limit, every)) if w.calls.is_multiple_of(every) => w.store.memory_bytes() as u64 <= limit,
            _ => true,
        }
    }
}

/// The type of export `f` or `iface#f` (version-tolerant): `None` if there
/// is no such function, `Some(None)` if its type involves resources.
fn export_type(component: &Component, method: &str) -> Option<Option<FuncType>> {
    use crate::component::names::split_version;
    use wasmparser::component_types::ComponentEntityType as E;
    let types = component.types();
    let fid = match method.split_once('#') {
        None => match types.component_item_for_export(method).map(|i| i.ty) {
            Some(E::Func(fid)) => fid,
            _ => return None,
        },
        Some((iface, f)) => component.def.exports.iter().find_map(|(n, _, _)| {
            if n != iface && split_version(n).0 != split_version(iface).0 {
                return None;
            }
            match types.component_item_for_export(n).map(|i| i.ty) {
                Some(E::Instance(id)) => match types[id].exports.get(f).map(|i| i.ty) {
                    Some(E::Func(fid)) => Some(fid),
                    _ => None,
                },
                _ => None,
            }
        })?,
    };
    Some(crate::component::typeconv::func_type(types, fid, &Default::default()).ok())
}
