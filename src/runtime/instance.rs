//! Instances and their exported functions, as the embedder sees them.

use super::module::CoreModule;
use super::store::Store;
use super::typed::{ComponentParams, ComponentResult};
use crate::canon::layout::{flatten_types, MAX_FLAT_PARAMS, MAX_FLAT_RESULTS};
use crate::canon::state::{StoreCx, StoreData};
use crate::canon::trap::from_wasmi;
use crate::component::calls::{call_from_host, call_lifted, call_lifted_async};
use crate::component::func::{Export, FuncDef, InstanceValue};
use crate::component::names::{compatible, split_version};
use crate::values::{FuncType, ResourceType, Type, Val};
use anyhow::{anyhow, Context, Result};
use std::any::Any;
use std::sync::Arc;

/// An instantiated component.
pub struct Instance {
    pub(crate) id: usize,
    /// An `InstanceValue<T>` for the store's `T`.
    pub(crate) exports: Arc<dyn Any + Send + Sync>,
}

/// An exported component function.
pub struct Func {
    name: String,
    def: Arc<dyn Any + Send + Sync>,
    ty: FuncType,
}

impl Instance {
    fn value<T: 'static>(&self) -> Result<&InstanceValue<T>> {
        self.exports
            .downcast_ref::<InstanceValue<T>>()
            .ok_or_else(|| anyhow!("instance used with a store of another data type"))
    }

    /// Looks up an exported function by name: `f`, or `interface#f` for a
    /// function of an exported instance (`wasi:cli/run@0.2.0#run`). An
    /// interface name without a version, or with another semver-compatible
    /// one, matches too.
    pub fn get_func<T: 'static>(&self, _store: &Store<T>, name: &str) -> Option<Func> {
        let exports = self.value::<T>().ok()?;
        let found = match name.split_once('#') {
            Some((iface, f)) => match find_export(exports, iface)? {
                Export::Instance(i) => i.get(f).cloned(),
                _ => None,
            },
            None => exports.get(name).cloned(),
        }?;
        match found {
            Export::Func(def) => Some(Func {
                name: name.to_string(),
                ty: def.ty().clone(),
                def: def as Arc<dyn Any + Send + Sync>,
            }),
            _ => None,
        }
    }

    /// A typed handle to an exported function.
    ///
    /// # Errors
    /// If there is no such function.
    pub fn get_typed_func<T: 'static, P: ComponentParams, R: ComponentResult>(
        &self,
        store: &Store<T>,
        name: &str,
    ) -> Result<TypedFunc<P, R>> {
        let func = self
            .get_func(store, name)
            .ok_or_else(|| anyhow!("no exported function `{name}`"))?;
        let (params, result) = (P::types(), R::ty());
        if !func.ty.param_types().eq(params.iter()) || func.ty.result != result {
            let want = FuncType::new(params.into_iter().map(|t| (String::from("_"), t)).collect(), result);
            return Err(anyhow!("`{name}` has type {}, not {want}", func.ty));
        }
        let spilled = |ts: Vec<&Type>, max| flatten_types(ts.into_iter()).len() > max;
        Ok(TypedFunc {
            params_spilled: spilled(func.ty.param_types().collect(), MAX_FLAT_PARAMS),
            result_spilled: spilled(func.ty.result.iter().collect(), MAX_FLAT_RESULTS),
            func,
            _marker: std::marker::PhantomData,
        })
    }

    /// A core module the instance exports at its root.
    pub fn get_module<T: 'static>(&self, _store: &Store<T>, name: &str) -> Option<CoreModule> {
        match self.value::<T>().ok()?.get(name)? {
            Export::Module(m) => Some(CoreModule { inner: m.clone() }),
            _ => None,
        }
    }

    /// A resource type the instance exports at its root.
    pub fn get_resource<T: 'static>(&self, _store: &Store<T>, name: &str) -> Option<ResourceType> {
        match self.value::<T>().ok()?.get(name)? {
            Export::Type(rt) => rt.clone(),
            _ => None,
        }
    }

    /// Names of the root exports, in order.
    pub fn export_names<T: 'static>(&self) -> Vec<String> {
        self.value::<T>()
            .map(|v| v.exports.iter().map(|(n, _)| n.clone()).collect())
            .unwrap_or_default()
    }
}

fn find_export<'a, T>(exports: &'a InstanceValue<T>, iface: &str) -> Option<&'a Export<T>> {
    if let Some(e) = exports.get(iface) {
        return Some(e);
    }
    let (base, want) = split_version(iface);
    exports
        .exports
        .iter()
        .find(|(n, _)| {
            let (b, have) = split_version(n);
            b == base
                && match (&want, &have) {
                    (None, _) => true,
                    (Some(w), Some(h)) => compatible(w, h),
                    _ => false,
                }
        })
        .map(|(_, e)| e)
}

