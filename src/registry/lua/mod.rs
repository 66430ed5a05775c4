//! Lua functions: `function.lua` entries and the `library.lua` code they
//! import, run on an embedded Lua 5.4 (mlua, vendored; interpreted, no JIT)
//! in a sandbox ([`sandbox`]). Calls run as coroutines on the dispatcher:
//! a Lua function waiting on `funcs.call` or `time.sleep` is suspended, and
//! a busy one yields every slice. Values cross as JSON does ([`convert`]).

pub mod convert;
pub mod modules;
mod sandbox;

pub use sandbox::LuaState;

use super::chain::Chain;
use super::config::{Entry, LuaSpec};
use super::funcs::Input;
use super::{Inner, Registry};
use crate::pool::workers::WorkerPool;
use crate::pool::Pool;
use anyhow::{anyhow, bail, Result};
use mlua::{Function, Lua, MultiValue, Value};
use sandbox::CallState;
use serde_json::Value as Json;
use std::collections::BTreeMap;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

/// Compiled Lua code of one entry (a function or a library).
pub struct LuaCode {
    pub id: String,
    /// The chunk as Lua bytecode, with its line information.
    bytecode: Vec<u8>,
    modules: Vec<String>,
    /// `require` alias → library entry ID.
    imports: BTreeMap<String, String>,
}

/// Every `library.lua` of the registry, by entry ID.
pub type Catalog = BTreeMap<String, Arc<LuaCode>>;

/// A state's memory cap unless `options.limits.memory_bytes` says otherwise.
pub const DEFAULT_MEMORY: usize = 64 << 20;

/// How long the top level of a chunk may run when it is checked at load.
const LOAD_BUDGET: Duration = Duration::from_secs(2);

/// A loaded, checked `function.lua` entry.
pub struct LuaFunction {
    pub id: String,
    code: Arc<LuaCode>,
    method: String,
    catalog: Arc<Catalog>,
    max_execution: Option<Duration>,
    memory: usize,
    pub(super) pool: Pool<LuaState>,
    workers: Option<WorkerPool>,
}

/// The message of a Lua error: its first line (Lua's `file:line: message`),
/// without mlua's traceback.
pub(crate) fn message(e: &mlua::Error) -> String {
    match e {
        mlua::Error::CallbackError { cause, .. } => message(cause),
        mlua::Error::RuntimeError(m) | mlua::Error::SyntaxError { message: m, .. } => {
            m.lines().next().unwrap_or_default().to_string()
        }
        mlua::Error::MemoryError(_) => "out of memory (the entry's memory_bytes)".to_string(),
        other => other.to_string().lines().next().unwrap_or_default().to_string(),
    }
}

impl Inner {
    /// Reads and compiles a Lua entry's source: inline, or `file://` inside
    /// the registry folder. Syntax errors name the file and line.
    pub(super) fn lua_code(&self, entry: &Entry, spec: &LuaSpec) -> Result<LuaCode> {
        let (source, chunk_name) = match spec.source.strip_prefix("file://") {
            Some(rel) => {
                let (path, text) = self.registry_file(entry, "source", rel)?;
                (text, format!("@{}", path.display()))
            }
            None => (spec.source.clone().into_bytes(), format!("={}", entry.id)),
        };
        for m in &spec.modules {
            if !modules::KNOWN.contains(&m.as_str()) {
                return Err(Self::fail(
                    entry,
                    "modules",
                    format!("no built-in module `{m}` ({})", modules::KNOWN.join(", ")),
                ));
            }
        }
        let lua = Lua::new();
        let f = lua
            .load(&source[..])
            .set_name(chunk_name.as_str())
            .set_mode(mlua::chunk::ChunkMode::Text)
            .into_function()
            .map_err(|e| Self::fail(entry, "source", format!("syntax error: {}", message(&e))))?;
        if let Some((name, line)) = undeclared_require(&source, spec) {
            return Err(Self::fail(
                entry,
                "modules",
                format!("line {line} requires `{name}`, which is neither in `modules` nor in `imports`"),
            ));
        }
        Ok(LuaCode {
            id: entry.id.clone(),
            bytecode: f.dump(false),
            modules: spec.modules.clone(),
            imports: spec.imports.clone(),
        })
    }

