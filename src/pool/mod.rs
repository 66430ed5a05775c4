//! Instance pools: warm instances kept and reused between calls, as the
//! registry's `pool:` and `serve` use them. After each call, the pool's
//! user says from how it ended ([`Ended`]) whether its instance is kept:
//! as a rule not after a failure (a trap, a timeout) or a cancelled call,
//! unless it can be reset to its state after instantiation; nor a run-once
//! command, or one retaining memory past a limit.
//!
//! - [`PoolKind::Inline`]: one warm instance, calls serialised.
//! - [`PoolKind::Lazy`]: an instance per concurrent call, up to `max`; idle
//!   ones are dropped after [`IDLE_TIMEOUT`].
//! - [`PoolKind::Static`]: `workers` instances and a bounded queue of
//!   waiting calls; a full queue is an overload error.
//! - [`PoolKind::Adaptive`]: grows by one instance while calls queue (wait
//!   [`SCALE_UP_AFTER`] with none free), up to `max`, and shrinks back to
//!   one after [`SCALE_DOWN_AFTER`] of idleness.
//!
//! [`workers::WorkerPool`] runs calls on dedicated OS threads (Wippy's
//! `worker_class`).

pub mod workers;

use anyhow::{bail, Result};
use async_lock::Semaphore;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a `lazy` pool keeps an idle instance.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a call to an `adaptive` pool waits for a busy instance to come
/// free before the pool grows.
pub const SCALE_UP_AFTER: Duration = Duration::from_millis(2);
/// How long an `adaptive` pool keeps an idle instance beyond its first.
pub const SCALE_DOWN_AFTER: Duration = Duration::from_secs(1);

/// How many idle instances a pool whose instances are reset after every
/// call keeps while one runs ([`Pool::rotate`]), for instances whose memory
/// image is `image` bytes: up to 8, in about 32 MiB of images.
pub fn spares_for(image: usize) -> usize {
    ((32 << 20) / image.max(64 << 10)).min(8)
}

/// How a pool keeps its instances.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolKind {
    Inline,
    Lazy { max: usize },
    Static { workers: usize, queue: usize },
    Adaptive { max: usize },
}

impl PoolKind {
    /// `inline`, `lazy`, `static` or `adaptive`.
    pub fn name(&self) -> &'static str {
        match self {
            PoolKind::Inline => "inline",
            PoolKind::Lazy { .. } => "lazy",
            PoolKind::Static { .. } => "static",
            PoolKind::Adaptive { .. } => "adaptive",
        }
    }

    /// The most instances alive at once.
    pub fn max_instances(&self) -> usize {
        match *self {
            PoolKind::Inline => 1,
            PoolKind::Lazy { max } | PoolKind::Adaptive { max } => max.max(1),
            PoolKind::Static { workers, .. } => workers.max(1),
        }
    }
}

/// Counters of a pool, for tests and monitoring.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// Instances alive now (busy or idle).
    pub live: usize,
    /// The most that were ever alive at once.
    pub peak: usize,
    /// Instances created so far.
    pub created: usize,
}

/// A pool of warm `W`s (an instance with its store).
pub struct Pool<W> {
    kind: PoolKind,
    /// One permit per instance that may exist at once.
    permits: Semaphore,
    /// Boxed, so taking and returning one moves a pointer, not a store.
    idle: Mutex<Vec<(Box<W>, Instant)>>,
    /// An instance went back idle (adaptive pools wait for this).
    returned: event_listener::Event,
    /// Calls waiting for a permit (bounded for `static`).
    waiting: AtomicUsize,
    /// Calls running now.
    busy: AtomicUsize,
    /// With more than 0, idle instances are taken oldest first, and a call
    /// makes a new one unless more than this many are idle ([`Pool::rotate`]).
    spares: AtomicUsize,
    /// Instances being made now (counted in `live` once made).
    making: AtomicUsize,
    stats: Mutex<PoolStats>,
}

impl<W> Pool<W> {
    pub fn new(kind: PoolKind) -> Self {
        Pool {
            kind,
            permits: Semaphore::new(kind.max_instances()),
            idle: Mutex::new(Vec::new()),
            returned: event_listener::Event::new(),
            waiting: AtomicUsize::new(0),
            busy: AtomicUsize::new(0),
            spares: AtomicUsize::new(0),
            making: AtomicUsize::new(0),
            stats: Mutex::new(PoolStats::default()),
        }
    }

