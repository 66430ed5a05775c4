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
