//! Rust types as component values, for typed host functions
//! ([`crate::LinkerInstance::func_wrap`]) and typed export calls.
//!
//! Every [`ComponentValue`] converts to and from [`Val`]; the hot types also
//! lift and lower straight between Rust and guest memory (`String`,
//! `Vec<u8>`, scalars), and all-scalar signatures become typed wasmi host
//! functions with no dynamic values at all.

use crate::canon::layout::{alignment, elem_size, field_offsets, flatten_types, MAX_FLAT_PARAMS, MAX_FLAT_RESULTS};
use crate::canon::lift::{check_tuple_ptr, lift_flat, load, load_list_from_range, FlatIter};
use crate::canon::lower::{lower_flat, store, store_list_into_range};
use crate::canon::state::{StoreCx, StoreData};
use crate::canon::strings::{load_string_from_range, store_string_into_range};
use crate::canon::{trap, Cx, Options, Site, Trap, MAX_LIST_BYTE_LENGTH};
use crate::values::Type;
use crate::values::Val;
use anyhow::{bail, Result};
use std::sync::Arc;
use wasmi::{AsContextMut, Caller, StoreContextMut};

fn val_err(e: anyhow::Error) -> Trap {
    trap!("{e:#}")
}

/// A Rust type that maps to one component value type.
pub trait ComponentValue: Sized + Send + Sync + 'static {
    /// The component type this Rust type stands for.
    fn ty() -> Type;
    fn from_val(v: &Val) -> Result<Self>;
    fn into_val(self) -> Val;

    /// The core type of a scalar (ignored unless [`Self::SCALAR`]).
    type Core: wasmi::WasmTy;
    /// Whether this is a scalar that flattens to exactly `Core`.
    const SCALAR: bool = false;
    fn from_core(_c: Self::Core) -> Result<Self, Trap> {
        Err(trap!("not a scalar"))
    }
    fn to_core(self) -> Self::Core {
        unreachable!("not a scalar")
    }

    fn lift<T>(cx: &mut Cx<'_, '_, T>, vi: &mut FlatIter<'_>) -> Result<Self, Trap> {
        Self::from_val(&lift_flat(cx, vi, &Self::ty())?).map_err(val_err)
    }
    fn load<T>(cx: &mut Cx<'_, '_, T>, ptr: u32) -> Result<Self, Trap> {
        Self::from_val(&load(cx, ptr, &Self::ty())?).map_err(val_err)
    }
    fn lower<T>(self, cx: &mut Cx<'_, '_, T>, out: &mut Vec<u64>) -> Result<(), wasmi::Error> {
        lower_flat(cx, &self.into_val(), &Self::ty(), out)
    }
    fn store<T>(self, cx: &mut Cx<'_, '_, T>, ptr: u32) -> Result<(), wasmi::Error> {
        store(cx, &self.into_val(), &Self::ty(), ptr)
    }
    /// Loads `len` elements at a checked `ptr`.
    fn load_list<T>(cx: &mut Cx<'_, '_, T>, ptr: u32, len: u32) -> Result<Vec<Self>, Trap> {
        load_list_from_range(cx, ptr, len, &Self::ty())?
            .iter()
            .map(|v| Self::from_val(v).map_err(val_err))
            .collect()
    }
    /// Allocates and stores a list; returns (ptr, len).
    fn store_list<T>(items: Vec<Self>, cx: &mut Cx<'_, '_, T>) -> Result<(u32, u32), wasmi::Error> {
        let vals: Vec<Val> = items.into_iter().map(Self::into_val).collect();
        store_list_into_range(cx, &vals, &Self::ty())
    }
}

