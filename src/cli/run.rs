//! Running a program, as `wippy-wasm run` does: a `wasi:cli/command`
//! component, or a wasm32-wasip1 core module, which runs natively on the
//! `wasi_snapshot_preview1` layer ([`crate::wasi::preview1`]).

use crate::wasi::command::run_component;
use crate::wasi::preview1;
use crate::wasi::{self, DirMount, Exit, WasiCtx};
use crate::{Component, CoreModule, Engine, Linker, Store, Val};
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
/// `exit-with-code(n)` or a core module's `proc_exit(n)`, 134 for a trap
/// (whose message goes to stderr).
pub fn run_file(path: &Path, opts: &RunOptions, ctx: WasiCtx) -> Result<i32> {
    let engine = Engine::default();
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let program = if is_core_module(&bytes) {
        let module = core_module(&engine, &bytes).with_context(|| format!("cannot load {}", path.display()))?;
        Program::Module(module)
    } else {
        Program::Component(Component::new(&engine, &bytes).with_context(|| format!("cannot load {}", path.display()))?)
    };
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
    match (&program, &opts.invoke) {
        (Program::Component(c), Some(call)) => invoke(&engine, c, ctx, call),
        (Program::Component(c), None) => run_component(&engine, c, ctx),
        (Program::Module(m), Some(call)) => invoke_module(&engine, m, ctx, call),
        (Program::Module(m), None) => preview1::run_module(&engine, m, ctx),
    }
}

/// What `run` was given.
enum Program {
    Component(Component),
    /// A core module (importing `wasi_snapshot_preview1`, or nothing).
    Module(CoreModule),
}

/// Compiles a core module from its binary or `(module ...)` text.
fn core_module(engine: &Engine, bytes: &[u8]) -> Result<CoreModule> {
    let binary = wat::parse_bytes(bytes).map_err(|e| anyhow!("invalid module text: {e}"))?;
    CoreModule::new(engine, &binary)
}

/// Whether `bytes` are a core wasm module (binary or `(module ...)` text).
fn is_core_module(bytes: &[u8]) -> bool {
    if bytes.starts_with(b"\0asm") {
        return bytes.get(4..8) == Some(&[1, 0, 0, 0]);
    }
    std::str::from_utf8(bytes).is_ok_and(|t| {
        let t = t.trim_start();
        t.starts_with("(module")
            || t.strip_prefix('(')
                .is_some_and(|r| r.trim_start().starts_with("module"))
    })
}

/// `--invoke` on a core module: runs `_initialize` if it exports one (a
/// reactor), then calls the export with WAVE arguments of its core types
/// (`i32` as `s32`, `i64` as `s64`, `f32`, `f64`) and prints the result.
pub fn invoke_module(engine: &Engine, module: &CoreModule, ctx: WasiCtx, call: &str) -> Result<i32> {
    let name = super::wave::call_name(call)?;
    let mut store = Store::new(engine, ctx);
    let instance = preview1::Instance::new(&mut store, module)?;
    let ty = instance
        .func_type(&store, &name)?
        .ok_or_else(|| anyhow!("the module has no exported function `{name}`"))?;
    let args = super::wave::call_args(call, &ty)?;
    let run = async {
        if preview1::exports_func(module, "_initialize") {
            instance.call_async(&mut store, "_initialize", &[]).await?;
        }
        instance.call_async(&mut store, &name, &args).await
    };
    let result = crate::dispatch::block_on(run);
    if let (Ok(results), Some(t)) = (&result, &ty.result) {
        let v = match results.as_slice() {
            [v] => v.clone(),
            vs => Val::Tuple(vs.to_vec()),
        };
        println!("{}", super::wave::format(&v, t)?);
    }
    Ok(preview1::exit_status(result))
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
