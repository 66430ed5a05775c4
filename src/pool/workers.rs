//! Dedicated worker threads (Wippy's `pool.worker_class`): a function's
//! calls run on its own `threads` OS threads, all driving one executor.
//! A caller awaits its call's task, so it is suspended, not blocked; a
//! guest waiting inside a call (a sleep, a socket) is a pending future and
//! holds no thread.

use crate::dispatch::Signal;
use std::future::Future;
use std::sync::Arc;

/// The default thread count: the machine's cores, at most four.
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get()).min(4)
}

/// OS threads that run one function's calls.
pub struct WorkerPool {
    ex: Arc<async_executor::Executor<'static>>,
    stop: Arc<Signal>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl WorkerPool {
    /// Starts `threads` threads named `wippy-{class}-N`.
    ///
    /// # Errors
    /// If the OS refuses a thread.
    pub fn new(class: &str, threads: usize) -> std::io::Result<Self> {
        let ex = Arc::new(async_executor::Executor::new());
        let stop: Arc<Signal> = Arc::default();
        let threads = (0..threads.max(1))
            .map(|i| {
                let (ex, stop) = (ex.clone(), stop.clone());
                std::thread::Builder::new()
                    .name(format!("wippy-{class}-{i}"))
                    .spawn(move || async_io::block_on(ex.run(stop.wait())))
            })
            .collect::<std::io::Result<Vec<_>>>()?;
        Ok(WorkerPool { ex, stop, threads })
    }

    /// Runs `f` on the pool's threads; await the task for its output.
    pub fn spawn<T: Send + 'static>(&self, f: impl Future<Output = T> + Send + 'static) -> async_executor::Task<T> {
        self.ex.spawn(f)
    }

    pub fn threads(&self) -> usize {
        self.threads.len()
    }
}

impl Drop for WorkerPool {
    fn drop(&mut self) {
        self.stop.set();
        let me = std::thread::current().id();
        for t in self.threads.drain(..) {
            // The last handle may be dropped on one of the pool's own threads.
            if t.thread().id() != me {
                let _ = t.join();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_run_on_the_pools_threads() {
        let pool = WorkerPool::new("test", 2).unwrap();
        let names: Vec<String> = (0..8)
            .map(|_| pool.spawn(async { std::thread::current().name().unwrap_or_default().to_string() }))
            .map(crate::dispatch::block_on)
            .collect();
        assert!(names.iter().all(|n| n.starts_with("wippy-test-")), "{names:?}");
        assert_eq!(pool.threads(), 2);
    }
}
