//! The Wippy registry: definition files with `fs.directory`, `env.*` and
//! `function.wasm` / `function.wat` entries; loading checks (hash, imports,
//! method); and calling a function by `namespace:name` with JSON arguments.

pub mod config;
pub mod funcs;
pub mod http;
pub mod json;
pub mod pool;

use crate::wasi::WasiCtx;
use crate::{Component, Engine, Linker, Store, Val};
use anyhow::{anyhow, Context, Result};
use config::{Entry, EnvStorage, FunctionSpec, Kind};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A loaded, checked function entry.
pub struct Function {
    pub id: String,
    pub spec: FunctionSpec,
    pub file: PathBuf,
    component: Component,
    /// The method's type (`None` if it involves resources, which JSON and
    /// `funcs` cannot carry).
    ty: Option<crate::values::FuncType>,
    pool: pool::Pool<Warm>,
}

/// A warm instance: its store and the method to call.
struct Warm {
    store: Store<CallCtx>,
    func: crate::Func,
}

/// A registry loaded from definition files. Cheap to clone (shared).
#[derive(Clone)]
pub struct Registry {
    inner: Arc<Inner>,
}

struct Inner {
    engine: Engine,
    /// WASI and `funcs`, shared by every instance (so host resource types,
    /// such as an `incoming-request`, are the same for all).
    linker: Linker<CallCtx>,
    entries: BTreeMap<String, Entry>,
    /// `http.endpoint` routes, checked against their functions.
    endpoints: Vec<http::Endpoint>,
    functions: BTreeMap<String, Arc<Function>>,
    natives: std::sync::RwLock<BTreeMap<String, NativeFn>>,
}

/// A native function registered as a registry function: JSON arguments in,
/// a JSON result out.
pub type NativeFn = Arc<dyn Fn(Vec<serde_json::Value>) -> Result<serde_json::Value> + Send + Sync>;

/// The host state of one call of a registry function.
pub struct CallCtx {
    pub wasi: WasiCtx,
    /// How many `funcs` calls deep this call is.
    pub depth: u32,
    pub registry: Registry,
}

impl crate::wasi::WasiView for CallCtx {
    fn wasi(&mut self) -> &mut WasiCtx {
        &mut self.wasi
    }
}

/// How deep `funcs` calls may nest; deeper calls (cycles) get `err`.
pub const MAX_CALL_DEPTH: u32 = 16;

/// The import groups (Wippy's profiles) an entry can declare, and the
/// interfaces they cover; the first matching prefix wins.
const GROUPS: &[(&str, &str)] = &[
    ("funcs", "wippy:runtime/funcs"),
    ("wasi:cli", "wasi:cli/"),
    ("wasi:poll", "wasi:io/poll"),
    ("wasi:io", "wasi:io/"),
    ("wasi:clocks", "wasi:clocks/"),
    ("wasi:filesystem", "wasi:filesystem/"),
    ("wasi:random", "wasi:random/"),
    ("wasi:sockets", "wasi:sockets/"),
    ("wasi:http", "wasi:http/"),
];

/// The group that provides an import, if any.
fn group_of(import: &str) -> Option<&'static str> {
    GROUPS
        .iter()
        .find(|(_, prefix)| import.starts_with(prefix))
        .map(|(g, _)| *g)
}

