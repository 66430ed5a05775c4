//! `wasi:io/streams`: input and output streams over any host stream end.
//!
//! A group implements [`HostInputStream`] or [`HostOutputStream`] for its
//! own ends (files, sockets, stdio, HTTP bodies) and puts them in the table
//! as an [`InputStream`] or [`OutputStream`]. The functions here implement
//! the WIT's semantics once for all of them: `closed` and
//! `last-operation-failed`, the blocking forms (which suspend the guest),
//! `check-write` permits, `skip`, `write-zeroes` and `splice`.

use super::error::IoError;
use super::poll::{BoxFuture, Pollable};
use super::table::{get_mut, IoView, Types};
use crate::dispatch::{Deferred, HostFuture};
use crate::host::table::Resource;
use crate::values::Val;
use crate::wasi::vals::{bytes_arg, bytes_val, err, iface, ok, own, rep, u64_arg};
use crate::{Linker, StoreCx};
use anyhow::{bail, Result};

/// Why a stream operation did not succeed.
pub enum StreamError {
    /// The stream has ended (reads) or can take no more (writes).
    Closed,
    /// The last operation failed; the error becomes a `wasi:io/error`.
    Failed(IoError),
}

pub type StreamResult<T> = Result<T, StreamError>;

impl StreamError {
    /// An I/O failure with no group's code.
    pub fn io(e: std::io::Error) -> Self {
        StreamError::Failed(IoError::from_io(e))
    }
}

/// A read's outcome: now, or after waiting.
pub enum Read {
    Now(StreamResult<Vec<u8>>),
    /// Nothing to read yet and the caller asked to wait: resolves, without
    /// the store, with at least one byte or the end.
    Later(BoxFuture<StreamResult<Vec<u8>>>),
}

/// The host side of an `input-stream`.
pub trait HostInputStream: Send + 'static {
    /// Reads up to `len` bytes. Without `blocking`, returns what is there
    /// now (possibly nothing); with `blocking`, may return a future that
    /// waits for data instead.
    fn read(&mut self, len: u64, blocking: bool) -> Read;

    /// What `subscribe` waits on; by default always ready.
    fn pollable(&self) -> Pollable {
        Pollable::ready()
    }
}

/// The host side of an `output-stream`.
pub trait HostOutputStream: Send + 'static {
    /// `check-write`: how many bytes `write` takes now.
    fn check_write(&mut self) -> StreamResult<u64>;

    /// Writes `data`; a [`bounded`](Self::bounded) stream takes at most the
    /// last `check-write` permit.
    fn write(&mut self, data: &[u8]) -> StreamResult<()>;

    /// Pushes buffered bytes on, without waiting.
    fn flush(&mut self) -> StreamResult<()>;

    /// For a blocking flush: what it must still wait for (the guest is
    /// suspended meanwhile), if anything is left.
    fn unfinished(&mut self) -> Option<BoxFuture<StreamResult<()>>> {
        None
    }

    /// What `subscribe` waits on; by default always ready.
    fn pollable(&self) -> Pollable {
        Pollable::ready()
    }

    /// Whether a `write` beyond the `check-write` permit is a guest error
    /// (true for streams with bounded buffers: sockets, pipes).
    fn bounded(&self) -> bool {
        false
    }
}

/// `wasi:io/streams.input-stream`, as the table holds it.
pub struct InputStream(Box<dyn HostInputStream>);

impl InputStream {
    pub fn new(s: impl HostInputStream) -> Self {
        InputStream(Box::new(s))
    }

    /// The host end (for hosts that drive a stream without the guest's
    /// `wasi:io` calls, such as `wasi_snapshot_preview1`).
    pub fn host(&mut self) -> &mut dyn HostInputStream {
        &mut *self.0
    }

    /// What `subscribe` waits on.
    pub fn pollable(&self) -> Pollable {
        self.0.pollable()
    }
}

/// `wasi:io/streams.output-stream`, as the table holds it.
pub struct OutputStream(Box<dyn HostOutputStream>);

impl OutputStream {
    pub fn new(s: impl HostOutputStream) -> Self {
        OutputStream(Box::new(s))
    }

    /// The host end (see [`InputStream::host`]).
    pub fn host(&mut self) -> &mut dyn HostOutputStream {
        &mut *self.0
    }

    /// What `subscribe` waits on.
    pub fn pollable(&self) -> Pollable {
        self.0.pollable()
    }
}

/// Bytes an unbounded stream accepts per `check-write`.
pub const WRITE_BUDGET: u64 = 1 << 20;

/// Bytes from memory, read from the start.
pub struct MemoryInput {
    data: std::sync::Arc<Vec<u8>>,
    pos: usize,
}

impl MemoryInput {
    pub fn new(data: std::sync::Arc<Vec<u8>>) -> Self {
        MemoryInput { data, pos: 0 }
    }
}

