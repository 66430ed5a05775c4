//! Moving bytes: `fd_read`, `fd_pread`, `fd_write`, `fd_pwrite`, `fd_seek`,
//! `fd_tell`, and the fd lifecycle, `fd_close` and `fd_renumber`.
//!
//! Files are read and written at the fd's position straight between the
//! file and guest memory; stdio goes through the `wasi:io` streams of
//! `wasi:cli` (a read of the host's stdin suspends the guest until it
//! answers). As wasmtime, one call moves at most the first non-empty
//! buffer of its iovec array (a short read or write, which callers loop
//! over).

use super::arg;
use super::errno::{ret, Errno, Error, Result};
use super::fds::{Fd, File};
use super::memory::Iovec;
use super::{fds, linker_error, parts, suspend, wasi, Caller, Linker, Mem, Wait, MODULE};
use crate::wasi::filesystem::reopen_append;
use crate::wasi::io::{Read, StreamError, StreamResult};
use crate::wasi::WasiView;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

/// What a read or write does next: it is done (the errno), or it waits.
enum Step<W> {
    Done(Result<()>),
    Wait(W),
}

/// Reads from `f` at `pos` into the guest buffer.
fn read_file(mem: &mut Mem<'_>, f: &std::fs::File, iov: Iovec, pos: u64) -> Result<u32> {
    let buf = mem.bytes_mut(iov.buf, iov.len)?;
    Ok(f.read_at(buf, pos)? as u32)
}

/// Writes the guest buffer to `file`: at `pos`, or at the end for an
/// `append` fd (through an `O_APPEND` handle of the file, made once).
fn write_file(mem: &Mem<'_>, file: &mut File, iov: Iovec, pos: u64) -> Result<u32> {
    let data = mem.bytes(iov.buf, iov.len)?;
    let f = file.desc.writable_file()?;
    if file.append {
        let appender = match &file.appender {
            Some(a) => a.clone(),
            None => {
                let a = Arc::new(reopen_append(&f)?);
                file.appender = Some(a.clone());
                a
            }
        };
        return Ok(std::io::Write::write(&mut &*appender, data)? as u32);
    }
    Ok(f.write_at(data, pos)? as u32)
}

/// The bytes of a stream read, into the guest buffer (`nread`).
fn finish_read(mem: &mut Mem<'_>, iov: Iovec, nread: u32, r: StreamResult<Vec<u8>>) -> Result<()> {
    let data = match r {
        Ok(d) if d.is_empty() && iov.len > 0 => return Err(Errno::Intr.into()),
        Ok(d) => d,
        // The end of the stream: a read of 0 bytes.
        Err(StreamError::Closed) => Vec::new(),
        Err(e) => return Err(e.into()),
    };
    if data.len() > iov.len as usize {
        return Err(Errno::Range.into());
    }
    mem.write_bytes(iov.buf, &data)?;
    mem.write_u32(nread, data.len() as u32)
}

/// `fd_read`.
fn fd_read<T: WasiView>(
    c: &mut Caller<'_, T>,
    fd: u32,
    iovs: u32,
    iovs_len: u32,
    nread: u32,
) -> std::result::Result<i32, wasmi::Error> {
    let step = (|| {
        let (mut mem, ctx) = parts(c)?;
        let iov = mem.first_buffer(iovs, iovs_len)?;
        match fds(ctx).get_mut(fd)? {
            Fd::File(f) => {
                let file = f.desc.readable_file()?;
                let n = read_file(&mut mem, &file, iov, f.pos)?;
                f.pos = f.pos.checked_add(n as u64).ok_or(Errno::Overflow)?;
                Ok(Step::Done(mem.write_u32(nread, n)))
            }
            Fd::Stdin(_) if iov.len == 0 => Ok(Step::Done(mem.write_u32(nread, 0))),
            Fd::Stdin(s) => Ok(match s.host().read(iov.len as u64, true) {
                Read::Now(r) => Step::Done(finish_read(&mut mem, iov, nread, r)),
                Read::Later(wait) => Step::Wait((wait, iov)),
            }),
            _ => Err(Errno::Badf.into()),
        }
    })();
    match step {
        Err(e) => ret(Err(e)),
        Ok(Step::Done(r)) => ret(r),
        Ok(Step::Wait((wait, iov))) => suspend(c, wait, move |mut mem, _, r| finish_read(&mut mem, iov, nread, r)),
    }
}

/// `fd_pread`: reads at `offset`, leaving the position as it is.
fn fd_pread<T: WasiView>(
    c: &mut Caller<'_, T>,
    fd: u32,
    iovs: u32,
    iovs_len: u32,
    offset: u64,
    nread: u32,
) -> Result<()> {
    let (mut mem, ctx) = parts(c)?;
    let iov = mem.first_buffer(iovs, iovs_len)?;
    let file = match fds(ctx).get(fd)? {
        Fd::File(f) => f.desc.readable_file()?,
        Fd::Stdin(_) => return Err(Errno::Spipe.into()),
        _ => return Err(Errno::Badf.into()),
    };
    let n = read_file(&mut mem, &file, iov, offset)?;
    mem.write_u32(nread, n)
}

