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

fn temp_dir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("wippy-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn stdin_to_eof() {
    let input: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
    // The guest's `unsigned long` is 32 bits: the checksum wraps like it.
    let (mut n, mut sum) = (0u32, 0u32);
    for b in &input {
        n += 1;
        sum = sum.wrapping_mul(31).wrapping_add(*b as u32) % 1_000_000_007;
    }
    let r = run("stdio.wasm", |c| c.stdin(Source::Bytes(Arc::new(input))));
    assert_eq!(r.stdout, format!("bytes={n} sum={sum} eof=1\n"));
    let r = run("stdio.wasm", |c| c);
    assert_eq!(r.stdout, "bytes=0 sum=0 eof=1\n", "a null stdin is at EOF at once");
}

#[test]
fn large_stdout_arrives_intact() {
    let total = 3_000_000usize;
    let r = run("bigout.wasm", |c| c.args(["bigout", &total.to_string()]));
    let mut want = Vec::with_capacity(total);
    let mut w = 0usize;
    while w < total {
        let chunk = ((w / 7) % 7919 + 1).min(total - w);
        want.extend((0..chunk).map(|i| b'a' + ((w + i) % 26) as u8));
        w += chunk;
    }
    assert_eq!(r.stdout.len(), total);
    assert!(
        r.stdout.as_bytes() == want.as_slice(),
        "stdout differs from the pattern"
    );
}

#[test]
fn file_operations() {
    let dir = temp_dir("files");
    let r = run("files.wasm", |c| c.preopen_dir(&dir, "/data", false).unwrap());
    assert_eq!(
        r.stdout,
        "after seek: world!!\nsize after truncate: 5 regular=1\nrmdir non-empty: ENOTEMPTY\n\
         entry: b.txt\nentry: sub\nentries=2 done\n"
    );
    assert_eq!(r.status, 0);
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0, "the program cleaned up");
}

#[test]
fn escapes_from_a_mount_are_refused() {
    let root = temp_dir("sandbox");
    let boxed = root.join("box");
    std::fs::create_dir_all(boxed.join("sub")).unwrap();
    std::fs::write(root.join("outside.txt"), "secret").unwrap();
    std::fs::write(boxed.join("inside.txt"), "in").unwrap();
    std::os::unix::fs::symlink("/etc/passwd", boxed.join("abs-link")).unwrap();
    std::os::unix::fs::symlink("../outside.txt", boxed.join("rel-link")).unwrap();
    let r = run("sandbox.wasm", |c| c.preopen_dir(&boxed, "/box", false).unwrap());
    assert_eq!(
        r.stdout,
        "inside: ok\ndotdot: refused (EPERM)\ndeep dotdot: refused (EPERM)\nabsolute symlink: refused (EPERM)\n\
         relative symlink: refused (EPERM)\nhost absolute: refused (ENOENT)\nhard link out: refused\n\
         new absolute symlink: refused\n"
    );
    assert!(!root.join("hardlink.txt").exists());
}

#[test]
fn read_only_mounts_refuse_every_mutation() {
    let dir = temp_dir("ro");
    std::fs::write(dir.join("file.txt"), "read me").unwrap();
    let r = run("readonly.wasm", |c| c.preopen_dir(&dir, "/ro", true).unwrap());
    assert_eq!(
        r.stdout,
        "read: read me\ncreate: EPERM\nopen for write: EPERM\ntruncate: EPERM\nmkdir: EPERM\n\
         unlink: EPERM\nrename: EPERM\nsymlink: EPERM\n"
    );
    let names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["file.txt"]);
    assert_eq!(std::fs::read_to_string(dir.join("file.txt")).unwrap(), "read me");
}

#[test]
fn clocks_sleep_and_timers_in_order() {
    let r = run("clocks.wasm", |c| c);
    assert_eq!(
        r.stdout,
        "wall clock after 2020: 1\nresolution positive: 1\nslept at least 50ms: 1\ntimer order: 2 3 1\n"
    );
}

#[test]
fn random_bytes() {
    let r = run("random.wasm", |c| c);
    assert_eq!(r.stdout, "draws differ: 1\nroughly uniform: 1\n");
}