impl Registry {
    /// Loads a definition file or a tree of `_index.yaml` files and checks
    /// every function entry.
    ///
    /// # Errors
    /// The first problem found, naming the file, the entry and the field.
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let (registry, problems) = Self::load_all(path.as_ref())?;
        match problems.into_iter().next() {
            Some(p) => Err(anyhow!(p)),
            None => Ok(registry),
        }
    }

    /// Loads and lists every problem instead of stopping at the first.
    pub fn check(path: impl AsRef<Path>) -> Vec<String> {
        match Self::load_all(path.as_ref()) {
            Ok((_, problems)) => problems,
            Err(e) => vec![format!("{e:#}")],
        }
    }

    fn load_all(path: &Path) -> Result<(Self, Vec<String>)> {
        let entries = config::load(path)?;
        let mut config = crate::Config::default();
        config.consume_fuel(true);
        let mut inner = Inner {
            engine: Engine::new(&config),
            linker: linker()?,
            endpoints: Vec::new(),
            entries,
            functions: BTreeMap::new(),
            natives: Default::default(),
        };
        let mut problems = Vec::new();
        let ids: Vec<String> = inner.entries.keys().cloned().collect();
        for id in ids {
            let entry = inner.entries[&id].clone();
            match &entry.kind {
                Kind::Function(spec) => match inner.prepare(&entry, spec) {
                    Ok(f) => {
                        inner.functions.insert(id, Arc::new(f));
                    }
                    Err(e) => problems.push(format!("{e:#}")),
                },
                Kind::EnvVariable(v) => {
                    if let Err(e) = inner.storage(&entry, &v.storage) {
                        problems.push(format!("{e:#}"));
                    }
                }
                _ => {}
            }
        }
        // Endpoints last: they name functions.
        for entry in inner.entries.values() {
            if let Kind::HttpEndpoint(e) = &entry.kind {
                match http::Endpoint::new(&inner, entry, e) {
                    Ok(e) => inner.endpoints.push(e),
                    Err(e) => problems.push(format!("{e:#}")),
                }
            }
        }
        Ok((Registry { inner: Arc::new(inner) }, problems))
    }

    /// Function entry IDs.
    pub fn functions(&self) -> impl Iterator<Item = &str> {
        self.inner.functions.keys().map(|s| s.as_str())
    }

    /// Registers a native Rust function under `id` (`namespace:name`), callable
    /// like any registry function, from the host or through `funcs`.
    pub fn register_native(
        &self,
        id: &str,
        f: impl Fn(Vec<serde_json::Value>) -> Result<serde_json::Value> + Send + Sync + 'static,
    ) {
        self.inner
            .natives
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id.to_string(), Arc::new(f));
    }

    /// Calls function `id` with dynamic values, in an instance with its own
    /// store and host state.
    pub async fn call(&self, id: &str, args: &[Val]) -> Result<Vec<Val>> {
        self.call_at(id, args.to_vec(), 0).await
    }

    /// A call `depth` levels deep in a `funcs` chain.
    pub(crate) fn call_at(
        &self,
        id: &str,
        args: Vec<Val>,
        depth: u32,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<Vec<Val>>> + Send + '_>> {
        let id = id.to_string();
        Box::pin(async move {
            let f = self
                .inner
                .functions
                .get(&id)
                .ok_or_else(|| anyhow!("unknown function `{id}`"))?
                .clone();
            let limit = f.spec.limits().max_execution_ms;
            // A command's `run` may only be called once per instance.
            let reuse = !f.spec.method.starts_with("wasi:cli/run");
            f.pool
                .with(
                    &id,
                    reuse,
                    || self.warm(&f),
                    async |w: &mut Warm| {
                        w.store.data_mut().depth = depth;
                        let deadline = limit.map(|ms| std::time::Instant::now() + std::time::Duration::from_millis(ms));
                        w.store.set_deadline(deadline);
                        match w.func.call_async(&mut w.store, &args).await {
                            Err(e) if e.downcast_ref::<crate::dispatch::Timeout>().is_some() => {
                                Err(e.context(format!(
                                    "`{id}` ran longer than max_execution_ms ({} ms)",
                                    limit.unwrap_or_default()
                                )))
                            }
                            r => r.with_context(|| format!("calling `{id}`")),
                        }
                    },
                )
                .await
        })
    }

    /// A new instance of `f` with its own store and host state.
    fn warm(&self, f: &Function) -> Result<Warm> {
        let ctx = CallCtx {
            wasi: self.inner.wasi_ctx(f)?,
            depth: 0,
            registry: self.clone(),
        };
        let mut store = Store::new(&self.inner.engine, ctx);
        store.set_fuel_slice(Some(FUEL_SLICE));
        // Start functions run during instantiation, which is not sliced.
        store.set_fuel(u64::MAX / 2)?;
        if let Some(bytes) = f.spec.limits().memory_bytes {
            store.set_limits(crate::Limits {
                memory_bytes: bytes as usize,
                ..Default::default()
            });
        }
        let instance = self
            .inner
            .linker
            .instantiate(&mut store, &f.component)
            .with_context(|| format!("instantiating `{}`", f.id))?;
        let func = instance
            .get_func(&store, &f.spec.method)
            .ok_or_else(|| anyhow!("`{}` exports no function `{}`", f.id, f.spec.method))?;
        Ok(Warm { store, func })
    }

    /// Instance counts of function `id`'s pool.
    pub fn pool_stats(&self, id: &str) -> Option<pool::PoolStats> {
        self.inner.functions.get(id).map(|f| f.pool.stats())
    }

    /// Calls function `id` with positional JSON arguments and returns its
    /// result as JSON. Native functions take the JSON as it is.
    pub fn call_json(&self, id: &str, args: &[serde_json::Value]) -> Result<serde_json::Value> {
        crate::dispatch::block_on(self.call_json_async(id, args.to_vec(), 0))
    }

    pub(crate) async fn call_json_async(
        &self,
        id: &str,
        args: Vec<serde_json::Value>,
        depth: u32,
    ) -> Result<serde_json::Value> {
        if let Some(native) = self.native(id) {
            return native(args);
        }
        let ty = self.func_type(id)?;
        let vals = json::args_from_json(&ty, &args).with_context(|| format!("arguments of `{id}`"))?;
        let out = self.call_at(id, vals, depth).await?;
        json::result_to_json(&ty, &out)
    }

    /// The component type of function `id`.
    pub fn func_type(&self, id: &str) -> Result<crate::values::FuncType> {
        let f = self
            .inner
            .functions
            .get(id)
            .ok_or_else(|| anyhow!("unknown function `{id}`"))?;
        f.ty.clone()
            .ok_or_else(|| anyhow!("`{id}` takes or returns resources, which cannot be passed as JSON"))
    }

    fn native(&self, id: &str) -> Option<NativeFn> {
        self.inner
            .natives
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .cloned()
    }
}

