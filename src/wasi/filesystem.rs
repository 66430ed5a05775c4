//! `wasi:filesystem` — `types` and `preopens` over mounts.
//!
//! Every path is resolved by `cap-std` beneath the descriptor's directory
//! (`openat2(RESOLVE_BENEATH)` where the kernel has it): `..`, absolute paths
//! and symlinks cannot leave a mount, however they are combined. A read-only
//! mount refuses every mutation with `not-permitted`, as wasmtime does.

use super::io::{
    HostInputStream, HostOutputStream, InputStream, IoError, OutputStream, Read, StreamError, StreamResult,
    WRITE_BUDGET,
};
use super::{bytes_arg, bytes_val, err, get, get_mut, iface, ok, own, rep, table_resource, u64_arg, Types, WasiView};
use crate::host::table::Resource;
use crate::values::ResourceType;
use crate::values::Val;
use crate::{Linker, StoreCx};
use anyhow::{anyhow, Result};
use cap_fs_ext::{DirExt, FollowSymlinks, OpenOptionsFollowExt, OsMetadataExt, SystemTimeSpec};
use cap_std::fs::FileTypeExt;
use cap_std::fs::{Dir, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A directory given to the guest.
#[derive(Clone)]
pub struct Mount {
    pub host: PathBuf,
    pub guest: String,
    pub read_only: bool,
}

/// `wasi:filesystem/types.descriptor`.
#[derive(Clone)]
pub enum Descriptor {
    Dir {
        dir: Arc<Dir>,
        read_only: bool,
    },
    File {
        file: Arc<std::fs::File>,
        read: bool,
        write: bool,
        append: bool,
        read_only: bool,
        /// The sync flags it was opened with (reported by `get-flags`).
        sync: Vec<&'static str>,
    },
}

/// The sync flags a descriptor may be opened with.
const SYNC_FLAGS: [&str; 3] = ["file-integrity-sync", "data-integrity-sync", "requested-write-sync"];

/// `wasi:filesystem/types.directory-entry-stream`.
pub struct DirEntries(std::vec::IntoIter<(String, &'static str)>);

/// A WASI error code (a case name of `error-code`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Code(pub &'static str);

impl From<io::Error> for Code {
    fn from(e: io::Error) -> Self {
        Code(error_code(&e))
    }
}

/// Maps an OS error to the WIT `error-code`.
pub fn error_code(e: &io::Error) -> &'static str {
    if let Some(errno) = e.raw_os_error() {
        return match errno {
            libc::EACCES => "access",
            libc::EAGAIN => "would-block",
            libc::EALREADY => "already",
            libc::EBADF => "bad-descriptor",
            libc::EBUSY => "busy",
            libc::EDEADLK => "deadlock",
            libc::EDQUOT => "quota",
            libc::EEXIST => "exist",
            libc::EFBIG => "file-too-large",
            libc::EILSEQ => "illegal-byte-sequence",
            libc::EINPROGRESS => "in-progress",
            libc::EINTR => "interrupted",
            libc::EINVAL => "invalid",
            libc::EIO => "io",
            libc::EISDIR => "is-directory",
            libc::ELOOP => "loop",
            libc::EMLINK => "too-many-links",
            libc::EMSGSIZE => "message-size",
            libc::ENAMETOOLONG => "name-too-long",
            libc::ENODEV => "no-device",
            libc::ENOENT => "no-entry",
            libc::ENOLCK => "no-lock",
            libc::ENOMEM => "insufficient-memory",
            libc::ENOSPC => "insufficient-space",
            libc::ENOTDIR => "not-directory",
            libc::ENOTEMPTY => "not-empty",
            libc::ENOTRECOVERABLE => "not-recoverable",
            libc::ENOTSUP => "unsupported",
            libc::ENOTTY => "no-tty",
            libc::ENXIO => "no-such-device",
            libc::EOVERFLOW => "overflow",
            libc::EPERM => "not-permitted",
            libc::EPIPE => "pipe",
            libc::EROFS => "read-only",
            libc::ESPIPE => "invalid-seek",
            libc::ETXTBSY => "text-file-busy",
            libc::EXDEV => "cross-device",
            _ => "io",
        };
    }
    // cap-std reports an escape from the sandbox without an errno.
    match e.kind() {
        io::ErrorKind::PermissionDenied => "not-permitted",
        io::ErrorKind::NotFound => "no-entry",
        io::ErrorKind::AlreadyExists => "exist",
        io::ErrorKind::InvalidInput => "invalid",
        _ => "io",
    }
}

type Res<T> = std::result::Result<T, Code>;

const NOT_PERMITTED: Code = Code("not-permitted");
const BAD_DESCRIPTOR: Code = Code("bad-descriptor");

fn result(r: Res<Option<Val>>) -> Val {
    match r {
        Ok(v) => ok(v),
        Err(Code(c)) => err(Val::Enum(c.into())),
    }
}

pub(crate) fn descriptor_type(ft: cap_std::fs::FileType) -> &'static str {
    if ft.is_dir() {
        "directory"
    } else if ft.is_file() {
        "regular-file"
    } else if ft.is_symlink() {
        "symbolic-link"
    } else if ft.is_block_device() {
        "block-device"
    } else if ft.is_char_device() {
        "character-device"
    } else if ft.is_fifo() {
        "fifo"
    } else if ft.is_socket() {
        "socket"
    } else {
        "unknown"
    }
}

fn datetime(t: SystemTime) -> Val {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    Val::Record(vec![
        ("seconds".into(), Val::U64(d.as_secs())),
        ("nanoseconds".into(), Val::U32(d.subsec_nanos())),
    ])
}

fn opt_time(t: io::Result<SystemTime>) -> Val {
    Val::Option(t.ok().map(|t| Box::new(datetime(t))))
}

fn stat_val(m: &cap_std::fs::Metadata) -> Val {
    Val::Record(vec![
        ("type".into(), Val::Enum(descriptor_type(m.file_type()).into())),
        ("link-count".into(), Val::U64(m.nlink())),
        ("size".into(), Val::U64(m.len())),
        (
            "data-access-timestamp".into(),
            opt_time(m.accessed().map(|t| t.into_std())),
        ),
        (
            "data-modification-timestamp".into(),
            opt_time(m.modified().map(|t| t.into_std())),
        ),
        (
            "status-change-timestamp".into(),
            Val::Option(Some(Box::new(datetime(ctime(m))))),
        ),
    ])
}

fn flag(v: &Val, name: &str) -> bool {
    matches!(v, Val::Flags(set) if set.iter().any(|f| f == name))
}

fn string_arg(v: &Val) -> Result<&str> {
    match v {
        Val::String(s) => Ok(s),
        other => Err(anyhow!("expected a string, got {}", other.kind())),
    }
}

/// `new-timestamp` to a `SystemTimeSpec` (`None` = no change).
fn new_timestamp(v: &Val) -> Option<SystemTimeSpec> {
    match v {
        Val::Variant(case, payload) if case == "now" => {
            let _ = payload;
            Some(SystemTimeSpec::SymbolicNow)
        }
        Val::Variant(case, Some(p)) if case == "timestamp" => match &**p {
            Val::Record(fields) => {
                let get = |n: &str| fields.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
                let (Some(Val::U64(s)), Some(Val::U32(ns))) = (get("seconds"), get("nanoseconds")) else {
                    return None;
                };
                let t = UNIX_EPOCH + Duration::new(s, ns);
                Some(SystemTimeSpec::Absolute(cap_std::time::SystemTime::from_std(t)))
            }
            _ => None,
        },
        _ => None,
    }
}

fn descriptor<'t, T: WasiView>(cx: &'t mut StoreCx<'_, T>, v: &Val) -> Result<&'t Descriptor> {
    get::<T, Descriptor>(cx, v)
}

/// `open-flags`.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct OpenFlags {
    pub create: bool,
    pub directory: bool,
    pub exclusive: bool,
    pub truncate: bool,
}

