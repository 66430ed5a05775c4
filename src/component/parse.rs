//! Reading a component: validation with `wasmparser`, core modules compiled by
//! wasmi, and the sections of each (nested) component kept in order as a list
//! of [`Item`]s for the instantiator to replay.

use anyhow::{anyhow, bail, Result};
use std::sync::Arc;
use wasmparser::{
    CanonicalFunction, CanonicalOption, ComponentAlias, ComponentExternalKind, ComponentOuterAliasKind, ComponentType,
    ComponentTypeRef, ExternalKind, Parser, Payload, ValidPayload, Validator, WasmFeatures,
};

/// One parsed component (possibly nested), with the validator's view of its
/// types.
pub struct ComponentDef {
    pub items: Vec<Item>,
    pub types: wasmparser::types::Types,
    /// Imports in order, with their names as written.
    pub imports: Vec<(String, ComponentTypeRef)>,
    pub exports: Vec<(String, ComponentExternalKind, u32)>,
}

/// A section entry, in the order the spec's linking semantics process them.
pub enum Item {
    Module(wasmi::Module),
    Component(Arc<ComponentDef>),
    CoreInstantiate {
        module: u32,
        args: Vec<(String, u32)>,
    },
    CoreFromExports(Vec<(String, ExternalKind, u32)>),
    Instantiate {
        component: u32,
        args: Vec<(String, ComponentExternalKind, u32)>,
    },
    FromExports(Vec<(String, ComponentExternalKind, u32)>),
    CoreAlias {
        kind: ExternalKind,
        instance: u32,
        name: String,
    },
    Alias {
        kind: ComponentExternalKind,
        instance: u32,
        name: String,
        type_index: Option<u32>,
    },
    OuterAlias {
        kind: ComponentOuterAliasKind,
        count: u32,
        index: u32,
    },
    Lift {
        core_func: u32,
        type_index: u32,
        options: Vec<CanonicalOption>,
    },
    Lower {
        func: u32,
        options: Vec<CanonicalOption>,
    },
    ResourceNew(u32),
    ResourceDrop(u32),
    ResourceRep(u32),
    Import {
        name: String,
        ty: ComponentTypeRef,
        type_index: Option<u32>,
    },
    Export {
        name: String,
        kind: ComponentExternalKind,
        index: u32,
        type_index: Option<u32>,
    },
    /// A resource type definition at `index` in the type index space.
    ResourceType {
        index: u32,
        dtor: Option<u32>,
    },
}

struct Builder {
    items: Vec<Item>,
    imports: Vec<(String, ComponentTypeRef)>,
    exports: Vec<(String, ComponentExternalKind, u32)>,
    /// Next index in the component type index space.
    type_count: u32,
}

impl Builder {
    fn new() -> Self {
        Builder {
            items: Vec::new(),
            imports: Vec::new(),
            exports: Vec::new(),
            type_count: 0,
        }
    }
    fn next_type(&mut self) -> u32 {
        self.type_count += 1;
        self.type_count - 1
    }
}

/// Features we validate with: the synchronous component model plus `map`
/// and fixed-length lists; async built-ins validate but are refused at load.
pub fn features() -> WasmFeatures {
    let mut f = WasmFeatures::default();
    f.set(WasmFeatures::CM_FIXED_LENGTH_LISTS, true);
    f.set(WasmFeatures::CM_MAP, true);
    f.set(WasmFeatures::CM_ASYNC, true);
    f.set(WasmFeatures::CM_ERROR_CONTEXT, true);
    f.set(WasmFeatures::CM_MORE_ASYNC_BUILTINS, true);
    f.set(WasmFeatures::CM_ASYNC_STACKFUL, true);
    f.set(WasmFeatures::CM_THREADING, true);
    f
}

