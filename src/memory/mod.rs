//! Linear memories the runtime provides, so that a recycled instance's
//! memory can be as short as a fresh one's.
//!
//! wasmi can neither shrink a memory nor make one without zero-filling
//! every declared page. So at load every memory a module defines becomes an
//! import (`component::rewrite`), and we make it here: in address space of
//! its own ([`reserve`]: the whole possible extent, committed only as far
//! as the memory reaches), handed to wasmi as a static buffer. Its guest's
//! `memory.size` and `memory.grow` come to us too ([`Memories::size`],
//! [`Memories::grow`]), so its *visible* size can be less than wasmi's:
//! a reset ([`Memories::shrink`]) brings it back to the size it had after
//! instantiation, zeroes the pages past that and guards them
//! ([`guard`]). A grow within the real size only opens pages again.
//!
//! The host sees a memory at its visible size too ([`Memories::visible`]),
//! and a guest touching a guarded page is stopped with the trap a fresh
//! instance would have given ([`Memories::check`]).
//!
//! This module knows nothing of stores' other state: callers hand it the
//! [`Memories`] of a store and a wasmi context.

#[cfg(target_os = "linux")]
pub(crate) mod closing;
pub(crate) mod guard;
pub(crate) mod written;

use guard::Guard;

/// Bytes in a wasm page (the only page size made here).
pub(crate) const PAGE: u64 = 1 << 16;

/// The memories of one store made here, and the size and grow functions
/// of every memory its modules use.
#[derive(Default)]
pub(crate) struct Memories {
    owned: Vec<Owned>,
    /// Owned memories shorter to their guest than they are.
    shrunk: usize,
    /// Per memory (its data address): its size and grow functions, made
    /// once ([`Memories::ops`]).
    ops: Vec<(usize, [wasmi::Func; 2])>,
    /// The kernel refused to guard pages that must be: no guest may run
    /// here again.
    refused: bool,
}

/// A memory in a reservation of ours.
struct Owned {
    /// Its grown pages, queued to be guarded after a reset (dropped, and
    /// so taken off the queue, before the reservation is).
    #[cfg(target_os = "linux")]
    closing: Option<closing::Closing>,
    /// Dropped before the reservation (fields drop in order).
    guard: Option<Guard>,
    /// Which pages were written since it held an image (dropped before the
    /// reservation too: it is unregistered before reuse).
    writes: Option<Writes>,
    reservation: Reservation,
    /// What the guest sees, in pages (`memory.size`).
    pages: u64,
    /// The most pages its type allows.
    max: u64,
}

/// The pages of a memory's visible bytes written since they last held an
/// image ([`Memories::track_writes`]).
struct Writes {
    pages: written::Tracked,
    /// The image, as its caller names it.
    image: u64,
    /// Whether every page not reported written still holds the image:
    /// `false` once something may have changed one unseen.
    current: bool,
}

/// Address space reserved for one memory, unmapped on drop (after wasmi's
/// store, which never touches a static buffer when it drops).
pub(crate) struct Reservation {
    base: usize,
    len: usize,
}

impl Drop for Reservation {
    /// Keeps the reservation for the next memory of its length (a few are
    /// kept): its first pages stay resident, so the next memory's
    /// zero-filling by wasmi takes no page faults, as memory glibc keeps
    /// would not. Otherwise unmaps it.
    fn drop(&mut self) {
        if self.len == 0 {
            return;
        }
        #[cfg(target_os = "linux")]
        {
            let kept = self.len.min(KEEP_RESIDENT);
            // SAFETY: ours, and no memory uses it any more; dropped pages
            // read as zero.
            unsafe {
                libc::madvise(
                    (self.base + kept) as *mut libc::c_void,
                    self.len - kept,
                    libc::MADV_DONTNEED,
                )
            };
            let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
            if cache.len() < CACHE_SIZE {
                cache.push((self.base, self.len));
                return;
            }
            drop(cache);
            // SAFETY: the mapping is ours, and wasmi's store that used it is
            // dropped (or being dropped) without reading it.
            unsafe {
                libc::munmap(self.base as *mut libc::c_void, self.len);
            }
        }
    }
}

/// Reservations kept for reuse ([`Reservation`]'s drop), and how many.
#[cfg(target_os = "linux")]
static CACHE: std::sync::Mutex<Vec<(usize, usize)>> = std::sync::Mutex::new(Vec::new());
#[cfg(target_os = "linux")]
const CACHE_SIZE: usize = 16;
/// Bytes of a kept reservation left resident.
#[cfg(target_os = "linux")]
const KEEP_RESIDENT: usize = 32 << 20;

/// A kept reservation of `len` bytes, if there is one.
#[cfg(target_os = "linux")]
fn cached(len: usize) -> Option<Reservation> {
    let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    let i = cache.iter().position(|(_, l)| *l == len)?;
    let (base, len) = cache.swap_remove(i);
    Some(Reservation { base, len })
}