impl OpenFlags {
    fn from_val(v: &Val) -> Self {
        OpenFlags {
            create: flag(v, "create"),
            directory: flag(v, "directory"),
            exclusive: flag(v, "exclusive"),
            truncate: flag(v, "truncate"),
        }
    }
}

/// `descriptor-flags`.
#[derive(Clone, Debug, Default)]
pub(crate) struct DescriptorFlags {
    pub read: bool,
    pub write: bool,
    pub mutate_directory: bool,
    /// Of [`SYNC_FLAGS`].
    pub sync: Vec<&'static str>,
}

impl DescriptorFlags {
    fn from_val(v: &Val) -> Self {
        DescriptorFlags {
            read: flag(v, "read"),
            write: flag(v, "write"),
            mutate_directory: flag(v, "mutate-directory"),
            sync: SYNC_FLAGS.into_iter().filter(|f| flag(v, f)).collect(),
        }
    }
}

/// The typed operations behind the `descriptor` methods, shared by the
/// WASI 0.2 host functions below and by `wasi_snapshot_preview1`.
impl Descriptor {
    /// The directory, for path operations (and whether it is read-only).
    pub(crate) fn dir(&self) -> Res<(Arc<Dir>, bool)> {
        match self {
            Descriptor::Dir { dir, read_only } => Ok((dir.clone(), *read_only)),
            Descriptor::File { .. } => Err(Code("not-directory")),
        }
    }

