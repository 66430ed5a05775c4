//! The `wasi:io` side of sockets: readiness pollables, and the input and
//! output streams of a connected TCP socket.

use super::{io_code, NetworkCode};
use crate::wasi::io::{
    BoxFuture, HostInputStream, HostOutputStream, IoError, Pollable, Read, StreamError, StreamResult, Subscribe,
};
use std::io::{Read as _, Write as _};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A non-blocking OS socket registered with the dispatcher's reactor.
pub type Socket = Arc<async_io::Async<socket2::Socket>>;

/// Bytes a socket stream reads, or accepts per `check-write`, at a time.
const SOCKET_BUDGET: u64 = 64 << 10;

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

/// Ready when the socket can be read (or accepted) from, or written to,
/// or once `until` passes (an operation's timeout).
pub(crate) struct SocketReady {
    pub sock: Socket,
    pub write: bool,
    pub until: Option<Instant>,
}

impl SocketReady {
    pub fn pollable(sock: Socket, write: bool) -> Pollable {
        Pollable::new(SocketReady {
            sock,
            write,
            until: None,
        })
    }
}

impl Subscribe for SocketReady {
    fn is_ready(&self) -> bool {
        self.until.is_some_and(|t| Instant::now() >= t) || socket_ready(&self.sock, self.write)
    }

    fn wait(&self) -> BoxFuture<()> {
        let (sock, write, until) = (self.sock.clone(), self.write, self.until);
        Box::pin(async move {
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
        })
    }
}

/// A socket stream's failure, with its `network-error-code`.
fn stream_error(e: std::io::Error) -> StreamError {
    StreamError::Failed(IoError::with_code(e.to_string(), NetworkCode(io_code(&e))))
}

/// `op`, or a `TimedOut` error once `timeout` passes.
async fn within<R>(
    timeout: Option<Duration>,
    op: impl std::future::Future<Output = std::io::Result<R>>,
) -> std::io::Result<R> {
    match timeout {
        None => op.await,
        Some(t) => crate::dispatch::within(t, op)
            .await
            .unwrap_or_else(|| Err(std::io::ErrorKind::TimedOut.into())),
    }
}

/// A connected TCP socket's receiving side. A blocking read that makes no
/// progress for `timeout` fails.
pub(crate) struct TcpReader {
    pub sock: Socket,
    pub timeout: Option<Duration>,
}

impl HostInputStream for TcpReader {
    fn read(&mut self, len: u64, blocking: bool) -> Read {
        let mut buf = vec![0; len.min(SOCKET_BUDGET) as usize];
        match self.sock.get_ref().read(&mut buf) {
            Ok(0) if !buf.is_empty() => Read::Now(Err(StreamError::Closed)),
            Ok(n) => {
                buf.truncate(n);
                Read::Now(Ok(buf))
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if !blocking || len == 0 {
                    return Read::Now(Ok(Vec::new()));
                }
                let (sock, timeout) = (self.sock.clone(), self.timeout);
                Read::Later(Box::pin(async move {
                    match within(timeout, sock.read_with(|s| (&*s).read(&mut buf))).await {
                        Ok(0) => Err(StreamError::Closed),
                        Ok(n) => {
                            buf.truncate(n);
                            Ok(buf)
                        }
                        Err(e) => Err(stream_error(e)),
                    }
                }))
            }
            Err(e) => Read::Now(Err(stream_error(e))),
        }
    }

    fn pollable(&self) -> Pollable {
        SocketReady::pollable(self.sock.clone(), false)
    }
}

/// A connected TCP socket's sending side, with bytes the socket has not
/// taken yet (at most one `check-write` permit's worth).
pub(crate) struct TcpWriter {
    pub sock: Socket,
    pub pending: Vec<u8>,
    pub timeout: Option<Duration>,
}

impl HostOutputStream for TcpWriter {
    fn check_write(&mut self) -> StreamResult<u64> {
        self.flush()?;
        Ok(if self.pending.is_empty() { SOCKET_BUDGET } else { 0 })
    }

    fn write(&mut self, data: &[u8]) -> StreamResult<()> {
        self.pending.extend_from_slice(data);
        self.flush()
    }

    /// Pushes buffered bytes out without waiting (the socket takes what it can).
    fn flush(&mut self) -> StreamResult<()> {
        while !self.pending.is_empty() {
            match self.sock.get_ref().write(&self.pending) {
                Ok(n) => drop(self.pending.drain(..n)),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(stream_error(e)),
            }
        }
        Ok(())
    }

    fn unfinished(&mut self) -> Option<BoxFuture<StreamResult<()>>> {
        if self.pending.is_empty() {
            return None;
        }
        let (sock, data, timeout) = (self.sock.clone(), std::mem::take(&mut self.pending), self.timeout);
        Some(Box::pin(async move {
            let mut done = 0;
            while done < data.len() {
                done += within(timeout, sock.write_with(|s| (&*s).write(&data[done..])))
                    .await
                    .map_err(stream_error)?;
            }
            Ok(())
        }))
    }

    fn pollable(&self) -> Pollable {
        match self.pending.is_empty() {
            true => Pollable::ready(),
            false => SocketReady::pollable(self.sock.clone(), true),
        }
    }

    fn bounded(&self) -> bool {
        true
    }
}
