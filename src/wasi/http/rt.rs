//! What hyper needs from a runtime, on `async-io`: byte streams
//! ([`Io`]), a timer ([`Timer`]) and a place to run connection and body
//! tasks ([`spawn`]).

use std::future::Future;
use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// Runs `task` on the HTTP I/O thread: hyper connections and the pumps
/// between hyper bodies and guest streams live there, so they make progress
/// while guests are suspended or busy on other threads.
pub fn spawn(task: impl Future<Output = ()> + Send + 'static) {
    static EXECUTOR: OnceLock<&'static async_executor::Executor<'static>> = OnceLock::new();
    let ex = EXECUTOR.get_or_init(|| {
        let ex: &'static async_executor::Executor<'static> = Box::leak(Box::default());
        std::thread::Builder::new()
            .name("wippy-http-io".into())
            .spawn(|| async_io::block_on(ex.run(std::future::pending::<()>())))
            .expect("spawn the HTTP I/O thread");
        ex
    });
    ex.spawn(task).detach();
}

/// A `futures-io` byte stream (a TCP or TLS connection) as hyper's I/O.
pub struct Io<S>(pub S);

impl<S: futures_lite::AsyncRead + Unpin> hyper::rt::Read for Io<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<std::io::Result<()>> {
        // SAFETY: the bytes are zeroed before the reader sees them, and
        // `advance` covers only what it wrote.
        let dst = unsafe { buf.as_mut() };
        // At most 64 KiB a read: the zeroing below stays cheap however
        // large hyper's buffer grows.
        let len = dst.len().min(64 << 10);
        let dst = &mut dst[..len];
        for b in dst.iter_mut() {
            b.write(0);
        }
        let dst = unsafe { &mut *(dst as *mut [std::mem::MaybeUninit<u8>] as *mut [u8]) };
        let n = std::task::ready!(Pin::new(&mut self.0).poll_read(cx, dst))?;
        unsafe { buf.advance(n) };
        Poll::Ready(Ok(()))
    }
}

impl<S: futures_lite::AsyncWrite + Unpin> hyper::rt::Write for Io<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_close(cx)
    }
}

/// hyper's timer (header read timeouts) on `async-io`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Timer;

struct Sleep(async_io::Timer);

impl Future for Sleep {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        Pin::new(&mut self.0).poll(cx).map(|_| ())
    }
}

impl hyper::rt::Sleep for Sleep {}

impl hyper::rt::Timer for Timer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn hyper::rt::Sleep>> {
        Box::pin(Sleep(async_io::Timer::after(duration)))
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn hyper::rt::Sleep>> {
        Box::pin(Sleep(async_io::Timer::at(deadline)))
    }

    fn reset(&self, sleep: &mut Pin<Box<dyn hyper::rt::Sleep>>, new_deadline: Instant) {
        *sleep = self.sleep_until(new_deadline);
    }
}
