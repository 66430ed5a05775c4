//! The WASI hosts running real programs: C built for wasm32-wasip1, wrapped
//! with the preview1 command adapter, run through `wasi:cli/run#run`.

mod common;

use std::sync::{Arc, Mutex};
use wippy_wasm::wasi::{self, Exit, Sink, Source, WasiCtx};
use wippy_wasm::{Component, Engine, Linker, Store, Val};

struct Run {
    status: i32,
    stdout: String,
    stderr: String,
}

fn run(fixture: &str, ctx: impl FnOnce(WasiCtx) -> WasiCtx) -> Run {
    let core = std::fs::read(common::fixture(fixture)).unwrap();
    let engine = Engine::default();
    let component = Component::new(&engine, &common::componentize_command(&core)).unwrap();
    let (out, err) = (Arc::new(Mutex::new(Vec::new())), Arc::new(Mutex::new(Vec::new())));
    let base = WasiCtx::new()
        .stdout(Sink::Capture(out.clone()))
        .stderr(Sink::Capture(err.clone()));
    let mut store = Store::new(&engine, ctx(base));
    let mut linker = Linker::default();
    wasi::add_to_linker(&mut linker).unwrap();
    let instance = linker.instantiate(&mut store, &component).unwrap();
    let f = instance.get_func(&store, "wasi:cli/run#run").unwrap();
    let status = match wippy_wasm::dispatch::block_on(f.call_async(&mut store, &[])) {
        Ok(v) if v == vec![Val::Result(Ok(None))] => 0,
        Ok(_) => 1,
        Err(e) => match e.downcast_ref::<Exit>() {
            Some(Exit(code)) => *code,
            None => panic!("trap: {e:#}"),
        },
    };
    let text = |b: &Arc<Mutex<Vec<u8>>>| String::from_utf8(b.lock().unwrap().clone()).unwrap();
    Run {
        status,
        stdout: text(&out),
        stderr: text(&err),
    }
}

#[test]
fn args_env_and_exit_codes() {
    let r = run("hello.wasm", |c| {
        c.args(["hello", "7", "two words"]).env("GREETING", "hi")
    });
    // The preview1 adapter maps a non-zero `proc_exit` to `exit(err)`: status 1.
    assert_eq!(r.status, 1);
    assert_eq!(
        r.stdout,
        "hello from wasip1, argc=3\nargv[0]=hello\nargv[1]=7\nargv[2]=two words\nGREETING=hi\n"
    );
    assert_eq!(r.stderr, "to stderr\n");
    let r = run("hello.wasm", |c| c.args(["hello"]));
    assert_eq!(r.status, 0);
    assert!(r.stdout.contains("GREETING=(unset)"));
}

#[test]
fn stdin_reaches_the_guest() {
    // hello.c does not read stdin; this only checks the stream plumbing does
    // not disturb a program that ignores it.
    let r = run("hello.wasm", |c| {
        c.args(["x"]).stdin(Source::Bytes(Arc::new(b"ignored".to_vec())))
    });
    assert_eq!(r.status, 0);
}
