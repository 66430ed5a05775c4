//! wippy-wasm: a WebAssembly Component Model runtime on the wasmi interpreter.
//!
//! Load a [`Component`], define host functions in a [`Linker`], instantiate
//! into a [`Store`], and call exports with [`Val`]s or Rust types.
//!
//! ```
//! use wippy_wasm::{Component, Engine, Linker, Store, Val};
//!
//! let engine = Engine::default();
//! let component = Component::new(&engine, br#"(component
//!   (import "double" (func $double (param "x" u32) (result u32)))
//!   (core func $double' (canon lower (func $double)))
//!   (core module $M
//!     (import "" "double" (func $double (param i32) (result i32)))
//!     (func (export "quad") (param i32) (result i32) (call $double (call $double (local.get 0)))))
//!   (core instance $m (instantiate $M (with "" (instance (export "double" (func $double'))))))
//!   (func (export "quad") (param "x" u32) (result u32) (canon lift (core func $m "quad"))))"#)?;
//!
//! let mut linker = Linker::<()>::default();
//! linker.root().func_wrap("double", |_, (x,): (u32,)| Ok(x * 2));
//! let mut store = Store::new(&engine, ());
//! let instance = linker.instantiate(&mut store, &component)?;
//!
//! let quad = instance.get_typed_func::<_, (u32,), u32>(&store, "quad")?;
//! assert_eq!(quad.call(&mut store, (5,))?, 20);
//! let dynamic = instance.get_func(&store, "quad").unwrap();
//! assert_eq!(dynamic.call(&mut store, &[Val::U32(1)])?, vec![Val::U32(4)]);
//! # Ok::<(), anyhow::Error>(())
//! ```

// The engine, bottom-up: values, the canonical ABI, the dispatcher,
// component instantiation, the embedding API.
pub mod canon;
pub mod component;
pub mod dispatch;
pub(crate) mod memory;
pub mod runtime;
pub mod values;

// Hosts and services built on the engine.
pub mod host;
pub mod pool;
pub mod registry;
pub mod serve;
pub mod wasi;

// The `wippy-wasm` command line (nothing above uses it).
pub mod cli;

pub use canon::limits::Limits;
pub use canon::state::StoreCx;
pub use host::table::{Resource, ResourceTable, TableError};
pub use runtime::{
    Component, Config, CoreModule, Engine, Func, Instance, InstancePre, Linker, LinkerInstance, Snapshot, Store,
    TypedFunc,
};
pub use values::{FuncType, ResourceAny, ResourceType, Scalars, Type, Val};
