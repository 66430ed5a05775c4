//! Component instantiation, the third layer: parsing and validation
//! ([`parse`]), validator types to runtime types ([`typeconv`]), the runtime
//! instantiator ([`instantiate`]), the values it makes ([`func`]), the call
//! protocols of `canon lift` / `canon lower` / `resource.*` ([`calls`]),
//! component-to-component adapter modules ([`adapter`]), what the host
//! provides to imports ([`host`]), core module subtyping for imported
//! modules ([`matching`]) and interface-name versions ([`names`]).
//! Built on [`crate::canon`] and [`crate::dispatch`]; the embedding API
//! ([`crate::runtime`]) wraps it.

pub(crate) mod adapter;
pub(crate) mod calls;
pub(crate) mod core_export;
pub(crate) mod func;
pub mod host;
pub(crate) mod instantiate;
pub(crate) mod matching;
pub(crate) mod memories;
pub mod names;
pub(crate) mod parse;
pub(crate) mod rewrite;
pub(crate) mod typeconv;
pub mod wrap;
