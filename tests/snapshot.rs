//! A store reset to its snapshot is indistinguishable from a fresh
//! instance: secrets written to memory (a data segment's word and an
//! untouched page) and to a mutable global are gone, the memory's image is
//! back; a memory that grew, a handle kept, or a module that changes
//! tables make the reset refuse (the instance must be dropped instead).

use std::path::PathBuf;
use wippy_wasm::{Component, Engine, Linker, Store, Val};

fn remember() -> (Store<()>, wippy_wasm::Instance) {
    let engine = Engine::default();
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/guests/remember.wat");
    let component = Component::new(&engine, &std::fs::read(path).unwrap()).unwrap();
    let mut store = Store::new(&engine, ());
    let instance = Linker::default().instantiate(&mut store, &component).unwrap();
    (store, instance)
}

fn call(store: &mut Store<()>, instance: &wippy_wasm::Instance, name: &str, args: &[Val]) -> Vec<Val> {
    let f = instance.get_func(store, name).unwrap();
    f.call(store, args).unwrap()
}

fn recall(store: &mut Store<()>, instance: &wippy_wasm::Instance) -> Val {
    call(store, instance, "recall", &[]).remove(0)
}

fn words(a: u32, b: u32, c: u32) -> Val {
    Val::Tuple(vec![Val::U32(a), Val::U32(b), Val::U32(c)])
}

#[test]
fn a_reset_store_forgets_secrets_in_memory_and_globals() {
    let (mut store, instance) = remember();
    let snapshot = store.snapshot().unwrap();
    assert_eq!(recall(&mut store, &instance), words(5, 7, 0), "the image");
    for secret in [42, 0xdead_beef] {
        call(&mut store, &instance, "remember", &[Val::U32(secret)]);
        assert_eq!(recall(&mut store, &instance), words(secret, secret, secret));
        assert!(store.reset(&snapshot));
        assert_eq!(recall(&mut store, &instance), words(5, 7, 0), "after a reset, as fresh");
    }
    // Only the pages holding data are kept.
    assert!(snapshot.image_bytes() <= 8192, "{}", snapshot.image_bytes());
}

#[test]
fn releasing_zero_pages_changes_nothing_a_guest_sees() {
    let (mut store, instance) = remember();
    call(&mut store, &instance, "remember", &[Val::U32(42)]);
    store.release_zero_pages();
    assert_eq!(recall(&mut store, &instance), words(42, 42, 42));
}

#[test]
fn a_grown_memory_or_a_kept_handle_cannot_be_reset() {
    let (mut store, instance) = remember();
    let snapshot = store.snapshot().unwrap();
    call(&mut store, &instance, "grow", &[]);
    assert!(!store.reset(&snapshot), "memory.size would differ");

    let (mut store, instance) = remember();
    let snapshot = store.snapshot().unwrap();
    call(&mut store, &instance, "keep", &[]);
    assert!(!store.reset(&snapshot), "a handle survives in the table");
}

#[test]
fn a_module_that_changes_tables_gets_no_snapshot() {
    let engine = Engine::default();
    let wat = r#"(component
      (core module $M (table 1 funcref) (func (export "f") (table.set 0 (i32.const 0) (ref.null func))))
      (core instance $m (instantiate $M))
      (func (export "f") (canon lift (core func $m "f"))))"#;
    let component = Component::new(&engine, wat.as_bytes()).unwrap();
    let mut store = Store::new(&engine, ());
    Linker::default().instantiate(&mut store, &component).unwrap();
    let err = store.snapshot().err().expect("refused");
    assert!(err.to_string().contains("changes tables"), "{err}");
}

/// A registry whose `swap(x)` entries return what the previous call left
/// (in memory and in a global) and leave `x`: a component and a core
/// module (run natively), with the pool `pool`.
fn swap_registry(pool: &str) -> wippy_wasm::registry::Registry {
    let dir = std::env::temp_dir().join(format!("wippy-snapshot-{}-{}", std::process::id(), pool.len()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let core = r#"(module (memory (export "memory") 1) (global $g (mut i32) (i32.const 7))
        (func (export "swap") (param i32) (result i32)
          (local $old i32)
          (local.set $old (i32.add (i32.load (i32.const 60000)) (global.get $g)))
          (i32.store (i32.const 60000) (local.get 0))
          (global.set $g (local.get 0))
          (local.get $old)))"#;
    let component = format!(
        "(component (core module $M {}) (core instance $m (instantiate $M)) \
         (func (export \"swap\") (param \"x\" u32) (result u32) (canon lift (core func $m \"swap\"))))",
        &core["(module".len()..core.len() - 1]
    );
    std::fs::write(dir.join("swap.wat"), component).unwrap();
    std::fs::write(dir.join("core.wat"), core).unwrap();
    std::fs::write(
        dir.join("_index.yaml"),
        format!(
            "namespace: s\nentries:\n  - name: component\n    kind: function.wat\n    source: file://swap.wat\n    method: swap\n    pool: {pool}\n  - name: core\n    kind: function.wat\n    source: file://core.wat\n    wit: \"swap: func(x: u32) -> u32;\"\n    method: swap\n    pool: {pool}\n"
        ),
    )
    .unwrap();
    wippy_wasm::registry::Registry::load(&dir).unwrap()
}

#[test]
fn registry_calls_with_fresh_instances_share_nothing() {
    use serde_json::json;
    // Shared (the default), one instance carries the secret to the next call.
    let shared = swap_registry("{type: inline}");
    for id in ["s:component", "s:core"] {
        assert_eq!(shared.call_json(id, &[json!(1000)]).unwrap(), json!(7), "{id}");
        assert_eq!(shared.call_json(id, &[json!(5)]).unwrap(), json!(2000), "{id}");
    }
    // Fresh, every call sees the state after instantiation, and the
    // instance is reused (reset), not made again.
    let fresh = swap_registry("{type: inline, fresh_instances: true}");
    for id in ["s:component", "s:core"] {
        for secret in [1000, 5, 123456] {
            assert_eq!(fresh.call_json(id, &[json!(secret)]).unwrap(), json!(7), "{id}");
        }
        let stats = fresh.pool_stats(id).unwrap();
        assert_eq!((stats.created, stats.live), (1, 1), "{id}: {stats:?}");
    }
}
