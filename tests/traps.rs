//! Each trap the canonical ABI defines comes out as an error with a message,
//! never a host panic, and the host keeps working afterwards.

use wippy_wasm::{Component, Engine, Linker, Store, Val};

/// Instantiates `wat` with `linker`, calls `f(args)` and returns the error text.
fn trap_of(wat: &str, linker: &Linker<()>, f: &str, args: &[Val]) -> String {
    let engine = Engine::default();
    let component = Component::new(&engine, wat.as_bytes()).unwrap_or_else(|e| panic!("{e:#}"));
    let mut store = Store::new(&engine, ());
    let instance = linker.instantiate(&mut store, &component).unwrap();
    let func = instance.get_func(&store, f).unwrap();
    let err = func.call(&mut store, args).expect_err("expected a trap");
    format!("{err:#}")
}

fn assert_trap(wat: &str, f: &str, args: &[Val], want: &str) {
    let got = trap_of(wat, &Linker::default(), f, args);
    assert!(got.contains(want), "expected `{want}`, got `{got}`");
    assert!(got.contains(&format!("`{f}`")), "the message names the function: {got}");
}

/// A component whose export `f` lifts the core function body `body`
/// returning `result` (a core type) as component type `ty`.
fn lifting(ty: &str, core_result: &str, body: &str) -> String {
    format!(
        r#"(component
  (core module $M
    (memory (export "mem") 1)
    (func (export "realloc") (param i32 i32 i32 i32) (result i32) (i32.const 64))
    (func (export "f") (result {core_result}) {body}))
  (core instance $m (instantiate $M))
  (type $T0 {ty})
  (export $T "t" (type $T0))
  (func (export "f") (result $T)
    (canon lift (core func $m "f") (memory (core memory $m "mem")) (realloc (core func $m "realloc")))))"#
    )
}

#[test]
fn invalid_char() {
    assert_trap(
        &lifting("char", "i32", "(i32.const 0xD800)"),
        "f",
        &[],
        "invalid `char` bit pattern",
    );
    assert_trap(
        &lifting("char", "i32", "(i32.const 0x110000)"),
        "f",
        &[],
        "invalid `char` bit pattern",
    );
}

#[test]
fn invalid_discriminants() {
    assert_trap(
        &lifting(r#"(enum "a" "b")"#, "i32", "(i32.const 2)"),
        "f",
        &[],
        "invalid variant discriminant",
    );
    // option<u8> and result come back through memory: discriminant 2 at ptr 0.
    let store_disc = "(i32.store8 (i32.const 0) (i32.const 2)) (i32.const 0)";
    assert_trap(
        &lifting("(option u8)", "i32", store_disc),
        "f",
        &[],
        "invalid variant discriminant",
    );
    assert_trap(
        &lifting("(result u8 (error u8))", "i32", store_disc),
        "f",
        &[],
        "invalid variant discriminant",
    );
}

#[test]
fn string_traps() {
    let ret = |ptr: &str, len: &str| {
        format!("(i32.store (i32.const 0) (i32.const {ptr})) (i32.store (i32.const 4) (i32.const {len})) (i32.const 0)")
    };
    assert_trap(
        &lifting("string", "i32", &ret("65530", "10")),
        "f",
        &[],
        "string pointer/length out of bounds of memory",
    );
    assert_trap(
        &lifting(
            "string",
            "i32",
            &format!("(i32.store8 (i32.const 16) (i32.const 0xff)) {}", ret("16", "1")),
        ),
        "f",
        &[],
        "invalid utf-8",
    );
    // A lone surrogate in utf16.
    let utf16 = r#"(component
  (core module $M
    (memory (export "mem") 1)
    (func (export "f") (result i32)
      (i32.store16 (i32.const 16) (i32.const 0xD800))
      (i32.store (i32.const 0) (i32.const 16)) (i32.store (i32.const 4) (i32.const 1)) (i32.const 0)))
  (core instance $m (instantiate $M))
  (func (export "f") (result string) (canon lift (core func $m "f") string-encoding=utf16 (memory (core memory $m "mem")))))"#;
    assert_trap(utf16, "f", &[], "invalid utf-16");
    // A misaligned utf16 string.
    let misaligned = utf16.replace(
        "(i32.const 16)) (i32.store (i32.const 4)",
        "(i32.const 17)) (i32.store (i32.const 4)",
    );
    assert_trap(&misaligned, "f", &[], "not aligned");
}

