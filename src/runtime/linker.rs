//! The host side of linking: host functions, resource types, core modules
//! and nested instances defined by interface name, matched
//! semver-compatibly against a guest's imports.

use super::component::Component;
use super::instance::Instance;
use super::instance_pre::InstancePre;
use super::module::CoreModule;
use super::store::Store;
use crate::canon::state::StoreCx;
use crate::component::host::{AsyncHostFn, HostDtor, HostFunc, HostImports, HostInstance, TypedLowering};
use crate::component::names::{compatible, split_version};
use crate::values::{ResourceType, Val};
use anyhow::Result;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The definitions of one host interface (or the root), built with the
/// methods below.
pub type LinkerInstance<T> = HostInstance<T>;

impl<T: 'static> HostInstance<T> {
    /// Defines a function taking and returning dynamic [`Val`]s. Its type is
    /// the one the guest imports it with.
    pub fn func_new(
        &mut self,
        name: &str,
        f: impl Fn(StoreCx<'_, T>, &[Val], &mut Vec<Val>) -> Result<()> + Send + Sync + 'static,
    ) -> &mut Self {
        self.funcs.insert(
            name.to_string(),
            HostFunc {
                dynamic: Arc::new(f),
                typed: None,
                async_: None,
                compact_bytes: false,
            },
        );
        self
    }

    /// Defines a function over Rust types: `P` is a tuple of parameters, `R`
    /// the result (`()` for none).
    pub fn func_wrap<P, R>(
        &mut self,
        name: &str,
        f: impl Fn(StoreCx<'_, T>, P) -> Result<R> + Send + Sync + 'static,
    ) -> &mut Self
    where
        P: super::typed::ComponentParams,
        R: super::typed::ComponentResult,
    {
        let f: Arc<super::typed::WrapFn<T, P, R>> = Arc::new(f);
        let g = f.clone();
        self.func_new(name, move |cx, args, results| {
            let params = P::from_vals(args)?;
            let r = g(cx, params)?;
            r.push_vals(results);
            Ok(())
        });
        let lowering = TypedLowering {
            params: P::types(),
            result: R::ty(),
            lower: Arc::new(move |store, opts| super::typed::lower_typed(store, opts, f.clone())),
        };
        if let Some(func) = self.funcs.get_mut(name) {
            func.typed = Some(lowering);
        }
        self
    }

    /// Defines a function that may wait: it returns a future of its results,
    /// and the calling guest is suspended (other tasks run) until it
    /// completes. Called outside an async call, the future is driven in place.
    pub fn func_async(
        &mut self,
        name: &str,
        f: impl Fn(StoreCx<'_, T>, &[Val]) -> Result<crate::dispatch::HostFuture> + Send + Sync + 'static,
    ) -> &mut Self {
        let f: AsyncHostFn<T> = Arc::new(f);
        let g = f.clone();
        self.func_new(name, move |cx, args, results| {
            results.extend(crate::dispatch::block_on(g(cx, args)?)?);
            Ok(())
        });
        if let Some(func) = self.funcs.get_mut(name) {
            func.async_ = Some(f);
        }
        self
    }

    /// Defines a resource type named `name`; `dtor` runs with the rep when a
    /// guest drops an owned handle. Returns the type, to build handles with.
    pub fn resource(
        &mut self,
        name: &str,
        dtor: impl Fn(StoreCx<'_, T>, u32) -> Result<()> + Send + Sync + 'static,
    ) -> ResourceType {
        let dtor: HostDtor<T> = Arc::new(dtor);
        let rt = ResourceType::host(name, Some(Arc::new(dtor)));
        self.resources.insert(name.to_string(), rt.clone());
        rt
    }

    /// Defines `name` as an existing resource type (one defined here under
    /// another name, or exported by an instance): imports of either name
    /// are then the same type.
    pub fn resource_type(&mut self, name: &str, rt: ResourceType) -> &mut Self {
        self.resources.insert(name.to_string(), rt);
        self
    }

    /// Defines a core module, for guests importing `(core module ..)`.
    pub fn module(&mut self, name: &str, module: &CoreModule) -> &mut Self {
        self.modules.insert(name.to_string(), module.inner.clone());
        self
    }

    /// The nested instance `name`, created empty on first use.
    pub fn instance(&mut self, name: &str) -> &mut LinkerInstance<T> {
        self.instances.entry(name.to_string()).or_default()
    }
}

/// Host definitions, keyed by interface name. Cloning is cheap (the
/// definitions are shared until one of the clones changes them).
pub struct Linker<T> {
    defs: Arc<Definitions<T>>,
}

struct Definitions<T> {
    root: LinkerInstance<T>,
    instances: BTreeMap<String, LinkerInstance<T>>,
}

impl<T> Clone for Definitions<T> {
    fn clone(&self) -> Self {
        Definitions {
            root: self.root.clone(),
            instances: self.instances.clone(),
        }
    }
}

impl<T> Clone for Linker<T> {
    fn clone(&self) -> Self {
        Linker {
            defs: self.defs.clone(),
        }
    }
}

impl<T: 'static> Default for Linker<T> {
    fn default() -> Self {
        Linker {
            defs: Arc::new(Definitions {
                root: LinkerInstance::default(),
                instances: BTreeMap::new(),
            }),
        }
    }
}

impl<T: 'static> Linker<T> {
    pub fn new(_engine: &crate::Engine) -> Self {
        Self::default()
    }

    /// Top-level (un-nested) function and type imports.
    pub fn root(&mut self) -> &mut LinkerInstance<T> {
        &mut Arc::make_mut(&mut self.defs).root
    }

    /// The host interface `name`, e.g. `wasi:io/streams@0.2.3`.
    pub fn instance(&mut self, name: &str) -> &mut LinkerInstance<T> {
        Arc::make_mut(&mut self.defs)
            .instances
            .entry(name.to_string())
            .or_default()
    }

    /// Resolves `component`'s imports here once, for instantiating it any
    /// number of times ([`InstancePre::instantiate`]), as wasmtime's
    /// `Linker::instantiate_pre` does. Later changes to this linker do not
    /// reach it.
    ///
    /// # Errors
    /// An import with no matching definition, naming the import and the
    /// type it expects.
    pub fn instantiate_pre(&self, component: &Component) -> Result<InstancePre<T>> {
        let resolved = crate::component::instantiate::resolve_imports(&component.def, self)?;
        Ok(InstancePre {
            component: component.clone(),
            linker: self.clone(),
            resolved: Arc::new(resolved),
        })
    }

    /// Instantiates `component` in `store`, resolving its imports here.
    /// Start functions run to completion on this thread (see
    /// [`Linker::instantiate_async`] to share it).
    ///
    /// # Errors
    /// An import with no matching definition (naming the import and the type
    /// it expects), a trap in a start function, the store's deadline or
    /// limits, or a core link error.
    pub fn instantiate(&self, store: &mut Store<T>, component: &Component) -> Result<Instance>
    where
        T: Send,
    {
        self.instantiate_pre(component)?.instantiate(store)
    }

    /// Instantiates `component` as a task of the dispatcher: start functions
    /// are fuel-sliced like calls (see [`Store::set_fuel_slice`]), yielding
    /// between slices, and stop at the store's deadline
    /// ([`Store::set_deadline`]); a host function they call with
    /// `func_async` suspends them.
    ///
    /// # Errors
    /// As [`Linker::instantiate`].
    pub async fn instantiate_async(&self, store: &mut Store<T>, component: &Component) -> Result<Instance>
    where
        T: Send,
    {
        self.instantiate_pre(component)?.instantiate_async(store).await
    }

    /// Host functions of the interfaces named `prefix...` get `list<u8>`
    /// arguments as `Val::Bytes` (one copy) instead of a `Val` per byte;
    /// for hosts that read bytes through a helper accepting both forms.
    pub fn compact_bytes(&mut self, prefix: &str) {
        for (name, inst) in Arc::make_mut(&mut self.defs).instances.iter_mut() {
            if name.starts_with(prefix) {
                for f in inst.funcs.values_mut() {
                    f.compact_bytes = true;
                }
            }
        }
    }

    /// Whether interface `base` (a name without version) is defined here,
    /// at any version.
    pub fn defines(&self, base: &str) -> bool {
        self.defs.instances.keys().any(|n| split_version(n).0 == base)
    }

    /// Finds the host interface for a guest import name: exact, else the
    /// highest semver-compatible version.
    pub(crate) fn lookup_instance(&self, name: &str) -> Option<&LinkerInstance<T>> {
        if let Some(i) = self.defs.instances.get(name) {
            return Some(i);
        }
        let (base, want) = split_version(name);
        let want = want?;
        self.defs
            .instances
            .iter()
            .filter_map(|(n, inst)| {
                let (b, v) = split_version(n);
                let v = v?;
                (b == base && compatible(&want, &v)).then_some((v, inst))
            })
            .max_by(|a, b| a.0.cmp(&b.0))
            .map(|(_, i)| i)
    }
}

impl<T: 'static> HostImports<T> for Linker<T> {
    fn root(&self) -> &HostInstance<T> {
        &self.defs.root
    }

    fn lookup(&self, name: &str) -> Option<&HostInstance<T>> {
        self.lookup_instance(name)
    }

    fn names(&self) -> Vec<&str> {
        self.defs.instances.keys().map(|s| s.as_str()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_picks_the_highest_compatible_host_version() {
        let mut l = Linker::<()>::default();
        l.instance("wasi:io/poll@0.2.0").func_new("a", |_, _, _| Ok(()));
        l.instance("wasi:io/poll@0.2.6").func_new("b", |_, _, _| Ok(()));
        l.instance("wasi:io/poll@0.3.0").func_new("c", |_, _, _| Ok(()));
        let found = l.lookup_instance("wasi:io/poll@0.2.3").unwrap();
        assert!(found.funcs.contains_key("b"));
        assert!(l.lookup_instance("wasi:io/poll@1.0.0").is_none());
    }
}
