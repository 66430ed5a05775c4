//! Guarding a recycled memory's grown pages again, many memories at once.
//!
//! A reset guards the pages a guest grew into past its fresh size
//! ([`super::Memories::shrink`]). Those pages were touched, so guarding
//! them drops them, and dropping a page the guest touched means flushing
//! it from the TLB of every CPU that runs one of this process's threads:
//! an interrupt to each, waited for. On a busy 2-CPU server that wait was
//! most of what a fresh instance per request cost beyond a pooled one
//! (about 16 µs of 20 µs, `perf`).
//!
//! So a reset only queues the range ([`later`]). The queue is emptied
//! ([`close_all`]) when it is full, or when a guest is about to run in a
//! store whose range is still queued ([`Closing::ready`]): one
//! `process_madvise(MADV_DONTNEED)` drops every queued range with a single
//! flush (Linux 6.16 batches it), and guard markers then go on pages no
//! longer present, which needs no flush. Until then no guest of that
//! store runs, and the host sees the memory at its fresh size, so the
//! queued pages, though they still hold what the last guest wrote, are
//! seen by no one. Where the kernel cannot do it in one call, each range
//! is guarded on its own as before.

use std::sync::atomic::{AtomicU8, Ordering::SeqCst};
use std::sync::{Arc, Mutex};

/// The most ranges, and bytes, queued before they are closed anyway (what
/// idle memories may hold meanwhile stays bounded).
const MOST: usize = 32;
const MOST_BYTES: usize = 64 << 20;

/// A queued range's state.
const QUEUED: u8 = 0;
const CLOSED: u8 = 1;
const FAILED: u8 = 2;

struct Queued {
    start: usize,
    end: usize,
    state: Arc<AtomicU8>,
}

static QUEUE: Mutex<Vec<Queued>> = Mutex::new(Vec::new());

/// A memory's range waiting to be guarded. Dropping it (the memory goes
/// away first) takes it off the queue, so that the address space, once
/// reused, is never touched for it.
pub(crate) struct Closing {
    state: Arc<AtomicU8>,
}

/// Queues `[start, end)` (page-aligned, in a reservation of the caller's
/// that no guest runs in until [`Closing::ready`]) to be guarded.
pub(crate) fn later(start: usize, end: usize) -> Closing {
    let state = Arc::new(AtomicU8::new(QUEUED));
    let mut queue = lock();
    queue.push(Queued {
        start,
        end,
        state: state.clone(),
    });
    if queue.len() >= MOST || queue.iter().map(|q| q.end - q.start).sum::<usize>() >= MOST_BYTES {
        close_all(&mut queue);
    }
    Closing { state }
}

impl Closing {
    /// Makes sure the range is guarded (closing every queued range if it
    /// is not yet); `false` if the kernel refused.
    pub(crate) fn ready(&self) -> bool {
        if self.state.load(SeqCst) == QUEUED {
            let mut queue = lock();
            // Closed under the lock, so a state read after it is final.
            if self.state.load(SeqCst) == QUEUED {
                close_all(&mut queue);
            }
        }
        self.state.load(SeqCst) == CLOSED
    }
}

impl Drop for Closing {
    fn drop(&mut self) {
        if self.state.load(SeqCst) == QUEUED {
            lock().retain(|q| !Arc::ptr_eq(&q.state, &self.state));
        }
    }
}

fn lock() -> std::sync::MutexGuard<'static, Vec<Queued>> {
    QUEUE.lock().unwrap_or_else(|e| e.into_inner())
}

/// Guards every queued range and empties the queue.
fn close_all(queue: &mut Vec<Queued>) {
    let ranges: Vec<(usize, usize)> = queue.iter().map(|q| (q.start, q.end)).collect();
    // One range is closed as well by guarding it alone.
    let all_at_once = ranges.len() > 1
        && vector::advise(&ranges, libc::MADV_DONTNEED)
        && vector::advise(&ranges, super::guard::INSTALL);
    for q in queue.drain(..) {
        // One at a time, guarding drops the pages itself.
        let closed = all_at_once || super::guard::close(q.start, q.end);
        q.state.store(if closed { CLOSED } else { FAILED }, SeqCst);
    }
}

