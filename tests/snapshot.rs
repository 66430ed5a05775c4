//! A store reset to its snapshot is indistinguishable from a fresh
//! instance: secrets written to memory (a data segment's word and an
//! untouched page) and to a mutable global are gone, the memory's image is
//! back; a memory that grew is as short as it was, to the guest and to the
//! host, and a guest reaching past that is stopped as a fresh instance
//! would be; a handle kept is gone; a module that changes tables makes the
//! reset refuse (the instance must be dropped instead).

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
use std::sync::Arc;
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
fn a_kept_handle_is_gone_after_a_reset() {
    let (mut store, instance) = remember();
    let snapshot = store.snapshot().unwrap();
    call(&mut store, &instance, "keep", &[]);
    assert_eq!(store.handle_count(&instance), 1);
    assert!(store.reset(&snapshot));
    assert_eq!(store.handle_count(&instance), 0, "the table is as fresh");
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
/// (in memory and in a global) and leave `x`, trapping after that if `x`
/// is 13: a component and a core module (run natively), with the pool
/// `pool`.
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
          (if (i32.eq (local.get 0) (i32.const 13)) (then unreachable))
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
        // A call that traps after leaving its secret: the next sees none.
        let err = fresh.call_json(id, &[json!(13)]).unwrap_err();
        assert!(format!("{err:#}").contains("unreachable"), "{id}: {err:#}");
        assert_eq!(fresh.call_json(id, &[json!(5)]).unwrap(), json!(7), "{id}");
        let stats = fresh.pool_stats(id).unwrap();
        assert_eq!(
            (stats.created, stats.live),
            (1, 1),
            "{id}: reset, even after the trap: {stats:?}"
        );
    }
    // Shared, a trapped instance is replaced: it may be half-changed.
    for id in ["s:component", "s:core"] {
        assert!(shared.call_json(id, &[json!(13)]).is_err(), "{id}");
        assert_eq!(shared.call_json(id, &[json!(5)]).unwrap(), json!(7), "{id}");
        assert_eq!(shared.pool_stats(id).unwrap().created, 2, "{id}");
    }
}

/// The `regrow` guest, fresh, and how many times it called the host.
fn regrow() -> (Store<()>, wippy_wasm::Instance, Arc<AtomicU32>) {
    let engine = Engine::default();
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/guests/regrow.wat");
    let component = Component::new(&engine, &std::fs::read(path).unwrap()).unwrap();
    let told = Arc::new(AtomicU32::new(0));
    let mut linker = Linker::default();
    let t = told.clone();
    linker.root().func_wrap("tell", move |_, (_,): (u32,)| {
        t.fetch_add(1, SeqCst);
        Ok(())
    });
    let mut store = Store::new(&engine, ());
    let instance = linker.instantiate(&mut store, &component).unwrap();
    (store, instance, told)
}

fn try_call(
    store: &mut Store<()>,
    instance: &wippy_wasm::Instance,
    name: &str,
    args: &[Val],
) -> Result<Vec<Val>, String> {
    let f = instance.get_func(store, name).unwrap();
    f.call(store, args).map_err(|e| format!("{e:#}"))
}

/// A word on the page a grow adds to the guest's one page.
const GROWN: u32 = 65536 + 8;

/// A regrow instance that grew a page, wrote a secret there and was reset.
fn recycled() -> (Store<()>, wippy_wasm::Instance, Arc<AtomicU32>) {
    let (mut store, instance, told) = regrow();
    let snapshot = store.snapshot().unwrap();
    assert_eq!(call(&mut store, &instance, "grow", &[Val::U32(1)]), [Val::S32(1)]);
    call(&mut store, &instance, "poke", &[Val::U32(GROWN), Val::U32(0xdead_beef)]);
    assert!(store.reset(&snapshot), "a grown memory we made comes back");
    (store, instance, told)
}