/// Address space for a memory of type `ty`, its first pages readable and
/// writable; `None` where this platform or the type does not allow it (the
/// caller then lets wasmi make the memory: it cannot be shortened later).
pub(crate) fn reserve(ty: &wasmi::MemoryType) -> Option<(Reservation, &'static mut [u8])> {
    #[cfg(target_os = "linux")]
    {
        // 4 GiB holds any 32-bit memory; 64-bit ones get as much.
        let most_pages = if ty.is_64() { 1 << 18 } else { 1 << 16 };
        let pages = ty.maximum().unwrap_or(most_pages).min(most_pages);
        let min = ty.minimum();
        if min > pages {
            return None;
        }
        let len = ((pages * PAGE) as usize).max(PAGE as usize);
        if let Some(reservation) = cached(len) {
            // What it held past the new memory's first pages is never seen:
            // wasmi zero-fills those, and every page it grows into.
            if !open(reservation.base, 0, min * PAGE) {
                return None;
            }
            // SAFETY: as below.
            let buffer = unsafe { std::slice::from_raw_parts_mut(reservation.base as *mut u8, len) };
            return Some((reservation, buffer));
        }
        // SAFETY: a new anonymous private mapping, inaccessible until opened
        // below; it is ours until the reservation drops.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_NONE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return None;
        }
        let reservation = Reservation {
            base: base as usize,
            len,
        };
        if !open(reservation.base, 0, min * PAGE) {
            return None;
        }
        // wasmi writes every initial page: fault them in with one call, not
        // one fault each (kernels before 5.14 refuse, and they fault as usual).
        // SAFETY: an open range of the new mapping.
        unsafe {
            libc::madvise(base, (min * PAGE) as usize, libc::MADV_POPULATE_WRITE);
        }
        // SAFETY: the reservation lives as long as the memory made on it
        // (both belong to one store), and only wasmi's memory uses it.
        let buffer = unsafe { std::slice::from_raw_parts_mut(reservation.base as *mut u8, len) };
        Some((reservation, buffer))
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = ty;
        None
    }
}

/// Makes `[from, to)` bytes of the reservation at `base` accessible.
fn open(base: usize, from: u64, to: u64) -> bool {
    #[cfg(target_os = "linux")]
    // SAFETY: a page-aligned range inside a reservation of ours.
    return on_range(base, from, to, |at, len| unsafe {
        libc::mprotect(at, len, libc::PROT_READ | libc::PROT_WRITE)
    });
    #[cfg(not(target_os = "linux"))]
    return to <= from;
}

/// Zeroes `[from, to)` bytes of the reservation at `base` (dropping the
/// pages: they hold nothing until touched).
fn zero(base: usize, from: u64, to: u64) -> bool {
    #[cfg(target_os = "linux")]
    // SAFETY: a page-aligned range inside a reservation of ours, not in use
    // by a running guest.
    return on_range(base, from, to, |at, len| unsafe {
        libc::madvise(at, len, libc::MADV_DONTNEED)
    });
    #[cfg(not(target_os = "linux"))]
    return to <= from;
}

/// Calls `syscall(address, length)` for `[from, to)` bytes at `base`
/// unless the range is empty; whether it succeeded.
#[cfg(target_os = "linux")]
fn on_range(base: usize, from: u64, to: u64, syscall: impl FnOnce(*mut libc::c_void, usize) -> i32) -> bool {
    to <= from || syscall((base + from as usize) as *mut libc::c_void, (to - from) as usize) == 0
}

/// What [`Memories::grow`] did.
pub(crate) enum Grow {
    /// The guest sees -1.
    Failed,
    /// Grown from this many pages.
    Grew(u64),
    /// wasmi must grow the memory by `by` pages; the old size is `old`.
    Real { old: u64, by: u64 },
}

/// Resident bytes a clear may zero in place; past that it drops pages.
pub(crate) const IN_PLACE: usize = 256 << 10;

/// Zeroes `data`, a memory's bytes no guest is using, at a cost that
/// follows what the guest wrote. On Linux the whole pages in it that are
/// resident ([`Resident`]) and not all zero are cleared in place when they
/// are few: they stay resident, and the guest touching them again takes no
/// page fault. When there are many, all of the pages are dropped with
/// `MADV_DONTNEED` instead (they read as zero again and hold no memory
/// until touched). Elsewhere, `data` is filled with zeros.
pub(crate) fn clear(data: &mut [u8]) {
    let resident = Resident::of(data);
    let in_place = resident.bytes() <= IN_PLACE;
    clear_range(data, 0..data.len(), &resident, in_place);
}

/// Zeroes `data` and gives all its whole pages back to the kernel (an idle
/// instance then holds only what its guest wrote).
pub(crate) fn release(data: &mut [u8]) {
    let len = data.len();
    clear_range(data, 0..len, &Resident::unknown(), false);
}

/// Which of a memory's host pages may hold something (are resident or
/// swapped out), asked of the kernel once for the whole memory: a page that
/// holds nothing reads as zero, and clearing it is nothing to do.
pub(crate) struct Resident {
    page: usize,
    /// Page-aligned address ranges, in order; `None` when unknown (every
    /// page may hold something).
    ranges: Option<Vec<(usize, usize)>>,
}