/// Raw-bit conversions of the core value types (see [`FlatIter`]).
pub trait CoreBits: wasmi::WasmTy {
    fn from_raw(raw: u64) -> Self;
    fn to_raw(self) -> u64;
}
impl CoreBits for i32 {
    fn from_raw(raw: u64) -> Self {
        raw as u32 as i32
    }
    fn to_raw(self) -> u64 {
        self as u32 as u64
    }
}
impl CoreBits for i64 {
    fn from_raw(raw: u64) -> Self {
        raw as i64
    }
    fn to_raw(self) -> u64 {
        self as u64
    }
}
impl CoreBits for f32 {
    fn from_raw(raw: u64) -> Self {
        f32::from_bits(raw as u32)
    }
    fn to_raw(self) -> u64 {
        self.to_bits() as u64
    }
}
impl CoreBits for f64 {
    fn from_raw(raw: u64) -> Self {
        f64::from_bits(raw)
    }
    fn to_raw(self) -> u64 {
        self.to_bits()
    }
}

/// Scalars: one core value each. `from` lifts a core value (truncating small
/// integers, canonicalising NaNs, validating chars), `to` lowers it.
macro_rules! scalar {
    ($($t:ty => $v:ident, $ty:ident, $core:ty, |$c:ident| $from:expr, |$s:ident| $to:expr; { $($extra:tt)* })*) => {$(
        impl ComponentValue for $t {
            fn ty() -> Type { Type::$ty }
            fn from_val(v: &Val) -> Result<Self> {
                match v {
                    Val::$v(x) => Ok(*x),
                    other => bail!("expected {}, found {}", stringify!($ty).to_lowercase(), other.kind()),
                }
            }
            fn into_val(self) -> Val { Val::$v(self) }
            type Core = $core;
            const SCALAR: bool = true;
            fn from_core($c: $core) -> Result<Self, Trap> { $from }
            fn to_core(self) -> $core { let $s = self; $to }
            fn lift<T>(_: &mut Cx<'_, '_, T>, vi: &mut FlatIter<'_>) -> Result<Self, Trap> {
                Self::from_core(<$core as CoreBits>::from_raw(vi.take()?))
            }
            fn lower<T>(self, _: &mut Cx<'_, '_, T>, out: &mut Vec<u64>) -> Result<(), wasmi::Error> {
                out.push(self.to_core().to_raw());
                Ok(())
            }
            $($extra)*
        }
    )*};
}
scalar! {
    bool => Bool, Bool, i32, |c| Ok(c != 0), |s| s as i32; {}
    i8 => S8, S8, i32, |c| Ok(c as i8), |s| s as i32; {}
    u8 => U8, U8, i32, |c| Ok(c as u8), |s| s as i32; {
        // `list<u8>` moves as one block copy.
        fn load_list<T>(cx: &mut Cx<'_, '_, T>, ptr: u32, len: u32) -> Result<Vec<Self>, Trap> {
            Ok(cx.mem()?[ptr as usize..ptr as usize + len as usize].to_vec())
        }
        fn store_list<T>(items: Vec<Self>, cx: &mut Cx<'_, '_, T>) -> Result<(u32, u32), wasmi::Error> {
            let len = u32::try_from(items.len()).ok().filter(|&n| n as u64 <= MAX_LIST_BYTE_LENGTH)
                .ok_or_else(|| wasmi::Error::from(trap!("list too long to lower")))?;
            let ptr = cx.allocate(1, len)?;
            cx.check_alloc(ptr, 1, len as u64, "list")?;
            cx.write(ptr, &items)?;
            Ok((ptr, len))
        }
    }
    i16 => S16, S16, i32, |c| Ok(c as i16), |s| s as i32; {}
    u16 => U16, U16, i32, |c| Ok(c as u16), |s| s as i32; {}
    i32 => S32, S32, i32, |c| Ok(c), |s| s; {}
    u32 => U32, U32, i32, |c| Ok(c as u32), |s| s as i32; {}
    i64 => S64, S64, i64, |c| Ok(c), |s| s; {}
    u64 => U64, U64, i64, |c| Ok(c as u64), |s| s as i64; {}
    f32 => Float32, F32, f32, |c| Ok(crate::canon::lift::canonicalize_nan32(c)), |s| s; {}
    f64 => Float64, F64, f64, |c| Ok(crate::canon::lift::canonicalize_nan64(c)), |s| s; {}
    char => Char, Char, i32, |c| crate::canon::lift::convert_i32_to_char(c as u32), |s| s as i32; {}
}

