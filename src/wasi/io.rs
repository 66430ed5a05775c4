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

/// `wasi:io/error.error`: a description of what failed, and the error code
/// of the group it came from.
pub struct IoError(pub String, pub Option<ErrorCode>);

/// The code behind an `error`, for `filesystem-error-code` or
/// `network-error-code` (each answers only for its own group).
#[derive(Clone, Debug)]
pub enum ErrorCode {
    Filesystem(&'static str),
    Network(&'static str),
    Http(super::http::HttpError),
}

/// `wasi:io/poll.pollable`.
#[derive(Clone, Debug)]
pub enum Pollable {
    /// Always ready.
    Ready,
    /// Ready from this instant on.
    Deadline(Instant),
    /// Ready once host work in the background signals it.
    Signal(Arc<Signal>),
    /// Ready when the socket can be read (or accepted) from, or written to,
    /// or once `until` passes (an operation's timeout).
    Socket {
        sock: Socket,
        write: bool,
        until: Option<Instant>,
    },
    /// Ready when an HTTP body pipe can be read, written, or has ended.
    Pipe { pipe: Arc<Pipe>, wait: PipeWait },
}

/// What a [`Pollable::Pipe`] waits for.
#[derive(Clone, Copy, Debug)]
pub enum PipeWait {
    Read,
    Write,
    End,
}

use super::http::pipe::Pipe;

/// A non-blocking OS socket registered with the dispatcher's reactor.
pub type Socket = Arc<async_io::Async<socket2::Socket>>;

/// Whether `sock` is readable (or writable) right now, without waiting.
pub(crate) fn socket_ready(sock: &Socket, write: bool) -> bool {
    use std::os::fd::AsRawFd;
    let events = if write { libc::POLLOUT } else { libc::POLLIN };
    let mut fd = libc::pollfd {
        fd: sock.get_ref().as_raw_fd(),
        events,
        revents: 0,
    };
    // SAFETY: one valid pollfd, zero timeout.
    let n = unsafe { libc::poll(&mut fd, 1, 0) };
    n > 0 && fd.revents != 0
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
    /// Ready when `sock` is readable (or, with `write`, writable).
    pub(crate) fn socket(sock: Socket, write: bool) -> Self {
        Pollable::Socket {
            sock,
            write,
            until: None,
        }
    }

    fn ready(&self) -> bool {
        match self {
            Pollable::Ready => true,
            Pollable::Deadline(d) => Instant::now() >= *d,
            Pollable::Signal(s) => s.is_set(),
            Pollable::Socket { sock, write, until } => {
                until.is_some_and(|t| Instant::now() >= t) || socket_ready(sock, *write)
            }
            Pollable::Pipe { pipe, wait } => match wait {
                PipeWait::Read => pipe.readable(),
                PipeWait::Write => pipe.writable(),
                PipeWait::End => pipe.end().is_some(),
            },
        }
    }

    async fn wait(self) {
        match self {
            Pollable::Ready => {}
            Pollable::Deadline(d) => {
                async_io::Timer::at(d).await;
            }
            Pollable::Signal(s) => s.wait().await,
            // An error wakes the waiter too: the next operation reports it.
            Pollable::Socket { sock, write, until } => {
                let ready = async {
                    // An error wakes the waiter too: the next operation reports it.
                    let _ = if write {
                        sock.writable().await
                    } else {
                        sock.readable().await
                    };
                };
                match until {
                    Some(t) => {
                        futures_lite::future::or(ready, async move {
                            async_io::Timer::at(t).await;
                        })
                        .await
                    }
                    None => ready.await,
                }
            }
            Pollable::Pipe { pipe, wait } => match wait {
                PipeWait::Read => pipe.wait_readable().await,
                PipeWait::Write => pipe.wait_writable().await,
                PipeWait::End => drop(pipe.wait_end().await),
            },
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
    /// A connected TCP socket's receiving side.
    Tcp(Socket),
    /// An incoming HTTP body.
    Pipe(PipeReader),
}

/// The guest's reading end of an HTTP body pipe; dropping it lets the
/// body's pump discard the rest.
pub struct PipeReader(pub Arc<Pipe>);

impl Drop for PipeReader {
    fn drop(&mut self) {
        self.0.close_reader();
    }
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
    /// A connected TCP socket's sending side, with bytes the socket has not
    /// taken yet (at most one `check-write` permit's worth).
    Tcp {
        sock: Socket,
        pending: Vec<u8>,
    },
    /// An outgoing HTTP body.
    Pipe(Arc<Pipe>),
}

/// A pipe failure as an I/O error that keeps its HTTP `error-code`.
fn pipe_error(e: super::http::HttpError) -> std::io::Error {
    std::io::Error::other(e)
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
/// Bytes a socket stream accepts per `check-write`.
const SOCKET_BUDGET: u64 = 64 << 10;

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
            OutputStream::Tcp { pending, .. } => {
                pending.extend_from_slice(data);
                self.flush()
            }
            OutputStream::Pipe(pipe) => pipe.push_now(bytes::Bytes::copy_from_slice(data)).map_err(pipe_error),
        }
    }

    /// Pushes buffered bytes out without waiting (a socket takes what it can).
    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            OutputStream::Stdout(s) => flush_sink(s, false),
            OutputStream::Stderr(s) => flush_sink(s, true),
            OutputStream::File { .. } | OutputStream::Pipe(_) => Ok(()),
            OutputStream::Tcp { sock, pending } => {
                while !pending.is_empty() {
                    match sock.get_ref().write(pending) {
                        Ok(n) => drop(pending.drain(..n)),
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(e),
                    }
                }
                Ok(())
            }
        }
    }

