//! The bodies of the fuzz targets, shared by cargo-fuzz (`fuzz_targets/`)
//! and the short replay in `cargo test` (`tests/fuzz_smoke.rs`). Each takes
//! arbitrary bytes and must never panic, hang or allocate without bound:
//! - [`component`]: component loading and instantiation, from the bytes as
//!   they are or from a `wasm-smith` core module embedded in a component;
//! - [`canon`]: a WIT type and a value of it made from the bytes, sent
//!   through a guest export and a host import and back; the value must
//!   come back unchanged;
//! - [`registry`]: the registry loader on the bytes as a definition file.

#![allow(dead_code)]

use arbitrary::Unstructured;
use std::sync::{Arc, Mutex};
use wippy_wasm::wasi::WasiCtx;
use wippy_wasm::{Component, Config, Engine, Limits, Linker, Store, Val};

/// Runs a target on a thread of its own with the default 2 MiB stack, as
/// `serve`'s executor threads have: a native stack overflow is found at the
/// depth a server would hit it, and the thread's alternate signal stack
/// lets libFuzzer report it (with the input) instead of dying silently.
pub fn on_thread(data: &[u8], target: fn(&[u8])) {
    std::thread::scope(|s| {
        if let Err(panic) = s.spawn(|| target(data)).join() {
            std::panic::resume_unwind(panic);
        }
    });
}

/// Small limits: a fuzz input may ask for anything.
fn limits() -> Limits {
    Limits {
        memory_bytes: 64 << 20,
        table_elements: 100_000,
        instances: 100,
        memories: 100,
        tables: 100,
        component_instances: 100,
        handles: 10_000,
        lifted_bytes: 16 << 20,
    }
}

fn engine() -> Engine {
    let mut config = Config::default();
    config.consume_fuel(true);
    Engine::new(&config)
}

/// A component instantiating one core module with no imports.
fn embed(core: &[u8]) -> Vec<u8> {
    use wasm_encoder::{Component as C, ComponentSectionId, InstanceSection, ModuleArg, RawSection};
    let mut c = C::new();
    c.section(&RawSection {
        id: ComponentSectionId::CoreModule as u8,
        data: core,
    });
    let mut instances = InstanceSection::new();
    instances.instantiate(0, Vec::<(&str, ModuleArg)>::new());
    c.section(&instances);
    c.finish()
}

/// Loads and instantiates a component: from `data` itself (tag byte even),
/// or from a `wasm-smith` module made from `data` (tag byte odd).
pub fn component(data: &[u8]) {
    let Some((&tag, rest)) = data.split_first() else { return };
    let bytes = if tag & 1 == 1 {
        let mut u = Unstructured::new(rest);
        let cfg = wasm_smith::Config {
            max_imports: 0,
            max_memory32_bytes: 1 << 26,
            exceptions_enabled: false,
            gc_enabled: false,
            threads_enabled: false,
            memory64_enabled: false,
            ..Default::default()
        };
        let Ok(m) = wasm_smith::Module::new(cfg, &mut u) else {
            return;
        };
        embed(&m.to_bytes())
    } else {
        rest.to_vec()
    };
    let engine = engine();
    let Ok(component) = Component::new(&engine, &bytes) else {
        return;
    };
    let mut linker = Linker::<WasiCtx>::default();
    wippy_wasm::wasi::add_to_linker(&mut linker).expect("WASI links");
    let mut store = Store::new(&engine, WasiCtx::new());
    store.set_limits(limits());
    store.set_fuel(1_000_000).expect("fuel is on");
    let Ok(instance) = linker.instantiate(&mut store, &component) else {
        return;
    };
    // Exports taking nothing are called too.
    for name in instance.export_names::<WasiCtx>() {
        let Some(f) = instance.get_func(&store, &name) else {
            continue;
        };
        if f.ty().params.is_empty() {
            let _ = store.set_fuel(1_000_000);
            let _ = f.call(&mut store, &[]);
        }
    }
}

