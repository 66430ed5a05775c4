//! Descriptors and paths: the `fd_*` functions about files and directories
//! (`fdstat`, `filestat`, sizes, times, syncing, advice, preopens,
//! `fd_readdir`) and every `path_*` function, over `wasi:filesystem`'s
//! descriptors. Paths are resolved by the same cap-std sandbox as WASI 0.2:
//! `..`, absolute paths and symlinks cannot leave a preopen, and read-only
//! mounts refuse every change (`perm`).

use super::arg;
use super::errno::{ret, Errno, Result};
use super::fds::{Dir, Dirent, Fd, File};
use super::memory::layout::{DIRENT_SIZE, FDSTAT, FILESTAT, PRESTAT};
use super::{fds, linker_error, parts, wasi, Caller, Linker, Mem, MODULE};
use crate::wasi::filesystem::{ctime, descriptor_type, metadata_hash, Descriptor, DescriptorFlags, OpenFlags};
use crate::wasi::WasiView;
use cap_fs_ext::SystemTimeSpec;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// `rights` bits.
#[allow(missing_docs)]
pub mod rights {
    pub const FD_DATASYNC: u64 = 1 << 0;
    pub const FD_READ: u64 = 1 << 1;
    pub const FD_SEEK: u64 = 1 << 2;
    pub const FD_FDSTAT_SET_FLAGS: u64 = 1 << 3;
    pub const FD_SYNC: u64 = 1 << 4;
    pub const FD_TELL: u64 = 1 << 5;
    pub const FD_WRITE: u64 = 1 << 6;
    pub const FD_ADVISE: u64 = 1 << 7;
    pub const FD_ALLOCATE: u64 = 1 << 8;
    pub const PATH_CREATE_DIRECTORY: u64 = 1 << 9;
    pub const PATH_CREATE_FILE: u64 = 1 << 10;
    pub const PATH_LINK_SOURCE: u64 = 1 << 11;
    pub const PATH_LINK_TARGET: u64 = 1 << 12;
    pub const PATH_OPEN: u64 = 1 << 13;
    pub const FD_READDIR: u64 = 1 << 14;
    pub const PATH_READLINK: u64 = 1 << 15;
    pub const PATH_RENAME_SOURCE: u64 = 1 << 16;
    pub const PATH_RENAME_TARGET: u64 = 1 << 17;
    pub const PATH_FILESTAT_GET: u64 = 1 << 18;
    pub const PATH_FILESTAT_SET_SIZE: u64 = 1 << 19;
    pub const PATH_FILESTAT_SET_TIMES: u64 = 1 << 20;
    pub const FD_FILESTAT_GET: u64 = 1 << 21;
    pub const FD_FILESTAT_SET_SIZE: u64 = 1 << 22;
    pub const FD_FILESTAT_SET_TIMES: u64 = 1 << 23;
    pub const PATH_SYMLINK: u64 = 1 << 24;
    pub const PATH_REMOVE_DIRECTORY: u64 = 1 << 25;
    pub const PATH_UNLINK_FILE: u64 = 1 << 26;
    pub const POLL_FD_READWRITE: u64 = 1 << 27;
    pub const SOCK_SHUTDOWN: u64 = 1 << 28;
    pub const SOCK_ACCEPT: u64 = 1 << 29;
    /// Every right.
    pub const ALL: u64 = (1 << 30) - 1;
    /// How many there are.
    pub const COUNT: u32 = 30;
}

/// `fdflags` bits.
#[allow(missing_docs)]
pub mod fdflags {
    pub const APPEND: u16 = 1 << 0;
    pub const DSYNC: u16 = 1 << 1;
    pub const NONBLOCK: u16 = 1 << 2;
    pub const RSYNC: u16 = 1 << 3;
    pub const SYNC: u16 = 1 << 4;
    pub const COUNT: u32 = 5;
}

/// `oflags` bits.
#[allow(missing_docs)]
pub mod oflags {
    pub const CREAT: u16 = 1 << 0;
    pub const DIRECTORY: u16 = 1 << 1;
    pub const EXCL: u16 = 1 << 2;
    pub const TRUNC: u16 = 1 << 3;
    pub const COUNT: u32 = 4;
}