    /// The directory, about to be changed.
    pub(crate) fn mutable_dir(&self) -> Res<Arc<Dir>> {
        let (dir, read_only) = self.dir()?;
        if read_only {
            return Err(NOT_PERMITTED);
        }
        Ok(dir)
    }

    pub(crate) fn file(&self) -> Res<Arc<std::fs::File>> {
        match self {
            Descriptor::File { file, .. } => Ok(file.clone()),
            Descriptor::Dir { .. } => Err(Code("is-directory")),
        }
    }

    /// The file, if it was opened for reading.
    pub(crate) fn readable_file(&self) -> Res<Arc<std::fs::File>> {
        match self {
            Descriptor::File { read: false, .. } => Err(BAD_DESCRIPTOR),
            d => d.file(),
        }
    }

    /// The file, if it was opened for writing (on a writable mount).
    pub(crate) fn writable_file(&self) -> Res<Arc<std::fs::File>> {
        match self {
            Descriptor::File { read_only: true, .. } => Err(NOT_PERMITTED),
            Descriptor::File { write: false, .. } => Err(BAD_DESCRIPTOR),
            d => d.file(),
        }
    }

    /// `stat`'s metadata.
    pub(crate) fn metadata(&self) -> Res<cap_std::fs::Metadata> {
        Ok(match self {
            Descriptor::Dir { dir, .. } => dir.dir_metadata()?,
            Descriptor::File { file, .. } => cap_std::fs::Metadata::from_file(file)?,
        })
    }

    /// `stat-at`'s metadata.
    pub(crate) fn stat_at(&self, follow: bool, path: &str) -> Res<cap_std::fs::Metadata> {
        let (dir, _) = self.dir()?;
        Ok(if follow {
            dir.metadata(path)?
        } else {
            dir.symlink_metadata(path)?
        })
    }

    /// `get-flags`.
    pub(crate) fn flags(&self) -> DescriptorFlags {
        match self {
            Descriptor::Dir { read_only, .. } => DescriptorFlags {
                read: true,
                mutate_directory: !*read_only,
                ..Default::default()
            },
            Descriptor::File { read, write, sync, .. } => DescriptorFlags {
                read: *read,
                write: *write,
                sync: sync.clone(),
                ..Default::default()
            },
        }
    }

    /// `sync` (`all`) or `sync-data`.
    pub(crate) fn sync(&self, all: bool) -> Res<()> {
        match self {
            Descriptor::File { file, .. } => if all { file.sync_all() } else { file.sync_data() }.map_err(Code::from),
            Descriptor::Dir { .. } => Ok(()),
        }
    }

    /// `set-size`.
    pub(crate) fn set_size(&self, size: u64) -> Res<()> {
        self.writable_file()?.set_len(size).map_err(Code::from)
    }

    /// `set-times` (`None`: no change).
    pub(crate) fn set_times(&self, atime: Option<SystemTimeSpec>, mtime: Option<SystemTimeSpec>) -> Res<()> {
        match self {
            Descriptor::File { read_only: true, .. } | Descriptor::Dir { read_only: true, .. } => Err(NOT_PERMITTED),
            Descriptor::File { file, .. } => set_times_file(file, atime, mtime),
            Descriptor::Dir { dir, .. } => dir.set_times(".", atime, mtime).map_err(Code::from),
        }
    }

    /// `set-times-at`.
    pub(crate) fn set_times_at(
        &self,
        follow: bool,
        path: &str,
        atime: Option<SystemTimeSpec>,
        mtime: Option<SystemTimeSpec>,
    ) -> Res<()> {
        let d = self.mutable_dir()?;
        if follow {
            d.set_times(path, atime, mtime)
        } else {
            d.set_symlink_times(path, atime, mtime)
        }
        .map_err(Code::from)
    }

