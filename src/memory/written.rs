//! Which pages of a range were written since a moment we chose, from the
//! kernel's page tables: so that a reset can find what a guest changed in
//! a large memory image without comparing all of it.
//!
//! The range is registered with a userfaultfd for write protection in
//! asynchronous mode (`UFFD_FEATURE_WP_ASYNC`, Linux 6.7): a write to a
//! protected page is resolved by the kernel itself, which just clears the
//! page's protection bit, with no handler thread and no signal. With
//! `UFFD_FEATURE_WP_UNPOPULATED` pages not yet faulted in are protected
//! too. `PAGEMAP_SCAN` then lists the unprotected ("written") pages, and
//! can protect them again in the same walk.
//!
//! What this cannot see: a page dropped by `MADV_DONTNEED` (on anonymous
//! memory that drops its protection too, and the page reads as zero) is
//! not written until something writes it. Callers that drop pages in a
//! tracked range must forget what they knew ([`super::Memories`] does).
//!
//! One userfaultfd serves the process, made on first use; where anything
//! of this is missing (another kernel, another platform, or
//! `WIPPY_NO_WRITE_TRACKING=1`) nothing is tracked, and callers compare.

/// Architectures whose ioctl numbers (the generic encoding) `kernel` uses.
#[cfg(target_os = "linux")]
const KNOWN_ARCH: bool = cfg!(any(
    target_arch = "x86_64",
    target_arch = "aarch64",
    target_arch = "riscv64",
    target_arch = "loongarch64"
));

/// A page-aligned range registered for write tracking; unregistered on
/// drop (before its reservation is reused or unmapped).
pub(crate) struct Tracked {
    start: usize,
    end: usize,
    /// The pages reported written when last protected again (address
    /// ranges, in order): those written again are left unprotected
    /// ([`Tracked::protect_again`]).
    last: Vec<(usize, usize)>,
    /// Times protected again since every written page last was.
    rounds: u32,
}

/// Every this many times, [`Tracked::protect_again`] protects all written
/// pages, even those written every time before.
pub(crate) const RELEARN: u32 = 32;

/// At most this many runs of pages are protected one by one; past that,
/// all written pages between the first and the last (one call, one TLB
/// flush).
const FEW_RUNS: usize = 4;

impl Tracked {
    /// Tracks `[start, end)` (page-aligned, mapped, ours), every page of it
    /// protected: from now on, what is written there is reported.
    pub(crate) fn new(start: usize, end: usize) -> Option<Tracked> {
        if end <= start || !kernel::register(start, end) {
            return None;
        }
        let mut tracked = Tracked {
            start,
            end,
            last: Vec::new(),
            rounds: 0,
        };
        // Dropped (and unregistered) if the protection fails.
        tracked.protect().then_some(tracked)
    }

    /// Whether this tracks exactly `[start, end)`.
    pub(crate) fn covers(&self, start: usize, end: usize) -> bool {
        (self.start, self.end) == (start, end)
    }

    /// Protects every page again: nothing is written from now.
    pub(crate) fn protect(&mut self) -> bool {
        self.last.clear();
        kernel::protect(self.start, self.end)
    }

    /// The page-aligned address ranges written since they were last
    /// protected, in order; `None` if the kernel will not say (then any
    /// page may have been).
    pub(crate) fn written(&self) -> Option<Vec<(usize, usize)>> {
        kernel::written(self.start, self.end)
    }

    /// Protects again the pages `written` (what [`Tracked::written`] said,
    /// and the caller has undone) but those written the time before as
    /// well. Those are left unprotected: a guest that writes the same
    /// pages on every call (CPython's stack and heap: some 235 pages a
    /// request) would otherwise take a write fault on each, every call,
    /// which costs more than writing them back. Unprotected, they are
    /// reported written every time, so the caller always undoes them.
    /// Every [`RELEARN`] times all are protected, so that pages no longer
    /// written every call stop being reported.
    pub(crate) fn protect_again(&mut self, written: Vec<(usize, usize)>) -> bool {
        self.rounds += 1;
        let protect = match self.rounds >= RELEARN {
            true => {
                self.rounds = 0;
                written.clone()
            }
            false => minus(&written, &self.last),
        };
        self.last = written;
        match protect.len() > FEW_RUNS {
            true => self.protect_written(protect[0].0, protect[protect.len() - 1].1),
            false => protect.iter().all(|&(from, to)| self.protect_written(from, to)),
        }
    }