#[test]
fn list_traps() {
    let ret = |ptr: &str, len: &str| {
        format!("(i32.store (i32.const 0) (i32.const {ptr})) (i32.store (i32.const 4) (i32.const {len})) (i32.const 0)")
    };
    assert_trap(
        &lifting("(list u32)", "i32", &ret("65532", "2")),
        "f",
        &[],
        "list pointer/length out of bounds of memory",
    );
    assert_trap(
        &lifting("(list u32)", "i32", &ret("2", "1")),
        "f",
        &[],
        "list pointer is not aligned",
    );
    // The return pointer itself must be aligned and in bounds.
    assert_trap(
        &lifting("(list u32)", "i32", "(i32.const 3)"),
        "f",
        &[],
        "unaligned pointer",
    );
    assert_trap(
        &lifting("(list u32)", "i32", "(i32.const 65532)"),
        "f",
        &[],
        "out of bounds",
    );
}

/// A component taking a list argument, whose realloc returns `ptr`.
fn realloc_returning(ptr: &str) -> String {
    format!(
        r#"(component
  (core module $M
    (memory (export "mem") 1)
    (func (export "realloc") (param i32 i32 i32 i32) (result i32) (i32.const {ptr}))
    (func (export "f") (param i32 i32)))
  (core instance $m (instantiate $M))
  (func (export "f") (param "x" (list u32))
    (canon lift (core func $m "f") (memory (core memory $m "mem")) (realloc (core func $m "realloc")))))"#
    )
}

#[test]
fn realloc_traps() {
    let arg = [Val::List(vec![Val::U32(1), Val::U32(2)])];
    assert_trap(
        &realloc_returning("65532"),
        "f",
        &arg,
        "realloc return: beyond end of memory",
    );
    assert_trap(&realloc_returning("6"), "f", &arg, "realloc return: result not aligned");
}