/// `fstflags` bits.
#[allow(missing_docs)]
pub mod fstflags {
    pub const ATIM: u16 = 1 << 0;
    pub const ATIM_NOW: u16 = 1 << 1;
    pub const MTIM: u16 = 1 << 2;
    pub const MTIM_NOW: u16 = 1 << 3;
    pub const COUNT: u32 = 4;
}

/// `filetype`.
#[allow(missing_docs)]
pub mod filetype {
    pub const UNKNOWN: u8 = 0;
    pub const BLOCK_DEVICE: u8 = 1;
    pub const CHARACTER_DEVICE: u8 = 2;
    pub const DIRECTORY: u8 = 3;
    pub const REGULAR_FILE: u8 = 4;
    pub const SOCKET_DGRAM: u8 = 5;
    pub const SOCKET_STREAM: u8 = 6;
    pub const SYMBOLIC_LINK: u8 = 7;
}

/// The preview 1 `filetype` of a `wasi:filesystem` `descriptor-type`.
/// Preview 1 has no FIFO (`unknown`, as wasmtime). A socket in a host
/// directory is `socket_stream` (wasmtime traps there).
fn filetype_of(descriptor_type: &str) -> u8 {
    match descriptor_type {
        "block-device" => filetype::BLOCK_DEVICE,
        "character-device" => filetype::CHARACTER_DEVICE,
        "directory" => filetype::DIRECTORY,
        "regular-file" => filetype::REGULAR_FILE,
        "socket" => filetype::SOCKET_STREAM,
        "symbolic-link" => filetype::SYMBOLIC_LINK,
        _ => filetype::UNKNOWN,
    }
}

/// A `lookupflags` argument: whether to follow a final symlink.
fn follow(flags: i32) -> Result<bool> {
    Ok(arg::flags_u32(flags, 1)? & 1 != 0)
}

/// The `atim` or `mtim` change of `fstflags`: `set` and `now` together are
/// `inval`.
fn systimespec(set: bool, ts: u64, now: bool) -> Result<Option<SystemTimeSpec>> {
    Ok(match (set, now) {
        (true, true) => return Err(Errno::Inval.into()),
        (true, false) => Some(SystemTimeSpec::Absolute(cap_std::time::SystemTime::from_std(
            UNIX_EPOCH + Duration::from_nanos(ts),
        ))),
        (false, true) => Some(SystemTimeSpec::SymbolicNow),
        (false, false) => None,
    })
}

/// The atime and mtime changes an `fstflags` argument asks for.
fn times(atim: i64, mtim: i64, fst: i32) -> Result<(Option<SystemTimeSpec>, Option<SystemTimeSpec>)> {
    let fst = arg::flags_u16(fst, fstflags::COUNT)?;
    let has = |f: u16| fst & f != 0;
    Ok((
        systimespec(has(fstflags::ATIM), atim as u64, has(fstflags::ATIM_NOW))?,
        systimespec(has(fstflags::MTIM), mtim as u64, has(fstflags::MTIM_NOW))?,
    ))
}

/// Nanoseconds since the epoch (0 for a time before it, or none).
fn nanos(t: Option<SystemTime>) -> Result<u64> {
    let d = t.and_then(|t| t.duration_since(UNIX_EPOCH).ok()).unwrap_or_default();
    Ok(u64::try_from(d.as_nanos()).map_err(|_| Errno::Overflow)?)
}

/// `filestat`.
#[derive(Default)]
struct Filestat {
    dev: u64,
    ino: u64,
    filetype: u8,
    nlink: u64,
    size: u64,
    atim: u64,
    mtim: u64,
    ctim: u64,
}

impl Filestat {
    /// As wasmtime: device 1, the inode a hash of the host's (device,
    /// inode), so identities compare without showing the host's numbers.
    fn of(m: &cap_std::fs::Metadata) -> Result<Self> {
        use cap_fs_ext::MetadataExt;
        Ok(Filestat {
            dev: 1,
            ino: metadata_hash(m).0,
            filetype: filetype_of(descriptor_type(m.file_type())),
            nlink: m.nlink(),
            size: m.len(),
            atim: nanos(m.accessed().ok().map(|t| t.into_std()))?,
            mtim: nanos(m.modified().ok().map(|t| t.into_std()))?,
            ctim: nanos(Some(ctime(m)))?,
        })
    }

