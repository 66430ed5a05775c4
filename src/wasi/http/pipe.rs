//! A bounded byte pipe between a guest stream and a hyper body.
//!
//! HTTP bodies are streamed, never buffered whole: an incoming body is
//! pumped from hyper into a pipe that the guest's `input-stream` reads; an
//! outgoing body is a pipe the guest's `output-stream` writes and hyper
//! reads as a [`http_body::Body`]. The pipe holds at most [`CAPACITY`] bytes,
//! so a slow reader pushes back on the writer. It ends with trailers or an
//! error code.

use super::HttpError;
use bytes::Bytes;
use http::HeaderMap;
use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

/// Bytes a pipe buffers before the writer must wait.
pub const CAPACITY: usize = 256 << 10;

/// How a body ended.
#[derive(Clone, Debug)]
pub enum End {
    /// Complete, with these trailers.
    Finished(Option<HeaderMap>),
    Failed(HttpError),
}

#[derive(Default)]
struct State {
    chunks: VecDeque<Bytes>,
    buffered: usize,
    end: Option<End>,
    /// The reading side went away: writes are dropped (or refused).
    reader_gone: bool,
    /// Bytes written so far, and the `content-length` they must match.
    written: u64,
    length: Option<u64>,
    /// The end's trailers were handed to hyper already.
    trailers_sent: bool,
}

impl State {
    fn readable(&self) -> bool {
        !self.chunks.is_empty() || self.end.is_some()
    }

    /// Room for the writer, or nothing left to wait for.
    fn writable(&self) -> bool {
        self.reader_gone || self.end.is_some() || self.buffered < CAPACITY
    }
}

/// One body's bytes in flight.
#[derive(Default)]
pub struct Pipe {
    state: Mutex<State>,
    event: event_listener::Event,
}

/// What a read that does not wait found.
pub enum Read {
    Data(Bytes),
    /// The body finished and every byte was read.
    Closed,
    Failed(HttpError),
    /// Nothing yet.
    Empty,
}

impl std::fmt::Debug for Pipe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pipe")
    }
}

impl Pipe {
    pub fn new(length: Option<u64>) -> Arc<Self> {
        let p = Pipe::default();
        p.lock().length = length;
        Arc::new(p)
    }

    /// A pipe that already holds its whole (small) body.
    pub fn full(data: Bytes) -> Arc<Self> {
        let p = Pipe::new(None);
        p.push_now(data).ok();
        let _ = p.finish(End::Finished(None));
        p
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn changed(&self) {
        self.event.notify(usize::MAX);
    }

    // The reading side.

    /// Takes up to `len` bytes without waiting.
    pub fn read_now(&self, len: usize) -> Read {
        let mut s = self.lock();
        if let Some(chunk) = s.chunks.front_mut() {
            let out = if chunk.len() <= len {
                s.chunks.pop_front().unwrap_or_default()
            } else {
                chunk.split_to(len)
            };
            s.buffered -= out.len();
            drop(s);
            self.changed();
            return Read::Data(out);
        }
        match &s.end {
            None => Read::Empty,
            Some(End::Finished(_)) => Read::Closed,
            Some(End::Failed(e)) => Read::Failed(e.clone()),
        }
    }

    /// Whether a read would not wait.
    pub fn readable(&self) -> bool {
        State::readable(&self.lock())
    }

    /// Waits until a read would not wait.
    pub async fn wait_readable(&self) {
        self.wait_until(State::readable).await
    }

    /// The reader is gone: later bytes are dropped, and the writer never
    /// waits again (it may still finish, for trailers).
    pub fn close_reader(&self) {
        let mut s = self.lock();
        s.reader_gone = true;
        s.chunks.clear();
        s.buffered = 0;
        drop(s);
        self.changed();
    }

    /// How the body ended, once it has.
    pub fn end(&self) -> Option<End> {
        self.lock().end.clone()
    }

    pub async fn wait_end(&self) -> End {
        self.wait_until(|s| s.end.is_some()).await;
        self.end().expect("waited for the end")
    }

    // The writing side.

    /// Bytes the pipe takes now; an error once the body cannot go on.
    pub fn permit(&self) -> Result<usize, HttpError> {
        let s = self.lock();
        match &s.end {
            Some(End::Failed(e)) => Err(e.clone()),
            Some(End::Finished(_)) => Err(HttpError::internal("the body was already finished")),
            None if s.reader_gone => Err(HttpError::Code("connection-terminated")),
            None => Ok(CAPACITY.saturating_sub(s.buffered)),
        }
    }

    /// Appends `data` without waiting (the caller checked the permit);
    /// writing past the declared `content-length` fails the body.
    pub fn push_now(&self, data: Bytes) -> Result<(), HttpError> {
        let mut s = self.lock();
        if let Some(End::Failed(e)) = &s.end {
            return Err(e.clone());
        }
        s.written += data.len() as u64;
        if s.length.is_some_and(|l| s.written > l) {
            let e = HttpError::BodySize(Some(s.written));
            s.end = Some(End::Failed(e.clone()));
            drop(s);
            self.changed();
            return Err(e);
        }
        if !s.reader_gone && !data.is_empty() {
            s.buffered += data.len();
            s.chunks.push_back(data);
        }
        drop(s);
        self.changed();
        Ok(())
    }

    /// Appends `data`, waiting while the pipe is full.
    pub async fn push(&self, data: Bytes) -> Result<(), HttpError> {
        self.wait_writable().await;
        self.push_now(data)
    }

    /// Whether the writer may write without waiting.
    pub fn writable(&self) -> bool {
        State::writable(&self.lock())
    }

    pub async fn wait_writable(&self) {
        self.wait_until(State::writable).await
    }

    /// Ends the body (the first end wins). A finished body shorter than
    /// its `content-length` fails instead.
    pub fn finish(&self, end: End) -> Result<(), HttpError> {
        let mut s = self.lock();
        let end = match end {
            End::Finished(_) if s.length.is_some_and(|l| l != s.written) => {
                End::Failed(HttpError::BodySize(Some(s.written)))
            }
            e => e,
        };
        let r = match &end {
            End::Failed(e) => Err(e.clone()),
            End::Finished(_) => Ok(()),
        };
        if s.end.is_none() {
            s.end = Some(end);
        }
        drop(s);
        self.changed();
        r
    }

    async fn wait_until(&self, ready: impl Fn(&State) -> bool) {
        loop {
            if ready(&self.lock()) {
                return;
            }
            let listener = self.event.listen();
            if ready(&self.lock()) {
                return;
            }
            listener.await;
        }
    }
}

/// The reading end of a pipe as a hyper body (outgoing requests, served
/// responses). Dropping it tells the writer nobody reads any more.
pub struct PipeBody {
    pipe: Arc<Pipe>,
    listener: Option<event_listener::EventListener>,
    /// Set if the body is dropped before all of it was taken.
    on_abandon: Option<Arc<crate::dispatch::Signal>>,
}

impl PipeBody {
    pub fn new(pipe: Arc<Pipe>) -> Self {
        PipeBody {
            pipe,
            listener: None,
            on_abandon: None,
        }
    }

