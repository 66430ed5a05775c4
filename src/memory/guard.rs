//! Guard ranges: address ranges of linear memory that a guest must not
//! touch, made inaccessible, and a `SIGSEGV` handler that notes a touch
//! instead of crashing.
//!
//! Where the kernel has guard regions (Linux 6.13: `MADV_GUARD_INSTALL`),
//! a range is guarded with page-table markers: no mapping is split or
//! merged, so setting one takes the address space's lock only to read, and
//! costs a fraction of an `mprotect`, which this falls back to elsewhere.
//! Markers drop what the pages held; `mprotect` keeps it.
//!
//! wasmi bounds-checks every access against a memory's real length. A
//! recycled memory can be longer than the memory a fresh instance would
//! have (wasmi cannot shrink one), so the pages past the fresh length are
//! guarded. An access there faults; the handler marks the range *hit*,
//! opens it (so the access completes and the guest runs on) and returns.
//! The runtime then turns a hit into the out-of-bounds trap a fresh
//! instance would have raised, before the guest can do anything anyone
//! sees: before any host call it makes, when its call ends, and at the next
//! fuel slice ([`super::Memories::check`]). Reporting the hit zeroes and
//! guards the range again ([`Guard::rearm`]), so the memory is as a fresh
//! instance's would be after that trap, and a reset may reuse it.
//!
//! The ranges live in a fixed table of atomics, the only state the handler
//! reads. Faults elsewhere go to the handler that was installed before ours
//! (Rust's stack-overflow report, libFuzzer's), or kill the process as they
//! would have.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};

/// How many guard ranges can exist at once. A memory that finds no free
/// one is simply not recycled.
const SLOTS: usize = 1 << 16;

struct Slot {
    /// Taken by a [`Guard`]; its range is armed when `start < end`.
    owned: AtomicBool,
    start: AtomicUsize,
    end: AtomicUsize,
    hit: AtomicBool,
}

static TABLE: [Slot; SLOTS] = [const {
    Slot {
        owned: AtomicBool::new(false),
        start: AtomicUsize::new(0),
        end: AtomicUsize::new(0),
        hit: AtomicBool::new(false),
    }
}; SLOTS];

/// One past the highest slot ever taken (the handler scans no further).
static HIGH: AtomicUsize = AtomicUsize::new(0);

/// A guard range one memory owns: `[start, end)`, page-aligned, protected
/// while it is not empty.
pub(crate) struct Guard {
    slot: usize,
}

impl Guard {
    /// A free slot, with the handler installed; `None` if the table is full
    /// or the platform has no guard pages.
    pub(crate) fn new() -> Option<Guard> {
        if !install() {
            return None;
        }
        // Start where the last search ended: slots are taken and given
        // back in roughly that order.
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let from = NEXT.load(SeqCst);
        let slot = (from..SLOTS)
            .chain(0..from)
            .find(|&i| TABLE[i].owned.compare_exchange(false, true, SeqCst, SeqCst).is_ok())?;
        NEXT.store((slot + 1) % SLOTS, SeqCst);
        HIGH.fetch_max(slot + 1, SeqCst);
        let s = &TABLE[slot];
        s.hit.store(false, SeqCst);
        s.start.store(0, SeqCst);
        s.end.store(0, SeqCst);
        Some(Guard { slot })
    }

    /// Guards exactly `[start, end)` (page-aligned addresses in memory the
    /// caller reserved), opening what was guarded before outside it.
    /// Returns `false` if the protection could not be changed.
    pub(crate) fn set(&mut self, start: usize, end: usize) -> bool {
        let s = &TABLE[self.slot];
        let (old_start, old_end) = (s.start.load(SeqCst), s.end.load(SeqCst));
        // The table first says what is guarded, then the pages change: a
        // fault in between is one the table already explains.
        if end > start {
            s.start.store(start, SeqCst);
            s.end.store(end, SeqCst);
            if !protect(start, end, false) {
                return false;
            }
        }
        let ok = open_outside(old_start, old_end, start, end);
        if end <= start {
            s.start.store(0, SeqCst);
            s.end.store(0, SeqCst);
        }
        ok
    }

    /// Narrows the guarded range to its part `[start, end)`, when all of
    /// it is guarded now (no hit, nothing queued to be closed): only what
    /// leaves the range is opened, and nothing is guarded again. Otherwise
    /// (or if `[start, end)` is not inside it) as [`Guard::set`].
    pub(crate) fn narrow(&mut self, start: usize, end: usize) -> bool {
        let s = &TABLE[self.slot];
        let (old_start, old_end) = (s.start.load(SeqCst), s.end.load(SeqCst));
        if end <= start || start < old_start || old_end < end || s.hit.load(SeqCst) {
            return self.set(start, end);
        }
        // Opened while the table still explains a fault there.
        let ok = open_outside(old_start, old_end, start, end);
        s.start.store(start, SeqCst);
        s.end.store(end, SeqCst);
        ok
    }

