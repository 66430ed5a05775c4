//! Resetting a store to the state it had right after instantiation, so
//! that a recycled instance is indistinguishable from a fresh one at a
//! fraction of the cost (wasmi zero-fills every declared page when it makes
//! a memory; a reset touches only the pages that hold data).
//!
//! What a store's guests can change, and how each comes back:
//! - linear memory: every defined memory (exported under a hidden name at
//!   load, `component::rewrite`) is cleared and its post-instantiation
//!   image written back; on Linux the clearing is `madvise(MADV_DONTNEED)`,
//!   which also gives untouched pages back to the kernel, so an idle
//!   instance holds only its image;
//! - mutable globals (also exported under hidden names): set back;
//! - tables and data/element segments: only instructions change them, and a
//!   module using those is refused a snapshot at all;
//! - component instances' handle tables: must be empty after instantiation;
//!   a reset empties them again (what the handles stood for is in the state
//!   being reset: the guests' memories, and the embedder's data).
//!
//! A memory that grew comes back to its size after instantiation if we made
//! it (`crate::memory`: the pages past that are zeroed and guarded); one
//! wasmi made (a host's, or off Linux) cannot shrink, and [`Store::reset`]
//! then says no: the instance must be dropped. The embedder's data `T`
//! (host resources) is the embedder's to renew.

use super::store::Store;
use crate::canon::state::{visible_mut, StoreData};
use crate::memory::PAGE;
use anyhow::{bail, Result};
use wasmi::{AsContext, AsContextMut, Extern};

/// A store's state right after instantiation ([`Store::snapshot`]).
/// A clone shares its memory images, for [`Store::snapshot_like`] in other
/// stores to compare with; only the store it was taken of can be reset to
/// it.
#[derive(Clone)]
pub struct Snapshot {
    /// The store it was taken of (`Runtime::store`).
    store: u64,
    memories: Vec<Image>,
    globals: Vec<(wasmi::Global, wasmi::Val)>,
    instances: usize,
}

/// A memory's size, where its bytes were, and its chunks (the host's
/// pages, as they fall on the memory) that are not all zero.
#[derive(Clone)]
struct Image {
    memory: wasmi::Memory,
    size: usize,
    base: usize,
    /// Shared by the snapshots of instances whose memories held the same
    /// ([`Store::snapshot_like`]).
    chunks: Chunks,
    /// The chunks' bytes.
    bytes: usize,
    /// This image's name, unique in the process (`Memories::track_writes`).
    id: u64,
    /// Whether the memory's writes are worth tracking: comparing a small
    /// image costs less than asking the kernel what was written.
    track: bool,
}

/// An image's chunks that are not all zero, at their offsets, in order;
/// shared by the images that hold the same.
type Chunks = std::sync::Arc<Vec<(usize, Box<[u8]>)>>;

/// The next [`Image::id`].
static IMAGES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

impl Snapshot {
    /// Bytes of memory image kept (what a reset writes back).
    pub fn image_bytes(&self) -> usize {
        self.memories.iter().map(|m| m.bytes).sum()
    }
}

/// The chunks of `data` as offsets: its bytes split at the host's page
/// boundaries, so that a run of chunks can be dropped page by page.
fn chunks(data: &[u8]) -> impl Iterator<Item = (usize, usize)> + 'static {
    let page = crate::memory::page_size();
    let len = data.len();
    let first = page - data.as_ptr() as usize % page;
    let mut at = 0;
    std::iter::from_fn(move || {
        if at >= len {
            return None;
        }
        let end = if at == 0 { first.min(len) } else { (at + page).min(len) };
        let chunk = (at, end);
        at = end;
        Some(chunk)
    })
}

impl<T> Store<T> {
    /// Records the state of everything instantiated in this store, to come
    /// back to with [`Store::reset`]; the memories' zero pages are given
    /// back to the kernel meanwhile. Call it between calls.
    ///
    /// # Errors
    /// If the state cannot be restored later: a core module changes tables
    /// or drops segments, or a component instance holds handles.
    pub fn snapshot(&mut self) -> Result<Snapshot> {
        self.snapshot_like(None)
    }

