//! Resources: own and borrow across the boundary, resource.new/rep/drop,
//! destructors, handle reuse order, and the handle traps.

use std::sync::{Arc, Mutex};
use wippy_wasm::{Component, Engine, Instance, Linker, ResourceAny, Store, Val};

const GUEST: &str = r#"(component
  (import "log" (func $log (param "rep" u32)))
  (import "host-thing" (type $H (sub resource)))
  (core func $log' (canon lower (func $log)))
  (core module $Dtor
    (import "" "log" (func $log (param i32)))
    (func (export "dtor") (param i32) (call $log (local.get 0))))
  (core instance $dtor (instantiate $Dtor (with "" (instance (export "log" (func $log'))))))
  (core func $dtor-f (alias core export $dtor "dtor"))
  (type $R (resource (rep i32) (dtor (core func $dtor-f))))
  (export $R' "r" (type $R))
  (core func $new (canon resource.new $R))
  (core func $rep (canon resource.rep $R))
  (core func $drop (canon resource.drop $R))
  (core func $drop-h (canon resource.drop $H))
  (core module $M
    (import "" "new" (func $new (param i32) (result i32)))
    (import "" "rep" (func $rep (param i32) (result i32)))
    (import "" "drop" (func $drop (param i32)))
    (import "" "drop-h" (func $drop-h (param i32)))
    (func (export "make") (param i32) (result i32) (call $new (local.get 0)))
    (func (export "rep-of") (param i32) (result i32) (local.get 0))
    (func (export "consume") (param i32) (call $drop (local.get 0)))
    (func (export "reuse-order") (result i32)
      (local $a i32) (local $b i32)
      (drop (call $new (i32.const 100)))        ;; index 1
      (drop (call $new (i32.const 200)))        ;; index 2
      (drop (call $new (i32.const 300)))        ;; index 3
      (call $drop (i32.const 2))
      (call $drop (i32.const 3))
      (local.set $a (call $new (i32.const 400)))  ;; LIFO: reuses 3
      (local.set $b (call $new (i32.const 500)))  ;; then 2
      (call $drop (i32.const 1))
      (call $drop (local.get $a))
      (call $drop (local.get $b))
      (i32.add (i32.mul (local.get $a) (i32.const 10)) (local.get $b)))
    (func (export "double-drop") (call $drop (call $new (i32.const 7))) (call $drop (i32.const 1)))
    (func (export "drop-zero") (call $drop (i32.const 0)))
    (func (export "rep-of-index") (param i32) (result i32) (call $rep (local.get 0)))
    (func (export "wrong-type") (call $drop-h (call $new (i32.const 1))))
    (func (export "borrow-host") (param i32) (result i32) (call $drop-h (local.get 0)) (i32.const 1))
    (func (export "keep-borrow") (param i32) (result i32) (i32.const 2)))
  (core instance $m (instantiate $M (with "" (instance
    (export "new" (func $new)) (export "rep" (func $rep)) (export "drop" (func $drop)) (export "drop-h" (func $drop-h))))))
  (func (export "make") (param "rep" u32) (result (own $R')) (canon lift (core func $m "make")))
  (func (export "rep-of") (param "r" (borrow $R')) (result u32) (canon lift (core func $m "rep-of")))
  (func (export "consume") (param "r" (own $R')) (canon lift (core func $m "consume")))
  (func (export "reuse-order") (result u32) (canon lift (core func $m "reuse-order")))
  (func (export "double-drop") (canon lift (core func $m "double-drop")))
  (func (export "drop-zero") (canon lift (core func $m "drop-zero")))
  (func (export "rep-of-index") (param "i" u32) (result u32) (canon lift (core func $m "rep-of-index")))
  (func (export "wrong-type") (canon lift (core func $m "wrong-type")))
  (func (export "borrow-host") (param "h" (borrow $H)) (result u32) (canon lift (core func $m "borrow-host")))
  (func (export "keep-borrow") (param "h" (borrow $H)) (result u32) (canon lift (core func $m "keep-borrow")))
)"#;

struct Fixture {
    store: Store<()>,
    instance: Instance,
    log: Arc<Mutex<Vec<Val>>>,
    host_dropped: Arc<Mutex<Vec<u32>>>,
    host_ty: wippy_wasm::ResourceType,
}

fn setup() -> Fixture {
    let engine = Engine::default();
    let component = Component::new(&engine, GUEST.as_bytes()).unwrap_or_else(|e| panic!("{e:#}"));
    let log = Arc::new(Mutex::new(Vec::new()));
    let host_dropped = Arc::new(Mutex::new(Vec::new()));
    let mut linker = Linker::<()>::default();
    let l = log.clone();
    linker.root().func_new("log", move |_, args, _| {
        l.lock().unwrap().push(args[0].clone());
        Ok(())
    });
    let d = host_dropped.clone();
    let host_ty = linker.root().resource("host-thing", move |_, rep| {
        d.lock().unwrap().push(rep);
        Ok(())
    });
    let mut store = Store::new(&engine, ());
    let instance = linker.instantiate(&mut store, &component).unwrap();
    Fixture {
        store,
        instance,
        log,
        host_dropped,
        host_ty,
    }
}

impl Fixture {
    fn call(&mut self, f: &str, args: &[Val]) -> anyhow::Result<Vec<Val>> {
        let func = self.instance.get_func(&self.store, f).unwrap();
        func.call(&mut self.store, args)
    }
}

fn resource(v: &Val) -> ResourceAny {
    match v {
        Val::Resource(r) => r.clone(),
        other => panic!("not a resource: {other:?}"),
    }
}

#[test]
fn own_moves_out_borrow_passes_rep_and_drop_runs_the_destructor() {
    let mut fx = setup();
    let out = fx.call("make", &[Val::U32(42)]).unwrap();
    let r = resource(&out[0]);
    assert!(r.own);
    assert_eq!(r.rep, 42);
    // The guest's table no longer holds it: ownership moved to the host.
    assert_eq!(fx.store.handle_count(&fx.instance), 0);
    let borrowed = ResourceAny {
        own: false,
        ..r.clone()
    };
    assert_eq!(
        fx.call("rep-of", &[Val::Resource(borrowed)]).unwrap(),
        vec![Val::U32(42)]
    );
    assert!(fx.log.lock().unwrap().is_empty(), "a borrow does not drop");
    fx.call("consume", &[Val::Resource(r)]).unwrap();
    assert_eq!(
        *fx.log.lock().unwrap(),
        vec![Val::U32(42)],
        "the destructor ran with the rep"
    );
    assert_eq!(fx.store.handle_count(&fx.instance), 0);
}

#[test]
fn host_drops_a_guest_resource_through_its_destructor() {
    let mut fx = setup();
    let r = resource(&fx.call("make", &[Val::U32(9)]).unwrap()[0]);
    fx.store.drop_resource(&r).unwrap();
    assert_eq!(*fx.log.lock().unwrap(), vec![Val::U32(9)]);
}

#[test]
fn freed_handles_are_reused_last_in_first_out() {
    let mut fx = setup();
    assert_eq!(fx.call("reuse-order", &[]).unwrap(), vec![Val::U32(32)]);
    let log = fx.log.lock().unwrap().clone();
    assert_eq!(log, [200, 300, 100, 400, 500].map(Val::U32).to_vec());
}

#[test]
fn handle_traps() {
    let mut fx = setup();
    let err = fx.call("double-drop", &[]).unwrap_err();
    assert!(format!("{err:#}").contains("unknown handle index 1"), "{err:#}");
    let mut fx = setup();
    let err = fx.call("drop-zero", &[]).unwrap_err();
    assert!(format!("{err:#}").contains("unknown handle index 0"), "{err:#}");
    let mut fx = setup();
    let err = fx.call("rep-of-index", &[Val::U32(5)]).unwrap_err();
    assert!(format!("{err:#}").contains("unknown handle index 5"), "{err:#}");
    let mut fx = setup();
    let err = fx.call("wrong-type", &[]).unwrap_err();
    assert!(
        format!("{err:#}").contains(
            "handle index 1 used with the wrong type, expected host-defined resource but found guest-defined resource"
        ),
        "{err:#}"
    );
}

#[test]
fn borrowed_host_resources_must_be_dropped_before_return() {
    let mut fx = setup();
    let h = |rep| {
        Val::Resource(ResourceAny {
            ty: fx.host_ty.clone(),
            rep,
            own: false,
        })
    };
    let (a, b) = (h(11), h(12));
    assert_eq!(fx.call("borrow-host", &[a]).unwrap(), vec![Val::U32(1)]);
    assert!(
        fx.host_dropped.lock().unwrap().is_empty(),
        "dropping a borrow does not destroy"
    );
    let err = fx.call("keep-borrow", &[b]).unwrap_err();
    assert!(
        format!("{err:#}").contains("borrow handles still remain at the end of the call"),
        "{err:#}"
    );
}

#[test]
fn a_resource_of_another_type_is_refused_before_entering() {
    let mut fx = setup();
    let host = Val::Resource(ResourceAny {
        ty: fx.host_ty.clone(),
        rep: 1,
        own: true,
    });
    let err = fx.call("consume", &[host]).unwrap_err();
    assert!(format!("{err:#}").contains("type mismatch"), "{err:#}");
    // The instance is still usable.
    assert_eq!(fx.call("reuse-order", &[]).unwrap(), vec![Val::U32(32)]);
}
