//! WASI 0.2 hosts, written by hand against the WIT in `wit/deps`.
//!
//! Each group has its own module: [`cli`], [`io`], [`clocks`], [`random`].
//! Host state lives in a [`WasiCtx`] that the store's data exposes through
//! [`WasiView`]; host objects (streams, pollables) live in its
//! [`ResourceTable`]. Functions that wait are async: inside
//! [`crate::Func::call_async`] they suspend the guest.

pub mod cli;
pub mod clocks;
pub mod filesystem;
pub mod http;
pub mod io;
pub mod random;
pub mod sockets;

use crate::host::table::ResourceTable;
use crate::types::ResourceType;
use crate::val::{ResourceAny, Val};
use crate::Linker;
use anyhow::{anyhow, Result};
use std::sync::{Arc, Mutex};

/// The WASI version whose WIT the hosts implement; guests importing any
/// semver-compatible `0.2.x` link to it.
pub const VERSION: &str = "0.2.12";

/// `ns:pkg/iface@VERSION`.
pub(crate) fn iface(name: &str) -> String {
    format!("{name}@{VERSION}")
}

/// Where a guest's standard output or error goes.
#[derive(Clone, Debug)]
pub enum Sink {
    /// The host process's own stream.
    Inherit,
    /// An in-memory buffer the embedder can read.
    Capture(Arc<Mutex<Vec<u8>>>),
    /// Discard.
    Null,
}

/// Where a guest's standard input comes from.
#[derive(Clone, Debug)]
pub enum Source {
    Inherit,
    Bytes(Arc<Vec<u8>>),
    /// Immediately at end of stream.
    Null,
}

/// A guest called `wasi:cli/exit`: the process exit status it asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exit(pub i32);

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "guest exited with status {}", self.0)
    }
}

impl std::error::Error for Exit {}

/// Per-instance WASI state.
pub struct WasiCtx {
    pub(crate) args: Vec<String>,
    pub(crate) env: Vec<(String, String)>,
    pub(crate) cwd: Option<String>,
    pub(crate) stdin: Source,
    pub(crate) stdout: Sink,
    pub(crate) stderr: Sink,
    pub(crate) table: ResourceTable,
    pub(crate) clocks: clocks::ClockState,
    pub(crate) random: random::RandomState,
    pub(crate) preopens: Vec<(filesystem::Descriptor, String)>,
    pub(crate) network: sockets::NetworkPolicy,
    /// Sockets open now, for [`sockets::NetworkPolicy::max_sockets`].
    pub(crate) open_sockets: Arc<std::sync::atomic::AtomicU64>,
}

impl Default for WasiCtx {
    fn default() -> Self {
        WasiCtx {
            args: Vec::new(),
            env: Vec::new(),
            cwd: None,
            stdin: Source::Null,
            stdout: Sink::Null,
            stderr: Sink::Null,
            table: ResourceTable::new(),
            clocks: clocks::ClockState::new(),
            random: random::RandomState::new(),
            preopens: Vec::new(),
            network: sockets::NetworkPolicy::default(),
            open_sockets: Arc::default(),
        }
    }
}

impl WasiCtx {
    /// An empty context: no arguments or environment, null stdio.
    pub fn new() -> Self {
        Self::default()
    }
    pub fn args<S: Into<String>>(mut self, args: impl IntoIterator<Item = S>) -> Self {
        self.args = args.into_iter().map(Into::into).collect();
        self
    }
    pub fn env(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((name.into(), value.into()));
        self
    }
    pub fn cwd(mut self, cwd: impl Into<String>) -> Self {
        self.cwd = Some(cwd.into());
        self
    }
    pub fn stdin(mut self, s: Source) -> Self {
        self.stdin = s;
        self
    }
    pub fn stdout(mut self, s: Sink) -> Self {
        self.stdout = s;
        self
    }
    pub fn stderr(mut self, s: Sink) -> Self {
        self.stderr = s;
        self
    }
    /// Inherits the host's stdin, stdout and stderr.
    pub fn inherit_stdio(self) -> Self {
        self.stdin(Source::Inherit).stdout(Sink::Inherit).stderr(Sink::Inherit)
    }
    /// What the guest may do on the network (default: nothing).
    pub fn network(mut self, policy: sockets::NetworkPolicy) -> Self {
        self.network = policy;
        self
    }

    /// The host objects behind the guest's handles.
    pub fn table(&mut self) -> &mut ResourceTable {
        &mut self.table
    }
}

/// Store data that carries a [`WasiCtx`].
pub trait WasiView: 'static {
    fn wasi(&mut self) -> &mut WasiCtx;
}

impl WasiView for WasiCtx {
    fn wasi(&mut self) -> &mut WasiCtx {
        self
    }
}

