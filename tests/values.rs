//! Round trips of every value type, through a guest export and back out
//! through a host import: host → lower into guest → guest core → lowered
//! import → lift into host echo → lower into guest → lift back to the host.
//!
//! The flat core signatures are written out by hand from CanonicalABI.md
//! ("Flattening"), so a flattening bug cannot hide behind its own output.

mod common;

use common::LIBC;
use std::sync::{Arc, Mutex};
use wippy_wasm::{Component, Engine, Linker, Store, Val};

/// How a function's result comes back at the core level.
enum Res {
    /// One flat core value of this type.
    Flat(&'static str),
    /// Through memory: the lifted export returns a pointer; the lowered import
    /// takes a return pointer.
    Ptr,
}

/// A guest exporting `echo: func(x: T) -> T` that forwards to the imported
/// `host-echo` of the same type, with string encoding `enc`.
fn echo_component(ty: &str, params: &str, res: &Res, enc: &str) -> String {
    let nparams = params.split_whitespace().count() as u32;
    let gets: String = (0..nparams).map(|i| format!("(local.get {i}) ")).collect();
    let (import_sig, export_sig, body) = match res {
        Res::Flat(t) => (
            format!("(param {params}) (result {t})"),
            format!("(param {params}) (result {t})"),
            format!("{gets} (call $echo)"),
        ),
        Res::Ptr => (
            format!("(param {params} i32)"),
            format!("(param {params}) (result i32)"),
            format!("{gets} (i32.const 8) (call $echo) (i32.const 8)"),
        ),
    };
    format!(
        r#"(component
  (type $T0 {ty})
  (import "t" (type $T (eq $T0)))
  (import "host-echo" (func $host-echo (param "x" $T) (result $T)))
  (core module $Libc {LIBC})
  (core instance $libc (instantiate $Libc))
  (core func $echo (canon lower (func $host-echo) {enc}
    (memory (core memory $libc "mem")) (realloc (core func $libc "realloc"))))
  (core module $M
    (import "" "echo" (func $echo {import_sig}))
    (func (export "echo") {export_sig} {body}))
  (core instance $m (instantiate $M (with "" (instance (export "echo" (func $echo))))))
  (func (export "echo") (param "x" $T) (result $T)
    (canon lift (core func $m "echo") {enc}
      (memory (core memory $libc "mem")) (realloc (core func $libc "realloc"))))
)"#
    )
}

/// Runs `echo(v)` and returns (what the host import saw, what came back).
fn round_trip(ty: &str, params: &str, res: Res, enc: &str, v: Val) -> (Val, Val) {
    let engine = Engine::default();
    let wat = echo_component(ty, params, &res, enc);
    let component = Component::new(&engine, wat.as_bytes()).unwrap_or_else(|e| panic!("{e:#}\n{wat}"));
    let seen = Arc::new(Mutex::new(None));
    let mut linker = Linker::<()>::default();
    let s = seen.clone();
    linker.root().func_new("host-echo", move |_, args, out| {
        *s.lock().unwrap() = Some(args[0].clone());
        out.push(args[0].clone());
        Ok(())
    });
    let mut store = Store::new(&engine, ());
    let instance = linker.instantiate(&mut store, &component).unwrap();
    let echo = instance.get_func(&store, "echo").unwrap();
    let out = echo.call(&mut store, &[v]).unwrap_or_else(|e| panic!("{ty}: {e:#}"));
    assert_eq!(out.len(), 1);
    let seen = seen.lock().unwrap().clone().expect("host import called");
    (seen, out.into_iter().next().unwrap())
}

fn check(ty: &str, params: &str, res: Res, v: Val) {
    let (seen, back) = round_trip(ty, params, res, "", v.clone());
    assert_eq!(seen, v, "host import saw a different {ty}");
    assert_eq!(back, v, "{ty} did not round-trip");
}

fn some(v: Val) -> Option<Box<Val>> {
    Some(Box::new(v))
}
fn s(x: &str) -> Val {
    Val::String(x.into())
}

