//! The engine: a configured wasmi engine shared by components and stores.

use crate::component::adapter::AdapterCache;
use std::sync::Arc;

/// Engine settings.
#[derive(Clone, Debug, Default)]
pub struct Config {
    consume_fuel: bool,
}

impl Config {
    /// Meter execution with fuel, so calls can be time-sliced or bounded.
    pub fn consume_fuel(&mut self, on: bool) -> &mut Self {
        self.consume_fuel = on;
        self
    }
}

/// Compiles and runs components. Cheap to clone.
#[derive(Clone, Default)]
pub struct Engine {
    inner: wasmi::Engine,
    adapters: Arc<AdapterCache>,
}

impl Engine {
    pub fn new(config: &Config) -> Self {
        let mut c = wasmi::Config::default();
        c.consume_fuel(config.consume_fuel);
        // Fuel measures execution only. wasmi also charges lazy translation
        // of a function to the fuel of the call that first reaches it, and
        // running out there is not resumable: a large function (CPython's
        // interpreter loop) met at the end of a time slice would trap.
        c.fuel_cost(wasmi::CustomFuelCosts {
            bytes_copied_per_fuel: 64,
            fuel_per_bytes_translated: 0,
            fuel_per_bytes_validated: 0,
        });
        Engine {
            inner: wasmi::Engine::new(&c),
            adapters: Arc::default(),
        }
    }

    pub(crate) fn wasmi(&self) -> &wasmi::Engine {
        &self.inner
    }

    pub(crate) fn adapters(&self) -> Arc<AdapterCache> {
        self.adapters.clone()
    }
}