    /// Says that `[start, end)` is guarded, as [`Guard::set`] would, but
    /// leaves its pages to the caller: those in `[start, end)` that the old
    /// range guarded stay guarded, and the rest must be closed
    /// (`super::closing`) before a guest runs again. What the old range
    /// guarded outside the new one is opened.
    pub(crate) fn note(&mut self, start: usize, end: usize) -> bool {
        let s = &TABLE[self.slot];
        let (old_start, old_end) = (s.start.load(SeqCst), s.end.load(SeqCst));
        s.start.store(start, SeqCst);
        s.end.store(end, SeqCst);
        open_outside(old_start, old_end, start, end)
    }

    /// Whether the guest touched the guarded range since it was set.
    pub(crate) fn hit(&self) -> bool {
        TABLE[self.slot].hit.load(SeqCst)
    }

    /// After a hit (the range is open): closes the range again, once
    /// `clear(start, end)` has emptied it, and forgets the hit.
    pub(crate) fn rearm(&self, clear: impl FnOnce(usize, usize) -> bool) -> bool {
        let s = &TABLE[self.slot];
        let (start, end) = (s.start.load(SeqCst), s.end.load(SeqCst));
        let ok = end <= start || clear(start, end) && protect(start, end, false);
        if ok {
            s.hit.store(false, SeqCst);
        }
        ok
    }
}

impl Drop for Guard {
    /// Frees the slot. Protected pages are left as they are (they belong
    /// to a reservation that must outlive its guard, or a new mapping at
    /// the same place could be opened here, and whose next memory opens
    /// what it uses), but markers come off: nothing else would take them.
    fn drop(&mut self) {
        let s = &TABLE[self.slot];
        let (start, end) = (s.start.load(SeqCst), s.end.load(SeqCst));
        if end > start && MARKERS.load(SeqCst) {
            protect(start, end, true);
        }
        s.start.store(0, SeqCst);
        s.end.store(0, SeqCst);
        s.owned.store(false, SeqCst);
    }
}

/// Opens the parts of `[a, b)` outside `[start, end)`.
fn open_outside(a: usize, b: usize, start: usize, end: usize) -> bool {
    let (start, end) = if end > start { (start, end) } else { (b, b) };
    let left = (a, b.min(start));
    let right = (a.max(end), b);
    [left, right].into_iter().all(|(x, y)| x >= y || protect(x, y, true))
}

/// `madvise` advice (Linux 6.13) that puts guard markers on a range's
/// pages, and that takes them off.
#[cfg(target_os = "linux")]
const MADV_GUARD_INSTALL: libc::c_int = 102;
#[cfg(target_os = "linux")]
const MADV_GUARD_REMOVE: libc::c_int = 103;
/// The advice that puts markers on (for [`super::closing`]'s batches).
#[cfg(target_os = "linux")]
pub(crate) const INSTALL: libc::c_int = MADV_GUARD_INSTALL;

/// Whether ranges are guarded with markers rather than `mprotect`: set
/// once, by [`install`], before any range is.
static MARKERS: AtomicBool = AtomicBool::new(false);

/// Whether guarding a range drops what its pages held (so a caller about
/// to guard pages need not clear them first).
pub(crate) fn drops_contents() -> bool {
    MARKERS.load(SeqCst)
}

/// Whether ranges are guarded with markers (the handler installed first).
#[cfg(test)]
pub(crate) fn markers() -> bool {
    install() && MARKERS.load(SeqCst)
}

/// Closes `[start, end)` (page-aligned, in a reservation of the caller's)
/// outside any [`Guard`]'s bookkeeping: the range's guard already says it
/// is guarded ([`Guard::note`]).
pub(crate) fn close(start: usize, end: usize) -> bool {
    end <= start || protect(start, end, false)
}

/// Closes (`open == false`) or opens `[start, end)`. Async-signal-safe:
/// the handler opens ranges too.
#[cfg(target_os = "linux")]
fn protect(start: usize, end: usize, open: bool) -> bool {
    let (at, len) = (start as *mut libc::c_void, end - start);
    // SAFETY: callers pass page-aligned ranges inside reservations they
    // own; a marker or a protection change affects only those pages.
    unsafe {
        if MARKERS.load(SeqCst) {
            let advice = if open { MADV_GUARD_REMOVE } else { MADV_GUARD_INSTALL };
            return libc::madvise(at, len, advice) == 0;
        }
        let prot = if open {
            libc::PROT_READ | libc::PROT_WRITE
        } else {
            libc::PROT_NONE
        };
        libc::mprotect(at, len, prot) == 0
    }
}

