//! Script values: arguments to invoke with, and results compared the way
//! the scripts mean (NaNs match NaNs, flags are sets).

use crate::Val;
use anyhow::{bail, Result};
use wast::component::WastVal;
use wast::core::{WastArgCore, WastRetCore};
use wast::{WastArg, WastRet};

pub(super) fn arg_val(a: &WastArg<'_>) -> Result<Val> {
    match a {
        WastArg::Component(v) => wast_val(v),
        WastArg::Core(WastArgCore::I32(i)) => Ok(Val::S32(*i)),
        WastArg::Core(WastArgCore::I64(i)) => Ok(Val::S64(*i)),
        _ => bail!("unsupported core argument"),
    }
}

/// Converts a script value into a [`Val`].
pub fn wast_val(v: &WastVal<'_>) -> Result<Val> {
    let boxed = |v: &Option<Box<WastVal<'_>>>| -> Result<Option<Box<Val>>> {
        v.as_deref().map(|v| wast_val(v).map(Box::new)).transpose()
    };
    Ok(match v {
        WastVal::Bool(b) => Val::Bool(*b),
        WastVal::U8(x) => Val::U8(*x),
        WastVal::S8(x) => Val::S8(*x),
        WastVal::U16(x) => Val::U16(*x),
        WastVal::S16(x) => Val::S16(*x),
        WastVal::U32(x) => Val::U32(*x),
        WastVal::S32(x) => Val::S32(*x),
        WastVal::U64(x) => Val::U64(*x),
        WastVal::S64(x) => Val::S64(*x),
        WastVal::F32(x) => Val::Float32(f32::from_bits(x.bits)),
        WastVal::F64(x) => Val::Float64(f64::from_bits(x.bits)),
        WastVal::Char(c) => Val::Char(*c),
        WastVal::String(s) => Val::String(s.to_string()),
        WastVal::List(vs) => Val::List(vs.iter().map(wast_val).collect::<Result<_>>()?),
        WastVal::Map(kvs) => Val::Map(
            kvs.iter()
                .map(|(k, v)| Ok((wast_val(k)?, wast_val(v)?)))
                .collect::<Result<_>>()?,
        ),
        WastVal::Record(fs) => Val::Record(
            fs.iter()
                .map(|(n, v)| Ok((n.to_string(), wast_val(v)?)))
                .collect::<Result<_>>()?,
        ),
        WastVal::Tuple(vs) => Val::Tuple(vs.iter().map(wast_val).collect::<Result<_>>()?),
        WastVal::Variant(n, v) => Val::Variant(n.to_string(), boxed(v)?),
        WastVal::Enum(n) => Val::Enum(n.to_string()),
        WastVal::Option(v) => Val::Option(boxed(v)?),
        WastVal::Result(Ok(v)) => Val::Result(Ok(boxed(v)?)),
        WastVal::Result(Err(v)) => Val::Result(Err(boxed(v)?)),
        WastVal::Flags(fs) => Val::Flags(fs.iter().map(|s| s.to_string()).collect()),
    })
}

pub(super) fn compare(got: &[Val], want: &[WastRet<'_>]) -> Result<()> {
    if got.len() != want.len() {
        bail!("expected {} results, got {}: {got:?}", want.len(), got.len());
    }
    for (g, w) in got.iter().zip(want) {
        let w = match w {
            WastRet::Component(v) => wast_val(v)?,
            WastRet::Core(WastRetCore::I32(i)) => Val::S32(*i),
            _ => bail!("unsupported expected result"),
        };
        if !same(g, &w) {
            bail!("expected {w}, got {g}");
        }
    }
    Ok(())
}

/// Equality where NaNs match NaNs and flags compare as sets.
fn same(a: &Val, b: &Val) -> bool {
    match (a, b) {
        (Val::Float32(x), Val::Float32(y)) => (x.is_nan() && y.is_nan()) || x.to_bits() == y.to_bits(),
        (Val::Float64(x), Val::Float64(y)) => (x.is_nan() && y.is_nan()) || x.to_bits() == y.to_bits(),
        (Val::Bytes(_), Val::List(_)) | (Val::List(_), Val::Bytes(_)) | (Val::Bytes(_), Val::Bytes(_)) => a == b,
        (Val::Scalars(s), other) | (other, Val::Scalars(s)) => same(&Val::List(s.iter().collect()), other),
        (Val::List(x), Val::List(y)) | (Val::Tuple(x), Val::Tuple(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b))
        }
        (Val::Record(x), Val::Record(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|((n, a), (m, b))| n == m && same(a, b))
        }
        (Val::Map(x), Val::Map(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|((k1, v1), (k2, v2))| same(k1, k2) && same(v1, v2))
        }
        (Val::Variant(n, x), Val::Variant(m, y)) => n == m && same_opt(x, y),
        (Val::Option(x), Val::Option(y)) => same_opt(x, y),
        (Val::Result(Ok(x)), Val::Result(Ok(y))) | (Val::Result(Err(x)), Val::Result(Err(y))) => same_opt(x, y),
        (Val::Flags(x), Val::Flags(y)) => {
            let mut x = x.clone();
            let mut y = y.clone();
            x.sort();
            y.sort();
            x == y
        }
        _ => a == b,
    }
}

fn same_opt(a: &Option<Box<Val>>, b: &Option<Box<Val>>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => same(a, b),
        (None, None) => true,
        _ => false,
    }
}