/// A WIT value type, as the fuzzer builds them.
#[derive(Clone, Debug)]
enum Ty {
    Bool,
    S8,
    U8,
    S16,
    U16,
    S32,
    U32,
    S64,
    U64,
    F32,
    F64,
    Char,
    String,
    List(Box<Ty>),
    Record(Vec<Ty>),
    Tuple(Vec<Ty>),
    Variant(Vec<Option<Ty>>),
    Enum(usize),
    Option(Box<Ty>),
    Result(Option<Box<Ty>>, Option<Box<Ty>>),
    Flags(usize),
}

fn ty(u: &mut Unstructured, depth: u32) -> arbitrary::Result<Ty> {
    let leaf = depth == 0 || u.is_empty();
    let pick = if leaf {
        u.int_in_range(0..=12)?
    } else {
        u.int_in_range(0..=20)?
    };
    let width = |u: &mut Unstructured| u.int_in_range(1..=4usize);
    let inner = |u: &mut Unstructured| ty(u, depth - 1).map(Box::new);
    Ok(match pick {
        0 => Ty::Bool,
        1 => Ty::S8,
        2 => Ty::U8,
        3 => Ty::S16,
        4 => Ty::U16,
        5 => Ty::S32,
        6 => Ty::U32,
        7 => Ty::S64,
        8 => Ty::U64,
        9 => Ty::F32,
        10 => Ty::F64,
        11 => Ty::Char,
        12 => Ty::String,
        13 => Ty::List(inner(u)?),
        14 => Ty::Record((0..width(u)?).map(|_| ty(u, depth - 1)).collect::<Result<_, _>>()?),
        15 => Ty::Tuple((0..width(u)?).map(|_| ty(u, depth - 1)).collect::<Result<_, _>>()?),
        16 => Ty::Variant(
            (0..width(u)?)
                .map(|_| {
                    if u.arbitrary()? {
                        ty(u, depth - 1).map(Some)
                    } else {
                        Ok(None)
                    }
                })
                .collect::<Result<_, _>>()?,
        ),
        17 => Ty::Enum(width(u)?),
        18 => Ty::Option(inner(u)?),
        19 => Ty::Result(
            if u.arbitrary()? { Some(inner(u)?) } else { None },
            if u.arbitrary()? { Some(inner(u)?) } else { None },
        ),
        _ => Ty::Flags(u.int_in_range(1..=32)?),
    })
}

/// The type in component text. Records, variants, enums and flags are
/// nominal: each becomes a type of its own, imported under a name (a
/// component may not use an unnamed one in an import), and `defs` gets
/// their definitions.
fn wat(t: &Ty, defs: &mut Vec<String>) -> String {
    let name = |text: String, defs: &mut Vec<String>| {
        let k = defs.len();
        defs.push(format!("(type $d{k} {text}) (import \"t{k}\" (type $t{k} (eq $d{k})))"));
        format!("$t{k}")
    };
    match t {
        Ty::Bool => "bool".into(),
        Ty::S8 => "s8".into(),
        Ty::U8 => "u8".into(),
        Ty::S16 => "s16".into(),
        Ty::U16 => "u16".into(),
        Ty::S32 => "s32".into(),
        Ty::U32 => "u32".into(),
        Ty::S64 => "s64".into(),
        Ty::U64 => "u64".into(),
        Ty::F32 => "f32".into(),
        Ty::F64 => "f64".into(),
        Ty::Char => "char".into(),
        Ty::String => "string".into(),
        Ty::List(e) => format!("(list {})", wat(e, defs)),
        Ty::Record(fs) => {
            let fields: Vec<_> = fs
                .iter()
                .enumerate()
                .map(|(i, f)| format!("(field \"f{i}\" {})", wat(f, defs)))
                .collect();
            name(format!("(record {})", fields.join(" ")), defs)
        }
        Ty::Tuple(ts) => {
            let items: Vec<_> = ts.iter().map(|t| wat(t, defs)).collect();
            format!("(tuple {})", items.join(" "))
        }
        Ty::Variant(cs) => {
            let cases: Vec<_> = cs
                .iter()
                .enumerate()
                .map(|(i, c)| match c {
                    Some(t) => format!("(case \"c{i}\" {})", wat(t, defs)),
                    None => format!("(case \"c{i}\")"),
                })
                .collect();
            name(format!("(variant {})", cases.join(" ")), defs)
        }
        Ty::Enum(n) => {
            let cases: Vec<_> = (0..*n).map(|i| format!("\"e{i}\"")).collect();
            name(format!("(enum {})", cases.join(" ")), defs)
        }
        Ty::Option(t) => format!("(option {})", wat(t, defs)),
        Ty::Result(ok, err) => {
            let ok = ok.as_ref().map(|t| wat(t, defs)).unwrap_or_default();
            let err = err
                .as_ref()
                .map(|t| format!("(error {})", wat(t, defs)))
                .unwrap_or_default();
            format!("(result {ok} {err})")
        }
        Ty::Flags(n) => {
            let names: Vec<_> = (0..*n).map(|i| format!("\"g{i}\"")).collect();
            name(format!("(flags {})", names.join(" ")), defs)
        }
    }
}