    /// Sets `signal` if the body is dropped unfinished: the peer went away
    /// (a served response whose client disconnected).
    pub fn on_abandon(mut self, signal: Arc<crate::dispatch::Signal>) -> Self {
        self.on_abandon = Some(signal);
        self
    }
}

impl Drop for PipeBody {
    fn drop(&mut self) {
        if let Some(signal) = &self.on_abandon {
            let s = self.pipe.lock();
            if s.end.is_none() || !s.chunks.is_empty() {
                signal.set();
            }
        }
        self.pipe.close_reader();
    }
}

impl http_body::Body for PipeBody {
    type Data = Bytes;
    type Error = HttpError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, HttpError>>> {
        loop {
            {
                let mut s = self.pipe.lock();
                if let Some(chunk) = s.chunks.pop_front() {
                    s.buffered -= chunk.len();
                    drop(s);
                    self.pipe.changed();
                    self.listener = None;
                    return Poll::Ready(Some(Ok(http_body::Frame::data(chunk))));
                }
                let sent = s.trailers_sent;
                match &mut s.end {
                    Some(End::Failed(e)) => return Poll::Ready(Some(Err(e.clone()))),
                    Some(End::Finished(trailers)) if !sent => {
                        let trailers = trailers.take();
                        s.trailers_sent = true;
                        if let Some(t) = trailers.filter(|t| !t.is_empty()) {
                            return Poll::Ready(Some(Ok(http_body::Frame::trailers(t))));
                        }
                        return Poll::Ready(None);
                    }
                    Some(End::Finished(_)) => return Poll::Ready(None),
                    None => {}
                }
            }
            match self.listener.as_mut() {
                None => self.listener = Some(self.pipe.event.listen()),
                Some(l) => {
                    std::task::ready!(std::future::Future::poll(Pin::new(l), cx));
                    self.listener = None;
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        let s = self.pipe.lock();
        s.chunks.is_empty() && (s.trailers_sent || matches!(&s.end, Some(End::Finished(None))))
    }

    fn size_hint(&self) -> http_body::SizeHint {
        match self.pipe.lock().length {
            Some(l) => http_body::SizeHint::with_exact(l),
            None => http_body::SizeHint::default(),
        }
    }
}

/// Pumps a hyper body into `pipe` (incoming responses and requests): each
/// frame must come within `between_bytes`, trailers end the pipe. Once the
/// reader is gone the body is dropped unread, at once: its connection is
/// then closed, not kept waiting on a peer that may never send the rest.
pub async fn pump(mut body: hyper::body::Incoming, pipe: Arc<Pipe>, between_bytes: Option<std::time::Duration>) {
    use http_body_util::BodyExt;
    /// What the pump waited for.
    enum Next<F> {
        Frame(F),
        TimedOut,
        ReaderGone,
    }
    loop {
        let frame = async {
            match between_bytes {
                Some(t) => crate::dispatch::within(t, body.frame())
                    .await
                    .map_or(Next::TimedOut, Next::Frame),
                None => Next::Frame(body.frame().await),
            }
        };
        let gone = async {
            pipe.wait_until(|s| s.reader_gone).await;
            Next::ReaderGone
        };
        let frame = match futures_lite::future::or(gone, frame).await {
            Next::Frame(f) => f,
            Next::TimedOut => {
                let _ = pipe.finish(End::Failed(HttpError::Code("connection-read-timeout")));
                return;
            }
            Next::ReaderGone => return,
        };
        match frame {
            None => {
                let _ = pipe.finish(End::Finished(None));
                return;
            }
            Some(Err(e)) => {
                let _ = pipe.finish(End::Failed(HttpError::from_hyper(&e)));
                return;
            }
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) => {
                    if pipe.push(data).await.is_err() {
                        return;
                    }
                }
                Err(frame) => {
                    if let Ok(trailers) = frame.into_trailers() {
                        let _ = pipe.finish(End::Finished(Some(trailers)));
                        return;
                    }
                }
            },
        }
    }
}
