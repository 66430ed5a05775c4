//! `clock_res_get` and `clock_time_get`: the realtime clock is
//! `wasi:clocks/wall-clock`, the monotonic one the context's
//! `wasi:clocks/monotonic-clock`; the CPU-time clocks are not offered
//! (`badf`, as wasmtime).

use super::arg;
use super::errno::{ret, Errno, Result};
use super::{linker_error, parts, Caller, Linker, MODULE};
use crate::wasi::clocks::{wall_now, RESOLUTION_NS};
use crate::wasi::{WasiCtx, WasiView};

/// `clockid`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Clock {
    Realtime,
    Monotonic,
}

impl Clock {
    /// A `clockid` argument: `realtime` or `monotonic`; the CPU-time clocks
    /// are `cputime` (which each function reports as it must).
    pub fn from_arg(v: i32, cputime: Errno) -> Result<Self> {
        match arg::enum_u32(v, 4)? {
            0 => Ok(Clock::Realtime),
            1 => Ok(Clock::Monotonic),
            _ => Err(cputime.into()),
        }
    }

    /// The clock's reading in nanoseconds.
    pub fn now(self, ctx: &WasiCtx) -> Result<u64> {
        Ok(match self {
            Clock::Realtime => u64::try_from(wall_now().as_nanos()).map_err(|_| Errno::Overflow)?,
            Clock::Monotonic => ctx.clocks.now_ns(),
        })
    }
}

pub(crate) fn add_to_linker<T: WasiView>(l: &mut Linker<T>) -> anyhow::Result<()> {
    l.func_wrap(MODULE, "clock_res_get", |mut c: Caller<'_, T>, id: i32, out: i32| {
        ret((|| {
            Clock::from_arg(id, Errno::Badf)?;
            let (mut mem, _) = parts(&mut c)?;
            mem.write_u64(out as u32, RESOLUTION_NS)
        })())
    })
    .map_err(linker_error)?;
    l.func_wrap(
        MODULE,
        "clock_time_get",
        |mut c: Caller<'_, T>, id: i32, _precision: i64, out: i32| {
            ret((|| {
                let clock = Clock::from_arg(id, Errno::Badf)?;
                let (mut mem, ctx) = parts(&mut c)?;
                let now = clock.now(ctx)?;
                mem.write_u64(out as u32, now)
            })())
        },
    )
    .map_err(linker_error)?;
    Ok(())
}