    /// `open-at`.
    pub(crate) fn open_at(&self, follow: bool, path: &str, o: OpenFlags, d: DescriptorFlags) -> Res<Descriptor> {
        let (dir, read_only) = self.dir()?;
        let OpenFlags {
            create,
            directory,
            exclusive,
            truncate,
        } = o;
        let DescriptorFlags {
            read,
            write,
            mutate_directory: mutate,
            sync,
        } = d;
        if read_only && (create || truncate || write || mutate) {
            return Err(NOT_PERMITTED);
        }
        let is_dir = match self.stat_at(follow, path) {
            Ok(m) => m.is_dir(),
            Err(_) => false,
        };
        if directory || (is_dir && !create) {
            if create || truncate || write {
                return Err(Code("is-directory"));
            }
            let sub = if follow {
                dir.open_dir(path)?
            } else {
                dir.open_dir_nofollow(path)?
            };
            return Ok(Descriptor::Dir {
                dir: Arc::new(sub),
                read_only,
            });
        }
        let mut opts = OpenOptions::new();
        opts.read(read || !write).write(write);
        if create && exclusive {
            opts.create_new(true);
        } else if create {
            opts.create(true);
        }
        if truncate {
            opts.truncate(true);
        }
        if create && !write {
            // Creating needs write access at the OS level; the guest still only
            // gets the rights it asked for.
            opts.write(true);
        }
        opts.follow(if follow {
            FollowSymlinks::Yes
        } else {
            FollowSymlinks::No
        });
        let file = dir.open_with(path, &opts)?;
        let file = file.into_std();
        Ok(Descriptor::File {
            file: Arc::new(file),
            read: read || !write,
            write,
            append: false,
            read_only,
            sync,
        })
    }

    /// The directory's entries (name and `descriptor-type`), sorted by name.
    pub(crate) fn entries(&self) -> Res<Vec<(String, &'static str)>> {
        let (dir, _) = self.dir()?;
        let mut entries = Vec::new();
        for e in dir.entries()? {
            let e = e?;
            let name = e.file_name().to_string_lossy().into_owned();
            let ty = e.file_type().map(descriptor_type).unwrap_or("unknown");
            entries.push((name, ty));
        }
        entries.sort();
        Ok(entries)
    }

    /// `create-directory-at`.
    pub(crate) fn create_directory_at(&self, path: &str) -> Res<()> {
        self.mutable_dir()?.create_dir(path).map_err(Code::from)
    }

    /// `remove-directory-at`.
    pub(crate) fn remove_directory_at(&self, path: &str) -> Res<()> {
        self.mutable_dir()?.remove_dir(path).map_err(Code::from)
    }

    /// `unlink-file-at`.
    pub(crate) fn unlink_file_at(&self, path: &str) -> Res<()> {
        self.mutable_dir()?.remove_file(path).map_err(Code::from)
    }

    /// `readlink-at`.
    pub(crate) fn readlink_at(&self, path: &str) -> Res<String> {
        let (d, _) = self.dir()?;
        Ok(d.read_link_contents(path)?.to_string_lossy().into_owned())
    }

    /// `rename-at`.
    pub(crate) fn rename_at(&self, old: &str, dst: &Descriptor, new: &str) -> Res<()> {
        let (s, d) = (self.mutable_dir(), dst.mutable_dir());
        s.and_then(|s| d.and_then(|d| s.rename(old, &d, new).map_err(Code::from)))
    }

    /// `link-at` (following a symlink at `old` is refused).
    pub(crate) fn link_at(&self, follow: bool, old: &str, dst: &Descriptor, new: &str) -> Res<()> {
        let (s, d) = (self.mutable_dir(), dst.mutable_dir());
        if follow {
            return Err(Code("invalid"));
        }
        s.and_then(|s| d.and_then(|d| s.hard_link(old, &d, new).map_err(Code::from)))
    }

    /// `symlink-at`.
    pub(crate) fn symlink_at(&self, target: &str, link: &str) -> Res<()> {
        let d = self.mutable_dir()?;
        // An absolute target could only ever point outside the mount.
        if Path::new(target).is_absolute() {
            return Err(NOT_PERMITTED);
        }
        d.symlink(target, link).map_err(Code::from)
    }
}

