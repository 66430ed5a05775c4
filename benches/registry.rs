//! Registry calls: warm-pool latency, throughput by concurrency, and the
//! cost of a `funcs` call against a direct one.
//!
//! ```sh
//! cargo bench --bench registry
//! ```

use serde_json::json;
use std::time::{Duration, Instant};
use wippy_wasm::registry::Registry;
use wippy_wasm::Val;

fn example() -> Registry {
    Registry::load(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/registry")).expect("example registry")
}

/// Best of three runs of `f` doing `n` calls; returns the duration per call.
fn per_call(n: u32, mut f: impl FnMut(u32)) -> Duration {
    f(n / 10);
    (0..3)
        .map(|_| {
            let t = Instant::now();
            f(n);
            t.elapsed() / n
        })
        .min()
        .unwrap()
}

fn main() {
    let r = example();
    let add = |r: &Registry| {
        let r = r.clone();
        move |n: u32| {
            for i in 0..n {
                wippy_wasm::dispatch::block_on(r.call("demo:add", &[Val::S32(i as i32), Val::S32(1)])).unwrap();
            }
        }
    };
    let warm = per_call(20_000, add(&r));
    println!(
        "warm-pool call of demo:add (inline pool): {:.2} µs",
        warm.as_secs_f64() * 1e6
    );
    let json = per_call(20_000, |n| {
        for i in 0..n {
            r.call_json("demo:add", &[json!(i), json!(1)]).unwrap();
        }
    });
    println!(
        "the same through JSON (call_json):        {:.2} µs",
        json.as_secs_f64() * 1e6
    );

    println!("\nthroughput, demo:hello (lazy pool, max 4), one executor thread:");
    for callers in [1usize, 8, 64] {
        let total = 20_000usize;
        let ex = async_executor::Executor::new();
        let t = Instant::now();
        let tasks: Vec<_> = (0..callers)
            .map(|_| {
                let r = r.clone();
                ex.spawn(async move {
                    for _ in 0..total / callers {
                        r.call("demo:hello", &[Val::String("bench".into())]).await.unwrap();
                    }
                })
            })
            .collect();
        wippy_wasm::dispatch::block_on(ex.run(async {
            for task in tasks {
                task.await;
            }
        }));
        let secs = t.elapsed().as_secs_f64();
        println!("  {callers:>3} callers: {:>9.0} calls/s", total as f64 / secs);
    }

    let direct = per_call(10_000, |n| {
        for _ in 0..n {
            wippy_wasm::dispatch::block_on(r.call("demo:hello", &[Val::String("x".into())])).unwrap();
        }
    });
    let relayed = per_call(10_000, |n| {
        for _ in 0..n {
            wippy_wasm::dispatch::block_on(r.call(
                "demo:relay",
                &[Val::String("demo:hello".into()), Val::String("x".into())],
            ))
            .unwrap();
        }
    });
    println!(
        "\nfuncs: demo:relay → demo:hello {:.2} µs, direct demo:hello {:.2} µs, overhead {:.2} µs ({:.2}×)",
        relayed.as_secs_f64() * 1e6,
        direct.as_secs_f64() * 1e6,
        (relayed - direct).as_secs_f64() * 1e6,
        relayed.as_secs_f64() / direct.as_secs_f64()
    );
}
