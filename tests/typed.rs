//! Typed host functions (`func_wrap`) and typed export calls: the Val-free
//! paths must agree with the dynamic ones, including traps.

use wippy_wasm::{Component, Engine, Linker, Store};

/// Exports `call-{name}` that forwards to the host import `{name}`.
fn forwarder(name: &str, ty: &str, params: &str, result: &str, body: &str) -> String {
    format!(
        r#"(component
  (import "{name}" (func $f {ty}))
  (core module $Libc
    (memory (export "mem") 1)
    (global $next (mut i32) (i32.const 1024))
    (func (export "realloc") (param i32 i32 i32 i32) (result i32)
      (local $r i32)
      (local.set $r (global.get $next))
      (global.set $next (i32.add (global.get $next) (i32.and (i32.add (local.get 3) (i32.const 7)) (i32.const -8))))
      (local.get $r)))
  (core instance $libc (instantiate $Libc))
  (core func $f' (canon lower (func $f) (memory (core memory $libc "mem")) (realloc (core func $libc "realloc"))))
  (core module $M
    (import "" "f" (func $f {params}))
    (func (export "call") {result} {body}))
  (core instance $m (instantiate $M (with "" (instance (export "f" (func $f'))))))
  (func (export "call-{name}") {ty} (canon lift (core func $m "call") (memory (core memory $libc "mem")) (realloc (core func $libc "realloc"))))
)"#
    )
}

fn instance(wat: &str, linker: Linker<u64>) -> (Store<u64>, wippy_wasm::Instance) {
    let engine = Engine::default();
    let c = Component::new(&engine, wat.as_bytes()).unwrap_or_else(|e| panic!("{e:#}"));
    let mut store = Store::new(&engine, 0);
    let i = linker.instantiate(&mut store, &c).unwrap();
    (store, i)
}

#[test]
fn scalar_signatures() {
    let wat = forwarder(
        "mix",
        r#"(param "a" u8) (param "b" s64) (param "c" f32) (param "d" bool) (result f64)"#,
        "(param i32 i64 f32 i32) (result f64)",
        "(param i32 i64 f32 i32) (result f64)",
        "(call $f (local.get 0) (local.get 1) (local.get 2) (local.get 3))",
    );
    let mut linker = Linker::<u64>::default();
    linker
        .root()
        .func_wrap("mix", |mut cx, (a, b, c, d): (u8, i64, f32, bool)| {
            *cx.data_mut() += 1;
            Ok(a as f64 + b as f64 + c as f64 + if d { 1000.0 } else { 0.0 })
        });
    let (mut store, i) = instance(&wat, linker);
    let f = i
        .get_typed_func::<_, (u8, i64, f32, bool), f64>(&store, "call-mix")
        .unwrap();
    assert_eq!(f.call(&mut store, (200, -50, 0.5, true)).unwrap(), 1150.5);
    assert_eq!(*store.data(), 1);
}

#[test]
fn char_from_a_guest_is_validated_on_the_fast_path() {
    // The guest passes 0xD800 to a typed char import: a trap, not a char.
    let wat = forwarder(
        "c",
        r#"(param "c" char)"#,
        "(param i32)",
        "",
        "(call $f (i32.const 0xD800))",
    )
    .replace(
        r#"(func (export "call-c") (param "c" char)"#,
        r#"(func (export "call-c")"#,
    );
    let mut linker = Linker::<u64>::default();
    linker.root().func_wrap("c", |_, (_c,): (char,)| Ok(()));
    let (mut store, i) = instance(&wat, linker);
    let err = i.get_func(&store, "call-c").unwrap().call(&mut store, &[]).unwrap_err();
    assert!(format!("{err:#}").contains("invalid `char` bit pattern"), "{err:#}");
}

#[test]
fn strings_and_bytes() {
    let wat = forwarder(
        "rev",
        r#"(param "s" string) (result string)"#,
        "(param i32 i32 i32)",
        "(param i32 i32) (result i32)",
        "(call $f (local.get 0) (local.get 1) (i32.const 16)) (i32.const 16)",
    );
    let mut linker = Linker::<u64>::default();
    linker
        .root()
        .func_wrap("rev", |_, (s,): (String,)| Ok(s.chars().rev().collect::<String>()));
    let (mut store, i) = instance(&wat, linker);
    let f = i.get_typed_func::<_, (String,), String>(&store, "call-rev").unwrap();
    assert_eq!(f.call(&mut store, ("añ☃🍰".to_string(),)).unwrap(), "🍰☃ña");

    let wat = forwarder(
        "sum",
        r#"(param "b" (list u8)) (result u32)"#,
        "(param i32 i32) (result i32)",
        "(param i32 i32) (result i32)",
        "(call $f (local.get 0) (local.get 1))",
    );
    let mut linker = Linker::<u64>::default();
    linker.root().func_wrap("sum", |_, (b,): (Vec<u8>,)| {
        Ok(b.iter().map(|&x| x as u32).sum::<u32>())
    });
    let (mut store, i) = instance(&wat, linker);
    let f = i.get_typed_func::<_, (Vec<u8>,), u32>(&store, "call-sum").unwrap();
    assert_eq!(f.call(&mut store, ((0..=255).collect(),)).unwrap(), 255 * 256 / 2);
}

#[test]
fn lists_of_strings_and_options_through_typed_paths() {
    let wat = forwarder(
        "join",
        r#"(param "parts" (list string)) (result (option string))"#,
        "(param i32 i32 i32)",
        "(param i32 i32) (result i32)",
        "(call $f (local.get 0) (local.get 1) (i32.const 16)) (i32.const 16)",
    );
    let mut linker = Linker::<u64>::default();
    linker.root().func_wrap("join", |_, (parts,): (Vec<String>,)| {
        Ok((!parts.is_empty()).then(|| parts.join("+")))
    });
    let (mut store, i) = instance(&wat, linker);
    let f = i
        .get_typed_func::<_, (Vec<String>,), Option<String>>(&store, "call-join")
        .unwrap();
    assert_eq!(
        f.call(&mut store, (vec!["a".into(), "é".into()],)).unwrap(),
        Some("a+é".into())
    );
    assert_eq!(f.call(&mut store, (vec![],)).unwrap(), None);
}

#[test]
fn typed_lookup_checks_the_export_type() {
    let wat = forwarder(
        "n",
        r#"(param "x" u32) (result u32)"#,
        "(param i32) (result i32)",
        "(param i32) (result i32)",
        "(call $f (local.get 0))",
    );
    let mut linker = Linker::<u64>::default();
    linker.root().func_wrap("n", |_, (x,): (u32,)| Ok(x));
    let (store, i) = instance(&wat, linker);
    let err = i.get_typed_func::<_, (String,), u32>(&store, "call-n").err().unwrap();
    assert!(format!("{err:#}").contains("has type func(x: u32) -> u32"), "{err:#}");
}

#[test]
fn a_typed_host_function_imported_at_another_type_falls_back_to_values() {
    // Declared over u32, imported by the guest as taking u64: the dynamic path
    // runs and reports the mismatch as an error, not UB or a panic.
    let wat = forwarder(
        "n",
        r#"(param "x" u64) (result u64)"#,
        "(param i64) (result i64)",
        "(param i64) (result i64)",
        "(call $f (local.get 0))",
    );
    let mut linker = Linker::<u64>::default();
    linker.root().func_wrap("n", |_, (x,): (u32,)| Ok(x));
    let (mut store, i) = instance(&wat, linker);
    let err = i
        .get_func(&store, "call-n")
        .unwrap()
        .call(&mut store, &[wippy_wasm::Val::U64(1)])
        .unwrap_err();
    assert!(format!("{err:#}").contains("expected u32, found u64"), "{err:#}");
}
