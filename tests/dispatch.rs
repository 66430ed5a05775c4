//! The dispatcher: async host functions suspend guests (resumable calls),
//! other guests run meanwhile, sleeping guests cost no CPU, and fuel slices
//! keep a busy guest from starving the others.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wippy_wasm::{dispatch::HostFuture, Component, Config, Engine, Linker, Store, Val};

/// `run(ms)` calls the async host import `sleep(ms)` and returns ms + 1.
const SLEEPER: &str = r#"(component
  (import "sleep" (func $sleep (param "ms" u32)))
  (core func $sleep' (canon lower (func $sleep)))
  (core module $M
    (import "" "sleep" (func $sleep (param i32)))
    (func (export "run") (param i32) (result i32)
      (call $sleep (local.get 0))
      (i32.add (local.get 0) (i32.const 1))))
  (core instance $m (instantiate $M (with "" (instance (export "sleep" (func $sleep'))))))
  (func (export "run") (param "ms" u32) (result u32) (canon lift (core func $m "run"))))"#;

fn sleeping_linker<T: 'static>() -> Linker<T> {
    let mut linker = Linker::<T>::default();
    linker.root().func_async("sleep", |_, args| {
        let Val::U32(ms) = args[0] else {
            anyhow::bail!("expected u32")
        };
        let fut: HostFuture = Box::pin(async move {
            async_io::Timer::after(Duration::from_millis(ms as u64)).await;
            Ok(vec![])
        });
        Ok(fut)
    });
    linker
}

#[test]
fn a_thousand_sleeping_instances_finish_together() {
    let engine = Engine::default();
    let component = Component::new(&engine, SLEEPER.as_bytes()).unwrap();
    let linker = Arc::new(sleeping_linker::<()>());
    let executor = Arc::new(async_executor::Executor::new());
    let done = Arc::new(AtomicUsize::new(0));
    let cpu_before = cpu_time();
    let start = Instant::now();
    let tasks: Vec<_> = (0..1000)
        .map(|_| {
            let (engine, component, linker, done) = (engine.clone(), component.clone(), linker.clone(), done.clone());
            executor.spawn(async move {
                let mut store = Store::new(&engine, ());
                let instance = linker.instantiate(&mut store, &component).unwrap();
                let run = instance.get_func(&store, "run").unwrap();
                let out = run.call_async(&mut store, &[Val::U32(100)]).await.unwrap();
                assert_eq!(out, vec![Val::U32(101)]);
                done.fetch_add(1, Ordering::Relaxed);
            })
        })
        .collect();
    wippy_wasm::dispatch::block_on(executor.run(async {
        for t in tasks {
            t.await;
        }
    }));
    let elapsed = start.elapsed();
    assert_eq!(done.load(Ordering::Relaxed), 1000);
    assert!(
        elapsed < Duration::from_millis(1000),
        "1000 × 100 ms sleeps took {elapsed:?}"
    );
    // Sleeping costs no CPU: the CPU time spent is far below the wall time
    // a busy wait would burn (instantiation dominates).
    let cpu = cpu_time() - cpu_before;
    eprintln!("1000 sleepers: {elapsed:?} wall, {cpu:?} CPU");
}

/// CPU time (user + system) of the calling thread: tests run in parallel in
/// one process, so the process total would count the others.
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or("").split_whitespace().collect();
    let ticks: u64 = fields.get(11).and_then(|u| u.parse().ok()).unwrap_or(0)
        + fields.get(12).and_then(|s| s.parse().ok()).unwrap_or(0);
    Duration::from_millis(ticks * 10)
}

#[test]
fn outside_an_async_call_the_future_runs_in_place() {
    let engine = Engine::default();
    let component = Component::new(&engine, SLEEPER.as_bytes()).unwrap();
    let mut store = Store::new(&engine, ());
    let instance = sleeping_linker::<()>().instantiate(&mut store, &component).unwrap();
    let start = Instant::now();
    let out = instance
        .get_func(&store, "run")
        .unwrap()
        .call(&mut store, &[Val::U32(20)])
        .unwrap();
    assert_eq!(out, vec![Val::U32(21)]);
    assert!(start.elapsed() >= Duration::from_millis(20));
}

/// `spin(n)` counts down from n in a tight loop.
const SPINNER: &str = r#"(component
  (core module $M
    (func (export "spin") (param i32) (result i32)
      (block $done (loop $l
        (br_if $done (i32.eqz (local.get 0)))
        (local.set 0 (i32.sub (local.get 0) (i32.const 1)))
        (br $l)))
      (i32.const 7)))
  (core instance $m (instantiate $M))
  (func (export "spin") (param "n" u32) (result u32) (canon lift (core func $m "spin"))))"#;

#[test]
fn fuel_slices_keep_a_busy_guest_from_starving_others() {
    let mut config = Config::default();
    config.consume_fuel(true);
    let engine = Engine::new(&config);
    let spinner = Component::new(&engine, SPINNER.as_bytes()).unwrap();
    let executor = async_executor::Executor::new();
    let order = Arc::new(Mutex::new(Vec::new()));
    let task = |name: &'static str, n: u32| {
        let (engine, spinner, order) = (engine.clone(), spinner.clone(), order.clone());
        executor.spawn(async move {
            let mut store = Store::new(&engine, ());
            store.set_fuel_slice(Some(10_000));
            let instance = Linker::<()>::default().instantiate(&mut store, &spinner).unwrap();
            let f = instance.get_func(&store, "spin").unwrap();
            assert_eq!(
                f.call_async(&mut store, &[Val::U32(n)]).await.unwrap(),
                vec![Val::U32(7)]
            );
            order.lock().unwrap().push(name);
        })
    };
    // The long one starts first; on a single-threaded executor without slices
    // it would finish first.
    let long = task("long", 20_000_000);
    let short = task("short", 10_000);
    wippy_wasm::dispatch::block_on(executor.run(async {
        short.await;
        long.await;
    }));
    assert_eq!(*order.lock().unwrap(), vec!["short", "long"]);
}

#[test]
fn a_composed_chain_suspends_through_the_adapter() {
    // $Outer.run → adapter → $Inner.run → host sleep: the whole chain pauses.
    let wat = String::from(
        r#"(component
  (import "sleep" (func $sleep (param "ms" u32)))
  (component $Inner
    (import "sleep" (func $sleep (param "ms" u32)))
    (core func $sleep' (canon lower (func $sleep)))
    (core module $M
      (import "" "sleep" (func $sleep (param i32)))
      (func (export "run") (param i32) (result i32)
        (call $sleep (local.get 0))
        (i32.add (local.get 0) (i32.const 1))))
    (core instance $m (instantiate $M (with "" (instance (export "sleep" (func $sleep'))))))
    (func (export "run") (param "ms" u32) (result u32) (canon lift (core func $m "run"))))
  (component $Outer
    (import "run" (func $run (param "ms" u32) (result u32)))
    (core func $run' (canon lower (func $run)))
    (core module $M
      (import "" "run" (func $run (param i32) (result i32)))
      (func (export "twice") (param i32) (result i32)
        (i32.add (call $run (local.get 0)) (call $run (local.get 0)))))
    (core instance $m (instantiate $M (with "" (instance (export "run" (func $run'))))))
    (func (export "twice") (param "ms" u32) (result u32) (canon lift (core func $m "twice"))))
  (instance $i (instantiate $Inner (with "sleep" (func $sleep))))
  (instance $o (instantiate $Outer (with "run" (func $i "run"))))
  (func (export "twice") (alias export $o "twice")))"#,
    );
    let engine = Engine::default();
    let component = Component::new(&engine, wat.as_bytes()).unwrap_or_else(|e| panic!("{e:#}"));
    let linker = Arc::new(sleeping_linker::<()>());
    let executor = async_executor::Executor::new();
    let start = Instant::now();
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let (engine, component, linker) = (engine.clone(), component.clone(), linker.clone());
            executor.spawn(async move {
                let mut store = Store::new(&engine, ());
                let instance = linker.instantiate(&mut store, &component).unwrap();
                let f = instance.get_func(&store, "twice").unwrap();
                f.call_async(&mut store, &[Val::U32(50)]).await.unwrap()
            })
        })
        .collect();
    let outs = wippy_wasm::dispatch::block_on(executor.run(async {
        let mut outs = Vec::new();
        for t in tasks {
            outs.push(t.await);
        }
        outs
    }));
    assert!(outs.iter().all(|o| *o == vec![Val::U32(102)]));
    // 50 chains × two 50 ms sleeps, concurrently: about 100 ms, not 5 s.
    assert!(start.elapsed() < Duration::from_millis(1500), "{:?}", start.elapsed());
}

#[test]
fn a_sleeping_guest_costs_no_cpu() {
    let engine = Engine::default();
    let component = Component::new(&engine, SLEEPER.as_bytes()).unwrap();
    let mut store = Store::new(&engine, ());
    let instance = sleeping_linker::<()>().instantiate(&mut store, &component).unwrap();
    let run = instance.get_func(&store, "run").unwrap();
    let (cpu, start) = (cpu_time(), Instant::now());
    wippy_wasm::dispatch::block_on(run.call_async(&mut store, &[Val::U32(400)])).unwrap();
    let (wall, cpu) = (start.elapsed(), cpu_time() - cpu);
    assert!(wall >= Duration::from_millis(400));
    assert!(cpu < Duration::from_millis(100), "{cpu:?} of CPU for a {wall:?} sleep");
}
