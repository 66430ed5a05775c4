//! `wasi:io/poll`: pollables, and waiting on them.
//!
//! A [`Pollable`] wraps anything that implements [`Subscribe`]. `wasi:io`
//! brings the group-neutral ones (always ready, a deadline, a [`Signal`]
//! set by background host work); each group brings its own (a socket's
//! readiness, an HTTP body pipe).

use super::table::{get, table_resource, IoView};
pub use crate::dispatch::Signal;
use crate::host::table::Resource;
use crate::values::{ResourceType, Val};
use crate::Linker;
use anyhow::{bail, Result};
use std::sync::Arc;
use std::time::Instant;

/// A host future that does not borrow the store.
pub type BoxFuture<T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send>>;

/// What a pollable waits for.
pub trait Subscribe: Send + Sync + 'static {
    /// Whether it is ready now, without waiting.
    fn is_ready(&self) -> bool;
    /// Resolves once it is ready (or once waiting can tell no more: an
    /// error wakes the waiter too, and the next operation reports it).
    /// The future must not borrow the store: the guest is suspended and the
    /// table is out of reach while it runs.
    fn wait(&self) -> BoxFuture<()>;
}

/// `wasi:io/poll.pollable`.
#[derive(Clone)]
pub struct Pollable(Arc<dyn Subscribe>);

impl Pollable {
    pub fn new(s: impl Subscribe) -> Self {
        Pollable(Arc::new(s))
    }

    /// Always ready.
    pub fn ready() -> Self {
        Pollable::new(Always)
    }

    /// Ready from `deadline` on.
    pub fn at(deadline: Instant) -> Self {
        Pollable::new(Deadline(deadline))
    }

    /// Ready once `signal` is set.
    pub fn signal(signal: Arc<Signal>) -> Self {
        Pollable::new(SignalReady(signal))
    }

    pub fn is_ready(&self) -> bool {
        self.0.is_ready()
    }

    pub fn wait(&self) -> BoxFuture<()> {
        self.0.wait()
    }
}

struct Always;

impl Subscribe for Always {
    fn is_ready(&self) -> bool {
        true
    }
    fn wait(&self) -> BoxFuture<()> {
        Box::pin(async {})
    }
}

struct Deadline(Instant);

impl Subscribe for Deadline {
    fn is_ready(&self) -> bool {
        Instant::now() >= self.0
    }
    fn wait(&self) -> BoxFuture<()> {
        let at = self.0;
        Box::pin(async move {
            async_io::Timer::at(at).await;
        })
    }
}

struct SignalReady(Arc<Signal>);

impl Subscribe for SignalReady {
    fn is_ready(&self) -> bool {
        self.0.is_set()
    }
    fn wait(&self) -> BoxFuture<()> {
        let s = self.0.clone();
        Box::pin(async move { s.wait().await })
    }
}

/// Waits until any of `ps` is ready.
pub async fn wait_any(ps: &[Pollable]) {
    let mut waits: Vec<BoxFuture<()>> = ps.iter().map(Pollable::wait).collect();
    std::future::poll_fn(|cx| {
        for w in waits.iter_mut() {
            if w.as_mut().poll(cx).is_ready() {
                return std::task::Poll::Ready(());
            }
        }
        std::task::Poll::Pending
    })
    .await
}

pub(super) fn add_to_linker<T: IoView>(linker: &mut Linker<T>) -> ResourceType {
    let poll = linker.instance(&crate::wasi::vals::iface("wasi:io/poll"));
    let pollable = table_resource::<T, Pollable>(poll, "pollable");
    poll.func_new("[method]pollable.ready", |mut cx, args, out| {
        let p = get::<T, Pollable>(&mut cx, &args[0])?;
        out.push(Val::Bool(p.is_ready()));
        Ok(())
    });
    poll.func_async("[method]pollable.block", |mut cx, args| {
        let wait = get::<T, Pollable>(&mut cx, &args[0])?.wait();
        Ok(Box::pin(async move {
            wait.await;
            Ok(vec![])
        }))
    });
    poll.func_async("poll", |mut cx, args| {
        let Val::List(list) = &args[0] else {
            bail!("expected a list of pollables")
        };
        if list.is_empty() {
            bail!("poll: the list of pollables is empty");
        }
        if list.len() > u32::MAX as usize {
            bail!("poll: too many pollables");
        }
        let table = cx.data_mut().table();
        let ps: Vec<Pollable> = list
            .iter()
            .map(|v| {
                Ok(table
                    .get(&Resource::<Pollable>::new(crate::wasi::vals::rep(v)?))?
                    .clone())
            })
            .collect::<Result<_>>()?;
        Ok(Box::pin(async move {
            let ready_now = |ps: &[Pollable]| -> Vec<Val> {
                ps.iter()
                    .enumerate()
                    .filter(|(_, p)| p.is_ready())
                    .map(|(i, _)| Val::U32(i as u32))
                    .collect()
            };
            let mut ready = ready_now(&ps);
            if ready.is_empty() {
                wait_any(&ps).await;
                ready = ready_now(&ps);
            }
            Ok(vec![Val::List(ready)])
        }))
    });
    pollable
}