impl Inner {
    fn fail(entry: &Entry, field: &str, msg: impl std::fmt::Display) -> anyhow::Error {
        anyhow!("{}: entry `{}`: field `{field}`: {msg}", entry.file.display(), entry.id)
    }

    fn entry(&self, from: &Entry, field: &str, reference: &str) -> Result<&Entry> {
        let id = config::qualify(&from.namespace, reference);
        self.entries
            .get(&id)
            .ok_or_else(|| Self::fail(from, field, format!("no entry `{id}`")))
    }

    /// The host folder of an `fs.directory` reference, and whether its mode
    /// allows writing.
    fn directory(&self, from: &Entry, field: &str, reference: &str) -> Result<PathBuf> {
        Ok(self.directory_mode(from, field, reference)?.0)
    }

    fn directory_mode(&self, from: &Entry, field: &str, reference: &str) -> Result<(PathBuf, bool)> {
        let target = self.entry(from, field, reference)?;
        let Kind::FsDirectory(d) = &target.kind else {
            return Err(Self::fail(
                from,
                field,
                format!("`{}` is not an fs.directory", target.id),
            ));
        };
        let dir = target.file.parent().unwrap_or(Path::new(".")).join(&d.directory);
        if !dir.is_dir() {
            if d.auto_init {
                std::fs::create_dir_all(&dir).map_err(|e| Self::fail(target, "directory", e))?;
            } else {
                return Err(Self::fail(
                    target,
                    "directory",
                    format!("{} does not exist", dir.display()),
                ));
            }
        }
        Ok((dir, d.writable()))
    }

    fn storage(&self, from: &Entry, reference: &str) -> Result<&EnvStorage> {
        let target = self.entry(from, "storage", reference)?;
        match &target.kind {
            Kind::EnvStorage(s) => Ok(s),
            _ => Err(Self::fail(
                from,
                "storage",
                format!("`{}` is not an env.storage.* entry", target.id),
            )),
        }
    }

