//! The process: `args_*`, `environ_*` (from the context's arguments and
//! environment, as `wasi:cli/environment` serves them), `proc_exit`,
//! `proc_raise`, `sched_yield`, `random_get` (the OS CSPRNG of
//! `wasi:random/random`) and the `sock_*` functions.

use super::arg;
use super::errno::{ret, trap, Errno, Error, Result};
use super::{fds, linker_error, parts, suspend, wasi, Caller, Linker, MODULE};
use crate::canon::trap::HostFault;
use crate::wasi::{Exit, WasiView};

/// Writes `items` as NUL-terminated strings into `buf` and a pointer to
/// each into `ptrs` (`args_get`, `environ_get`).
fn write_strings(c: &mut super::Mem<'_>, ptrs: u32, buf: u32, items: &[Vec<u8>]) -> Result<()> {
    let (mut p, mut b) = (ptrs, buf);
    for item in items {
        c.write_u32(p, b)?;
        p = p.checked_add(4).ok_or_else(|| Error::trap("pointer overflow"))?;
        c.write_bytes(b, item)?;
        b = b
            .checked_add(item.len() as u32)
            .ok_or_else(|| Error::trap("pointer overflow"))?;
        c.write_u8(b, 0)?;
        b = b.checked_add(1).ok_or_else(|| Error::trap("pointer overflow"))?;
    }
    Ok(())
}

/// Writes the count and total size (each with its NUL) of `items`.
fn write_sizes(c: &mut super::Mem<'_>, count_ptr: u32, size_ptr: u32, items: &[Vec<u8>]) -> Result<()> {
    let count = u32::try_from(items.len()).map_err(|_| Errno::Overflow)?;
    let size = items.iter().map(|i| i.len() as u64 + 1).sum::<u64>();
    let size = u32::try_from(size).map_err(|_| Errno::Overflow)?;
    c.write_u32(count_ptr, count)?;
    c.write_u32(size_ptr, size)
}

fn args(ctx: &crate::wasi::WasiCtx) -> Vec<Vec<u8>> {
    ctx.args.iter().map(|a| a.as_bytes().to_vec()).collect()
}

fn environ(ctx: &crate::wasi::WasiCtx) -> Vec<Vec<u8>> {
    ctx.env.iter().map(|(k, v)| format!("{k}={v}").into_bytes()).collect()
}

/// `proc_exit`: ends the run with `status`. As wasmtime, a status of 126
/// or more (which a shell reads as a failure to run, or a signal) is a trap.
fn proc_exit(status: i32) -> wasmi::Error {
    let status = status as u32;
    if status >= 126 {
        return trap(format!("exit with invalid exit status {status}, outside of [0..126)"));
    }
    wasmi::Error::host(HostFault(anyhow::Error::new(Exit(status as i32))))
}

/// `random_get`: fills the buffer from the OS CSPRNG, directly in guest
/// memory (no size limit but the memory's).
fn random_get<T: WasiView>(c: &mut Caller<'_, T>, buf: u32, len: u32) -> Result<()> {
    let (mut mem, _) = parts(c)?;
    crate::wasi::random::fill_secure(mem.bytes_mut(buf, len)?).map_err(Error::host)
}

/// The `sock_*` functions: as wasmtime, preview 1 sockets (which only a
/// preopened listener could give) are not supported: an fd that exists is
/// not a socket (`notsock`), any other is `badf`.
fn not_a_socket<T: WasiView>(c: &mut Caller<'_, T>, fd: i32) -> Result<()> {
    fds(wasi(c)).get(fd as u32)?;
    Err(Errno::Notsock.into())
}

pub(crate) fn add_to_linker<T: WasiView>(l: &mut Linker<T>) -> anyhow::Result<()> {
    l.func_wrap(MODULE, "args_get", |mut c: Caller<'_, T>, argv: i32, buf: i32| {
        ret((|| {
            let (mut mem, ctx) = parts(&mut c)?;
            write_strings(&mut mem, argv as u32, buf as u32, &args(ctx))
        })())
    })
    .map_err(linker_error)?;
    l.func_wrap(
        MODULE,
        "args_sizes_get",
        |mut c: Caller<'_, T>, count: i32, size: i32| {
            ret((|| {
                let (mut mem, ctx) = parts(&mut c)?;
                write_sizes(&mut mem, count as u32, size as u32, &args(ctx))
            })())
        },
    )
    .map_err(linker_error)?;
    l.func_wrap(
        MODULE,
        "environ_get",
        |mut c: Caller<'_, T>, environ_ptr: i32, buf: i32| {
            ret((|| {
                let (mut mem, ctx) = parts(&mut c)?;
                write_strings(&mut mem, environ_ptr as u32, buf as u32, &environ(ctx))
            })())
        },
    )
    .map_err(linker_error)?;
    l.func_wrap(
        MODULE,
        "environ_sizes_get",
        |mut c: Caller<'_, T>, count: i32, size: i32| {
            ret((|| {
                let (mut mem, ctx) = parts(&mut c)?;
                write_sizes(&mut mem, count as u32, size as u32, &environ(ctx))
            })())
        },
    )
    .map_err(linker_error)?;
    l.func_wrap(
        MODULE,
        "proc_exit",
        |_: Caller<'_, T>, status: i32| -> Result<(), wasmi::Error> { Err(proc_exit(status)) },
    )
    .map_err(linker_error)?;
    l.func_wrap(MODULE, "proc_raise", |_: Caller<'_, T>, sig: i32| {
        // 31 signals; none can be raised.
        ret(arg::enum_u8(sig, 31).and(Err(Errno::Notsup.into())))
    })
    .map_err(linker_error)?;
    l.func_wrap(MODULE, "sched_yield", |mut c: Caller<'_, T>| {
        // A real yield: other tasks on the executor run before the guest
        // goes on.
        suspend(&mut c, Box::pin(futures_lite::future::yield_now()), |_, _, ()| Ok(()))
    })
    .map_err(linker_error)?;
    l.func_wrap(MODULE, "random_get", |mut c: Caller<'_, T>, buf: i32, len: i32| {
        ret(random_get(&mut c, buf as u32, len as u32))
    })
    .map_err(linker_error)?;
    l.func_wrap(
        MODULE,
        "sock_accept",
        |mut c: Caller<'_, T>, fd: i32, flags: i32, _fd_out: i32| {
            ret(arg::flags_u16(flags, 5).and_then(|_| not_a_socket(&mut c, fd)))
        },
    )
    .map_err(linker_error)?;
    l.func_wrap(
        MODULE,
        "sock_recv",
        |mut c: Caller<'_, T>, fd: i32, _iovs: i32, _len: i32, flags: i32, _n_out: i32, _flags_out: i32| {
            ret(arg::flags_u16(flags, 2).and_then(|_| not_a_socket(&mut c, fd)))
        },
    )
    .map_err(linker_error)?;
    l.func_wrap(
        MODULE,
        "sock_send",
        |mut c: Caller<'_, T>, fd: i32, _iovs: i32, _len: i32, flags: i32, _n_out: i32| {
            // `siflags` is a plain u16.
            ret(u16::try_from(flags)
                .map_err(|_| Errno::Overflow.into())
                .and_then(|_| not_a_socket(&mut c, fd)))
        },
    )
    .map_err(linker_error)?;
    l.func_wrap(MODULE, "sock_shutdown", |mut c: Caller<'_, T>, fd: i32, how: i32| {
        ret(arg::flags_u8(how, 2).and_then(|_| not_a_socket(&mut c, fd)))
    })
    .map_err(linker_error)?;
    Ok(())
}
