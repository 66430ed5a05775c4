//! The store: wasmi's store holding the embedder's data beside the
//! component runtime state ([`crate::canon::state`]).
//!
//! The one cycle left in the engine is here: a [`Store`] answers questions
//! about an [`Instance`] (`handle_count`), and an instance's functions are
//! called with the store. The two API types name each other, as in
//! wasmtime's and wasmi's APIs.

use super::engine::Engine;
use super::instance::Instance;
use crate::canon::limits::Limits;
use crate::canon::state::StoreData;
use crate::values::ResourceAny;

/// A store of component instances with embedder data `T`. Everything
/// instantiated in one store shares it; separate stores share nothing.
pub struct Store<T> {
    pub(crate) inner: wasmi::Store<StoreData<T>>,
}

impl<T> Store<T> {
    /// A new store on `engine` holding `data`, with default [`Limits`].
    pub fn new(engine: &Engine, data: T) -> Self {
        let mut inner = wasmi::Store::new(engine.wasmi(), StoreData::new(data, Limits::default()));
        inner.limiter(|data| &mut data.limiter);
        static STORES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        inner.data_mut().rt.store = STORES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Store { inner }
    }

    /// Replaces the store's limits; they apply to allocation and growth from
    /// now on.
    pub fn set_limits(&mut self, limits: Limits) {
        self.inner.data_mut().limiter.limits = limits;
    }

    /// Bytes of linear memory the store's instances hold now.
    pub fn memory_bytes(&self) -> usize {
        self.inner.data().limiter.memory_in_use()
    }

    pub fn data(&self) -> &T {
        &self.inner.data().user
    }

    pub fn data_mut(&mut self) -> &mut T {
        &mut self.inner.data_mut().user
    }

    /// Sets the fuel left (only with [`crate::Config::consume_fuel`]).
    ///
    /// # Errors
    /// If fuel metering is disabled in the engine.
    pub fn set_fuel(&mut self, fuel: u64) -> anyhow::Result<()> {
        self.inner.set_fuel(fuel).map_err(|e| anyhow::anyhow!("{e}"))
    }

    /// With fuel metering on, gives async calls ([`crate::Func::call_async`])
    /// time slices of `fuel` units: a guest that uses up a slice yields to the
    /// executor and resumes with a fresh one. `None` (the default) means an
    /// async call runs on the store's fuel and fails when it is used up.
    pub fn set_fuel_slice(&mut self, fuel: Option<u64>) {
        self.inner.data_mut().rt.fuel_slice = fuel;
    }

    /// Async calls started after this fail with a timeout once `deadline`
    /// passes: a running guest is stopped at its next fuel slice (so fuel
    /// slicing must be on), a waiting one when its wait is cut short.
    pub fn set_deadline(&mut self, deadline: Option<std::time::Instant>) {
        self.inner.data_mut().rt.deadline = deadline;
    }

    /// The fuel left. Errors if fuel metering is disabled.
    pub fn get_fuel(&self) -> anyhow::Result<u64> {
        self.inner.get_fuel().map_err(|e| anyhow::anyhow!("{e}"))
    }

    /// Number of live handles in a component instance's table (for tests and
    /// diagnostics).
    pub fn handle_count(&self, instance: &Instance) -> usize {
        self.inner.data().rt.instances[instance.id].handles.len()
    }

    /// Drops an owned resource the host holds: runs its destructor (a
    /// guest's `dtor` or the host's).
    ///
    /// # Errors
    /// If `r` is a borrow, or the destructor traps.
    pub fn drop_resource(&mut self, r: &ResourceAny) -> anyhow::Result<()>
    where
        T: 'static,
    {
        if !r.own {
            anyhow::bail!("cannot drop a borrowed handle to {}", r.ty.name());
        }
        let mut cx = self.ctx();
        crate::component::calls::drop_own(&mut cx, None, &r.ty, r.rep).map_err(crate::canon::trap::from_wasmi)
    }

    pub(crate) fn ctx(&mut self) -> wasmi::StoreContextMut<'_, StoreData<T>> {
        wasmi::AsContextMut::as_context_mut(&mut self.inner)
    }
}