/// A value of type `t`.
fn value(u: &mut Unstructured, t: &Ty) -> arbitrary::Result<Val> {
    let boxed = |v: Val| Some(Box::new(v));
    Ok(match t {
        Ty::Bool => Val::Bool(u.arbitrary()?),
        Ty::S8 => Val::S8(u.arbitrary()?),
        Ty::U8 => Val::U8(u.arbitrary()?),
        Ty::S16 => Val::S16(u.arbitrary()?),
        Ty::U16 => Val::U16(u.arbitrary()?),
        Ty::S32 => Val::S32(u.arbitrary()?),
        Ty::U32 => Val::U32(u.arbitrary()?),
        Ty::S64 => Val::S64(u.arbitrary()?),
        Ty::U64 => Val::U64(u.arbitrary()?),
        // NaNs come back canonical (a test of its own): not compared here.
        Ty::F32 => Val::Float32(
            Some(f32::from_bits(u.arbitrary()?))
                .filter(|f| !f.is_nan())
                .unwrap_or(0.5),
        ),
        Ty::F64 => Val::Float64(
            Some(f64::from_bits(u.arbitrary()?))
                .filter(|f| !f.is_nan())
                .unwrap_or(0.5),
        ),
        Ty::Char => Val::Char(u.arbitrary()?),
        Ty::String => {
            let s: String = u.arbitrary()?;
            Val::String(s.chars().take(64).collect())
        }
        Ty::List(e) => {
            let n = u.int_in_range(0..=6)?;
            Val::List((0..n).map(|_| value(u, e)).collect::<Result<_, _>>()?)
        }
        Ty::Record(fs) => Val::Record(
            fs.iter()
                .enumerate()
                .map(|(i, f)| Ok((format!("f{i}"), value(u, f)?)))
                .collect::<arbitrary::Result<_>>()?,
        ),
        Ty::Tuple(ts) => Val::Tuple(ts.iter().map(|t| value(u, t)).collect::<Result<_, _>>()?),
        Ty::Variant(cs) => {
            let i = u.choose_index(cs.len())?;
            let payload = match &cs[i] {
                Some(t) => boxed(value(u, t)?),
                None => None,
            };
            Val::Variant(format!("c{i}"), payload)
        }
        Ty::Enum(n) => Val::Enum(format!("e{}", u.choose_index(*n)?)),
        Ty::Option(t) => Val::Option(if u.arbitrary()? { boxed(value(u, t)?) } else { None }),
        Ty::Result(ok, err) => {
            let payload = |u: &mut Unstructured, t: &Option<Box<Ty>>| -> arbitrary::Result<Option<Box<Val>>> {
                Ok(match t {
                    Some(t) => Some(Box::new(value(u, t)?)),
                    None => None,
                })
            };
            Val::Result(if u.arbitrary()? {
                Ok(payload(u, ok)?)
            } else {
                Err(payload(u, err)?)
            })
        }
        Ty::Flags(n) => {
            let bits: u32 = u.arbitrary()?;
            Val::Flags(
                (0..*n)
                    .filter(|i| bits & (1 << i) != 0)
                    .map(|i| format!("g{i}"))
                    .collect(),
            )
        }
    })
}