impl ComponentValue for String {
    fn ty() -> Type {
        Type::String
    }
    fn from_val(v: &Val) -> Result<Self> {
        match v {
            Val::String(s) => Ok(s.clone()),
            other => bail!("expected string, found {}", other.kind()),
        }
    }
    fn into_val(self) -> Val {
        Val::String(self)
    }
    type Core = i32;
    fn lift<T>(cx: &mut Cx<'_, '_, T>, vi: &mut FlatIter<'_>) -> Result<Self, Trap> {
        let (ptr, units) = (vi.take()? as u32, vi.take()? as u32);
        load_string_from_range(cx, ptr, units)
    }
    fn load<T>(cx: &mut Cx<'_, '_, T>, ptr: u32) -> Result<Self, Trap> {
        let (begin, units) = (cx.load_u32(ptr)?, cx.load_u32(ptr + 4)?);
        load_string_from_range(cx, begin, units)
    }
    fn lower<T>(self, cx: &mut Cx<'_, '_, T>, out: &mut Vec<u64>) -> Result<(), wasmi::Error> {
        let (p, n) = store_string_into_range(cx, &self)?;
        out.extend([p as u64, n as u64]);
        Ok(())
    }
    fn store<T>(self, cx: &mut Cx<'_, '_, T>, ptr: u32) -> Result<(), wasmi::Error> {
        let (p, n) = store_string_into_range(cx, &self)?;
        cx.write(ptr, &p.to_le_bytes())?;
        cx.write(ptr + 4, &n.to_le_bytes())?;
        Ok(())
    }
}

/// Reads and checks the (ptr, len) of a list of `E`.
fn list_range<T, E: ComponentValue>(cx: &Cx<'_, '_, T>, ptr: u32, len: u32) -> Result<(), Trap> {
    let ty = E::ty();
    let byte_len = len as u64 * elem_size(&ty) as u64;
    if byte_len > MAX_LIST_BYTE_LENGTH {
        return Err(trap!("list byte length {byte_len} exceeds the maximum"));
    }
    cx.check_range(ptr, alignment(&ty), byte_len, "list")
}

impl<E: ComponentValue> ComponentValue for Vec<E> {
    fn ty() -> Type {
        Type::List(Arc::new(E::ty()))
    }
    fn from_val(v: &Val) -> Result<Self> {
        match v {
            Val::List(vs) => vs.iter().map(E::from_val).collect(),
            Val::Bytes(bs) => bs.iter().map(|b| E::from_val(&Val::U8(*b))).collect(),
            Val::Scalars(xs) => xs.iter().map(|x| E::from_val(&x)).collect(),
            other => bail!("expected list, found {}", other.kind()),
        }
    }
    fn into_val(self) -> Val {
        Val::List(self.into_iter().map(E::into_val).collect())
    }
    type Core = i32;
    fn lift<T>(cx: &mut Cx<'_, '_, T>, vi: &mut FlatIter<'_>) -> Result<Self, Trap> {
        let (ptr, len) = (vi.take()? as u32, vi.take()? as u32);
        list_range::<T, E>(cx, ptr, len)?;
        E::load_list(cx, ptr, len)
    }
    fn load<T>(cx: &mut Cx<'_, '_, T>, ptr: u32) -> Result<Self, Trap> {
        let (begin, len) = (cx.load_u32(ptr)?, cx.load_u32(ptr + 4)?);
        list_range::<T, E>(cx, begin, len)?;
        E::load_list(cx, begin, len)
    }
    fn lower<T>(self, cx: &mut Cx<'_, '_, T>, out: &mut Vec<u64>) -> Result<(), wasmi::Error> {
        let (p, n) = E::store_list(self, cx)?;
        out.extend([p as u64, n as u64]);
        Ok(())
    }
    fn store<T>(self, cx: &mut Cx<'_, '_, T>, ptr: u32) -> Result<(), wasmi::Error> {
        let (p, n) = E::store_list(self, cx)?;
        cx.write(ptr, &p.to_le_bytes())?;
        cx.write(ptr + 4, &n.to_le_bytes())?;
        Ok(())
    }
}