    /// A `function.lua` entry: its code, imports checked against the
    /// libraries, and its method found by running the chunk once.
    pub(super) fn prepare_lua(&self, entry: &Entry, spec: &LuaSpec, catalog: &Arc<Catalog>) -> Result<LuaFunction> {
        let code = Arc::new(self.lua_code(entry, spec)?);
        for (alias, target) in &spec.imports {
            let id = super::config::qualify(&entry.namespace, target);
            if !catalog.contains_key(&id) {
                return Err(Self::fail(
                    entry,
                    &format!("imports.{alias}"),
                    format!("no library.lua entry `{id}` (or it did not load)"),
                ));
            }
        }
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
        let limits = spec.limits();
        let f = LuaFunction {
            id: entry.id.clone(),
            code,
            method: spec.method.clone().unwrap_or_default(),
            catalog: catalog.clone(),
            max_execution: limits.max_execution(),
            memory: limits.memory_bytes().map_or(DEFAULT_MEMORY, |b| b as usize),
            pool: Pool::new(pool.kind),
            workers,
        };
        // The method must exist: run the chunk's top level once.
        let mut state = f.state().map_err(|e| Self::fail(entry, "source", e))?;
        let found = crate::dispatch::block_on(f.method(
            &mut state,
            Weak::new(),
            Chain::default(),
            Some(Instant::now() + LOAD_BUDGET),
        ));
        if let Err(e) = found {
            return Err(Self::fail(entry, "method", format!("{e:#}")));
        }
        f.pool.put_back(state);
        Ok(f)
    }
}

/// A `require("name")` of a literal name the entry does not declare, and
/// its line (a text scan; `check` reports it before any call).
fn undeclared_require(source: &[u8], spec: &LuaSpec) -> Option<(String, usize)> {
    let text = String::from_utf8_lossy(source);
    for (i, line) in text.lines().enumerate() {
        let code = line.split("--").next().unwrap_or_default();
        let mut rest = code;
        while let Some(at) = rest.find("require") {
            let after = rest[at + 7..].trim_start();
            let after = after.strip_prefix('(').unwrap_or(after).trim_start();
            let quote = after.chars().next();
            if let Some(q @ ('"' | '\'')) = quote {
                if let Some(end) = after[1..].find(q) {
                    let name = &after[1..1 + end];
                    if !spec.modules.iter().any(|m| m == name) && !spec.imports.contains_key(name) {
                        return Some((name.to_string(), i + 1));
                    }
                }
            }
            rest = &rest[at + 7..];
        }
    }
    None
}

impl LuaFunction {
    fn state(&self) -> Result<LuaState> {
        LuaState::new(self.memory, &self.code, &self.catalog).map_err(|e| anyhow!("{}", message(&e)))
    }

    /// Runs the chunk in a fresh environment and returns the method: a
    /// field of the table the chunk returns, or a global it defines.
    async fn method(
        &self,
        st: &mut LuaState,
        registry: Weak<Inner>,
        calls_from: Chain,
        deadline: Option<Instant>,
    ) -> Result<Function> {
        st.lua
            .set_app_data(CallState::new(&self.id, deadline, registry, calls_from));
        let (chunk, env) = st.chunk(&self.code).map_err(|e| anyhow!("{}", message(&e)))?;
        if let Some(mut call) = st.lua.app_data_mut::<CallState>() {
            call.env = Some(env.clone());
        }
        let exports = run(&st.lua, &self.id, chunk, MultiValue::new(), deadline).await?;
        let from_table = match exports.front() {
            Some(Value::Table(t)) => t.raw_get::<Option<Function>>(self.method.as_str()).ok().flatten(),
            _ => None,
        };
        match from_table.or_else(|| env.raw_get::<Option<Function>>(self.method.as_str()).ok().flatten()) {
            Some(f) => Ok(f),
            None => bail!(
                "the chunk defines no function `{}` (return a table with it, or define a global)",
                self.method
            ),
        }
    }