    /// Takes idle instances in turn, oldest first, keeping `spares` of
    /// them idle while a call runs (within the pool's most instances),
    /// rather than the one used last. For instances reset after every
    /// call: a reset leaves work that is done for many instances at once
    /// when one of them is next used (`crate::memory::closing`), and the
    /// oldest one's has most likely been done already.
    pub fn rotate(&self, spares: usize) {
        self.spares.store(spares, Ordering::SeqCst);
    }

    pub fn kind(&self) -> PoolKind {
        self.kind
    }

    pub fn stats(&self) -> PoolStats {
        *self.stats.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `call` with a warm instance (or one made by `make`), waiting for
    /// a free slot. After the call, however it ended (returned, failed, or
    /// dropped half-way), the instance goes back to the pool if `keep`
    /// says so, and is retired otherwise.
    ///
    /// `reentrant`: the caller is itself inside a call of this pool (one
    /// function calling itself through `funcs`), so the slot it would wait
    /// for may be its own. With none free now, the call gets an instance
    /// of its own, dropped afterwards; the call depth limit bounds these.
    pub async fn with<R>(
        &self,
        id: &str,
        reentrant: bool,
        make: impl AsyncFnOnce() -> Result<W>,
        call: impl AsyncFnOnce(&mut W) -> Result<R>,
        keep: impl Fn(&mut W, Ended) -> bool,
    ) -> Result<R> {
        let permit = match self.permits.try_acquire() {
            Some(permit) => permit,
            None if reentrant => {
                let mut w = make().await?;
                self.count_created();
                // Retired however the call ends, a cancelled one too.
                let _retire = OnDrop(|| self.retire(1));
                return call(&mut w).await;
            }
            None => {
                let queued = self.waiting.fetch_add(1, Ordering::SeqCst);
                if let PoolKind::Static { queue, .. } = self.kind {
                    if queued >= queue {
                        self.waiting.fetch_sub(1, Ordering::SeqCst);
                        bail!("`{id}` is overloaded: its static pool's queue of {queue} waiting calls is full");
                    }
                }
                let permit = self.permits.acquire().await;
                self.waiting.fetch_sub(1, Ordering::SeqCst);
                permit
            }
        };
        let w = match self.take_or_wait().await {
            Some(w) => w,
            None => {
                // Counted at once (no await since the pool was asked), so a
                // rotating pool's spares stay within its most instances;
                // uncounted however the making ends (a cancelled call too).
                self.making.fetch_add(1, Ordering::SeqCst);
                let making = OnDrop(|| {
                    self.making.fetch_sub(1, Ordering::SeqCst);
                });
                let w = Box::new(make().await?);
                drop(making);
                self.count_created();
                w
            }
        };
        // Counted busy until the instance is settled: put back or retired
        // (a call dropped half-way, cancelled, settles it as it drops).
        self.busy.fetch_add(1, Ordering::SeqCst);
        let mut lent = Lent {
            pool: self,
            w: Some(w),
            keep: &keep,
        };
        let result = match lent.w.as_deref_mut() {
            Some(w) => call(w).await,
            None => unreachable!("lent until settled"),
        };
        lent.settle(if result.is_ok() { Ended::Returned } else { Ended::Failed });
        drop(lent);
        drop(permit);
        result
    }

    /// Adds an instance made ahead of time (to check that it can be made).
    pub fn put_back(&self, w: W) {
        self.count_created();
        self.put_idle(Box::new(w));
    }

    fn put_idle(&self, w: Box<W>) {
        self.idle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((w, Instant::now()));
        self.returned.notify(1);
    }

    /// An idle instance; an adaptive pool with instances alive but none
    /// idle first waits a moment for one to come back rather than grow.
    async fn take_or_wait(&self) -> Option<Box<W>> {
        self.trim();
        if let Some(w) = self.take_idle() {
            return Some(w);
        }
        if !matches!(self.kind, PoolKind::Adaptive { .. }) || self.stats().live == 0 {
            return None;
        }
        let deadline = Instant::now() + SCALE_UP_AFTER;
        loop {
            let listener = self.returned.listen();
            if let Some(w) = self.take_idle() {
                return Some(w);
            }
            let returned = async {
                listener.await;
                true
            };
            let timed_out = async {
                async_io::Timer::at(deadline).await;
                false
            };
            if !futures_lite::future::or(returned, timed_out).await {
                return self.take_idle();
            }
        }
    }

    fn take_idle(&self) -> Option<Box<W>> {
        let spares = self.spares.load(Ordering::SeqCst);
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if spares == 0 {
            return idle.pop().map(|(w, _)| w);
        }
        let alive = self.stats().live + self.making.load(Ordering::SeqCst);
        if idle.len() <= spares && alive < self.kind.max_instances() {
            return None;
        }
        (!idle.is_empty()).then(|| idle.remove(0).0)
    }

    /// Drops instances idle for longer than the pool keeps them: 30 s for
    /// `lazy`, and for `adaptive` 1 s for all but the newest. The pools'
    /// owner calls this now and then; calls do too.
    pub fn trim(&self) {
        let (timeout, keep) = match self.kind {
            PoolKind::Lazy { .. } => (IDLE_TIMEOUT, 0),
            PoolKind::Adaptive { .. } => (SCALE_DOWN_AFTER, 1),
            _ => return,
        };
        // A rotating pool keeps its spares and the one a call takes: used
        // in turn, each is idle long when calls are rare, and dropping them
        // would make every such call instantiate instead of reset.
        let spares = self.spares.load(Ordering::SeqCst);
        let keep = if spares > 0 { keep.max(spares + 1) } else { keep };
        let expired: Vec<Box<W>> = {
            let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
            // Oldest first (each is put back stamped under the lock), so the
            // expired lead; keep the `keep` newest whatever their age. One
            // clock read: calls trim on every take.
            let old = idle.len().saturating_sub(keep);
            if old == 0 {
                return;
            }
            let now = Instant::now();
            let expired = idle[..old]
                .iter()
                .take_while(|(_, at)| now.saturating_duration_since(*at) >= timeout)
                .count();
            idle.drain(..expired).map(|(w, _)| w).collect()
        };
        if !expired.is_empty() {
            self.retire(expired.len());
        }
        // Dropped outside the lock: an instance's destructors may take time.
        drop(expired);
    }

    fn count_created(&self) {
        let mut s = self.stats.lock().unwrap_or_else(|e| e.into_inner());
        s.created += 1;
        s.live += 1;
        s.peak = s.peak.max(s.live);
    }

    fn retire(&self, n: usize) {
        let mut s = self.stats.lock().unwrap_or_else(|e| e.into_inner());
        s.live = s.live.saturating_sub(n);
    }

    /// Calls running now.
    pub fn busy(&self) -> usize {
        self.busy.load(Ordering::SeqCst)
    }
}

/// How a call on a pooled instance ended: the pool's user says from it
/// whether the instance may serve another call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ended {
    Returned,
    /// It returned an error: a trap, a timeout, a host error.
    Failed,
    /// It was dropped half-way (its caller went away).
    Cancelled,
}

