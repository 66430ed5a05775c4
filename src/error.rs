//! Turning wasmi errors back into the errors our host functions raised.

use crate::canon::calls::HostFault;
use crate::canon::Trap;

/// Converts a wasmi error into an `anyhow::Error`, recovering a canonical-ABI
/// [`Trap`] or a host function's own error when that is what it carries.
pub fn from_wasmi(e: wasmi::Error) -> anyhow::Error {
    if let Some(t) = e.downcast_ref::<Trap>() {
        return anyhow::Error::new(t.clone());
    }
    if e.downcast_ref::<HostFault>().is_some() {
        if let Some(HostFault(inner)) = e.downcast::<HostFault>() {
            return inner;
        }
        unreachable!("checked above");
    }
    match e.as_trap_code() {
        Some(code) => anyhow::Error::new(Trap(format!("wasm trap: {code}"))),
        None => anyhow::anyhow!("{e}"),
    }
}
