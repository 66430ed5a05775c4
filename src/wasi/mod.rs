//! WASI 0.2 hosts, written by hand against the WIT in `wit/deps`.
//!
//! Each group has its own module: [`cli`], [`io`], [`clocks`], [`random`],
//! [`filesystem`], [`sockets`], [`http`]; [`preview1`] serves
//! `wasi_snapshot_preview1` to core modules over the same state.
//! Host state lives in a [`WasiCtx`] that the store's data exposes through
//! [`WasiView`]; host objects (streams, pollables) live in its
//! [`ResourceTable`]. Functions that wait are async: inside
//! [`crate::Func::call_async`] they suspend the guest.

pub mod cli;
pub mod clocks;
pub mod command;
pub mod filesystem;
pub mod http;
pub mod io;
pub mod preview1;
pub mod random;
pub mod sockets;
pub(crate) mod vals;

pub use cli::{Sink, Source};
pub use vals::VERSION;

pub(crate) use io::{get, get_mut, table_resource, IoView, Types};
pub(crate) use vals::{bytes_arg, bytes_val, err, iface, ok, own, rep, u64_arg};

use crate::host::table::ResourceTable;
use crate::Linker;
use anyhow::{bail, Result};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A host directory given to the guest.
#[derive(Clone, Debug)]
pub struct DirMount {
    pub host: PathBuf,
    pub guest: String,
    pub read_only: bool,
}

impl DirMount {
    /// Parses `HOST[::GUEST]` (the guest path defaults to the host path).
    pub fn parse(spec: &str, read_only: bool) -> Result<Self> {
        let (host, guest) = match spec.split_once("::") {
            Some((h, g)) => (h, g),
            None => (spec, spec),
        };
        if host.is_empty() || guest.is_empty() {
            bail!("invalid directory mapping `{spec}`: expected HOST[::GUEST]");
        }
        if !Path::new(host).is_dir() {
            bail!("--dir {spec}: host directory `{host}` does not exist");
        }
        Ok(DirMount {
            host: host.into(),
            guest: guest.into(),
            read_only,
        })
    }
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
    /// `wasi_snapshot_preview1`'s descriptor table, for core modules.
    pub(crate) preview1: preview1::State,
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
            preview1: preview1::State::default(),
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

    /// Host resources (pollables, streams, descriptors, sockets) the guest
    /// may hold at once (default [`ResourceTable::DEFAULT_MAX`]).
    pub fn max_resources(mut self, max: usize) -> Self {
        self.table.set_max(max);
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

impl<T: WasiView> IoView for T {
    fn table(&mut self) -> &mut ResourceTable {
        &mut self.wasi().table
    }
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