/// Whether this kernel has guard markers: tried on a page of its own.
#[cfg(target_os = "linux")]
fn markers_work() -> bool {
    let page = super::page_size();
    let Some(at) = super::scratch_mapping(page) else {
        return false;
    };
    let at = at as *mut libc::c_void;
    // SAFETY: a page of our own, unmapped before returning.
    unsafe {
        let works = libc::madvise(at, page, MADV_GUARD_INSTALL) == 0 && libc::madvise(at, page, MADV_GUARD_REMOVE) == 0;
        libc::munmap(at, page);
        works
    }
}

#[cfg(not(target_os = "linux"))]
fn protect(_: usize, _: usize, _: bool) -> bool {
    false
}

#[cfg(not(target_os = "linux"))]
fn install() -> bool {
    false
}

/// Installs the handler once; whether it is in place.
#[cfg(target_os = "linux")]
fn install() -> bool {
    use std::sync::OnceLock;
    static INSTALLED: OnceLock<bool> = OnceLock::new();
    *INSTALLED.get_or_init(|| {
        let markers = std::env::var_os("WIPPY_GUARD_MPROTECT").is_none() && markers_work();
        MARKERS.store(markers, SeqCst);
        // SAFETY: a zeroed sigaction is a valid value to fill in; the
        // previous action is written once here, before any fault can
        // reach our handler, and only read afterwards.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = handler as *const () as usize;
            action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
            libc::sigemptyset(&mut action.sa_mask);
            let previous = std::ptr::addr_of_mut!(PREVIOUS);
            libc::sigaction(libc::SIGSEGV, &action, previous) == 0
        }
    })
}

#[cfg(target_os = "linux")]
static mut PREVIOUS: libc::sigaction = unsafe { std::mem::zeroed() };

/// The `SIGSEGV` handler: a fault in an armed range marks it hit and opens
/// it; any other goes to the previous handler.
#[cfg(target_os = "linux")]
extern "C" fn handler(signal: libc::c_int, info: *mut libc::siginfo_t, context: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo for SA_SIGINFO handlers.
    let addr = unsafe { (*info).si_addr() } as usize;
    let high = HIGH.load(SeqCst).min(SLOTS);
    for s in &TABLE[..high] {
        let (start, end) = (s.start.load(SeqCst), s.end.load(SeqCst));
        if start <= addr && addr < end {
            s.hit.store(true, SeqCst);
            if protect(start, end, true) {
                return;
            }
        }
    }
    // SAFETY: PREVIOUS was written before this handler was installed.
    unsafe {
        let previous = std::ptr::addr_of!(PREVIOUS).read();
        let chained = previous.sa_sigaction;
        if chained == libc::SIG_DFL || chained == libc::SIG_IGN {
            // Put the default back: returning re-runs the access, which
            // now ends the process as it would have without us.
            libc::signal(signal, libc::SIG_DFL);
        } else if previous.sa_flags & libc::SA_SIGINFO != 0 {
            let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) = std::mem::transmute(chained);
            f(signal, info, context);
        } else {
            let f: extern "C" fn(libc::c_int) = std::mem::transmute(chained);
            f(signal);
        }
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    /// Bytes in a page of the tests' mappings.
    const PAGE: usize = 4096 * 16;

    /// A new anonymous private mapping of four pages (the caller unmaps it).
    fn four_pages() -> usize {
        // SAFETY: a new mapping, the caller's to unmap.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                PAGE * 4,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert_ne!(base, libc::MAP_FAILED);
        base as usize
    }

    #[test]
    fn a_touch_in_a_guarded_range_is_noted_and_completes() {
        let (page, base) = (PAGE, four_pages());
        let mut g = Guard::new().expect("a guard");
        assert!(g.set(base + page, base + 3 * page));
        // SAFETY: inside the mapping.
        unsafe { std::ptr::write_volatile(base as *mut u8, 1) };
        assert!(!g.hit(), "outside the range");
        unsafe { std::ptr::write_volatile((base + 2 * page) as *mut u8, 7) };
        assert!(g.hit());
        assert_eq!(unsafe { std::ptr::read_volatile((base + 2 * page) as *const u8) }, 7);
        drop(g);
        unsafe { libc::munmap(base as *mut libc::c_void, page * 4) };
    }
    #[test]
    fn a_narrowed_range_opens_only_what_left_it() {
        let (page, base) = (PAGE, four_pages());
        let mut g = Guard::new().expect("a guard");
        assert!(g.set(base + page, base + 4 * page));
        assert!(g.narrow(base + 2 * page, base + 4 * page));
        // SAFETY: inside the mapping.
        unsafe { std::ptr::write_volatile((base + page) as *mut u8, 1) };
        assert!(!g.hit(), "opened");
        unsafe { std::ptr::write_volatile((base + 3 * page) as *mut u8, 7) };
        assert!(g.hit(), "still guarded");
        drop(g);
        unsafe { libc::munmap(base as *mut libc::c_void, page * 4) };
    }
}
