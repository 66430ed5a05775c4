//! What the host provides to a component's imports: host functions (dynamic,
//! typed or async) and resource types, grouped by interface. The embedding
//! API's [`crate::Linker`] builds these; instantiation reads them through
//! [`HostImports`].

use crate::canon::state::{StoreCx, StoreData};
use crate::canon::Options;
use crate::dispatch::HostFuture;
use crate::values::{ResourceType, Type, Val};
use anyhow::Result;
use std::collections::BTreeMap;
use std::sync::Arc;

/// A dynamic host function: receives lifted arguments, pushes its results.
pub type HostFn<T> = Arc<dyn Fn(StoreCx<'_, T>, &[Val], &mut Vec<Val>) -> Result<()> + Send + Sync>;

/// A host function as the linker keeps it: the dynamic form every function
/// has, and for typed functions the way to lower them without `Val`s.
pub struct HostFunc<T> {
    pub dynamic: HostFn<T>,
    pub typed: Option<TypedLowering<T>>,
    /// For `func_async`: the form that can suspend the guest.
    pub async_: Option<AsyncHostFn<T>>,
    /// `list<u8>` arguments arrive as `Val::Bytes` (see
    /// [`crate::Linker::compact_bytes`]).
    pub compact_bytes: bool,
}

/// An async host function: starts work with the store at hand and returns a
/// future of its results; the guest is suspended until it completes.
pub type AsyncHostFn<T> = Arc<dyn Fn(StoreCx<'_, T>, &[Val]) -> Result<HostFuture> + Send + Sync>;

impl<T> Clone for HostFunc<T> {
    fn clone(&self) -> Self {
        HostFunc {
            dynamic: self.dynamic.clone(),
            typed: self.typed.clone(),
            async_: self.async_.clone(),
            compact_bytes: self.compact_bytes,
        }
    }
}

/// The Rust signature of a typed host function and a builder of its lowered
/// core function, used when the guest imports it at exactly that type.
pub struct TypedLowering<T> {
    pub params: Vec<Type>,
    pub result: Option<Type>,
    #[allow(clippy::type_complexity)]
    pub lower: Arc<dyn Fn(wasmi::StoreContextMut<'_, StoreData<T>>, Options) -> wasmi::Func + Send + Sync>,
}

impl<T> Clone for TypedLowering<T> {
    fn clone(&self) -> Self {
        TypedLowering {
            params: self.params.clone(),
            result: self.result.clone(),
            lower: self.lower.clone(),
        }
    }
}

/// Runs when a guest drops the last owned handle to a host resource.
pub type HostDtor<T> = Arc<dyn Fn(StoreCx<'_, T>, u32) -> Result<()> + Send + Sync>;

/// The functions and resource types of one host interface (or the root).
pub struct HostInstance<T> {
    pub funcs: BTreeMap<String, HostFunc<T>>,
    pub resources: BTreeMap<String, ResourceType>,
}

impl<T> Default for HostInstance<T> {
    fn default() -> Self {
        HostInstance {
            funcs: BTreeMap::new(),
            resources: BTreeMap::new(),
        }
    }
}

/// Where instantiation finds the host's definitions for a component's
/// imports.
pub trait HostImports<T> {
    /// Top-level (un-nested) function and type imports.
    fn root(&self) -> &HostInstance<T>;
    /// The host interface for a guest import name: exact, else the highest
    /// semver-compatible version.
    fn lookup(&self, name: &str) -> Option<&HostInstance<T>>;
    /// Every defined interface name (for error hints).
    fn names(&self) -> Vec<&str>;
}
