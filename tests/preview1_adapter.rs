//! The engine on a real component: a C program built for wasm32-wasip1,
//! wrapped by `wit-component` with the preview1 command adapter (nested
//! components, shim and fixup modules, imported tables, `cabi_import_realloc`),
//! run through `wasi:cli/run#run` against small test host functions.
//!
//! The host here defines the interfaces at @0.2.0 while the adapter imports
//! @0.2.12, so this also exercises semver-compatible import matching.

mod common;

use anyhow::{anyhow, Result};
use std::sync::{Arc, Mutex};
use wippy_wasm::{Component, Engine, Linker, ResourceAny, ResourceType, Store, Val};

#[derive(Default)]
struct Host {
    args: Vec<String>,
    env: Vec<(String, String)>,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

#[derive(Debug)]
struct Exit(i32);
impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exit({})", self.0)
    }
}
impl std::error::Error for Exit {}

fn ok(v: Option<Val>) -> Val {
    Val::Result(Ok(v.map(Box::new)))
}

fn own(ty: &ResourceType, rep: u32) -> Val {
    Val::Resource(ResourceAny {
        ty: ty.clone(),
        rep,
        own: true,
    })
}

fn rep(v: &Val) -> Result<u32> {
    match v {
        Val::Resource(r) => Ok(r.rep),
        other => Err(anyhow!("expected a resource, got {other:?}")),
    }
}

fn bytes(v: &Val) -> Result<Vec<u8>> {
    match v {
        Val::List(items) => items
            .iter()
            .map(|b| match b {
                Val::U8(b) => Ok(*b),
                _ => Err(anyhow!("not a byte")),
            })
            .collect(),
        other => Err(anyhow!("expected list<u8>, got {other:?}")),
    }
}

/// Defines the subset of WASI 0.2 the adapter imports for this program.
fn linker(dropped: Arc<Mutex<Vec<u32>>>) -> Linker<Host> {
    let mut l = Linker::<Host>::default();
    l.instance("wasi:cli/environment@0.2.0")
        .func_new("get-environment", |cx, _, out| {
            let env = cx
                .data()
                .env
                .iter()
                .map(|(k, v)| Val::Tuple(vec![Val::String(k.clone()), Val::String(v.clone())]));
            out.push(Val::List(env.collect()));
            Ok(())
        })
        .func_new("get-arguments", |cx, _, out| {
            out.push(Val::List(cx.data().args.iter().cloned().map(Val::String).collect()));
            Ok(())
        });
    l.instance("wasi:cli/exit@0.2.0")
        .func_new("exit", |_, args, _| match &args[0] {
            Val::Result(Ok(_)) => Err(Exit(0).into()),
            _ => Err(Exit(1).into()),
        });
    l.instance("wasi:io/error@0.2.0").resource("error", |_, _| Ok(()));
    let streams = l.instance("wasi:io/streams@0.2.0");
    let d = dropped.clone();
    let output = streams.resource("output-stream", move |_, rep| {
        d.lock().unwrap().push(rep);
        Ok(())
    });
    let input = streams.resource("input-stream", |_, _| Ok(()));
    let write = |mut cx: wippy_wasm::StoreCx<'_, Host>, args: &[Val], out: &mut Vec<Val>| {
        let data = bytes(&args[1])?;
        match rep(&args[0])? {
            1 => cx.data_mut().stdout.extend(data),
            2 => cx.data_mut().stderr.extend(data),
            other => return Err(anyhow!("write to unknown stream {other}")),
        }
        out.push(ok(None));
        Ok(())
    };
    streams
        .func_new("[method]output-stream.check-write", |_, _, out| {
            out.push(ok(Some(Val::U64(4096))));
            Ok(())
        })
        .func_new("[method]output-stream.write", write)
        .func_new("[method]output-stream.blocking-write-and-flush", write)
        .func_new("[method]output-stream.blocking-flush", |_, _, out| {
            out.push(ok(None));
            Ok(())
        });
    l.instance("wasi:cli/stdin@0.2.0")
        .func_new("get-stdin", move |_, _, out| {
            out.push(own(&input, 0));
            Ok(())
        });
    let o = output.clone();
    l.instance("wasi:cli/stdout@0.2.0")
        .func_new("get-stdout", move |_, _, out| {
            out.push(own(&o, 1));
            Ok(())
        });
    l.instance("wasi:cli/stderr@0.2.0")
        .func_new("get-stderr", move |_, _, out| {
            out.push(own(&output, 2));
            Ok(())
        });
    l.instance("wasi:cli/terminal-input@0.2.0")
        .resource("terminal-input", |_, _| Ok(()));
    l.instance("wasi:cli/terminal-output@0.2.0")
        .resource("terminal-output", |_, _| Ok(()));
    for (iface, f) in [
        ("wasi:cli/terminal-stdin@0.2.0", "get-terminal-stdin"),
        ("wasi:cli/terminal-stdout@0.2.0", "get-terminal-stdout"),
        ("wasi:cli/terminal-stderr@0.2.0", "get-terminal-stderr"),
    ] {
        l.instance(iface).func_new(f, |_, _, out| {
            out.push(Val::Option(None));
            Ok(())
        });
    }
    l.instance("wasi:clocks/wall-clock@0.2.0");
    let fs = l.instance("wasi:filesystem/types@0.2.0");
    fs.resource("descriptor", |_, _| Ok(()));
    fs.resource("directory-entry-stream", |_, _| Ok(()));
    let bad = |_: wippy_wasm::StoreCx<'_, Host>, _: &[Val], out: &mut Vec<Val>| {
        out.push(Val::Result(Err(Some(Box::new(Val::Enum("bad-descriptor".into()))))));
        Ok(())
    };
    for m in ["write-via-stream", "append-via-stream", "get-flags", "get-type", "stat"] {
        fs.func_new(&format!("[method]descriptor.{m}"), bad);
    }
    fs.func_new("filesystem-error-code", |_, _, out| {
        out.push(Val::Option(None));
        Ok(())
    });
    l.instance("wasi:filesystem/preopens@0.2.0")
        .func_new("get-directories", |_, _, out| {
            out.push(Val::List(vec![]));
            Ok(())
        });
    l
}