    fn write(&self, mem: &mut Mem<'_>, ptr: u32) -> Result<()> {
        mem.check_record(ptr, FILESTAT.0, FILESTAT.1)?;
        mem.write_u64(ptr, self.dev)?;
        mem.write_u64(ptr + 8, self.ino)?;
        mem.write_u8(ptr + 16, self.filetype)?;
        mem.write_u64(ptr + 24, self.nlink)?;
        mem.write_u64(ptr + 32, self.size)?;
        mem.write_u64(ptr + 40, self.atim)?;
        mem.write_u64(ptr + 48, self.mtim)?;
        mem.write_u64(ptr + 56, self.ctim)
    }
}

/// `fdstat`.
struct Fdstat {
    filetype: u8,
    flags: u16,
    rights_base: u64,
    rights_inheriting: u64,
}

impl Fdstat {
    fn write(&self, mem: &mut Mem<'_>, ptr: u32) -> Result<()> {
        mem.check_record(ptr, FDSTAT.0, FDSTAT.1)?;
        mem.write_u8(ptr, self.filetype)?;
        mem.write_u16(ptr + 2, self.flags)?;
        mem.write_u64(ptr + 8, self.rights_base)?;
        mem.write_u64(ptr + 16, self.rights_inheriting)
    }
}

/// The rights of a preopened directory, as wasmtime reports them (the set
/// many userlands expect).
const PREOPEN_RIGHTS: u64 = rights::PATH_CREATE_DIRECTORY
    | rights::PATH_CREATE_FILE
    | rights::PATH_LINK_SOURCE
    | rights::PATH_LINK_TARGET
    | rights::PATH_OPEN
    | rights::FD_READDIR
    | rights::PATH_READLINK
    | rights::PATH_RENAME_SOURCE
    | rights::PATH_RENAME_TARGET
    | rights::PATH_SYMLINK
    | rights::PATH_REMOVE_DIRECTORY
    | rights::PATH_UNLINK_FILE
    | rights::PATH_FILESTAT_GET
    | rights::PATH_FILESTAT_SET_TIMES
    | rights::FD_FILESTAT_GET
    | rights::FD_FILESTAT_SET_TIMES;

/// What files opened beneath a preopen may have.
const PREOPEN_INHERITING: u64 = PREOPEN_RIGHTS
    | rights::FD_DATASYNC
    | rights::FD_READ
    | rights::FD_SEEK
    | rights::FD_FDSTAT_SET_FLAGS
    | rights::FD_SYNC
    | rights::FD_TELL
    | rights::FD_WRITE
    | rights::FD_ADVISE
    | rights::FD_ALLOCATE
    | rights::FD_FILESTAT_GET
    | rights::FD_FILESTAT_SET_SIZE
    | rights::FD_FILESTAT_SET_TIMES
    | rights::POLL_FD_READWRITE;

