//! Component function values and instance exports, as instantiation makes
//! them and the call protocols and the embedding API use them.

use super::host::HostFunc;
use super::parse::ComponentDef;
use crate::canon::layout::Flat;
use crate::canon::Options;
use crate::values::{FuncType, ResourceType};
use std::sync::Arc;

/// A function lifted from core wasm by `canon lift`.
pub(crate) struct Lifted {
    pub ty: FuncType,
    pub core: wasmi::Func,
    pub opts: Options,
    /// The core signature of `core` (the flattened lift signature).
    pub core_params: Vec<Flat>,
    pub core_results: Vec<Flat>,
}

/// A component function value.
pub(crate) enum FuncDef<T> {
    Lifted(Lifted),
    Host { ty: FuncType, func: HostFunc<T> },
}

impl<T> FuncDef<T> {
    pub fn ty(&self) -> &FuncType {
        match self {
            FuncDef::Lifted(l) => &l.ty,
            FuncDef::Host { ty, .. } => ty,
        }
    }
}

/// A value in one of the component index spaces, as exported or imported.
pub(crate) enum Export<T> {
    Func(Arc<FuncDef<T>>),
    Instance(Arc<InstanceValue<T>>),
    /// A type export: resources carry their runtime type.
    Type(Option<ResourceType>),
    Module(wasmi::Module),
    Component(ComponentValue),
}

impl<T> Clone for Export<T> {
    fn clone(&self) -> Self {
        match self {
            Export::Func(f) => Export::Func(f.clone()),
            Export::Instance(i) => Export::Instance(i.clone()),
            Export::Type(t) => Export::Type(t.clone()),
            Export::Module(m) => Export::Module(m.clone()),
            Export::Component(c) => Export::Component(c.clone()),
        }
    }
}

/// A component instance's exports, in order.
pub(crate) struct InstanceValue<T> {
    pub exports: Vec<(String, Export<T>)>,
}

impl<T> InstanceValue<T> {
    pub fn get(&self, name: &str) -> Option<&Export<T>> {
        self.exports.iter().find(|(n, _)| n == name).map(|(_, e)| e)
    }
}

/// A component definition together with the outer scopes its `alias outer`
/// items refer to.
#[derive(Clone)]
pub(crate) struct ComponentValue {
    pub def: Arc<ComponentDef>,
    pub outer: Option<Arc<Outer>>,
}

/// Snapshot of an enclosing component's module and component index spaces.
pub(crate) struct Outer {
    pub modules: Vec<wasmi::Module>,
    pub components: Vec<ComponentValue>,
    pub parent: Option<Arc<Outer>>,
}
