//! The host that wasmtime's component scripts (`tests/misc_testsuite/
//! component-model`) import, as wasmtime's `link_component_spectest`
//! defines it: functions at the root and in `host` (with a nested
//! instance), a core module, host resources whose destructor calls are
//! counted across the whole script, and the async functions its WASI 0.3
//! scripts import (defined with `func_async`; those scripts are skipped).

use crate::dispatch::HostFuture;
use crate::values::ResourceAny;
use crate::{CoreModule, Engine, Linker, ResourceType, Val};
use anyhow::{anyhow, bail, Result};
use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

/// `resource1` destructor calls, shared by every store of one script.
#[derive(Default)]
struct Drops {
    count: AtomicU32,
    last: AtomicU32,
}

const SIMPLE_MODULE: &str = r#"(module
  (global (export "g") i32 i32.const 100)
  (func (export "f") (result i32) i32.const 101))"#;

/// How long `never-return` waits before failing the call: wasmtime's never
/// resolves, which would hang a script that lowers it synchronously.
const NEVER: Duration = Duration::from_secs(30);

fn never() -> Result<HostFuture> {
    Ok(Box::pin(async {
        async_io::Timer::after(NEVER).await;
        bail!("never-return: still pending after {} s; giving up", NEVER.as_secs())
    }))
}

/// Results after one yield to the dispatcher (wasmtime yields to tokio).
fn slowly(results: Vec<Val>) -> Result<HostFuture> {
    Ok(Box::pin(async move {
        futures_lite::future::yield_now().await;
        Ok(results)
    }))
}

/// Defines the spectest host in `linker`.
pub(super) fn link(linker: &mut Linker<()>, engine: &Engine) -> Result<()> {
    linker.root().func_wrap("host-return-two", |_, (): ()| Ok(2u32));
    linker.root().func_async("host-echo-u32", |_, args| {
        let echo = args.to_vec();
        Ok(Box::pin(async move { Ok(echo) }))
    });
    let host = linker.instance("host");
    host.func_async("never-return", |_, _| never());
    host.func_async("return-two-slowly", |_, _| slowly(vec![Val::S32(2)]));
    host.func_async("echo-slowly", |_, args| slowly(args.to_vec()));
    host.func_async("[method]resource1.never-return", |_, _| never());
    host.func_wrap("return-three", |_, (): ()| Ok(3u32));
    host.instance("nested").func_wrap("return-four", |_, (): ()| Ok(4u32));
    host.func_wrap("return-hi", |_, (): ()| Ok("hi".to_string()));
    let module = wat::parse_str(SIMPLE_MODULE).map_err(|e| anyhow!("{e}"))?;
    host.module("simple-module", &CoreModule::new(engine, &module)?);

    let drops = Arc::new(Drops::default());
    let d = drops.clone();
    let resource1 = host.resource("resource1", move |_, rep| {
        d.count.fetch_add(1, SeqCst);
        d.last.store(rep, SeqCst);
        Ok(())
    });
    host.resource("resource2", |_, _| Ok(()));
    // The same type under a second name: `(eq ..)` between the two links.
    host.resource_type("resource1-again", resource1.clone());

    let r1 = resource1.clone();
    host.func_new("[constructor]resource1", move |_, args, results| {
        results.push(Val::Resource(ResourceAny {
            ty: r1.clone(),
            rep: u32_at(args, 0)?,
            own: true,
        }));
        Ok(())
    });
    let r1 = resource1.clone();
    host.func_new("[static]resource1.assert", move |_, args, _| {
        let r = handle(args, 0, &r1)?;
        check(r.rep == u32_at(args, 1)?, "resource1.assert: wrong rep")
    });
    let d = drops.clone();
    host.func_wrap("[static]resource1.last-drop", move |_, (): ()| Ok(d.last.load(SeqCst)));
    host.func_wrap("[static]resource1.drops", move |_, (): ()| Ok(drops.count.load(SeqCst)));
    let r1 = resource1.clone();
    host.func_new("[method]resource1.simple", move |_, args, _| {
        let r = handle(args, 0, &r1)?;
        check(!r.own && r.rep == u32_at(args, 1)?, "resource1.simple: wrong handle")
    });
    let r1 = resource1.clone();
    host.func_new("[method]resource1.take-borrow", move |_, args, _| {
        let (a, b) = (handle(args, 0, &r1)?, handle(args, 1, &r1)?);
        check(!a.own && !b.own, "resource1.take-borrow: expected two borrows")
    });
    host.func_new("[method]resource1.take-own", move |_, args, _| {
        let (a, b) = (handle(args, 0, &resource1)?, handle(args, 1, &resource1)?);
        check(!a.own && b.own, "resource1.take-own: expected a borrow and an own")
    });
    Ok(())
}

fn u32_at(args: &[Val], i: usize) -> Result<u32> {
    match args.get(i) {
        Some(Val::U32(x)) => Ok(*x),
        other => bail!("argument {i}: expected u32, got {other:?}"),
    }
}

fn handle<'a>(args: &'a [Val], i: usize, ty: &ResourceType) -> Result<&'a ResourceAny> {
    match args.get(i) {
        Some(Val::Resource(r)) if r.ty == *ty => Ok(r),
        other => bail!("argument {i}: expected a resource1 handle, got {other:?}"),
    }
}

/// wasmtime's host asserts; here a failed one is an error of the call.
fn check(ok: bool, what: &str) -> Result<()> {
    if ok {
        Ok(())
    } else {
        bail!("{what}")
    }
}