impl Resident {
    /// Nothing known: every page may hold something.
    pub(crate) fn unknown() -> Resident {
        Resident {
            page: page_size(),
            ranges: None,
        }
    }

    /// The pages of `data` that may hold something.
    pub(crate) fn of(data: &[u8]) -> Resident {
        let page = page_size();
        let start = data.as_ptr() as usize;
        let first = start.next_multiple_of(page);
        let last = (start + data.len()) / page * page;
        if last <= first {
            return Resident::unknown();
        }
        Resident {
            page,
            ranges: residency::scan(first, last, page),
        }
    }

    /// Resident bytes, as far as known (all of them when unknown).
    pub(crate) fn bytes(&self) -> usize {
        match &self.ranges {
            None => usize::MAX,
            Some(ranges) => ranges.iter().map(|(a, b)| b - a).sum(),
        }
    }

    /// The whole pages in `[first, last)` (page-aligned addresses) that
    /// may hold something, as addresses: every one when nothing is known.
    fn holding(&self, first: usize, last: usize) -> impl Iterator<Item = usize> + '_ {
        let page = self.page;
        let (all, ranges) = match &self.ranges {
            None => (Some((first..last).step_by(page)), &[][..]),
            Some(r) => (None, &r[r.partition_point(|&(_, end)| end <= first)..]),
        };
        let known = ranges
            .iter()
            .take_while(move |&&(start, _)| start < last)
            .flat_map(move |&(start, end)| (start.max(first)..end.min(last)).step_by(page));
        all.into_iter().flatten().chain(known)
    }
}

/// Asking the kernel which pages hold something.
#[cfg(target_os = "linux")]
mod residency {
    /// The ranges of pages in `[first, last)` (page-aligned) that are
    /// resident or swapped (and, as far as the kernel says, not the shared
    /// zero page), in order; `None` if the kernel will not say.
    /// `PAGEMAP_SCAN` (Linux 6.7) steps over absent page tables whole;
    /// `mincore` answers a byte per page.
    pub(super) fn scan(first: usize, last: usize, page: usize) -> Option<Vec<(usize, usize)>> {
        pagemap_scan(first, last).or_else(|| mincore(first, last, page))
    }

    pub(super) fn mincore(first: usize, last: usize, page: usize) -> Option<Vec<(usize, usize)>> {
        let mut flags = vec![0u8; (last - first) / page];
        // SAFETY: [first, last) is page-aligned memory of the caller's;
        // `flags` has a byte per page.
        if unsafe { libc::mincore(first as *mut libc::c_void, last - first, flags.as_mut_ptr()) } != 0 {
            return None;
        }
        let mut ranges: Vec<(usize, usize)> = Vec::new();
        for (i, _) in flags.iter().enumerate().filter(|(_, f)| *f & 1 != 0) {
            let at = first + i * page;
            match ranges.last_mut() {
                Some((_, end)) if *end == at => *end += page,
                _ => ranges.push((at, at + page)),
            }
        }
        Some(ranges)
    }

    /// `struct pm_scan_arg` of `linux/fs.h`.
    #[repr(C)]
    struct ScanArg {
        size: u64,
        flags: u64,
        start: u64,
        end: u64,
        walk_end: u64,
        vec: u64,
        vec_len: u64,
        max_pages: u64,
        category_inverted: u64,
        category_mask: u64,
        category_anyof_mask: u64,
        return_mask: u64,
    }

    /// `struct page_region`.
    #[repr(C)]
    #[derive(Clone, Copy, Default)]
    struct Region {
        start: u64,
        end: u64,
        categories: u64,
    }

    const PAGEMAP_SCAN: libc::c_ulong = 0xc060_6610; // _IOWR('f', 16, struct pm_scan_arg)
    /// Page categories (`PAGE_IS_*`).
    pub(in crate::memory) const PAGE_IS_WRITTEN: u64 = 1 << 1;
    const PAGE_IS_PRESENT: u64 = 1 << 3;
    const PAGE_IS_SWAPPED: u64 = 1 << 4;
    const PAGE_IS_PFNZERO: u64 = 1 << 5;

    /// What a `PAGEMAP_SCAN` asks for: the pages whose categories, with
    /// `inverted` flipped, include all of `all` and (unless 0) one of
    /// `any`; `flags` are the scan's (`PM_SCAN_*`).
    pub(in crate::memory) struct Query {
        pub flags: u64,
        pub inverted: u64,
        pub all: u64,
        pub any: u64,
    }

