//! The built-in modules a Lua entry may `require` when it declares them in
//! `modules:`: `funcs` (call any registry function), `json`, `time`,
//! `logger` and `process` (spawn and monitor `process.wasm` entries).

use super::convert::{from_lua, to_lua};
use super::sandbox::CallState;
use crate::registry::Registry;
use mlua::{Lua, MultiValue, Table, Value};
use std::time::Duration;

/// The modules there are.
pub const KNOWN: &[&str] = &["funcs", "json", "time", "logger", "process"];

/// A fresh table for module `name`.
pub(super) fn make(lua: &Lua, name: &str) -> mlua::Result<Value> {
    Ok(Value::Table(match name {
        "funcs" => funcs(lua)?,
        "json" => json(lua)?,
        "time" => time(lua)?,
        "logger" => logger(lua)?,
        "process" => process(lua)?,
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
        let (registry, chain) = {
            let Some(call) = lua.app_data_ref::<CallState>() else {
                return Ok(failure("funcs.call outside a registry call"));
            };
            (call.registry.clone(), call.chain.clone())
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
        match registry.call_json_async(&target, json, chain).await {
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

/// An event a monitored process sent: its exit.
struct Event {
    from: u64,
    exit: crate::registry::process::Exit,
}

/// The events of one Lua call (`process.events()`), in arrival order.
#[derive(Default)]
pub(super) struct Mailbox {
    queue: std::sync::Mutex<std::collections::VecDeque<Event>>,
    arrived: event_listener::Event,
}

impl Mailbox {
    fn push(&self, e: Event) {
        self.queue.lock().unwrap_or_else(|e| e.into_inner()).push_back(e);
        self.arrived.notify(usize::MAX);
    }

    async fn receive(&self) -> Event {
        loop {
            let listener = self.arrived.listen();
            if let Some(e) = self.queue.lock().unwrap_or_else(|e| e.into_inner()).pop_front() {
                return e;
            }
            listener.await;
        }
    }
}

/// `process.events()`: `receive()` waits (suspending the call) for the
/// next event and returns it and `true`.
struct Events(std::sync::Arc<Mailbox>);

impl mlua::UserData for Events {
    fn add_methods<M: mlua::UserDataMethods<Self>>(methods: &mut M) {
        methods.add_async_method("receive", |lua, this, ()| async move {
            let e = this.0.receive().await;
            Ok((event_table(&lua, &e)?, true))
        });
    }
}

/// `{kind = process.event.EXIT, from = pid, result = {value = .., error = ..}}`.
fn event_table(lua: &Lua, e: &Event) -> mlua::Result<Table> {
    use crate::registry::process::Exit;
    let result = lua.create_table()?;
    match &e.exit {
        Exit::Returned(v) => result.raw_set("value", to_lua(lua, v)?)?,
        Exit::Exited(0) => result.raw_set("value", 0)?,
        other => result.raw_set("error", other.to_string())?,
    }
    let t = lua.create_table()?;
    t.raw_set("kind", "EXIT")?;
    t.raw_set("from", e.from.to_string())?;
    t.raw_set("result", result)?;
    Ok(t)
}

/// The call's mailbox, made on first use.
fn mailbox(lua: &Lua) -> Option<std::sync::Arc<Mailbox>> {
    let mut call = lua.app_data_mut::<CallState>()?;
    Some(call.events.get_or_insert_with(Default::default).clone())
}

/// `process.spawn(id, host, ...)` and `process.spawn_monitored(id, host,
/// ...)` → pid, or `nil, err` (the host is accepted; one host runs every
/// process here); `process.events()`; `process.cancel(pid)`;
/// `process.event.EXIT`.
fn process(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    let event = lua.create_table()?;
    event.raw_set("EXIT", "EXIT")?;
    t.raw_set("event", event)?;
    for (name, monitored) in [("spawn", false), ("spawn_monitored", true)] {
        let f = lua.create_function(move |lua, (id, _host, args): (String, Value, MultiValue)| {
            let Some(registry) = lua.app_data_ref::<CallState>().and_then(|c| c.registry.upgrade()) else {
                return Ok(failure("process.spawn outside a registry call"));
            };
            let registry = Registry { inner: registry };
            let mut json = Vec::with_capacity(args.len());
            for (i, a) in args.iter().enumerate() {
                match from_lua(a) {
                    Ok(v) => json.push(v),
                    Err(e) => return Ok(failure(format!("argument {}: {e}", i + 1))),
                }
            }
            let p = match registry.spawn(&id, &json) {
                Ok(p) => p,
                Err(e) => return Ok(failure(format!("{e:#}"))),
            };
            if monitored {
                if let Some(mb) = mailbox(lua) {
                    p.monitor(move |from, exit| {
                        mb.push(Event {
                            from,
                            exit: exit.clone(),
                        })
                    });
                }
            }
            if let Some(mut c) = lua.app_data_mut::<CallState>() {
                c.spawned.push(p.clone());
            }
            Ok((Value::String(lua.create_string(p.pid.to_string())?), None))
        })?;
        t.raw_set(name, f)?;
    }
    t.raw_set(
        "events",
        lua.create_function(|lua, ()| {
            let mb = mailbox(lua).ok_or_else(|| mlua::Error::runtime("process.events outside a registry call"))?;
            lua.create_userdata(Events(mb))
        })?,
    )?;
    t.raw_set(
        "cancel",
        lua.create_function(|lua, pid: String| {
            let call = lua.app_data_ref::<CallState>();
            let found = call
                .as_ref()
                .and_then(|c| c.spawned.iter().find(|p| p.pid.to_string() == pid).cloned());
            match found {
                Some(p) => {
                    p.cancel();
                    Ok((true, None))
                }
                None => Ok((false, Some(format!("no process `{pid}` spawned by this call")))),
            }
        })?,
    )?;
    Ok(t)
}
