//! Components: loading ([`Component`]), instantiation and instances.

pub mod instance;
pub(crate) mod instantiate;
pub(crate) mod parse;
pub(crate) mod typeconv;

use crate::engine::Engine;
use anyhow::{Context, Result};
use std::path::Path;
use std::sync::Arc;

/// A validated, compiled component, ready to instantiate any number of times.
#[derive(Clone)]
pub struct Component {
    pub(crate) def: Arc<parse::ComponentDef>,
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
        Ok(Component { def })
    }

    /// Reads a program: a component, or a core wasm module importing
    /// `wasi_snapshot_preview1`, which is first wrapped into a
    /// `wasi:cli/command` component with the preview1 command adapter (as
    /// `wasm-tools component new --adapt` does).
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
        self.def
            .exports
            .iter()
            .any(|(n, _, _)| crate::linker::split_version(n).0 == name)
    }

    /// The validator's type information for the root component.
    pub fn types(&self) -> &wasmparser::types::Types {
        &self.def.types
    }
}

fn is_core_module(bytes: &[u8]) -> bool {
    bytes.len() >= 8 && bytes[..4] == *b"\0asm" && bytes[4..8] == [1, 0, 0, 0]
}

/// Wraps a wasm32-wasip1 core module with the preview1 command adapter.
pub fn adapt_preview1(core: &[u8]) -> Result<Vec<u8>> {
    let mut encoder = wit_component::ComponentEncoder::default();
    encoder
        .module(core)
        .context("cannot read the core module")?
        .adapter(
            "wasi_snapshot_preview1",
            wasi_preview1_component_adapter_provider::WASI_SNAPSHOT_PREVIEW1_COMMAND_ADAPTER,
        )
        .context("cannot load the preview1 adapter")?;
    let encoder = encoder
        .validate(true)
        .encode()
        .map_err(|e| anyhow::anyhow!("cannot adapt the wasip1 module to a component: {e:#}"));
    encoder
}

/// Wraps a core module into a component whose exports are the functions of
/// `signatures`, WIT function declarations such as `answer: func() -> s32;`
/// (one per line); a core module importing `wasi_snapshot_preview1` gets the
/// preview1 adapter too. Strings and lists need the module to export
/// `memory` and `cabi_realloc`, as the canonical ABI requires.
///
/// # Errors
/// Invalid WIT, or a module whose exports do not match the signatures.
pub fn componentize_core(core: &[u8], signatures: &str) -> Result<Vec<u8>> {
    let exports: String = signatures
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| format!("  export {l}\n"))
        .collect();
    let wit = format!("package wippy:entry;\nworld entry {{\n{exports}}}\n");
    let mut resolve = wit_parser::Resolve::default();
    let pkg = resolve
        .push_str("entry.wit", &wit)
        .map_err(|e| anyhow::anyhow!("invalid `wit` signature: {e:#}"))?;
    let world = resolve.select_world(&[pkg], Some("entry"))?;
    let mut module = core.to_vec();
    wit_component::embed_component_metadata(&mut module, &resolve, world, wit_component::StringEncoding::UTF8, false)?;
    let mut encoder = wit_component::ComponentEncoder::default();
    encoder.module(&module)?;
    let imports_preview1 = wasmparser::Parser::new(0).parse_all(core).any(|p| match p {
        Ok(wasmparser::Payload::ImportSection(s)) => s
            .into_iter()
            .flatten()
            .flat_map(|group| group.into_iter())
            .any(|i| i.is_ok_and(|(_, i)| i.module == "wasi_snapshot_preview1")),
        _ => false,
    });
    if imports_preview1 {
        encoder.adapter(
            "wasi_snapshot_preview1",
            wasi_preview1_component_adapter_provider::WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
        )?;
    }
    encoder
        .validate(true)
        .encode()
        .map_err(|e| anyhow::anyhow!("cannot wrap the core module with its `wit` signature: {e:#}"))
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