#[test]
fn a_grown_memory_comes_back_to_its_size_and_forgets_what_it_held() {
    let (mut store, instance, _) = recycled();
    assert_eq!(call(&mut store, &instance, "size", &[]), [Val::U32(1)], "as fresh");
    let (mut fresh, fresh_instance, _) = regrow();
    let past = |store: &mut Store<()>, instance| try_call(store, instance, "peek", &[Val::U32(GROWN)]);
    let want = past(&mut fresh, &fresh_instance).unwrap_err();
    assert!(want.contains("out of bounds"), "{want}");
    assert_eq!(
        past(&mut store, &instance).unwrap_err(),
        want,
        "the same trap as a fresh instance"
    );

    // Growing again gives a zeroed page, as it would a fresh instance.
    let (mut store, instance, _) = recycled();
    assert_eq!(call(&mut store, &instance, "grow", &[Val::U32(1)]), [Val::S32(1)]);
    assert_eq!(
        call(&mut store, &instance, "peek", &[Val::U32(GROWN)]),
        [Val::U32(0)],
        "the secret is gone"
    );
    // And past the real size: wasmi grows it.
    assert_eq!(call(&mut store, &instance, "grow", &[Val::U32(2)]), [Val::S32(2)]);
    assert_eq!(call(&mut store, &instance, "size", &[]), [Val::U32(4)]);
    assert_eq!(
        call(&mut store, &instance, "peek", &[Val::U32(3 * 65536)]),
        [Val::U32(0)]
    );
}

#[test]
fn memories_reset_one_after_another_are_closed_together_and_each_is_as_fresh() {
    // Their grown pages wait to be guarded until one of them runs again
    // (`memory::closing`); one store is dropped meanwhile.
    let mut waiting: Vec<_> = (0..6).map(|_| recycled()).collect();
    drop(waiting.pop());
    // A new instance may get the dropped one's address space: what was
    // queued for it must never touch this one's grown page.
    let (mut other, other_instance, _) = regrow();
    assert_eq!(call(&mut other, &other_instance, "grow", &[Val::U32(1)]), [Val::S32(1)]);
    call(&mut other, &other_instance, "poke", &[Val::U32(GROWN), Val::U32(42)]);

    let (mut fresh, fresh_instance, _) = regrow();
    let want = try_call(&mut fresh, &fresh_instance, "peek", &[Val::U32(GROWN)]).unwrap_err();
    // (A trap ends an instance: some reach past their size, the others grow.)
    let (reaching, growing) = waiting.split_at_mut(2);
    for (store, instance, _) in reaching {
        assert_eq!(try_call(store, instance, "peek", &[Val::U32(GROWN)]).unwrap_err(), want);
    }
    for (store, instance, _) in growing {
        assert_eq!(call(store, instance, "grow", &[Val::U32(1)]), [Val::S32(1)]);
        assert_eq!(
            call(store, instance, "peek", &[Val::U32(GROWN)]),
            [Val::U32(0)],
            "the secret is gone"
        );
    }
    assert_eq!(
        call(&mut other, &other_instance, "peek", &[Val::U32(GROWN)]),
        [Val::U32(42)],
        "untouched"
    );
}

#[test]
fn a_guest_reaching_past_its_size_is_stopped_before_the_host_acts() {
    for (entry, told_fresh) in [("poke-then-tell", 0), ("poke-then-trap", 0)] {
        let (mut fresh, fresh_instance, told) = regrow();
        let args = [Val::U32(GROWN), Val::U32(5)];
        let want = try_call(&mut fresh, &fresh_instance, entry, &args).unwrap_err();
        assert_eq!(told.load(SeqCst), told_fresh);

        let (mut store, instance, told) = regrow();
        let snapshot = store.snapshot().unwrap();
        assert_eq!(call(&mut store, &instance, "grow", &[Val::U32(1)]), [Val::S32(1)]);
        assert!(store.reset(&snapshot));
        let got = try_call(&mut store, &instance, entry, &args).unwrap_err();
        assert_eq!(got, want, "{entry}: the trap a fresh instance gives");
        assert_eq!(told.load(SeqCst), 0, "{entry}: the host was never called");
        // Reset after that trap, it is as fresh again: what it wrote past
        // its size is gone, and reaching there traps again.
        assert!(store.reset(&snapshot), "{entry}: reset after the trap");
        let reach = try_call(&mut store, &instance, "peek", &[Val::U32(GROWN)]).unwrap_err();
        let (mut fresh, fresh_instance, _) = regrow();
        assert_eq!(
            reach,
            try_call(&mut fresh, &fresh_instance, "peek", &[Val::U32(GROWN)]).unwrap_err()
        );
        assert!(store.reset(&snapshot), "{entry}: reset after the second trap");
        assert_eq!(call(&mut store, &instance, "grow", &[Val::U32(1)]), [Val::S32(1)]);
        assert_eq!(
            call(&mut store, &instance, "peek", &[Val::U32(GROWN)]),
            [Val::U32(0)],
            "{entry}: what it wrote is gone"
        );
    }
}

