//! `wasi:io` — `error`, `poll` and `streams`.

use super::{
    bytes_arg, bytes_val, err, get, get_mut, iface, ok, own, rep, table_resource, u64_arg, Sink, Source, Types,
    WasiView,
};
use crate::dispatch::HostFuture;
use crate::host::table::Resource;
use crate::val::Val;
use crate::Linker;
use anyhow::{bail, Result};
use std::io::{Read, Write};
use std::sync::Arc;
use std::time::Instant;

/// `wasi:io/error.error`: a description of what failed, and the filesystem
/// error code when a file operation failed.
pub struct IoError(pub String, pub Option<&'static str>);

/// `wasi:io/poll.pollable`.
#[derive(Clone, Debug)]
pub enum Pollable {
    /// Always ready.
    Ready,
    /// Ready from this instant on.
    Deadline(Instant),
    /// Ready once host work in the background signals it.
    Signal(Arc<Signal>),
}

/// A one-shot readiness flag that background host work sets (a name lookup
/// finishing, later socket readiness) and pollables wait on.
#[derive(Debug, Default)]
pub struct Signal {
    done: std::sync::atomic::AtomicBool,
    event: event_listener::Event,
}

impl Signal {
    pub fn set(&self) {
        self.done.store(true, std::sync::atomic::Ordering::SeqCst);
        self.event.notify(usize::MAX);
    }

    pub fn is_set(&self) -> bool {
        self.done.load(std::sync::atomic::Ordering::SeqCst)
    }

    pub async fn wait(&self) {
        while !self.is_set() {
            let listener = self.event.listen();
            if self.is_set() {
                break;
            }
            listener.await;
        }
    }
}

impl Pollable {
    fn ready(&self) -> bool {
        match self {
            Pollable::Ready => true,
            Pollable::Deadline(d) => Instant::now() >= *d,
            Pollable::Signal(s) => s.is_set(),
        }
    }

    async fn wait(self) {
        match self {
            Pollable::Ready => {}
            Pollable::Deadline(d) => {
                async_io::Timer::at(d).await;
            }
            Pollable::Signal(s) => s.wait().await,
        }
    }
}

/// Waits until any of `ps` is ready.
async fn wait_any(ps: &[Pollable]) {
    let mut waits: Vec<std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>> =
        ps.iter().cloned().map(|p| Box::pin(p.wait()) as _).collect();
    std::future::poll_fn(|cx| {
        for w in waits.iter_mut() {
            if w.as_mut().poll(cx).is_ready() {
                return std::task::Poll::Ready(());
            }
        }
        std::task::Poll::Pending
    })
    .await
}

/// `wasi:io/streams.input-stream`.
pub enum InputStream {
    /// The host's standard input.
    Stdin,
    /// A file, read from `pos` on.
    File { file: Arc<std::fs::File>, pos: u64 },
    /// Bytes from memory, read from `pos`.
    Bytes { data: Arc<Vec<u8>>, pos: usize },
    /// At end of stream.
    Empty,
}

/// `wasi:io/streams.output-stream`.
pub enum OutputStream {
    Stdout(Sink),
    Stderr(Sink),
    /// A file, written at `pos` (or at its end when appending).
    File {
        file: Arc<std::fs::File>,
        pos: u64,
        append: bool,
    },
}

impl InputStream {
    pub(crate) fn from_source(s: &Source) -> Self {
        match s {
            Source::Inherit => InputStream::Stdin,
            Source::Bytes(data) => InputStream::Bytes {
                data: data.clone(),
                pos: 0,
            },
            Source::Null => InputStream::Empty,
        }
    }
}

/// Bytes a stream accepts per `check-write`.
const WRITE_BUDGET: u64 = 1 << 20;

fn write_sink(sink: &Sink, stderr: bool, data: &[u8]) -> std::io::Result<()> {
    match sink {
        Sink::Inherit if stderr => std::io::stderr().lock().write_all(data),
        Sink::Inherit => std::io::stdout().lock().write_all(data),
        Sink::Capture(buf) => {
            buf.lock().unwrap_or_else(|e| e.into_inner()).extend_from_slice(data);
            Ok(())
        }
        Sink::Null => Ok(()),
    }
}

fn flush_sink(sink: &Sink, stderr: bool) -> std::io::Result<()> {
    match sink {
        Sink::Inherit if stderr => std::io::stderr().flush(),
        Sink::Inherit => std::io::stdout().flush(),
        _ => Ok(()),
    }
}

impl OutputStream {
    fn write(&mut self, data: &[u8]) -> std::io::Result<()> {
        match self {
            OutputStream::Stdout(s) => write_sink(s, false, data),
            OutputStream::Stderr(s) => write_sink(s, true, data),
            OutputStream::File { file, pos, append } => {
                use std::os::unix::fs::FileExt;
                if *append {
                    (&**file).write_all(data)
                } else {
                    file.write_all_at(data, *pos)?;
                    *pos += data.len() as u64;
                    Ok(())
                }
            }
        }
    }
    fn flush(&self) -> std::io::Result<()> {
        match self {
            OutputStream::Stdout(s) => flush_sink(s, false),
            OutputStream::Stderr(s) => flush_sink(s, true),
            OutputStream::File { .. } => Ok(()),
        }
    }
}

/// Result of a read attempt that did not need to wait.
enum Read_ {
    Data(Vec<u8>),
    Closed,
    Failed(std::io::Error),
    /// The host's stdin: must be read off-thread.
    Stdin,
}

fn read_now(stream: &mut InputStream, len: u64) -> Read_ {
    match stream {
        InputStream::Stdin => Read_::Stdin,
        InputStream::File { file, pos } => {
            use std::os::unix::fs::FileExt;
            let mut buf = vec![0; len.min(1 << 20) as usize];
            match file.read_at(&mut buf, *pos) {
                Ok(0) if !buf.is_empty() => Read_::Closed,
                Ok(n) => {
                    buf.truncate(n);
                    *pos += n as u64;
                    Read_::Data(buf)
                }
                Err(e) => Read_::Failed(e),
            }
        }
        InputStream::Empty => Read_::Closed,
        InputStream::Bytes { data, pos } => {
            if *pos >= data.len() {
                return Read_::Closed;
            }
            let n = (data.len() - *pos).min(len.min(usize::MAX as u64) as usize);
            let out = data[*pos..*pos + n].to_vec();
            *pos += n;
            Read_::Data(out)
        }
    }
}

/// Reads the host's stdin off the executor thread.
async fn read_stdin(len: u64) -> std::io::Result<Vec<u8>> {
    let len = len.min(1 << 20) as usize;
    blocking::unblock(move || {
        let mut buf = vec![0; len];
        let n = std::io::stdin().lock().read(&mut buf)?;
        buf.truncate(n);
        Ok(buf)
    })
    .await
}

fn closed() -> Val {
    err(Val::Variant("closed".into(), None))
}

fn ready(vals: Vec<Val>) -> Result<HostFuture> {
    Ok(Box::pin(async move { Ok(vals) }))
}

/// A `last-operation-failed` stream error; file errors keep their
/// `wasi:filesystem` code for `filesystem-error-code`.
fn failed<T: WasiView>(cx: &mut crate::StoreCx<'_, T>, types: &Types, e: std::io::Error) -> Result<Val> {
    let code = super::filesystem::error_code(&e);
    let r = cx.data_mut().wasi().table.push(IoError(e.to_string(), Some(code)))?;
    Ok(err(Val::Variant(
        "last-operation-failed".into(),
        Some(Box::new(own(&types.error, r.rep()))),
    )))
}

/// The read family: `read`/`blocking-read` return bytes, `skip`s a count.
fn read_op<T: WasiView>(cx: &mut crate::StoreCx<'_, T>, types: &Types, args: &[Val], skip: bool) -> Result<HostFuture> {
    let len = u64_arg(&args[1])?;
    let stream = Resource::<InputStream>::new(rep(&args[0])?);
    let result = move |data: Vec<u8>| {
        if skip {
            ok(Some(Val::U64(data.len() as u64)))
        } else {
            ok(Some(bytes_val(data)))
        }
    };
    match read_now(cx.data_mut().wasi().table.get_mut(&stream)?, len) {
        Read_::Data(d) => ready(vec![result(d)]),
        Read_::Closed => ready(vec![closed()]),
        Read_::Failed(e) => ready(vec![failed(cx, types, e)?]),
        Read_::Stdin if len == 0 => ready(vec![result(Vec::new())]),
        Read_::Stdin => Ok(Box::pin(async move {
            Ok(vec![match read_stdin(len).await {
                Ok(d) if d.is_empty() => closed(),
                Ok(d) => result(d),
                Err(_) => closed(),
            }])
        })),
    }
}

pub(crate) fn add_to_linker<T: WasiView>(linker: &mut Linker<T>) -> Types {
    let error_iface = linker.instance(&iface("wasi:io/error"));
    let error = table_resource::<T, IoError>(error_iface, "error");
    error_iface.func_new("[method]error.to-debug-string", |mut cx, args, out| {
        let e = get::<T, IoError>(&mut cx, &args[0])?;
        out.push(Val::String(e.0.clone()));
        Ok(())
    });

    let poll = linker.instance(&iface("wasi:io/poll"));
    let pollable = table_resource::<T, Pollable>(poll, "pollable");
    poll.func_new("[method]pollable.ready", |mut cx, args, out| {
        let p = get::<T, Pollable>(&mut cx, &args[0])?;
        out.push(Val::Bool(p.ready()));
        Ok(())
    });
    poll.func_async("[method]pollable.block", |mut cx, args| {
        let p = get::<T, Pollable>(&mut cx, &args[0])?.clone();
        Ok(Box::pin(async move {
            p.wait().await;
            Ok(vec![])
        }))
    });
    poll.func_async("poll", |mut cx, args| {
        let Val::List(list) = &args[0] else {
            bail!("expected a list of pollables")
        };
        if list.is_empty() {
            bail!("poll: the list of pollables is empty");
        }
        if list.len() > u32::MAX as usize {
            bail!("poll: too many pollables");
        }
        let table = &cx.data_mut().wasi().table;
        let ps: Vec<Pollable> = list
            .iter()
            .map(|v| Ok(table.get(&Resource::<Pollable>::new(rep(v)?))?.clone()))
            .collect::<Result<_>>()?;
        Ok(Box::pin(async move {
            let ready_now = |ps: &[Pollable]| -> Vec<Val> {
                ps.iter()
                    .enumerate()
                    .filter(|(_, p)| p.ready())
                    .map(|(i, _)| Val::U32(i as u32))
                    .collect()
            };
            let mut ready = ready_now(&ps);
            if ready.is_empty() {
                wait_any(&ps).await;
                ready = ready_now(&ps);
            }
            Ok(vec![Val::List(ready)])
        }))
    });

    let types = Types {
        error,
        pollable,
        input_stream: table_resource::<T, InputStream>(linker.instance(&iface("wasi:io/streams")), "input-stream"),
        output_stream: table_resource::<T, OutputStream>(linker.instance(&iface("wasi:io/streams")), "output-stream"),
    };
    add_streams(linker, &types);
    types
}

fn add_streams<T: WasiView>(linker: &mut Linker<T>, types: &Types) {
    let s = linker.instance(&iface("wasi:io/streams"));

    for (name, skip) in [
        ("read", false),
        ("blocking-read", false),
        ("skip", true),
        ("blocking-skip", true),
    ] {
        let t = types.clone();
        s.func_async(&format!("[method]input-stream.{name}"), move |mut cx, args| {
            read_op(&mut cx, &t, args, skip)
        });
    }
    let t = types.clone();
    s.func_new("[method]input-stream.subscribe", move |mut cx, args, out| {
        let table = &mut cx.data_mut().wasi().table;
        let stream = Resource::<InputStream>::new(rep(&args[0])?);
        table.get(&stream)?;
        let p = table.push_child(Pollable::Ready, &stream)?;
        out.push(own(&t.pollable, p.rep()));
        Ok(())
    });

    s.func_new("[method]output-stream.check-write", move |mut cx, args, out| {
        get::<T, OutputStream>(&mut cx, &args[0])?;
        out.push(ok(Some(Val::U64(WRITE_BUDGET))));
        Ok(())
    });
    for (name, flush) in [("write", false), ("blocking-write-and-flush", true)] {
        let t = types.clone();
        s.func_new(&format!("[method]output-stream.{name}"), move |mut cx, args, out| {
            let data = bytes_arg(&args[1])?;
            if flush && data.len() > 4096 {
                bail!(
                    "blocking-write-and-flush: {} bytes exceed the 4096-byte limit",
                    data.len()
                );
            }
            let stream = get_mut::<T, OutputStream>(&mut cx, &args[0])?;
            let r = stream
                .write(&data)
                .and_then(|_| if flush { stream.flush() } else { Ok(()) });
            out.push(match r {
                Ok(()) => ok(None),
                Err(e) => failed(&mut cx, &t, e)?,
            });
            Ok(())
        });
    }
    for name in ["flush", "blocking-flush"] {
        let t = types.clone();
        s.func_new(&format!("[method]output-stream.{name}"), move |mut cx, args, out| {
            let stream = get::<T, OutputStream>(&mut cx, &args[0])?;
            out.push(match stream.flush() {
                Ok(()) => ok(None),
                Err(e) => failed(&mut cx, &t, e)?,
            });
            Ok(())
        });
    }
    for (name, flush) in [("write-zeroes", false), ("blocking-write-zeroes-and-flush", true)] {
        let t = types.clone();
        s.func_new(&format!("[method]output-stream.{name}"), move |mut cx, args, out| {
            let len = u64_arg(&args[1])?;
            if len > WRITE_BUDGET {
                bail!("write-zeroes: {len} bytes exceed the permitted {WRITE_BUDGET}");
            }
            let stream = get_mut::<T, OutputStream>(&mut cx, &args[0])?;
            let r = stream
                .write(&vec![0; len as usize])
                .and_then(|_| if flush { stream.flush() } else { Ok(()) });
            out.push(match r {
                Ok(()) => ok(None),
                Err(e) => failed(&mut cx, &t, e)?,
            });
            Ok(())
        });
    }
    let t = types.clone();
    s.func_new("[method]output-stream.subscribe", move |mut cx, args, out| {
        let table = &mut cx.data_mut().wasi().table;
        let stream = Resource::<OutputStream>::new(rep(&args[0])?);
        table.get(&stream)?;
        let p = table.push_child(Pollable::Ready, &stream)?;
        out.push(own(&t.pollable, p.rep()));
        Ok(())
    });
    for name in ["splice", "blocking-splice"] {
        let t = types.clone();
        s.func_async(&format!("[method]output-stream.{name}"), move |mut cx, args| {
            let dst = Resource::<OutputStream>::new(rep(&args[0])?);
            let len = u64_arg(&args[2])?.min(WRITE_BUDGET);
            let src = Resource::<InputStream>::new(rep(&args[1])?);
            let data = match read_now(cx.data_mut().wasi().table.get_mut(&src)?, len) {
                Read_::Data(d) => d,
                Read_::Closed => return ready(vec![closed()]),
                Read_::Failed(e) => return ready(vec![failed(&mut cx, &t, e)?]),
                Read_::Stdin => {
                    // Read off-thread, then write: the output stream stays in
                    // the table, so the write happens through a sink copy.
                    let sink = match cx.data_mut().wasi().table.get(&dst)? {
                        OutputStream::Stdout(s) => (s.clone(), false),
                        OutputStream::Stderr(s) => (s.clone(), true),
                        OutputStream::File { .. } => bail!("splicing the host's stdin into a file is not supported"),
                    };
                    return Ok(Box::pin(async move {
                        Ok(vec![match read_stdin(len).await {
                            Ok(d) if d.is_empty() => closed(),
                            Ok(d) => match write_sink(&sink.0, sink.1, &d) {
                                Ok(()) => ok(Some(Val::U64(d.len() as u64))),
                                Err(_) => closed(),
                            },
                            Err(_) => closed(),
                        }])
                    }));
                }
            };
            let stream = cx.data_mut().wasi().table.get_mut(&dst)?;
            let r = stream.write(&data);
            ready(vec![match r {
                Ok(()) => ok(Some(Val::U64(data.len() as u64))),
                Err(e) => failed(&mut cx, &t, e)?,
            }])
        });
    }
}
