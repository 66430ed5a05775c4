//! Core WebAssembly modules, compiled for an engine, that a host can give to
//! components importing `(core module ..)` and that instances export.

use super::engine::Engine;
use anyhow::{anyhow, Result};

/// A compiled core module. Cheap to clone.
#[derive(Clone)]
pub struct CoreModule {
    pub(crate) inner: wasmi::Module,
}

impl CoreModule {
    /// Validates and compiles a core module binary.
    ///
    /// # Errors
    /// If `bytes` is not a valid module for this engine's features.
    pub fn new(engine: &Engine, bytes: &[u8]) -> Result<Self> {
        let code = crate::component::rewrite::prepare(bytes).map_err(|e| anyhow!("core module: {e}"))?;
        let inner = wasmi::Module::new(engine.wasmi(), &code[..]).map_err(|e| anyhow!("core module: {e}"))?;
        Ok(CoreModule { inner })
    }
}