#[test]
fn scalars() {
    check("bool", "i32", Res::Flat("i32"), Val::Bool(true));
    check("bool", "i32", Res::Flat("i32"), Val::Bool(false));
    check("s8", "i32", Res::Flat("i32"), Val::S8(-128));
    check("u8", "i32", Res::Flat("i32"), Val::U8(255));
    check("s16", "i32", Res::Flat("i32"), Val::S16(-32768));
    check("u16", "i32", Res::Flat("i32"), Val::U16(65535));
    check("s32", "i32", Res::Flat("i32"), Val::S32(i32::MIN));
    check("u32", "i32", Res::Flat("i32"), Val::U32(u32::MAX));
    check("s64", "i64", Res::Flat("i64"), Val::S64(i64::MIN));
    check("u64", "i64", Res::Flat("i64"), Val::U64(u64::MAX));
    check("f32", "f32", Res::Flat("f32"), Val::Float32(-1.5));
    check("f64", "f64", Res::Flat("f64"), Val::Float64(6.02e23));
    check("char", "i32", Res::Flat("i32"), Val::Char('🍰'));
    check("char", "i32", Res::Flat("i32"), Val::Char('\u{10FFFF}'));
}

#[test]
fn nans_come_back_canonical() {
    let (_, back) = round_trip(
        "f32",
        "f32",
        Res::Flat("f32"),
        "",
        Val::Float32(f32::from_bits(0x7fa0_0001)),
    );
    assert!(
        matches!(back, Val::Float32(f) if f.to_bits() == 0x7fc0_0000),
        "{back:?}"
    );
    let (_, back) = round_trip(
        "f64",
        "f64",
        Res::Flat("f64"),
        "",
        Val::Float64(f64::from_bits(0xfff0_0000_0000_0001)),
    );
    assert!(
        matches!(back, Val::Float64(f) if f.to_bits() == 0x7ff8_0000_0000_0000),
        "{back:?}"
    );
}

#[test]
fn strings_in_every_encoding() {
    for enc in [
        "string-encoding=utf8",
        "string-encoding=utf16",
        "string-encoding=latin1+utf16",
    ] {
        for text in ["", "hello", "héllo wörld", "☃ snow ☺ and 🍰", &"long ".repeat(1000)] {
            let (seen, back) = round_trip("string", "i32 i32", Res::Ptr, enc, s(text));
            assert_eq!(seen, s(text), "{enc}");
            assert_eq!(back, s(text), "{enc}");
        }
    }
}

#[test]
fn lists_and_maps() {
    let bytes = Val::List((0..=255u8).map(Val::U8).collect());
    check("(list u8)", "i32 i32", Res::Ptr, bytes);
    check("(list u8)", "i32 i32", Res::Ptr, Val::List(vec![]));
    check(
        "(list string)",
        "i32 i32",
        Res::Ptr,
        Val::List(vec![s("a"), s(""), s("ünï")]),
    );
    check(
        "(list (list u16))",
        "i32 i32",
        Res::Ptr,
        Val::List(vec![Val::List(vec![Val::U16(1), Val::U16(2)]), Val::List(vec![])]),
    );
    check(
        "(list u32 4)",
        "i32 i32 i32 i32",
        Res::Ptr,
        Val::List((1..=4).map(Val::U32).collect()),
    );
    check("(list u8 1)", "i32", Res::Flat("i32"), Val::List(vec![Val::U8(7)]));
    check(
        "(map string u32)",
        "i32 i32",
        Res::Ptr,
        Val::Map(vec![(s("one"), Val::U32(1)), (s("two"), Val::U32(2))]),
    );
}

