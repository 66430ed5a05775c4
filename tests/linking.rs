//! Linking against what the host defines beyond functions: nested
//! instances, core modules (checked by module subtyping), resource types
//! under two names, and errors that say what was expected and found.

use wippy_wasm::{Component, CoreModule, Engine, Linker, Store, Val};

fn component(engine: &Engine, wat: &str) -> Component {
    Component::new(engine, &wat::parse_str(wat).unwrap()).unwrap()
}

fn link_error(linker: &Linker<()>, engine: &Engine, wat: &str) -> String {
    let c = component(engine, wat);
    let mut store = Store::new(engine, ());
    format!(
        "{:#}",
        linker
            .instantiate(&mut store, &c)
            .map(|_| ())
            .expect_err("should not link")
    )
}

const MODULE: &str = r#"(module
  (import "env" "base" (global i32))
  (global (export "g") i32 i32.const 100)
  (table (export "t") 2 funcref)
  (func (export "f") (result i32) global.get 0 i32.const 1 i32.add))"#;

fn host(engine: &Engine) -> Linker<()> {
    let mut linker = Linker::default();
    let host = linker.instance("host");
    host.instance("nested").func_wrap("four", |_, (): ()| Ok(4u32));
    let m = CoreModule::new(engine, &wat::parse_str(MODULE).unwrap()).unwrap();
    host.module("m", &m);
    linker
}

#[test]
fn nested_instances_and_core_modules_link_and_run() {
    let engine = Engine::default();
    let linker = host(&engine);
    // The module is instantiated with the component's own global for its
    // import; `f` returns it plus one, and the nested function 4.
    let c = component(
        &engine,
        r#"(component
  (import "host" (instance $h
    (export "nested" (instance (export "four" (func (result u32)))))
    (export "m" (core module
      (import "env" "base" (global i32))
      (import "env" "unused" (func))
      (export "f" (func (result i32)))
      (export "t" (table 1 funcref))))))
  (core module $base (global (export "base") i32 i32.const 41) (func (export "unused")))
  (core instance $base (instantiate $base))
  (core instance $m (instantiate (module $h "m") (with "env" (instance $base))))
  (func (export "f") (result u32) (canon lift (core func $m "f")))
  (alias export $h "nested" (instance $n))
  (export "four" (func $n "four")))"#,
    );
    let mut store = Store::new(&engine, ());
    let i = linker.instantiate(&mut store, &c).unwrap();
    let f = i.get_func(&store, "f").unwrap();
    assert_eq!(f.call(&mut store, &[]).unwrap(), vec![Val::U32(42)]);
    let four = i.get_func(&store, "four").unwrap();
    assert_eq!(four.call(&mut store, &[]).unwrap(), vec![Val::U32(4)]);
}

#[test]
fn core_modules_are_checked_by_module_subtyping() {
    let engine = Engine::default();
    let linker = host(&engine);
    let import = |ty: &str| format!(r#"(component (import "host" (instance (export "m" (core module {ty})))))"#);
    let cases = [
        (r#"(import "env" "base" (global i32)) (export "nope" (func))"#, "module export `nope` not defined"),
        ("", "module import `env::base` not defined"),
        (
            r#"(import "env" "base" (global i32)) (export "f" (func (param i32) (result i32)))"#,
            "module export `f` has the wrong type: expected type `(func (param i32) (result i32))`, found type `(func (result i32))`",
        ),
        (r#"(import "env" "base" (global i32)) (export "f" (global i32))"#, "expected global found func"),
        // A table of at least 3 is more than the module's 2.
        (r#"(import "env" "base" (global i32)) (export "t" (table 3 funcref))"#, "export `t` has the wrong type"),
        (r#"(import "env" "base" (global (mut i32)))"#, "module import `env::base` has the wrong type"),
    ];
    for (ty, want) in cases {
        let err = link_error(&linker, &engine, &import(ty));
        assert!(err.contains(want), "{ty}: {err}");
    }
}

#[test]
fn errors_say_what_was_expected_and_found() {
    let engine = Engine::default();
    let mut linker = host(&engine);
    linker.root().func_wrap("two", |_, (): ()| Ok(2u32));
    let cases = [
        (
            r#"(import "two" (instance (export "x" (func))))"#,
            "import `two`: expected instance found func",
        ),
        (
            r#"(import "two" (instance))"#,
            "import `two`: expected instance found func",
        ),
        (
            r#"(import "host" (func))"#,
            "import `host`: expected function found instance",
        ),
        (
            r#"(import "host" (core module))"#,
            "import `host`: expected module found instance",
        ),
        (
            r#"(import "host" (instance (export "nested" (instance (export "five" (func (result u32)))))))"#,
            "import `host#nested#five` was not found in the host: expected a function of type func() -> u32",
        ),
        (
            r#"(import "host" (instance (export "nested" (type (sub resource)))))"#,
            "import `host#nested`: expected resource found instance",
        ),
        (
            r#"(import "nowhere" (instance (export "x" (func))))"#,
            "import `nowhere` was not found in the host",
        ),
    ];
    for (imports, want) in cases {
        let err = link_error(&linker, &engine, &format!("(component {imports})"));
        assert!(err.contains(want), "{imports}: {err}");
    }
    // An empty instance needs nothing from the host.
    let c = component(
        &engine,
        r#"(component (import "nowhere" (instance (export "y" (instance)))))"#,
    );
    linker.instantiate(&mut Store::new(&engine, ()), &c).unwrap();
}

#[test]
fn a_resource_type_under_two_names_is_one_type() {
    let engine = Engine::default();
    let mut linker = Linker::<()>::default();
    let host = linker.instance("host");
    let r1 = host.resource("r1", |_, _| Ok(()));
    host.resource("r2", |_, _| Ok(()));
    host.resource_type("r1-again", r1);
    let eq = |other: &str| {
        format!(
            r#"(component (import "host" (instance $h
  (export "r1" (type $r (sub resource)))
  (export "{other}" (type (eq $r))))))"#
        )
    };
    linker
        .instantiate(&mut Store::new(&engine, ()), &component(&engine, &eq("r1-again")))
        .unwrap();
    let err = link_error(&linker, &engine, &eq("r2"));
    assert!(err.contains("import `host#r2`: mismatched resource types"), "{err}");
}

#[test]
fn instances_export_their_modules_and_resource_types() {
    let engine = Engine::default();
    let c = component(
        &engine,
        r#"(component
  (core module $m (func (export "f") (result i32) i32.const 7))
  (export "m" (core module $m))
  (type $r (resource (rep i32)))
  (export "r" (type $r)))"#,
    );
    let mut store = Store::new(&engine, ());
    let i = Linker::<()>::default().instantiate(&mut store, &c).unwrap();
    assert!(i.get_resource(&store, "r").is_some());
    assert!(i.get_resource(&store, "m").is_none());
    let m = i.get_module(&store, "m").unwrap();
    // Registered with another host, the module links where it is imported.
    let mut linker = Linker::<()>::default();
    linker.instance("provider").module("m", &m);
    let user = component(
        &engine,
        r#"(component
  (import "provider" (instance $p (export "m" (core module (export "f" (func (result i32)))))))
  (core instance $i (instantiate (module $p "m")))
  (func (export "f") (result s32) (canon lift (core func $i "f"))))"#,
    );
    let mut store = Store::new(&engine, ());
    let inst = linker.instantiate(&mut store, &user).unwrap();
    let f = inst.get_func(&store, "f").unwrap();
    assert_eq!(f.call(&mut store, &[]).unwrap(), vec![Val::S32(7)]);
}
