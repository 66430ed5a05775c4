//! What an instance as fresh costs (issue 15): for the C proxy
//! (`tests/c_http/proxy.wasm`, 257 pages declared) and the Python proxy
//! (built with componentize-py when it is installed),
//! - the time to make a new instance from an `InstancePre` in a new store
//!   (with its WASI host state), and with its snapshot taken as
//!   `serve --fresh-instances` takes it (sharing an earlier instance's
//!   memory image);
//! - the time to reset an idle one to its snapshot;
//! - a `GET /hello` handled as `serve` hands it over, on a pooled instance
//!   and on one reset after every request: the difference is what an
//!   instance as fresh costs per request, and of that, the reset itself;
//! - the memory image a snapshot keeps;
//!
//! then the resident memory of 1000 idle instances of the C proxy in one
//! process.
//!
//! ```sh
//! cargo bench --bench instances
//! ```

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use wippy_wasm::dispatch::block_on;
use wippy_wasm::serve::HandlerTypes;
use wippy_wasm::wasi::http::pipe::{End, Pipe};
use wippy_wasm::wasi::http::types::{IncomingRequest, Request, Response, Slot};
use wippy_wasm::wasi::WasiCtx;
use wippy_wasm::{Component, Config, Engine, Func, Linker, Store, Val};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Mean time per iteration of `f` over `n` iterations, best of 3 rounds.
fn per_iteration(n: u32, mut f: impl FnMut()) -> Duration {
    (0..3)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..n {
                f();
            }
            start.elapsed() / n
        })
        .min()
        .unwrap_or_default()
}

/// `GET /hello` as `serve` hands it to the guest, with an empty body.
fn hello() -> IncomingRequest {
    let body = Pipe::new(Some(0));
    let _ = body.finish(End::Finished(None));
    IncomingRequest(Request {
        method: http::Method::GET,
        scheme: Some(http::uri::Scheme::HTTP),
        authority: Some("localhost".into()),
        path_with_query: Some("/hello".into()),
        headers: http::HeaderMap::new(),
        body: Some(body),
    })
}

/// Calls the guest's handler with [`hello`] and checks it answered 200.
fn request(types: &HandlerTypes, store: &mut Store<WasiCtx>, handle: &Func) {
    let slot: Arc<Slot<Result<Response, Val>>> = Arc::default();
    block_on(types.call(store, handle, hello(), slot.clone())).unwrap();
    let response = slot.take();
    assert!(matches!(response, Some(Ok(Response { status: 200, .. }))));
}

fn measure(name: &str, path: &Path, n: u32) {
    let mut config = Config::default();
    config.consume_fuel(true);
    let engine = Engine::new(&config);
    let component = Component::new(&engine, &std::fs::read(path).unwrap()).unwrap();
    let mut linker = Linker::default();
    wippy_wasm::wasi::add_to_linker(&mut linker).unwrap();
    let types = HandlerTypes::of(&linker).unwrap();
    let pre = linker.instantiate_pre(&component).unwrap();
    // As `serve` makes them: fuel-sliced, with their WASI host state.
    let new_store = || {
        let mut store = Store::new(&engine, WasiCtx::new());
        store.set_fuel_slice(Some(100_000));
        store
    };
    let new = per_iteration(n, || {
        let mut store = new_store();
        pre.instantiate(&mut store).unwrap();
    });
    let mut store = new_store();
    let instance = pre.instantiate(&mut store).unwrap();
    let handle = instance.get_func(&store, "wasi:http/incoming-handler#handle").unwrap();
    let snapshot = store.snapshot().unwrap();
    // A new instance as `serve --fresh-instances` makes one: with its
    // snapshot, sharing the first one's memory image.
    let template = std::sync::OnceLock::from(snapshot.clone());
    let new_fresh = per_iteration(n, || {
        let mut store = new_store();
        pre.instantiate(&mut store).unwrap();
        assert!(store.settle(true, &template).is_some());
    });
    let reset = per_iteration(n, || {
        assert!(store.reset(&snapshot));
        *store.data_mut() = WasiCtx::new();
    });
    // A request on a pooled instance, and on one reset to its snapshot
    // after each: the difference is what an instance as fresh costs.
    let pooled = per_iteration(n, || request(&types, &mut store, &handle));
    // The resets in there, timed on their own (the rest is the guest).
    let (mut resets, mut count) = (Duration::ZERO, 0);
    let fresh = per_iteration(n, || {
        request(&types, &mut store, &handle);
        let start = Instant::now();
        assert!(store.reset(&snapshot));
        *store.data_mut() = WasiCtx::new();
        resets += start.elapsed();
        count += 1;
    });
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    println!(
        "{name:<14} {:>10.1} {:>12.1} {:>10.1} {:>11.1} {:>10.1} {:>10.1} {:>13.1} {:>10}",
        us(new),
        us(new_fresh),
        us(reset),
        us(fresh.saturating_sub(pooled)),
        us(pooled),
        us(fresh),
        us(resets / count),
        snapshot.image_bytes() / 1024
    );
}

