//! `errno`: preview 1's error codes, and how the P2 hosts' failures map to
//! them — a `wasi:filesystem` `error-code` ([`Code`]), an OS error, a stream
//! error — as wasmtime's `p1.rs` maps them. A failure that is the guest's
//! fault in a way preview 1 calls a trap (a pointer out of bounds) ends
//! the call with a trap instead.

use crate::canon::trap::{HostFault, Trap};
use crate::wasi::filesystem::{error_code, Code};
use crate::wasi::io::{IoError, StreamError};

/// `errno` (witx `typenames.witx`), with its `u16` tag.
#[allow(missing_docs)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u16)]
pub enum Errno {
    Success = 0,
    TooBig = 1,
    Acces = 2,
    Addrinuse = 3,
    Addrnotavail = 4,
    Afnosupport = 5,
    Again = 6,
    Already = 7,
    Badf = 8,
    Badmsg = 9,
    Busy = 10,
    Canceled = 11,
    Child = 12,
    Connaborted = 13,
    Connrefused = 14,
    Connreset = 15,
    Deadlk = 16,
    Destaddrreq = 17,
    Dom = 18,
    Dquot = 19,
    Exist = 20,
    Fault = 21,
    Fbig = 22,
    Hostunreach = 23,
    Idrm = 24,
    Ilseq = 25,
    Inprogress = 26,
    Intr = 27,
    Inval = 28,
    Io = 29,
    Isconn = 30,
    Isdir = 31,
    Loop = 32,
    Mfile = 33,
    Mlink = 34,
    Msgsize = 35,
    Multihop = 36,
    Nametoolong = 37,
    Netdown = 38,
    Netreset = 39,
    Netunreach = 40,
    Nfile = 41,
    Nobufs = 42,
    Nodev = 43,
    Noent = 44,
    Noexec = 45,
    Nolck = 46,
    Nolink = 47,
    Nomem = 48,
    Nomsg = 49,
    Noprotoopt = 50,
    Nospc = 51,
    Nosys = 52,
    Notconn = 53,
    Notdir = 54,
    Notempty = 55,
    Notrecoverable = 56,
    Notsock = 57,
    Notsup = 58,
    Notty = 59,
    Nxio = 60,
    Overflow = 61,
    Ownerdead = 62,
    Perm = 63,
    Pipe = 64,
    Proto = 65,
    Protonosupport = 66,
    Prototype = 67,
    Range = 68,
    Rofs = 69,
    Spipe = 70,
    Srch = 71,
    Stale = 72,
    Timedout = 73,
    Txtbsy = 74,
    Xdev = 75,
    Notcapable = 76,
}

/// Every case of `wasi:filesystem/types.error-code`, and its errno.
pub(crate) const FILESYSTEM_CODES: [(&str, Errno); 37] = [
    ("access", Errno::Acces),
    ("would-block", Errno::Again),
    ("already", Errno::Already),
    ("bad-descriptor", Errno::Badf),
    ("busy", Errno::Busy),
    ("deadlock", Errno::Deadlk),
    ("quota", Errno::Dquot),
    ("exist", Errno::Exist),
    ("file-too-large", Errno::Fbig),
    ("illegal-byte-sequence", Errno::Ilseq),
    ("in-progress", Errno::Inprogress),
    ("interrupted", Errno::Intr),
    ("invalid", Errno::Inval),
    ("io", Errno::Io),
    ("is-directory", Errno::Isdir),
    ("loop", Errno::Loop),
    ("too-many-links", Errno::Mlink),
    ("message-size", Errno::Msgsize),
    ("name-too-long", Errno::Nametoolong),
    ("no-device", Errno::Nodev),
    ("no-entry", Errno::Noent),
    ("no-lock", Errno::Nolck),
    ("insufficient-memory", Errno::Nomem),
    ("insufficient-space", Errno::Nospc),
    ("not-directory", Errno::Notdir),
    ("not-empty", Errno::Notempty),
    ("not-recoverable", Errno::Notrecoverable),
    ("unsupported", Errno::Notsup),
    ("no-tty", Errno::Notty),
    ("no-such-device", Errno::Nxio),
    ("overflow", Errno::Overflow),
    ("not-permitted", Errno::Perm),
    ("pipe", Errno::Pipe),
    ("read-only", Errno::Rofs),
    ("invalid-seek", Errno::Spipe),
    ("text-file-busy", Errno::Txtbsy),
    ("cross-device", Errno::Xdev),
];

