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
use crate::canon::trap::{trap, HostFault};
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

/// How a suspended host call finishes once its wait is over: with the store
/// back, it writes what it must into the guest and returns the core results
/// the paused wasmi call resumes with.
pub(crate) type Finish<T> =
    Box<dyn FnOnce(StoreContextMut<'_, StoreData<T>>) -> Result<Vec<wasmi::Val>, wasmi::Error> + Send>;

/// A suspended host call's wait: a future (not borrowing the store) that
/// resolves to the step finishing the call.
pub(crate) type Resume<T> = Pin<Box<dyn Future<Output = Finish<T>> + Send>>;

/// The host error that pauses a resumable call: what to wait for, and how
/// to finish the host call afterwards.
pub(crate) struct Suspend<T> {
    resume: Mutex<Option<Resume<T>>>,
}

impl<T> Suspend<T> {
    pub fn take(&self) -> Option<Resume<T>> {
        self.resume.lock().unwrap_or_else(|e| e.into_inner()).take()
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
    store: StoreContextMut<'_, StoreData<T>>,
    fut: HostFuture,
    complete: Completion<T>,
    results: &mut [wasmi::Val],
) -> Result<(), wasmi::Error> {
    let resume: Resume<T> = Box::pin(async move {
        let vals = fut.await;
        Box::new(move |store: StoreContextMut<'_, StoreData<T>>| complete(store, vals)) as Finish<T>
    });
    suspend_with(store, resume, results)
}

/// The general form of [`suspend_or_block`]: waits on `resume` (suspending
/// the guest when the call can be paused, else in place), then runs the step
/// it resolves to and writes the core results.
pub(crate) fn suspend_with<T: 'static>(
    mut store: StoreContextMut<'_, StoreData<T>>,
    mut resume: Resume<T>,
    results: &mut [wasmi::Val],
) -> Result<(), wasmi::Error> {
    let rt = &store.data().rt;
    let finish = if rt.async_driver && rt.nested == 0 {
        // Most calls (a read with data waiting, a write with room) need
        // not wait: finish those here, without pausing the guest.
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        match resume.as_mut().poll(&mut cx) {
            std::task::Poll::Ready(finish) => finish,
            std::task::Poll::Pending => {
                return Err(wasmi::Error::host(Suspend {
                    resume: Mutex::new(Some(resume)),
                }))
            }
        }
    } else {
        block_on(resume)
    };
    let core = finish(wasmi::AsContextMut::as_context_mut(&mut store))?;
    for (slot, v) in results.iter_mut().zip(core) {
        *slot = v;
    }
    Ok(())
}

/// Runs `func` as a resumable call to the end: a host call that suspends
/// ([`Suspend`]) is awaited while other tasks run, then finished and resumed;
/// running out of a fuel slice ([`crate::Store::set_fuel_slice`]) yields to
/// the executor and resumes with a fresh slice; the store's deadline stops
/// both. Component exports and core modules (`wasi_snapshot_preview1`)
/// share it.
pub(crate) async fn drive<T: 'static>(
    store: &mut impl wasmi::AsContextMut<Data = StoreData<T>>,
    func: &wasmi::Func,
    args: &[wasmi::Val],
    results: &mut [wasmi::Val],
) -> Result<(), wasmi::Error> {
    let mut store = store.as_context_mut();
    // A reset's grown pages are guarded before the guest runs again.
    store.data_mut().rt.memories.ready()?;
    let slice = store.data().rt.fuel_slice;
    if let Some(slice) = slice {
        store.set_fuel(slice)?;
    }
    store.data_mut().rt.async_driver = true;
    let first = func.call_resumable(&mut store, args, results);
    let r = drive_from(&mut store, first, slice, results).await;
    store.data_mut().rt.async_driver = false;
    // A guest that touched a guarded page (`crate::memory`) ends with the
    // trap a fresh instance would have given there, whatever came after.
    store.data().rt.memories.check()?;
    r
}

async fn drive_from<T: 'static>(
    store: &mut wasmi::StoreContextMut<'_, StoreData<T>>,
    first: Result<wasmi::ResumableCall, wasmi::Error>,
    slice: Option<u64>,
    results: &mut [wasmi::Val],
) -> Result<(), wasmi::Error> {
    let timeout = || wasmi::Error::host(HostFault(anyhow::Error::new(Timeout)));
    let mut call = first?;
    loop {
        call = match call {
            wasmi::ResumableCall::Finished => return Ok(()),
            wasmi::ResumableCall::HostTrap(paused) => {
                let Some(resume) = paused.host_error().downcast_ref::<Suspend<T>>().and_then(|s| s.take()) else {
                    return Err(paused.into_host_error());
                };
                store.data_mut().rt.async_driver = false;
                let finish = match store.data().rt.deadline {
                    Some(d) => {
                        futures_lite::future::or(async { Some(resume.await) }, async move {
                            async_io::Timer::at(d).await;
                            None
                        })
                        .await
                    }
                    None => Some(resume.await),
                };
                let inputs = finish.ok_or_else(timeout)?(wasmi::AsContextMut::as_context_mut(&mut *store))?;
                store.data_mut().rt.async_driver = true;
                paused.resume(&mut *store, &inputs, results)?
            }
            wasmi::ResumableCall::OutOfFuel(paused) => {
                store.data().rt.memories.check()?;
                let Some(slice) = slice else {
                    return Err(trap!("all fuel consumed").into());
                };
                if store.data().rt.deadline.is_some_and(|d| std::time::Instant::now() >= d) {
                    return Err(timeout());
                }
                futures_lite::future::yield_now().await;
                store.set_fuel(slice.max(paused.required_fuel()))?;
                paused.resume(&mut *store, results)?
            }
        };
    }
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