    /// Bytes the stream takes now without blocking.
    fn permit(&mut self) -> std::io::Result<u64> {
        match self {
            OutputStream::Tcp { .. } => {
                self.flush()?;
                let OutputStream::Tcp { pending, .. } = self else {
                    unreachable!()
                };
                Ok(if pending.is_empty() { SOCKET_BUDGET } else { 0 })
            }
            OutputStream::Pipe(pipe) => pipe.permit().map(|n| n as u64).map_err(pipe_error),
            _ => Ok(WRITE_BUDGET),
        }
    }

    /// For a socket or pipe with bytes still buffered: what a blocking
    /// flush must wait for (suspending the guest).
    fn unfinished(&mut self, timeout: Option<std::time::Duration>) -> Option<Drain> {
        match self {
            OutputStream::Tcp { sock, pending } if !pending.is_empty() => Some(Box::pin(write_all_socket(
                sock.clone(),
                std::mem::take(pending),
                timeout,
            ))),
            // Bytes in an HTTP body's pipe are handed over: a flush waits
            // only while the pipe is full (back-pressure from the peer).
            OutputStream::Pipe(pipe) if !pipe.writable() => {
                let pipe = pipe.clone();
                Some(Box::pin(async move {
                    pipe.wait_writable().await;
                    Ok(())
                }))
            }
            _ => None,
        }
    }
}

/// A blocking flush's wait.
type Drain = std::pin::Pin<Box<dyn std::future::Future<Output = std::io::Result<()>> + Send>>;

/// Writes all of `data` to `sock`, waiting for the socket as needed, but
/// at most `timeout` for any one step.
async fn write_all_socket(sock: Socket, data: Vec<u8>, timeout: Option<std::time::Duration>) -> std::io::Result<()> {
    let mut done = 0;
    while done < data.len() {
        done += within(timeout, sock.write_with(|s| (&*s).write(&data[done..]))).await?;
    }
    Ok(())
}

/// `op`, or a `TimedOut` error once `timeout` passes.
async fn within<R>(
    timeout: Option<std::time::Duration>,
    op: impl std::future::Future<Output = std::io::Result<R>>,
) -> std::io::Result<R> {
    match timeout {
        None => op.await,
        Some(t) => crate::dispatch::within(t, op)
            .await
            .unwrap_or_else(|| Err(std::io::ErrorKind::TimedOut.into())),
    }
}