/// `fd_fdstat_get`.
fn fdstat(fd: &Fd) -> Result<Fdstat> {
    let stdio = |rights| Fdstat {
        // The guest never sees a terminal (as `wasi:cli/terminal-*`).
        filetype: filetype::UNKNOWN,
        flags: 0,
        rights_base: rights,
        rights_inheriting: rights,
    };
    let (desc, append, nonblock) = match fd {
        Fd::Stdin(_) => return Ok(stdio(rights::FD_READ)),
        Fd::Stdout(_) | Fd::Stderr(_) => return Ok(stdio(rights::FD_WRITE)),
        Fd::Dir(Dir { preopen: Some(_), .. }) => {
            return Ok(Fdstat {
                filetype: filetype::DIRECTORY,
                flags: 0,
                rights_base: PREOPEN_RIGHTS,
                rights_inheriting: PREOPEN_INHERITING,
            })
        }
        Fd::Dir(d) => (&d.desc, false, false),
        Fd::File(f) => (&f.desc, f.append, f.nonblock),
    };
    let flags: DescriptorFlags = desc.flags();
    let filetype = filetype_of(descriptor_type(desc.metadata()?.file_type()));
    let mut base = rights::ALL;
    if filetype == filetype::DIRECTORY {
        base &= !(rights::FD_SEEK | rights::FD_FILESTAT_SET_SIZE | rights::PATH_FILESTAT_SET_SIZE);
    }
    if !flags.read {
        base &= !(rights::FD_READ | rights::FD_READDIR);
    }
    if !flags.write {
        base &= !rights::FD_WRITE;
    }
    let mut fs_flags = 0;
    for (name, bit) in [
        ("data-integrity-sync", fdflags::DSYNC),
        ("requested-write-sync", fdflags::RSYNC),
        ("file-integrity-sync", fdflags::SYNC),
    ] {
        if flags.sync.contains(&name) {
            fs_flags |= bit;
        }
    }
    if append {
        fs_flags |= fdflags::APPEND;
    }
    if nonblock {
        fs_flags |= fdflags::NONBLOCK;
    }
    Ok(Fdstat {
        filetype,
        flags: fs_flags,
        rights_base: base,
        rights_inheriting: base,
    })
}

/// `fd_filestat_get`: stdio has an all-zero `filestat`.
fn fd_filestat(fd: &Fd) -> Result<Filestat> {
    match fd {
        Fd::Stdin(_) | Fd::Stdout(_) | Fd::Stderr(_) => Ok(Filestat::default()),
        Fd::Dir(Dir { desc, .. }) | Fd::File(File { desc, .. }) => Filestat::of(&desc.metadata()?),
    }
}

/// The listing `fd_readdir` pages through: `.`, `..`, then the entries in
/// name order, each with its inode (as `filestat`'s).
fn listing(desc: &Descriptor) -> Result<Vec<Dirent>> {
    let ino = metadata_hash(&desc.metadata()?).0;
    let dot = |name: &str| Dirent {
        name: name.into(),
        // `..` gets the directory's own inode, as wasmtime (it has no
        // business knowing the parent's).
        ino,
        filetype: filetype::DIRECTORY,
    };
    let mut out = vec![dot("."), dot("..")];
    for (name, ty) in desc.entries()? {
        let ino = metadata_hash(&desc.stat_at(false, &name)?).0;
        out.push(Dirent {
            name,
            ino,
            filetype: filetype_of(ty),
        });
    }
    Ok(out)
}

/// `fd_readdir`: entries from `cookie` on, each a 24-byte `dirent` and its
/// name, as many as fit (the last one cut off where the buffer ends, so a
/// full buffer tells the caller to grow it). A listing is taken at cookie
/// 0 and later cookies page through that one.
fn fd_readdir(mem: &mut Mem<'_>, d: &mut Dir, buf: u32, buf_len: u32, cookie: u64) -> Result<u32> {
    let entries = match (&d.listing, cookie) {
        (Some(l), c) if c > 0 => l.clone(),
        _ => {
            let l = Arc::new(listing(&d.desc)?);
            d.listing = Some(l.clone());
            l
        }
    };
    let out = mem.bytes_mut(buf, buf_len)?;
    let mut used = 0usize;
    let skip = usize::try_from(cookie).map_err(|_| Errno::Overflow)?;
    for (i, e) in entries.iter().enumerate().skip(skip) {
        let mut dirent = [0u8; DIRENT_SIZE as usize];
        dirent[0..8].copy_from_slice(&(i as u64 + 1).to_le_bytes());
        dirent[8..16].copy_from_slice(&e.ino.to_le_bytes());
        dirent[16..20].copy_from_slice(&(e.name.len() as u32).to_le_bytes());
        dirent[20] = e.filetype;
        for part in [&dirent[..], e.name.as_bytes()] {
            let n = part.len().min(out.len() - used);
            out[used..used + n].copy_from_slice(&part[..n]);
            used += n;
            if used == out.len() {
                return Ok(buf_len);
            }
        }
    }
    Ok(used as u32)
}