impl<E: ComponentValue> ComponentValue for Option<E> {
    fn ty() -> Type {
        Type::Option(Arc::new(E::ty()))
    }
    fn from_val(v: &Val) -> Result<Self> {
        match v {
            Val::Option(o) => o.as_deref().map(E::from_val).transpose(),
            other => bail!("expected option, found {}", other.kind()),
        }
    }
    fn into_val(self) -> Val {
        Val::Option(self.map(|v| Box::new(v.into_val())))
    }
    type Core = i32;
}

impl<O: ComponentValue, E: ComponentValue> ComponentValue for std::result::Result<O, E> {
    fn ty() -> Type {
        Type::Result {
            ok: Some(Arc::new(O::ty())),
            err: Some(Arc::new(E::ty())),
        }
    }
    fn from_val(v: &Val) -> Result<Self> {
        match v {
            Val::Result(Ok(Some(v))) => Ok(Ok(O::from_val(v)?)),
            Val::Result(Err(Some(e))) => Ok(Err(E::from_val(e)?)),
            other => bail!("expected result with payloads, found {}", other.kind()),
        }
    }
    fn into_val(self) -> Val {
        Val::Result(match self {
            Ok(v) => Ok(Some(Box::new(v.into_val()))),
            Err(e) => Err(Some(Box::new(e.into_val()))),
        })
    }
    type Core = i32;
}

/// Function parameters: a tuple of [`ComponentValue`]s.
pub trait ComponentParams: Sized + Send + Sync + 'static {
    /// The parameter types, in order.
    fn types() -> Vec<Type>;
    fn from_vals(vs: &[Val]) -> Result<Self>;
    fn into_vals(self) -> Vec<Val>;
    /// Lifts from flat core values.
    fn lift_params<T>(cx: &mut Cx<'_, '_, T>, vi: &mut FlatIter<'_>) -> Result<Self, Trap>;
    /// Lowers to flat core values (when they fit in 16).
    fn lower_params<T>(self, cx: &mut Cx<'_, '_, T>, out: &mut Vec<u64>) -> Result<(), wasmi::Error>;
    /// Loads from a tuple in memory (params spilled beyond 16 flat values).
    fn load_params<T>(cx: &mut Cx<'_, '_, T>, ptr: u32) -> Result<Self, Trap>;
    /// For all-scalar signatures: a typed wasmi host function.
    fn scalar_func<T: 'static, R: ComponentResult>(
        store: StoreContextMut<'_, StoreData<T>>,
        instance: usize,
        f: Arc<WrapFn<T, Self, R>>,
    ) -> Option<wasmi::Func>;
}

