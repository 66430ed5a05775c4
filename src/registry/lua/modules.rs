//! The built-in modules a Lua entry may `require` when it declares them in
//! `modules:`: `funcs` (call any registry function), `json`, `time` and
//! `logger`.

use super::convert::{from_lua, to_lua};
use super::sandbox::CallState;
use crate::registry::Registry;
use mlua::{Lua, MultiValue, Table, Value};
use std::time::Duration;

/// The modules there are.
pub const KNOWN: &[&str] = &["funcs", "json", "time", "logger"];

/// A fresh table for module `name`.
pub(super) fn make(lua: &Lua, name: &str) -> mlua::Result<Value> {
    Ok(Value::Table(match name {
        "funcs" => funcs(lua)?,
        "json" => json(lua)?,
        "time" => time(lua)?,
        "logger" => logger(lua)?,
        other => return Err(mlua::Error::runtime(format!("no built-in module `{other}`"))),
    }))
}

/// `nil, message`: how every module reports a failure.
fn failure(message: impl Into<String>) -> (Value, Option<String>) {
    (Value::Nil, Some(message.into()))
}

/// `funcs.call(target, ...)`: calls a registry function (WASM, Lua or
/// native) with the Lua arguments, mapped as JSON payloads are; returns its
/// result, or `nil, err` for any failure. The caller is suspended while the
/// callee runs.
fn funcs(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    let call = lua.create_async_function(|lua, (target, args): (String, MultiValue)| async move {
        let (registry, depth) = {
            let Some(call) = lua.app_data_ref::<CallState>() else {
                return Ok(failure("funcs.call outside a registry call"));
            };
            (call.registry.clone(), call.depth)
        };
        let Some(inner) = registry.upgrade() else {
            return Ok(failure("the registry is gone"));
        };
        let registry = Registry { inner };
        let mut json = Vec::with_capacity(args.len());
        for (i, a) in args.iter().enumerate() {
            match from_lua(a) {
                Ok(v) => json.push(v),
                Err(e) => return Ok(failure(format!("argument {}: {e}", i + 1))),
            }
        }
        match registry.call_json_async(&target, json, depth + 1).await {
            Ok(v) => Ok((to_lua(&lua, &v)?, None)),
            Err(e) => Ok(failure(format!("{e:#}"))),
        }
    })?;
    t.raw_set("call", call)?;
    Ok(t)
}

/// `json.encode(v)` → text, `json.decode(text)` → value; `nil, err` on
/// failure.
fn json(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.raw_set(
        "encode",
        lua.create_function(|_, v: Value| {
            Ok(match from_lua(&v) {
                Ok(j) => (Some(j.to_string()), None),
                Err(e) => (None, Some(e)),
            })
        })?,
    )?;
    t.raw_set(
        "decode",
        lua.create_function(|lua, text: mlua::LuaString| {
            Ok(match serde_json::from_slice::<serde_json::Value>(&text.as_bytes()) {
                Ok(j) => (to_lua(lua, &j)?, None),
                Err(e) => failure(format!("invalid JSON: {e}")),
            })
        })?,
    )?;
    Ok(t)
}

/// `time.now()` → seconds since the epoch (a float), `time.sleep(ms)`,
/// which suspends the call without holding its thread.
fn time(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.raw_set(
        "now",
        lua.create_function(|_, ()| {
            let d = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            Ok(d.as_secs_f64())
        })?,
    )?;
    t.raw_set(
        "sleep",
        lua.create_async_function(|_, ms: f64| async move {
            if !ms.is_finite() || ms < 0.0 {
                return Err(mlua::Error::runtime("time.sleep: expected milliseconds >= 0"));
            }
            async_io::Timer::after(Duration::from_secs_f64(ms / 1000.0)).await;
            Ok(())
        })?,
    )?;
    Ok(t)
}

/// `logger:debug|info|warn|error(message, fields?)`: one line on stderr,
/// naming the entry; `fields` is a table printed as JSON.
fn logger(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    for level in ["debug", "info", "warn", "error"] {
        let me = t.clone();
        let f = lua.create_function(move |lua, mut args: MultiValue| {
            // `logger:info(..)` passes the table first; `logger.info(..)` not.
            if matches!(args.front(), Some(Value::Table(first)) if *first == me) {
                args.pop_front();
            }
            let message = args
                .pop_front()
                .map(|v| v.to_string().unwrap_or_default())
                .unwrap_or_default();
            let fields = match args.pop_front() {
                Some(v @ Value::Table(_)) => from_lua(&v).map(|j| format!(" {j}")).unwrap_or_default(),
                _ => String::new(),
            };
            let id = lua
                .app_data_ref::<CallState>()
                .map(|c| c.id.clone())
                .unwrap_or_default();
            eprintln!("{} [{id}] {message}{fields}", level.to_uppercase());
            Ok(())
        })?;
        t.raw_set(level, f)?;
    }
    Ok(t)
}
