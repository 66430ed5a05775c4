//! `wasi_snapshot_preview1`, natively: a wasm32-wasip1 core module runs on
//! wasmi with its preview 1 imports served straight from our WASI 0.2 host
//! state — the [`WasiCtx`] (arguments, environment, stdio, preopens, clocks,
//! randomness) and the `wasi:filesystem`, `wasi:cli` and `wasi:io` objects —
//! with no adapter component in between, as wasmtime's `p1.rs` does.
//!
//! Every function of the witx (`wasi_snapshot_preview1.witx`) is defined,
//! each in the file of its concern: `proc.rs` (arguments, environment,
//! exit, randomness, `sched_yield`, `sock_*`), `clocks.rs`, `io.rs` (reads,
//! writes, seeks, closing and renumbering fds), [`fs`] (descriptor and path
//! operations, through the cap-std sandbox of `wasi:filesystem`), `poll.rs`
//! (`poll_oneoff`). The descriptor table is `fds.rs`, errno mapping
//! [`errno`], guest memory access `memory.rs`.
//!
//! Calls that wait — `poll_oneoff` on a clock or on stdin, a read of the
//! host's stdin, `sched_yield` — suspend the guest through the dispatcher:
//! the module's export is driven as a resumable call
//! ([`crate::dispatch`]), so the executor runs other work meanwhile, and
//! fuel slices and deadlines apply as they do to components.
//!
//! Semantics follow the witx and wasmtime; where they part from wasmtime it
//! is said at the function (new fds take the lowest free number, as POSIX
//! does; a host directory holding a socket does not trap).

mod clocks;
pub mod errno;
mod fds;
pub mod fs;
mod io;
mod memory;
mod poll;
mod proc;

use self::errno::{ret, Error, Result};
use self::fds::Fds;
use self::memory::Mem;
use super::{Exit, WasiCtx, WasiView};
use crate::canon::state::StoreData;
use crate::canon::trap::from_wasmi;
use crate::dispatch::{suspend_with, Finish, Resume};
use crate::values::{FuncType, Type, Val};
use crate::{CoreModule, Engine, Store};
use anyhow::{anyhow, bail, Context};
use wasmi::{AsContextMut, StoreContextMut};

/// The import module preview 1 functions live in.
pub const MODULE: &str = "wasi_snapshot_preview1";

/// A host function's view of the store.
pub(crate) type Caller<'a, T> = wasmi::Caller<'a, StoreData<T>>;

/// The wasmi linker core modules are instantiated with.
pub(crate) type Linker<T> = wasmi::Linker<StoreData<T>>;

/// The preview 1 state of a [`WasiCtx`]: its descriptor table, made on the
/// first preview 1 call from the context's stdio and preopens.
#[derive(Default)]
pub(crate) struct State {
    fds: Option<Fds>,
}

/// The descriptor table of `ctx`.
pub(crate) fn fds(ctx: &mut WasiCtx) -> &mut Fds {
    if ctx.preview1.fds.is_none() {
        ctx.preview1.fds = Some(Fds::new(ctx));
    }
    match &mut ctx.preview1.fds {
        Some(fds) => fds,
        None => unreachable!("made above"),
    }
}

/// The memory the module exports as `memory` (preview 1 functions read and
/// write the caller's memory).
fn memory<T>(c: &Caller<'_, T>) -> Result<wasmi::Memory> {
    // A guest that touched a guarded page (`crate::memory`) stops before
    // the host acts on its memory.
    c.data().rt.memories.check().map_err(|e| Error::Trap(e.into()))?;
    c.get_export("memory")
        .and_then(wasmi::Extern::into_memory)
        .ok_or_else(|| Error::trap("the module exports no memory named `memory`"))
}

/// The caller's WASI context (for functions that need no memory).
pub(crate) fn wasi<'a, T: WasiView>(c: &'a mut Caller<'_, T>) -> &'a mut WasiCtx {
    c.data_mut().user.wasi()
}

/// The caller's memory and WASI context.
pub(crate) fn parts<'a, T: WasiView>(c: &'a mut Caller<'_, T>) -> Result<(Mem<'a>, &'a mut WasiCtx)> {
    let m = memory(c)?;
    let (bytes, data) = crate::canon::state::visible_mut(m, c);
    Ok((Mem(bytes), data.user.wasi()))
}

