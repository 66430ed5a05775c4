//! The store: wasmi's store plus the component runtime state (component
//! instance states, the task stack) and the embedder's data.

use crate::canon::handles::{InstanceState, Task};
use crate::engine::Engine;

/// Component runtime state kept beside the embedder's data.
#[derive(Default)]
pub struct Runtime {
    pub(crate) instances: Vec<InstanceState>,
    pub(crate) tasks: Vec<Task>,
    /// Component-to-component calls between their adapter helpers.
    pub(crate) frames: Vec<crate::canon::calls::AdapterFrame>,
    pub(crate) adapters: std::sync::Arc<crate::canon::adapter::AdapterCache>,
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
}

/// What wasmi's store holds: the embedder's `T` and our runtime state.
pub struct StoreData<T> {
    pub user: T,
    pub(crate) rt: Runtime,
    limiter: crate::limits::Limiter,
}

/// A store of component instances with embedder data `T`. Everything
/// instantiated in one store shares it; separate stores share nothing.
pub struct Store<T> {
    pub(crate) inner: wasmi::Store<StoreData<T>>,
}

impl<T> Store<T> {
    /// A new store on `engine` holding `data`.
    /// A new store on `engine` holding `data`, with default [`Limits`](crate::Limits).
    pub fn new(engine: &Engine, data: T) -> Self {
        let mut inner = wasmi::Store::new(
            engine.wasmi(),
            StoreData {
                user: data,
                rt: Runtime {
                    adapters: engine.adapters(),
                    ..Runtime::default()
                },
                limiter: crate::limits::Limiter::new(crate::Limits::default()),
            },
        );
        inner.limiter(|data| &mut data.limiter);
        Store { inner }
    }

    /// Replaces the store's limits; they apply to allocation and growth from
    /// now on.
    pub fn set_limits(&mut self, limits: crate::Limits) {
        self.inner.data_mut().limiter.limits = limits;
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
    pub fn handle_count(&self, instance: &crate::Instance) -> usize {
        self.inner.data().rt.instances[instance.id].handles.len()
    }

    /// Drops an owned resource the host holds: runs its destructor (a
    /// guest's `dtor` or the host's).
    ///
    /// # Errors
    /// If `r` is a borrow, or the destructor traps.
    pub fn drop_resource(&mut self, r: &crate::ResourceAny) -> anyhow::Result<()>
    where
        T: 'static,
    {
        if !r.own {
            anyhow::bail!("cannot drop a borrowed handle to {}", r.ty.name());
        }
        let mut cx = self.ctx();
        crate::canon::calls::drop_own(&mut cx, None, &r.ty, r.rep).map_err(crate::error::from_wasmi)
    }

    pub(crate) fn ctx(&mut self) -> wasmi::StoreContextMut<'_, StoreData<T>> {
        wasmi::AsContextMut::as_context_mut(&mut self.inner)
    }
}

/// The store as seen by a host function while a guest calls it.
pub struct StoreCx<'a, T>(pub(crate) wasmi::StoreContextMut<'a, StoreData<T>>);

impl<T> StoreCx<'_, T> {
    pub fn data(&self) -> &T {
        &self.0.data().user
    }
    pub fn data_mut(&mut self) -> &mut T {
        &mut self.0.data_mut().user
    }
}
