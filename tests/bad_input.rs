//! Bad input gives one clear error and never panics: truncated, corrupted
//! and hostile binaries, wrong kinds of input, unsatisfied imports.

mod common;

use wippy_wasm::{Component, Engine, Linker, Store};

const GOOD: &str = r#"(component
  (import "host-add" (func $add (param "a" u32) (param "b" u32) (result u32)))
  (core func $add' (canon lower (func $add)))
  (core module $M
    (import "" "add" (func $add (param i32 i32) (result i32)))
    (memory (export "mem") 1)
    (func (export "run") (param i32) (result i32) (call $add (local.get 0) (i32.const 1))))
  (core instance $m (instantiate $M (with "" (instance (export "add" (func $add'))))))
  (func (export "run") (param "x" u32) (result u32) (canon lift (core func $m "run")))
)"#;

fn good_binary() -> Vec<u8> {
    wat::parse_str(GOOD).unwrap()
}

fn load(bytes: &[u8]) -> anyhow::Result<Component> {
    Component::new(&Engine::default(), bytes)
}

#[test]
fn truncated_binaries_name_the_offset_and_section() {
    let bin = good_binary();
    for len in 0..bin.len() {
        let r = std::panic::catch_unwind(|| load(&bin[..len]));
        // Cut at a section boundary, the prefix can be a valid component.
        let err = match r {
            Ok(Err(e)) => format!("{e:#}"),
            Ok(Ok(_)) => continue,
            Err(_) => panic!("panicked on a component truncated to {len} bytes"),
        };
        if len >= 8 {
            assert!(err.contains("offset"), "len {len}: {err}");
        }
    }
    let err = format!("{:#}", load(&bin[..bin.len() - 3]).unwrap_err());
    assert!(
        err.contains("unexpected end") && err.contains("offset 0x") && err.contains("section"),
        "{err}"
    );
}

#[test]
fn corrupted_binaries_never_panic() {
    let bin = good_binary();
    let engine = Engine::default();
    // A fixed xorshift sequence: deterministic mutations.
    let mut x: u64 = 0x9e3779b97f4a7c15;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for _ in 0..3000 {
        let mut m = bin.clone();
        for _ in 0..(1 + next() % 4) {
            let i = (next() as usize) % m.len();
            m[i] = next() as u8;
        }
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            if let Ok(c) = Component::new(&engine, &m) {
                let mut linker = Linker::<()>::default();
                linker
                    .root()
                    .func_wrap("host-add", |_, (a, b): (u32, u32)| Ok(a.wrapping_add(b)));
                let mut store = Store::new(&engine, ());
                if let Ok(i) = linker.instantiate(&mut store, &c) {
                    if let Some(f) = i.get_func(&store, "run") {
                        let _ = f.call(&mut store, &[wippy_wasm::Val::U32(1)]);
                    }
                }
            }
        }));
        assert!(outcome.is_ok(), "panicked on a mutated component: {m:?}");
    }
}

#[test]
fn wrong_kinds_of_input() {
    let err = format!("{:#}", load(b"hello, not wasm").unwrap_err());
    assert!(err.contains("expected `(`") || err.contains("expected"), "{err}");
    let err = format!("{:#}", load(&[0xff, 0xfe, 0x00, 0x01]).unwrap_err());
    assert!(err.contains("neither a wasm binary nor UTF-8 text"), "{err}");
    let core = std::fs::read(common::fixture("hello.wasm")).unwrap();
    let err = format!("{:#}", load(&core).unwrap_err());
    assert!(err.contains("core wasm module, not a component"), "{err}");
    let err = format!(
        "{:#}",
        Component::from_file(&Engine::default(), "/nonexistent/x.wasm")
            .err()
            .unwrap()
    );
    assert!(err.contains("cannot read /nonexistent/x.wasm"), "{err}");
}

#[test]
fn hostile_counts_are_refused_quickly() {
    // A component type section claiming 2^32-1 entries in 4 bytes.
    let mut bin = b"\0asm\x0d\x00\x01\x00".to_vec();
    bin.extend([0x07, 0x05, 0xff, 0xff, 0xff, 0xff, 0x0f]);
    let start = std::time::Instant::now();
    let err = format!("{:#}", load(&bin).unwrap_err());
    assert!(start.elapsed().as_secs() < 2);
    assert!(err.contains("offset"), "{err}");
}

#[test]
fn async_builtins_are_refused_with_a_clear_error() {
    let wat = r#"(component
  (core func $yield (canon thread.yield))
  (core module $M (import "" "y" (func (result i32))))
  (core instance (instantiate $M (with "" (instance (export "y" (func $yield)))))))"#;
    let err = format!("{:#}", load(wat.as_bytes()).unwrap_err());
    assert!(err.contains("WASI 0.3") && err.contains("thread.yield"), "{err}");
}

#[test]
fn unsatisfied_imports_name_the_import_and_its_type() {
    let engine = Engine::default();
    let c = Component::new(&engine, GOOD.as_bytes()).unwrap();
    let mut store = Store::new(&engine, ());
    let err = format!(
        "{:#}",
        Linker::<()>::default().instantiate(&mut store, &c).err().unwrap()
    );
    assert_eq!(
        err,
        "import `host-add` was not found in the host: expected a function of type func(a: u32, b: u32) -> u32"
    );

    let iface = r#"(component
  (import "wasi:cli/environment@0.2.3" (instance $env
    (export "get-arguments" (func (result (list string))))))
)"#;
    let c = Component::new(&engine, iface.as_bytes()).unwrap();
    let mut linker = Linker::<()>::default();
    linker.instance("wasi:cli/environment@0.2.9");
    let err = format!("{:#}", linker.instantiate(&mut store, &c).err().unwrap());
    assert_eq!(
        err,
        "import `wasi:cli/environment@0.2.3#get-arguments` was not found in the host: expected a function of type func() -> list<string>"
    );
    let mut linker = Linker::<()>::default();
    linker.instance("wasi:cli/environment@0.3.0");
    let err = format!("{:#}", linker.instantiate(&mut store, &c).err().unwrap());
    assert!(
        err.contains("the host has wasi:cli/environment@0.3.0, which is not semver-compatible"),
        "{err}"
    );
}

fn call_first_export(
    wat: &str,
    engine: &Engine,
    setup: impl FnOnce(&mut Store<()>),
) -> anyhow::Result<Vec<wippy_wasm::Val>> {
    let c = Component::new(engine, wat.as_bytes())?;
    let mut store = Store::new(engine, ());
    setup(&mut store);
    let i = Linker::<()>::default().instantiate(&mut store, &c)?;
    i.get_func(&store, "f").unwrap().call(&mut store, &[])
}

#[test]
fn huge_memories_are_refused_not_allocated() {
    let engine = Engine::default();
    let huge = r#"(component
  (core module $M (memory 65536) (func (export "f") (result i32) (memory.size)))
  (core instance $m (instantiate $M))
  (func (export "f") (result u32) (canon lift (core func $m "f"))))"#;
    let start = std::time::Instant::now();
    let err = format!("{:#}", call_first_export(huge, &engine, |_| {}).unwrap_err());
    assert!(err.contains("resource limiter denied"), "{err}");
    assert!(start.elapsed().as_secs() < 2, "refused without touching the memory");
    // Growth past the store's limit fails inside the guest (-1), and the
    // limit is the embedder's to set.
    let grow = r#"(component
  (core module $M (memory 1) (func (export "f") (result i32) (memory.grow (i32.const 100))))
  (core instance $m (instantiate $M))
  (func (export "f") (result s32) (canon lift (core func $m "f"))))"#;
    let small = wippy_wasm::Limits {
        memory_bytes: 2 << 20,
        ..Default::default()
    };
    let out = call_first_export(grow, &engine, |s| s.set_limits(small)).unwrap();
    assert_eq!(out, vec![wippy_wasm::Val::S32(-1)]);
    assert_eq!(
        call_first_export(grow, &engine, |_| {}).unwrap(),
        vec![wippy_wasm::Val::S32(1)]
    );
}