/// The host resource types shared between interfaces (`use`d types).
#[derive(Clone)]
pub(crate) struct Types {
    pub error: ResourceType,
    pub pollable: ResourceType,
    pub input_stream: ResourceType,
    pub output_stream: ResourceType,
}

/// Defines every WASI 0.2 interface implemented so far in `linker`.
pub fn add_to_linker<T: WasiView>(linker: &mut Linker<T>) -> Result<()> {
    let types = io::add_to_linker(linker);
    cli::add_to_linker(linker, &types);
    clocks::add_to_linker(linker, &types);
    filesystem::add_to_linker(linker, &types);
    random::add_to_linker(linker);
    sockets::add_to_linker(linker, &types);
    http::add_to_linker(linker, &types);
    // Every WASI host reads bytes through `bytes_arg`.
    linker.compact_bytes("wasi:");
    Ok(())
}

// Small helpers for the dynamic host functions.

/// Defines resource type `name` whose objects (of type `R`) live in the
/// context's table and are deleted when the guest drops its handle.
pub(crate) fn table_resource<T: WasiView, R: Send + 'static>(
    inst: &mut crate::LinkerInstance<T>,
    name: &str,
) -> ResourceType {
    inst.resource(name, |mut cx, rep| {
        cx.data_mut().wasi().table.delete(crate::Resource::<R>::new(rep))?;
        Ok(())
    })
}

/// The table object behind a handle argument.
pub(crate) fn get<'a, T: WasiView, R: 'static>(cx: &'a mut crate::StoreCx<'_, T>, v: &Val) -> Result<&'a R> {
    Ok(cx.data_mut().wasi().table.get(&crate::Resource::<R>::new(rep(v)?))?)
}

/// The table object behind a handle argument, mutably.
pub(crate) fn get_mut<'a, T: WasiView, R: 'static>(cx: &'a mut crate::StoreCx<'_, T>, v: &Val) -> Result<&'a mut R> {
    Ok(cx
        .data_mut()
        .wasi()
        .table
        .get_mut(&crate::Resource::<R>::new(rep(v)?))?)
}

pub(crate) fn rep(v: &Val) -> Result<u32> {
    match v {
        Val::Resource(r) => Ok(r.rep),
        other => Err(anyhow!("expected a resource handle, got {}", other.kind())),
    }
}

pub(crate) fn own(ty: &ResourceType, rep: u32) -> Val {
    Val::Resource(ResourceAny {
        ty: ty.clone(),
        rep,
        own: true,
    })
}

pub(crate) fn ok(v: Option<Val>) -> Val {
    Val::Result(Ok(v.map(Box::new)))
}

pub(crate) fn err(v: Val) -> Val {
    Val::Result(Err(Some(Box::new(v))))
}

pub(crate) fn u64_arg(v: &Val) -> Result<u64> {
    match v {
        Val::U64(x) => Ok(*x),
        other => Err(anyhow!("expected u64, got {}", other.kind())),
    }
}

pub(crate) fn bytes_arg(v: &Val) -> Result<Vec<u8>> {
    match v {
        Val::Bytes(b) => Ok(b.clone()),
        Val::List(items) => items
            .iter()
            .map(|b| match b {
                Val::U8(b) => Ok(*b),
                other => Err(anyhow!("expected u8, got {}", other.kind())),
            })
            .collect(),
        other => Err(anyhow!("expected list<u8>, got {}", other.kind())),
    }
}

/// Bytes for the guest, in the compact form that lowers with one copy.
pub(crate) fn bytes_val(bytes: Vec<u8>) -> Val {
    Val::Bytes(bytes)
}

#[cfg(test)]
mod tests {
    /// Every function of every WASI 0.2 interface in the vendored WIT
    /// (unstable ones too) has a host, so no component fails to link for
    /// lack of one. Exports (`wasi:cli/run`, `wasi:http/incoming-handler`)
    /// are the guest's to define.
    #[test]
    fn every_wasi_interface_function_has_a_host() {
        let mut resolve = wit_parser::Resolve {
            all_features: true,
            ..Default::default()
        };
        let wit = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/c_http/wit");
        resolve.push_dir(&wit).unwrap();
        let mut linker = crate::Linker::<super::WasiCtx>::default();
        super::add_to_linker(&mut linker).unwrap();
        let mut missing = Vec::new();
        let mut checked = 0;
        for (id, iface) in resolve.interfaces.iter() {
            let name = resolve.id_of(id).unwrap();
            if !name.starts_with("wasi:") || name.starts_with("wasi:cli/run@") || name.contains("incoming-handler") {
                continue;
            }
            let host = linker.lookup_instance(&name);
            for f in iface.functions.keys() {
                checked += 1;
                if !host.is_some_and(|h| h.funcs.contains_key(f)) {
                    missing.push(format!("{name}#{f}"));
                }
            }
        }
        assert!(missing.is_empty(), "no host for: {missing:?}");
        assert!(checked > 150, "only {checked} functions checked");
    }
}