/// A stable hash of an object's identity (device, inode): `metadata-hash`.
pub(crate) fn metadata_hash(m: &cap_std::fs::Metadata) -> (u64, u64) {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in m.dev().to_le_bytes().iter().chain(m.ino().to_le_bytes().iter()) {
        h = (h ^ *b as u64).wrapping_mul(0x0100_0000_01b3);
    }
    (h, m.ino() ^ m.dev().rotate_left(32))
}

fn metadata_hash_val(m: &cap_std::fs::Metadata) -> Val {
    let (lower, upper) = metadata_hash(m);
    Val::Record(vec![
        ("lower".into(), Val::U64(lower)),
        ("upper".into(), Val::U64(upper)),
    ])
}

fn read_dir(d: &Descriptor) -> Res<DirEntries> {
    Ok(DirEntries(d.entries()?.into_iter()))
}

/// The status-change time of `m`.
pub(crate) fn ctime(m: &cap_std::fs::Metadata) -> SystemTime {
    UNIX_EPOCH + Duration::new(m.ctime().max(0) as u64, m.ctime_nsec().clamp(0, 999_999_999) as u32)
}

fn set_times_file(file: &std::fs::File, atime: Option<SystemTimeSpec>, mtime: Option<SystemTimeSpec>) -> Res<()> {
    let to_std = |s: SystemTimeSpec| match s {
        SystemTimeSpec::SymbolicNow => SystemTime::now(),
        SystemTimeSpec::Absolute(t) => t.into_std(),
    };
    let mut times = std::fs::FileTimes::new();
    if let Some(a) = atime {
        times = times.set_accessed(to_std(a));
    }
    if let Some(m) = mtime {
        times = times.set_modified(to_std(m));
    }
    file.set_times(times)?;
    Ok(())
}

