//! Running a `wasi:cli/command` component: its `wasi:cli/run#run` export,
//! and the process exit status the run ends with.

use super::{Exit, WasiCtx};
use crate::{Component, Engine, Linker, Store, Val};
use anyhow::{anyhow, bail, Result};

/// Instantiates a command component with WASI and calls `wasi:cli/run#run`.
pub fn run_component(engine: &Engine, component: &Component, ctx: WasiCtx) -> Result<i32> {
    if !component.exports_interface("wasi:cli/run") {
        bail!("the component does not export `wasi:cli/run`: it is not a command");
    }
    let mut store = Store::new(engine, ctx);
    let mut linker = Linker::default();
    super::add_to_linker(&mut linker)?;
    let instance = linker.instantiate(&mut store, component)?;
    let run = instance
        .get_func(&store, "wasi:cli/run#run")
        .ok_or_else(|| anyhow!("the component does not export `wasi:cli/run` (is it a command?)"))?;
    let result = crate::dispatch::block_on(run.call_async(&mut store, &[]));
    Ok(match result {
        Ok(v) if v == [Val::Result(Ok(None))] => 0,
        Ok(_) => 1,
        Err(e) => match e.downcast_ref::<Exit>() {
            Some(Exit(code)) => *code,
            None => {
                eprintln!("error: {e:#}");
                134
            }
        },
    })
}
