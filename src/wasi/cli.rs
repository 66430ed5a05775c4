//! `wasi:cli` — environment, exit, stdio and terminals.

use super::io::{
    ClosedInput, HostInputStream, HostOutputStream, InputStream, MemoryInput, OutputStream, Read, StreamError,
    StreamResult, Types, WRITE_BUDGET,
};
use super::vals::{iface, own};
use super::{Exit, WasiView};
use crate::values::Val;
use crate::Linker;
use anyhow::bail;
use std::io::Write;
use std::sync::{Arc, Mutex};

/// Where a guest's standard output or error goes.
#[derive(Clone, Debug)]
pub enum Sink {
    /// The host process's own stream.
    Inherit,
    /// An in-memory buffer the embedder can read.
    Capture(Arc<Mutex<Vec<u8>>>),
    /// Discard.
    Null,
}

/// Where a guest's standard input comes from.
#[derive(Clone, Debug)]
pub enum Source {
    Inherit,
    Bytes(Arc<Vec<u8>>),
    /// Immediately at end of stream.
    Null,
}

/// The host's standard input, read off the executor thread.
struct HostStdin;

impl HostInputStream for HostStdin {
    // Reading waits for data even without `blocking` (on a worker thread,
    // so the guest is suspended, not the thread).
    fn read(&mut self, len: u64, _: bool) -> Read {
        if len == 0 {
            return Read::Now(Ok(Vec::new()));
        }
        let len = len.min(1 << 20) as usize;
        Read::Later(Box::pin(async move {
            let read = blocking::unblock(move || {
                let mut buf = vec![0; len];
                let n = std::io::Read::read(&mut std::io::stdin().lock(), &mut buf)?;
                buf.truncate(n);
                Ok::<_, std::io::Error>(buf)
            });
            match read.await {
                Ok(d) if !d.is_empty() => Ok(d),
                _ => Err(StreamError::Closed),
            }
        }))
    }
}

/// The guest's stdin stream, from `source`.
pub(crate) fn stdin_stream(source: &Source) -> InputStream {
    match source {
        Source::Inherit => InputStream::new(HostStdin),
        Source::Bytes(data) => InputStream::new(MemoryInput::new(data.clone())),
        Source::Null => InputStream::new(ClosedInput),
    }
}

/// The guest's stdout or stderr.
struct Stdio {
    sink: Sink,
    stderr: bool,
}

impl HostOutputStream for Stdio {
    fn check_write(&mut self) -> StreamResult<u64> {
        Ok(WRITE_BUDGET)
    }

    fn write(&mut self, data: &[u8]) -> StreamResult<()> {
        match &self.sink {
            Sink::Inherit if self.stderr => std::io::stderr().lock().write_all(data),
            Sink::Inherit => std::io::stdout().lock().write_all(data),
            Sink::Capture(buf) => {
                buf.lock().unwrap_or_else(|e| e.into_inner()).extend_from_slice(data);
                Ok(())
            }
            Sink::Null => Ok(()),
        }
        .map_err(StreamError::io)
    }

    fn flush(&mut self) -> StreamResult<()> {
        match &self.sink {
            Sink::Inherit if self.stderr => std::io::stderr().flush(),
            Sink::Inherit => std::io::stdout().flush(),
            _ => Ok(()),
        }
        .map_err(StreamError::io)
    }
}

/// The guest's stdout (or, with `stderr`, stderr) stream, into `sink`.
pub(crate) fn stdio_stream(sink: &Sink, stderr: bool) -> OutputStream {
    OutputStream::new(Stdio {
        sink: sink.clone(),
        stderr,
    })
}

pub(crate) fn add_to_linker<T: WasiView>(linker: &mut Linker<T>, types: &Types) {
    linker
        .instance(&iface("wasi:cli/environment"))
        .func_new("get-environment", |mut cx, _, out| {
            let env = &cx.data_mut().wasi().env;
            out.push(Val::List(
                env.iter()
                    .map(|(k, v)| Val::Tuple(vec![Val::String(k.clone()), Val::String(v.clone())]))
                    .collect(),
            ));
            Ok(())
        })
        .func_new("get-arguments", |mut cx, _, out| {
            out.push(Val::List(
                cx.data_mut().wasi().args.iter().cloned().map(Val::String).collect(),
            ));
            Ok(())
        })
        .func_new("initial-cwd", |mut cx, _, out| {
            out.push(Val::Option(
                cx.data_mut().wasi().cwd.clone().map(|c| Box::new(Val::String(c))),
            ));
            Ok(())
        });

    linker
        .instance(&iface("wasi:cli/exit"))
        .func_new("exit", |_, args, _| match &args[0] {
            Val::Result(Ok(_)) => Err(Exit(0).into()),
            _ => Err(Exit(1).into()),
        })
        .func_wrap("exit-with-code", |_, (code,): (u8,)| -> anyhow::Result<()> {
            Err(Exit(code as i32).into())
        });

    let t = types.clone();
    linker
        .instance(&iface("wasi:cli/stdin"))
        .func_new("get-stdin", move |mut cx, _, out| {
            let ctx = cx.data_mut().wasi();
            let stream = stdin_stream(&ctx.stdin);
            out.push(own(&t.input_stream, ctx.table.push(stream)?.rep()));
            Ok(())
        });
    let t = types.clone();
    linker
        .instance(&iface("wasi:cli/stdout"))
        .func_new("get-stdout", move |mut cx, _, out| {
            let ctx = cx.data_mut().wasi();
            let stream = stdio_stream(&ctx.stdout, false);
            out.push(own(&t.output_stream, ctx.table.push(stream)?.rep()));
            Ok(())
        });
    let t = types.clone();
    linker
        .instance(&iface("wasi:cli/stderr"))
        .func_new("get-stderr", move |mut cx, _, out| {
            let ctx = cx.data_mut().wasi();
            let stream = stdio_stream(&ctx.stderr, true);
            out.push(own(&t.output_stream, ctx.table.push(stream)?.rep()));
            Ok(())
        });

    // Terminals: guests never see one (stdio may be redirected, and a
    // sandboxed guest should not learn about the host's terminal).
    linker
        .instance(&iface("wasi:cli/terminal-input"))
        .resource("terminal-input", |_, _| bail!("no terminal handles are ever created"));
    linker
        .instance(&iface("wasi:cli/terminal-output"))
        .resource("terminal-output", |_, _| bail!("no terminal handles are ever created"));
    for (name, f) in [
        ("wasi:cli/terminal-stdin", "get-terminal-stdin"),
        ("wasi:cli/terminal-stdout", "get-terminal-stdout"),
        ("wasi:cli/terminal-stderr", "get-terminal-stderr"),
    ] {
        linker.instance(&iface(name)).func_new(f, |_, _, out| {
            out.push(Val::Option(None));
            Ok(())
        });
    }
}
