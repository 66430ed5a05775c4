//! wippy-wasm: a WebAssembly Component Model runtime on the wasmi interpreter.
//!
//! Load a [`Component`], define host functions in a [`Linker`], instantiate
//! into a [`Store`], and call exports with [`Val`]s or Rust types.

pub mod canon;
pub mod component;
pub mod engine;
pub mod error;
pub mod host;
pub mod inspect;
pub mod limits;
pub mod linker;
pub mod store;
pub mod typed;
pub mod types;
pub mod val;
pub mod wast;

pub use component::instance::{Func, Instance, TypedFunc};
pub use component::Component;
pub use engine::{Config, Engine};
pub use host::table::{Resource, ResourceTable, TableError};
pub use limits::Limits;
pub use linker::{Linker, LinkerInstance};
pub use store::{Store, StoreCx};
pub use types::{FuncType, ResourceType, Type};
pub use val::{ResourceAny, Val};
