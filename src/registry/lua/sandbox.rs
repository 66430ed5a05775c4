//! The Lua sandbox, in one place: which globals a call sees, `require`
//! limited to declared modules and imports, text-only `load`, and the
//! instruction hook that enforces `max_execution_ms` and hands out time
//! slices.
//!
//! A [`LuaState`] serves one call at a time. Each call runs in a fresh
//! environment: the allowed globals, with every library table copied, so a
//! call that sets a global or patches `string` leaves nothing behind for
//! the next (functions are stateless, as in Wippy).

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
    /// The registry and how deep in a `funcs` chain the call is.
    pub registry: std::sync::Weak<crate::registry::Inner>,
    pub depth: u32,
}

impl CallState {
    pub fn new(
        id: &str,
        deadline: Option<Instant>,
        registry: std::sync::Weak<crate::registry::Inner>,
        depth: u32,
    ) -> Self {
        CallState {
            id: id.to_string(),
            deadline,
            thread: 0,
            hooks: 0,
            registry,
            depth,
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
    /// The globals every call's environment is copied from.
    base: Table,
    /// Compiled chunks by entry id: the function's and its libraries'.
    chunks: Table,
}

impl LuaState {
    /// A sandboxed interpreter whose memory is capped at `memory` bytes,
    /// with `code` and the libraries it imports compiled.
    pub fn new(memory: usize, code: &LuaCode, catalog: &Catalog) -> mlua::Result<Self> {
        let libs = StdLib::STRING | StdLib::TABLE | StdLib::MATH | StdLib::UTF8 | StdLib::COROUTINE | StdLib::OS;
        let lua = Lua::new_with(libs, LuaOptions::default())?;
        // Strings share one metatable: hide it, so no call can reach the
        // real `string` table through it.
        lua.load("getmetatable('').__metatable = false").exec()?;
        let globals = lua.globals();
        let base = lua.create_table()?;
        for name in BASE {
            base.raw_set(*name, globals.raw_get::<Value>(*name)?)?;
        }
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
            base.raw_set(*name, copy)?;
        }
        lua.set_memory_limit(memory)?;
        lua.set_global_hook(HookTriggers::new().every_nth_instruction(HOOK_EVERY), hook)?;
        let chunks = lua.create_table()?;
        let state = LuaState { lua, base, chunks };
        state.compile(code, catalog)?;
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

    /// `code`'s chunk, set to run in a fresh call environment.
    pub(super) fn chunk(&self, code: &Arc<LuaCode>, catalog: &Arc<Catalog>) -> mlua::Result<(Function, Table)> {
        Parts {
            base: self.base.clone(),
            chunks: self.chunks.clone(),
        }
        .chunk(&self.lua, code, catalog)
    }
}

/// What a call environment is made from (cheap handles into the state).
#[derive(Clone)]
struct Parts {
    base: Table,
    chunks: Table,
}

impl Parts {
    fn chunk(&self, lua: &Lua, code: &Arc<LuaCode>, catalog: &Arc<Catalog>) -> mlua::Result<(Function, Table)> {
        let env = self.environment(lua, code, catalog)?;
        let f: Function = self.chunks.raw_get(code.id.as_str())?;
        f.set_environment(env.clone())?;
        Ok((f, env))
    }

    /// A fresh environment for `code`: the allowed globals (libraries
    /// copied), `require` for its modules and imports, `print` and `load`.
    fn environment(&self, lua: &Lua, code: &Arc<LuaCode>, catalog: &Arc<Catalog>) -> mlua::Result<Table> {
        let env = lua.create_table()?;
        for pair in self.base.pairs::<String, Value>() {
            let (k, v) = pair?;
            let v = match v {
                Value::Table(lib) => {
                    let copy = lua.create_table()?;
                    for pair in lib.pairs::<Value, Value>() {
                        let (k, v) = pair?;
                        copy.raw_set(k, v)?;
                    }
                    Value::Table(copy)
                }
                v => v,
            };
            env.raw_set(k, v)?;
        }
        env.raw_set("_G", env.clone())?;
        env.raw_set("require", self.require(lua, code, catalog)?)?;
        env.raw_set("print", print(lua, &code.id)?)?;
        env.raw_set("load", load(lua, env.clone())?)?;
        Ok(env)
    }

    /// `require(name)`: a declared built-in module, or an imported
    /// library's table (run once per call); anything else is an error.
    fn require(&self, lua: &Lua, code: &Arc<LuaCode>, catalog: &Arc<Catalog>) -> mlua::Result<Function> {
        let loaded = lua.create_table()?;
        let (parts, code, catalog) = (self.clone(), code.clone(), catalog.clone());
        lua.create_function(move |lua, name: String| {
            if let Some(v) = loaded.raw_get::<Option<Value>>(name.as_str())? {
                return Ok(v);
            }
            let value = if code.modules.contains(&name) {
                modules::make(lua, &name)?
            } else if let Some(lib) = code.imports.get(&name).and_then(|id| catalog.get(id)) {
                let (f, _) = parts.chunk(lua, lib, &catalog)?;
                f.call::<Value>(())?
            } else {
                return Err(mlua::Error::runtime(format!(
                    "require(\"{name}\"): `{}` declares no module or import `{name}`",
                    code.id
                )));
            };
            loaded.raw_set(name.as_str(), value.clone())?;
            Ok(value)
        })
    }
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
fn print(lua: &Lua, id: &str) -> mlua::Result<Function> {
    let id = id.to_string();
    lua.create_function(move |_, args: MultiValue| {
        let parts: Vec<String> = args.iter().map(|v| v.to_string().unwrap_or_default()).collect();
        eprintln!("[{id}] {}", parts.join("\t"));
        Ok(())
    })
}

/// `load(text, name, mode, env)`: text chunks only, in the caller's
/// environment unless another is given.
fn load(lua: &Lua, env: Table) -> mlua::Result<Function> {
    lua.create_function(
        move |lua, (chunk, name, _mode, with): (Value, Option<String>, Option<String>, Option<Table>)| {
            let Value::String(text) = chunk else {
                return Ok((Value::Nil, Some("load: only text chunks are allowed".to_string())));
            };
            let bytes = text.as_bytes().to_vec();
            if bytes.starts_with(b"\x1bLua") {
                return Ok((Value::Nil, Some("load: binary chunks are not allowed".to_string())));
            }
            let mut c = lua
                .load(bytes)
                .set_mode(ChunkMode::Text)
                .set_environment(with.unwrap_or_else(|| env.clone()));
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