impl HostInputStream for MemoryInput {
    fn read(&mut self, len: u64, _: bool) -> Read {
        if self.pos >= self.data.len() {
            return Read::Now(Err(StreamError::Closed));
        }
        let n = (self.data.len() - self.pos).min(len.min(usize::MAX as u64) as usize);
        let out = self.data[self.pos..self.pos + n].to_vec();
        self.pos += n;
        Read::Now(Ok(out))
    }
}

/// A stream already at its end.
pub struct ClosedInput;

impl HostInputStream for ClosedInput {
    fn read(&mut self, _: u64, _: bool) -> Read {
        Read::Now(Err(StreamError::Closed))
    }
}

fn closed() -> Val {
    err(Val::Variant("closed".into(), None))
}

fn ready(vals: Vec<Val>) -> Result<HostFuture> {
    Ok(Box::pin(async move { Ok(vals) }))
}

/// `last-operation-failed(e)`, with `e` put in the table.
fn failed<T: IoView>(cx: &mut StoreCx<'_, T>, types: &Types, e: IoError) -> Result<Val> {
    let r = cx.data_mut().table().push(e)?;
    Ok(err(Val::Variant(
        "last-operation-failed".into(),
        Some(Box::new(own(&types.error, r.rep()))),
    )))
}

/// A stream error as the guest sees it.
fn error_val<T: IoView>(cx: &mut StoreCx<'_, T>, types: &Types, e: StreamError) -> Result<Val> {
    match e {
        StreamError::Closed => Ok(closed()),
        StreamError::Failed(e) => failed(cx, types, e),
    }
}

/// A stream error met while the guest was suspended: the error object is
/// made once the store is back (see [`Deferred`]).
fn error_later<T: IoView>(types: Types, e: StreamError) -> anyhow::Error {
    Deferred::<T>::new(move |mut cx| Ok(vec![error_val(&mut cx, &types, e)?])).into()
}

/// The read family: `read`/`blocking-read` return bytes, `skip`s a count.
fn read_op<T: IoView>(
    cx: &mut StoreCx<'_, T>,
    types: &Types,
    args: &[Val],
    skip: bool,
    blocking: bool,
) -> Result<HostFuture> {
    let len = u64_arg(&args[1])?;
    let result = move |data: Vec<u8>| {
        if skip {
            ok(Some(Val::U64(data.len() as u64)))
        } else {
            ok(Some(bytes_val(data)))
        }
    };
    match get_mut::<T, InputStream>(cx, &args[0])?.0.read(len, blocking) {
        Read::Now(Ok(d)) => ready(vec![result(d)]),
        Read::Now(Err(e)) => ready(vec![error_val(cx, types, e)?]),
        Read::Later(wait) => {
            let types = types.clone();
            Ok(Box::pin(async move {
                match wait.await {
                    Ok(d) => Ok(vec![result(d)]),
                    Err(StreamError::Closed) => Ok(vec![closed()]),
                    Err(e) => Err(error_later::<T>(types, e)),
                }
            }))
        }
    }
}

/// Ends a write or flush: reports an error, or for a blocking flush waits
/// (suspending the guest) until the stream took every byte.
fn finish_flush<T: IoView>(
    cx: &mut StoreCx<'_, T>,
    types: &Types,
    args: &[Val],
    r: StreamResult<()>,
    blocking: bool,
) -> Result<HostFuture> {
    if let Err(e) = r {
        return ready(vec![error_val(cx, types, e)?]);
    }
    let rest = match blocking {
        true => get_mut::<T, OutputStream>(cx, &args[0])?.0.unfinished(),
        false => None,
    };
    match rest {
        None => ready(vec![ok(None)]),
        Some(drain) => {
            let types = types.clone();
            Ok(Box::pin(async move {
                match drain.await {
                    Ok(()) => Ok(vec![ok(None)]),
                    Err(StreamError::Closed) => Ok(vec![closed()]),
                    Err(e) => Err(error_later::<T>(types, e)),
                }
            }))
        }
    }
}

/// Writes `data` into the output stream behind `dst` (for `splice`): the
/// count written, or the stream error.
fn write_into<T: IoView>(cx: &mut StoreCx<'_, T>, types: &Types, dst: &Val, data: &[u8]) -> Result<Val> {
    let r = get_mut::<T, OutputStream>(cx, dst)?.0.write(data);
    match r {
        Ok(()) => Ok(ok(Some(Val::U64(data.len() as u64)))),
        Err(e) => error_val(cx, types, e),
    }
}