    /// [`Store::snapshot`], keeping no second copy of a memory image that
    /// `like` (a snapshot of another instance of the same component)
    /// already holds: a memory holding exactly the bytes of `like`'s
    /// memory of the same index shares its image.
    pub fn snapshot_like(&mut self, like: Option<&Snapshot>) -> Result<Snapshot> {
        let rt = &self.inner.data().rt;
        if rt.unresettable {
            bail!("a core module changes tables or drops segments: its state cannot be reset");
        }
        if rt.instances.iter().any(|i| !i.handles.is_empty()) || !rt.tasks.is_empty() {
            bail!("a component instance holds handles after instantiation: its state cannot be reset");
        }
        let state = rt.core_state.clone();
        let instances = rt.instances.len();
        let mut snapshot = Snapshot {
            store: rt.store,
            memories: Vec::new(),
            globals: Vec::new(),
            instances,
        };
        for e in state {
            match e {
                Extern::Memory(memory) => {
                    let like = like.and_then(|l| l.memories.get(snapshot.memories.len()));
                    // The memory holds its image as it is: its chunks that
                    // are not all zero are kept, and the pages of the rest
                    // given back (they read as zero), in one pass.
                    let (data, store) = visible_mut(memory, self.inner.as_context_mut());
                    let mut kept = Kept::new(like.filter(|l| l.size == data.len()).map(|l| &l.chunks));
                    release_zero_runs(&mut store.rt.memories, data, |at, chunk| kept.push(at, chunk));
                    let chunks = kept.finish();
                    let bytes = chunks.iter().map(|(_, c)| c.len()).sum();
                    let image = Image {
                        memory,
                        size: data.len(),
                        base: data.as_ptr() as usize,
                        bytes,
                        chunks,
                        id: IMAGES.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
                        track: bytes > crate::memory::IN_PLACE,
                    };
                    if image.track {
                        store.rt.memories.track_writes(data, image.id);
                    }
                    snapshot.memories.push(image);
                }
                Extern::Global(global) => {
                    let value = global.get(self.inner.as_context());
                    snapshot.globals.push((global, value));
                }
                _ => {}
            }
        }
        Ok(snapshot)
    }

    /// Readies a freshly made instance's store to wait in a pool: with
    /// `reset`, its snapshot (if it can have one), sharing the memory images
    /// of the snapshot in `template` that it holds too
    /// ([`Store::snapshot_like`]), or kept there if it is the first; either
    /// way its zero pages go back to the kernel, so an idle instance holds
    /// only what its guest wrote.
    pub fn settle(&mut self, reset: bool, template: &std::sync::OnceLock<Snapshot>) -> Option<Snapshot> {
        let snapshot = if reset {
            self.snapshot_like(template.get()).ok()
        } else {
            None
        };
        match &snapshot {
            Some(snapshot) => {
                template.get_or_init(|| snapshot.clone());
            }
            None => self.release_zero_pages(),
        }
        snapshot
    }

    /// Gives the kernel back the pages of linear memory that hold only
    /// zeros (wasmi commits every declared page when it makes a memory):
    /// an idle instance then holds only what its guest wrote. Changes no
    /// byte a guest can see.
    pub fn release_zero_pages(&mut self) {
        let memories: Vec<wasmi::Memory> = self
            .inner
            .data()
            .rt
            .core_state
            .iter()
            .filter_map(|e| match e {
                Extern::Memory(m) => Some(*m),
                _ => None,
            })
            .collect();
        for memory in memories {
            let (data, store) = visible_mut(memory, self.inner.as_context_mut());
            release_zero_runs(&mut store.rt.memories, data, |_, _| {});
        }
    }

    /// Puts everything back as [`Store::snapshot`] found it, even after a
    /// call that trapped or was dropped half-way: no call can be running,
    /// since a call holds the store, so what one left unfinished (its
    /// tasks, its adapter frames, its instances' flags) is forgotten with
    /// the rest. Returns `false`, and the store must be dropped, if that
    /// cannot be done: the snapshot is another store's, instances were
    /// added since, a guest touched a guarded page, or a memory wasmi made
    /// grew.
    pub fn reset(&mut self, snapshot: &Snapshot) -> bool {
        let rt = &mut self.inner.data_mut().rt;
        let same_shape =
            rt.store == snapshot.store && rt.instances.len() == snapshot.instances && rt.memories.check().is_ok();
        if !same_shape {
            return false;
        }
        rt.tasks.clear();
        rt.frames.clear();
        rt.async_driver = false;
        rt.nested = 0;
        for i in &mut rt.instances {
            i.handles.clear();
            i.may_enter = true;
            i.may_leave = true;
        }
        for image in &snapshot.memories {
            if !image.fit(&mut self.inner) {
                return false;
            }
            image.restore(&mut self.inner);
        }
        for (global, value) in &snapshot.globals {
            if global.set(self.inner.as_context_mut(), value.clone()).is_err() {
                return false;
            }
        }
        true
    }
}