/// Runs its function when dropped: what a call must undo however it ends,
/// dropped half-way (cancelled) too.
struct OnDrop<F: FnMut()>(F);

impl<F: FnMut()> Drop for OnDrop<F> {
    fn drop(&mut self) {
        (self.0)();
    }
}

/// An instance lent to a call, until it is settled: put back idle if its
/// `keep` says so, else retired.
struct Lent<'a, W, K: Fn(&mut W, Ended) -> bool> {
    pool: &'a Pool<W>,
    w: Option<Box<W>>,
    keep: &'a K,
}

impl<W, K: Fn(&mut W, Ended) -> bool> Lent<'_, W, K> {
    fn settle(&mut self, ended: Ended) {
        if let Some(mut w) = self.w.take() {
            if (self.keep)(&mut w, ended) {
                self.pool.put_idle(w);
            } else {
                self.pool.retire(1);
            }
        }
    }
}

impl<W, K: Fn(&mut W, Ended) -> bool> Drop for Lent<'_, W, K> {
    /// Settles an instance whose call was dropped half-way (the call's
    /// future is dropped before this), then stops counting it busy:
    /// settled first, so an idle pool's statistics are final.
    fn drop(&mut self) {
        if std::thread::panicking() {
            // Dropped by a panic in the call: retired, not reset (a panic
            // now would abort).
            if self.w.take().is_some() {
                self.pool.retire(1);
            }
        } else {
            self.settle(Ended::Cancelled);
        }
        self.pool.busy.fetch_sub(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(p: &Pool<u32>) -> Result<u32> {
        crate::dispatch::block_on(p.with("t:x", false, async || Ok(7), async |w: &mut u32| Ok(*w), |_, _| true))
    }

    #[test]
    fn lazy_pools_drop_idle_instances_after_the_timeout() {
        let pool: Pool<u32> = Pool::new(PoolKind::Lazy { max: 16 });
        run(&pool).unwrap();
        run(&pool).unwrap();
        assert_eq!(
            pool.stats(),
            PoolStats {
                live: 1,
                peak: 1,
                created: 1
            },
            "reused while fresh"
        );
        // Age the idle instance past the timeout.
        pool.idle.lock().unwrap()[0].1 -= IDLE_TIMEOUT;
        pool.trim();
        assert_eq!(pool.stats().live, 0, "the idle one was dropped");
        run(&pool).unwrap();
        assert_eq!(
            pool.stats(),
            PoolStats {
                live: 1,
                peak: 1,
                created: 2
            }
        );
    }

    #[test]
    fn trimming_drops_the_expired_oldest_and_keeps_the_rest() {
        let pool: Pool<u32> = Pool::new(PoolKind::Lazy { max: 16 });
        for w in 0..4 {
            pool.put_back(w);
        }
        {
            let mut idle = pool.idle.lock().unwrap();
            idle[0].1 -= IDLE_TIMEOUT;
            idle[1].1 -= IDLE_TIMEOUT;
        }
        pool.trim();
        let left: Vec<u32> = pool.idle.lock().unwrap().iter().map(|(w, _)| **w).collect();
        assert_eq!(left, [2, 3], "the two expired went, oldest first");
        assert_eq!(pool.stats().live, 2);
    }

    #[test]
    fn a_rotating_pool_keeps_spares_and_takes_the_oldest() {
        let pool: Pool<u32> = Pool::new(PoolKind::Lazy { max: 3 });
        pool.rotate(2);
        let made = std::cell::Cell::new(0);
        let mut used = Vec::new();
        for _ in 0..6 {
            let w = crate::dispatch::block_on(pool.with(
                "t:x",
                false,
                async || {
                    made.set(made.get() + 1);
                    Ok(made.get())
                },
                async |w: &mut u32| Ok(*w),
                |_, _| true,
            ));
            used.push(w.unwrap());
        }
        // Two spares kept idle, at most three in all: made while fewer
        // than two were idle, then taken in turn.
        assert_eq!(used, [1, 2, 3, 1, 2, 3]);
        assert_eq!(pool.stats().live, 3);
        // Rare calls: however long they were idle, the spares and the one a
        // call takes stay, so the next call resets rather than instantiates.
        for (_, at) in pool.idle.lock().unwrap().iter_mut() {
            *at -= IDLE_TIMEOUT;
        }
        pool.trim();
        assert_eq!(pool.stats().live, 3);
    }

    #[test]
    fn a_cancelled_reentrant_call_retires_its_own_instance() {
        let pool: Pool<u32> = Pool::new(PoolKind::Inline);
        // The only slot is taken: the reentrant call gets its own instance.
        let _held = pool.permits.try_acquire().unwrap();
        let mut call = Box::pin(pool.with(
            "t:x",
            true,
            async || Ok(7),
            async |_: &mut u32| std::future::pending::<Result<u32>>().await,
            |_, _| true,
        ));
        let waker = std::task::Waker::noop();
        let polled = std::future::Future::poll(call.as_mut(), &mut std::task::Context::from_waker(waker));
        assert!(polled.is_pending());
        assert_eq!(pool.stats().live, 1, "made, and running");
        drop(call);
        assert_eq!(pool.stats().live, 0, "retired when its caller went away");
    }

    #[test]
    fn an_instance_not_kept_is_retired() {
        let pool: Pool<u32> = Pool::new(PoolKind::Inline);
        let r = crate::dispatch::block_on(pool.with(
            "t:x",
            false,
            async || Ok(7),
            async |w: &mut u32| Ok(*w),
            |_, _| false,
        ));
        assert_eq!(r.unwrap(), 7);
        assert_eq!((pool.stats().created, pool.stats().live), (1, 0));
    }
}