#[test]
fn cannot_leave_during_post_return() {
    // post-return calls an import: may_leave is false then.
    let wat = r#"(component
  (import "log" (func $log))
  (core func $log' (canon lower (func $log)))
  (core module $M
    (import "" "log" (func $log))
    (func (export "f") (result i32) (i32.const 1))
    (func (export "post") (param i32) (call $log)))
  (core instance $m (instantiate $M (with "" (instance (export "log" (func $log'))))))
  (func (export "f") (result u32) (canon lift (core func $m "f") (post-return (core func $m "post")))))"#;
    let mut linker = Linker::<()>::default();
    linker.root().func_new("log", |_, _, _| Ok(()));
    let got = trap_of(wat, &linker, "f", &[]);
    assert!(got.contains("cannot leave component instance"), "{got}");
}

#[test]
fn cannot_enter_reentrantly() {
    // The host import calls back into the same instance while it is active.
    let wat = r#"(component
  (import "callback" (func $cb))
  (core func $cb' (canon lower (func $cb)))
  (core module $M
    (import "" "cb" (func $cb))
    (func (export "f") (call $cb)))
  (core instance $m (instantiate $M (with "" (instance (export "cb" (func $cb'))))))
  (func (export "f") (canon lift (core func $m "f"))))"#;
    let engine = Engine::default();
    let component = Component::new(&engine, wat.as_bytes()).unwrap();
    let slot: std::sync::Arc<std::sync::Mutex<Option<wippy_wasm::Func>>> = Default::default();
    let mut linker = Linker::<()>::default();
    let s = slot.clone();
    linker.root().func_new("callback", move |mut cx, _, _| {
        let f = s.lock().unwrap().take().expect("export set");
        f.call_in(&mut cx, &[])?;
        Ok(())
    });
    let mut store = Store::new(&engine, ());
    let instance = linker.instantiate(&mut store, &component).unwrap();
    let f = instance.get_func(&store, "f").unwrap();
    *slot.lock().unwrap() = Some(instance.get_func(&store, "f").unwrap());
    let err = f.call(&mut store, &[]).unwrap_err();
    assert!(
        format!("{err:#}").contains("cannot enter component instance"),
        "{err:#}"
    );
}

/// A child component exporting `f` (returns 7), for the recursion tests.
const CHILD: &str = r#"(component $Child
    (core module $C (func (export "f") (result i32) i32.const 7))
    (core instance $c (instantiate $C))
    (func (export "f") (result u32) (canon lift (core func $c "f"))))"#;

#[test]
fn calls_between_an_instance_and_its_ancestors_trap() {
    // Parent core code calling its own child's export, an instance calling
    // its own lifted function, and a child calling its parent: each is
    // refused when called, as wasmtime and the spec's scripts have it.
    let parent_to_child = format!(
        r#"(component
  {CHILD}
  (instance $child (instantiate $Child))
  (core func $f (canon lower (func $child "f")))
  (core module $M (import "" "f" (func $f (result i32))) (func (export "g") (result i32) (call $f)))
  (core instance $m (instantiate $M (with "" (instance (export "f" (func $f))))))
  (func (export "g") (result u32) (canon lift (core func $m "g"))))"#
    );
    let to_itself = r#"(component
  (core module $A (func (export "f") (result i32) i32.const 7))
  (core instance $a (instantiate $A))
  (func $f (result u32) (canon lift (core func $a "f")))
  (core func $f' (canon lower (func $f)))
  (core module $M (import "" "f" (func $f (result i32))) (func (export "g") (result i32) (call $f)))
  (core instance $m (instantiate $M (with "" (instance (export "f" (func $f'))))))
  (func (export "g") (result u32) (canon lift (core func $m "g"))))"#;
    let child_to_parent = r#"(component
  (core module $P (func (export "f") (result i32) i32.const 7))
  (core instance $p (instantiate $P))
  (func $f (result u32) (canon lift (core func $p "f")))
  (component $Child
    (import "f" (func $f (result u32)))
    (core func $f' (canon lower (func $f)))
    (core module $M (import "" "f" (func $f (result i32))) (func (export "g") (result i32) (call $f)))
    (core instance $m (instantiate $M (with "" (instance (export "f" (func $f'))))))
    (func (export "g") (result u32) (canon lift (core func $m "g"))))
  (instance $child (instantiate $Child (with "f" (func $f))))
  (export "g" (func $child "g")))"#;
    for wat in [parent_to_child.as_str(), to_itself, child_to_parent] {
        assert_trap(wat, "g", &[], "cannot enter component instance");
    }
    // Siblings call each other freely.
    let siblings = format!(
        r#"(component
  {CHILD}
  (component $User
    (import "f" (func $f (result u32)))
    (core func $f' (canon lower (func $f)))
    (core module $M (import "" "f" (func $f (result i32))) (func (export "g") (result i32) (call $f)))
    (core instance $m (instantiate $M (with "" (instance (export "f" (func $f'))))))
    (func (export "g") (result u32) (canon lift (core func $m "g"))))
  (instance $child (instantiate $Child))
  (instance $user (instantiate $User (with "f" (func $child "f"))))
  (export "g" (func $user "g")))"#
    );
    let engine = Engine::default();
    let c = Component::new(&engine, siblings.as_bytes()).unwrap();
    let mut store = Store::new(&engine, ());
    let i = Linker::<()>::default().instantiate(&mut store, &c).unwrap();
    let g = i.get_func(&store, "g").unwrap();
    assert_eq!(g.call(&mut store, &[]).unwrap(), vec![Val::U32(7)]);
}

#[test]
fn guest_unreachable_names_the_function_and_host_survives() {
    let wat = r#"(component
  (core module $M (func (export "boom") unreachable) (func (export "ok") (result i32) (i32.const 5)))
  (core instance $m (instantiate $M))
  (func (export "boom") (canon lift (core func $m "boom")))
  (func (export "ok") (result u32) (canon lift (core func $m "ok"))))"#;
    let got = trap_of(wat, &Linker::default(), "boom", &[]);
    assert!(got.contains("boom") && got.contains("unreachable"), "{got}");
    // A fresh instance of the same component works.
    let engine = Engine::default();
    let component = Component::new(&engine, wat.as_bytes()).unwrap();
    let mut store = Store::new(&engine, ());
    let instance = Linker::<()>::default().instantiate(&mut store, &component).unwrap();
    let out = instance.get_func(&store, "ok").unwrap().call(&mut store, &[]).unwrap();
    assert_eq!(out, vec![Val::U32(5)]);
}
