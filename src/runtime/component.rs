//! [`Component`]: a validated, compiled component, as the embedder loads it.

use super::engine::Engine;
use crate::component::adapter::AdapterCache;
use crate::component::names::split_version;
use crate::component::parse::{self, ComponentDef};
use crate::component::wrap::{adapt_preview1, is_core_module};
use anyhow::{Context, Result};
use std::path::Path;
use std::sync::Arc;

/// A validated, compiled component, ready to instantiate any number of times.
#[derive(Clone)]
pub struct Component {
    pub(crate) def: Arc<ComponentDef>,
    /// The engine's adapter modules, for component-to-component calls.
    pub(crate) adapters: Arc<AdapterCache>,
}

impl Component {
    /// Reads a component from its binary or text (`(component ...)`) form.
    ///
    /// # Errors
    /// Malformed or invalid input (the message names what is wrong and the
    /// offset and section where), a core module instead of a component, or
    /// use of WASI 0.3 async built-ins.
    pub fn new(engine: &Engine, bytes: &[u8]) -> Result<Self> {
        let bytes = if bytes.starts_with(b"\0asm") {
            std::borrow::Cow::Borrowed(bytes)
        } else {
            let text = std::str::from_utf8(bytes).context("input is neither a wasm binary nor UTF-8 text")?;
            std::borrow::Cow::Owned(parse_text(text)?)
        };
        let def = parse::parse(engine.wasmi(), &bytes)?;
        Ok(Component {
            def,
            adapters: engine.adapters(),
        })
    }

    /// Reads a program: a component, or a core wasm module importing
    /// `wasi_snapshot_preview1`, which is first wrapped into a
    /// `wasi:cli/command` component with the preview1 command adapter (as
    /// `wasm-tools component new --adapt` does). `wippy-wasm run` does not
    /// take this path for core modules: it runs them natively on
    /// [`crate::wasi::preview1`]; the adapter stays for programs that are
    /// components already, and for comparing the two.
    ///
    /// # Errors
    /// As [`Component::new`], or if a core module cannot be adapted.
    pub fn from_program(engine: &Engine, bytes: &[u8]) -> Result<Self> {
        if is_core_module(bytes) {
            let adapted = adapt_preview1(bytes)?;
            return Self::new(engine, &adapted);
        }
        Self::new(engine, bytes)
    }

    /// Reads a component from a file (binary or text).
    pub fn from_file(engine: &Engine, path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        Self::new(engine, &bytes).with_context(|| format!("cannot load {}", path.display()))
    }

    /// Whether the component exports interface `name` (`ns:pkg/iface`, at
    /// any version).
    pub fn exports_interface(&self, name: &str) -> bool {
        self.def.exports.iter().any(|(n, _, _)| split_version(n).0 == name)
    }

    /// The validator's type information for the root component.
    pub fn types(&self) -> &wasmparser::types::Types {
        &self.def.types
    }
}

/// Encodes component text, with a one-line error naming the position.
fn parse_text(text: &str) -> Result<Vec<u8>> {
    let one_line = |e: wast::Error| {
        let (line, col) = e.span().linecol_in(text);
        anyhow::anyhow!(
            "invalid component text: {} (at line {}, column {})",
            e.message(),
            line + 1,
            col + 1
        )
    };
    let buf = wast::parser::ParseBuffer::new(text).map_err(one_line)?;
    let mut wat: wast::Wat = wast::parser::parse(&buf).map_err(one_line)?;
    wat.encode().map_err(one_line)
}

impl std::fmt::Debug for Component {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Component")
            .field("imports", &self.def.imports.iter().map(|(n, _)| n).collect::<Vec<_>>())
            .field(
                "exports",
                &self.def.exports.iter().map(|(n, _, _)| n).collect::<Vec<_>>(),
            )
            .finish()
    }
}
