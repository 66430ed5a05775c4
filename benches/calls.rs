//! Cost per call of the canonical ABI, beside raw wasmi doing the same work.
//!
//! ```sh
//! cargo bench --bench calls
//! ```
//!
//! Each case loops inside the guest (or the host, for export calls) and
//! reports nanoseconds per call for wippy-wasm — typed (`func_wrap`,
//! `get_typed_func`) and dynamic (`func_new`, `Val`s) — and for a plain wasmi
//! module whose host function does the equivalent work by hand (reading the
//! list, decoding and re-encoding the string through the guest's realloc).
//! Each figure is the best of five runs; ratios are against raw wasmi.

use std::time::{Duration, Instant};
use wippy_wasm::{Component, Engine, Linker, Store, Val};

const LIBC: &str = r#"
    (memory (export "mem") 1)
    (global $next (mut i32) (i32.const 8192))
    (func (export "realloc") (param $old i32) (param $osize i32) (param $align i32) (param $nsize i32) (result i32)
      (local $r i32)
      ;; a bump allocator that wraps around: the benchmark never frees
      (if (i32.gt_u (i32.add (global.get $next) (local.get $nsize)) (i32.const 60000))
        (then (global.set $next (i32.const 8192))))
      (local.set $r (global.get $next))
      (global.set $next (i32.add (global.get $next) (i32.and (i32.add (local.get $nsize) (i32.const 7)) (i32.const -8))))
      (local.get $r))"#;