pub(crate) fn add_to_linker<T: WasiView>(linker: &mut Linker<T>, types: &Types) {
    let fs = linker.instance(&iface("wasi:filesystem/types"));
    let descriptor_ty = table_resource::<T, Descriptor>(fs, "descriptor");
    let entries_ty = table_resource::<T, DirEntries>(fs, "directory-entry-stream");
    let d = descriptor_ty.clone();
    let t = types.clone();
    let m = "[method]descriptor.";

    // Streams.
    let st = t.clone();
    fs.func_new(&format!("{m}read-via-stream"), move |mut cx, args, out| {
        let offset = u64_arg(&args[1])?;
        let r = descriptor(&mut cx, &args[0])?
            .readable_file()
            .map(|file| InputStream::new(FileReader { file, pos: offset }));
        out.push(push_stream(&mut cx, r, &st.input_stream, &args[0])?);
        Ok(())
    });
    let st = t.clone();
    fs.func_new(&format!("{m}write-via-stream"), move |mut cx, args, out| {
        let offset = u64_arg(&args[1])?;
        let r = descriptor(&mut cx, &args[0])?.writable_file().map(|file| {
            OutputStream::new(FileWriter {
                file,
                pos: offset,
                append: false,
            })
        });
        out.push(push_stream(&mut cx, r, &st.output_stream, &args[0])?);
        Ok(())
    });
    let st = t.clone();
    fs.func_new(&format!("{m}append-via-stream"), move |mut cx, args, out| {
        let r = descriptor(&mut cx, &args[0])?.writable_file().and_then(|file| {
            // Appends go through an O_APPEND handle of the same file.
            let f = reopen_append(&file)?;
            Ok(OutputStream::new(FileWriter {
                file: Arc::new(f),
                pos: 0,
                append: true,
            }))
        });
        out.push(push_stream(&mut cx, r, &st.output_stream, &args[0])?);
        Ok(())
    });

    fs.func_new(&format!("{m}advise"), |mut cx, args, out| {
        out.push(result(descriptor(&mut cx, &args[0])?.file().map(|_| None)));
        Ok(())
    });
    for (name, all) in [("sync-data", false), ("sync", true)] {
        fs.func_new(&format!("{m}{name}"), move |mut cx, args, out| {
            let r = descriptor(&mut cx, &args[0])?.sync(all);
            out.push(result(r.map(|_| None)));
            Ok(())
        });
    }
    fs.func_new(&format!("{m}get-flags"), |mut cx, args, out| {
        let f = descriptor(&mut cx, &args[0])?.flags();
        let flags: Vec<String> = [
            (f.read, "read"),
            (f.write, "write"),
            (f.mutate_directory, "mutate-directory"),
        ]
        .into_iter()
        .filter(|(on, _)| *on)
        .map(|(_, name)| name)
        .chain(f.sync.iter().copied())
        .map(String::from)
        .collect();
        out.push(ok(Some(Val::Flags(flags))));
        Ok(())
    });
    fs.func_new(&format!("{m}get-type"), |mut cx, args, out| {
        let r = descriptor(&mut cx, &args[0])?
            .metadata()
            .map(|m| Some(Val::Enum(descriptor_type(m.file_type()).into())));
        out.push(result(r));
        Ok(())
    });
    fs.func_new(&format!("{m}set-size"), |mut cx, args, out| {
        let size = u64_arg(&args[1])?;
        let r = descriptor(&mut cx, &args[0])?.set_size(size);
        out.push(result(r.map(|_| None)));
        Ok(())
    });
    fs.func_new(&format!("{m}set-times"), |mut cx, args, out| {
        let (atime, mtime) = (new_timestamp(&args[1]), new_timestamp(&args[2]));
        let r = descriptor(&mut cx, &args[0])?.set_times(atime, mtime);
        out.push(result(r.map(|_| None)));
        Ok(())
    });
    fs.func_new(&format!("{m}read"), |mut cx, args, out| {
        use std::os::unix::fs::FileExt;
        let (len, offset) = (u64_arg(&args[1])?, u64_arg(&args[2])?);
        let r = match descriptor(&mut cx, &args[0])? {
            Descriptor::File { read: false, .. } => Err(BAD_DESCRIPTOR),
            d => d.file().and_then(|f| {
                let mut buf = vec![0; len.min(64 << 20) as usize];
                let n = f.read_at(&mut buf, offset)?;
                buf.truncate(n);
                let eof = n == 0 && len > 0;
                Ok(Some(Val::Tuple(vec![bytes_val(buf), Val::Bool(eof)])))
            }),
        };
        out.push(result(r));
        Ok(())
    });
    fs.func_new(&format!("{m}write"), |mut cx, args, out| {
        use std::os::unix::fs::FileExt;
        let (data, offset) = (bytes_arg(&args[1])?, u64_arg(&args[2])?);
        let r = descriptor(&mut cx, &args[0])?
            .writable_file()
            .and_then(|f| f.write_at(&data, offset).map_err(Code::from))
            .map(|n| Some(Val::U64(n as u64)));
        out.push(result(r));
        Ok(())
    });
    let et = entries_ty.clone();
    fs.func_new(&format!("{m}read-directory"), move |mut cx, args, out| {
        let r = read_dir(descriptor(&mut cx, &args[0])?);
        out.push(match r {
            Ok(entries) => {
                let parent = Resource::<Descriptor>::new(rep(&args[0])?);
                let e = cx.data_mut().wasi().table.push_child(entries, &parent)?;
                ok(Some(own(&et, e.rep())))
            }
            Err(c) => result(Err(c)),
        });
        Ok(())
    });
    fs.func_new(
        "[method]directory-entry-stream.read-directory-entry",
        |mut cx, args, out| {
            let entries = get_mut::<T, DirEntries>(&mut cx, &args[0])?;
            let next = entries.0.next().map(|(name, ty)| {
                Box::new(Val::Record(vec![
                    ("type".into(), Val::Enum(ty.into())),
                    ("name".into(), Val::String(name)),
                ]))
            });
            out.push(ok(Some(Val::Option(next))));
            Ok(())
        },
    );
    fs.func_new(&format!("{m}create-directory-at"), |mut cx, args, out| {
        let path = string_arg(&args[1])?.to_string();
        let r = descriptor(&mut cx, &args[0])?.create_directory_at(&path);
        out.push(result(r.map(|_| None)));
        Ok(())
    });
    fs.func_new(&format!("{m}stat"), |mut cx, args, out| {
        out.push(result(
            descriptor(&mut cx, &args[0])?.metadata().map(|m| Some(stat_val(&m))),
        ));
        Ok(())
    });
    fs.func_new(&format!("{m}stat-at"), |mut cx, args, out| {
        let (follow, path) = (flag(&args[1], "symlink-follow"), string_arg(&args[2])?.to_string());
        let r = descriptor(&mut cx, &args[0])?.stat_at(follow, &path);
        out.push(result(r.map(|m| Some(stat_val(&m)))));
        Ok(())
    });
    fs.func_new(&format!("{m}set-times-at"), |mut cx, args, out| {
        let (follow, path) = (flag(&args[1], "symlink-follow"), string_arg(&args[2])?.to_string());
        let (atime, mtime) = (new_timestamp(&args[3]), new_timestamp(&args[4]));
        let r = descriptor(&mut cx, &args[0])?.set_times_at(follow, &path, atime, mtime);
        out.push(result(r.map(|_| None)));
        Ok(())
    });
    fs.func_new(&format!("{m}link-at"), |mut cx, args, out| {
        let (old, new) = (string_arg(&args[2])?.to_string(), string_arg(&args[4])?.to_string());
        let dst = descriptor(&mut cx, &args[3])?.clone();
        let r = descriptor(&mut cx, &args[0])?.link_at(flag(&args[1], "symlink-follow"), &old, &dst, &new);
        out.push(result(r.map(|_| None)));
        Ok(())
    });
    let dt = d.clone();
    fs.func_new(&format!("{m}open-at"), move |mut cx, args, out| {
        let (follow, path) = (flag(&args[1], "symlink-follow"), string_arg(&args[2])?.to_string());
        let (o, d) = (OpenFlags::from_val(&args[3]), DescriptorFlags::from_val(&args[4]));
        let r = descriptor(&mut cx, &args[0])?.open_at(follow, &path, o, d);
        out.push(match r {
            Ok(desc) => {
                let r = cx.data_mut().wasi().table.push(desc)?;
                ok(Some(own(&dt, r.rep())))
            }
            Err(c) => result(Err(c)),
        });
        Ok(())
    });
    fs.func_new(&format!("{m}readlink-at"), |mut cx, args, out| {
        let path = string_arg(&args[1])?.to_string();
        let r = descriptor(&mut cx, &args[0])?
            .readlink_at(&path)
            .map(|p| Some(Val::String(p)));
        out.push(result(r));
        Ok(())
    });
    for (name, op) in [("remove-directory-at", 0), ("unlink-file-at", 1)] {
        fs.func_new(&format!("{m}{name}"), move |mut cx, args, out| {
            let path = string_arg(&args[1])?.to_string();
            let d = descriptor(&mut cx, &args[0])?;
            let r = if op == 0 {
                d.remove_directory_at(&path)
            } else {
                d.unlink_file_at(&path)
            };
            out.push(result(r.map(|_| None)));
            Ok(())
        });
    }
    fs.func_new(&format!("{m}rename-at"), |mut cx, args, out| {
        let (old, new) = (string_arg(&args[1])?.to_string(), string_arg(&args[3])?.to_string());
        let dst = descriptor(&mut cx, &args[2])?.clone();
        let r = descriptor(&mut cx, &args[0])?.rename_at(&old, &dst, &new);
        out.push(result(r.map(|_| None)));
        Ok(())
    });
    fs.func_new(&format!("{m}symlink-at"), |mut cx, args, out| {
        let (target, link) = (string_arg(&args[1])?.to_string(), string_arg(&args[2])?.to_string());
        let r = descriptor(&mut cx, &args[0])?.symlink_at(&target, &link);
        out.push(result(r.map(|_| None)));
        Ok(())
    });
    fs.func_new(&format!("{m}is-same-object"), |mut cx, args, out| {
        let a = descriptor(&mut cx, &args[0])?.metadata().ok();
        let b = descriptor(&mut cx, &args[1])?.metadata().ok();
        let same = matches!((a, b), (Some(a), Some(b)) if a.dev() == b.dev() && a.ino() == b.ino());
        out.push(Val::Bool(same));
        Ok(())
    });
    fs.func_new(&format!("{m}metadata-hash"), |mut cx, args, out| {
        out.push(result(
            descriptor(&mut cx, &args[0])?
                .metadata()
                .map(|m| Some(metadata_hash_val(&m))),
        ));
        Ok(())
    });
    fs.func_new(&format!("{m}metadata-hash-at"), |mut cx, args, out| {
        let (follow, path) = (flag(&args[1], "symlink-follow"), string_arg(&args[2])?.to_string());
        let r = descriptor(&mut cx, &args[0])?.stat_at(follow, &path);
        out.push(result(r.map(|m| Some(metadata_hash_val(&m)))));
        Ok(())
    });
    fs.func_new("filesystem-error-code", |mut cx, args, out| {
        // A file stream's error carries its `Code`; other I/O failures
        // (stdio) their `io::Error`.
        let e = get::<T, IoError>(&mut cx, &args[0])?;
        let code = e
            .code::<Code>()
            .map(|c| c.0)
            .or_else(|| e.code::<io::Error>().map(error_code));
        let code = code.map(|c| Box::new(Val::Enum(c.to_string())));
        out.push(Val::Option(code));
        Ok(())
    });

    let dt = d;
    linker
        .instance(&iface("wasi:filesystem/preopens"))
        .func_new("get-directories", move |mut cx, _, out| {
            let ctx = cx.data_mut().wasi();
            let mut list = Vec::new();
            for (desc, guest) in ctx
                .preopens
                .iter()
                .map(|(d, g)| (d.clone(), g.clone()))
                .collect::<Vec<_>>()
            {
                let r = ctx.table.push(desc)?;
                list.push(Val::Tuple(vec![own(&dt, r.rep()), Val::String(guest)]));
            }
            out.push(Val::List(list));
            Ok(())
        });
}