#[test]
fn the_host_sees_a_recycled_memory_at_its_guests_size() {
    let (mut fresh, fresh_instance, _) = regrow();
    let want = try_call(&mut fresh, &fresh_instance, "text", &[Val::U32(GROWN)]).unwrap_err();
    let (mut store, instance, _) = recycled();
    let got = try_call(&mut store, &instance, "text", &[Val::U32(GROWN)]).unwrap_err();
    assert_eq!(got, want);
    assert!(want.contains("out of bounds"), "{want}");
    let (mut store, instance, _) = recycled();
    assert_eq!(
        call(&mut store, &instance, "text", &[Val::U32(100)]),
        [Val::String("\0\0\0\0".into())]
    );
}

/// Bytes of the `big` guest's memory at instantiation (16 wasm pages).
const BIG: u32 = 16 << 16;

/// A guest with a memory image larger than a reset compares (> 256 KiB):
/// two data segments that start and end off the host's pages, with zero
/// pages between and after them. `dump(at, len)` returns the bytes
/// (writing where they are, `SCRATCH`, first); `fill(at, len, byte)` is
/// memory.fill.
fn big() -> (Store<()>, wippy_wasm::Instance) {
    let data = |from: u32, len: u32| -> String {
        let bytes: String = (from..from + len)
            .map(|i| format!("\\{:02x}", (i.wrapping_mul(31) + 7) % 251 + 1))
            .collect();
        format!("(data (i32.const {from}) \"{bytes}\")")
    };
    let wat = format!(
        r#"(component
      (core module $M
        (memory (export "mem") {pages})
        (global $g (mut i32) (i32.const 7))
        {a} {b}
        (func (export "poke") (param i32 i32) (i32.store (local.get 0) (local.get 1)) (global.set $g (local.get 1)))
        (func (export "peek") (param i32) (result i32) (i32.add (i32.load (local.get 0)) (global.get $g)))
        (func (export "fill") (param i32 i32 i32) (memory.fill (local.get 0) (local.get 2) (local.get 1)))
        (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0)))
        (func (export "dump") (param i32 i32) (result i32)
          (i32.store (i32.const {SCRATCH}) (local.get 0))
          (i32.store (i32.const {scratch_len}) (local.get 1))
          (i32.const {SCRATCH})))
      (core instance $m (instantiate $M))
      (func (export "poke") (param "at" u32) (param "x" u32) (canon lift (core func $m "poke")))
      (func (export "peek") (param "at" u32) (result u32) (canon lift (core func $m "peek")))
      (func (export "fill") (param "at" u32) (param "len" u32) (param "byte" u32) (canon lift (core func $m "fill")))
      (func (export "grow") (param "n" u32) (result s32) (canon lift (core func $m "grow")))
      (func (export "dump") (param "at" u32) (param "len" u32) (result (list u8))
        (canon lift (core func $m "dump") (memory (core memory $m "mem")))))"#,
        pages = BIG >> 16,
        a = data(1000, 200_000),
        b = data(300_000, 100_000),
        scratch_len = SCRATCH + 4,
    );
    let engine = Engine::default();
    let component = Component::new(&engine, wat.as_bytes()).unwrap();
    let mut store = Store::new(&engine, ());
    let instance = Linker::default().instantiate(&mut store, &component).unwrap();
    (store, instance)
}

/// Where `dump` puts its result's address and length (in a zero page).
const SCRATCH: u32 = 250_000;

/// What [`everything`] reads.
type Reading = (Vec<Val>, Vec<u8>);