    /// Reads the code, verifies the hash, loads the component and checks its
    /// imports and the method.
    fn prepare(&self, entry: &Entry, spec: &FunctionSpec) -> Result<Function> {
        let bytes = if spec.wat {
            let source = spec.source.as_deref().unwrap_or_default();
            match source.strip_prefix("file://") {
                Some(rel) => {
                    let p = entry.file.parent().unwrap_or(Path::new(".")).join(rel);
                    std::fs::read(&p)
                        .map_err(|e| Self::fail(entry, "source", format!("cannot read {}: {e}", p.display())))?
                }
                None => source.as_bytes().to_vec(),
            }
        } else {
            let dir = self.directory(entry, "fs", spec.fs.as_deref().unwrap_or_default())?;
            let path = dir.join(spec.path.as_deref().unwrap_or_default().trim_start_matches('/'));
            let bytes = std::fs::read(&path)
                .map_err(|e| Self::fail(entry, "path", format!("cannot read {}: {e}", path.display())))?;
            let want = spec
                .hash
                .as_deref()
                .unwrap_or_default()
                .trim_start_matches("sha256:")
                .to_ascii_lowercase();
            let got: String = Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect();
            if want != got {
                return Err(Self::fail(
                    entry,
                    "hash",
                    format!("mismatch: expected sha256:{want}, actual sha256:{got}"),
                ));
            }
            bytes
        };
        // A core module (binary or text) needs its `wit` signature.
        let text_module = spec.wat
            && std::str::from_utf8(&bytes).is_ok_and(|t| {
                t.trim_start()
                    .trim_start_matches(|c: char| c == '(' || c.is_whitespace())
                    .starts_with("module")
            });
        let bytes = if is_core(&bytes) || text_module {
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
            crate::component::wrap::componentize_core(&core, wit)
                .map_err(|e| Self::fail(entry, "wit", format!("{e:#}")))?
        } else {
            bytes
        };
        let component = Component::new(&self.engine, &bytes)
            .map_err(|e| Self::fail(entry, if spec.wat { "source" } else { "path" }, format!("{e:#}")))?;
        for (name, _) in &component.def.imports {
            match group_of(name) {
                Some(group)
                    if spec
                        .imports
                        .iter()
                        .any(|d| d == group || (d == "wasi:poll" && name.starts_with("wasi:io/poll"))) => {}
                Some(group) => {
                    return Err(Self::fail(
                        entry,
                        "imports",
                        format!("the component imports `{name}`; add `{group}` to `imports`"),
                    ))
                }
                None => {
                    return Err(Self::fail(
                        entry,
                        "imports",
                        format!("the component imports `{name}`, which no host provides"),
                    ))
                }
            }
        }
        let Some(ty) = export_type(&component, &spec.method) else {
            return Err(Self::fail(
                entry,
                "method",
                format!("the component exports no function `{}`", spec.method),
            ));
        };
        Ok(Function {
            id: entry.id.clone(),
            spec: spec.clone(),
            file: entry.file.clone(),
            component,
            ty,
            pool: pool::Pool::new(&spec.pool),
        })
    }

    /// The value of an `env.variable` entry, if set.
    fn variable(&self, from: &Entry, field: &str, reference: &str) -> Result<Option<String>> {
        let target = self.entry(from, field, reference)?;
        let Kind::EnvVariable(v) = &target.kind else {
            return Err(Self::fail(
                from,
                field,
                format!("`{}` is not an env.variable", target.id),
            ));
        };
        let key = v
            .variable
            .clone()
            .unwrap_or_else(|| target.id.rsplit(':').next().unwrap_or_default().to_string());
        let value = match self.storage(target, &v.storage)? {
            EnvStorage::Os => std::env::var(&key).ok(),
            EnvStorage::Static(values) => values.get(&key).cloned(),
            EnvStorage::File { path, auto_create } => match std::fs::read_to_string(path) {
                Ok(text) => parse_env_file(&text).remove(&key),
                Err(_) if *auto_create => None,
                Err(e) => {
                    return Err(Self::fail(
                        target,
                        "storage",
                        format!("cannot read {}: {e}", path.display()),
                    ))
                }
            },
        };
        Ok(value.or_else(|| v.default.clone()))
    }