/// A host future that does not borrow the store.
pub(crate) type Wait<R> = std::pin::Pin<Box<dyn std::future::Future<Output = R> + Send>>;

/// Ends a call that must wait: suspends the guest (or, where the call
/// cannot be paused, blocks) until `wait` resolves, then `finish` writes its
/// outcome into the guest. Returns the errno.
pub(crate) fn suspend<T: WasiView, R: Send + 'static>(
    c: &mut Caller<'_, T>,
    wait: Wait<R>,
    finish: impl FnOnce(Mem<'_>, &mut WasiCtx, R) -> Result<()> + Send + 'static,
) -> std::result::Result<i32, wasmi::Error> {
    let m = match memory(c) {
        Ok(m) => m,
        Err(e) => return ret(Err(e)),
    };
    let resume: Resume<T> = Box::pin(async move {
        let r = wait.await;
        Box::new(move |mut store: StoreContextMut<'_, StoreData<T>>| {
            let (bytes, data) = crate::canon::state::visible_mut(m, &mut store);
            Ok(vec![wasmi::Val::I32(ret(finish(Mem(bytes), data.user.wasi(), r))?)])
        }) as Finish<T>
    });
    let mut out = [wasmi::Val::I32(0)];
    suspend_with(c.as_context_mut(), resume, &mut out)?;
    Ok(out[0].i32().unwrap_or(0))
}

/// Enum and flag arguments, checked as wiggle checks them: a value that
/// does not fit the witx integer type is `overflow`, one that names no case
/// (or an unknown flag) is `inval`.
pub(crate) mod arg {
    use super::errno::{Errno, Result};

    /// A `u8`-tagged enum with `cases` cases.
    pub fn enum_u8(v: i32, cases: u8) -> Result<u8> {
        let v = u8::try_from(v).map_err(|_| Errno::Overflow)?;
        if v >= cases {
            return Err(Errno::Inval.into());
        }
        Ok(v)
    }

    /// A `u32`-tagged enum with `cases` cases.
    pub fn enum_u32(v: i32, cases: u32) -> Result<u32> {
        let v = v as u32;
        if v >= cases {
            return Err(Errno::Inval.into());
        }
        Ok(v)
    }

    /// `u16` flags of which `count` are defined.
    pub fn flags_u16(v: i32, count: u32) -> Result<u16> {
        let v = u16::try_from(v).map_err(|_| Errno::Overflow)?;
        if u32::from(v) >> count != 0 {
            return Err(Errno::Inval.into());
        }
        Ok(v)
    }

    /// `u32` flags of which `count` are defined.
    pub fn flags_u32(v: i32, count: u32) -> Result<u32> {
        let v = v as u32;
        if u64::from(v) >> count != 0 {
            return Err(Errno::Inval.into());
        }
        Ok(v)
    }

    /// `u64` flags (`rights`) of which `count` are defined.
    pub fn flags_u64(v: i64, count: u32) -> Result<u64> {
        let v = v as u64;
        if v >> count != 0 {
            return Err(Errno::Inval.into());
        }
        Ok(v)
    }

    /// `u8` flags of which `count` are defined.
    pub fn flags_u8(v: i32, count: u32) -> Result<u8> {
        let v = u8::try_from(v).map_err(|_| Errno::Overflow)?;
        if u32::from(v) >> count != 0 {
            return Err(Errno::Inval.into());
        }
        Ok(v)
    }
}

/// Defines every `wasi_snapshot_preview1` function in `linker`, served by
/// the store's [`WasiCtx`].
pub(crate) fn add_to_linker<T: WasiView>(linker: &mut Linker<T>) -> anyhow::Result<()> {
    proc::add_to_linker(linker)?;
    clocks::add_to_linker(linker)?;
    io::add_to_linker(linker)?;
    fs::add_to_linker(linker)?;
    poll::add_to_linker(linker)?;
    Ok(())
}

/// A linker error as an `anyhow::Error`.
pub(crate) fn linker_error(e: wasmi::errors::LinkerError) -> anyhow::Error {
    anyhow!("{e}")
}

/// Whether `module` exports a function `name`.
pub fn exports_func(module: &CoreModule, name: &str) -> bool {
    module
        .inner
        .exports()
        .any(|e| e.name() == name && matches!(e.ty(), wasmi::ExternType::Func(_)))
}