    /// Protects again the pages in `[from, to)` (page-aligned, inside the
    /// range) that were written; the others are protected already.
    fn protect_written(&self, from: usize, to: usize) -> bool {
        from >= to || kernel::protect_written(from.max(self.start), to.min(self.end))
    }
}

/// The parts of `a` outside `b` (both address ranges in order, none
/// overlapping another of its own).
fn minus(a: &[(usize, usize)], b: &[(usize, usize)]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut j = 0;
    for &(start, end) in a {
        let mut at = start;
        // Ranges of `b` ending by `at` cut neither this range nor later ones.
        while b.get(j).is_some_and(|&(_, e)| e <= at) {
            j += 1;
        }
        let mut k = j;
        while at < end {
            match b.get(k) {
                Some(&(bs, be)) if bs < end => {
                    if bs > at {
                        out.push((at, bs));
                    }
                    at = at.max(be);
                    k += 1;
                }
                _ => {
                    out.push((at, end));
                    at = end;
                }
            }
        }
    }
    out
}

impl Drop for Tracked {
    fn drop(&mut self) {
        kernel::unregister(self.start, self.end);
    }
}

/// For tests: whether this kernel tracks writes. Where it cannot (switched
/// off, a kernel before 6.7, or userfaultfd refused) tests of tracking
/// have nothing to check, and say so; anywhere else it must work.
#[cfg(all(test, target_os = "linux"))]
pub(crate) fn works_here() -> bool {
    let page = super::page_size();
    let at = super::scratch_mapping(page).expect("a page to try on");
    let works = Tracked::new(at, at + page).is_some();
    // SAFETY: ours; the tracking is dropped.
    unsafe { libc::munmap(at as *mut libc::c_void, page) };
    if works {
        return true;
    }
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mut v = release
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse::<u32>().ok());
    let old = (v.next().unwrap_or(0), v.next().unwrap_or(0)) < (6, 7);
    // SAFETY: flags only; a descriptor made is closed at once.
    let refused = unsafe {
        let fd = libc::syscall(libc::SYS_userfaultfd, libc::O_CLOEXEC | 1) as libc::c_int;
        if fd >= 0 {
            libc::close(fd);
        }
        fd < 0
    };
    let off = std::env::var_os("WIPPY_NO_WRITE_TRACKING").is_some();
    assert!(
        off || old || refused || !KNOWN_ARCH,
        "this kernel ({release}) has userfaultfd, yet tracking failed"
    );
    eprintln!("write tracking unavailable here: not checked");
    false
}

#[cfg(target_os = "linux")]
mod kernel {
    use super::super::residency::{pagemap_query, Query, PAGE_IS_WRITTEN};
    use std::sync::OnceLock;

    // linux/userfaultfd.h; ioctl numbers in the generic encoding
    // (`KNOWN_ARCH`).
    const UFFD_API: u64 = 0xaa;
    const UFFD_USER_MODE_ONLY: libc::c_int = 1;
    const UFFD_FEATURE_WP_UNPOPULATED: u64 = 1 << 13;
    const UFFD_FEATURE_WP_ASYNC: u64 = 1 << 15;
    const UFFDIO_REGISTER_MODE_WP: u64 = 1 << 1;
    const UFFDIO_WRITEPROTECT_MODE_WP: u64 = 1 << 0;
    const UFFDIO_API: libc::c_ulong = 0xc018_aa3f; // _IOWR(0xaa, 0x3f, struct uffdio_api)
    const UFFDIO_REGISTER: libc::c_ulong = 0xc020_aa00; // _IOWR(0xaa, 0x00, struct uffdio_register)
    const UFFDIO_UNREGISTER: libc::c_ulong = 0x8010_aa01; // _IOR(0xaa, 0x01, struct uffdio_range)
    const UFFDIO_WRITEPROTECT: libc::c_ulong = 0xc018_aa06; // _IOWR(0xaa, 0x06, struct uffdio_writeprotect)
    const USERFAULTFD_IOC_NEW: libc::c_ulong = 0xaa00; // _IO(0xaa, 0x00), on /dev/userfaultfd