fn run(args: &[&str]) -> (Result<Vec<Val>>, Host, Vec<u32>) {
    let core = std::fs::read(common::fixture("hello.wasm")).unwrap();
    let engine = Engine::default();
    let component = Component::new(&engine, &common::componentize_command(&core)).unwrap();
    let dropped = Arc::new(Mutex::new(Vec::new()));
    let host = Host {
        args: args.iter().map(|s| s.to_string()).collect(),
        env: vec![("GREETING".into(), "hi there".into())],
        ..Host::default()
    };
    let mut store = Store::new(&engine, host);
    let instance = linker(dropped.clone()).instantiate(&mut store, &component).unwrap();
    let run = instance.get_func(&store, "wasi:cli/run@0.2.0#run").expect("run export");
    let result = run.call(&mut store, &[]);
    let host = std::mem::take(store.data_mut());
    let dropped = dropped.lock().unwrap().clone();
    (result, host, dropped)
}

#[test]
fn preview1_command_runs_through_wasi_cli_run() {
    let (result, host, dropped) = run(&["hello.wasm"]);
    let stdout = String::from_utf8(host.stdout).unwrap();
    assert_eq!(
        stdout,
        "hello from wasip1, argc=1\nargv[0]=hello.wasm\nGREETING=hi there\n"
    );
    assert_eq!(String::from_utf8(host.stderr).unwrap(), "to stderr\n");
    // A normal return from main: run returns ok, or the adapter calls exit(ok).
    match result {
        Ok(vals) => assert_eq!(vals, vec![Val::Result(Ok(None))]),
        Err(e) => assert_eq!(e.downcast_ref::<Exit>().map(|e| e.0), Some(0), "{e:#}"),
    }
    // The adapter drops the stdout/stderr handles it took.
    assert!(dropped.iter().all(|r| *r == 1 || *r == 2), "{dropped:?}");
}

#[test]
fn preview1_exit_code_reaches_the_host() {
    let (result, host, _) = run(&["hello.wasm", "3", "x y"]);
    let stdout = String::from_utf8(host.stdout).unwrap();
    assert!(stdout.contains("argv[2]=x y\n"), "{stdout}");
    let err = result.expect_err("non-zero exit is an exit(err)");
    assert_eq!(err.downcast_ref::<Exit>().map(|e| e.0), Some(1), "{err:#}");
}