/// An instance of a wasip1 core module ([`CoreModule`]), its preview 1
/// imports served by the [`WasiCtx`] of its store.
pub struct Instance {
    inner: wasmi::Instance,
}

impl Instance {
    /// Instantiates `module` in `store` (running its start function, if any).
    ///
    /// # Errors
    /// An import that preview 1 does not define (or at another type), or a
    /// trap in the start function.
    pub fn new<T: WasiView>(store: &mut Store<T>, module: &CoreModule) -> anyhow::Result<Self> {
        crate::dispatch::block_on(Self::new_async(store, module))
    }

    /// Instantiates `module` as a task of the dispatcher: its start
    /// function (exported at load, see `component::start`) runs like any
    /// guest code, sliced and bound by the store's deadline.
    ///
    /// # Errors
    /// As [`Instance::new`].
    pub async fn new_async<T: WasiView>(store: &mut Store<T>, module: &CoreModule) -> anyhow::Result<Self> {
        let mut linker = Linker::<T>::new(store.inner.engine());
        add_to_linker(&mut linker)?;
        // The memories the module defines are made by us (`crate::memory`).
        let mut memories = Vec::new();
        for import in module.inner.imports() {
            let wasmi::ExternType::Memory(ty) = import.ty() else {
                continue;
            };
            if crate::component::memories::is_provided(&import) {
                let mut cx = wasmi::AsContextMut::as_context_mut(&mut store.inner);
                let memory = crate::component::memories::provide(&mut cx, *ty)?;
                linker.define(import.module(), import.name(), memory)?;
                memories.push(memory);
            }
        }
        let inner = linker
            .instantiate_and_start(&mut store.inner, &module.inner)
            .map_err(from_wasmi)
            .context("cannot instantiate the module")?;
        crate::component::memories::bind(
            &mut wasmi::AsContextMut::as_context_mut(&mut store.inner),
            &inner,
            &memories,
        )?;
        // Its memory and globals, for store snapshots.
        crate::component::instantiate::record_core_state(
            &mut wasmi::AsContextMut::as_context_mut(&mut store.inner),
            &inner,
        );
        if let Some(start) = inner.get_func(&store.inner, crate::component::rewrite::START_EXPORT) {
            crate::dispatch::drive(&mut store.inner, &start, &[], &mut [])
                .await
                .map_err(from_wasmi)
                .context("in the start function")?;
        }
        Ok(Instance { inner })
    }

    /// Export `name` lifted at the component function type `ty`, as a
    /// component wrapping the module would (`memory`, `cabi_realloc`,
    /// `cabi_post_<name>`, UTF-8): a [`Func`] to call with values.
    ///
    /// # Errors
    /// No such export, or one whose core type is not what `ty` lifts from.
    pub fn lift<T: WasiView>(&self, store: &mut Store<T>, name: &str, ty: FuncType) -> anyhow::Result<crate::Func> {
        let def = crate::component::core_export::lift_core_export(store.ctx(), &self.inner, name, ty)?;
        Ok(crate::Func::from_def(name, def))
    }

    /// The type of exported function `name`, as component values: `i32` is
    /// `s32`, `i64` `s64`, `f32` and `f64` themselves; several results are
    /// a tuple. `None` if there is no such function.
    ///
    /// # Errors
    /// A parameter or result of a type that has no such value (`v128`,
    /// references).
    pub fn func_type<T>(&self, store: &Store<T>, name: &str) -> anyhow::Result<Option<FuncType>> {
        let Some(f) = self.inner.get_func(&store.inner, name) else {
            return Ok(None);
        };
        let ty = f.ty(&store.inner);
        let val = |t: &wasmi::ValType| -> anyhow::Result<Type> {
            Ok(match t {
                wasmi::ValType::I32 => Type::S32,
                wasmi::ValType::I64 => Type::S64,
                wasmi::ValType::F32 => Type::F32,
                wasmi::ValType::F64 => Type::F64,
                other => bail!("`{name}` uses {other:?}, which has no value to give or print"),
            })
        };
        let params = ty
            .params()
            .iter()
            .enumerate()
            .map(|(i, t)| Ok((format!("p{i}"), val(t)?)))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let results = ty.results().iter().map(val).collect::<anyhow::Result<Vec<_>>>()?;
        let result = match results.len() {
            0 => None,
            1 => results.into_iter().next(),
            _ => Some(Type::Tuple(results.into())),
        };
        Ok(Some(FuncType::new(params, result)))
    }