/// `process_madvise` on this process.
mod vector {
    /// `PIDFD_SELF_THREAD_GROUP` (Linux 6.15): this process, whatever it
    /// is (a forked child means itself, not its parent).
    const PIDFD_SELF: libc::c_int = -10001;

    /// Gives `advice` for all of `ranges` in one call; whether the kernel
    /// took all of it.
    pub(super) fn advise(ranges: &[(usize, usize)], advice: libc::c_int) -> bool {
        use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
        // Off for good once the kernel refuses: an older one always will.
        static REFUSED: AtomicBool = AtomicBool::new(false);
        if REFUSED.load(Relaxed) || ranges.is_empty() {
            return ranges.is_empty();
        }
        let iov: Vec<libc::iovec> = ranges
            .iter()
            .map(|&(start, end)| libc::iovec {
                iov_base: start as *mut libc::c_void,
                iov_len: end - start,
            })
            .collect();
        let total: usize = ranges.iter().map(|(s, e)| e - s).sum();
        // The kernel takes at most IOV_MAX ranges a call; we queue fewer.
        // SAFETY: the ranges are page-aligned parts of reservations their
        // memories keep while queued, and no guest runs in them.
        let done = unsafe {
            libc::syscall(
                libc::SYS_process_madvise,
                PIDFD_SELF,
                iov.as_ptr(),
                iov.len(),
                advice,
                0,
            )
        };
        if done < 0 {
            REFUSED.store(true, Relaxed);
        }
        done == total as i64
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use crate::memory::guard::{markers, Guard};

    #[test]
    fn queued_ranges_are_guarded_together_and_a_dropped_one_is_never_touched() {
        if !markers() {
            return;
        }
        let page = super::super::page_size();
        let base = super::super::scratch_mapping(4 * page).expect("a mapping");
        let at = |i: usize| (base + i * page) as *mut u8;
        // SAFETY (here and below): pages of the mapping above, unmapped at
        // the end; page 0 is read only while a guard says it is guarded
        // (the handler opens it).
        unsafe {
            for i in 0..4 {
                at(i).write_volatile(7);
            }
        }
        let mut guard = Guard::new().expect("a guard");
        assert!(guard.note(base, base + 4 * page), "noted, not yet closed");
        assert_eq!(unsafe { at(0).read_volatile() }, 7);
        let first = later(base, base + page);
        let dropped = later(base + 2 * page, base + 3 * page);
        let last = later(base + 3 * page, base + 4 * page);
        drop(dropped);
        assert!(first.ready(), "closed");
        assert!(!guard.hit());
        assert_eq!(unsafe { at(0).read_volatile() }, 0, "what the page held is gone");
        assert!(guard.hit(), "and touching it was caught (the handler opens the range)");
        assert!(last.ready(), "closed in the same batch");
        assert_eq!(unsafe { at(3).read_volatile() }, 0, "dropped too");
        assert_eq!(
            unsafe { at(2).read_volatile() },
            7,
            "a range taken off the queue is left alone"
        );
        assert_eq!(unsafe { at(1).read_volatile() }, 7);
        drop(guard);
        unsafe { libc::munmap(base as *mut libc::c_void, 4 * page) };
    }

    /// The kernel's version, as (major, minor).
    fn kernel() -> Option<(u32, u32)> {
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").ok()?;
        let mut parts = release.trim().split(['.', '-']);
        Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
    }

    #[test]
    fn a_kernel_that_batches_takes_every_range_in_one_call() {
        // Linux 6.16 has this process as a pidfd and batched flushes; on
        // older kernels closing falls back to one range at a time.
        if kernel().is_none_or(|k| k < (6, 16)) {
            return;
        }
        let page = super::super::page_size();
        let base = super::super::scratch_mapping(3 * page).expect("a mapping");
        // SAFETY: pages of the mapping, unmapped below.
        unsafe {
            (base as *mut u8).write_volatile(1);
            ((base + 2 * page) as *mut u8).write_volatile(1);
        }
        let ranges = [(base, base + page), (base + 2 * page, base + 3 * page)];
        assert!(
            vector::advise(&ranges, libc::MADV_DONTNEED),
            "one call took both ranges"
        );
        // SAFETY: as above; dropped pages read as zero.
        assert_eq!(unsafe { (base as *const u8).read_volatile() }, 0);
        unsafe { libc::munmap(base as *mut libc::c_void, 3 * page) };
    }
}
