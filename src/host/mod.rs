//! Helpers for host implementations.

pub mod table;