    // linux/fs.h
    const PM_SCAN_WP_MATCHING: u64 = 1 << 0;
    const PM_SCAN_CHECK_WPASYNC: u64 = 1 << 1;

    #[repr(C)]
    struct UffdioApi {
        api: u64,
        features: u64,
        ioctls: u64,
    }

    #[repr(C)]
    struct UffdioRange {
        start: u64,
        len: u64,
    }

    #[repr(C)]
    struct UffdioRegister {
        range: UffdioRange,
        mode: u64,
        ioctls: u64,
    }

    #[repr(C)]
    struct UffdioWriteprotect {
        range: UffdioRange,
        mode: u64,
    }

    /// The process's userfaultfd, with asynchronous write protection; made
    /// once, `None` where it cannot be (or is not wanted), and in a forked
    /// child (the descriptor acts on the address space that made it).
    fn uffd() -> Option<libc::c_int> {
        static FD: OnceLock<Option<libc::c_int>> = OnceLock::new();
        let fd = *FD.get_or_init(|| {
            super::super::residency::watch_forks();
            if !super::KNOWN_ARCH || std::env::var_os("WIPPY_NO_WRITE_TRACKING").is_some() {
                return None;
            }
            let flags = libc::O_CLOEXEC | libc::O_NONBLOCK | UFFD_USER_MODE_ONLY;
            // SAFETY: the syscall takes flags only; it returns a new
            // descriptor or fails.
            let mut fd = unsafe { libc::syscall(libc::SYS_userfaultfd, flags) } as libc::c_int;
            if fd < 0 {
                // Where the syscall is refused, the device may be allowed.
                // SAFETY: a constant, NUL-terminated path; the ioctl takes
                // the flags by value and returns a new descriptor.
                unsafe {
                    let dev = libc::open(c"/dev/userfaultfd".as_ptr(), libc::O_RDWR | libc::O_CLOEXEC);
                    if dev >= 0 {
                        fd = libc::ioctl(dev, USERFAULTFD_IOC_NEW, flags as libc::c_ulong);
                        libc::close(dev);
                    }
                }
            }
            if fd < 0 {
                return None;
            }
            let mut api = UffdioApi {
                api: UFFD_API,
                features: UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_UNPOPULATED,
                ioctls: 0,
            };
            // SAFETY: `api` is valid for the kernel to read and write.
            if unsafe { libc::ioctl(fd, UFFDIO_API, &mut api as *mut UffdioApi) } != 0 {
                // SAFETY: ours, used by nothing else.
                unsafe { libc::close(fd) };
                return None;
            }
            Some(fd)
        });
        fd.filter(|_| !super::super::residency::forked())
    }

    fn range(start: usize, end: usize) -> UffdioRange {
        UffdioRange {
            start: start as u64,
            len: (end - start) as u64,
        }
    }

    pub(super) fn register(start: usize, end: usize) -> bool {
        let Some(fd) = uffd() else {
            return false;
        };
        let mut arg = UffdioRegister {
            range: range(start, end),
            mode: UFFDIO_REGISTER_MODE_WP,
            ioctls: 0,
        };
        // SAFETY: `arg` is valid for the kernel to read and write; the
        // range is the caller's own mapping, and registering it changes
        // nothing its users see (asynchronous faults resolve in the kernel).
        unsafe { libc::ioctl(fd, UFFDIO_REGISTER, &mut arg as *mut UffdioRegister) == 0 }
    }

    pub(super) fn unregister(start: usize, end: usize) {
        let Some(fd) = uffd() else {
            return;
        };
        let mut arg = range(start, end);
        // SAFETY: as in `register`; unregistering also drops the range's
        // protection bits.
        unsafe { libc::ioctl(fd, UFFDIO_UNREGISTER, &mut arg as *mut UffdioRange) };
    }