/// What a write to stdout or stderr waits for.
enum Pending {
    /// Room in the stream (it took nothing yet): then the write is made.
    Room(Wait<()>),
    /// The stream to take in what was written (a blocking flush).
    Drain(Wait<StreamResult<()>>),
}

/// Writes to stdout or stderr as a blocking write does: what the stream
/// takes now, flushed; a stream with no room is waited on first.
fn write_stream(
    mem: &mut Mem<'_>,
    s: &mut crate::wasi::io::OutputStream,
    iov: Iovec,
    nwritten: u32,
    may_wait: bool,
) -> Result<Step<Pending>> {
    let data = mem.bytes(iov.buf, iov.len)?;
    let ready = s.pollable();
    let s = s.host();
    let room = s.check_write()?;
    if room == 0 && !data.is_empty() {
        if !may_wait {
            return Err(Errno::Again.into());
        }
        return Ok(Step::Wait(Pending::Room(ready.wait())));
    }
    let n = data.len().min(usize::try_from(room).unwrap_or(usize::MAX));
    s.write(&data[..n])?;
    s.flush()?;
    mem.write_u32(nwritten, n as u32)?;
    Ok(match s.unfinished() {
        None => Step::Done(Ok(())),
        Some(drain) => Step::Wait(Pending::Drain(drain)),
    })
}

/// `fd_write`, or with `at`, `fd_pwrite`.
fn fd_write<T: WasiView>(
    c: &mut Caller<'_, T>,
    fd: u32,
    iovs: u32,
    iovs_len: u32,
    at: Option<u64>,
    nwritten: u32,
) -> std::result::Result<i32, wasmi::Error> {
    let step = (|| {
        let (mut mem, ctx) = parts(c)?;
        let iov = mem.first_buffer(iovs, iovs_len)?;
        match (fds(ctx).get_mut(fd)?, at) {
            (Fd::File(f), Some(offset)) => {
                let n = write_file(&mem, f, iov, offset)?;
                Ok(Step::Done(mem.write_u32(nwritten, n)))
            }
            (Fd::File(f), None) => {
                let n = write_file(&mem, f, iov, f.pos)?;
                f.pos = if f.append {
                    f.desc.metadata()?.len()
                } else {
                    f.pos.checked_add(n as u64).ok_or(Errno::Overflow)?
                };
                Ok(Step::Done(mem.write_u32(nwritten, n)))
            }
            (Fd::Stdout(_) | Fd::Stderr(_), Some(_)) => Err(Errno::Spipe.into()),
            (Fd::Stdout(s) | Fd::Stderr(s), None) => Ok(write_stream(&mut mem, s, iov, nwritten, true)?),
            _ => Err(Errno::Badf.into()),
        }
    })();
    match step {
        Err(e) => ret(Err(e)),
        Ok(Step::Done(r)) => ret(r),
        Ok(Step::Wait(Pending::Drain(drain))) => suspend(c, drain, |_, _, r| r.map_err(Error::from)),
        // Once there is room, the write is made; if it must wait again (to
        // drain), it is done without that wait, as a non-blocking flush.
        Ok(Step::Wait(Pending::Room(room))) => suspend(c, room, move |mut mem, ctx, ()| {
            let iov = mem.first_buffer(iovs, iovs_len)?;
            match fds(ctx).get_mut(fd)? {
                Fd::Stdout(s) | Fd::Stderr(s) => write_stream(&mut mem, s, iov, nwritten, false).map(|_| ()),
                _ => Err(Errno::Badf.into()),
            }
        }),
    }
}

/// `whence`.
#[derive(Clone, Copy)]
enum Whence {
    Set,
    Cur,
    End,
}

/// `fd_seek`: moves a file's position (stdio is `spipe`, directories
/// `badf`).
fn fd_seek<T: WasiView>(c: &mut Caller<'_, T>, fd: u32, offset: i64, whence: i32, out: u32) -> Result<()> {
    let whence = [Whence::Set, Whence::Cur, Whence::End][arg::enum_u8(whence, 3)? as usize];
    let (mut mem, ctx) = parts(c)?;
    let f = fds(ctx).seekable(fd)?;
    let pos = match whence {
        Whence::Set => u64::try_from(offset).map_err(|_| Errno::Inval)?,
        Whence::Cur => f.pos.checked_add_signed(offset).ok_or(Errno::Inval)?,
        Whence::End => f
            .desc
            .metadata()?
            .len()
            .checked_add_signed(offset)
            .ok_or(Errno::Inval)?,
    };
    f.pos = pos;
    mem.write_u64(out, pos)
}