impl Image {
    /// Brings the memory back to the image's size (seen by its guest), if
    /// it grew and we made it.
    fn fit<T>(&self, store: &mut wasmi::Store<StoreData<T>>) -> bool {
        let data = self.memory.data(&*store);
        if data.len() == self.size && store.data().rt.memories.visible(data) == self.size {
            return true;
        }
        let (ptr, real) = (data.as_ptr(), data.len() as u64 / PAGE);
        let visible = store.data().rt.memories.visible(data) as u64;
        let fits = (self.size as u64).is_multiple_of(PAGE)
            && store.data_mut().rt.memories.shrink(ptr, real, self.size as u64 / PAGE);
        if fits {
            // The store now holds what a fresh one would.
            store
                .data_mut()
                .limiter
                .give_back(visible.saturating_sub(self.size as u64));
        }
        fits
    }

    /// Clears the memory and writes the image's chunks back; from then on
    /// its writes are tracked if that is worth it.
    fn write_back<T>(&self, store: &mut wasmi::Store<StoreData<T>>) {
        let (data, store) = visible_mut(self.memory, store.as_context_mut());
        store.rt.memories.forget_writes(data);
        crate::memory::release(data);
        for (at, chunk) in self.chunks.iter() {
            data[*at..*at + chunk.len()].copy_from_slice(chunk);
        }
        if self.track {
            store.rt.memories.track_writes(data, self.id);
        }
    }

    /// Brings the memory back to the image at a cost that follows what
    /// changed. Where the kernel says which pages were written since the
    /// memory held the image, only those are written back
    /// ([`Image::restore_written`]). Otherwise image chunks are compared and
    /// copied only if they differ, and what lies between them is cleared
    /// (`crate::memory::clear_range`, knowing which pages are resident from
    /// one question to the kernel).
    fn restore<T>(&self, store: &mut wasmi::Store<StoreData<T>>) {
        use crate::memory::{Resident, IN_PLACE};
        let (data, rest) = visible_mut(self.memory, store.as_context_mut());
        if data.as_ptr() as usize != self.base || data.len() != self.size {
            return self.write_back(store);
        }
        let memories = &mut rest.rt.memories;
        if let Some(written) = memories.written(data, self.id) {
            self.restore_written(data, &written);
            memories.restored(data, self.id, &written);
            return;
        }
        // Pages are dropped below, unseen by the tracking.
        memories.forget_writes(data);
        let resident = Resident::of(data);
        let in_place = resident.bytes().saturating_sub(self.bytes) <= IN_PLACE;
        Self::put_back(data, 0..self.size, &self.chunks, &resident, in_place, true);
        if self.track {
            memories.track_writes(data, self.id);
        }
    }

    /// Writes the image back over `written` (page-aligned ranges of
    /// offsets, in order), the only pages that changed: their image chunks
    /// are copied and the rest is zeroed, in place when it is little (the
    /// pages stay resident), else by dropping the pages.
    fn restore_written(&self, data: &mut [u8], written: &[std::ops::Range<usize>]) {
        use crate::memory::{Resident, IN_PLACE};
        // The image chunks in `range`, as indices (chunks are in order).
        let chunks_in = |range: &std::ops::Range<usize>| {
            let from = self.chunks.partition_point(|(at, _)| *at < range.start);
            let to = self.chunks.partition_point(|(at, _)| *at < range.end);
            from..to
        };
        let zeroed: usize = written
            .iter()
            .map(|r| r.len() - self.chunks[chunks_in(r)].iter().map(|(_, c)| c.len()).sum::<usize>())
            .sum();
        let in_place = zeroed <= IN_PLACE;
        let unknown = Resident::unknown();
        for range in written {
            // Written pages differ from their image as a rule: copied
            // without comparing first.
            Self::put_back(
                data,
                range.clone(),
                &self.chunks[chunks_in(range)],
                &unknown,
                in_place,
                false,
            );
        }
    }

    /// Writes the image back over `data[range]`: `chunks` (the image's
    /// chunks there, in order) copied (with `compare`, only where they
    /// differ), what lies between them cleared (`crate::memory::clear_range`).
    fn put_back(
        data: &mut [u8],
        range: std::ops::Range<usize>,
        chunks: &[(usize, Box<[u8]>)],
        resident: &crate::memory::Resident,
        in_place: bool,
        compare: bool,
    ) {
        use crate::memory::clear_range;
        let mut at = range.start;
        for (offset, saved) in chunks {
            clear_range(data, at..*offset, resident, in_place);
            let chunk = &mut data[*offset..*offset + saved.len()];
            if !compare || chunk != &saved[..] {
                chunk.copy_from_slice(saved);
            }
            at = offset + saved.len();
        }
        clear_range(data, at..range.end, resident, in_place);
    }
}