/// Reset time after the guest wrote `pages` 4 KiB pages (half in its 8 MiB
/// image, half in zero memory past it), of a core module that writes its
/// image at instantiation: what a reset costs as a function of what was
/// written.
fn after_writes(pages: u32) -> Duration {
    let wat = r#"(component
      (core module $M
        (memory (export "mem") 256)
        (func $init (memory.fill (i32.const 0) (i32.const 1) (i32.const 0x800000)))
        (start $init)
        (func (export "touch") (param $at i32) (param $n i32)
          (block $done (loop $next
            (br_if $done (i32.eqz (local.get $n)))
            (i32.store8 (local.get $at) (i32.const 9))
            (local.set $at (i32.add (local.get $at) (i32.const 4096)))
            (local.set $n (i32.sub (local.get $n) (i32.const 1)))
            (br $next)))))
      (core instance $m (instantiate $M))
      (func (export "touch") (param "at" u32) (param "n" u32) (canon lift (core func $m "touch"))))"#;
    let engine = Engine::default();
    let component = Component::new(&engine, wat.as_bytes()).unwrap();
    let mut store = Store::new(&engine, ());
    let instance = Linker::default().instantiate(&mut store, &component).unwrap();
    let touch = instance.get_func(&store, "touch").unwrap();
    let snapshot = store.snapshot().unwrap();
    let (n, rounds) = (pages / 2, 200);
    let mut spent = Duration::MAX;
    for _ in 0..3 {
        let mut total = Duration::ZERO;
        for _ in 0..rounds {
            for at in [0x10_0000, 0x90_0000] {
                touch
                    .call(&mut store, &[wippy_wasm::Val::U32(at), wippy_wasm::Val::U32(n)])
                    .unwrap();
            }
            let start = Instant::now();
            assert!(store.reset(&snapshot));
            total += start.elapsed();
        }
        spent = spent.min(total / rounds);
    }
    spent
}

/// Resident set size of this process, KiB.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Resident memory per idle instance of the C proxy: `n` instances kept,
/// with their zero pages released (as `serve` and the registry keep them)
/// or not.
fn density(n: usize, release: bool) -> f64 {
    let mut config = Config::default();
    config.consume_fuel(true);
    let engine = Engine::new(&config);
    let path = root().join("tests/c_http/proxy.wasm");
    let component = Component::new(&engine, &std::fs::read(path).unwrap()).unwrap();
    let mut linker = Linker::default();
    wippy_wasm::wasi::add_to_linker(&mut linker).unwrap();
    let before = rss_kib();
    let mut kept = Vec::with_capacity(n);
    for _ in 0..n {
        let mut store = Store::new(&engine, WasiCtx::new());
        store.set_fuel_slice(Some(100_000));
        let instance = linker.instantiate(&mut store, &component).unwrap();
        if release {
            store.release_zero_pages();
        }
        kept.push((store, instance));
    }
    let per = rss_kib().saturating_sub(before) as f64 / n as f64;
    drop(kept);
    per
}

fn main() {
    // Density first, while the process is small.
    let released = density(1000, true);
    let eager = density(50, false);
    println!(
        "{:<14} {:>10} {:>12} {:>10} {:>11} {:>10} {:>10} {:>13} {:>10}",
        "component",
        "new µs",
        "new+snap µs",
        "reset µs",
        "as fresh µs",
        "pooled µs",
        "fresh µs",
        "its reset µs",
        "image KiB"
    );
    measure("C proxy", &root().join("tests/c_http/proxy.wasm"), 200);
    match common::python_proxy("instances") {
        Some(p) => measure("Python proxy", &p, 10),
        None => println!("(componentize-py not installed: the Python proxy is skipped)"),
    }
    println!();
    println!("reset of an 8 MiB image after writing, µs:");
    for pages in [0, 16, 256, 2048] {
        println!(
            "  {pages:>5} pages written: {:>8.1}",
            after_writes(pages).as_secs_f64() * 1e6
        );
    }
    println!();
    println!("1000 idle C proxy instances, zero pages released: {released:.1} KiB resident each");
    println!("50 idle C proxy instances, as wasmi makes them: {eager:.1} KiB resident each");
}