/// An O_APPEND handle to the same open file (via /proc/self/fd, which
/// reopens the inode the descriptor already holds, not a path).
pub(crate) fn reopen_append(file: &std::fs::File) -> Res<std::fs::File> {
    use std::os::fd::AsRawFd;
    let path = format!("/proc/self/fd/{}", file.as_raw_fd());
    Ok(std::fs::OpenOptions::new().append(true).open(path)?)
}

/// A file's `read-via-stream`: read from `pos` on.
struct FileReader {
    file: Arc<std::fs::File>,
    pos: u64,
}

/// A file stream's failure, with its `error-code`.
fn stream_error(e: io::Error) -> StreamError {
    StreamError::Failed(IoError::with_code(e.to_string(), Code(error_code(&e))))
}

impl HostInputStream for FileReader {
    fn read(&mut self, len: u64, _: bool) -> Read {
        use std::os::unix::fs::FileExt;
        let mut buf = vec![0; len.min(1 << 20) as usize];
        Read::Now(match self.file.read_at(&mut buf, self.pos) {
            Ok(0) if !buf.is_empty() => Err(StreamError::Closed),
            Ok(n) => {
                buf.truncate(n);
                self.pos += n as u64;
                Ok(buf)
            }
            Err(e) => Err(stream_error(e)),
        })
    }
}

