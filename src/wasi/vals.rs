//! Helpers every WASI host shares: the WASI version and interface names,
//! and conversions between handles, results and bytes and [`Val`]s.

use crate::values::{ResourceAny, ResourceType, Val};
use anyhow::{anyhow, Result};

/// The WASI version whose WIT the hosts implement; guests importing any
/// semver-compatible `0.2.x` link to it.
pub const VERSION: &str = "0.2.12";

/// `ns:pkg/iface@VERSION`.
pub(crate) fn iface(name: &str) -> String {
    format!("{name}@{VERSION}")
}

pub(crate) fn rep(v: &Val) -> Result<u32> {
    match v {
        Val::Resource(r) => Ok(r.rep),
        other => Err(anyhow!("expected a resource handle, got {}", other.kind())),
    }
}

pub(crate) fn own(ty: &ResourceType, rep: u32) -> Val {
    Val::Resource(ResourceAny {
        ty: ty.clone(),
        rep,
        own: true,
    })
}

pub(crate) fn ok(v: Option<Val>) -> Val {
    Val::Result(Ok(v.map(Box::new)))
}

pub(crate) fn err(v: Val) -> Val {
    Val::Result(Err(Some(Box::new(v))))
}

pub(crate) fn u64_arg(v: &Val) -> Result<u64> {
    match v {
        Val::U64(x) => Ok(*x),
        other => Err(anyhow!("expected u64, got {}", other.kind())),
    }
}

pub(crate) fn bytes_arg(v: &Val) -> Result<Vec<u8>> {
    match v {
        Val::Bytes(b) => Ok(b.clone()),
        Val::List(items) => items
            .iter()
            .map(|b| match b {
                Val::U8(b) => Ok(*b),
                other => Err(anyhow!("expected u8, got {}", other.kind())),
            })
            .collect(),
        other => Err(anyhow!("expected list<u8>, got {}", other.kind())),
    }
}

/// Bytes for the guest, in the compact form that lowers with one copy.
pub(crate) fn bytes_val(bytes: Vec<u8>) -> Val {
    Val::Bytes(bytes)
}
