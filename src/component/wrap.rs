//! Building components from core modules with `wit-component`: a wasip1
//! program wrapped with the preview1 adapter, or a core module given a WIT
//! signature.

use anyhow::{Context, Result};

/// Whether `bytes` are a core wasm module (not a component).
pub(crate) fn is_core_module(bytes: &[u8]) -> bool {
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
    if imports_preview1(core) {
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

/// Whether a core module imports WASI preview 1 (`wasi_snapshot_preview1`).
pub fn imports_preview1(core: &[u8]) -> bool {
    wasmparser::Parser::new(0).parse_all(core).any(|p| match p {
        Ok(wasmparser::Payload::ImportSection(s)) => s
            .into_iter()
            .flatten()
            .flat_map(|group| group.into_iter())
            .any(|i| i.is_ok_and(|(_, i)| i.module == "wasi_snapshot_preview1")),
        _ => false,
    })
}