/// A file's `write-via-stream` (at `pos`) or `append-via-stream`.
struct FileWriter {
    file: Arc<std::fs::File>,
    pos: u64,
    append: bool,
}

impl HostOutputStream for FileWriter {
    fn check_write(&mut self) -> StreamResult<u64> {
        Ok(WRITE_BUDGET)
    }

    fn write(&mut self, data: &[u8]) -> StreamResult<()> {
        use std::io::Write;
        use std::os::unix::fs::FileExt;
        let r = if self.append {
            (&*self.file).write_all(data)
        } else {
            self.file
                .write_all_at(data, self.pos)
                .map(|()| self.pos += data.len() as u64)
        };
        r.map_err(stream_error)
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }
}

/// Pushes a stream opened from a descriptor as its child, or the error.
fn push_stream<T: WasiView, S: Send + 'static>(
    cx: &mut StoreCx<'_, T>,
    r: Res<S>,
    ty: &ResourceType,
    parent: &Val,
) -> Result<Val> {
    Ok(match r {
        Ok(stream) => {
            let parent = Resource::<Descriptor>::new(rep(parent)?);
            let s = cx.data_mut().wasi().table.push_child(stream, &parent)?;
            ok(Some(own(ty, s.rep())))
        }
        Err(c) => result(Err(c)),
    })
}

impl super::WasiCtx {
    /// Gives the guest the host directory `host` as `guest` (read-write, or
    /// read-only).
    ///
    /// # Errors
    /// If the host directory cannot be opened.
    pub fn preopen_dir(mut self, host: impl AsRef<Path>, guest: &str, read_only: bool) -> Result<Self> {
        let host = host.as_ref();
        let dir = Dir::open_ambient_dir(host, cap_std::ambient_authority())
            .map_err(|e| anyhow!("cannot open directory {}: {e}", host.display()))?;
        self.preopens.push((
            Descriptor::Dir {
                dir: Arc::new(dir),
                read_only,
            },
            guest.to_string(),
        ));
        Ok(self)
    }
}
