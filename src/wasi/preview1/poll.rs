//! `poll_oneoff`: each subscription becomes a `wasi:io` pollable — a clock
//! a deadline, stdin and stdout/stderr their stream's own, a file always
//! ready — and the guest is suspended until one is ready, as
//! `wasi:io/poll.poll` does. The events of every ready subscription are
//! written in subscription order.

use super::arg;
use super::clocks::Clock;
use super::errno::{ret, Errno, Error, Result};
use super::fds::Fd;
use super::memory::layout::{EVENT, SUBSCRIPTION};
use super::{fds, linker_error, parts, suspend, Caller, Linker, Mem, MODULE};
use crate::wasi::clocks::after;
use crate::wasi::io::{wait_any, Pollable};
use crate::wasi::{WasiCtx, WasiView};

/// `eventtype`.
const CLOCK: u8 = 0;
const FD_READ: u8 = 1;
const FD_WRITE: u8 = 2;

/// `eventrwflags.fd_readwrite_hangup`.
const HANGUP: u16 = 1;

/// A subscription, read and turned into what to wait on.
struct Sub {
    userdata: u64,
    kind: u8,
    /// For fd events: the bytes ready, and whether the end is reached.
    nbytes: u64,
    hangup: bool,
    pollable: Pollable,
}

/// Reads subscription `i` of the array at `ptr`.
fn subscription(mem: &Mem<'_>, ctx: &mut WasiCtx, ptr: u32) -> Result<Sub> {
    let userdata = mem.read_u64(ptr)?;
    let kind = arg::enum_u8(mem.read_u8(ptr + 8)? as i32, 3)?;
    let sub = |nbytes, hangup, pollable| Sub {
        userdata,
        kind,
        nbytes,
        hangup,
        pollable,
    };
    if kind == CLOCK {
        let clock = Clock::from_arg(mem.read_u32(ptr + 16)? as i32, Errno::Inval)?;
        let timeout = mem.read_u64(ptr + 24)?;
        let absolute = arg::flags_u16(mem.read_u16(ptr + 40)? as i32, 1)? & 1 != 0;
        let deadline = match (clock, absolute) {
            (Clock::Monotonic, true) => ctx.clocks.at(timeout),
            (Clock::Realtime, true) => after(timeout.saturating_sub(Clock::Realtime.now(ctx)?)),
            (_, false) => after(timeout),
        };
        return Ok(sub(0, false, Pollable::at(deadline)));
    }
    let fd = mem.read_u32(ptr + 16)?;
    Ok(match (fds(ctx).get(fd)?, kind) {
        (Fd::Stdin(s), FD_READ) => sub(1, false, s.pollable()),
        (Fd::Stdout(s) | Fd::Stderr(s), FD_WRITE) => sub(1, false, s.pollable()),
        (Fd::File(f), FD_READ) => {
            // Files are always ready; say how much is left to read.
            let left = f.desc.metadata()?.len().saturating_sub(f.pos);
            sub(left, left == 0, Pollable::ready())
        }
        (Fd::File(_), _) => sub(1, false, Pollable::ready()),
        _ => return Err(Errno::Badf.into()),
    })
}

/// Writes the events of the ready subscriptions; their count goes to
/// `nevents`.
fn write_events(mem: &mut Mem<'_>, subs: &[Sub], out: u32, nevents: u32) -> Result<()> {
    let mut n = 0u32;
    for s in subs.iter().filter(|s| s.pollable.is_ready()) {
        let at = out
            .checked_add(n * EVENT.0)
            .ok_or_else(|| Error::trap("event array out of bounds"))?;
        mem.check_record(at, EVENT.0, EVENT.1)?;
        mem.write_u64(at, s.userdata)?;
        mem.write_u16(at + 8, Errno::Success as u16)?;
        mem.write_u8(at + 10, s.kind)?;
        mem.write_u64(at + 16, s.nbytes)?;
        mem.write_u16(at + 24, if s.hangup { HANGUP } else { 0 })?;
        n += 1;
    }
    mem.write_u32(nevents, n)
}

/// `poll_oneoff`.
fn poll_oneoff<T: WasiView>(
    c: &mut Caller<'_, T>,
    subs_ptr: u32,
    out: u32,
    nsubs: u32,
    nevents: u32,
) -> std::result::Result<i32, wasmi::Error> {
    let subs = (|| {
        if nsubs == 0 {
            // Waiting on nothing would wait forever.
            return Err(Errno::Inval.into());
        }
        let (mut mem, ctx) = parts(c)?;
        let size = nsubs.checked_mul(SUBSCRIPTION.0).ok_or(Errno::Overflow)?;
        mem.check_record(subs_ptr, size, SUBSCRIPTION.1)?;
        let subs = (0..nsubs)
            .map(|i| subscription(&mem, ctx, subs_ptr + i * SUBSCRIPTION.0))
            .collect::<Result<Vec<_>>>()?;
        if subs.iter().any(|s| s.pollable.is_ready()) {
            write_events(&mut mem, &subs, out, nevents)?;
            return Ok(None);
        }
        Ok(Some(subs))
    })();
    match subs {
        Err(e) => ret(Err(e)),
        Ok(None) => ret(Ok(())),
        Ok(Some(subs)) => {
            let pollables: Vec<Pollable> = subs.iter().map(|s| s.pollable.clone()).collect();
            let wait = Box::pin(async move { wait_any(&pollables).await });
            suspend(c, wait, move |mut mem, _, ()| {
                write_events(&mut mem, &subs, out, nevents)
            })
        }
    }
}

pub(crate) fn add_to_linker<T: WasiView>(l: &mut Linker<T>) -> anyhow::Result<()> {
    l.func_wrap(
        MODULE,
        "poll_oneoff",
        |mut c: Caller<'_, T>, subs: i32, out: i32, nsubs: i32, nevents: i32| {
            poll_oneoff(&mut c, subs as u32, out as u32, nsubs as u32, nevents as u32)
        },
    )
    .map_err(linker_error)?;
    Ok(())
}
