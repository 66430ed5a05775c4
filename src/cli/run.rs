//! Running a `wasi:cli/command` program, as `wippy-wasm run` does.

use crate::wasi::command::run_component;
use crate::wasi::{self, DirMount, Exit, WasiCtx};
use crate::{Component, Engine, Linker, Store};
use anyhow::{anyhow, Context, Result};
use std::path::Path;

/// What to run and with what.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Arguments after the program (argv[1..]).
    pub args: Vec<String>,
    /// `argv[0]`; defaults to the program's file name.
    pub argv0: Option<String>,
    pub env: Vec<(String, String)>,
    pub dirs: Vec<DirMount>,
    /// Call this export instead of `wasi:cli/run`: a WAVE call, `name(args)`.
    pub invoke: Option<String>,
    /// What the guest may do on the network.
    pub network: crate::wasi::sockets::NetworkPolicy,
}

/// How a run ended, as a process exit status: 0 for success (a normal return
/// or `exit(ok)`), 1 for `exit(err)` or `run` returning `err`, n for
/// `exit-with-code(n)`, 134 for a trap (whose message goes to stderr).
pub fn run_file(path: &Path, opts: &RunOptions, ctx: WasiCtx) -> Result<i32> {
    let engine = Engine::default();
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let component =
        Component::from_program(&engine, &bytes).with_context(|| format!("cannot load {}", path.display()))?;
    let argv0 = opts.argv0.clone().unwrap_or_else(|| {
        path.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    });
    let mut ctx = ctx
        .args(std::iter::once(argv0).chain(opts.args.iter().cloned()))
        .network(opts.network.clone());
    for (k, v) in &opts.env {
        ctx = ctx.env(k, v);
    }
    for d in &opts.dirs {
        ctx = ctx.preopen_dir(&d.host, &d.guest, d.read_only)?;
    }
    match &opts.invoke {
        Some(call) => invoke(&engine, &component, ctx, call),
        None => run_component(&engine, &component, ctx),
    }
}

/// Calls one export with WAVE-encoded arguments and prints its result.
pub fn invoke(engine: &Engine, component: &Component, ctx: WasiCtx, call: &str) -> Result<i32> {
    let name = super::wave::call_name(call)?;
    let mut store = Store::new(engine, ctx);
    let mut linker = Linker::default();
    wasi::add_to_linker(&mut linker)?;
    let instance = linker.instantiate(&mut store, component)?;
    let func = instance
        .get_func(&store, &name)
        .ok_or_else(|| anyhow!("the component has no exported function `{name}`"))?;
    let args = super::wave::call_args(call, func.ty())?;
    match crate::dispatch::block_on(func.call_async(&mut store, &args)) {
        Ok(results) => {
            if let (Some(v), Some(t)) = (results.first(), func.ty().result.as_ref()) {
                println!("{}", super::wave::format(v, t)?);
            }
            Ok(0)
        }
        Err(e) => match e.downcast_ref::<Exit>() {
            Some(Exit(code)) => Ok(*code),
            None => {
                eprintln!("error: {e:#}");
                Ok(134)
            }
        },
    }
}
