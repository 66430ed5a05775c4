//! Rust types as component values: conversions used by typed host functions
//! ([`crate::LinkerInstance::func_wrap`]) and typed export calls.

use crate::val::Val;
use anyhow::{bail, Result};

/// A Rust type that maps to one component value type.
pub trait ComponentValue: Sized {
    fn from_val(v: &Val) -> Result<Self>;
    fn into_val(self) -> Val;
}

macro_rules! prim {
    ($($t:ty => $v:ident),*) => {$(
        impl ComponentValue for $t {
            fn from_val(v: &Val) -> Result<Self> {
                match v {
                    Val::$v(x) => Ok(x.clone()),
                    other => bail!("expected {}, found {}", stringify!($t), other.kind()),
                }
            }
            fn into_val(self) -> Val { Val::$v(self) }
        }
    )*};
}
prim!(bool => Bool, i8 => S8, u8 => U8, i16 => S16, u16 => U16, i32 => S32, u32 => U32, i64 => S64, u64 => U64,
      f32 => Float32, f64 => Float64, char => Char, String => String);

impl<T: ComponentValue> ComponentValue for Vec<T> {
    fn from_val(v: &Val) -> Result<Self> {
        match v {
            Val::List(vs) => vs.iter().map(T::from_val).collect(),
            other => bail!("expected list, found {}", other.kind()),
        }
    }
    fn into_val(self) -> Val {
        Val::List(self.into_iter().map(T::into_val).collect())
    }
}

impl<T: ComponentValue> ComponentValue for Option<T> {
    fn from_val(v: &Val) -> Result<Self> {
        match v {
            Val::Option(o) => o.as_deref().map(T::from_val).transpose(),
            other => bail!("expected option, found {}", other.kind()),
        }
    }
    fn into_val(self) -> Val {
        Val::Option(self.map(|v| Box::new(v.into_val())))
    }
}

impl<T: ComponentValue, E: ComponentValue> ComponentValue for std::result::Result<T, E> {
    fn from_val(v: &Val) -> Result<Self> {
        match v {
            Val::Result(Ok(Some(v))) => Ok(Ok(T::from_val(v)?)),
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
}

/// Function parameters as a tuple of [`ComponentValue`]s.
pub trait ComponentParams: Sized {
    fn from_vals(vs: &[Val]) -> Result<Self>;
    fn into_vals(self) -> Vec<Val>;
}

/// A function result: `()` for none, else one [`ComponentValue`].
pub trait ComponentResult: Sized {
    fn push_vals(self, out: &mut Vec<Val>);
    fn from_vals(vs: &[Val]) -> Result<Self>;
}

impl ComponentResult for () {
    fn push_vals(self, _: &mut Vec<Val>) {}
    fn from_vals(vs: &[Val]) -> Result<Self> {
        if !vs.is_empty() {
            bail!("expected no result, found {}", vs.len());
        }
        Ok(())
    }
}

impl<T: ComponentValue> ComponentResult for T {
    fn push_vals(self, out: &mut Vec<Val>) {
        out.push(self.into_val());
    }
    fn from_vals(vs: &[Val]) -> Result<Self> {
        match vs {
            [v] => T::from_val(v),
            _ => bail!("expected one result, found {}", vs.len()),
        }
    }
}

macro_rules! params {
    ($n:literal; $($t:ident),*) => {
        impl<$($t: ComponentValue),*> ComponentParams for ($($t,)*) {
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
        }
    };
}
params!(0;);
params!(1; A);
params!(2; A, B);
params!(3; A, B, C);
params!(4; A, B, C, D);
params!(5; A, B, C, D, E);
params!(6; A, B, C, D, E, F);
