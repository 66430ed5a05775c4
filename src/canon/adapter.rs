//! Component-to-component adapters.
//!
//! When one component lowers a function another component lifted, the core
//! function the caller imports is a small generated wasm module:
//!
//! ```text
//! (func $adapter (param <caller flat params>) (result <caller flat results>)
//!   (call $lower_args  (local.get 0) ... )   ;; host: lift from caller, enter callee, lower into callee
//!   (call $callee)                           ;; the callee's core function: a wasm-to-wasm call
//!   (call $lower_results (... [retptr])))    ;; host: lift from callee, lower into caller, post-return, leave
//! ```
//!
//! The callee runs on the same wasm stack as its caller, so the whole chain
//! stays inside one wasmi execution and a host call deep in it can suspend the
//! chain (resumable calls). The value transfer reuses the canonical ABI code in
//! this module's siblings; its host helpers only call back into wasm for
//! `realloc` and `post-return`, which may not call imports (`may_leave` is
//! cleared), so they never need to suspend.

use super::layout::{flatten_functype, flatten_types, Flat, MAX_FLAT_RESULTS};
use crate::types::FuncType;
use std::collections::HashMap;
use std::sync::Mutex;
use wasm_encoder::{
    CodeSection, EntityType, ExportKind, ExportSection, Function, FunctionSection, ImportSection,
    Instruction, Module, TypeSection, ValType,
};

fn val(f: Flat) -> ValType {
    match f {
        Flat::I32 => ValType::I32,
        Flat::I64 => ValType::I64,
        Flat::F32 => ValType::F32,
        Flat::F64 => ValType::F64,
    }
}

/// The core signatures an adapter joins.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct AdapterShape {
    /// The caller's lowered signature (the adapter's own).
    pub lower: (Vec<Flat>, Vec<Flat>),
    /// The callee's lifted signature.
    pub lift: (Vec<Flat>, Vec<Flat>),
    /// Whether the caller passes a return pointer as its last parameter.
    pub retptr: bool,
}

impl AdapterShape {
    pub fn of(ty: &FuncType) -> Self {
        let lower = flatten_functype(ty, true);
        let lift = flatten_functype(ty, false);
        let retptr = flatten_types(ty.result.iter()).len() > MAX_FLAT_RESULTS;
        AdapterShape {
            lower,
            lift,
            retptr,
        }
    }

    /// Parameters of the `lower_results` helper: the callee's flat results,
    /// then the caller's return pointer if any.
    pub fn results_helper_params(&self) -> Vec<Flat> {
        let mut p = self.lift.1.clone();
        if self.retptr {
            p.push(Flat::I32);
        }
        p
    }

    /// Encodes the adapter module. Imports `"" "callee"`, `"" "lower_args"`,
    /// `"" "lower_results"`; exports `"adapter"`.
    pub fn encode(&self) -> Vec<u8> {
        let mut types = TypeSection::new();
        let vals = |v: &[Flat]| v.iter().map(|f| val(*f)).collect::<Vec<_>>();
        types.ty().function(vals(&self.lift.0), vals(&self.lift.1)); // 0: callee
        types.ty().function(vals(&self.lower.0), vals(&self.lift.0)); // 1: lower_args
        types
            .ty()
            .function(vals(&self.results_helper_params()), vals(&self.lower.1)); // 2: lower_results
        types
            .ty()
            .function(vals(&self.lower.0), vals(&self.lower.1)); // 3: adapter
        let mut imports = ImportSection::new();
        imports.import("", "callee", EntityType::Function(0));
        imports.import("", "lower_args", EntityType::Function(1));
        imports.import("", "lower_results", EntityType::Function(2));
        let mut funcs = FunctionSection::new();
        funcs.function(3);
        let mut exports = ExportSection::new();
        exports.export("adapter", ExportKind::Func, 3);
        let mut body = Function::new([]);
        for i in 0..self.lower.0.len() as u32 {
            body.instruction(&Instruction::LocalGet(i));
        }
        body.instruction(&Instruction::Call(1));
        body.instruction(&Instruction::Call(0));
        if self.retptr {
            body.instruction(&Instruction::LocalGet(self.lower.0.len() as u32 - 1));
        }
        body.instruction(&Instruction::Call(2));
        body.instruction(&Instruction::End);
        let mut code = CodeSection::new();
        code.function(&body);
        let mut m = Module::new();
        m.section(&types)
            .section(&imports)
            .section(&funcs)
            .section(&exports)
            .section(&code);
        m.finish()
    }
}

/// Compiled adapter modules, one per shape, shared by all instantiations.
#[derive(Default)]
pub struct AdapterCache {
    modules: Mutex<HashMap<AdapterShape, wasmi::Module>>,
}

impl AdapterCache {
    pub fn module(
        &self,
        engine: &wasmi::Engine,
        shape: &AdapterShape,
    ) -> Result<wasmi::Module, wasmi::Error> {
        let mut map = self.modules.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(m) = map.get(shape) {
            return Ok(m.clone());
        }
        let m = wasmi::Module::new(engine, shape.encode())?;
        map.insert(shape.clone(), m.clone());
        Ok(m)
    }
}
