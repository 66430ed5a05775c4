//! The Wippy registry: definition files with `fs.directory`, `env.*`,
//! `function.wasm` / `function.wat` and `http.endpoint` entries; loading
//! checks (hash, imports, method); and calling a function by
//! `namespace:name` with JSON arguments.
//!
//! Each entry loads on its own: a broken one is kept apart (calling it
//! returns its load error) and the rest are served, unless the load is
//! strict ([`LoadOptions`]).

pub mod chain;
pub mod config;
mod context;
mod files;
pub mod funcs;
mod function;
pub mod http;
pub mod imports;
pub mod json;
pub mod lua;
pub mod process;

pub use function::Function;

use crate::pool::PoolStats;
use crate::wasi::WasiCtx;
use crate::{Engine, Linker, Val};
use anyhow::{anyhow, bail, Context, Result};
use chain::Chain;
use config::{Entry, Kind};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Weak};

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
    /// `function.lua` entries.
    lua: BTreeMap<String, Arc<lua::LuaFunction>>,
    /// `process.wasm` entries (their pools unused: a process has its own
    /// instance).
    processes: BTreeMap<String, Arc<Function>>,
    /// The threads processes and services run on, started when first used.
    process_host: std::sync::OnceLock<crate::pool::workers::WorkerPool>,
    /// The folder the registry was loaded from: `file://` sources stay in it.
    root: std::path::PathBuf,
    /// Entries that did not load, with their error.
    broken: BTreeMap<String, String>,
    problems: Vec<String>,
    warnings: Vec<String>,
    natives: std::sync::RwLock<BTreeMap<String, NativeFn>>,
}

/// How to treat what a load finds wrong.
#[derive(Debug, Clone, Copy, Default)]
pub struct LoadOptions {
    /// Keep broken entries apart and load the rest (else the first problem
    /// fails the load).
    pub keep_going: bool,
    /// Warnings (unknown fields and kinds, deprecated spellings) are
    /// problems too.
    pub strict: bool,
}

/// A native function registered as a registry function: JSON arguments in,
/// a JSON result out.
pub type NativeFn = Arc<dyn Fn(Vec<serde_json::Value>) -> Result<serde_json::Value> + Send + Sync>;

/// The host state of one call of a registry function.
pub struct CallCtx {
    pub wasi: WasiCtx,
    /// The chain the calls this instance makes through `funcs` run in.
    pub chain: chain::Chain,
    /// The registry the instance belongs to (weak: the registry's pools
    /// hold the instances).
    registry: Weak<Inner>,
}

impl CallCtx {
    /// The registry that made this instance.
    pub fn registry(&self) -> Result<Registry> {
        self.registry
            .upgrade()
            .map(|inner| Registry { inner })
            .ok_or_else(|| anyhow!("the registry is gone"))
    }
}

impl crate::wasi::WasiView for CallCtx {
    fn wasi(&mut self) -> &mut WasiCtx {
        &mut self.wasi
    }
}

/// How deep `funcs` calls may nest; deeper calls (cycles) get `err`.
pub const MAX_CALL_DEPTH: u32 = 16;

/// How often idle pooled instances past their time are dropped.
const TRIM_EVERY: std::time::Duration = std::time::Duration::from_millis(250);