/// CanonicalABI.md "Flattening", written out here rather than taken from
/// the runtime, so that a flattening bug cannot hide behind itself.
fn flatten(t: &Ty, out: &mut Vec<&'static str>) {
    match t {
        Ty::Bool | Ty::S8 | Ty::U8 | Ty::S16 | Ty::U16 | Ty::S32 | Ty::U32 | Ty::Char | Ty::Enum(_) | Ty::Flags(_) => {
            out.push("i32")
        }
        Ty::S64 | Ty::U64 => out.push("i64"),
        Ty::F32 => out.push("f32"),
        Ty::F64 => out.push("f64"),
        Ty::String | Ty::List(_) => out.extend(["i32", "i32"]),
        Ty::Record(ts) | Ty::Tuple(ts) => ts.iter().for_each(|t| flatten(t, out)),
        Ty::Variant(cs) => flatten_variant(cs.iter().map(|c| c.as_ref()), out),
        Ty::Option(t) => flatten_variant([None, Some(&**t)].into_iter(), out),
        Ty::Result(ok, err) => flatten_variant([ok.as_deref(), err.as_deref()].into_iter(), out),
    }
}

fn flatten_variant<'a>(cases: impl Iterator<Item = Option<&'a Ty>>, out: &mut Vec<&'static str>) {
    let mut joined: Vec<&'static str> = Vec::new();
    for case in cases.flatten() {
        let mut flat = Vec::new();
        flatten(case, &mut flat);
        for (i, ft) in flat.into_iter().enumerate() {
            if i < joined.len() {
                joined[i] = join(joined[i], ft);
            } else {
                joined.push(ft);
            }
        }
    }
    out.push("i32");
    out.extend(joined);
}

fn join(a: &'static str, b: &'static str) -> &'static str {
    match (a, b) {
        _ if a == b => a,
        ("i32", "f32") | ("f32", "i32") => "i32",
        _ => "i64",
    }
}

/// A bump allocator that grows its memory as needed; its return area for
/// spilled results sits at 16, below everything it hands out.
const LIBC: &str = r#"(memory (export "mem") 1)
    (global $next (mut i32) (i32.const 8192))
    (func (export "realloc") (param $old i32) (param $osize i32) (param $align i32) (param $nsize i32) (result i32)
      (local $r i32) (local $end i32)
      (local.set $r (i32.and (i32.add (global.get $next) (i32.sub (local.get $align) (i32.const 1)))
                             (i32.sub (i32.const 0) (local.get $align))))
      (local.set $end (i32.add (local.get $r) (local.get $nsize)))
      (if (i32.gt_u (local.get $end) (i32.mul (memory.size) (i32.const 65536)))
        (then (if (i32.eq (memory.grow (i32.add (i32.shr_u (i32.sub (local.get $end) (i32.mul (memory.size) (i32.const 65536))) (i32.const 16)) (i32.const 1))) (i32.const -1))
          (then unreachable))))
      (global.set $next (local.get $end))
      (if (i32.ne (local.get $old) (i32.const 0))
        (then (memory.copy (local.get $r) (local.get $old) (local.get $osize))))
      (local.get $r))"#;