    /// One call on a pooled state: the chunk, then the method with the
    /// arguments `args` makes; the method's results.
    async fn call_with<R: Send + 'static>(
        self: Arc<Self>,
        registry: Weak<Inner>,
        chain: Chain,
        args: impl FnOnce(&Lua) -> mlua::Result<MultiValue> + Send + 'static,
        out: impl FnOnce(&Lua, MultiValue) -> Result<R> + Send + 'static,
    ) -> Result<R> {
        let run_call = {
            let f = self.clone();
            async move {
                let deadline = f.max_execution.map(|d| Instant::now() + d);
                // A state held by a caller in the chain is not waited for.
                let reentrant = chain.holds(&f.id);
                let calls_from = chain.through(&f.id);
                f.pool
                    .with(
                        &f.id,
                        reentrant,
                        async || f.state(),
                        async |st: &mut LuaState| {
                            let in_lua = async {
                                let method = f.method(st, registry, calls_from, deadline).await?;
                                let args = args(&st.lua).map_err(|e| anyhow!("{}", message(&e)))?;
                                run(&st.lua, &f.id, method, args, deadline).await
                            };
                            let results = in_lua.await.map_err(|e| e.context(format!("`{}`", f.id)))?;
                            st.lua.remove_app_data::<CallState>();
                            out(&st.lua, results)
                        },
                        // A failed or cancelled call may leave the state
                        // half-changed: replaced.
                        |_, ended| ended == crate::pool::Ended::Returned,
                    )
                    .await
            }
        };
        match &self.workers {
            None => run_call.await,
            Some(w) => w.spawn(run_call).await,
        }
    }

    /// A call with positional JSON arguments; the first result as JSON,
    /// a second, non-nil one as the error.
    pub(super) async fn call_json(
        self: Arc<Self>,
        registry: Weak<Inner>,
        args: Vec<Json>,
        chain: Chain,
    ) -> Result<Json> {
        let id = self.id.clone();
        let make = move |lua: &Lua| {
            let mut m = MultiValue::new();
            for a in &args {
                m.push_back(convert::to_lua(lua, a)?);
            }
            Ok(m)
        };
        self.call_with(registry, chain, make, move |_, results| {
            let first = results.front().cloned().unwrap_or(Value::Nil);
            if let Some(e) = returned_error(&results) {
                bail!("`{id}`: {e}");
            }
            convert::from_lua(&first).map_err(|e| anyhow!("`{id}`: its result has no JSON form: {e}"))
        })
        .await
    }

    /// A call from `funcs` (`call-string` / `call-bytes`): the input is one
    /// Lua string; a string result comes back as it is, a number as text,
    /// a table as JSON text.
    pub(super) async fn call_input(
        self: Arc<Self>,
        registry: Weak<Inner>,
        input: Input,
        chain: Chain,
    ) -> Result<Input> {
        let id = self.id.clone();
        let as_bytes = matches!(input, Input::Bytes(_));
        let make = move |lua: &Lua| {
            let s = match &input {
                Input::Text(t) => lua.create_string(t)?,
                Input::Bytes(b) => lua.create_string(b)?,
            };
            Ok(MultiValue::from_iter([Value::String(s)]))
        };
        self.call_with(registry, chain, make, move |_, results| {
            if let Some(e) = returned_error(&results) {
                bail!("`{id}`: {e}");
            }
            let bytes = match results.front().unwrap_or(&Value::Nil) {
                Value::Nil => Vec::new(),
                Value::String(s) => s.as_bytes().to_vec(),
                Value::Integer(i) => i.to_string().into_bytes(),
                Value::Number(n) => n.to_string().into_bytes(),
                Value::Boolean(b) => b.to_string().into_bytes(),
                v => convert::from_lua(v)
                    .map_err(|e| anyhow!("`{id}`: its result has no JSON form: {e}"))?
                    .to_string()
                    .into_bytes(),
            };
            Ok(if as_bytes {
                Input::Bytes(bytes)
            } else {
                Input::Text(String::from_utf8_lossy(&bytes).into_owned())
            })
        })
        .await
    }

    /// Instance counts of the entry's pool of Lua states.
    pub fn pool_stats(&self) -> crate::pool::PoolStats {
        self.pool.stats()
    }
}

/// A non-nil second result: the error the function returned.
fn returned_error(results: &MultiValue) -> Option<String> {
    match results.get(1) {
        None | Some(Value::Nil) => None,
        Some(Value::String(s)) => Some(s.to_string_lossy()),
        Some(v @ Value::Table(_)) => Some(convert::from_lua(v).map(|j| j.to_string()).unwrap_or_else(|e| e)),
        Some(v) => Some(v.to_string().unwrap_or_default()),
    }
}

/// Runs `f` as the call's own Lua thread until it returns: suspended while
/// it waits, yielding every time slice, dropped at the deadline.
async fn run(lua: &Lua, id: &str, f: Function, args: MultiValue, deadline: Option<Instant>) -> Result<MultiValue> {
    let thread = lua.create_thread(f).map_err(|e| anyhow!("{}", message(&e)))?;
    if let Some(mut call) = lua.app_data_mut::<CallState>() {
        call.thread = thread.to_pointer() as usize;
    }
    let fut = thread
        .into_async::<MultiValue>(args)
        .map_err(|e| anyhow!("{}", message(&e)))?;
    let result = match deadline {
        None => fut.await,
        Some(d) => {
            let cut = async {
                async_io::Timer::at(d).await;
                Err(mlua::Error::runtime(sandbox::timeout_message(id)))
            };
            futures_lite::future::or(fut, cut).await
        }
    };
    result.map_err(|e| anyhow!("{}", message(&e)))
}

impl Registry {
    /// The `function.lua` entry `id`, if there is one.
    pub(super) fn lua_function(&self, id: &str) -> Option<Arc<LuaFunction>> {
        self.inner.lua.get(id).cloned()
    }
}
