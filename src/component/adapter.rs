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
//! [`crate::canon`]; its host helpers only call back into wasm for
//! `realloc` and `post-return`, which may not call imports (`may_leave` is
//! cleared), so they never need to suspend.

use crate::canon::layout::{flatten_functype, flatten_types, Flat, MAX_FLAT_RESULTS};
use crate::values::FuncType;
use std::collections::HashMap;
use std::sync::Mutex;
use wasm_encoder::{
    CodeSection, EntityType, ExportKind, ExportSection, Function, FunctionSection, ImportSection, Instruction, Module,
    TypeSection, ValType,
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
        AdapterShape { lower, lift, retptr }
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
        types.ty().function(vals(&self.lower.0), vals(&self.lower.1)); // 3: adapter
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
    pub fn module(&self, engine: &wasmi::Engine, shape: &AdapterShape) -> Result<wasmi::Module, wasmi::Error> {
        let mut map = self.modules.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(m) = map.get(shape) {
            return Ok(m.clone());
        }
        let m = wasmi::Module::new(engine, shape.encode())?;
        map.insert(shape.clone(), m.clone());
        Ok(m)
    }
}

#[cfg(test)]
mod tests {
    use crate::component::func::{Export, FuncDef, InstanceValue};
    use crate::{Component, Engine, Linker, Store};

    #[derive(Debug)]
    struct Suspend;
    impl std::fmt::Display for Suspend {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("suspend")
        }
    }
    impl std::error::Error for Suspend {}

    /// `$Caller.g` calls `$Callee.f` through an adapter; `f` calls the host
    /// import `wait`, which asks to suspend. The whole chain must pause as one
    /// resumable wasmi call and resume where it stopped.
    #[test]
    fn a_host_call_deep_in_a_composed_chain_suspends_the_whole_chain() {
        let wat = r#"(component
  (import "wait" (func $wait (result u32)))
  (component $Callee
    (import "wait" (func $wait (result u32)))
    (core func $wait' (canon lower (func $wait)))
    (core module $M
      (import "" "wait" (func $wait (result i32)))
      (func (export "f") (result i32) (i32.mul (call $wait) (i32.const 10))))
    (core instance $m (instantiate $M (with "" (instance (export "wait" (func $wait'))))))
    (func (export "f") (result u32) (canon lift (core func $m "f"))))
  (component $Caller
    (import "f" (func $f (result u32)))
    (core func $f' (canon lower (func $f)))
    (core module $M
      (import "" "f" (func $f (result i32)))
      (func (export "g") (result i32) (i32.add (call $f) (i32.const 1))))
    (core instance $m (instantiate $M (with "" (instance (export "f" (func $f'))))))
    (func (export "g") (result u32) (canon lift (core func $m "g"))))
  (instance $callee (instantiate $Callee (with "wait" (func $wait))))
  (instance $caller (instantiate $Caller (with "f" (func $callee "f"))))
  (func (export "g") (alias export $caller "g")))"#;
        let engine = Engine::default();
        let component = Component::new(&engine, wat.as_bytes()).unwrap();
        let mut linker = Linker::<()>::default();
        linker
            .root()
            .func_wrap("wait", |_, ()| -> anyhow::Result<u32> { Err(Suspend.into()) });
        let mut store = Store::new(&engine, ());
        let instance = linker.instantiate(&mut store, &component).unwrap();
        let exports = instance.exports.downcast_ref::<InstanceValue<()>>().unwrap();
        let Some(Export::Func(g)) = exports.get("g") else {
            panic!("no g")
        };
        let FuncDef::Lifted(g) = &**g else {
            panic!("g is lifted")
        };
        let mut out = [wasmi::Val::I32(0)];
        let call = g.core.call_resumable(&mut store.inner, &[], &mut out).unwrap();
        let wasmi::ResumableCall::HostTrap(paused) = call else {
            panic!("the chain did not suspend")
        };
        let fault = paused
            .host_error()
            .downcast_ref::<crate::canon::trap::HostFault>()
            .expect("host fault");
        assert!(fault.0.downcast_ref::<Suspend>().is_some());
        // Resume with the host's answer (the lowered core result of `wait`).
        let done = paused
            .resume(&mut store.inner, &[wasmi::Val::I32(4)], &mut out)
            .unwrap();
        assert!(matches!(done, wasmi::ResumableCall::Finished));
        assert_eq!(out[0].i32(), Some(41), "callee computed 4*10, caller added 1");
    }
}
