//! Instance pools: components are compiled once per entry; instances are
//! kept warm and reused; a call that fails (a trap, a timeout) discards its
//! instance.
//!
//! - `inline`: one warm instance, calls serialised.
//! - `lazy`: instances on demand up to `max_size` (default 16); idle ones
//!   are dropped after [`IDLE_TIMEOUT`].
//! - `static`: `workers` instances and a bounded queue of `buffer` waiting
//!   calls (default workers × 64); a full queue is an overload error.
//! - no `type`: Wippy's implicit default, lazy with up to 100 instances.

use super::config::PoolSpec;
use anyhow::{bail, Result};
use async_lock::Semaphore;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a `lazy` pool keeps an idle instance.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

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
    kind: &'static str,
    /// One permit per instance that may exist at once.
    permits: Semaphore,
    idle: Mutex<Vec<(W, Instant)>>,
    /// Calls waiting for a permit, and how many may wait (`static` only).
    waiting: AtomicUsize,
    queue_limit: Option<usize>,
    idle_timeout: Option<Duration>,
    /// Calls running now.
    busy: AtomicUsize,
    stats: Mutex<PoolStats>,
}

impl<W> Pool<W> {
    pub fn new(spec: &PoolSpec) -> Self {
        let (kind, size, queue_limit, idle_timeout) = match spec.kind.as_deref() {
            Some("inline") => ("inline", 1, None, None),
            Some("static") => {
                let workers = spec.workers.or(spec.size).unwrap_or(1).max(1);
                ("static", workers, Some(spec.buffer.unwrap_or(workers * 64)), None)
            }
            Some(_) => ("lazy", spec.max_size.unwrap_or(16).max(1), None, Some(IDLE_TIMEOUT)),
            None => ("lazy", spec.max_size.unwrap_or(100).max(1), None, Some(IDLE_TIMEOUT)),
        };
        Pool {
            kind,
            permits: Semaphore::new(size),
            idle: Mutex::new(Vec::new()),
            waiting: AtomicUsize::new(0),
            queue_limit,
            idle_timeout,
            busy: AtomicUsize::new(0),
            stats: Mutex::new(PoolStats::default()),
        }
    }

    pub fn stats(&self) -> PoolStats {
        *self.stats.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `call` with a warm instance (or one made by `make`), waiting for a
    /// free slot. The instance goes back to the pool if `call` succeeds and
    /// it may be `reuse`d.
    pub async fn with<R>(
        &self,
        id: &str,
        reuse: bool,
        make: impl FnOnce() -> Result<W>,
        call: impl AsyncFnOnce(&mut W) -> Result<R>,
    ) -> Result<R> {
        let queued = self.waiting.fetch_add(1, Ordering::SeqCst);
        if let Some(limit) = self.queue_limit {
            if queued >= limit && self.permits.try_acquire().is_none() {
                self.waiting.fetch_sub(1, Ordering::SeqCst);
                bail!("`{id}` is overloaded: its static pool's queue of {limit} waiting calls is full");
            }
        }
        let permit = self.permits.acquire().await;
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        let warm = self.take_idle();
        let mut w = match warm {
            Some(w) => w,
            None => {
                let w = make()?;
                self.count_created();
                w
            }
        };
        let result = {
            // Counted down even if the call is dropped half-way.
            struct Busy<'a>(&'a AtomicUsize);
            impl Drop for Busy<'_> {
                fn drop(&mut self) {
                    self.0.fetch_sub(1, Ordering::SeqCst);
                }
            }
            self.busy.fetch_add(1, Ordering::SeqCst);
            let _busy = Busy(&self.busy);
            let result = call(&mut w).await;
            // Settled before the call stops counting as busy, so an idle
            // pool's statistics are final.
            match &result {
                Ok(_) if reuse => self
                    .idle
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push((w, Instant::now())),
                // A failed call may leave the instance poisoned: replace it.
                _ => self.retire(1),
            }
            result
        };
        drop(permit);
        result
    }

    /// Adds an instance made ahead of time (to check that it can be made).
    pub fn put_back(&self, w: W) {
        self.count_created();
        self.idle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((w, Instant::now()));
    }

    fn take_idle(&self) -> Option<W> {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(timeout) = self.idle_timeout {
            let before = idle.len();
            idle.retain(|(_, since)| since.elapsed() < timeout);
            let dropped = before - idle.len();
            if dropped > 0 {
                self.retire(dropped);
            }
        }
        idle.pop().map(|(w, _)| w)
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

    /// `inline`, `lazy` or `static`.
    pub fn kind(&self) -> &'static str {
        self.kind
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lazy_pools_drop_idle_instances_after_the_timeout() {
        let mut pool: Pool<u32> = Pool::new(&PoolSpec {
            kind: Some("lazy".into()),
            ..Default::default()
        });
        pool.idle_timeout = Some(Duration::from_millis(20));
        let run = |p: &Pool<u32>| crate::dispatch::block_on(p.with("t:x", true, || Ok(7), async |w: &mut u32| Ok(*w)));
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
        std::thread::sleep(Duration::from_millis(40));
        run(&pool).unwrap();
        assert_eq!(
            pool.stats(),
            PoolStats {
                live: 1,
                peak: 1,
                created: 2
            },
            "the idle one was dropped"
        );
    }
}