/// All of the `big` guest's memory (and its global, through `peek`) as
/// its guest and the host can see it.
fn everything(store: &mut Store<()>, instance: &wippy_wasm::Instance) -> Reading {
    // `dump` writes its scratch words first: read them before.
    let scratch = [SCRATCH, SCRATCH + 4]
        .iter()
        .flat_map(|&at| call(store, instance, "peek", &[Val::U32(at)]))
        .collect();
    let mut bytes = Vec::new();
    for at in (0..BIG).step_by(1 << 16) {
        match call(store, instance, "dump", &[Val::U32(at), Val::U32(1 << 16)]).remove(0) {
            Val::Bytes(b) => bytes.extend(b),
            Val::List(list) => bytes.extend(list.into_iter().map(|v| match v {
                Val::U8(b) => b,
                v => panic!("{v:?}"),
            })),
            v => panic!("a list of bytes: {v:?}"),
        }
    }
    (scratch, bytes)
}

/// Panics unless the `big` guest's memory and global read as `want` (what
/// a fresh instance reads), naming `what` was done before.
fn assert_as_fresh(store: &mut Store<()>, instance: &wippy_wasm::Instance, want: &Reading, what: &str) {
    let got = everything(store, instance);
    assert_eq!(got.0, want.0, "{what}: the global and scratch words");
    if let Some(at) = (0..want.1.len()).find(|&at| got.1.get(at) != want.1.get(at)) {
        panic!("{what}: byte {at} is {:?}, fresh {:#x}", got.1.get(at), want.1[at]);
    }
    assert_eq!(got.1.len(), want.1.len(), "{what}");
}

/// What a fresh `big` guest reads, and another `big` guest with its
/// snapshot.
fn big_snapshotted() -> (Reading, Store<()>, wippy_wasm::Instance, wippy_wasm::Snapshot) {
    let (mut fresh, fresh_instance) = big();
    let want = everything(&mut fresh, &fresh_instance);
    let (mut store, instance) = big();
    let snapshot = store.snapshot().unwrap();
    (want, store, instance, snapshot)
}

/// What the `big` guest gets reading past its memory (a trap: the
/// instance cannot be entered again).
fn past(store: &mut Store<()>, instance: &wippy_wasm::Instance) -> String {
    try_call(store, instance, "peek", &[Val::U32(BIG)]).unwrap_err()
}

#[test]
fn a_reset_memory_with_a_large_image_is_byte_for_byte_a_fresh_ones() {
    let (mut fresh, fresh_instance) = big();
    let want = everything(&mut fresh, &fresh_instance);

    let (mut store, instance) = big();
    let snapshot = store.snapshot().unwrap();
    assert!(snapshot.image_bytes() > 256 << 10, "{}", snapshot.image_bytes());
    let fill = |store: &mut Store<()>, at: u32, len: u32, byte: u32| {
        call(store, &instance, "fill", &[Val::U32(at), Val::U32(len), Val::U32(byte)]);
    };
    let poke = |store: &mut Store<()>, at: u32, x: u32| {
        call(store, &instance, "poke", &[Val::U32(at), Val::U32(x)]);
    };
    // Each round writes secrets, resets, and must find nothing of them;
    // the later rounds see what the first reset tracked.
    type Round<'a> = &'a dyn Fn(&mut Store<()>);
    let rounds: [Round; 5] = [
        // Inside image chunks (on a page the image shares with zeros, and
        // whole pages), in a zero page, and past the image's end.
        &|s| {
            poke(s, 1000, 0xdead_beef);
            poke(s, 500, 0xdead_beef);
            poke(s, 150_000, 0xdead_beef);
            poke(s, 399_998, 0xdead_beef);
            poke(s, 270_000, 0xdead_beef);
            poke(s, BIG - 4, 0xdead_beef);
        },
        // Much at once: an image segment zeroed, the zero pages filled (more
        // than a reset zeroes in place), and the memory grown and written.
        &|s| {
            fill(s, 1000, 200_000, 0);
            fill(s, 400_000, BIG - 400_000, 0xab);
            assert_eq!(call(s, &instance, "grow", &[Val::U32(2)]), [Val::S32(16)]);
            fill(s, BIG, 2 << 16, 0xcd);
            poke(s, 300_004, 1);
        },
        // Nothing.
        &|_| {},
        // The same pages again, after a reset protected them.
        &|s| {
            poke(s, 150_000, 0xfeed);
            fill(s, 400_000, 8192, 0x11);
        },
        // A page of the image zeroed, then dropped by the host.
        &|s| {
            fill(s, 8192, 4096, 0);
            s.release_zero_pages();
        },
    ];
    for (i, round) in rounds.iter().enumerate() {
        round(&mut store);
        assert!(store.reset(&snapshot), "round {i}");
        assert_as_fresh(&mut store, &instance, &want, &format!("round {i}"));
    }
    let trap = past(&mut fresh, &fresh_instance);
    assert!(trap.contains("out of bounds"), "{trap}");
    assert_eq!(past(&mut store, &instance), trap, "as short as a fresh memory");
}