/// Result of a read attempt that did not need to wait.
enum Read_ {
    Data(Vec<u8>),
    Closed,
    Failed(std::io::Error),
    /// The host's stdin: must be read off-thread.
    Stdin,
    /// A socket with nothing to read yet.
    Wait(Socket),
    /// A pipe with nothing to read yet.
    WaitPipe(Arc<Pipe>),
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
        InputStream::Tcp(sock) => {
            let mut buf = vec![0; len.min(SOCKET_BUDGET) as usize];
            match sock.get_ref().read(&mut buf) {
                Ok(0) if !buf.is_empty() => Read_::Closed,
                Ok(n) => {
                    buf.truncate(n);
                    Read_::Data(buf)
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Read_::Wait(sock.clone()),
                Err(e) => Read_::Failed(e),
            }
        }
        InputStream::Pipe(PipeReader(pipe)) => pipe_read(pipe, len),
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

fn pipe_read(pipe: &Arc<Pipe>, len: u64) -> Read_ {
    use super::http::pipe::Read;
    match pipe.read_now(len.min(SOCKET_BUDGET) as usize) {
        Read::Data(d) => Read_::Data(d.to_vec()),
        Read::Closed => Read_::Closed,
        Read::Failed(e) => Read_::Failed(pipe_error(e)),
        Read::Empty => Read_::WaitPipe(pipe.clone()),
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
    if let Some(h) = e.get_ref().and_then(|i| i.downcast_ref::<super::http::HttpError>()) {
        let io = IoError(h.to_string(), Some(ErrorCode::Http(h.clone())));
        return failed_with(cx, types, io);
    }
    // Connection failures belong to the socket streams; the rest to files
    // (and the host's stdio).
    let network = e.kind() == std::io::ErrorKind::TimedOut
        || matches!(
            e.raw_os_error(),
            Some(
                libc::ECONNRESET
                    | libc::ECONNREFUSED
                    | libc::ECONNABORTED
                    | libc::ENOTCONN
                    | libc::ENETUNREACH
                    | libc::EHOSTUNREACH
                    | libc::ENETDOWN
                    | libc::ETIMEDOUT
            )
        );
    let code = if network {
        ErrorCode::Network(super::sockets::io_code(&e))
    } else {
        ErrorCode::Filesystem(super::filesystem::error_code(&e))
    };
    failed_with(cx, types, IoError(e.to_string(), Some(code)))
}

fn failed_with<T: WasiView>(cx: &mut crate::StoreCx<'_, T>, types: &Types, e: IoError) -> Result<Val> {
    let r = cx.data_mut().wasi().table.push(e)?;
    Ok(err(Val::Variant(
        "last-operation-failed".into(),
        Some(Box::new(own(&types.error, r.rep()))),
    )))
}

/// The read family: `read`/`blocking-read` return bytes, `skip`s a count.
/// A `last-operation-failed` for an operation that failed after waiting:
/// the error object is made once the store is back (see
/// [`crate::dispatch::Deferred`]).
fn failed_later<T: WasiView>(types: Types, e: std::io::Error) -> anyhow::Error {
    crate::dispatch::Deferred::<T>::new(move |mut cx| Ok(vec![failed(&mut cx, &types, e)?])).into()
}

/// Ends a write or flush: reports an error, or for a blocking flush of a
/// socket waits (suspending the guest) until the socket took every byte.
fn finish_flush<T: WasiView>(
    cx: &mut crate::StoreCx<'_, T>,
    types: &Types,
    args: &[Val],
    r: std::io::Result<()>,
    blocking: bool,
) -> Result<HostFuture> {
    if let Err(e) = r {
        return ready(vec![failed(cx, types, e)?]);
    }
    let timeout = cx.data_mut().wasi().network.timeout;
    let rest = blocking
        .then(|| get_mut::<T, OutputStream>(cx, &args[0]).map(|s| s.unfinished(timeout)))
        .transpose()?
        .flatten();
    match rest {
        None => ready(vec![ok(None)]),
        Some(drain) => {
            let types = types.clone();
            Ok(Box::pin(async move {
                match drain.await {
                    Ok(()) => Ok(vec![ok(None)]),
                    Err(e) => Err(failed_later::<T>(types, e)),
                }
            }))
        }
    }
}

fn read_op<T: WasiView>(
    cx: &mut crate::StoreCx<'_, T>,
    types: &Types,
    args: &[Val],
    skip: bool,
    blocking: bool,
) -> Result<HostFuture> {
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
        Read_::Wait(_) | Read_::WaitPipe(_) if !blocking || len == 0 => ready(vec![result(Vec::new())]),
        Read_::WaitPipe(pipe) => {
            let types = types.clone();
            Ok(Box::pin(async move {
                pipe.wait_readable().await;
                match pipe_read(&pipe, len) {
                    Read_::Data(d) => Ok(vec![result(d)]),
                    Read_::Failed(e) => Err(failed_later::<T>(types, e)),
                    _ => Ok(vec![closed()]),
                }
            }))
        }
        Read_::Wait(sock) => {
            let timeout = cx.data_mut().wasi().network.timeout;
            let types = types.clone();
            Ok(Box::pin(async move {
                let mut buf = vec![0; len.min(SOCKET_BUDGET) as usize];
                match within(timeout, sock.read_with(|s| (&*s).read(&mut buf))).await {
                    Ok(0) => Ok(vec![closed()]),
                    Ok(n) => {
                        buf.truncate(n);
                        Ok(vec![result(buf)])
                    }
                    Err(e) => Err(failed_later::<T>(types, e)),
                }
            }))
        }
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
        let table = &mut cx.data_mut().wasi().table;
        let stream = Resource::<InputStream>::new(rep(&args[0])?);
        let p = match table.get(&stream)? {
            InputStream::Tcp(sock) => Pollable::socket(sock.clone(), false),
            InputStream::Pipe(PipeReader(pipe)) => Pollable::Pipe {
                pipe: pipe.clone(),
                wait: PipeWait::Read,
            },
            _ => Pollable::Ready,
        };
        let p = table.push_child(p, &stream)?;
        out.push(own(&t.pollable, p.rep()));
        Ok(())
    });

    let t = types.clone();
    s.func_new("[method]output-stream.check-write", move |mut cx, args, out| {
        let stream = get_mut::<T, OutputStream>(&mut cx, &args[0])?;
        out.push(match stream.permit() {
            Ok(n) => ok(Some(Val::U64(n))),
            Err(e) => failed(&mut cx, &t, e)?,
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
            let stream = get_mut::<T, OutputStream>(&mut cx, &args[0])?;
            let bounded = matches!(stream, OutputStream::Tcp { .. } | OutputStream::Pipe(_));
            if !flush && bounded && data.len() as u64 > stream.permit().unwrap_or(0) {
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
            let r = get_mut::<T, OutputStream>(&mut cx, &args[0])?.flush();
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
        let p = match table.get(&stream)? {
            OutputStream::Tcp { sock, pending } if !pending.is_empty() => Pollable::socket(sock.clone(), true),
            OutputStream::Pipe(pipe) => Pollable::Pipe {
                pipe: pipe.clone(),
                wait: PipeWait::Write,
            },
            _ => Pollable::Ready,
        };
        let p = table.push_child(p, &stream)?;
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
                Read_::Wait(_) | Read_::WaitPipe(_) => Vec::new(),
                Read_::Stdin => {
                    // Read off-thread, then write: the output stream stays in
                    // the table, so the write happens through a sink copy.
                    let sink = match cx.data_mut().wasi().table.get(&dst)? {
                        OutputStream::Stdout(s) => (s.clone(), false),
                        OutputStream::Stderr(s) => (s.clone(), true),
                        _ => bail!("splicing the host's stdin into a file or socket is not supported"),
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
