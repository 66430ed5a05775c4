//! The dispatcher: guest calls as futures.
//!
//! A host function that must wait (a sleep, a blocking read, `poll`) returns
//! a future instead of results. Inside an async call ([`crate::Func::call_async`])
//! the lowered import hands that future to the driver as a wasmi host error
//! (`Suspend`); the guest's whole call stack stays paused inside wasmi
//! (`ResumableCall::HostTrap`) while the driver awaits the future and other
//! tasks run. When it completes, its results are lowered into the guest —
//! the store is free while a call is paused, so realloc can run — and the call
//! resumes. With fuel metering on, `OutOfFuel` becomes a time slice: the
//! driver yields to the executor and resumes with a fresh slice.
//!
//! Where a call cannot be paused (a host function called from a nested,
//! synchronous call such as `Func::call` or a destructor), the future is
//! driven to completion in place.

use crate::canon::state::{StoreCx, StoreData};
use crate::values::Val;
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use wasmi::StoreContextMut;

/// What an async host function returns: a future of its results.
pub type HostFuture = Pin<Box<dyn Future<Output = anyhow::Result<Vec<Val>>> + Send>>;

/// Lowers a suspended host call's results (or its failure) into the guest;
/// returns the core results the paused wasmi call resumes with.
pub(crate) type Completion<T> = Box<
    dyn FnOnce(StoreContextMut<'_, StoreData<T>>, anyhow::Result<Vec<Val>>) -> Result<Vec<wasmi::Val>, wasmi::Error>
        + Send,
>;

/// The results of a host future that needs the store to finish: a future
/// resolving to `Err(Deferred::new(f).into())` has `f` run with the store
/// before its results are lowered — to put an error object in the resource
/// table, say, after a wait that failed.
pub struct Deferred<T>(Mutex<Option<DeferredFn<T>>>);

type DeferredFn<T> = Box<dyn FnOnce(StoreCx<'_, T>) -> anyhow::Result<Vec<Val>> + Send>;

impl<T: 'static> Deferred<T> {
    pub fn new(f: impl FnOnce(StoreCx<'_, T>) -> anyhow::Result<Vec<Val>> + Send + 'static) -> Self {
        Deferred(Mutex::new(Some(Box::new(f))))
    }

    pub(crate) fn take(&self) -> Option<DeferredFn<T>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

impl<T> std::fmt::Debug for Deferred<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Deferred")
    }
}

impl<T> std::fmt::Display for Deferred<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a host call's results need the store")
    }
}

impl<T: 'static> std::error::Error for Deferred<T> {}

/// The host error that pauses a resumable call: the future to await and how
/// to finish the host call afterwards.
pub(crate) struct Suspend<T> {
    parts: Mutex<Option<(HostFuture, Completion<T>)>>,
}

impl<T> Suspend<T> {
    pub fn take(&self) -> Option<(HostFuture, Completion<T>)> {
        self.parts.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

impl<T> std::fmt::Debug for Suspend<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Suspend")
    }
}

impl<T> std::fmt::Display for Suspend<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a host call asked to suspend outside an async call")
    }
}

impl<T: 'static> wasmi::errors::HostError for Suspend<T> {}

/// Finishes an async host call: suspends the guest if the current call can be
/// paused, else drives the future here and completes at once.
pub(crate) fn suspend_or_block<T: 'static>(
    mut store: StoreContextMut<'_, StoreData<T>>,
    mut fut: HostFuture,
    complete: Completion<T>,
    results: &mut [wasmi::Val],
) -> Result<(), wasmi::Error> {
    let rt = &store.data().rt;
    let vals = if rt.async_driver && rt.nested == 0 {
        // Most calls (a read with data waiting, a write with room) need
        // not wait: finish those here, without pausing the guest.
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        match fut.as_mut().poll(&mut cx) {
            std::task::Poll::Ready(vals) => vals,
            std::task::Poll::Pending => {
                return Err(wasmi::Error::host(Suspend {
                    parts: Mutex::new(Some((fut, complete))),
                }))
            }
        }
    } else {
        block_on(fut)
    };
    let core = complete(wasmi::AsContextMut::as_context_mut(&mut store), vals)?;
    for (slot, v) in results.iter_mut().zip(core) {
        *slot = v;
    }
    Ok(())
}

/// A one-shot flag that background work sets (a name lookup finishing, a
/// response arriving, a server stopping) and tasks wait on.
#[derive(Debug, Default)]
pub struct Signal {
    done: std::sync::atomic::AtomicBool,
    event: event_listener::Event,
}

impl Signal {
    pub fn set(&self) {
        self.done.store(true, std::sync::atomic::Ordering::SeqCst);
        self.event.notify(usize::MAX);
    }

    pub fn is_set(&self) -> bool {
        self.done.load(std::sync::atomic::Ordering::SeqCst)
    }

    pub async fn wait(&self) {
        while !self.is_set() {
            let listener = self.event.listen();
            if self.is_set() {
                break;
            }
            listener.await;
        }
    }
}

/// `op`, or `None` once `timeout` passes.
pub async fn within<R>(timeout: std::time::Duration, op: impl Future<Output = R>) -> Option<R> {
    futures_lite::future::or(async { Some(op.await) }, async {
        async_io::Timer::after(timeout).await;
        None
    })
    .await
}

/// Runs a future to completion on this thread, driving timers and I/O.
pub fn block_on<F: Future>(f: F) -> F::Output {
    async_io::block_on(f)
}

/// An async call ran past its store's deadline ([`crate::Store::set_deadline`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeout;

impl std::fmt::Display for Timeout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("execution time limit exceeded")
    }
}

impl std::error::Error for Timeout {}