    pub(super) fn protect(start: usize, end: usize) -> bool {
        let Some(fd) = uffd() else {
            return false;
        };
        let mut arg = UffdioWriteprotect {
            range: range(start, end),
            mode: UFFDIO_WRITEPROTECT_MODE_WP,
        };
        // SAFETY: `arg` is valid for the kernel to read and write; the
        // range is registered, and protected pages still take writes.
        unsafe { libc::ioctl(fd, UFFDIO_WRITEPROTECT, &mut arg as *mut UffdioWriteprotect) == 0 }
    }

    /// Fails (rather than reporting nothing) where a page's range is not
    /// tracked asynchronously.
    const WRITTEN: Query = Query {
        flags: PM_SCAN_CHECK_WPASYNC,
        inverted: 0,
        all: PAGE_IS_WRITTEN,
        any: 0,
    };

    pub(super) fn written(start: usize, end: usize) -> Option<Vec<(usize, usize)>> {
        uffd()?;
        pagemap_query(start, end, &WRITTEN, true)
    }

    pub(super) fn protect_written(start: usize, end: usize) -> bool {
        let query = Query {
            flags: WRITTEN.flags | PM_SCAN_WP_MATCHING,
            ..WRITTEN
        };
        uffd().is_some() && pagemap_query(start, end, &query, false).is_some()
    }
}

/// Elsewhere nothing is tracked.
#[cfg(not(target_os = "linux"))]
mod kernel {
    pub(super) fn register(_: usize, _: usize) -> bool {
        false
    }
    pub(super) fn unregister(_: usize, _: usize) {}
    pub(super) fn protect(_: usize, _: usize) -> bool {
        false
    }
    pub(super) fn written(_: usize, _: usize) -> Option<Vec<(usize, usize)>> {
        None
    }
    pub(super) fn protect_written(_: usize, _: usize) -> bool {
        false
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    /// An anonymous mapping of `pages` host pages, unmapped on drop.
    struct Mapping {
        base: usize,
        len: usize,
    }

    impl Mapping {
        fn new(pages: usize) -> Mapping {
            let len = pages * super::super::page_size();
            let base = super::super::scratch_mapping(len).expect("a mapping");
            Mapping { base, len }
        }

        fn write(&self, page: usize, value: u8) {
            let at = self.base + page * super::super::page_size() + 7;
            // SAFETY: inside the mapping.
            unsafe { std::ptr::write_volatile(at as *mut u8, value) };
        }

        fn read(&self, page: usize) -> u8 {
            let at = self.base + page * super::super::page_size() + 7;
            // SAFETY: inside the mapping.
            unsafe { std::ptr::read_volatile(at as *const u8) }
        }

        /// The written pages, as page numbers.
        fn written(&self, tracked: &Tracked) -> Vec<usize> {
            let page = super::super::page_size();
            let ranges = tracked.written().expect("the kernel says");
            ranges
                .iter()
                .flat_map(|&(a, b)| (a..b).step_by(page))
                .map(|a| (a - self.base) / page)
                .collect()
        }
    }

    impl Drop for Mapping {
        fn drop(&mut self) {
            // SAFETY: ours, and nothing refers to it any more.
            unsafe { libc::munmap(self.base as *mut libc::c_void, self.len) };
        }
    }

    #[test]
    fn minus_keeps_what_the_second_ranges_do_not_cover() {
        assert_eq!(minus(&[(0, 10)], &[]), [(0, 10)]);
        assert_eq!(minus(&[(0, 10)], &[(0, 10)]), []);
        assert_eq!(minus(&[(0, 10)], &[(2, 4), (6, 8)]), [(0, 2), (4, 6), (8, 10)]);
        assert_eq!(minus(&[(0, 4), (6, 10)], &[(3, 7)]), [(0, 3), (7, 10)]);
        assert_eq!(minus(&[(2, 4), (8, 9)], &[(0, 1), (4, 8), (9, 12)]), [(2, 4), (8, 9)]);
        assert_eq!(minus(&[(0, 2), (3, 5)], &[(1, 20)]), [(0, 1)]);
    }

    #[test]
    fn a_forked_child_asks_its_parents_descriptors_nothing() {
        if !works_here() {
            return;
        }
        let m = Mapping::new(4);
        let mut tracked = Tracked::new(m.base, m.base + m.len).expect("works here");
        // SAFETY: the child only reads atomics and the initialised
        // descriptors' cells, makes no allocation, and leaves by `_exit`.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            let ok = super::super::residency::forked() && tracked.written().is_none() && !tracked.protect();
            // SAFETY: ends the child without running the parent's handlers.
            unsafe { libc::_exit(if ok { 0 } else { 1 }) };
        }
        assert!(pid > 0, "fork failed");
        let mut status = 0;
        // SAFETY: waits for the child made above.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0, "{status:#x}");
        assert!(!super::super::residency::forked());
        assert!(tracked.written().is_some(), "the parent still tracks");
    }

