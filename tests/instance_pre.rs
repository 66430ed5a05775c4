//! `Linker::instantiate_pre`: a component's imports resolved once, then
//! instantiated in any number of stores (on any thread), each instance its
//! own; a missing import is reported before any store exists, also one
//! after aliases of the imported instances (as tools emit them); the linker
//! changing afterwards does not reach it; an import that follows a
//! per-instance item is still resolved, at instantiation.

use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
use std::sync::Arc;
use wippy_wasm::{Component, Engine, Linker, Store, Val};

/// Imports `next` (a host counter) and exports `bump`, which adds its
/// argument to a global of its own and returns the sum and `next`.
const COUNTER: &str = r#"(component
  (import "next" (func $next (result u32)))
  (core func $next_lowered (canon lower (func $next)))
  (core instance $host (export "next" (func $next_lowered)))
  (core module $m
    (import "host" "next" (func $next (result i32)))
    (global $sum (mut i32) (i32.const 0))
    (func (export "bump") (param i32) (result i64)
      (global.set $sum (i32.add (global.get $sum) (local.get 0)))
      (i64.or
        (i64.shl (i64.extend_i32_u (global.get $sum)) (i64.const 32))
        (i64.extend_i32_u (call $next)))))
  (core instance $i (instantiate $m (with "host" (instance $host))))
  (func (export "bump") (param "n" u32) (result u64) (canon lift (core func $i "bump")))
)"#;

fn bump(store: &mut Store<()>, instance: &wippy_wasm::Instance, n: u32) -> (u32, u32) {
    let f = instance.get_func(&*store, "bump").unwrap();
    match f.call(store, &[Val::U32(n)]).unwrap().as_slice() {
        [Val::U64(v)] => ((v >> 32) as u32, *v as u32),
        other => panic!("bump returned {other:?}"),
    }
}

fn counting_linker(from: u32) -> (Linker<()>, Arc<AtomicU32>) {
    let calls = Arc::new(AtomicU32::new(from));
    let mut linker = Linker::default();
    let c = calls.clone();
    linker
        .root()
        .func_wrap("next", move |_, (): ()| Ok(c.fetch_add(1, SeqCst)));
    (linker, calls)
}

#[test]
fn one_pre_instantiates_in_many_stores_each_instance_its_own() {
    let engine = Engine::default();
    let component = Component::new(&engine, COUNTER.as_bytes()).unwrap();
    let (linker, calls) = counting_linker(0);
    let pre = linker.instantiate_pre(&component).unwrap();
    drop(linker);
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let (pre, engine) = (pre.clone(), engine.clone());
            std::thread::spawn(move || {
                for _ in 0..25 {
                    let mut store = Store::new(&engine, ());
                    let instance = pre.instantiate(&mut store).unwrap();
                    // The global starts at 0 in every instance.
                    assert_eq!(bump(&mut store, &instance, t + 1).0, t + 1);
                    assert_eq!(bump(&mut store, &instance, 10).0, t + 11);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    // Every instance called the one host function.
    assert_eq!(calls.load(SeqCst), 4 * 25 * 2);
}

#[test]
fn a_missing_import_is_reported_before_any_store() {
    let engine = Engine::default();
    let component = Component::new(&engine, COUNTER.as_bytes()).unwrap();
    let err = Linker::<()>::default().instantiate_pre(&component).err().unwrap();
    let msg = format!("{err:#}");
    assert!(msg.contains("import `next`"), "{msg}");
    assert!(msg.contains("func() -> u32") || msg.contains("function"), "{msg}");
}

#[test]
fn a_linker_changed_afterwards_does_not_reach_a_pre() {
    let engine = Engine::default();
    let component = Component::new(&engine, COUNTER.as_bytes()).unwrap();
    let (mut linker, _) = counting_linker(100);
    let pre = linker.instantiate_pre(&component).unwrap();
    linker.root().func_wrap("next", |_, (): ()| Ok(7u32));
    let mut store = Store::new(&engine, ());
    let from_pre = pre.instantiate(&mut store).unwrap();
    assert_eq!(bump(&mut store, &from_pre, 1).1, 100, "the definition it was made with");
    let mut store = Store::new(&engine, ());
    let from_linker = linker.instantiate(&mut store, &component).unwrap();
    assert_eq!(bump(&mut store, &from_linker, 1).1, 7, "the linker's new definition");
}

#[test]
fn an_import_after_a_per_instance_item_is_resolved_at_instantiation() {
    // The resource type is made per instance, so the import after it is
    // not resolved ahead; it must still be found, and missing, reported.
    let text = COUNTER.replacen(
        r#"(import "next""#,
        r#"(type $r (resource (rep i32)))
  (import "next""#,
        1,
    );
    let engine = Engine::default();
    let component = Component::new(&engine, text.as_bytes()).unwrap();
    let (linker, _) = counting_linker(5);
    let pre = linker.instantiate_pre(&component).unwrap();
    let mut store = Store::new(&engine, ());
    let instance = pre.instantiate(&mut store).unwrap();
    assert_eq!(bump(&mut store, &instance, 2), (2, 5));
    let pre = Linker::<()>::default().instantiate_pre(&component).unwrap();
    let err = pre.instantiate(&mut Store::new(&engine, ())).err().unwrap();
    assert!(format!("{err:#}").contains("import `next`"), "{err:#}");
}

#[test]
fn a_real_components_imports_are_all_resolved_ahead() {
    // wit-component aliases each imported interface's resource types before
    // the next import: the C proxy imports wasi:io/error, then (after an
    // alias) wasi:io/streams, then (after two) wasi:http/types. With only
    // wasi:io defined, the pre itself must fail, on the last of them.
    let engine = Engine::default();
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/c_http/proxy.wasm");
    let component = Component::new(&engine, &std::fs::read(path).unwrap()).unwrap();
    let mut linker = Linker::<wippy_wasm::wasi::WasiCtx>::default();
    wippy_wasm::wasi::io::add_to_linker(&mut linker);
    let err = linker
        .instantiate_pre(&component)
        .err()
        .expect("wasi:http/types is missing");
    assert!(format!("{err:#}").contains("wasi:http/types"), "{err:#}");
    wippy_wasm::wasi::add_to_linker(&mut linker).unwrap();
    let pre = linker.instantiate_pre(&component).unwrap();
    let mut store = Store::new(&engine, wippy_wasm::wasi::WasiCtx::new());
    let instance = pre.instantiate(&mut store).unwrap();
    assert!(instance.get_func(&store, "wasi:http/incoming-handler#handle").is_some());
}
