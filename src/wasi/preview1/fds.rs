//! The preview 1 descriptor table: fd numbers onto the P2 host objects
//! behind them — the stdio streams of `wasi:cli`, the descriptors of
//! `wasi:filesystem` (preopened directories, and files and directories the
//! guest opened) — with what preview 1 keeps beside them (a file's
//! position and `append`/`nonblock` flags, a directory's listing for
//! `fd_readdir` cookies).

use super::errno::{Errno, Result};
use crate::wasi::cli::{stdin_stream, stdio_stream};
use crate::wasi::filesystem::Descriptor;
use crate::wasi::io::{InputStream, OutputStream};
use crate::wasi::WasiCtx;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// What an fd is.
pub(crate) enum Fd {
    Stdin(InputStream),
    /// Stdout or stderr.
    Stdout(OutputStream),
    Stderr(OutputStream),
    Dir(Dir),
    File(File),
}

/// A directory: a preopen (with the name the guest sees) or one the guest
/// opened.
pub(crate) struct Dir {
    pub desc: Descriptor,
    pub preopen: Option<String>,
    /// The listing `fd_readdir` pages through: taken at cookie 0, so later
    /// cookies index the same snapshot.
    pub listing: Option<Arc<Vec<Dirent>>>,
}

/// One entry of a directory listing, as `fd_readdir` writes it.
pub(crate) struct Dirent {
    pub name: String,
    pub ino: u64,
    pub filetype: u8,
}

/// An open file.
pub(crate) struct File {
    pub desc: Descriptor,
    /// The current offset (`fd_seek`, `fd_tell`, `fd_read`, `fd_write`).
    pub pos: u64,
    /// `fdflags.append`: every write goes to the end.
    pub append: bool,
    /// `fdflags.nonblock` (reported; files never block, as on every OS).
    pub nonblock: bool,
    /// An `O_APPEND` handle of the same file, made on the first append.
    pub appender: Option<Arc<std::fs::File>>,
}

impl File {
    pub fn new(desc: Descriptor, append: bool, nonblock: bool) -> Self {
        File {
            desc,
            pos: 0,
            append,
            nonblock,
            appender: None,
        }
    }
}

/// The table. New fds take the lowest free number, as POSIX does.
pub(crate) struct Fds {
    used: BTreeMap<u32, Fd>,
    free: BTreeSet<u32>,
}

impl Fds {
    /// The table a fresh guest sees: 0, 1, 2 the stdio streams, then the
    /// preopens in order.
    pub fn new(ctx: &WasiCtx) -> Self {
        let mut fds = Fds {
            used: BTreeMap::new(),
            free: BTreeSet::new(),
        };
        fds.used.insert(0, Fd::Stdin(stdin_stream(&ctx.stdin)));
        fds.used.insert(1, Fd::Stdout(stdio_stream(&ctx.stdout, false)));
        fds.used.insert(2, Fd::Stderr(stdio_stream(&ctx.stderr, true)));
        for (desc, guest) in &ctx.preopens {
            let n = fds.used.len() as u32;
            fds.used.insert(
                n,
                Fd::Dir(Dir {
                    desc: desc.clone(),
                    preopen: Some(guest.clone()),
                    listing: None,
                }),
            );
        }
        fds
    }

    pub fn get(&self, fd: u32) -> Result<&Fd> {
        Ok(self.used.get(&fd).ok_or(Errno::Badf)?)
    }

    pub fn get_mut(&mut self, fd: u32) -> Result<&mut Fd> {
        Ok(self.used.get_mut(&fd).ok_or(Errno::Badf)?)
    }

    /// Adds `f` under the lowest free number.
    pub fn push(&mut self, f: Fd) -> Result<u32> {
        let n = match self.free.pop_first() {
            Some(n) => n,
            None => match self.used.last_key_value() {
                None => 0,
                Some((&last, _)) => last.checked_add(1).ok_or(Errno::Mfile)?,
            },
        };
        self.used.insert(n, f);
        Ok(n)
    }

