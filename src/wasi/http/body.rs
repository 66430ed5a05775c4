//! The `wasi:io` side of HTTP bodies: the guest's input and output streams
//! over a body [`Pipe`], and pollables on a pipe.

use super::pipe::{self, Pipe};
use super::HttpError;
use crate::wasi::io::{
    BoxFuture, HostInputStream, HostOutputStream, IoError, Pollable, Read, StreamError, StreamResult, Subscribe,
};
use std::sync::Arc;

/// Bytes a body stream reads at a time.
const READ_BUDGET: u64 = 64 << 10;

/// A body failure, with its `http-error-code`.
fn stream_error(e: HttpError) -> StreamError {
    StreamError::Failed(IoError::with_code(e.to_string(), e))
}

/// The guest's reading end of a body pipe; dropping it lets the body's
/// pump discard the rest.
pub(crate) struct BodyReader(pub Arc<Pipe>);

impl Drop for BodyReader {
    fn drop(&mut self) {
        self.0.close_reader();
    }
}

fn read_now(pipe: &Pipe, len: u64) -> Option<StreamResult<Vec<u8>>> {
    match pipe.read_now(len.min(READ_BUDGET) as usize) {
        pipe::Read::Data(d) => Some(Ok(d.to_vec())),
        pipe::Read::Closed => Some(Err(StreamError::Closed)),
        pipe::Read::Failed(e) => Some(Err(stream_error(e))),
        pipe::Read::Empty => None,
    }
}

impl HostInputStream for BodyReader {
    fn read(&mut self, len: u64, blocking: bool) -> Read {
        match read_now(&self.0, len) {
            Some(r) => Read::Now(r),
            None if !blocking || len == 0 => Read::Now(Ok(Vec::new())),
            None => {
                let pipe = self.0.clone();
                Read::Later(Box::pin(async move {
                    pipe.wait_readable().await;
                    read_now(&pipe, len).unwrap_or(Err(StreamError::Closed))
                }))
            }
        }
    }

    fn pollable(&self) -> Pollable {
        PipeReady::pollable(self.0.clone(), PipeWait::Read)
    }
}

/// The guest's writing end of a body pipe.
pub(crate) struct BodyWriter(pub Arc<Pipe>);

impl HostOutputStream for BodyWriter {
    fn check_write(&mut self) -> StreamResult<u64> {
        self.0.permit().map(|n| n as u64).map_err(stream_error)
    }

    fn write(&mut self, data: &[u8]) -> StreamResult<()> {
        self.0
            .push_now(bytes::Bytes::copy_from_slice(data))
            .map_err(stream_error)
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    /// Bytes in the pipe are handed over: a flush waits only while the pipe
    /// is full (back-pressure from the peer).
    fn unfinished(&mut self) -> Option<BoxFuture<StreamResult<()>>> {
        if self.0.writable() {
            return None;
        }
        let pipe = self.0.clone();
        Some(Box::pin(async move {
            pipe.wait_writable().await;
            Ok(())
        }))
    }

    fn pollable(&self) -> Pollable {
        PipeReady::pollable(self.0.clone(), PipeWait::Write)
    }

    fn bounded(&self) -> bool {
        true
    }
}

/// What a pipe pollable waits for.
#[derive(Clone, Copy, Debug)]
pub(crate) enum PipeWait {
    Read,
    Write,
    End,
}

/// Ready when a body pipe can be read, written, or has ended.
pub(crate) struct PipeReady {
    pipe: Arc<Pipe>,
    wait: PipeWait,
}

impl PipeReady {
    pub fn pollable(pipe: Arc<Pipe>, wait: PipeWait) -> Pollable {
        Pollable::new(PipeReady { pipe, wait })
    }
}

impl Subscribe for PipeReady {
    fn is_ready(&self) -> bool {
        match self.wait {
            PipeWait::Read => self.pipe.readable(),
            PipeWait::Write => self.pipe.writable(),
            PipeWait::End => self.pipe.end().is_some(),
        }
    }

    fn wait(&self) -> BoxFuture<()> {
        let (pipe, wait) = (self.pipe.clone(), self.wait);
        Box::pin(async move {
            match wait {
                PipeWait::Read => pipe.wait_readable().await,
                PipeWait::Write => pipe.wait_writable().await,
                PipeWait::End => drop(pipe.wait_end().await),
            }
        })
    }
}
