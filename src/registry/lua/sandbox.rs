//! The Lua sandbox, in one place: which globals a call sees, `require`
//! limited to declared modules and imports, text-only `load`, and the
//! instruction hook that enforces `max_execution_ms` and hands out time
//! slices.
//!
//! A [`LuaState`] serves one call at a time. Each call runs in a fresh
//! environment: its own table, reading through to the allowed functions,
//! and its own proxy of every library (writes land in the proxy, reads
//! fall through), so a call that sets a global or patches `string` leaves
//! nothing behind for the next (functions are stateless, as in Wippy). The
//! shared tables behind the proxies are out of reach: their metatables
//! answer `getmetatable` with `false`.

use super::modules;
use super::{Catalog, LuaCode};
use mlua::chunk::ChunkMode;
use mlua::{Function, HookTriggers, Lua, LuaOptions, MultiValue, StdLib, Table, Value, VmState};
use std::sync::Arc;
use std::time::Instant;

/// Base functions a call may use. Not `load` (wrapped below), `dofile`,
/// `loadfile`, `collectgarbage` or `require` (our own).
const BASE: &[&str] = &[
    "assert",
    "error",
    "getmetatable",
    "ipairs",
    "next",
    "pairs",
    "pcall",
    "rawequal",
    "rawget",
    "rawlen",
    "rawset",
    "select",
    "setmetatable",
    "tonumber",
    "tostring",
    "type",
    "xpcall",
    "_VERSION",
];

/// Library tables a call gets a copy of; `os` only with these functions,
/// `string` without `dump` (bytecode).
const LIBRARIES: &[&str] = &["string", "table", "math", "utf8", "coroutine", "os"];
const OS_ALLOWED: &[&str] = &["time", "clock", "date"];

/// Instructions between two runs of the hook.
const HOOK_EVERY: u32 = 10_000;
/// Hook runs per time slice: a busy call yields to the executor after
/// about this many hundred thousand instructions.
const SLICE_HOOKS: u32 = 10;

/// What the hook and the modules know of the call in progress.
pub(super) struct CallState {
    /// The entry, for messages.
    pub id: String,
    pub deadline: Option<Instant>,
    /// The call's own Lua thread: slices and the deadline yield only from
    /// it (never from a coroutine the guest runs itself).
    pub thread: usize,
    hooks: u32,
    /// The registry, and the chain the call's `funcs` calls run in.
    pub registry: std::sync::Weak<crate::registry::Inner>,
    pub chain: crate::registry::chain::Chain,
    /// The call's environment, for `load`.
    pub env: Option<Table>,
    /// Events of the processes it monitors (`process.events()`).
    pub events: Option<std::sync::Arc<super::modules::Mailbox>>,
    /// Processes it spawned (which `process.cancel` may stop).
    pub spawned: Vec<crate::registry::process::Process>,
}

impl CallState {
    pub fn new(
        id: &str,
        deadline: Option<Instant>,
        registry: std::sync::Weak<crate::registry::Inner>,
        chain: crate::registry::chain::Chain,
    ) -> Self {
        CallState {
            id: id.to_string(),
            deadline,
            thread: 0,
            hooks: 0,
            registry,
            chain,
            env: None,
            events: None,
            spawned: Vec::new(),
        }
    }
}

/// The error a call that ran past its deadline ends with.
pub(super) fn timeout_message(id: &str) -> String {
    format!("`{id}` ran longer than max_execution_ms")
}

/// One Lua interpreter of an entry's pool, with its compiled chunks.
pub struct LuaState {
    pub(super) lua: Lua,
    /// The Rust side of every environment's `require`.
    require: Value,
    /// Compiled chunks by entry id: the function's and its libraries'.
    chunks: Table,
    /// Makes one environment (plain Lua, so a call leaves no Rust
    /// callback behind for the collector to finalise).
    new_env: Function,
}

/// Where the chunk table keeps `require`'s Rust side (no entry ID starts
/// with a NUL).
const REQUIRE_KEY: &str = "\0require";

