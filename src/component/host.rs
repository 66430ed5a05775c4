//! What the host provides to a component's imports: host functions (dynamic,
//! typed or async), resource types, core modules and nested instances,
//! grouped by interface. The embedding API's [`crate::Linker`] builds these;
//! instantiation reads them through [`HostImports`].

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

/// The items of one host interface (or the root): functions, resource
/// types, core modules and nested instances, by export name.
pub struct HostInstance<T> {
    pub funcs: BTreeMap<String, HostFunc<T>>,
    pub resources: BTreeMap<String, ResourceType>,
    pub modules: BTreeMap<String, wasmi::Module>,
    pub instances: BTreeMap<String, HostInstance<T>>,
}

impl<T> Default for HostInstance<T> {
    fn default() -> Self {
        HostInstance {
            funcs: BTreeMap::new(),
            resources: BTreeMap::new(),
            modules: BTreeMap::new(),
            instances: BTreeMap::new(),
        }
    }
}

impl<T> Clone for HostInstance<T> {
    fn clone(&self) -> Self {
        HostInstance {
            funcs: self.funcs.clone(),
            resources: self.resources.clone(),
            modules: self.modules.clone(),
            instances: self.instances.clone(),
        }
    }
}

impl<T> HostInstance<T> {
    /// What kind of item `name` is here, for "expected X found Y" errors.
    pub fn kind_of(&self, name: &str) -> Option<&'static str> {
        if self.funcs.contains_key(name) {
            Some("func")
        } else if self.resources.contains_key(name) {
            Some("resource")
        } else if self.modules.contains_key(name) {
            Some("module")
        } else if self.instances.contains_key(name) {
            Some("instance")
        } else {
            None
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