/// `path_open`.
#[allow(clippy::too_many_arguments)]
fn path_open<T: WasiView>(
    c: &mut Caller<'_, T>,
    fd: u32,
    dirflags: i32,
    path: (u32, u32),
    oflags: i32,
    base: i64,
    inheriting: i64,
    flags: i32,
    out: u32,
) -> Result<()> {
    let follow = follow(dirflags)?;
    let o = arg::flags_u16(oflags, oflags::COUNT)?;
    let base = arg::flags_u64(base, rights::COUNT)?;
    arg::flags_u64(inheriting, rights::COUNT)?;
    let flags = arg::flags_u16(flags, fdflags::COUNT)?;
    let (mut mem, ctx) = parts(c)?;
    let path = mem.string(path.0, path.1)?;
    let fds = fds(ctx);
    let dir = match fds.get(fd)? {
        Fd::Dir(d) => &d.desc,
        Fd::File(_) => return Err(Errno::Notdir.into()),
        _ => return Err(Errno::Badf.into()),
    };
    let open = OpenFlags {
        create: o & oflags::CREAT != 0,
        directory: o & oflags::DIRECTORY != 0,
        exclusive: o & oflags::EXCL != 0,
        truncate: o & oflags::TRUNC != 0,
    };
    let sync = [
        (fdflags::SYNC, "file-integrity-sync"),
        (fdflags::DSYNC, "data-integrity-sync"),
        (fdflags::RSYNC, "requested-write-sync"),
    ];
    let access = DescriptorFlags {
        read: base & rights::FD_READ != 0,
        write: base & rights::FD_WRITE != 0,
        mutate_directory: false,
        sync: sync.iter().filter(|(b, _)| flags & b != 0).map(|(_, n)| *n).collect(),
    };
    let opened = match dir.open_at(follow, &path, open, access)? {
        d @ Descriptor::Dir { .. } => Fd::Dir(Dir {
            desc: d,
            preopen: None,
            listing: None,
        }),
        d @ Descriptor::File { .. } => Fd::File(File::new(
            d,
            flags & fdflags::APPEND != 0,
            flags & fdflags::NONBLOCK != 0,
        )),
    };
    let new = fds.push(opened)?;
    if let Err(e) = mem.write_u32(out, new) {
        // The guest cannot learn the number: do not leave the fd behind.
        let _ = fds.remove(new);
        return Err(e);
    }
    Ok(())
}

/// The directory descriptor and path of a `path_*` call (`badf` if `fd`
/// is not a directory, checked before the path is read, as wasmtime).
fn dir_path<T: WasiView>(c: &mut Caller<'_, T>, fd: i32, ptr: i32, len: i32) -> Result<(Descriptor, String)> {
    let (mem, ctx) = parts(c)?;
    let desc = fds(ctx).dir(fd as u32)?.desc.clone();
    Ok((desc, mem.string(ptr as u32, len as u32)?))
}

