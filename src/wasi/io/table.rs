//! Where `wasi:io`'s objects live: the [`IoView`] of the store's data, the
//! resource types other interfaces `use`, and helpers for handles.

use crate::host::table::{Resource, ResourceTable};
use crate::values::{ResourceType, Val};
use crate::wasi::vals::rep;
use crate::{LinkerInstance, StoreCx};
use anyhow::Result;

/// Store data that gives the `wasi:io` hosts (and those built on them) the
/// resource table their objects live in.
pub trait IoView: 'static {
    fn table(&mut self) -> &mut ResourceTable;
}

/// The `wasi:io` resource types other interfaces use (`use`d types).
#[derive(Clone)]
pub struct Types {
    pub error: ResourceType,
    pub pollable: ResourceType,
    pub input_stream: ResourceType,
    pub output_stream: ResourceType,
}

/// Defines resource type `name` whose objects (of type `R`) live in the
/// table and are deleted when the guest drops its handle.
pub(crate) fn table_resource<T: IoView, R: Send + 'static>(inst: &mut LinkerInstance<T>, name: &str) -> ResourceType {
    inst.resource(name, |mut cx, rep| {
        cx.data_mut().table().delete(Resource::<R>::new(rep))?;
        Ok(())
    })
}

/// The table object behind a handle argument.
pub(crate) fn get<'a, T: IoView, R: 'static>(cx: &'a mut StoreCx<'_, T>, v: &Val) -> Result<&'a R> {
    Ok(cx.data_mut().table().get(&Resource::<R>::new(rep(v)?))?)
}

/// The table object behind a handle argument, mutably.
pub(crate) fn get_mut<'a, T: IoView, R: 'static>(cx: &'a mut StoreCx<'_, T>, v: &Val) -> Result<&'a mut R> {
    Ok(cx.data_mut().table().get_mut(&Resource::<R>::new(rep(v)?))?)
}
