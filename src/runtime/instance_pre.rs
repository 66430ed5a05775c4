//! [`InstancePre`]: a component with its imports resolved against a
//! linker, as wasmtime's `InstancePre`: what does not depend on the store
//! (finding each import's host definition, checking its type, building the
//! component-level types of host functions) is done once, not per instance.

use super::component::Component;
use super::instance::Instance;
use super::linker::Linker;
use super::store::Store;
use crate::component::instantiate::{instantiate_root, Resolved};
use anyhow::Result;
use std::sync::Arc;

/// A component ready to instantiate in any store, made by
/// [`Linker::instantiate_pre`]. Cloning is cheap.
pub struct InstancePre<T> {
    pub(super) component: Component,
    /// For imports that could not be resolved ahead (they follow an item
    /// made per instance).
    pub(super) linker: Linker<T>,
    pub(super) resolved: Arc<Resolved<T>>,
}

impl<T> Clone for InstancePre<T> {
    fn clone(&self) -> Self {
        InstancePre {
            component: self.component.clone(),
            linker: self.linker.clone(),
            resolved: self.resolved.clone(),
        }
    }
}

impl<T: 'static> InstancePre<T> {
    /// The component this instantiates.
    pub fn component(&self) -> &Component {
        &self.component
    }

    /// Instantiates the component in `store`; start functions run to
    /// completion on this thread.
    ///
    /// # Errors
    /// As [`Linker::instantiate`].
    pub fn instantiate(&self, store: &mut Store<T>) -> Result<Instance>
    where
        T: Send,
    {
        crate::dispatch::block_on(self.instantiate_async(store))
    }

    /// Instantiates the component in `store` as a task of the dispatcher.
    ///
    /// # Errors
    /// As [`Linker::instantiate_async`].
    pub async fn instantiate_async(&self, store: &mut Store<T>) -> Result<Instance>
    where
        T: Send,
    {
        let (id, exports) = instantiate_root(
            &mut store.ctx(),
            &self.component.def,
            &self.component.adapters,
            &self.linker,
            &self.resolved,
        )
        .await?;
        Ok(Instance {
            id,
            exports: Arc::new(exports),
        })
    }
}