/// The guest loop: `run(n)` calls the import `n` times with `args`.
fn component(import_ty: &str, core_import: &str, call: &str) -> String {
    format!(
        r#"(component
  (import "f" (func $f {import_ty}))
  (core module $Libc {LIBC})
  (core instance $libc (instantiate $Libc))
  (core func $f' (canon lower (func $f) (memory (core memory $libc "mem")) (realloc (core func $libc "realloc"))))
  (core module $M
    (import "libc" "mem" (memory 1))
    (import "" "f" (func $f {core_import}))
    (data (i32.const 100) "a string of moderate length, 48 bytes long.....")
    (func (export "run") (param $n i32) (result i32)
      (local $acc i32)
      (block $done (loop $l
        (br_if $done (i32.eqz (local.get $n)))
        {call}
        (local.set $n (i32.sub (local.get $n) (i32.const 1)))
        (br $l)))
      (local.get $acc))
    (func (export "id") (param i32) (result i32) (local.get 0)))
  (core instance $m (instantiate $M (with "libc" (instance $libc)) (with "" (instance (export "f" (func $f'))))))
  (func (export "run") (param "n" u32) (result u32) (canon lift (core func $m "run")))
  (func (export "id") (param "x" u32) (result u32) (canon lift (core func $m "id")))
)"#
    )
}

/// The same loop as a plain core module for raw wasmi.
fn core_module(core_import: &str, call: &str) -> String {
    format!(
        r#"(module
  (import "" "f" (func $f {core_import}))
  {LIBC}
  (data (i32.const 100) "a string of moderate length, 48 bytes long.....")
  (func (export "run") (param $n i32) (result i32)
    (local $acc i32)
    (block $done (loop $l
      (br_if $done (i32.eqz (local.get $n)))
      {call}
      (local.set $n (i32.sub (local.get $n) (i32.const 1)))
      (br $l)))
    (local.get $acc))
  (func (export "id") (param i32) (result i32) (local.get 0)))"#
    )
}

fn per_call(n: u32, f: impl FnMut(u32)) -> f64 {
    let mut f = f;
    f(n / 10); // warm up
    let mut best = Duration::MAX;
    for _ in 0..5 {
        let t = Instant::now();
        f(n);
        best = best.min(t.elapsed());
    }
    best.as_nanos() as f64 / n as f64
}

struct Case {
    name: &'static str,
    import_ty: &'static str,
    core_import: &'static str,
    call: &'static str,
    n: u32,
}

/// `typed`: host functions by `func_wrap` and exports by `get_typed_func`
/// (Rust values); otherwise `func_new` and `Func::call` (dynamic `Val`s).
fn ours(case: &Case, typed: bool) -> f64 {
    let engine = Engine::default();
    let component = Component::new(
        &engine,
        component(case.import_ty, case.core_import, case.call).as_bytes(),
    )
    .unwrap();
    let mut linker = Linker::<u64>::default();
    let root = linker.root();
    match (case.name, typed) {
        ("list<u8> 4 KiB", true) => {
            root.func_wrap("f", |mut cx, (bytes,): (Vec<u8>,)| {
                *cx.data_mut() += bytes.len() as u64;
                Ok(())
            });
        }
        ("list<u8> 4 KiB", false) => {
            root.func_new("f", |mut cx, args, _| {
                if let Val::List(items) = &args[0] {
                    *cx.data_mut() += items.len() as u64;
                }
                Ok(())
            });
        }
        ("string -> string", true) => {
            root.func_wrap("f", |_, (s,): (String,)| Ok(s));
        }
        (_, true) => {
            root.func_wrap("f", |_, (x,): (u32,)| Ok(x.wrapping_add(1)));
        }
        (name, false) => {
            let inc = name.starts_with("u32");
            root.func_new("f", move |_, args, out| {
                out.push(match &args[0] {
                    Val::U32(x) if inc => Val::U32(x.wrapping_add(1)),
                    other => other.clone(),
                });
                Ok(())
            });
        }
    }
    let mut store = Store::new(&engine, 0u64);
    let instance = linker.instantiate(&mut store, &component).unwrap();
    let name = if case.name == "export round trip" { "id" } else { "run" };
    if typed {
        let f = instance.get_typed_func::<_, (u32,), u32>(&store, name).unwrap();
        if name == "id" {
            return per_call(case.n, |n| {
                for i in 0..n {
                    f.call(&mut store, (i,)).unwrap();
                }
            });
        }
        return per_call(case.n, |n| {
            f.call(&mut store, (n,)).unwrap();
        });
    }
    let f = instance.get_func(&store, name).unwrap();
    if name == "id" {
        return per_call(case.n, |n| {
            for i in 0..n {
                f.call(&mut store, &[Val::U32(i)]).unwrap();
            }
        });
    }
    per_call(case.n, |n| {
        f.call(&mut store, &[Val::U32(n)]).unwrap();
    })
}

fn raw(case: &Case) -> f64 {
    use wasmi::{Caller, Extern, Func, Instance, Memory, Module};
    let engine = wasmi::Engine::default();
    let module = Module::new(
        &engine,
        wat::parse_str(core_module(case.core_import, case.call)).unwrap(),
    )
    .unwrap();
    let mut store = wasmi::Store::new(&engine, 0u64);
    fn mem(c: &Caller<'_, u64>) -> Memory {
        c.get_export("memory")
            .or_else(|| c.get_export("mem"))
            .and_then(Extern::into_memory)
            .unwrap()
    }
    let f = match case.name {
        "u32 -> u32" => Func::wrap(&mut store, |x: i32| -> i32 { x.wrapping_add(1) }),
        "list<u8> 4 KiB" => Func::wrap(&mut store, |mut c: Caller<'_, u64>, ptr: i32, len: i32| {
            // The same work as lifting a list<u8>: bounds check and copy out.
            let m = mem(&c);
            let bytes = m.data(&c)[ptr as usize..(ptr + len) as usize].to_vec();
            *c.data_mut() += bytes.len() as u64;
        }),
        "string -> string" => Func::wrap(&mut store, |mut c: Caller<'_, u64>, ptr: i32, len: i32, ret: i32| {
            // Lift (validate UTF-8, copy), then lower through the guest's realloc.
            let m = mem(&c);
            let s = std::str::from_utf8(&m.data(&c)[ptr as usize..(ptr + len) as usize])
                .unwrap()
                .to_owned();
            let realloc = c
                .get_export("realloc")
                .and_then(Extern::into_func)
                .unwrap()
                .typed::<(i32, i32, i32, i32), i32>(&c)
                .unwrap();
            let p = realloc.call(&mut c, (0, 0, 1, s.len() as i32)).unwrap();
            let data = m.data_mut(&mut c);
            data[p as usize..p as usize + s.len()].copy_from_slice(s.as_bytes());
            data[ret as usize..ret as usize + 4].copy_from_slice(&p.to_le_bytes());
            data[ret as usize + 4..ret as usize + 8].copy_from_slice(&(s.len() as u32).to_le_bytes());
        }),
        _ => Func::wrap(&mut store, |x: i32| -> i32 { x }),
    };
    let instance = Instance::new(&mut store, &module, &[Extern::Func(f)]).unwrap();
    if case.name == "export round trip" {
        let id = instance.get_typed_func::<i32, i32>(&store, "id").unwrap();
        return per_call(case.n, |n| {
            for i in 0..n {
                id.call(&mut store, i as i32).unwrap();
            }
        });
    }
    let run = instance.get_typed_func::<i32, i32>(&store, "run").unwrap();
    per_call(case.n, |n| {
        run.call(&mut store, n as i32).unwrap();
    })
}

fn main() {
    let cases = [
        Case {
            name: "u32 -> u32",
            import_ty: r#"(param "x" u32) (result u32)"#,
            core_import: "(param i32) (result i32)",
            call: "(local.set $acc (call $f (local.get $n)))",
            n: 2_000_000,
        },
        Case {
            name: "list<u8> 4 KiB",
            import_ty: r#"(param "x" (list u8))"#,
            core_import: "(param i32 i32)",
            call: "(call $f (i32.const 1024) (i32.const 4096))",
            n: 20_000,
        },
        Case {
            name: "string -> string",
            import_ty: r#"(param "s" string) (result string)"#,
            core_import: "(param i32 i32 i32)",
            call: "(call $f (i32.const 100) (i32.const 48) (i32.const 64))",
            n: 200_000,
        },
        Case {
            name: "export round trip",
            import_ty: r#"(param "x" u32) (result u32)"#,
            core_import: "(param i32) (result i32)",
            call: "",
            n: 500_000,
        },
    ];
    println!(
        "{:<20} {:>10} {:>10} {:>10} {:>8} {:>8}",
        "call", "typed ns", "Val ns", "wasmi ns", "typed", "Val"
    );
    for case in &cases {
        let (typed, dynamic, raw) = (ours(case, true), ours(case, false), raw(case));
        println!(
            "{:<20} {:>10.1} {:>10.1} {:>10.1} {:>7.2}x {:>7.2}x",
            case.name,
            typed,
            dynamic,
            raw,
            typed / raw,
            dynamic / raw
        );
    }
}
