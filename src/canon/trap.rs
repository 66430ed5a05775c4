//! Errors that cross wasm frames: canonical-ABI traps, host functions'
//! own errors, and turning wasmi's errors back into them.

use std::fmt;

/// A trap raised by a rule of the canonical ABI (or a guest-visible runtime
/// rule). Carries the message the spec tests match on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trap(pub String);

impl fmt::Display for Trap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Trap {}
impl wasmi::errors::HostError for Trap {}

/// Builds a [`Trap`] from a format string.
macro_rules! trap {
    ($($arg:tt)*) => { $crate::canon::trap::Trap(format!($($arg)*)) };
}
pub(crate) use trap;

/// Converts a trap into a `wasmi::Error` that host functions can return.
pub fn to_wasmi(t: Trap) -> wasmi::Error {
    wasmi::Error::host(t)
}

impl From<Trap> for wasmi::Error {
    fn from(t: Trap) -> Self {
        wasmi::Error::host(t)
    }
}

/// A host function failed: carries the host's error through wasm frames.
#[derive(Debug)]
pub struct HostFault(pub anyhow::Error);

impl fmt::Display for HostFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#}", self.0)
    }
}
impl wasmi::errors::HostError for HostFault {}

/// Runs a host function, turning its error — or a panic, e.g. from a guest
/// importing it at an unexpected type — into a trap rather than taking the
/// host down.
pub(crate) fn guarded<R>(f: impl FnOnce() -> anyhow::Result<R>) -> Result<R, wasmi::Error> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(r) => r.map_err(|e| wasmi::Error::host(HostFault(e))),
        Err(_) => Err(wasmi::Error::host(HostFault(anyhow::anyhow!(
            "a host function panicked"
        )))),
    }
}

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
