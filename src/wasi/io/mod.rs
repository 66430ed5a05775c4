//! `wasi:io` — `error`, `poll` and `streams`: the base every other WASI group
//! builds on, and names none of them.
//!
//! The host objects behind the three resources are open: a group brings its
//! own pollables ([`Subscribe`]), stream ends ([`HostInputStream`],
//! [`HostOutputStream`]) and error codes (any type, attached to an
//! [`IoError`] and read back by the group's `*-error-code` function), as
//! `wasmtime-wasi-io` does. Hosts see the table through [`IoView`].

mod error;
mod poll;
mod streams;
mod table;

pub use error::IoError;
pub use poll::{wait_any, BoxFuture, Pollable, Signal, Subscribe};
pub use streams::{
    ClosedInput, HostInputStream, HostOutputStream, InputStream, MemoryInput, OutputStream, Read, StreamError,
    StreamResult, WRITE_BUDGET,
};

pub(crate) use table::{get, get_mut, table_resource};
pub use table::{IoView, Types};

use super::vals::iface;
use crate::Linker;

/// Defines `wasi:io/error`, `poll` and `streams` in `linker`; returns their
/// resource types.
pub fn add_to_linker<T: IoView>(linker: &mut Linker<T>) -> Types {
    let error = error::add_to_linker(linker);
    let pollable = poll::add_to_linker(linker);
    let streams = linker.instance(&iface("wasi:io/streams"));
    let types = Types {
        error,
        pollable,
        input_stream: table_resource::<T, InputStream>(streams, "input-stream"),
        output_stream: table_resource::<T, OutputStream>(streams, "output-stream"),
    };
    streams::add_to_linker(linker, &types);
    types
}
