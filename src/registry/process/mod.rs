//! Processes: `process.wasm` entries run one instance each, to completion,
//! on the registry's process host — spawned and monitored through the
//! embedding API ([`Registry::spawn`]) or from Lua (the `process` module),
//! run as commands ([`command`]), or kept up by `process.service` entries
//! ([`service`]).
//!
//! A process's life: *init* instantiates the component with its own store
//! and host state and takes the arguments; *run* calls the method as a task
//! of the dispatcher (it suspends at I/O, sleeps and `funcs`; fuel slices
//! keep a busy one from starving the rest); *close* drops the instance and
//! everything it held.

pub mod command;
pub mod service;

use super::{Inner, Registry};
use crate::dispatch::Signal;
use crate::pool::workers::{default_threads, WorkerPool};
use anyhow::{anyhow, bail, Result};
use serde_json::Value as Json;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// How a process ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Exit {
    /// The method returned this value (as JSON; a `result` as
    /// `{"ok": ..}` / `{"err": ..}`).
    Returned(Json),
    /// It called `wasi:cli/exit` with this status.
    Exited(i32),
    /// It trapped, or could not start or run: the message names the entry.
    Failed(String),
    /// It was cancelled.
    Cancelled,
}

impl Exit {
    /// Whether the process ended well: a value that is not an `err`, or
    /// status 0.
    pub fn is_success(&self) -> bool {
        match self {
            Exit::Returned(v) => !v.as_object().is_some_and(|o| o.len() == 1 && o.contains_key("err")),
            Exit::Exited(code) => *code == 0,
            _ => false,
        }
    }
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Exit::Returned(v) => write!(f, "returned {v}"),
            Exit::Exited(code) => write!(f, "exited with status {code}"),
            Exit::Failed(e) => write!(f, "failed: {e}"),
            Exit::Cancelled => f.write_str("was cancelled"),
        }
    }
}

/// Called with the pid and the exit when a process ends.
type Monitor = Box<dyn FnOnce(u64, &Exit) + Send>;

/// What a spawned process shares with its handles.
struct State {
    exit: Mutex<Option<Exit>>,
    done: Signal,
    cancel: Signal,
    /// Called once, with the exit, when the process ends.
    monitors: Mutex<Vec<Monitor>>,
}

/// A handle to a spawned process. Cheap to clone; dropping it does not
/// stop the process.
#[derive(Clone)]
pub struct Process {
    pub pid: u64,
    /// The `process.wasm` entry.
    pub id: String,
    state: Arc<State>,
}

impl Process {
    /// Waits for the process to end (the caller is suspended meanwhile).
    pub async fn wait(&self) -> Exit {
        self.state.done.wait().await;
        self.exit().unwrap_or(Exit::Cancelled)
    }

    /// The exit, if the process has ended.
    pub fn exit(&self) -> Option<Exit> {
        self.state.exit.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Stops the process at its next suspension or fuel slice; it ends
    /// with [`Exit::Cancelled`].
    pub fn cancel(&self) {
        self.state.cancel.set();
    }

    /// Calls `f` with the exit when the process ends (at once if it has).
    pub fn monitor(&self, f: impl FnOnce(u64, &Exit) + Send + 'static) {
        let mut monitors = self.state.monitors.lock().unwrap_or_else(|e| e.into_inner());
        match self.exit() {
            Some(exit) => {
                drop(monitors);
                f(self.pid, &exit);
            }
            None => monitors.push(Box::new(f)),
        }
    }

    fn finish(&self, exit: Exit) {
        *self.state.exit.lock().unwrap_or_else(|e| e.into_inner()) = Some(exit.clone());
        self.state.done.set();
        let monitors = std::mem::take(&mut *self.state.monitors.lock().unwrap_or_else(|e| e.into_inner()));
        for m in monitors {
            m(self.pid, &exit);
        }
    }
}

/// Extra settings of one spawn.
#[derive(Debug, Clone, Default)]
pub struct SpawnOptions {
    /// Appended to the process's WASI arguments (a command's argv).
    pub argv: Vec<String>,
}

static NEXT_PID: AtomicU64 = AtomicU64::new(1);

impl Inner {
    /// The threads processes run on, started at the first spawn.
    fn process_host(&self) -> Result<&WorkerPool> {
        if let Some(h) = self.process_host.get() {
            return Ok(h);
        }
        let host = WorkerPool::new("process", default_threads())?;
        Ok(self.process_host.get_or_init(|| host))
    }
}

impl Registry {
    /// `process.wasm` entry IDs.
    pub fn processes(&self) -> impl Iterator<Item = &str> {
        self.inner.processes.keys().map(|s| s.as_str())
    }

    /// Spawns process entry `id` with positional JSON arguments (checked
    /// against its method's parameters now).
    ///
    /// # Errors
    /// An unknown or broken entry, or arguments that do not fit.
    pub fn spawn(&self, id: &str, args: &[Json]) -> Result<Process> {
        self.spawn_with(id, args, SpawnOptions::default())
    }

    /// [`Registry::spawn`] with extra settings.
    pub fn spawn_with(&self, id: &str, args: &[Json], options: SpawnOptions) -> Result<Process> {
        let f = match self.inner.processes.get(id) {
            Some(f) => f.clone(),
            None if self.inner.broken.contains_key(id) => {
                bail!("`{id}` did not load: {}", self.inner.broken[id])
            }
            None if self.inner.functions.contains_key(id) || self.inner.lua.contains_key(id) => {
                bail!("`{id}` is a function, not a process.wasm entry")
            }
            None => bail!("unknown process `{id}`"),
        };
        let ty =
            f.ty.clone()
                .ok_or_else(|| anyhow!("`{id}` takes or returns resources"))?;
        let vals = super::json::args_from_json(&ty, args).map_err(|e| anyhow!("arguments of `{id}`: {e:#}"))?;
        let process = Process {
            pid: NEXT_PID.fetch_add(1, Ordering::Relaxed),
            id: id.to_string(),
            state: Arc::new(State {
                exit: Mutex::new(None),
                done: Signal::default(),
                cancel: Signal::default(),
                monitors: Mutex::new(Vec::new()),
            }),
        };
        let (p, weak, inner) = (process.clone(), Arc::downgrade(&self.inner), self.inner.clone());
        let task = async move {
            let run = async {
                // Init: its own instance and host state.
                let limit = f.spec.limits().max_execution();
                let deadline = limit.map(|d| std::time::Instant::now() + d);
                let mut w = match inner.instantiate_process(&weak, &f, &options.argv, deadline).await {
                    Ok(w) => w,
                    Err(e) => return Exit::Failed(format!("{e:#}")),
                };
                w.store.set_deadline(deadline);
                let result = w.func.call_async(&mut w.store, &vals).await;
                // Close: the instance and all it holds go now.
                drop(w);
                match result {
                    Ok(out) => match super::json::result_to_json(&ty, &out) {
                        Ok(v) => Exit::Returned(v),
                        Err(e) => Exit::Failed(format!("`{}`: {e:#}", f.id)),
                    },
                    Err(e) => match e.downcast_ref::<crate::wasi::Exit>() {
                        Some(crate::wasi::Exit(code)) => Exit::Exited(*code),
                        None => Exit::Failed(format!("`{}`: {e:#}", f.id)),
                    },
                }
            };
            let cancelled = async {
                p.state.cancel.wait().await;
                Exit::Cancelled
            };
            let exit = futures_lite::future::or(run, cancelled).await;
            p.finish(exit);
        };
        self.inner.process_host()?.spawn(task).detach();
        Ok(process)
    }
}