#[test]
fn endless_loops_stop_when_fuel_runs_out() {
    let mut config = wippy_wasm::Config::default();
    config.consume_fuel(true);
    let engine = Engine::new(&config);
    let spin = r#"(component
  (core module $M (func (export "f") (loop $l (br $l))))
  (core instance $m (instantiate $M))
  (func (export "f") (canon lift (core func $m "f"))))"#;
    let err = call_first_export(spin, &engine, |s| s.set_fuel(50_000_000).unwrap()).unwrap_err();
    assert!(format!("{err:#}").contains("fuel"), "{err:#}");
}

#[test]
fn unbounded_recursion_traps() {
    let deep = r#"(component
  (core module $M (func $f (export "f") (call $f)))
  (core instance $m (instantiate $M))
  (func (export "f") (canon lift (core func $m "f"))))"#;
    let err = call_first_export(deep, &Engine::default(), |_| {}).unwrap_err();
    assert!(format!("{err:#}").contains("stack"), "{err:#}");
}

#[test]
fn a_guest_importing_a_host_function_at_the_wrong_type_traps_cleanly() {
    // `get-random-bytes` takes a length; this guest imports it with no
    // parameters at all. The host must not crash.
    let wat = r#"(component
  (import "wasi:random/random@0.2.0" (instance $s
    (export "get-random-bytes" (func))))
  (alias export $s "get-random-bytes" (func $w))
  (core func $w' (canon lower (func $w)))
  (core module $M (import "" "w" (func $w)) (func (export "f") (call $w)))
  (core instance $m (instantiate $M (with "" (instance (export "w" (func $w'))))))
  (func (export "f") (canon lift (core func $m "f"))))"#;
    let engine = Engine::default();
    let c = Component::new(&engine, wat.as_bytes()).unwrap();
    let mut linker = Linker::default();
    wippy_wasm::wasi::add_to_linker(&mut linker).unwrap();
    let mut store = Store::new(&engine, wippy_wasm::wasi::WasiCtx::new());
    let i = linker.instantiate(&mut store, &c).unwrap();
    let err = i.get_func(&store, "f").unwrap().call(&mut store, &[]).unwrap_err();
    assert!(format!("{err:#}").contains("host function panicked"), "{err:#}");
}