/// The chunks of a memory image being taken: while they match those of
/// an image `like` in order, none is copied, and the image is shared if
/// all of them do.
struct Kept<'a> {
    like: Option<&'a Chunks>,
    /// How many of `like`'s chunks matched so far (while `like` is kept).
    matched: usize,
    own: Vec<(usize, Box<[u8]>)>,
}

impl<'a> Kept<'a> {
    fn new(like: Option<&'a Chunks>) -> Self {
        Kept {
            like,
            matched: 0,
            own: Vec::new(),
        }
    }

    /// The next chunk not all zero, at offset `at`.
    fn push(&mut self, at: usize, chunk: &[u8]) {
        if let Some(like) = self.like {
            if like.get(self.matched).is_some_and(|(o, c)| *o == at && **c == *chunk) {
                self.matched += 1;
                return;
            }
            // Those that matched are copied from `like`: they are the same.
            self.own = like[..self.matched].to_vec();
            self.like = None;
        }
        self.own.push((at, Box::from(chunk)));
    }

    fn finish(self) -> Chunks {
        match self.like {
            Some(like) if self.matched == like.len() => like.clone(),
            Some(like) => std::sync::Arc::new(like[..self.matched].to_vec()),
            None => std::sync::Arc::new(self.own),
        }
    }
}

/// Gives back the pages of `data`'s runs of all-zero chunks (they read as
/// zero), handing every other chunk to `kept` with its offset, in order.
fn release_zero_runs(memories: &mut crate::memory::Memories, data: &mut [u8], mut kept: impl FnMut(usize, &[u8])) {
    // Dropped pages are not seen as written: a reset must compare.
    memories.forget_writes(data);
    clear_runs(data, |at, chunk| {
        let holds = !crate::memory::all_zero(chunk);
        if holds {
            kept(at, chunk);
        }
        holds
    });
}

/// Walks `data` chunk by chunk: `keep(offset, chunk)` may change a chunk
/// and says whether to keep it; each run of chunks not kept is zeroed and
/// its pages given back in one go.
fn clear_runs(data: &mut [u8], mut keep: impl FnMut(usize, &mut [u8]) -> bool) {
    let bounds = chunks(data);
    let mut run: Option<(usize, usize)> = None;
    for (a, b) in bounds {
        if keep(a, &mut data[a..b]) {
            if let Some((s, e)) = run.take() {
                crate::memory::release(&mut data[s..e]);
            }
        } else {
            run = Some((run.map_or(a, |(s, _)| s), b));
        }
    }
    if let Some((s, e)) = run {
        crate::memory::release(&mut data[s..e]);
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use crate::{Component, Engine, Linker};

    /// Whether the kernel tracks the writes of the snapshot's memory.
    fn tracked(store: &mut Store<()>, snapshot: &Snapshot) -> bool {
        let image = &snapshot.memories[0];
        let (data, rest) = visible_mut(image.memory, store.inner.as_context_mut());
        rest.rt.memories.written(data, image.id).is_some()
    }

    #[test]
    fn a_large_image_is_tracked_from_its_snapshot_and_forgotten_when_pages_are_dropped() {
        if !crate::memory::written::works_here() {
            return;
        }
        let wat = format!(
            r#"(component
              (core module $M (memory (export "mem") 16) (data (i32.const 1000) "{}"))
              (core instance $m (instantiate $M)))"#,
            "\\01".repeat(300_000)
        );
        let engine = Engine::default();
        let component = Component::new(&engine, wat.as_bytes()).unwrap();
        let mut store = Store::new(&engine, ());
        Linker::default().instantiate(&mut store, &component).unwrap();
        let snapshot = store.snapshot().unwrap();
        assert!(snapshot.image_bytes() > crate::memory::IN_PLACE);
        assert!(tracked(&mut store, &snapshot), "tracked from the snapshot on");
        assert!(store.reset(&snapshot));
        assert!(tracked(&mut store, &snapshot), "still tracked after a reset");
        store.release_zero_pages();
        assert!(!tracked(&mut store, &snapshot), "forgotten once pages are dropped");
        assert!(store.reset(&snapshot));
        assert!(
            tracked(&mut store, &snapshot),
            "tracked again after a reset that compared"
        );
    }
}