fn section_name(p: &Payload<'_>) -> &'static str {
    match p {
        Payload::Version { .. } => "header",
        Payload::TypeSection(_) => "type section",
        Payload::ImportSection(_) => "import section",
        Payload::FunctionSection(_) => "function section",
        Payload::TableSection(_) => "table section",
        Payload::MemorySection(_) => "memory section",
        Payload::TagSection(_) => "tag section",
        Payload::GlobalSection(_) => "global section",
        Payload::ExportSection(_) => "export section",
        Payload::StartSection { .. } => "start section",
        Payload::ElementSection(_) => "element section",
        Payload::DataCountSection { .. } => "data count section",
        Payload::DataSection(_) => "data section",
        Payload::CodeSectionStart { .. } | Payload::CodeSectionEntry(_) => "code section",
        Payload::ModuleSection { .. } => "core module section",
        Payload::InstanceSection(_) => "core instance section",
        Payload::CoreTypeSection(_) => "core type section",
        Payload::ComponentSection { .. } => "component section",
        Payload::ComponentInstanceSection(_) => "component instance section",
        Payload::ComponentAliasSection(_) => "alias section",
        Payload::ComponentTypeSection(_) => "component type section",
        Payload::ComponentCanonicalSection(_) => "canonical function section",
        Payload::ComponentStartSection { .. } => "component start section",
        Payload::ComponentImportSection(_) => "component import section",
        Payload::ComponentExportSection(_) => "component export section",
        Payload::CustomSection(_) => "custom section",
        Payload::End(_) => "end of module or component",
        _ => "unknown section",
    }
}

fn wasm_err(e: wasmparser::BinaryReaderError, section: &str) -> anyhow::Error {
    // `cancellable` is an immediate of async built-ins only (waitable-set.wait,
    // thread.yield, ...): a component that trips on it is a WASI 0.3 one.
    let why = if e.message().contains("`cancellable`") {
        "unsupported: WASI 0.3 async built-in: "
    } else {
        ""
    };
    anyhow!(
        "{why}invalid component: {} (at offset {:#x}, in the {section})",
        e.message(),
        e.offset()
    )
}

/// Parses and validates a component binary. A core module (not a component)
/// is an error here; callers that accept modules check first.
pub fn parse(engine: &wasmi::Engine, bytes: &[u8]) -> Result<Arc<ComponentDef>> {
    if bytes.len() >= 8 && bytes[0..4] == *b"\0asm" && bytes[4..8] == [1, 0, 0, 0] {
        bail!("this is a core wasm module, not a component");
    }
    let mut validator = Validator::new_with_features(features());
    let mut stack: Vec<Builder> = Vec::new();
    // Byte ranges of core modules being read (module payloads are skipped
    // until their End; wasmi compiles and validates them).
    let mut module_depth: Vec<std::ops::Range<usize>> = Vec::new();
    let mut root: Option<Arc<ComponentDef>> = None;
    let mut section = "header";
    for payload in Parser::new(0).parse_all(bytes) {
        let payload = payload.map_err(|e| wasm_err(e, section))?;
        section = section_name(&payload);
        let valid = validator.payload(&payload).map_err(|e| wasm_err(e, section))?;
        if let ValidPayload::Func(..) = valid {
            // Function bodies are validated by wasmi when it compiles the module.
            continue;
        }
        if let Some(range) = module_depth.last() {
            if let Payload::End(_) = payload {
                let range = range.clone();
                module_depth.pop();
                let code = super::rewrite::prepare(&bytes[range.clone()])
                    .map_err(|e| anyhow!("core module at offset {:#x}: {e}", range.start))?;
                let module = wasmi::Module::new(engine, &code[..]).map_err(|e| {
                    // wasmi lacks some core proposals (exceptions, GC, threads, memory64, ...).
                    let why = if e.to_string().contains("proposal not enabled") {
                        "unsupported: "
                    } else {
                        ""
                    };
                    anyhow!("{why}core module at offset {:#x} cannot be compiled: {e}", range.start)
                })?;
                stack
                    .last_mut()
                    .expect("module inside a component")
                    .items
                    .push(Item::Module(module));
            }
            continue;
        }
        match payload {
            Payload::Version { encoding, .. } => {
                if encoding != wasmparser::Encoding::Component {
                    bail!("this is a core wasm module, not a component");
                }
                stack.push(Builder::new());
            }
            Payload::ModuleSection { unchecked_range, .. } => {
                module_depth.push(unchecked_range.start as usize..unchecked_range.end as usize)
            }
            Payload::ComponentSection { .. } => {}
            Payload::End(_) => {
                let types = match valid {
                    ValidPayload::End(types) => types,
                    _ => bail!("internal: component end without types"),
                };
                let b = stack.pop().expect("component on the stack");
                let def = Arc::new(ComponentDef {
                    items: b.items,
                    types,
                    imports: b.imports,
                    exports: b.exports,
                });
                match stack.last_mut() {
                    Some(parent) => parent.items.push(Item::Component(def)),
                    None => root = Some(def),
                }
            }
            other => {
                let b = stack.last_mut().expect("inside a component");
                read_section(b, other)?;
            }
        }
    }
    root.ok_or_else(|| anyhow!("invalid component: unexpected end of input"))
}

fn read_section(b: &mut Builder, payload: Payload<'_>) -> Result<()> {
    match payload {
        Payload::InstanceSection(s) => {
            for inst in s {
                b.items.push(match inst? {
                    wasmparser::Instance::Instantiate { module_index, args } => Item::CoreInstantiate {
                        module: module_index,
                        args: args.iter().map(|a| (a.name.to_string(), a.index)).collect(),
                    },
                    wasmparser::Instance::FromExports(exports) => {
                        Item::CoreFromExports(exports.iter().map(|e| (e.name.to_string(), e.kind, e.index)).collect())
                    }
                });
            }
        }
        Payload::ComponentInstanceSection(s) => {
            for inst in s {
                b.items.push(match inst? {
                    wasmparser::ComponentInstance::Instantiate { component_index, args } => Item::Instantiate {
                        component: component_index,
                        args: args.iter().map(|a| (a.name.to_string(), a.kind, a.index)).collect(),
                    },
                    wasmparser::ComponentInstance::FromExports(exports) => Item::FromExports(
                        exports
                            .iter()
                            .map(|e| (e.name.full_name().to_string(), e.kind, e.index))
                            .collect(),
                    ),
                });
            }
        }
        Payload::ComponentAliasSection(s) => {
            for alias in s {
                let item = match alias? {
                    ComponentAlias::InstanceExport {
                        kind,
                        instance_index,
                        name,
                    } => Item::Alias {
                        kind,
                        instance: instance_index,
                        name: name.to_string(),
                        type_index: (kind == ComponentExternalKind::Type).then(|| b.next_type()),
                    },
                    ComponentAlias::CoreInstanceExport {
                        kind,
                        instance_index,
                        name,
                    } => Item::CoreAlias {
                        kind,
                        instance: instance_index,
                        name: name.to_string(),
                    },
                    ComponentAlias::Outer { kind, count, index } => {
                        if kind == ComponentOuterAliasKind::Type {
                            b.next_type();
                        }
                        Item::OuterAlias { kind, count, index }
                    }
                };
                b.items.push(item);
            }
        }
        Payload::ComponentTypeSection(s) => {
            for ty in s {
                let index = b.next_type();
                if let ComponentType::Resource { dtor, .. } = ty? {
                    b.items.push(Item::ResourceType { index, dtor });
                }
            }
        }
        Payload::ComponentCanonicalSection(s) => {
            for canon in s {
                b.items.push(match canon? {
                    CanonicalFunction::Lift {
                        core_func_index,
                        type_index,
                        options,
                    } => {
                        refuse_async(&options)?;
                        Item::Lift {
                            core_func: core_func_index,
                            type_index,
                            options: options.to_vec(),
                        }
                    }
                    CanonicalFunction::Lower { func_index, options } => {
                        refuse_async(&options)?;
                        Item::Lower {
                            func: func_index,
                            options: options.to_vec(),
                        }
                    }
                    CanonicalFunction::ResourceNew { resource } => Item::ResourceNew(resource),
                    CanonicalFunction::ResourceDrop { resource } => Item::ResourceDrop(resource),
                    CanonicalFunction::ResourceRep { resource } => Item::ResourceRep(resource),
                    other => bail!(
                        "unsupported: this component uses the WASI 0.3 async / threading built-in `{}`, \
                         which this runtime (synchronous WASI 0.2) does not support",
                        builtin_name(&other)
                    ),
                });
            }
        }
        Payload::ComponentImportSection(s) => {
            for import in s {
                let import = import?;
                let name = import.name.full_name().to_string();
                let type_index = matches!(import.ty, ComponentTypeRef::Type(_)).then(|| b.next_type());
                b.imports.push((name.clone(), import.ty));
                b.items.push(Item::Import {
                    name,
                    ty: import.ty,
                    type_index,
                });
            }
        }
        Payload::ComponentExportSection(s) => {
            for export in s {
                let export = export?;
                let name = export.name.full_name().to_string();
                let type_index = (export.kind == ComponentExternalKind::Type).then(|| b.next_type());
                b.exports.push((name.clone(), export.kind, export.index));
                b.items.push(Item::Export {
                    name,
                    kind: export.kind,
                    index: export.index,
                    type_index,
                });
            }
        }
        Payload::ComponentStartSection { .. } => {
            bail!("unsupported: component start functions (component-model values)")
        }
        Payload::CoreTypeSection(_) | Payload::CustomSection(_) => {}
        other => bail!("unexpected {} in a component", section_name(&other)),
    }
    Ok(())
}

fn refuse_async(options: &[CanonicalOption]) -> Result<()> {
    if options
        .iter()
        .any(|o| matches!(o, CanonicalOption::Async | CanonicalOption::Callback(_)))
    {
        bail!("unsupported: this component uses the WASI 0.3 `async` canonical ABI option, which this runtime (synchronous WASI 0.2) does not support");
    }
    if options.iter().any(|o| matches!(o, CanonicalOption::Gc)) {
        bail!("unsupported: the GC canonical ABI option");
    }
    Ok(())
}

fn builtin_name(f: &CanonicalFunction) -> String {
    let dbg = format!("{f:?}");
    let head = dbg.split([' ', '{', '(']).next().unwrap_or("?").to_string();
    // CamelCase → dotted spec name, e.g. `TaskReturn` → `task.return`.
    let mut out = String::new();
    for (i, c) in head.chars().enumerate() {
        if c.is_uppercase() {
            if i > 0 {
                out.push(if out.contains('.') { '-' } else { '.' });
            }
            out.extend(c.to_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}