/// `fd_tell`.
fn fd_tell<T: WasiView>(c: &mut Caller<'_, T>, fd: u32, out: u32) -> Result<()> {
    let (mut mem, ctx) = parts(c)?;
    let pos = fds(ctx).seekable(fd)?.pos;
    mem.write_u64(out, pos)
}

pub(crate) fn add_to_linker<T: WasiView>(l: &mut Linker<T>) -> anyhow::Result<()> {
    l.func_wrap(
        MODULE,
        "fd_read",
        |mut c: Caller<'_, T>, fd: i32, iovs: i32, len: i32, nread: i32| {
            fd_read(&mut c, fd as u32, iovs as u32, len as u32, nread as u32)
        },
    )
    .map_err(linker_error)?;
    l.func_wrap(
        MODULE,
        "fd_pread",
        |mut c: Caller<'_, T>, fd: i32, iovs: i32, len: i32, offset: i64, nread: i32| {
            ret(fd_pread(
                &mut c,
                fd as u32,
                iovs as u32,
                len as u32,
                offset as u64,
                nread as u32,
            ))
        },
    )
    .map_err(linker_error)?;
    l.func_wrap(
        MODULE,
        "fd_write",
        |mut c: Caller<'_, T>, fd: i32, iovs: i32, len: i32, nwritten: i32| {
            fd_write(&mut c, fd as u32, iovs as u32, len as u32, None, nwritten as u32)
        },
    )
    .map_err(linker_error)?;
    l.func_wrap(
        MODULE,
        "fd_pwrite",
        |mut c: Caller<'_, T>, fd: i32, iovs: i32, len: i32, offset: i64, nwritten: i32| {
            fd_write(
                &mut c,
                fd as u32,
                iovs as u32,
                len as u32,
                Some(offset as u64),
                nwritten as u32,
            )
        },
    )
    .map_err(linker_error)?;
    l.func_wrap(
        MODULE,
        "fd_seek",
        |mut c: Caller<'_, T>, fd: i32, offset: i64, whence: i32, out: i32| {
            ret(fd_seek(&mut c, fd as u32, offset, whence, out as u32))
        },
    )
    .map_err(linker_error)?;
    l.func_wrap(MODULE, "fd_tell", |mut c: Caller<'_, T>, fd: i32, out: i32| {
        ret(fd_tell(&mut c, fd as u32, out as u32))
    })
    .map_err(linker_error)?;
    l.func_wrap(MODULE, "fd_close", |mut c: Caller<'_, T>, fd: i32| {
        ret(fds(wasi(&mut c)).remove(fd as u32).map(drop))
    })
    .map_err(linker_error)?;
    l.func_wrap(MODULE, "fd_renumber", |mut c: Caller<'_, T>, from: i32, to: i32| {
        ret(fds(wasi(&mut c)).renumber(from as u32, to as u32))
    })
    .map_err(linker_error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wasi::io::{HostOutputStream, OutputStream, Pollable};
    use std::sync::Mutex;

    /// A stream with `room` bytes of room, recording what it took.
    struct Narrow(u64, Arc<Mutex<Vec<u8>>>);

    impl HostOutputStream for Narrow {
        fn check_write(&mut self) -> StreamResult<u64> {
            Ok(self.0)
        }
        fn write(&mut self, data: &[u8]) -> StreamResult<()> {
            self.1.lock().unwrap().extend_from_slice(data);
            Ok(())
        }
        fn flush(&mut self) -> StreamResult<()> {
            Ok(())
        }
        fn pollable(&self) -> Pollable {
            Pollable::ready()
        }
    }

    #[test]
    fn stream_writes_take_what_fits_and_wait_for_room() {
        let mut buf = vec![0u8; 64];
        buf[32..37].copy_from_slice(b"hello");
        let iov = Iovec { buf: 32, len: 5 };
        let took = Arc::new(Mutex::new(Vec::new()));
        let mut mem = Mem(&mut buf);
        // Room for 3: a short write of 3.
        let mut s = OutputStream::new(Narrow(3, took.clone()));
        assert!(matches!(
            write_stream(&mut mem, &mut s, iov, 0, true),
            Ok(Step::Done(Ok(())))
        ));
        assert_eq!(mem.read_u32(0).unwrap(), 3);
        assert_eq!(*took.lock().unwrap(), b"hel");
        // No room: wait for it, or (when already waited) `again`.
        let mut s = OutputStream::new(Narrow(0, took.clone()));
        assert!(matches!(
            write_stream(&mut mem, &mut s, iov, 0, true),
            Ok(Step::Wait(Pending::Room(_)))
        ));
        assert!(matches!(
            write_stream(&mut mem, &mut s, iov, 0, false),
            Err(Error::Errno(Errno::Again))
        ));
        assert_eq!(took.lock().unwrap().len(), 3);
    }
}