/// Given the allowed functions and libraries, returns `new_env(impl, id)`,
/// which makes an environment whose `require(name)` asks `impl(id, name)`,
/// once per name.
const NEW_ENV: &str = r#"
local functions, libraries = ...
local env_mt = { __index = functions, __metatable = false }
local lib_mts = {}
for name, lib in pairs(libraries) do
  lib_mts[name] = {
    __index = lib,
    __metatable = false,
    __pairs = function(t)
      local merged = {}
      for k, v in pairs(lib) do merged[k] = v end
      for k, v in next, t do merged[k] = v end
      return next, merged, nil
    end,
  }
end
return function(impl, id)
  local env = setmetatable({}, env_mt)
  for name, mt in pairs(lib_mts) do
    rawset(env, name, setmetatable({}, mt))
  end
  local loaded = {}
  rawset(env, "_G", env)
  rawset(env, "require", function(name)
    local v = loaded[name]
    if v == nil then
      v = impl(id, name)
      loaded[name] = v
    end
    return v
  end)
  return env
end"#;

impl LuaState {
    /// A sandboxed interpreter whose memory is capped at `memory` bytes,
    /// with `code` and the libraries it imports compiled.
    pub fn new(memory: usize, code: &Arc<LuaCode>, catalog: &Arc<Catalog>) -> mlua::Result<Self> {
        let libs = StdLib::STRING | StdLib::TABLE | StdLib::MATH | StdLib::UTF8 | StdLib::COROUTINE | StdLib::OS;
        let lua = Lua::new_with(libs, LuaOptions::default())?;
        // Strings share one metatable: hide it, so no call can reach the
        // real `string` table through it.
        lua.load("getmetatable('').__metatable = false").exec()?;
        let globals = lua.globals();
        let functions = lua.create_table()?;
        for name in BASE {
            functions.raw_set(*name, globals.raw_get::<Value>(*name)?)?;
        }
        functions.raw_set("print", print(&lua)?)?;
        functions.raw_set("load", load(&lua)?)?;
        let libraries = lua.create_table()?;
        for name in LIBRARIES {
            let lib: Table = globals.raw_get(*name)?;
            let copy = lua.create_table()?;
            for pair in lib.pairs::<String, Value>() {
                let (k, v) = pair?;
                let allowed = match *name {
                    "os" => OS_ALLOWED.contains(&k.as_str()),
                    "string" => k != "dump",
                    _ => true,
                };
                if allowed {
                    copy.raw_set(k, v)?;
                }
            }
            libraries.raw_set(*name, copy)?;
        }
        let new_env = lua
            .load(NEW_ENV)
            .set_name("=sandbox")
            .call::<Function>((functions, libraries))?;
        let chunks = lua.create_table()?;
        let state = LuaState {
            lua,
            require: Value::Nil,
            chunks,
            new_env,
        };
        state.compile(code, catalog)?;
        let mut codes = Catalog::clone(catalog);
        codes.insert(code.id.clone(), code.clone());
        let require = Value::Function(state.require_impl(Arc::new(codes))?);
        state.chunks.raw_set(REQUIRE_KEY, require.clone())?;
        let state = LuaState { require, ..state };
        state.lua.set_memory_limit(memory)?;
        state
            .lua
            .set_global_hook(HookTriggers::new().every_nth_instruction(HOOK_EVERY), hook)?;
        Ok(state)
    }

    /// Loads `code` and every library it imports, transitively.
    fn compile(&self, code: &LuaCode, catalog: &Catalog) -> mlua::Result<()> {
        if self.chunks.contains_key(code.id.as_str())? {
            return Ok(());
        }
        let f = self
            .lua
            .load(&code.bytecode[..])
            .set_mode(ChunkMode::Binary)
            .into_function()?;
        self.chunks.raw_set(code.id.as_str(), f)?;
        for lib in code.imports.values() {
            if let Some(lib) = catalog.get(lib) {
                self.compile(lib, catalog)?;
            }
        }
        Ok(())
    }

    /// `code`'s chunk, set to run in a fresh environment.
    pub(super) fn chunk(&self, code: &LuaCode) -> mlua::Result<(Function, Table)> {
        chunk_in(&self.chunks, &self.new_env, &self.require, code)
    }