impl From<Code> for Errno {
    fn from(Code(name): Code) -> Self {
        FILESYSTEM_CODES
            .iter()
            .find(|(n, _)| *n == name)
            .map_or(Errno::Io, |(_, e)| *e)
    }
}

impl From<&std::io::Error> for Errno {
    fn from(e: &std::io::Error) -> Self {
        Code(error_code(e)).into()
    }
}

/// A trap with `message`, named after the interface.
pub(crate) fn trap(message: impl Into<String>) -> wasmi::Error {
    wasmi::Error::host(Trap(format!("wasi_snapshot_preview1: {}", message.into())))
}

/// Why a preview 1 call did not succeed: an errno for the guest, or a trap.
#[derive(Debug)]
pub(crate) enum Error {
    Errno(Errno),
    Trap(wasmi::Error),
}

impl Error {
    /// A trap with `message` (named after the interface, as wasmtime's
    /// messages are).
    pub fn trap(message: impl Into<String>) -> Self {
        Error::Trap(trap(message))
    }

    /// A host failure that ends the call (not the guest's doing).
    pub fn host(e: anyhow::Error) -> Self {
        Error::Trap(wasmi::Error::host(HostFault(e)))
    }
}

impl From<Errno> for Error {
    fn from(e: Errno) -> Self {
        Error::Errno(e)
    }
}

impl From<Code> for Error {
    fn from(c: Code) -> Self {
        Error::Errno(c.into())
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Errno((&e).into())
    }
}

impl From<StreamError> for Error {
    /// As wasmtime: a closed stream is `io`; a failure carries its group's
    /// code (a file's [`Code`], an OS error).
    fn from(e: StreamError) -> Self {
        match e {
            StreamError::Closed => Errno::Io.into(),
            StreamError::Failed(e) => io_error(&e).into(),
        }
    }
}

/// The errno of a `wasi:io/error`.
fn io_error(e: &IoError) -> Errno {
    if let Some(c) = e.code::<Code>() {
        return (*c).into();
    }
    e.code::<std::io::Error>().map_or(Errno::Io, Errno::from)
}

pub(crate) type Result<T, E = Error> = std::result::Result<T, E>;

/// The value a preview 1 function returns to the guest: `errno`, or the
/// trap that ends the call.
pub(crate) fn ret(r: Result<()>) -> std::result::Result<i32, wasmi::Error> {
    match r {
        Ok(()) => Ok(Errno::Success as i32),
        Err(Error::Errno(e)) => Ok(e as i32),
        Err(Error::Trap(t)) => Err(t),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every case of the vendored `error-code` enum has an errno of its own
    /// (none falls back to `io` unless it is `io`).
    #[test]
    fn every_filesystem_error_code_maps() {
        let mut resolve = wit_parser::Resolve::default();
        let wit = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/c_http/wit");
        resolve.push_dir(&wit).unwrap();
        let mut checked = 0;
        for (_, ty) in resolve.types.iter() {
            let (Some(name), wit_parser::TypeDefKind::Enum(e)) = (&ty.name, &ty.kind) else {
                continue;
            };
            let wit_parser::TypeOwner::Interface(owner) = ty.owner else {
                continue;
            };
            let iface = resolve.id_of(owner).unwrap_or_default();
            if name != "error-code" || !iface.starts_with("wasi:filesystem/types") {
                continue;
            }
            for case in &e.cases {
                let n: &'static str = Box::leak(case.name.clone().into_boxed_str());
                let errno = Errno::from(Code(n));
                assert!(
                    FILESYSTEM_CODES.iter().any(|(c, _)| *c == case.name),
                    "`{}` has no errno",
                    case.name
                );
                assert!(errno != Errno::Io || case.name == "io", "`{}` maps to io", case.name);
                checked += 1;
            }
        }
        assert!(checked >= FILESYSTEM_CODES.len(), "only {checked} cases checked");
    }

    #[test]
    fn os_errors_map_through_the_filesystem_codes() {
        let e = std::io::Error::from_raw_os_error(libc::ENOENT);
        assert_eq!(Errno::from(&e), Errno::Noent);
        let e = std::io::Error::from_raw_os_error(libc::EXDEV);
        assert_eq!(Errno::from(&e), Errno::Xdev);
        let e = std::io::Error::new(std::io::ErrorKind::PermissionDenied, "a path led outside");
        assert_eq!(Errno::from(&e), Errno::Perm);
    }
}