    /// The WASI context of one call of `f`: args, cwd, env, mounts.
    fn wasi_ctx(&self, f: &Function) -> Result<WasiCtx> {
        let entry = &self.entries[&f.id];
        let spec = &f.spec;
        let mut ctx = WasiCtx::new().args(std::iter::once(f.id.clone()).chain(spec.wasi.args.iter().cloned()));
        if let Some(cwd) = &spec.wasi.cwd {
            ctx = ctx.cwd(cwd);
        }
        for (i, m) in spec.wasi.env.iter().enumerate() {
            let field = format!("wasi.env[{i}]");
            match self.variable(entry, &field, &m.id)? {
                Some(v) => ctx = ctx.env(&m.name, v),
                None if m.required => {
                    return Err(Self::fail(
                        entry,
                        &field,
                        format!("required variable `{}` ({}) is not set", m.id, m.name),
                    ))
                }
                None => {}
            }
        }
        for (i, m) in spec.wasi.mounts.iter().enumerate() {
            let (dir, writable) = self.directory_mode(entry, &format!("wasi.mounts[{i}].fs"), &m.fs)?;
            ctx = ctx.preopen_dir(&dir, &m.guest, m.read_only || !writable)?;
        }
        if spec.imports.iter().any(|i| i == "wasi:sockets") {
            ctx = ctx.network(network_policy(spec)?);
        }
        Ok(ctx)
    }
}

/// The network an entry importing `wasi:sockets` gets (see [`NetworkSpec`]).
fn network_policy(spec: &config::FunctionSpec) -> Result<crate::wasi::sockets::NetworkPolicy> {
    use crate::wasi::sockets::parse_range;
    let net = spec.network.clone().unwrap_or_default();
    let ranges = |list: &[String]| list.iter().map(|r| parse_range(r)).collect::<Result<Vec<_>>>();
    Ok(crate::wasi::sockets::NetworkPolicy {
        enabled: true,
        name_lookup: net.name_lookup.unwrap_or(true),
        allow: ranges(&net.allow)?,
        deny: ranges(&net.deny)?,
        deny_loopback: !net.allow_loopback,
        deny_private: !net.allow_private,
        max_sockets: spec.limits().max_open_sockets,
        timeout: spec.limits().socket_timeout_ms.map(std::time::Duration::from_millis),
        http: true,
    })
}

fn is_core(bytes: &[u8]) -> bool {
    bytes.len() >= 8 && bytes[..4] == *b"\0asm" && bytes[4..8] == [1, 0, 0, 0]
}

/// The type of export `f` or `iface#f` (version-tolerant): `None` if there
/// is no such function, `Some(None)` if its type involves resources.
fn export_type(component: &Component, method: &str) -> Option<Option<crate::values::FuncType>> {
    use wasmparser::component_types::ComponentEntityType as E;
    let types = component.types();
    let fid = match method.split_once('#') {
        None => match types.component_item_for_export(method).map(|i| i.ty) {
            Some(E::Func(fid)) => fid,
            _ => return None,
        },
        Some((iface, f)) => component.def.exports.iter().find_map(|(n, _, _)| {
            if n != iface
                && crate::component::names::split_version(n).0 != crate::component::names::split_version(iface).0
            {
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

/// `KEY=VALUE` lines; `#` starts a comment.
fn parse_env_file(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .map(|l| l.split('#').next().unwrap_or_default().trim())
        .filter(|l| !l.is_empty())
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

/// Fuel per time slice of a registry call: a busy guest yields to the
/// executor after this much work.
const FUEL_SLICE: u64 = 200_000;

/// WASI and `funcs`, for registry calls.
fn linker() -> Result<Linker<CallCtx>> {
    let mut linker = Linker::default();
    crate::wasi::add_to_linker(&mut linker)?;
    funcs::add_to_linker(&mut linker);
    Ok(linker)
}