    /// The one Rust side of every `require`: `(id, name)` → a declared
    /// built-in module, or an imported library's table; anything else is
    /// an error.
    fn require_impl(&self, codes: Arc<Catalog>) -> mlua::Result<Function> {
        let (chunks, new_env) = (self.chunks.clone(), self.new_env.clone());
        self.lua.create_function(move |lua, (id, name): (String, String)| {
            let code = codes
                .get(&id)
                .ok_or_else(|| mlua::Error::runtime(format!("require: unknown code `{id}`")))?;
            if code.modules.contains(&name) {
                return modules::make(lua, &name);
            }
            match code.imports.get(&name).and_then(|lib| codes.get(lib)) {
                Some(lib) => {
                    // This function itself, for the library's environment.
                    let require: Value = chunks.raw_get(REQUIRE_KEY)?;
                    let (f, _) = chunk_in(&chunks, &new_env, &require, lib)?;
                    f.call::<Value>(())
                }
                None => Err(mlua::Error::runtime(format!(
                    "require(\"{name}\"): `{id}` declares no module or import `{name}`"
                ))),
            }
        })
    }
}

/// `code`'s chunk in a fresh environment with a `require` of its own
/// modules and imports.
fn chunk_in(chunks: &Table, new_env: &Function, require: &Value, code: &LuaCode) -> mlua::Result<(Function, Table)> {
    let env: Table = new_env.call((require, code.id.as_str()))?;
    let f: Function = chunks.raw_get(code.id.as_str())?;
    f.set_environment(env.clone())?;
    Ok((f, env))
}

/// Every `HOOK_EVERY` instructions: past the deadline, stop (yield, so the
/// driver drops the call; an error where yielding is impossible); at the
/// end of a slice, yield to the executor.
fn hook(lua: &Lua, _: &mlua::debug::Debug) -> mlua::Result<VmState> {
    let Some(mut call) = lua.app_data_mut::<CallState>() else {
        return Ok(VmState::Continue);
    };
    let on_call_thread = lua.current_thread().to_pointer() as usize == call.thread;
    if call.deadline.is_some_and(|d| Instant::now() >= d) {
        if on_call_thread {
            return Ok(VmState::Yield);
        }
        return Err(mlua::Error::runtime(timeout_message(&call.id)));
    }
    call.hooks += 1;
    if on_call_thread && call.hooks.is_multiple_of(SLICE_HOOKS) {
        return Ok(VmState::Yield);
    }
    Ok(VmState::Continue)
}

/// `print(...)`: one line on stderr, naming the entry.
fn print(lua: &Lua) -> mlua::Result<Function> {
    lua.create_function(move |lua, args: MultiValue| {
        let parts: Vec<String> = args.iter().map(|v| v.to_string().unwrap_or_default()).collect();
        let id = lua
            .app_data_ref::<CallState>()
            .map(|c| c.id.clone())
            .unwrap_or_default();
        eprintln!("[{id}] {}", parts.join("\t"));
        Ok(())
    })
}

/// `load(text, name, mode, env)`: text chunks only, in the call's
/// environment unless another is given.
fn load(lua: &Lua) -> mlua::Result<Function> {
    lua.create_function(
        move |lua, (chunk, name, _mode, with): (Value, Option<String>, Option<String>, Option<Table>)| {
            let Value::String(text) = chunk else {
                return Ok((Value::Nil, Some("load: only text chunks are allowed".to_string())));
            };
            let bytes = text.as_bytes().to_vec();
            if bytes.starts_with(b"\x1bLua") {
                return Ok((Value::Nil, Some("load: binary chunks are not allowed".to_string())));
            }
            let Some(env) = with.or_else(|| lua.app_data_ref::<CallState>().and_then(|c| c.env.clone())) else {
                return Ok((Value::Nil, Some("load: no environment".to_string())));
            };
            let mut c = lua.load(bytes).set_mode(ChunkMode::Text).set_environment(env);
            if let Some(n) = name {
                c = c.set_name(n);
            }
            match c.into_function() {
                Ok(f) => Ok((Value::Function(f), None)),
                Err(e) => Ok((Value::Nil, Some(super::message(&e)))),
            }
        },
    )
}