/// The closure of a typed host function.
pub type WrapFn<T, P, R> = dyn Fn(StoreCx<'_, T>, P) -> Result<R> + Send + Sync;

/// A function result: `()` for none, else one [`ComponentValue`].
pub trait ComponentResult: Sized + Send + Sync + 'static {
    fn ty() -> Option<Type>;
    fn push_vals(self, out: &mut Vec<Val>);
    fn from_vals(vs: &[Val]) -> Result<Self>;
    /// Lifts the result from flat values, or through the returned pointer
    /// when `spilled`.
    fn lift_result<T>(cx: &mut Cx<'_, '_, T>, vi: &mut FlatIter<'_>, spilled: bool) -> Result<Self, Trap>;
    /// Lowers the result to flat values, or stores it at `retptr`.
    fn lower_result<T>(
        self,
        cx: &mut Cx<'_, '_, T>,
        retptr: Option<u32>,
        out: &mut Vec<u64>,
    ) -> Result<(), wasmi::Error>;
    const SCALAR: bool;
    type CoreRet: wasmi::WasmRet;
    fn core_ret(r: Result<Self, wasmi::Error>) -> Self::CoreRet;
}

impl ComponentResult for () {
    fn ty() -> Option<Type> {
        None
    }
    fn push_vals(self, _: &mut Vec<Val>) {}
    fn from_vals(vs: &[Val]) -> Result<Self> {
        if !vs.is_empty() {
            bail!("expected no result, found {}", vs.len());
        }
        Ok(())
    }
    fn lift_result<T>(_: &mut Cx<'_, '_, T>, _: &mut FlatIter<'_>, _: bool) -> Result<Self, Trap> {
        Ok(())
    }
    fn lower_result<T>(self, _: &mut Cx<'_, '_, T>, _: Option<u32>, _: &mut Vec<u64>) -> Result<(), wasmi::Error> {
        Ok(())
    }
    const SCALAR: bool = true;
    type CoreRet = Result<(), wasmi::Error>;
    fn core_ret(r: Result<Self, wasmi::Error>) -> Self::CoreRet {
        r
    }
}

impl<V: ComponentValue> ComponentResult for V {
    fn ty() -> Option<Type> {
        Some(V::ty())
    }
    fn push_vals(self, out: &mut Vec<Val>) {
        out.push(self.into_val());
    }
    fn from_vals(vs: &[Val]) -> Result<Self> {
        match vs {
            [v] => V::from_val(v),
            _ => bail!("expected one result, found {}", vs.len()),
        }
    }
    fn lift_result<T>(cx: &mut Cx<'_, '_, T>, vi: &mut FlatIter<'_>, spilled: bool) -> Result<Self, Trap> {
        if spilled {
            let ptr = vi.take()? as u32;
            check_tuple_ptr(cx, ptr, &V::ty())?;
            V::load(cx, ptr)
        } else {
            V::lift(cx, vi)
        }
    }
    fn lower_result<T>(
        self,
        cx: &mut Cx<'_, '_, T>,
        retptr: Option<u32>,
        out: &mut Vec<u64>,
    ) -> Result<(), wasmi::Error> {
        match retptr {
            Some(ptr) => {
                check_tuple_ptr(cx, ptr, &V::ty())?;
                self.store(cx, ptr)
            }
            None => self.lower(cx, out),
        }
    }
    const SCALAR: bool = V::SCALAR;
    type CoreRet = Result<V::Core, wasmi::Error>;
    fn core_ret(r: Result<Self, wasmi::Error>) -> Self::CoreRet {
        r.map(V::to_core)
    }
}

fn may_leave<T>(caller: &Caller<'_, StoreData<T>>, instance: usize) -> Result<(), wasmi::Error> {
    if !caller.data().rt.instances[instance].may_leave {
        return Err(trap!("cannot leave component instance").into());
    }
    // A guest that touched a guarded page stops before the host acts.
    caller.data().rt.memories.check()?;
    Ok(())
}

macro_rules! params {
    ($n:literal; $($t:ident $c:ident),*) => {
        impl<$($t: ComponentValue),*> ComponentParams for ($($t,)*) {
            fn types() -> Vec<Type> { vec![$($t::ty()),*] }
            #[allow(non_snake_case, unused_variables, unused_mut)]
            fn from_vals(vs: &[Val]) -> Result<Self> {
                if vs.len() != $n {
                    bail!("expected {} arguments, found {}", $n, vs.len());
                }
                let mut it = vs.iter();
                Ok(($($t::from_val(it.next().expect("length checked"))?,)*))
            }
            #[allow(non_snake_case)]
            fn into_vals(self) -> Vec<Val> {
                let ($($t,)*) = self;
                vec![$($t.into_val()),*]
            }
            #[allow(unused_variables)]
            fn lift_params<T>(cx: &mut Cx<'_, '_, T>, vi: &mut FlatIter<'_>) -> Result<Self, Trap> {
                Ok(($($t::lift(cx, vi)?,)*))
            }
            #[allow(non_snake_case, unused_variables)]
            fn lower_params<T>(self, cx: &mut Cx<'_, '_, T>, out: &mut Vec<u64>) -> Result<(), wasmi::Error> {
                let ($($t,)*) = self;
                $($t.lower(cx, out)?;)*
                Ok(())
            }
            #[allow(unused_variables, unused_mut)]
            fn load_params<T>(cx: &mut Cx<'_, '_, T>, ptr: u32) -> Result<Self, Trap> {
                let types = Self::types();
                check_tuple_ptr(cx, ptr, &Type::Tuple(types.clone().into()))?;
                let mut offsets = field_offsets(types.iter()).into_iter();
                Ok(($($t::load(cx, ptr + offsets.next().expect("one per field"))?,)*))
            }
            #[allow(non_snake_case, unused_variables, unused_mut)]
            fn scalar_func<T: 'static, R: ComponentResult>(
                store: StoreContextMut<'_, StoreData<T>>,
                instance: usize,
                f: Arc<WrapFn<T, Self, R>>,
            ) -> Option<wasmi::Func> {
                if !(true $(&& $t::SCALAR)* && R::SCALAR) {
                    return None;
                }
                Some(wasmi::Func::wrap(store, move |mut caller: Caller<'_, StoreData<T>>, $($c: $t::Core),*| -> R::CoreRet {
                    let r = (|| {
                        may_leave(&caller, instance)?;
                        let params = ($($t::from_core($c)?,)*);
                        crate::canon::trap::guarded(|| f(StoreCx(caller.as_context_mut()), params))
                    })();
                    R::core_ret(r)
                }))
            }
        }
    };
}
params!(0;);
params!(1; A a);
params!(2; A a, B b);
params!(3; A a, B b, C c);
params!(4; A a, B b, C c, D d);
params!(5; A a, B b, C c, D d, E e);
params!(6; A a, B b, C c, D d, E e, F f);

