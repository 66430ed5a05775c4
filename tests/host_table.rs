//! The host resource table through a real component: a child resource keeps
//! its parent alive, and a guest that drops the parent first gets a trap
//! naming why, while the host keeps its objects intact.

use wippy_wasm::{Component, Engine, Linker, Resource, ResourceAny, ResourceTable, Store, Val};

const GUEST: &str = r#"(component
  (import "dir" (type $D (sub resource)))
  (import "file" (type $F (sub resource)))
  (import "open-dir" (func $open-dir (result (own $D))))
  (import "open-file" (func $open-file (param "d" (borrow $D)) (result (own $F))))
  (core func $open-dir' (canon lower (func $open-dir)))
  (core func $open-file' (canon lower (func $open-file)))
  (core func $drop-d (canon resource.drop $D))
  (core func $drop-f (canon resource.drop $F))
  (core module $M
    (import "" "open-dir" (func $open-dir (result i32)))
    (import "" "open-file" (func $open-file (param i32) (result i32)))
    (import "" "drop-d" (func $drop-d (param i32)))
    (import "" "drop-f" (func $drop-f (param i32)))
    (func (export "good") (local $d i32) (local $f i32)
      (local.set $d (call $open-dir))
      (local.set $f (call $open-file (local.get $d)))
      (call $drop-f (local.get $f))
      (call $drop-d (local.get $d)))
    (func (export "bad") (local $d i32)
      (local.set $d (call $open-dir))
      (drop (call $open-file (local.get $d)))
      (call $drop-d (local.get $d))))
  (core instance $m (instantiate $M (with "" (instance
    (export "open-dir" (func $open-dir')) (export "open-file" (func $open-file'))
    (export "drop-d" (func $drop-d)) (export "drop-f" (func $drop-f))))))
  (func (export "good") (canon lift (core func $m "good")))
  (func (export "bad") (canon lift (core func $m "bad"))))"#;

struct Dir;
struct File;

fn setup() -> (Store<ResourceTable>, wippy_wasm::Instance) {
    let engine = Engine::default();
    let component = Component::new(&engine, GUEST.as_bytes()).unwrap();
    let mut linker = Linker::<ResourceTable>::default();
    let root = linker.root();
    let dir_ty = root.resource("dir", |mut cx, rep| {
        cx.data_mut().delete(Resource::<Dir>::new(rep))?;
        Ok(())
    });
    let file_ty = root.resource("file", |mut cx, rep| {
        cx.data_mut().delete(Resource::<File>::new(rep))?;
        Ok(())
    });
    root.func_new("open-dir", move |mut cx, _, out| {
        let r = cx.data_mut().push(Dir)?;
        out.push(Val::Resource(ResourceAny {
            ty: dir_ty.clone(),
            rep: r.rep(),
            own: true,
        }));
        Ok(())
    });
    root.func_new("open-file", move |mut cx, args, out| {
        let Val::Resource(d) = &args[0] else {
            anyhow::bail!("expected a dir")
        };
        let r = cx.data_mut().push_child(File, &Resource::<Dir>::new(d.rep))?;
        out.push(Val::Resource(ResourceAny {
            ty: file_ty.clone(),
            rep: r.rep(),
            own: true,
        }));
        Ok(())
    });
    let mut store = Store::new(&engine, ResourceTable::new());
    let instance = linker.instantiate(&mut store, &component).unwrap();
    (store, instance)
}

#[test]
fn children_dropped_first_release_everything() {
    let (mut store, i) = setup();
    i.get_func(&store, "good").unwrap().call(&mut store, &[]).unwrap();
    assert!(store.data().is_empty());
}

#[test]
fn dropping_a_parent_with_children_traps_and_keeps_both() {
    let (mut store, i) = setup();
    let err = i.get_func(&store, "bad").unwrap().call(&mut store, &[]).unwrap_err();
    assert!(format!("{err:#}").contains("resource still has children"), "{err:#}");
    assert_eq!(store.data().len(), 2);
}