    /// Calls exported function `name` with `args` (`s32`, `s64`, `f32`,
    /// `f64` values, per [`Instance::func_type`]) as a resumable call on the
    /// dispatcher: the guest is suspended while a preview 1 call waits.
    ///
    /// # Errors
    /// No such function, arguments of the wrong number or type, or a trap
    /// (`proc_exit` is [`Exit`]).
    pub async fn call_async<T: WasiView>(
        &self,
        store: &mut Store<T>,
        name: &str,
        args: &[Val],
    ) -> anyhow::Result<Vec<Val>> {
        let f = self
            .inner
            .get_func(&store.inner, name)
            .ok_or_else(|| anyhow!("the module exports no function `{name}`"))?;
        let ty = f.ty(&store.inner);
        if args.len() != ty.params().len() {
            bail!("`{name}` takes {} arguments, got {}", ty.params().len(), args.len());
        }
        let core_args = args
            .iter()
            .zip(ty.params())
            .enumerate()
            .map(|(i, (v, t))| {
                Ok(match (v, t) {
                    (Val::S32(x), wasmi::ValType::I32) => wasmi::Val::I32(*x),
                    (Val::U32(x), wasmi::ValType::I32) => wasmi::Val::I32(*x as i32),
                    (Val::S64(x), wasmi::ValType::I64) => wasmi::Val::I64(*x),
                    (Val::U64(x), wasmi::ValType::I64) => wasmi::Val::I64(*x as i64),
                    (Val::Float32(x), wasmi::ValType::F32) => wasmi::Val::F32((*x).into()),
                    (Val::Float64(x), wasmi::ValType::F64) => wasmi::Val::F64((*x).into()),
                    (v, t) => bail!("argument {i} of `{name}`: expected {t:?}, got {}", v.kind()),
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let mut results: Vec<wasmi::Val> = ty.results().iter().map(|t| wasmi::Val::default_for_ty(*t)).collect();
        crate::dispatch::drive(&mut store.inner, &f, &core_args, &mut results)
            .await
            .map_err(from_wasmi)
            .with_context(|| format!("error while calling `{name}`"))?;
        Ok(results
            .iter()
            .map(|v| match v {
                wasmi::Val::I32(x) => Val::S32(*x),
                wasmi::Val::I64(x) => Val::S64(*x),
                wasmi::Val::F32(x) => Val::Float32(f32::from(*x)),
                wasmi::Val::F64(x) => Val::Float64(f64::from(*x)),
                _ => Val::Tuple(vec![]),
            })
            .collect())
    }
}

/// How a call into a module ended, as a process exit status: 0 when it
/// returned, `n` for `proc_exit(n)`, 134 for a trap (its message goes to
/// stderr).
pub fn exit_status(r: anyhow::Result<Vec<Val>>) -> i32 {
    match r {
        Ok(_) => 0,
        Err(e) => match e.downcast_ref::<Exit>() {
            Some(Exit(code)) => *code,
            None => {
                eprintln!("error: {e:#}");
                134
            }
        },
    }
}

/// Runs a wasip1 command module: instantiates it with `ctx` and calls
/// `_start`. The status is [`exit_status`]'s.
///
/// # Errors
/// The module is not a command (it exports no `_start`), or cannot be
/// instantiated.
pub fn run_module(engine: &Engine, module: &CoreModule, ctx: WasiCtx) -> anyhow::Result<i32> {
    if !exports_func(module, "_start") {
        if exports_func(module, "_initialize") {
            bail!("the module is a reactor (it exports `_initialize`, not `_start`): call one of its exports with --invoke");
        }
        bail!("the module exports no `_start` function: it is not a wasip1 command");
    }
    let mut store = Store::new(engine, ctx);
    let instance = match Instance::new(&mut store, module) {
        Ok(i) => i,
        // A start function may exit too.
        Err(e) => match e.downcast_ref::<Exit>() {
            Some(Exit(code)) => return Ok(*code),
            None => return Err(e),
        },
    };
    Ok(exit_status(crate::dispatch::block_on(instance.call_async(
        &mut store,
        "_start",
        &[],
    ))))
}