    /// `/proc/self/pagemap`, opened once; `None` where it cannot be, or
    /// in a forked child (it would read its parent's page tables).
    fn pagemap() -> Option<libc::c_int> {
        static FD: std::sync::OnceLock<Option<libc::c_int>> = std::sync::OnceLock::new();
        let fd = *FD.get_or_init(|| {
            watch_forks();
            // SAFETY: a constant, NUL-terminated path; the descriptor is
            // kept for the life of the process.
            let fd = unsafe { libc::open(c"/proc/self/pagemap".as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
            (fd >= 0).then_some(fd)
        });
        fd.filter(|_| !forked())
    }

    /// Set in a child of `fork`: descriptors opened before it (the pagemap
    /// here, the userfaultfd of `super::written`) still act on the
    /// parent's address space, so the child must not use them.
    static FORKED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

    /// Whether this process is a fork of the one that opened them.
    pub(crate) fn forked() -> bool {
        FORKED.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Makes [`forked`] true in every child forked from now on; call it
    /// before opening a descriptor that [`forked`] guards.
    pub(crate) fn watch_forks() {
        extern "C" fn in_child() {
            FORKED.store(true, std::sync::atomic::Ordering::Relaxed);
        }
        static ONCE: std::sync::Once = std::sync::Once::new();
        // SAFETY: registers a handler that only stores to an atomic, which
        // is async-signal-safe as a child of fork requires.
        ONCE.call_once(|| unsafe {
            libc::pthread_atfork(None, None, Some(in_child));
        });
    }

    fn pagemap_scan(first: usize, last: usize) -> Option<Vec<(usize, usize)>> {
        let query = Query {
            flags: 0,
            // Pages mapped to the shared zero page read as zero.
            inverted: PAGE_IS_PFNZERO,
            all: PAGE_IS_PFNZERO,
            any: PAGE_IS_PRESENT | PAGE_IS_SWAPPED,
        };
        pagemap_query(first, last, &query, true)
    }

    /// The pages in `[first, last)` (page-aligned) that `query` matches,
    /// as merged address ranges in order; `None` if the kernel refuses.
    /// Without `collect` the scan is made for its flags' effect alone
    /// (`PM_SCAN_WP_MATCHING`) and no range is returned.
    pub(in crate::memory) fn pagemap_query(
        first: usize,
        last: usize,
        query: &Query,
        collect: bool,
    ) -> Option<Vec<(usize, usize)>> {
        let fd = pagemap()?;
        let mut ranges: Vec<(usize, usize)> = Vec::new();
        let mut regions = [Region::default(); 32];
        let (vec, vec_len) = match collect {
            true => (regions.as_mut_ptr() as u64, regions.len() as u64),
            false => (0, 0),
        };
        let mut at = first as u64;
        while at < last as u64 {
            let mut arg = ScanArg {
                size: std::mem::size_of::<ScanArg>() as u64,
                flags: query.flags,
                start: at,
                end: last as u64,
                walk_end: 0,
                vec,
                vec_len,
                max_pages: 0,
                category_inverted: query.inverted,
                category_mask: query.all,
                category_anyof_mask: query.any,
                return_mask: query.all | query.any,
            };
            // SAFETY: `arg` and `regions` are valid for the kernel to read
            // and write; the scan reads page tables, and changes them only
            // as its flags ask (write-protecting pages of the caller's).
            let found = unsafe { libc::ioctl(fd, PAGEMAP_SCAN, &mut arg as *mut ScanArg) };
            if found < 0 {
                return None;
            }
            for r in &regions[..found as usize] {
                let (start, end) = (r.start as usize, r.end as usize);
                match ranges.last_mut() {
                    Some((_, e)) if *e == start => *e = end,
                    _ => ranges.push((start, end)),
                }
            }
            if arg.walk_end <= at {
                return None;
            }
            at = arg.walk_end;
        }
        Some(ranges)
    }
}

/// Elsewhere the kernel is not asked.
#[cfg(not(target_os = "linux"))]
mod residency {
    pub(super) fn scan(_: usize, _: usize, _: usize) -> Option<Vec<(usize, usize)>> {
        None
    }
}

/// Zeroes `data[range]`, knowing `resident` (of all of `data`): with
/// `in_place`, only its resident pages that are not all zero are written;
/// otherwise its whole pages are dropped (`MADV_DONTNEED`), or filled
/// where that fails.
pub(crate) fn clear_range(data: &mut [u8], range: std::ops::Range<usize>, resident: &Resident, in_place: bool) {
    let data = &mut data[range];
    let page = resident.page;
    let start = data.as_ptr() as usize;
    let first = start.next_multiple_of(page);
    let last = (start + data.len()) / page * page;
    if !cfg!(target_os = "linux") || last <= first {
        data.fill(0);
        return;
    }
    let (head, rest) = data.split_at_mut(first - start);
    let (pages, tail) = rest.split_at_mut(last - first);
    head.fill(0);
    tail.fill(0);
    if in_place {
        for at in resident.holding(first, last) {
            let chunk = &mut pages[at - first..at - first + page];
            if !all_zero(chunk) {
                chunk.fill(0);
            }
        }
        return;
    }
    #[cfg(target_os = "linux")]
    // SAFETY: [first, last) lies inside `data`, which we borrow mutably;
    // dropping its pages only makes them read as zero (anonymous private
    // memory).
    if unsafe { libc::madvise(first as *mut libc::c_void, last - first, libc::MADV_DONTNEED) } == 0 {
        return;
    }
    pages.fill(0);
}

/// Whether `bytes` are all zero (a word at a time).
pub(crate) fn all_zero(bytes: &[u8]) -> bool {
    // SAFETY: any bytes are valid u64s.
    let (head, words, tail) = unsafe { bytes.align_to::<u64>() };
    head.iter().all(|b| *b == 0) && words.iter().fold(0, |acc, w| acc | w) == 0 && tail.iter().all(|b| *b == 0)
}

/// A new private anonymous mapping of `len` bytes, readable and writable,
/// to try what the kernel can do on (the caller unmaps it); `None` if
/// refused.
#[cfg(target_os = "linux")]
pub(crate) fn scratch_mapping(len: usize) -> Option<usize> {
    // SAFETY: a new mapping, over no memory anyone uses.
    let at = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    (at != libc::MAP_FAILED).then_some(at as usize)
}

/// The host's page size (asked once: resets ask it often).
pub(crate) fn page_size() -> usize {
    #[cfg(target_os = "linux")]
    {
        use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
        static PAGE_SIZE: AtomicUsize = AtomicUsize::new(0);
        let known = PAGE_SIZE.load(Relaxed);
        if known != 0 {
            return known;
        }
        // SAFETY: sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(1) as usize;
        PAGE_SIZE.store(page, Relaxed);
        return page;
    }
    #[allow(unreachable_code)]
    4096
}

/// A guest touched memory past its visible size: the out-of-bounds trap.
#[derive(Debug)]
pub(crate) struct OutOfBounds;

impl From<OutOfBounds> for wasmi::Error {
    fn from(_: OutOfBounds) -> Self {
        wasmi::Error::from(wasmi::TrapCode::MemoryOutOfBounds)
    }
}

impl Memories {
    /// Adopts the memory wasmi made on `reservation` with type `ty`.
    pub(crate) fn adopt(&mut self, reservation: Reservation, ty: &wasmi::MemoryType) {
        let index_max = if ty.is_64() { 1 << 48 } else { 1 << 16 };
        let reserved = reservation.len as u64 / PAGE;
        self.owned.push(Owned {
            reservation,
            pages: ty.minimum(),
            max: ty.maximum().unwrap_or(index_max).min(reserved),
            guard: None,
            writes: None,
            #[cfg(target_os = "linux")]
            closing: None,
        });
    }

    fn find(&self, memory_data: *const u8) -> Option<usize> {
        self.owned
            .iter()
            .position(|o| o.reservation.base == memory_data as usize)
    }

    /// How many of `data`'s bytes (a memory's whole contents, as wasmi has
    /// them) the guest and the host may see.
    pub(crate) fn visible(&self, data: &[u8]) -> usize {
        if self.shrunk == 0 {
            return data.len();
        }
        match self.find(data.as_ptr()) {
            Some(i) => data.len().min((self.owned[i].pages * PAGE) as usize),
            None => data.len(),
        }
    }

    /// Whether a guest touched a guarded page: its call must end with the
    /// out-of-bounds trap before anything else happens. Reporting it puts
    /// the memory back as a fresh instance's would be after that trap: the
    /// pages past its size zeroed and guarded again.
    pub(crate) fn check(&self) -> Result<(), OutOfBounds> {
        let mut hit = self.refused;
        for guard in self.owned.iter().filter_map(|o| o.guard.as_ref()).filter(|g| g.hit()) {
            hit = true;
            if !guard.rearm(|start, end| zero(start, 0, (end - start) as u64)) {
                // Cannot happen short of the kernel refusing: the memory
                // stays hit, and every call ends with this trap.
                continue;
            }
        }
        match hit {
            true => Err(OutOfBounds),
            false => Ok(()),
        }
    }

    /// The owned memory whose data is at `data`, if any.
    pub(crate) fn owned(&self, data: *const u8) -> Option<usize> {
        self.find(data)
    }

    /// The size and grow functions made for the memory at `data`.
    pub(crate) fn ops(&self, data: *const u8) -> Option<[wasmi::Func; 2]> {
        self.ops.iter().find(|(k, _)| *k == data as usize).map(|(_, f)| *f)
    }

    /// Keeps the size and grow functions made for the memory at `data`.
    pub(crate) fn keep_ops(&mut self, data: *const u8, funcs: [wasmi::Func; 2]) {
        self.ops.push((data as usize, funcs));
    }

    /// `memory.size` of owned memory `i`.
    pub(crate) fn size(&self, i: usize) -> u64 {
        self.owned[i].pages
    }

    /// `memory.grow` of owned memory `i` (wasmi's real size `real` pages)
    /// by `delta` pages. Pages within the real size are only opened; beyond
    /// it, the caller has wasmi grow the memory ([`Grow::Real`]) and then
    /// says so ([`Memories::grown`]).
    pub(crate) fn grow(&mut self, i: usize, delta: u64, real: u64) -> Result<Grow, OutOfBounds> {
        self.ready()?;
        self.check()?;
        let o = &mut self.owned[i];
        let old = o.pages;
        let Some(new) = old.checked_add(delta).filter(|&n| n <= o.max) else {
            return Ok(Grow::Failed);
        };
        let base = o.reservation.base;
        if new > real {
            return Ok(match open(base, real * PAGE, new * PAGE) {
                true => Grow::Real { old, by: new - real },
                false => Grow::Failed,
            });
        }
        if old < real {
            let guard = o.guard.as_mut().expect("a shrunk memory is guarded");
            // All guarded: `ready` closed what a reset queued, and `check`
            // found no hit.
            if !guard.narrow(base + (new * PAGE) as usize, base + (real * PAGE) as usize) {
                // What is guarded no longer matches the table: no guest
                // runs here again.
                self.refused = true;
                return Err(OutOfBounds);
            }
            if new == real {
                self.shrunk -= 1;
            }
        }
        self.owned[i].pages = new;
        Ok(Grow::Grew(old))
    }

    /// wasmi grew owned memory `i` from `was` to `now` pages
    /// ([`Grow::Real`]): all of it is visible.
    pub(crate) fn grown(&mut self, i: usize, was: u64, now: u64) {
        let o = &mut self.owned[i];
        if o.pages < was {
            if let Some(guard) = o.guard.as_mut() {
                guard.set(0, 0);
            }
            self.shrunk -= 1;
        }
        o.pages = now;
    }

    /// The owned memory whose visible bytes are all of `data`, and their
    /// page-aligned address range.
    fn whole(&self, data: &[u8]) -> Option<(usize, usize, usize)> {
        let i = self.find(data.as_ptr())?;
        let (start, page) = (data.as_ptr() as usize, page_size());
        let visible = (self.owned[i].pages * PAGE) as usize;
        (data.len() == visible && data.len().is_multiple_of(page)).then_some((i, start, start + data.len()))
    }

    /// Notes from now on which pages of `data` are written: `data` is an
    /// owned memory's visible bytes, all holding image `image` (a name the
    /// caller gives it) now. Whether they are noted; if not, nothing is
    /// known of them ([`Memories::written`] says `None`).
    pub(crate) fn track_writes(&mut self, data: &[u8], image: u64) -> bool {
        let Some((i, start, end)) = self.whole(data) else {
            return false;
        };
        let o = &mut self.owned[i];
        if let Some(w) = o.writes.as_mut().filter(|w| w.pages.covers(start, end)) {
            w.image = image;
            w.current = w.pages.protect();
            return w.current;
        }
        // The old range is unregistered before the new one is registered.
        o.writes = None;
        o.writes = written::Tracked::new(start, end).map(|pages| Writes {
            pages,
            image,
            current: true,
        });
        o.writes.is_some()
    }

    /// The pages of `data` (an owned memory's visible bytes) written since
    /// they last held image `image`, as ranges of offsets in `data`, in
    /// order: every other page still holds the image. `None` if that is
    /// not known.
    pub(crate) fn written(&mut self, data: &[u8], image: u64) -> Option<Vec<std::ops::Range<usize>>> {
        let (i, start, end) = self.whole(data)?;
        let w = self.owned[i].writes.as_mut()?;
        if !w.current || w.image != image || !w.pages.covers(start, end) {
            return None;
        }
        let Some(ranges) = w.pages.written() else {
            w.current = false;
            return None;
        };
        Some(ranges.into_iter().map(|(a, b)| a - start..b - start).collect())
    }

    /// `data` holds image `image` again, having been changed only in
    /// `written` (offsets, in order: what [`Memories::written`] said): from
    /// now on only new writes are reported (and the pages a guest writes at
    /// every reset, [`written::Tracked::protect_again`]).
    pub(crate) fn restored(&mut self, data: &[u8], image: u64, written: &[std::ops::Range<usize>]) {
        let Some((i, start, _)) = self.whole(data) else {
            return;
        };
        let Some(w) = self.owned[i].writes.as_mut().filter(|w| w.image == image) else {
            return;
        };
        let written = written.iter().map(|r| (start + r.start, start + r.end)).collect();
        // Forgetting is for a kernel that refuses, which then refuses
        // every scan.
        if !w.pages.protect_again(written) {
            w.current = false;
        }
    }

    /// Something other than a write may have changed pages of `data` (an
    /// owned memory's bytes): dropped them, say. What was known of its
    /// writes no longer holds.
    pub(crate) fn forget_writes(&mut self, data: &[u8]) {
        if let Some(w) = self.find(data.as_ptr()).and_then(|i| self.owned[i].writes.as_mut()) {
            w.current = false;
        }
    }

    /// Readies the memories for a guest to run: the pages a reset queued
    /// to be guarded are guarded (`closing`). Call it before any guest code
    /// runs in the store. An error if the kernel refused: the store must
    /// not run a guest again.
    pub(crate) fn ready(&mut self) -> Result<(), OutOfBounds> {
        #[cfg(target_os = "linux")]
        for o in &mut self.owned {
            if o.closing.take().is_some_and(|c| !c.ready()) {
                self.refused = true;
            }
        }
        match self.refused {
            true => Err(OutOfBounds),
            false => Ok(()),
        }
    }

    /// Brings owned memory `memory` (wasmi's real size `real` pages) back to
    /// `pages` visible pages: the pages past them are zeroed and guarded
    /// (those the guest opened only once [`Memories::ready`] is called).
    /// `false` if it cannot be (not ours, touched where it must not be,
    /// smaller than `pages`, or no guard to be had).
    pub(crate) fn shrink(&mut self, memory_data: *const u8, real: u64, pages: u64) -> bool {
        let Some(i) = self.find(memory_data) else {
            return false;
        };
        let o = &mut self.owned[i];
        if real < pages || o.guard.as_ref().is_some_and(Guard::hit) {
            return false;
        }
        let was_shrunk = o.pages < real;
        if real > pages {
            if o.guard.is_none() {
                o.guard = Guard::new();
            }
            let base = o.reservation.base;
            let Some(guard) = o.guard.as_mut() else {
                return false;
            };
            // Clear what was open (the guest's), then close it all; the
            // pages guarded already are untouched, hence zero.
            let (from, to) = (pages * PAGE, real * PAGE);
            let open_to = o.pages.clamp(pages, real) * PAGE;
            let (start, open_end, end) = (base + from as usize, base + open_to as usize, base + to as usize);
            if !guard::drops_contents() {
                // SAFETY: [from, open_to) is open memory of ours, no guest runs.
                clear(unsafe { std::slice::from_raw_parts_mut(start as *mut u8, open_end - start) });
            }
            #[cfg(target_os = "linux")]
            if guard::drops_contents() && open_end > start {
                // What the guest opened is closed with other memories'
                // (`closing`); the rest stays guarded.
                if o.closing.as_ref().is_some_and(|c| !c.ready()) || !guard.note(start, end) {
                    return false;
                }
                o.closing = Some(closing::later(start, open_end));
            } else if !guard.set(start, end) {
                return false;
            }
            #[cfg(not(target_os = "linux"))]
            if !guard.set(start, end) {
                return false;
            }
        } else if let Some(guard) = o.guard.as_mut() {
            if !guard.set(0, 0) {
                return false;
            }
        }
        o.pages = pages;
        match (was_shrunk, pages < real) {
            (false, true) => self.shrunk += 1,
            (true, false) => self.shrunk -= 1,
            _ => {}
        }
        true
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    /// A memory of `pages` made here, grown to `real` pages by wasmi.
    fn memory(store: &mut wasmi::Store<()>, memories: &mut Memories, pages: u32, real: u64) -> wasmi::Memory {
        let ty = wasmi::MemoryType::new(pages, None);
        let (reservation, buffer) = reserve(&ty).expect("a reservation");
        let memory = wasmi::Memory::new_static(&mut *store, ty, buffer).unwrap();
        memories.adopt(reservation, &ty);
        // As the grow function does: we open the pages, wasmi grows.
        let i = memories.owned.len() - 1;
        let Ok(Grow::Real { old, by }) = memories.grow(i, real - pages as u64, pages as u64) else {
            panic!("grows past the real size");
        };
        assert_eq!(old, pages as u64);
        memory.grow(&mut *store, by).unwrap();
        memories.grown(i, pages as u64, real);
        memory
    }

    #[test]
    fn residency_finds_the_written_pages_and_a_clear_zeroes_only_them() {
        let ty = wasmi::MemoryType::new(4, None);
        let (_reservation, buffer) = reserve(&ty).expect("a reservation");
        let data = &mut buffer[..4 * PAGE as usize];
        release(data);
        let page = page_size();
        for at in [3 * page + 5, 40 * page] {
            data[at] = 1;
        }
        let resident = Resident::of(data);
        let base = data.as_ptr() as usize;
        let pages: Vec<usize> = resident
            .holding(base, base + data.len())
            .map(|a| (a - base) / page)
            .collect();
        assert_eq!(pages, [3, 40], "the written pages, no others");
        assert_eq!(resident.bytes(), 2 * page);
        // Both ways of asking agree.
        let (first, last) = (base, base + data.len());
        assert_eq!(
            residency::scan(first, last, page),
            residency::mincore(first, last, page)
        );
        let len = data.len();
        clear_range(data, 0..len, &resident, true);
        assert_eq!(Resident::of(data).bytes(), 2 * page, "cleared in place: still resident");
        assert!(all_zero(data));
        release(data);
        assert_eq!(Resident::of(data).bytes(), 0, "released");
    }

    /// A store with a memory of a page grown to two, for tests of write
    /// tracking; `None` where this kernel tracks no writes.
    fn trackable() -> Option<(wasmi::Store<()>, Memories, wasmi::Memory)> {
        if !written::works_here() {
            return None;
        }
        let mut store = wasmi::Store::new(&wasmi::Engine::default(), ());
        let mut memories = Memories::default();
        let m = memory(&mut store, &mut memories, 1, 2);
        Some((store, memories, m))
    }

    #[test]
    fn a_tracked_memory_reports_its_written_pages_until_told_they_hold_the_image_again() {
        let Some((mut store, mut memories, m)) = trackable() else {
            return;
        };
        let page = page_size();
        let data = m.data_mut(&mut store);
        data[5 * page] = 3;
        assert!(memories.track_writes(data, 1));
        assert_eq!(memories.written(data, 1), Some(vec![]), "nothing written yet");
        assert_eq!(memories.written(data, 2), None, "another image: not known");
        data[5 * page + 1] = 4;
        data[9 * page] = 4;
        data[10 * page] = 4;
        let written = memories.written(data, 1).unwrap();
        assert_eq!(written, [5 * page..6 * page, 9 * page..11 * page]);
        // The caller puts the image back, and says so.
        for r in &written {
            data[r.clone()].fill(0);
        }
        data[5 * page] = 3;
        memories.restored(data, 1, &written);
        assert_eq!(memories.written(data, 1), Some(vec![]), "protected again");
        data[10 * page] = 1;
        let again = memories.written(data, 1).unwrap();
        assert_eq!((again.len(), &again[0]), (1, &(10 * page..11 * page)), "written again");
        // A part of the memory is not all of it; a drop is not seen.
        assert_eq!(memories.written(&data[..page], 1), None);
        memories.forget_writes(data);
        assert_eq!(memories.written(data, 1), None, "forgotten");
        assert!(memories.track_writes(data, 2), "the same range, tracked anew");
        assert_eq!(memories.written(data, 2), Some(vec![]));
    }

    #[test]
    fn pages_written_at_two_resets_running_stay_reported_until_relearned() {
        let Some((mut store, mut memories, m)) = trackable() else {
            return;
        };
        let page = page_size();
        let data = m.data_mut(&mut store);
        assert!(memories.track_writes(data, 1));
        // Runs of pages, as offset ranges.
        let runs = |r: &[(usize, usize)]| r.iter().map(|&(a, b)| a * page..b * page).collect::<Vec<_>>();
        let reset = |memories: &mut Memories, data: &mut [u8]| {
            let written = memories.written(data, 1).unwrap();
            for r in &written {
                data[r.clone()].fill(0);
            }
            memories.restored(data, 1, &written);
            written
        };
        // Page 2 is written at every reset, page 4 once.
        data[2 * page] = 1;
        data[4 * page] = 1;
        assert_eq!(reset(&mut memories, data), runs(&[(2, 3), (4, 5)]));
        data[2 * page] = 2;
        assert_eq!(
            reset(&mut memories, data),
            runs(&[(2, 3)]),
            "page 4 was protected again"
        );
        // Written twice running: left unprotected, so reported (and
        // written back) although nothing wrote it since.
        assert_eq!(reset(&mut memories, data), runs(&[(2, 3)]));
        data[2 * page + 7] = 3;
        assert_eq!(reset(&mut memories, data), runs(&[(2, 3)]));
        assert!(data.iter().all(|&b| b == 0), "every write was undone");
        // Within `RELEARN` resets it is protected again, and then reported
        // only when written.
        for _ in 0..written::RELEARN {
            reset(&mut memories, data);
        }
        assert_eq!(reset(&mut memories, data), []);
        data[2 * page] = 4;
        assert_eq!(reset(&mut memories, data), runs(&[(2, 3)]));
    }

    #[test]
    fn a_touch_past_the_size_is_reported_once_and_the_pages_come_back_zeroed_and_guarded() {
        let mut store = wasmi::Store::new(&wasmi::Engine::default(), ());
        let mut memories = Memories::default();
        let m = memory(&mut store, &mut memories, 1, 3);
        let data = m.data_ptr(&store);
        assert!(memories.shrink(data, 3, 1));
        assert_eq!(memories.visible(m.data(&store)), PAGE as usize);
        // As before any guest runs again: the opened pages are closed.
        assert!(memories.ready().is_ok());
        assert!(memories.check().is_ok());
        let past = unsafe { data.add(PAGE as usize + 8) };
        // SAFETY: inside the reservation (guarded: the handler opens it).
        unsafe { std::ptr::write_volatile(past, 7) };
        assert!(memories.check().is_err(), "reported");
        assert!(memories.check().is_ok(), "once");
        // Guarded again, and emptied: the next touch is reported too, and
        // reads the zero a newly grown page holds.
        assert_eq!(unsafe { std::ptr::read_volatile(past) }, 0);
        assert!(memories.check().is_err());
        // A grow within the real size opens the page without a report.
        assert!(memories.check().is_ok());
        assert!(matches!(memories.grow(0, 1, 3), Ok(Grow::Grew(1))));
        unsafe { std::ptr::write_volatile(past, 9) };
        assert!(memories.check().is_ok());
        assert_eq!(memories.size(0), 2);
    }
}