/// `echo: func(x: T) -> T` forwarding to the host's `host-echo`.
fn echo_component(t: &Ty, encoding: &str) -> String {
    let mut flat = Vec::new();
    flatten(t, &mut flat);
    let params: Vec<&str> = if flat.len() > 16 { vec!["i32"] } else { flat.clone() };
    let params_text = params.join(" ");
    let gets: String = (0..params.len()).map(|i| format!("(local.get {i}) ")).collect();
    let (import_sig, export_sig, body) = if flat.len() > 1 {
        (
            format!("(param {params_text} i32)"),
            format!("(param {params_text}) (result i32)"),
            format!("{gets} (i32.const 16) (call $echo) (i32.const 16)"),
        )
    } else {
        (
            format!("(param {params_text}) (result {})", flat[0]),
            format!("(param {params_text}) (result {})", flat[0]),
            format!("{gets} (call $echo)"),
        )
    };
    let mut defs = Vec::new();
    let ty = wat(t, &mut defs);
    // The function's type: a named type as it is, another one named here.
    let ty = if ty.starts_with('$') {
        ty
    } else {
        defs.push(format!("(type $T0 {ty}) (import \"t\" (type $T (eq $T0)))"));
        "$T".into()
    };
    let defs = defs.join("\n  ");
    format!(
        r#"(component
  {defs}
  (import "host-echo" (func $host-echo (param "x" {ty}) (result {ty})))
  (core module $Libc {LIBC})
  (core instance $libc (instantiate $Libc))
  (core func $echo (canon lower (func $host-echo) {encoding}
    (memory (core memory $libc "mem")) (realloc (core func $libc "realloc"))))
  (core module $M
    (import "" "echo" (func $echo {import_sig}))
    (func (export "echo") {export_sig} {body}))
  (core instance $m (instantiate $M (with "" (instance (export "echo" (func $echo))))))
  (func (export "echo") (param "x" {ty}) (result {ty})
    (canon lift (core func $m "echo") {encoding}
      (memory (core memory $libc "mem")) (realloc (core func $libc "realloc"))))
)"#
    )
}

/// Sends a value of a generated type through a guest and back: what the
/// host import sees and what the export returns must equal it.
pub fn canon(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let Ok(t) = ty(&mut u, 3) else { return };
    let Ok(v) = value(&mut u, &t) else { return };
    let encoding = match u.int_in_range(0..=2u8).unwrap_or(0) {
        0 => "string-encoding=utf8",
        1 => "string-encoding=utf16",
        _ => "string-encoding=latin1+utf16",
    };
    let text = echo_component(&t, encoding);
    let engine = Engine::default();
    let component =
        Component::new(&engine, text.as_bytes()).unwrap_or_else(|e| panic!("generated component: {e:#}\n{text}"));
    let seen: Arc<Mutex<Option<Val>>> = Arc::default();
    let mut linker = Linker::<()>::default();
    let s = seen.clone();
    linker.root().func_new("host-echo", move |_, args, out| {
        *s.lock().unwrap() = Some(args[0].clone());
        out.push(args[0].clone());
        Ok(())
    });
    let mut store = Store::new(&engine, ());
    store.set_limits(limits());
    let instance = linker
        .instantiate(&mut store, &component)
        .unwrap_or_else(|e| panic!("{e:#}\n{text}"));
    let echo = instance.get_func(&store, "echo").expect("echo is exported");
    let back = echo
        .call(&mut store, std::slice::from_ref(&v))
        .unwrap_or_else(|e| panic!("echo of {v:?}: {e:#}\n{text}"));
    let seen = seen.lock().unwrap().take().expect("the host import was called");
    assert_eq!(seen, v, "the host import saw another value\n{text}");
    assert_eq!(back, vec![v], "the value did not come back\n{text}");
}

/// Checks and loads `data` as a registry definition file, in a folder of
/// this thread's own (with one small component beside it, for entries that
/// point at a file). Functions are not called: an inline source may loop.
pub fn registry(data: &[u8]) {
    thread_local! {
        static DIR: std::path::PathBuf = {
            let d = std::env::temp_dir().join(format!(
                "wippy-fuzz-registry-{}-{:?}",
                std::process::id(),
                std::thread::current().id()
            ));
            let _ = std::fs::create_dir_all(&d);
            let _ = std::fs::write(
                d.join("a.wat"),
                "(component (core module $m (func (export \"f\") (result i32) i32.const 1)) \
                 (core instance $i (instantiate $m)) \
                 (func (export \"f\") (result u32) (canon lift (core func $i \"f\"))))",
            );
            d
        };
    }
    DIR.with(|dir| {
        if std::fs::write(dir.join("_index.yaml"), data).is_err() {
            return;
        }
        let _ = wippy_wasm::registry::Registry::check(dir);
        let _ = wippy_wasm::registry::Registry::load(dir);
    });
}
