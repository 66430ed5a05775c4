//! The bottom layer: component-model value types ([`Type`], [`FuncType`],
//! [`ResourceType`]) and dynamic values ([`Val`]). Plain data; everything
//! above (the canonical ABI, instantiation, the embedding API, the hosts)
//! builds on it, and it names none of them.

pub mod types;
pub mod val;

pub use types::{Case, Field, FuncType, ResourceType, Type};
pub use val::{ResourceAny, Scalars, Val};