pub(super) fn add_to_linker<T: IoView>(linker: &mut Linker<T>, types: &Types) {
    let s = linker.instance(&iface("wasi:io/streams"));

    for (name, skip, blocking) in [
        ("read", false, false),
        ("blocking-read", false, true),
        ("skip", true, false),
        ("blocking-skip", true, true),
    ] {
        let t = types.clone();
        s.func_async(&format!("[method]input-stream.{name}"), move |mut cx, args| {
            read_op(&mut cx, &t, args, skip, blocking)
        });
    }
    let t = types.clone();
    s.func_new("[method]input-stream.subscribe", move |mut cx, args, out| {
        let table = cx.data_mut().table();
        let stream = Resource::<InputStream>::new(rep(&args[0])?);
        let p = table.get(&stream)?.0.pollable();
        let p = table.push_child(p, &stream)?;
        out.push(own(&t.pollable, p.rep()));
        Ok(())
    });

    let t = types.clone();
    s.func_new("[method]output-stream.check-write", move |mut cx, args, out| {
        let r = get_mut::<T, OutputStream>(&mut cx, &args[0])?.0.check_write();
        out.push(match r {
            Ok(n) => ok(Some(Val::U64(n))),
            Err(e) => error_val(&mut cx, &t, e)?,
        });
        Ok(())
    });
    for (name, flush) in [("write", false), ("blocking-write-and-flush", true)] {
        let t = types.clone();
        s.func_async(&format!("[method]output-stream.{name}"), move |mut cx, args| {
            let data = bytes_arg(&args[1])?;
            if flush && data.len() > 4096 {
                bail!(
                    "blocking-write-and-flush: {} bytes exceed the 4096-byte limit",
                    data.len()
                );
            }
            let stream = &mut get_mut::<T, OutputStream>(&mut cx, &args[0])?.0;
            if !flush && stream.bounded() && data.len() as u64 > stream.check_write().unwrap_or(0) {
                bail!(
                    "output-stream.write: {} bytes exceed the permitted check-write",
                    data.len()
                );
            }
            let r = stream
                .write(&data)
                .and_then(|_| if flush { stream.flush() } else { Ok(()) });
            finish_flush(&mut cx, &t, args, r, flush)
        });
    }
    for (name, blocking) in [("flush", false), ("blocking-flush", true)] {
        let t = types.clone();
        s.func_async(&format!("[method]output-stream.{name}"), move |mut cx, args| {
            let r = get_mut::<T, OutputStream>(&mut cx, &args[0])?.0.flush();
            finish_flush(&mut cx, &t, args, r, blocking)
        });
    }
    for (name, flush) in [("write-zeroes", false), ("blocking-write-zeroes-and-flush", true)] {
        let t = types.clone();
        s.func_new(&format!("[method]output-stream.{name}"), move |mut cx, args, out| {
            let len = u64_arg(&args[1])?;
            if len > WRITE_BUDGET {
                bail!("write-zeroes: {len} bytes exceed the permitted {WRITE_BUDGET}");
            }
            let stream = &mut get_mut::<T, OutputStream>(&mut cx, &args[0])?.0;
            let r = stream
                .write(&vec![0; len as usize])
                .and_then(|_| if flush { stream.flush() } else { Ok(()) });
            out.push(match r {
                Ok(()) => ok(None),
                Err(e) => error_val(&mut cx, &t, e)?,
            });
            Ok(())
        });
    }
    let t = types.clone();
    s.func_new("[method]output-stream.subscribe", move |mut cx, args, out| {
        let table = cx.data_mut().table();
        let stream = Resource::<OutputStream>::new(rep(&args[0])?);
        let p = table.get(&stream)?.0.pollable();
        let p = table.push_child(p, &stream)?;
        out.push(own(&t.pollable, p.rep()));
        Ok(())
    });
    for name in ["splice", "blocking-splice"] {
        let t = types.clone();
        s.func_async(&format!("[method]output-stream.{name}"), move |mut cx, args| {
            let len = u64_arg(&args[2])?.min(WRITE_BUDGET);
            // Takes what the source has now; a source that must be read
            // off-thread (the host's stdin) is written once it answers.
            match get_mut::<T, InputStream>(&mut cx, &args[1])?.0.read(len, false) {
                Read::Now(Ok(data)) => ready(vec![write_into(&mut cx, &t, &args[0], &data)?]),
                Read::Now(Err(e)) => ready(vec![error_val(&mut cx, &t, e)?]),
                Read::Later(wait) => {
                    let (t, dst) = (t.clone(), args[0].clone());
                    Ok(Box::pin(async move {
                        let r = wait.await;
                        Err(Deferred::<T>::new(move |mut cx| {
                            Ok(vec![match r {
                                Ok(data) => write_into(&mut cx, &t, &dst, &data)?,
                                Err(e) => error_val(&mut cx, &t, e)?,
                            }])
                        })
                        .into())
                    }))
                }
            }
        });
    }
}