impl Registry {
    /// Loads a definition file or a tree of `_index.yaml` files and checks
    /// every entry.
    ///
    /// # Errors
    /// The first problem found, naming the file, the entry and the field.
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        Self::load_with(path, LoadOptions::default())
    }

    /// Loads as `options` say: with `keep_going`, broken entries are listed
    /// in [`Registry::problems`] and calling one returns its error.
    ///
    /// # Errors
    /// If the path cannot be read; without `keep_going`, the first problem.
    pub fn load_with(path: impl AsRef<Path>, options: LoadOptions) -> Result<Self> {
        let registry = Self::load_all(path.as_ref(), options.strict)?;
        if !options.keep_going {
            if let Some(p) = registry.inner.problems.first() {
                bail!("{p}");
            }
        }
        Ok(registry)
    }

    /// Loads and lists every problem (warnings included) instead of
    /// stopping at the first.
    pub fn check(path: impl AsRef<Path>) -> Vec<String> {
        match Self::load_all(path.as_ref(), true) {
            Ok(r) => r.inner.problems.clone(),
            Err(e) => vec![format!("{e:#}")],
        }
    }

    /// Entries that did not load, each once, naming file, entry and field.
    pub fn problems(&self) -> &[String] {
        &self.inner.problems
    }

    /// Fields and kinds this runtime does not know, and deprecated
    /// spellings (not problems unless the load was strict).
    pub fn warnings(&self) -> &[String] {
        &self.inner.warnings
    }

    fn load_all(path: &Path, strict: bool) -> Result<Self> {
        let loaded = config::load(path)?;
        let mut config = crate::Config::default();
        config.consume_fuel(true);
        let mut inner = Inner {
            engine: Engine::new(&config),
            linker: linker()?,
            endpoints: Vec::new(),
            entries: loaded.entries,
            functions: BTreeMap::new(),
            lua: BTreeMap::new(),
            processes: BTreeMap::new(),
            process_host: std::sync::OnceLock::new(),
            root: root_of(path),
            broken: BTreeMap::new(),
            problems: Vec::new(),
            warnings: Vec::new(),
            natives: Default::default(),
        };
        for p in loaded.problems {
            inner.problem(p.id.as_deref(), p.message);
        }
        if strict {
            for w in loaded.warnings {
                inner.problem(None, w);
            }
        } else {
            inner.warnings = loaded.warnings;
        }
        let mut compiled = function::Compiled::default();
        // Lua libraries first: functions import them.
        let mut catalog = lua::Catalog::new();
        let ids: Vec<String> = inner.entries.keys().cloned().collect();
        for id in &ids {
            let entry = inner.entries[id].clone();
            if let Kind::LuaLibrary(spec) = &entry.kind {
                match inner.lua_code(&entry, spec) {
                    Ok(code) => {
                        catalog.insert(id.clone(), Arc::new(code));
                    }
                    Err(e) => inner.problem(Some(id), format!("{e:#}")),
                }
            }
        }
        let catalog = Arc::new(catalog);
        for id in ids {
            let entry = inner.entries[&id].clone();
            match &entry.kind {
                Kind::Process(spec) => match inner.prepare(&entry, &spec.function, &mut compiled) {
                    Ok(f) => {
                        inner.processes.insert(id, Arc::new(f));
                    }
                    Err(e) => inner.problem(Some(&id), format!("{e:#}")),
                },
                Kind::Lua(spec) => match inner.prepare_lua(&entry, spec, &catalog) {
                    Ok(f) => {
                        inner.lua.insert(id, Arc::new(f));
                    }
                    Err(e) => inner.problem(Some(&id), format!("{e:#}")),
                },
                Kind::Function(spec) => match inner.prepare(&entry, spec, &mut compiled) {
                    Ok(f) => {
                        inner.functions.insert(id, Arc::new(f));
                    }
                    Err(e) => inner.problem(Some(&id), format!("{e:#}")),
                },
                Kind::EnvVariable(v) => {
                    if let Err(e) = inner.storage(&entry, &v.storage) {
                        inner.problem(Some(&id), format!("{e:#}"));
                    }
                }
                _ => {}
            }
        }
        // Services name processes.
        let services: Vec<(Entry, String)> = inner
            .entries
            .values()
            .filter_map(|e| match &e.kind {
                Kind::Service(s) => Some((e.clone(), config::qualify(&e.namespace, &s.process))),
                _ => None,
            })
            .collect();
        for (entry, target) in services {
            let why = match inner.entries.get(&target).map(|t| &t.kind) {
                None => Some(format!("no entry `{target}`")),
                Some(Kind::Process(_)) if inner.broken.contains_key(&target) => {
                    Some(format!("`{target}` did not load"))
                }
                Some(Kind::Process(_)) => None,
                Some(_) => Some(format!("`{target}` is not a process.wasm entry")),
            };
            if let Some(why) = why {
                inner.problem(Some(&entry.id), format!("{:#}", Inner::fail(&entry, "process", why)));
            }
        }
        // Endpoints last: they name functions.
        let mut endpoints = Vec::new();
        let mut failed = Vec::new();
        for entry in inner.entries.values() {
            if let Kind::HttpEndpoint(e) = &entry.kind {
                match http::Endpoint::new(&inner, entry, e) {
                    Ok(e) => endpoints.push(e),
                    Err(e) => failed.push((entry.id.clone(), format!("{e:#}"))),
                }
            }
        }
        inner.endpoints = endpoints;
        for (id, e) in failed {
            inner.problem(Some(&id), e);
        }
        let inner = Arc::new_cyclic(|weak: &Weak<Inner>| {
            // `pool.warm_start`: an instance made now, not at the first call.
            let failed: Vec<String> = inner
                .functions
                .values()
                .filter(|f| f.spec.pool.warm_start)
                .filter_map(|f| inner.warm_start(weak, f).err())
                .map(|e| format!("{e:#}"))
                .collect();
            inner.problems.extend(failed);
            inner
        });
        let registry = Registry { inner };
        registry.start_trimming();
        Ok(registry)
    }

    /// Drops idle pooled instances past their time, on a thread that ends
    /// with the registry.
    fn start_trimming(&self) {
        let weak = Arc::downgrade(&self.inner);
        let _ = std::thread::Builder::new()
            .name("wippy-pool-trim".into())
            .spawn(move || loop {
                std::thread::sleep(TRIM_EVERY);
                let Some(inner) = weak.upgrade() else { return };
                for f in inner.functions.values() {
                    f.pool.trim();
                }
                for f in inner.lua.values() {
                    f.pool.trim();
                }
            });
    }

    /// Function entry IDs (WASM and Lua).
    pub fn functions(&self) -> impl Iterator<Item = &str> {
        self.inner
            .functions
            .keys()
            .chain(self.inner.lua.keys())
            .map(|s| s.as_str())
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
        self.call_at(id, args.to_vec(), Chain::default()).await
    }

    /// A call made in a `funcs` chain.
    pub(crate) fn call_at(
        &self,
        id: &str,
        args: Vec<Val>,
        chain: Chain,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<Vec<Val>>> + Send + '_>> {
        let id = id.to_string();
        Box::pin(async move {
            let f = self.function(&id)?;
            self.call_wasm(f, args, chain).await
        })
    }

    /// The loaded function entry `id`, or why there is none.
    fn function(&self, id: &str) -> Result<Arc<Function>> {
        if let Some(f) = self.inner.functions.get(id) {
            return Ok(f.clone());
        }
        match self.inner.broken.get(id) {
            Some(e) => Err(anyhow!("`{id}` did not load: {e}")),
            None => Err(anyhow!("unknown function `{id}`")),
        }
    }

    /// Instance counts of function `id`'s pool (WASM instances or Lua
    /// states).
    pub fn pool_stats(&self, id: &str) -> Option<PoolStats> {
        match self.inner.functions.get(id) {
            Some(f) => Some(f.pool.stats()),
            None => self.inner.lua.get(id).map(|f| f.pool_stats()),
        }
    }

    /// Calls function `id` with positional JSON arguments and returns its
    /// result as JSON. Native functions take the JSON as it is.
    pub fn call_json(&self, id: &str, args: &[serde_json::Value]) -> Result<serde_json::Value> {
        crate::dispatch::block_on(self.call_json_async(id, args.to_vec(), Chain::default()))
    }

    /// [`Registry::call_json`] with the result as JSON text, written straight
    /// from the WASM function's values: a large result (a `list<u8>` of many
    /// MiB) never exists as a JSON tree.
    pub fn call_json_text(&self, id: &str, args: &[serde_json::Value]) -> Result<String> {
        if self.native(id).is_some() || self.lua_function(id).is_some() {
            return Ok(self.call_json(id, args)?.to_string());
        }
        let ty = self.func_type(id)?;
        let vals = json::args_from_json(&ty, args).with_context(|| format!("arguments of `{id}`"))?;
        let out = crate::dispatch::block_on(self.call_at(id, vals, Chain::default()))?;
        json::result_to_json_text(&ty, &out)
    }

    /// Calls function `id` (WASM, Lua or native) with positional JSON
    /// arguments, as a task of the caller's executor: the async form of
    /// [`Registry::call_json`].
    pub async fn call_json_value(&self, id: &str, args: Vec<serde_json::Value>) -> Result<serde_json::Value> {
        self.call_json_async(id, args, Chain::default()).await
    }

    pub(crate) async fn call_json_async(
        &self,
        id: &str,
        args: Vec<serde_json::Value>,
        chain: Chain,
    ) -> Result<serde_json::Value> {
        if chain.depth() > MAX_CALL_DEPTH {
            bail!("call depth limit ({MAX_CALL_DEPTH}) exceeded calling `{id}`");
        }
        if let Some(native) = self.native(id) {
            return native(args);
        }
        if let Some(f) = self.lua_function(id) {
            return f.call_json(Arc::downgrade(&self.inner), args, chain).await;
        }
        let ty = self.func_type(id)?;
        let vals = json::args_from_json(&ty, &args).with_context(|| format!("arguments of `{id}`"))?;
        let out = self.call_at(id, vals, chain).await?;
        json::result_to_json(&ty, &out)
    }

    /// The component type of function (or process) `id`.
    pub fn func_type(&self, id: &str) -> Result<crate::values::FuncType> {
        let f = match self.inner.processes.get(id) {
            Some(p) => p.clone(),
            None => self.function(id)?,
        };
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
    /// Records a problem; one naming an entry also keeps it apart.
    fn problem(&mut self, id: Option<&str>, message: String) {
        if let Some(id) = id {
            self.functions.remove(id);
            self.broken.entry(id.to_string()).or_insert_with(|| message.clone());
        }
        self.problems.push(message);
    }
}

/// The folder of a registry path (a folder, or a definition file's).
fn root_of(path: &Path) -> std::path::PathBuf {
    let dir = if path.is_dir() {
        path
    } else {
        path.parent().unwrap_or(Path::new("."))
    };
    dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf())
}

/// WASI and `funcs`, for registry calls.
fn linker() -> Result<Linker<CallCtx>> {
    let mut linker = Linker::default();
    crate::wasi::add_to_linker(&mut linker)?;
    funcs::add_to_linker(&mut linker);
    Ok(linker)
}