    #[test]
    fn written_pages_are_reported_until_protected_again() {
        if !works_here() {
            return;
        }
        let m = Mapping::new(64);
        // Some pages resident before tracking starts, some not.
        for p in [1, 2, 40] {
            m.write(p, 9);
        }
        let page = super::super::page_size();
        let mut t = Tracked::new(m.base, m.base + m.len).expect("tracked");
        assert_eq!(m.written(&t), Vec::<usize>::new(), "nothing written yet");
        // A read is not a write, of a resident page or an empty one.
        assert_eq!(m.read(1), 9);
        assert_eq!(m.read(10), 0);
        m.write(2, 1);
        m.write(20, 1);
        m.write(21, 1);
        assert_eq!(m.written(&t), [2, 20, 21], "the written pages, no others");
        assert_eq!(m.written(&t), [2, 20, 21], "asking changes nothing");
        assert_eq!(m.read(2), 1, "a write lands as usual");
        assert!(t.protect_written(m.base, m.base + m.len));
        assert_eq!(m.written(&t), Vec::<usize>::new(), "protected again");
        m.write(21, 2);
        assert_eq!(m.written(&t), [21], "a second write is reported again");
        // Protecting part of the range leaves the rest reported.
        m.write(30, 1);
        assert!(t.protect_written(m.base + 25 * page, m.base + m.len));
        assert_eq!(m.written(&t), [21]);
        assert!(t.protect());
        assert_eq!(m.written(&t), Vec::<usize>::new());
    }

    #[test]
    fn a_dropped_page_is_reported_when_written_again() {
        if !works_here() {
            return;
        }
        let m = Mapping::new(8);
        for p in 0..8 {
            m.write(p, 5);
        }
        let page = super::super::page_size();
        let mut t = Tracked::new(m.base, m.base + m.len).expect("tracked");
        let drop_pages = || {
            // SAFETY: pages of the mapping; they read as zero afterwards.
            unsafe { libc::madvise((m.base + 2 * page) as *mut libc::c_void, 2 * page, libc::MADV_DONTNEED) };
        };
        drop_pages();
        assert_eq!(m.read(2), 0, "dropped");
        // Whether a dropped page that nobody wrote is reported depends on
        // the kernel (6.18 reports it): callers that drop pages forget
        // what they knew. Written, it is reported.
        m.write(3, 1);
        assert!(m.written(&t).contains(&3), "a write to a dropped page is reported");
        for protect in [Tracked::protect as fn(&mut Tracked) -> bool, |t| {
            t.protect_written(t.start, t.end)
        }] {
            assert!(protect(&mut t));
            assert_eq!(m.written(&t), Vec::<usize>::new(), "protected again");
            assert_eq!(m.read(2), 0);
            assert_eq!(m.written(&t), Vec::<usize>::new(), "a read is not a write");
            m.write(2, 1);
            assert_eq!(m.written(&t), [2], "a write after protecting is reported");
            drop_pages();
        }
    }

    #[test]
    fn an_untracked_range_is_refused_not_reported_clean() {
        if !works_here() {
            return;
        }
        let m = Mapping::new(4);
        let t = Tracked::new(m.base, m.base + m.len).expect("tracked");
        let page = super::super::page_size();
        // A copy of the handle over an unregistered part of the mapping.
        drop(t);
        let stale = Tracked {
            start: m.base,
            end: m.base + page,
            last: Vec::new(),
            rounds: 0,
        };
        m.write(0, 1);
        assert_eq!(stale.written(), None, "not tracked: no answer");
        std::mem::forget(stale);
    }
}