    /// Removes `fd` (its host objects are dropped).
    pub fn remove(&mut self, fd: u32) -> Result<Fd> {
        let f = self.used.remove(&fd).ok_or(Errno::Badf)?;
        self.free.insert(fd);
        // Numbers above the highest fd in use are not holes.
        let top = self.used.last_key_value().map(|(&n, _)| n);
        while let Some(&n) = self.free.last() {
            if top.is_some_and(|t| n < t) {
                break;
            }
            self.free.pop_last();
        }
        Ok(f)
    }

    /// `fd_renumber`: `from` replaces `to` (which is closed).
    pub fn renumber(&mut self, from: u32, to: u32) -> Result<()> {
        if !self.used.contains_key(&from) || !self.used.contains_key(&to) {
            return Err(Errno::Badf.into());
        }
        if from == to {
            return Ok(());
        }
        let f = self.remove(from)?;
        self.used.insert(to, f);
        self.free.remove(&to);
        Ok(())
    }

    /// The file behind `fd`, else `badf`.
    pub fn file(&mut self, fd: u32) -> Result<&mut File> {
        match self.get_mut(fd)? {
            Fd::File(f) => Ok(f),
            _ => Err(Errno::Badf.into()),
        }
    }

    /// A file that can seek: stdio is `spipe`, anything else `badf`.
    pub fn seekable(&mut self, fd: u32) -> Result<&mut File> {
        match self.get_mut(fd)? {
            Fd::File(f) => Ok(f),
            Fd::Stdin(_) | Fd::Stdout(_) | Fd::Stderr(_) => Err(Errno::Spipe.into()),
            Fd::Dir(_) => Err(Errno::Badf.into()),
        }
    }

    /// The filesystem descriptor of a file or directory, else `badf`.
    pub fn descriptor(&self, fd: u32) -> Result<&Descriptor> {
        match self.get(fd)? {
            Fd::File(f) => Ok(&f.desc),
            Fd::Dir(d) => Ok(&d.desc),
            _ => Err(Errno::Badf.into()),
        }
    }

    /// The directory behind `fd` (for `path_*` functions), else `badf`.
    pub fn dir(&mut self, fd: u32) -> Result<&mut Dir> {
        match self.get_mut(fd)? {
            Fd::Dir(d) => Ok(d),
            _ => Err(Errno::Badf.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> Fds {
        Fds::new(&WasiCtx::new())
    }

    fn file() -> Fd {
        let f = std::fs::File::open("/dev/null").unwrap();
        Fd::File(File::new(
            Descriptor::File {
                file: Arc::new(f),
                read: true,
                write: false,
                append: false,
                read_only: false,
                sync: vec![],
            },
            false,
            false,
        ))
    }

    #[test]
    fn new_fds_take_the_lowest_free_number() {
        let mut t = table();
        assert_eq!(t.push(file()).unwrap(), 3);
        assert_eq!(t.push(file()).unwrap(), 4);
        assert_eq!(t.push(file()).unwrap(), 5);
        t.remove(3).unwrap();
        t.remove(4).unwrap();
        assert_eq!(t.push(file()).unwrap(), 3);
        assert_eq!(t.push(file()).unwrap(), 4);
        assert_eq!(t.push(file()).unwrap(), 6);
        // Closing the highest leaves no hole behind.
        t.remove(6).unwrap();
        t.remove(5).unwrap();
        assert_eq!(t.push(file()).unwrap(), 5);
    }

    #[test]
    fn renumber_replaces_and_frees() {
        let mut t = table();
        let a = t.push(file()).unwrap();
        let b = t.push(file()).unwrap();
        t.renumber(a, b).unwrap();
        assert!(t.get(a).is_err());
        assert!(t.get(b).is_ok());
        assert_eq!(t.push(file()).unwrap(), a);
        assert!(t.renumber(b, 99).is_err());
        assert!(t.renumber(99, b).is_err());
        t.renumber(b, b).unwrap();
        assert!(t.get(b).is_ok());
    }
}
