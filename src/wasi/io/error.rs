//! `wasi:io/error`: the `error` resource behind `last-operation-failed`.

use super::table::{get, table_resource, IoView};
use crate::values::{ResourceType, Val};
use crate::Linker;
use std::any::Any;

/// `wasi:io/error.error`: a description of what failed, and the error code
/// of the group it came from, which that group's `*-error-code` function
/// reads back ([`IoError::code`]). `wasi:io` never looks inside the code.
pub struct IoError {
    message: String,
    code: Option<Box<dyn Any + Send + Sync>>,
}

impl IoError {
    /// An error with no group's code.
    pub fn new(message: impl Into<String>) -> Self {
        IoError {
            message: message.into(),
            code: None,
        }
    }

    /// An error carrying `code`, a group's own error code type.
    pub fn with_code(message: impl Into<String>, code: impl Any + Send + Sync) -> Self {
        IoError {
            message: message.into(),
            code: Some(Box::new(code)),
        }
    }

    /// An I/O failure that no group claimed: the `std::io::Error` itself is
    /// the code (groups may map it, as `filesystem-error-code` does).
    pub fn from_io(e: std::io::Error) -> Self {
        IoError::with_code(e.to_string(), e)
    }

    /// The code, if it is a `C`.
    pub fn code<C: 'static>(&self) -> Option<&C> {
        self.code.as_ref()?.downcast_ref()
    }

    pub fn message(&self) -> &str {
        &self.message
    }
}

pub(super) fn add_to_linker<T: IoView>(linker: &mut Linker<T>) -> ResourceType {
    let inst = linker.instance(&crate::wasi::vals::iface("wasi:io/error"));
    let error = table_resource::<T, IoError>(inst, "error");
    inst.func_new("[method]error.to-debug-string", |mut cx, args, out| {
        let e = get::<T, IoError>(&mut cx, &args[0])?;
        out.push(Val::String(e.message.clone()));
        Ok(())
    });
    error
}