/// A tracked memory reset round after round: pages written on every call,
/// pages written now and then (found protected again, or written for the
/// first time), and what reading the memory back wrote; each reset is exact.
#[test]
fn a_tracked_memory_is_reset_exactly_round_after_round() {
    let (want, mut store, instance, snapshot) = big_snapshotted();
    for round in 0..40u32 {
        let secret = 0x5ec0_0000 + round;
        // Written every round: in an image chunk, and in a zero page.
        let mut pokes = vec![2000, 260_000];
        // Written now and then: a new page each time, and one page again.
        if round % 5 == 0 {
            pokes.push(350_000 + round * 4096);
        }
        if round % 7 == 3 {
            pokes.push(2000 + 4096);
        }
        for at in pokes {
            call(&mut store, &instance, "poke", &[Val::U32(at), Val::U32(secret)]);
        }
        assert!(store.reset(&snapshot), "round {round}");
        assert_as_fresh(&mut store, &instance, &want, &format!("round {round}"));
        // What `everything` wrote is undone too.
        assert!(store.reset(&snapshot), "round {round}, again");
    }
}

#[test]
fn a_reset_store_is_held_to_its_memory_limit_as_a_fresh_one() {
    // Two memories of a page each, 4 pages more allowed in all.
    let wat = r#"(component
      (core module $A (memory (export "mem") 1)
        (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0))))
      (core module $B (memory (export "mem") 1)
        (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0))))
      (core instance $a (instantiate $A))
      (core instance $b (instantiate $B))
      (func (export "grow-a") (param "n" u32) (result s32) (canon lift (core func $a "grow")))
      (func (export "grow-b") (param "n" u32) (result s32) (canon lift (core func $b "grow"))))"#;
    let engine = Engine::default();
    let component = Component::new(&engine, wat.as_bytes()).unwrap();
    let new = || {
        let mut store = Store::new(&engine, ());
        store.set_limits(wippy_wasm::Limits {
            memory_bytes: 6 << 16,
            ..Default::default()
        });
        let instance = Linker::default().instantiate(&mut store, &component).unwrap();
        (store, instance)
    };
    let (mut store, instance) = new();
    let snapshot = store.snapshot().unwrap();
    assert_eq!(call(&mut store, &instance, "grow-a", &[Val::U32(4)]), [Val::S32(1)]);
    assert!(store.reset(&snapshot));
    // As on a fresh instance: the other memory may take the 4 pages the
    // first gave back, and then neither may grow.
    let (mut fresh, fresh_instance) = new();
    assert_eq!(store.memory_bytes(), fresh.memory_bytes());
    for (entry, n, want) in [("grow-b", 4, 1), ("grow-a", 1, -1), ("grow-b", 1, -1)] {
        let args = [Val::U32(n)];
        assert_eq!(
            call(&mut fresh, &fresh_instance, entry, &args),
            [Val::S32(want)],
            "fresh {entry}"
        );
        assert_eq!(
            call(&mut store, &instance, entry, &args),
            [Val::S32(want)],
            "reset {entry}"
        );
    }
    // Back to its size, the first memory grows again within what wasmi
    // gave it, counted as a fresh grow would be.
    assert!(store.reset(&snapshot));
    assert_eq!(call(&mut store, &instance, "grow-a", &[Val::U32(2)]), [Val::S32(1)]);
    assert_eq!(call(&mut store, &instance, "grow-b", &[Val::U32(3)]), [Val::S32(-1)]);
    assert_eq!(call(&mut store, &instance, "grow-b", &[Val::U32(2)]), [Val::S32(1)]);
}
