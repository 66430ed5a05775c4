//! `wasi:clocks` — wall clock, monotonic clock (with pollables), and the
//! unstable timezone interface (always UTC).

use super::io::Pollable;
use super::{iface, own, Types, WasiView};
use crate::values::Val;
use crate::Linker;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The instant a context's monotonic clock counts from.
pub(crate) struct ClockState {
    base: Instant,
}

impl ClockState {
    pub fn new() -> Self {
        ClockState { base: Instant::now() }
    }
    /// `monotonic-clock.now`: nanoseconds since the context was made.
    pub(crate) fn now_ns(&self) -> u64 {
        self.base.elapsed().as_nanos().min(u64::MAX as u128) as u64
    }
    /// The instant the monotonic clock reads `ns`.
    pub(crate) fn at(&self, ns: u64) -> Instant {
        self.base
            .checked_add(Duration::from_nanos(ns))
            .unwrap_or_else(far_future)
    }
}

/// The instant `ns` nanoseconds from now (or far in the future).
pub(crate) fn after(ns: u64) -> Instant {
    Instant::now()
        .checked_add(Duration::from_nanos(ns))
        .unwrap_or_else(far_future)
}

/// `wall-clock.now`: the time since the epoch.
pub(crate) fn wall_now() -> Duration {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default()
}

/// `wall-clock.resolution` and `monotonic-clock.resolution`, in nanoseconds.
pub(crate) const RESOLUTION_NS: u64 = 1;

fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(100 * 365 * 24 * 3600)
}

fn datetime(seconds: u64, nanoseconds: u32) -> Val {
    Val::Record(vec![
        ("seconds".into(), Val::U64(seconds)),
        ("nanoseconds".into(), Val::U32(nanoseconds)),
    ])
}

pub(crate) fn add_to_linker<T: WasiView>(linker: &mut Linker<T>, types: &Types) {
    linker
        .instance(&iface("wasi:clocks/wall-clock"))
        .func_new("now", |_, _, out| {
            let d = wall_now();
            out.push(datetime(d.as_secs(), d.subsec_nanos()));
            Ok(())
        })
        .func_new("resolution", |_, _, out| {
            out.push(datetime(0, RESOLUTION_NS as u32));
            Ok(())
        });

    let mono = linker.instance(&iface("wasi:clocks/monotonic-clock"));
    mono.func_wrap("now", |mut cx, ()| Ok(cx.data_mut().wasi().clocks.now_ns()))
        .func_wrap("resolution", |_, ()| Ok(RESOLUTION_NS));
    let t = types.clone();
    mono.func_new("subscribe-instant", move |mut cx, args, out| {
        let Val::U64(when) = args[0] else {
            anyhow::bail!("expected an instant")
        };
        let ctx = cx.data_mut().wasi();
        let p = ctx.table.push(Pollable::at(ctx.clocks.at(when)))?;
        out.push(own(&t.pollable, p.rep()));
        Ok(())
    });
    let t = types.clone();
    mono.func_new("subscribe-duration", move |mut cx, args, out| {
        let Val::U64(d) = args[0] else {
            anyhow::bail!("expected a duration")
        };
        let ctx = cx.data_mut().wasi();
        let p = ctx.table.push(Pollable::at(after(d)))?;
        out.push(own(&t.pollable, p.rep()));
        Ok(())
    });

    // The (unstable) timezone interface: a sandboxed guest sees UTC, as in
    // wasmtime, rather than learning where the host is.
    linker
        .instance(&iface("wasi:clocks/timezone"))
        .func_new("display", |_, _, out| {
            out.push(Val::Record(vec![
                ("utc-offset".into(), Val::S32(0)),
                ("name".into(), Val::String("UTC".into())),
                ("in-daylight-saving-time".into(), Val::Bool(false)),
            ]));
            Ok(())
        })
        .func_new("utc-offset", |_, _, out| {
            out.push(Val::S32(0));
            Ok(())
        });
}