#[test]
fn records_tuples_flags() {
    let rec = Val::Record(vec![
        ("a".into(), Val::U8(9)),
        ("b".into(), s("bee")),
        ("c".into(), Val::Float64(0.25)),
    ]);
    check(
        r#"(record (field "a" u8) (field "b" string) (field "c" f64))"#,
        "i32 i32 i32 f64",
        Res::Ptr,
        rec,
    );
    check(
        "(tuple u64 f32)",
        "i64 f32",
        Res::Ptr,
        Val::Tuple(vec![Val::U64(1 << 40), Val::Float32(2.5)]),
    );
    check(
        r#"(flags "a" "b" "c")"#,
        "i32",
        Res::Flat("i32"),
        Val::Flags(vec!["a".into(), "c".into()]),
    );
    let many: Vec<String> = (0..20).map(|i| format!("f{i}")).collect();
    let flags_ty = format!(
        "(flags {})",
        many.iter().map(|n| format!("\"{n}\"")).collect::<Vec<_>>().join(" ")
    );
    check(
        &flags_ty,
        "i32",
        Res::Flat("i32"),
        Val::Flags(vec!["f0".into(), "f19".into()]),
    );
}

#[test]
fn variants_enums_options_results() {
    let v = r#"(variant (case "a" u32) (case "b" f32) (case "c"))"#;
    check(v, "i32 i32", Res::Ptr, Val::Variant("a".into(), some(Val::U32(7))));
    check(
        v,
        "i32 i32",
        Res::Ptr,
        Val::Variant("b".into(), some(Val::Float32(-0.5))),
    );
    check(v, "i32 i32", Res::Ptr, Val::Variant("c".into(), None));
    let joined = r#"(variant (case "i" s64) (case "f" f64) (case "s" string))"#;
    check(
        joined,
        "i32 i64 i32",
        Res::Ptr,
        Val::Variant("f".into(), some(Val::Float64(1e-300))),
    );
    check(
        joined,
        "i32 i64 i32",
        Res::Ptr,
        Val::Variant("i".into(), some(Val::S64(-5))),
    );
    check(
        joined,
        "i32 i64 i32",
        Res::Ptr,
        Val::Variant("s".into(), some(s("str"))),
    );
    check(r#"(enum "x" "y" "z")"#, "i32", Res::Flat("i32"), Val::Enum("z".into()));
    check("(option u64)", "i32 i64", Res::Ptr, Val::Option(some(Val::U64(3))));
    check("(option u64)", "i32 i64", Res::Ptr, Val::Option(None));
    check(
        "(option (option bool))",
        "i32 i32 i32",
        Res::Ptr,
        Val::Option(some(Val::Option(None))),
    );
    let r = "(result string (error u32))";
    check(r, "i32 i32 i32", Res::Ptr, Val::Result(Ok(some(s("fine")))));
    check(r, "i32 i32 i32", Res::Ptr, Val::Result(Err(some(Val::U32(404)))));
    check("(result)", "i32", Res::Flat("i32"), Val::Result(Err(None)));
}

#[test]
fn more_than_sixteen_flat_params_spill_to_memory() {
    // 17 u32 fields flatten to 17 core values: passed through a pointer.
    let fields: String = (0..17).map(|i| format!("(field \"f{i}\" u32) ")).collect();
    let rec = Val::Record((0..17).map(|i| (format!("f{i}"), Val::U32(i * 3))).collect());
    check(&format!("(record {fields})"), "i32", Res::Ptr, rec);
}

#[test]
fn host_value_of_the_wrong_type_is_an_error_not_a_panic() {
    let engine = Engine::default();
    let component = Component::new(&engine, echo_component("u32", "i32", &Res::Flat("i32"), "").as_bytes()).unwrap();
    let mut linker = Linker::<()>::default();
    linker.root().func_new("host-echo", |_, _, out| {
        out.push(Val::String("not a u32".into()));
        Ok(())
    });
    let mut store = Store::new(&engine, ());
    let instance = linker.instantiate(&mut store, &component).unwrap();
    let echo = instance.get_func(&store, "echo").unwrap();
    let err = echo.call(&mut store, &[Val::U32(1)]).unwrap_err();
    assert!(format!("{err:#}").contains("expected u32, found string"), "{err:#}");
    let err = echo.call(&mut store, &[Val::Bool(true)]).unwrap_err();
    assert!(format!("{err:#}").contains("expected u32"), "{err:#}");
}
