//! Composed components: an inner component lowers a function another lifts,
//! joined by a generated adapter; strings cross in every pair of encodings
//! and lists of strings and numbers cross too.

mod common;

use common::LIBC;
use wippy_wasm::{Component, Engine, Linker, Store, Val};

/// `$Callee` (encoding `callee_enc`) exports `echo: func(x: T) -> T` whose
/// core returns its (ptr, len) argument unchanged; `$Caller` (encoding
/// `caller_enc`) imports it and re-exports a forwarder. The host calls the
/// outer export, so each value crosses host→caller→callee and back.
fn composed(ty: &str, caller_enc: &str, callee_enc: &str) -> String {
    format!(
        r#"(component
  (type $T0 {ty})
  (export $T "t" (type $T0))
  (component $Callee
    (alias outer 1 $T0 (type $T0o))
    (import "t" (type $T (eq $T0o)))
    (core module $M {LIBC}
      (func (export "echo") (param i32 i32) (result i32)
        (i32.store (i32.const 8) (local.get 0))
        (i32.store (i32.const 12) (local.get 1))
        (i32.const 8)))
    (core instance $m (instantiate $M))
    (func (export "echo") (param "x" $T) (result $T)
      (canon lift (core func $m "echo") {callee_enc}
        (memory (core memory $m "mem")) (realloc (core func $m "realloc")))))
  (component $Caller
    (alias outer 1 $T0 (type $T0o))
    (import "t" (type $T (eq $T0o)))
    (import "echo" (func $echo (param "x" $T) (result $T)))
    (core module $Libc {LIBC})
    (core instance $libc (instantiate $Libc))
    (core func $echo' (canon lower (func $echo) {caller_enc}
      (memory (core memory $libc "mem")) (realloc (core func $libc "realloc"))))
    (core module $M
      (import "" "echo" (func $echo (param i32 i32 i32)))
      (func (export "forward") (param i32 i32) (result i32)
        (call $echo (local.get 0) (local.get 1) (i32.const 16))
        (i32.const 16)))
    (core instance $m (instantiate $M (with "" (instance (export "echo" (func $echo'))))))
    (func (export "forward") (param "x" $T) (result $T)
      (canon lift (core func $m "forward") {caller_enc}
        (memory (core memory $libc "mem")) (realloc (core func $libc "realloc")))))
  (instance $callee (instantiate $Callee (with "t" (type $T))))
  (instance $caller (instantiate $Caller (with "t" (type $T)) (with "echo" (func $callee "echo"))))
  (func (export "forward") (alias export $caller "forward"))
)"#
    )
}

fn forward(ty: &str, caller_enc: &str, callee_enc: &str, v: Val) -> Val {
    let engine = Engine::default();
    let wat = composed(ty, caller_enc, callee_enc);
    let component = Component::new(&engine, wat.as_bytes()).unwrap_or_else(|e| panic!("{e:#}\n{wat}"));
    let mut store = Store::new(&engine, ());
    let instance = Linker::<()>::default().instantiate(&mut store, &component).unwrap();
    let f = instance.get_func(&store, "forward").unwrap();
    let mut out = f
        .call(&mut store, &[v])
        .unwrap_or_else(|e| panic!("{caller_enc} -> {callee_enc}: {e:#}"));
    out.pop().unwrap()
}

const ENCODINGS: [&str; 3] = [
    "string-encoding=utf8",
    "string-encoding=utf16",
    "string-encoding=latin1+utf16",
];

#[test]
fn strings_cross_between_every_pair_of_encodings() {
    for caller in ENCODINGS {
        for callee in ENCODINGS {
            for text in [
                "",
                "plain ascii",
                "latin1: café über",
                "beyond: ☃ 🍰 日本語",
                &"mixed é ☃ ".repeat(200),
            ] {
                let v = Val::String(text.to_string());
                assert_eq!(forward("string", caller, callee, v.clone()), v, "{caller} -> {callee}");
            }
        }
    }
}

#[test]
fn lists_cross_between_components() {
    let strings = Val::List(
        ["a", "bé", "☃", ""]
            .iter()
            .map(|s| Val::String(s.to_string()))
            .collect(),
    );
    for caller in ENCODINGS {
        for callee in ENCODINGS {
            assert_eq!(
                forward("(list string)", caller, callee, strings.clone()),
                strings,
                "{caller} -> {callee}"
            );
        }
    }
    let numbers = Val::List((0..1000u32).map(|i| Val::U32(i * 7)).collect());
    assert_eq!(forward("(list u32)", "", "", numbers.clone()), numbers);
    let nested = Val::List(vec![Val::List(vec![Val::U8(1), Val::U8(2)]), Val::List(vec![])]);
    assert_eq!(forward("(list (list u8))", "", "", nested.clone()), nested);
}