impl Func {
    /// A function value made outside a component instance's exports (a
    /// bare core module's lifted export).
    pub(crate) fn from_def<T: 'static>(name: &str, def: FuncDef<T>) -> Func {
        Func {
            name: name.to_string(),
            ty: def.ty().clone(),
            def: Arc::new(def) as Arc<dyn Any + Send + Sync>,
        }
    }

    /// The component-level type.
    pub fn ty(&self) -> &FuncType {
        &self.ty
    }

    /// Calls the function with dynamic values and returns its results.
    ///
    /// # Errors
    /// A trap in the guest (the message names the function), a canonical-ABI
    /// trap, a host function's error, or arguments that do not match the type.
    pub fn call<T: 'static>(&self, store: &mut Store<T>, args: &[Val]) -> Result<Vec<Val>> {
        self.call_ctx(&mut store.ctx(), args)
    }

    /// Calls the function as a task of the dispatcher: host functions defined
    /// with `func_async` suspend the guest while their futures wait, and with
    /// fuel metering (see [`Store::set_fuel_slice`]) a busy guest yields
    /// between slices.
    ///
    /// # Errors
    /// As [`Func::call`].
    pub async fn call_async<T: 'static>(&self, store: &mut Store<T>, args: &[Val]) -> Result<Vec<Val>> {
        let def = self
            .def
            .downcast_ref::<FuncDef<T>>()
            .ok_or_else(|| anyhow!("function used with a store of another data type"))?;
        self.check_args(args)?;
        let result = match def {
            FuncDef::Lifted(l) => call_lifted_async(&mut store.inner, l, args).await,
            FuncDef::Host { .. } => call_from_host(&mut store.ctx(), def, args),
        };
        result
            .map_err(from_wasmi)
            .with_context(|| format!("error while calling export `{}`", self.name))
    }

    fn check_args(&self, args: &[Val]) -> Result<()> {
        if args.len() != self.ty.params.len() {
            return Err(anyhow!(
                "`{}` expects {} arguments ({}), got {}",
                self.name,
                self.ty.params.len(),
                self.ty,
                args.len()
            ));
        }
        for ((name, t), v) in self.ty.params.iter().zip(args) {
            crate::canon::lower::type_check(v, t).with_context(|| format!("argument `{name}` of `{}`", self.name))?;
        }
        Ok(())
    }

    /// Calls the function from inside a host function (re-entering the
    /// store). Entering an instance that is already on the call stack traps,
    /// as the component model requires.
    pub fn call_in<T: 'static>(&self, cx: &mut StoreCx<'_, T>, args: &[Val]) -> Result<Vec<Val>> {
        self.call_ctx(&mut cx.0, args)
    }

    fn call_ctx<T: 'static>(
        &self,
        cx: &mut wasmi::StoreContextMut<'_, StoreData<T>>,
        args: &[Val],
    ) -> Result<Vec<Val>> {
        let def = self
            .def
            .downcast_ref::<FuncDef<T>>()
            .ok_or_else(|| anyhow!("function used with a store of another data type"))?;
        self.check_args(args)?;
        call_from_host(cx, def, args)
            .map_err(from_wasmi)
            .with_context(|| format!("error while calling export `{}`", self.name))
    }
}

/// A function with Rust parameter and result types, checked against the
/// export's type when it is looked up.
pub struct TypedFunc<P, R> {
    func: Func,
    params_spilled: bool,
    result_spilled: bool,
    _marker: std::marker::PhantomData<fn(P) -> R>,
}

impl<P: ComponentParams, R: ComponentResult> TypedFunc<P, R> {
    /// Calls the function; arguments and results move between Rust values
    /// and guest memory without dynamic `Val`s.
    pub fn call<T: 'static>(&self, store: &mut Store<T>, params: P) -> Result<R> {
        let lifted = match self.func.def.downcast_ref::<FuncDef<T>>() {
            Some(FuncDef::Lifted(l)) if !self.params_spilled => l,
            _ => {
                let out = self.func.call(store, &params.into_vals())?;
                return R::from_vals(&out);
            }
        };
        let spilled = self.result_spilled;
        call_lifted(
            &mut store.ctx(),
            lifted,
            |cx| {
                let mut out = Vec::with_capacity(lifted.core_params.len());
                params.lower_params(cx, &mut out)?;
                Ok(out)
            },
            |cx, vi| R::lift_result(cx, vi, spilled),
        )
        .map_err(from_wasmi)
        .with_context(|| format!("error while calling export `{}`", self.func.name))
    }
}

impl std::fmt::Debug for Instance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Instance").field("id", &self.id).finish()
    }
}

impl std::fmt::Debug for Func {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Func({}: {})", self.name, self.ty)
    }
}
