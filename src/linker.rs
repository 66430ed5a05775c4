//! The host side of linking: host functions and resource types defined by
//! interface name, matched semver-compatibly against a guest's imports.

use crate::component::instance::Instance;
use crate::component::Component;
use crate::store::{Store, StoreCx};
use crate::types::ResourceType;
use crate::val::Val;
use anyhow::Result;
use std::collections::BTreeMap;
use std::sync::Arc;

/// A dynamic host function: receives lifted arguments, pushes its results.
pub type HostFn<T> = Arc<dyn Fn(StoreCx<'_, T>, &[Val], &mut Vec<Val>) -> Result<()> + Send + Sync>;

/// A host function as the linker keeps it: the dynamic form every function
/// has, and for typed functions the way to lower them without `Val`s.
pub(crate) struct HostFunc<T> {
    pub dynamic: HostFn<T>,
    pub typed: Option<TypedLowering<T>>,
    /// For `func_async`: the form that can suspend the guest.
    pub async_: Option<AsyncHostFn<T>>,
    /// `list<u8>` arguments arrive as `Val::Bytes` (see
    /// [`Linker::compact_bytes`]).
    pub compact_bytes: bool,
}

/// An async host function: starts work with the store at hand and returns a
/// future of its results; the guest is suspended until it completes.
pub type AsyncHostFn<T> = Arc<dyn Fn(StoreCx<'_, T>, &[Val]) -> Result<crate::dispatch::HostFuture> + Send + Sync>;

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
pub(crate) struct TypedLowering<T> {
    pub params: Vec<crate::types::Type>,
    pub result: Option<crate::types::Type>,
    #[allow(clippy::type_complexity)]
    pub lower: Arc<
        dyn Fn(wasmi::StoreContextMut<'_, crate::store::StoreData<T>>, crate::canon::Options) -> wasmi::Func
            + Send
            + Sync,
    >,
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
pub struct LinkerInstance<T> {
    pub(crate) funcs: BTreeMap<String, HostFunc<T>>,
    pub(crate) resources: BTreeMap<String, ResourceType>,
}

impl<T> Default for LinkerInstance<T> {
    fn default() -> Self {
        LinkerInstance {
            funcs: BTreeMap::new(),
            resources: BTreeMap::new(),
        }
    }
}

impl<T: 'static> LinkerInstance<T> {
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
        P: crate::typed::ComponentParams,
        R: crate::typed::ComponentResult,
    {
        let f: Arc<crate::typed::WrapFn<T, P, R>> = Arc::new(f);
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
            lower: Arc::new(move |store, opts| crate::typed::lower_typed(store, opts, f.clone())),
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
}

/// Host definitions, keyed by interface name.
pub struct Linker<T> {
    root: LinkerInstance<T>,
    instances: BTreeMap<String, LinkerInstance<T>>,
}

impl<T: 'static> Default for Linker<T> {
    fn default() -> Self {
        Linker {
            root: LinkerInstance::default(),
            instances: BTreeMap::new(),
        }
    }
}

impl<T: 'static> Linker<T> {
    pub fn new(_engine: &crate::Engine) -> Self {
        Self::default()
    }

    /// Top-level (un-nested) function and type imports.
    pub fn root(&mut self) -> &mut LinkerInstance<T> {
        &mut self.root
    }

    /// The host interface `name`, e.g. `wasi:io/streams@0.2.3`.
    pub fn instance(&mut self, name: &str) -> &mut LinkerInstance<T> {
        self.instances.entry(name.to_string()).or_default()
    }

    /// Instantiates `component` in `store`, resolving its imports here.
    ///
    /// # Errors
    /// An import with no matching definition (naming the import and the type
    /// it expects), a trap in a start function, or a core link error.
    pub fn instantiate(&self, store: &mut Store<T>, component: &Component) -> Result<Instance> {
        crate::component::instantiate::instantiate_root(store, component, self)
    }

    /// Host functions of the interfaces named `prefix...` get `list<u8>`
    /// arguments as `Val::Bytes` (one copy) instead of a `Val` per byte;
    /// for hosts that read bytes through a helper accepting both forms.
    pub fn compact_bytes(&mut self, prefix: &str) {
        for (name, inst) in self.instances.iter_mut() {
            if name.starts_with(prefix) {
                for f in inst.funcs.values_mut() {
                    f.compact_bytes = true;
                }
            }
        }
    }

    pub(crate) fn root_items(&self) -> &LinkerInstance<T> {
        &self.root
    }

    /// Finds the host interface for a guest import name: exact, else the
    /// highest semver-compatible version.
    pub(crate) fn lookup_instance(&self, name: &str) -> Option<&LinkerInstance<T>> {
        if let Some(i) = self.instances.get(name) {
            return Some(i);
        }
        let (base, want) = split_version(name);
        let want = want?;
        self.instances
            .iter()
            .filter_map(|(n, inst)| {
                let (b, v) = split_version(n);
                let v = v?;
                (b == base && compatible(&want, &v)).then_some((v, inst))
            })
            .max_by(|a, b| a.0.cmp(&b.0))
            .map(|(_, i)| i)
    }

    /// All defined interface names (for error hints).
    pub(crate) fn instance_names(&self) -> impl Iterator<Item = &str> {
        self.instances.keys().map(|s| s.as_str())
    }
}

/// A parsed `major.minor.patch[-pre]` version.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Version {
    major: u64,
    minor: u64,
    patch: u64,
    pre: String,
}

/// Splits `ns:pkg/iface@1.2.3` into the name and its version.
pub(crate) fn split_version(name: &str) -> (&str, Option<Version>) {
    let Some((base, v)) = name.rsplit_once('@') else {
        return (name, None);
    };
    let (nums, pre) = v.split_once('-').unwrap_or((v, ""));
    let mut parts = nums.split('.').map(|p| p.parse::<u64>());
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(Ok(major)), Some(Ok(minor)), Some(Ok(patch)), None) => (
            base,
            Some(Version {
                major,
                minor,
                patch,
                pre: pre.to_string(),
            }),
        ),
        _ => (name, None),
    }
}

/// Semver compatibility as Cargo defines it: same major (and same minor while
/// the major is 0); prereleases match only exactly.
pub(crate) fn compatible(want: &Version, have: &Version) -> bool {
    if !want.pre.is_empty() || !have.pre.is_empty() {
        return want == have;
    }
    want.major == have.major && (want.major != 0 || want.minor == have.minor)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        split_version(&format!("x:y/z@{s}")).1.unwrap()
    }

    #[test]
    fn semver_compatibility() {
        assert!(compatible(&v("0.2.3"), &v("0.2.12")));
        assert!(compatible(&v("0.2.12"), &v("0.2.0")));
        assert!(!compatible(&v("0.2.3"), &v("0.3.0")));
        assert!(compatible(&v("1.0.0"), &v("1.4.2")));
        assert!(!compatible(&v("1.0.0"), &v("2.0.0")));
        assert!(!compatible(&v("0.2.0-rc-1"), &v("0.2.0")));
        assert_eq!(split_version("wasi:io/streams@0.2.3").0, "wasi:io/streams");
        assert_eq!(split_version("plain").1, None);
    }

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
