//! The embedding API, the top layer of the engine: [`Engine`], [`Component`],
//! [`Store`], [`Linker`], [`InstancePre`], [`Instance`], [`Func`] and [`CoreModule`], and typed Rust values
//! ([`typed`]). Everything below it ([`crate::values`], [`crate::canon`],
//! [`crate::component`]) is the machinery these types drive.

pub mod component;
pub mod engine;
pub mod instance;
pub mod instance_pre;
pub mod linker;
pub mod module;
pub mod snapshot;
pub mod store;
pub mod typed;

pub use component::Component;
pub use engine::{Config, Engine};
pub use instance::{Func, Instance, TypedFunc};
pub use instance_pre::InstancePre;
pub use linker::{Linker, LinkerInstance};
pub use module::CoreModule;
pub use snapshot::Snapshot;
pub use store::Store;