/// Builds the core function for `canon lower` of a typed host function whose
/// Rust signature is exactly the guest's type: a typed wasmi function for
/// all-scalar signatures, else direct typed lifting and lowering (no `Val`s).
pub(crate) fn lower_typed<T: 'static, P: ComponentParams, R: ComponentResult>(
    mut store: StoreContextMut<'_, StoreData<T>>,
    opts: Options,
    f: Arc<WrapFn<T, P, R>>,
) -> wasmi::Func {
    if let Some(func) = P::scalar_func(store.as_context_mut(), opts.instance, f.clone()) {
        return func;
    }
    let param_types = P::types();
    let result_type = R::ty();
    let spilled = flatten_types(param_types.iter()).len() > MAX_FLAT_PARAMS;
    let retptr = flatten_types(result_type.iter()).len() > MAX_FLAT_RESULTS;
    let ty = crate::values::FuncType::new(
        param_types.iter().map(|t| (String::new(), t.clone())).collect(),
        result_type,
    );
    let core_ty = crate::component::calls::lowered_core_type(&ty);
    wasmi::Func::new(
        store,
        core_ty,
        move |mut caller: Caller<'_, StoreData<T>>, params, results| {
            may_leave(&caller, opts.instance)?;
            let raw: Vec<u64> = params.iter().map(crate::component::calls::from_wasmi_val).collect();
            let mut vi = FlatIter::new(&raw);
            let mut cx = Cx::new(caller.as_context_mut(), &opts, Site::Host);
            let args = if spilled {
                let ptr = vi.take()? as u32;
                P::load_params(&mut cx, ptr)?
            } else {
                P::lift_params(&mut cx, &mut vi)?
            };
            let r = crate::canon::trap::guarded(|| f(StoreCx(caller.as_context_mut()), args))?;
            let ret = if retptr { Some(vi.take()? as u32) } else { None };
            let mut cx = Cx::new(caller.as_context_mut(), &opts, Site::Host);
            let mut flat = Vec::new();
            r.lower_result(&mut cx, ret, &mut flat)?;
            if let (Some(slot), Some(&v)) = (results.first_mut(), flat.first()) {
                *slot = match slot {
                    wasmi::Val::I64(_) => wasmi::Val::I64(v as i64),
                    wasmi::Val::F32(_) => wasmi::Val::F32(f32::from_bits(v as u32).into()),
                    wasmi::Val::F64(_) => wasmi::Val::F64(f64::from_bits(v).into()),
                    _ => wasmi::Val::I32(v as u32 as i32),
                };
            }
            Ok(())
        },
    )
}
