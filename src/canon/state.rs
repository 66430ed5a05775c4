//! What wasmi's store holds: the embedder's data and the per-store runtime
//! state the canonical ABI and the call protocols work on (the spec's
//! component instance states and task stack), plus the resource limiter.
//! Host functions see it through [`StoreCx`].

use super::handles::{InstanceState, Task};
use super::limits::{Limiter, Limits};
use wasmi::StoreContextMut;

/// Component runtime state kept beside the embedder's data.
#[derive(Default)]
pub struct Runtime {
    /// The store's name, unique in the process (`Store::new`): a snapshot
    /// resets only the store it was taken of.
    pub(crate) store: u64,
    pub(crate) instances: Vec<InstanceState>,
    pub(crate) tasks: Vec<Task>,
    /// Component-to-component calls between their adapter helpers.
    pub(crate) frames: Vec<AdapterFrame>,
    /// An async driver is running the current call (it can be paused).
    pub(crate) async_driver: bool,
    /// Depth of synchronous wasm calls made from host code (destructors,
    /// `Func::call` from a host function): these cannot be paused.
    pub(crate) nested: u32,
    /// Fuel given per time slice to async calls, when fuel is metered.
    pub(crate) fuel_slice: Option<u64>,
    /// When async calls must stop (checked between fuel slices and while
    /// waiting on the host).
    pub(crate) deadline: Option<std::time::Instant>,
    /// The memories and mutable globals of every core instance made in the
    /// store (their hidden exports, see `component::rewrite`), for
    /// snapshots; and whether one of them cannot be reset.
    pub(crate) core_state: Vec<wasmi::Extern>,
    pub(crate) unresettable: bool,
    /// The linear memories made for the store's modules (`crate::memory`).
    pub(crate) memories: crate::memory::Memories,
}

/// A call entered by `canon lift`: who called, and its task.
pub(crate) struct Frame {
    pub caller: Option<usize>,
    pub task: usize,
}

/// A component-to-component call in progress between the adapter's two
/// helpers.
pub(crate) struct AdapterFrame {
    pub frame: Frame,
    pub lenders: Vec<u32>,
}

/// What wasmi's store holds: the embedder's `T` and our runtime state.
pub struct StoreData<T> {
    pub user: T,
    pub(crate) rt: Runtime,
    pub(crate) limiter: Limiter,
}

impl<T> StoreData<T> {
    pub(crate) fn new(user: T, limits: Limits) -> Self {
        StoreData {
            user,
            rt: Runtime::default(),
            limiter: Limiter::new(limits),
        }
    }
}

/// The store as seen by a host function while a guest calls it.
pub struct StoreCx<'a, T>(pub(crate) StoreContextMut<'a, StoreData<T>>);

impl<T> StoreCx<'_, T> {
    pub fn data(&self) -> &T {
        &self.0.data().user
    }
    pub fn data_mut(&mut self) -> &mut T {
        &mut self.0.data_mut().user
    }
}

/// Slices of fuel a synchronous call made from host code may use.
const NESTED_SLICES: u64 = 1000;

/// Runs a synchronous wasm call made from host code (a `realloc`, a
/// `post-return`). It cannot yield when fuel runs out, so under time slicing
/// it gets a budget of [`NESTED_SLICES`] slices — enough for a guest's
/// first-use initialisation (componentize-py's `cabi_realloc` starts the
/// interpreter), yet bounded, so a spinning `realloc` still traps. What it
/// uses is then charged to the running slice, keeping the slices fair.
pub(crate) fn with_nested_fuel<T, R>(
    store: &mut StoreContextMut<'_, StoreData<T>>,
    f: impl FnOnce(&mut StoreContextMut<'_, StoreData<T>>) -> R,
) -> R {
    let Some(slice) = store.data().rt.fuel_slice else {
        return f(store);
    };
    let before = store.get_fuel().unwrap_or(0);
    let budget = slice.saturating_mul(NESTED_SLICES);
    let _ = store.set_fuel(budget);
    let r = f(store);
    let used = budget.saturating_sub(store.get_fuel().unwrap_or(0));
    let _ = store.set_fuel(before.saturating_sub(used));
    r
}

/// Runs a synchronous wasm call made from host code: host functions reached
/// from it cannot pause the outer async call.
pub(crate) fn nested<T, R>(
    store: &mut StoreContextMut<'_, StoreData<T>>,
    f: impl FnOnce(&mut StoreContextMut<'_, StoreData<T>>) -> R,
) -> R {
    store.data_mut().rt.nested += 1;
    let r = with_nested_fuel(store, f);
    store.data_mut().rt.nested -= 1;
    r
}

/// `memory`'s bytes as its guest sees them: a recycled memory can be
/// shorter to its guest than wasmi's (`crate::memory`), and the host must
/// not reach past what the guest could.
pub(crate) fn visible<'a, T: 'a>(memory: wasmi::Memory, ctx: wasmi::StoreContext<'a, StoreData<T>>) -> &'a [u8] {
    // Borrowed here, moved below: the slice must live as long as `ctx`.
    #[allow(clippy::needless_borrows_for_generic_args)]
    let n = ctx.data().rt.memories.visible(memory.data(&ctx));
    &memory.data(ctx)[..n]
}

/// [`visible`], writable, with the rest of the store.
pub(crate) fn visible_mut<'a, T: 'a>(
    memory: wasmi::Memory,
    ctx: impl Into<StoreContextMut<'a, StoreData<T>>>,
) -> (&'a mut [u8], &'a mut StoreData<T>) {
    let (data, store) = memory.data_and_store_mut(ctx);
    let n = store.rt.memories.visible(data);
    (&mut data[..n], store)
}