pub(crate) fn add_to_linker<T: WasiView>(l: &mut Linker<T>) -> anyhow::Result<()> {
    l.func_wrap(
        MODULE,
        "fd_advise",
        |mut c: Caller<'_, T>, fd: i32, _offset: i64, _len: i64, advice: i32| {
            ret((|| {
                arg::enum_u8(advice, 6)?;
                // Advice is a hint; `wasi:filesystem`'s `advise` takes it
                // for any file.
                fds(wasi(&mut c)).file(fd as u32)?.desc.file()?;
                Ok(())
            })())
        },
    )
    .map_err(linker_error)?;
    l.func_wrap(
        MODULE,
        "fd_allocate",
        |mut c: Caller<'_, T>, fd: i32, _offset: i64, _len: i64| {
            // As wasmtime: not supported, for a file that exists.
            ret(fds(wasi(&mut c)).file(fd as u32).and(Err(Errno::Notsup.into())))
        },
    )
    .map_err(linker_error)?;
    for (name, all) in [("fd_datasync", false), ("fd_sync", true)] {
        l.func_wrap(MODULE, name, move |mut c: Caller<'_, T>, fd: i32| {
            ret((|| Ok(fds(wasi(&mut c)).file(fd as u32)?.desc.sync(all)?))())
        })
        .map_err(linker_error)?;
    }
    l.func_wrap(MODULE, "fd_fdstat_get", |mut c: Caller<'_, T>, fd: i32, out: i32| {
        ret((|| {
            let (mut mem, ctx) = parts(&mut c)?;
            fdstat(fds(ctx).get(fd as u32)?)?.write(&mut mem, out as u32)
        })())
    })
    .map_err(linker_error)?;
    l.func_wrap(
        MODULE,
        "fd_fdstat_set_flags",
        |mut c: Caller<'_, T>, fd: i32, flags: i32| {
            ret((|| {
                let flags = arg::flags_u16(flags, fdflags::COUNT)?;
                let f = fds(wasi(&mut c)).file(fd as u32)?;
                // Only `append` and `nonblock` can change.
                if flags & (fdflags::DSYNC | fdflags::SYNC | fdflags::RSYNC) != 0 {
                    return Err(Errno::Inval.into());
                }
                f.append = flags & fdflags::APPEND != 0;
                f.nonblock = flags & fdflags::NONBLOCK != 0;
                Ok(())
            })())
        },
    )
    .map_err(linker_error)?;
    l.func_wrap(
        MODULE,
        "fd_fdstat_set_rights",
        |mut c: Caller<'_, T>, fd: i32, base: i64, inheriting: i64| {
            ret((|| {
                arg::flags_u64(base, rights::COUNT)?;
                arg::flags_u64(inheriting, rights::COUNT)?;
                // As wasmtime: rights cannot be dropped, for a file or
                // directory that exists.
                fds(wasi(&mut c)).descriptor(fd as u32)?;
                Err(Errno::Notsup.into())
            })())
        },
    )
    .map_err(linker_error)?;
    l.func_wrap(MODULE, "fd_filestat_get", |mut c: Caller<'_, T>, fd: i32, out: i32| {
        ret((|| {
            let (mut mem, ctx) = parts(&mut c)?;
            fd_filestat(fds(ctx).get(fd as u32)?)?.write(&mut mem, out as u32)
        })())
    })
    .map_err(linker_error)?;
    l.func_wrap(
        MODULE,
        "fd_filestat_set_size",
        |mut c: Caller<'_, T>, fd: i32, size: i64| {
            ret((|| {
                Ok(fds(wasi(&mut c)).file(fd as u32)?.desc.set_size(size as u64)?)
            })())
        },
    )
    .map_err(linker_error)?;
    l.func_wrap(
        MODULE,
        "fd_filestat_set_times",
        |mut c: Caller<'_, T>, fd: i32, atim: i64, mtim: i64, fst: i32| {
            ret((|| {
                let (a, m) = times(atim, mtim, fst)?;
                Ok(fds(wasi(&mut c)).descriptor(fd as u32)?.set_times(a, m)?)
            })())
        },
    )
    .map_err(linker_error)?;
    l.func_wrap(MODULE, "fd_prestat_get", |mut c: Caller<'_, T>, fd: i32, out: i32| {
        ret((|| {
            let (mut mem, ctx) = parts(&mut c)?;
            let Fd::Dir(Dir {
                preopen: Some(name), ..
            }) = fds(ctx).get(fd as u32)?
            else {
                return Err(Errno::Badf.into());
            };
            let len = u32::try_from(name.len()).map_err(|_| Errno::Overflow)?;
            mem.check_record(out as u32, PRESTAT.0, PRESTAT.1)?;
            // `prestat` is a union tagged `dir` (0), then `pr_name_len`.
            mem.write_u8(out as u32, 0)?;
            mem.write_u32(out as u32 + 4, len)
        })())
    })
    .map_err(linker_error)?;
    l.func_wrap(
        MODULE,
        "fd_prestat_dir_name",
        |mut c: Caller<'_, T>, fd: i32, path: i32, len: i32| {
            ret((|| {
                let (mut mem, ctx) = parts(&mut c)?;
                let Fd::Dir(Dir {
                    preopen: Some(name), ..
                }) = fds(ctx).get(fd as u32)?
                else {
                    // As wasmtime (and the legacy implementation).
                    return Err(Errno::Notdir.into());
                };
                if name.len() > len as u32 as usize {
                    return Err(Errno::Nametoolong.into());
                }
                mem.write_bytes(path as u32, name.as_bytes())
            })())
        },
    )
    .map_err(linker_error)?;
    l.func_wrap(
        MODULE,
        "fd_readdir",
        |mut c: Caller<'_, T>, fd: i32, buf: i32, len: i32, cookie: i64, out: i32| {
            ret((|| {
                let (mut mem, ctx) = parts(&mut c)?;
                let d = fds(ctx).dir(fd as u32)?;
                let used = fd_readdir(&mut mem, d, buf as u32, len as u32, cookie as u64)?;
                mem.write_u32(out as u32, used)
            })())
        },
    )
    .map_err(linker_error)?;

    l.func_wrap(
        MODULE,
        "path_create_directory",
        |mut c: Caller<'_, T>, fd: i32, path: i32, len: i32| {
            ret((|| {
                let (dir, path) = dir_path(&mut c, fd, path, len)?;
                Ok(dir.create_directory_at(&path)?)
            })())
        },
    )
    .map_err(linker_error)?;
    l.func_wrap(
        MODULE,
        "path_filestat_get",
        |mut c: Caller<'_, T>, fd: i32, flags: i32, path: i32, len: i32, out: i32| {
            ret((|| {
                let follow = follow(flags)?;
                let (dir, path) = dir_path(&mut c, fd, path, len)?;
                let stat = Filestat::of(&dir.stat_at(follow, &path)?)?;
                let (mut mem, _) = parts(&mut c)?;
                stat.write(&mut mem, out as u32)
            })())
        },
    )
    .map_err(linker_error)?;
    l.func_wrap(
        MODULE,
        "path_filestat_set_times",
        |mut c: Caller<'_, T>, fd: i32, flags: i32, path: i32, len: i32, atim: i64, mtim: i64, fst: i32| {
            ret((|| {
                let follow = follow(flags)?;
                let (a, m) = times(atim, mtim, fst)?;
                let (dir, path) = dir_path(&mut c, fd, path, len)?;
                Ok(dir.set_times_at(follow, &path, a, m)?)
            })())
        },
    )
    .map_err(linker_error)?;
    l.func_wrap(
        MODULE,
        "path_link",
        |mut c: Caller<'_, T>,
         old_fd: i32,
         old_flags: i32,
         old_path: i32,
         old_len: i32,
         new_fd: i32,
         new_path: i32,
         new_len: i32| {
            ret((|| {
                let follow = follow(old_flags)?;
                let (src, old) = dir_path(&mut c, old_fd, old_path, old_len)?;
                let (dst, new) = dir_path(&mut c, new_fd, new_path, new_len)?;
                Ok(src.link_at(follow, &old, &dst, &new)?)
            })())
        },
    )
    .map_err(linker_error)?;
    l.func_wrap(
        MODULE,
        "path_open",
        |mut c: Caller<'_, T>,
         fd: i32,
         dirflags: i32,
         path: i32,
         len: i32,
         oflags: i32,
         base: i64,
         inheriting: i64,
         flags: i32,
         out: i32| {
            ret(path_open(
                &mut c,
                fd as u32,
                dirflags,
                (path as u32, len as u32),
                oflags,
                base,
                inheriting,
                flags,
                out as u32,
            ))
        },
    )
    .map_err(linker_error)?;
    l.func_wrap(
        MODULE,
        "path_readlink",
        |mut c: Caller<'_, T>, fd: i32, path: i32, len: i32, buf: i32, buf_len: i32, out: i32| {
            ret((|| {
                let (dir, path) = dir_path(&mut c, fd, path, len)?;
                let target = dir.readlink_at(&path)?;
                let bytes = &target.as_bytes()[..target.len().min(buf_len as u32 as usize)];
                let (mut mem, _) = parts(&mut c)?;
                mem.write_bytes(buf as u32, bytes)?;
                mem.write_u32(out as u32, bytes.len() as u32)
            })())
        },
    )
    .map_err(linker_error)?;
    l.func_wrap(
        MODULE,
        "path_remove_directory",
        |mut c: Caller<'_, T>, fd: i32, path: i32, len: i32| {
            ret((|| {
                let (dir, path) = dir_path(&mut c, fd, path, len)?;
                Ok(dir.remove_directory_at(&path)?)
            })())
        },
    )
    .map_err(linker_error)?;
    l.func_wrap(
        MODULE,
        "path_rename",
        |mut c: Caller<'_, T>, fd: i32, old_path: i32, old_len: i32, new_fd: i32, new_path: i32, new_len: i32| {
            ret((|| {
                let (src, old) = dir_path(&mut c, fd, old_path, old_len)?;
                let (dst, new) = dir_path(&mut c, new_fd, new_path, new_len)?;
                Ok(src.rename_at(&old, &dst, &new)?)
            })())
        },
    )
    .map_err(linker_error)?;
    l.func_wrap(
        MODULE,
        "path_symlink",
        |mut c: Caller<'_, T>, old_path: i32, old_len: i32, fd: i32, new_path: i32, new_len: i32| {
            ret((|| {
                let (dir, link) = dir_path(&mut c, fd, new_path, new_len)?;
                let (mem, _) = parts(&mut c)?;
                let target = mem.string(old_path as u32, old_len as u32)?;
                Ok(dir.symlink_at(&target, &link)?)
            })())
        },
    )
    .map_err(linker_error)?;
    l.func_wrap(
        MODULE,
        "path_unlink_file",
        |mut c: Caller<'_, T>, fd: i32, path: i32, len: i32| {
            ret((|| {
                let (dir, path) = dir_path(&mut c, fd, path, len)?;
                Ok(dir.unlink_file_at(&path)?)
            })())
        },
    )
    .map_err(linker_error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::errno::Error;
    use super::*;

    #[test]
    fn times_refuse_set_and_now_together() {
        assert!(matches!(
            times(0, 0, (fstflags::ATIM | fstflags::ATIM_NOW) as i32),
            Err(Error::Errno(Errno::Inval))
        ));
        assert!(matches!(times(0, 0, 1 << 4), Err(Error::Errno(Errno::Inval))));
        let (a, m) = times(5, 0, fstflags::ATIM as i32 | fstflags::MTIM_NOW as i32).unwrap();
        assert!(matches!(a, Some(SystemTimeSpec::Absolute(_))));
        assert!(matches!(m, Some(SystemTimeSpec::SymbolicNow)));
    }

    #[test]
    fn readdir_cuts_the_last_entry_at_the_buffer_end() {
        let tmp = std::env::temp_dir().join(format!("wippy-p1-readdir-{}", std::process::id()));
        std::fs::create_dir_all(&tmp).unwrap();
        std::fs::write(tmp.join("a-file"), b"x").unwrap();
        let dir = cap_std::fs::Dir::open_ambient_dir(&tmp, cap_std::ambient_authority()).unwrap();
        let mut d = Dir {
            desc: Descriptor::Dir {
                dir: Arc::new(dir),
                read_only: false,
            },
            preopen: None,
            listing: None,
        };
        let mut buf = vec![0u8; 1024];
        let mut mem = Mem(&mut buf);
        // ".", "..", "a-file": 3 dirents and 1 + 2 + 6 name bytes.
        let used = fd_readdir(&mut mem, &mut d, 0, 1024, 0).unwrap();
        assert_eq!(used, 3 * DIRENT_SIZE + 9);
        assert_eq!(&buf[DIRENT_SIZE as usize..DIRENT_SIZE as usize + 1], b".");
        let mut mem = Mem(&mut buf);
        assert_eq!(fd_readdir(&mut mem, &mut d, 0, 30, 0).unwrap(), 30);
        // From cookie 2 on: only the file.
        let mut mem = Mem(&mut buf);
        assert_eq!(fd_readdir(&mut mem, &mut d, 0, 1024, 2).unwrap(), DIRENT_SIZE + 6);
        assert_eq!(&buf[DIRENT_SIZE as usize..DIRENT_SIZE as usize + 6], b"a-file");
        assert_eq!(u64::from_le_bytes(buf[0..8].try_into().unwrap()), 3);
        std::fs::remove_dir_all(&tmp).unwrap();
    }
}
