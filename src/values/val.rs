//! Dynamic component values.

use super::types::ResourceType;
use std::fmt;

/// A component-model value, as seen by the host.
#[derive(Clone, Debug)]
pub enum Val {
    Bool(bool),
    S8(i8),
    U8(u8),
    S16(i16),
    U16(u16),
    S32(i32),
    U32(u32),
    S64(i64),
    U64(u64),
    Float32(f32),
    Float64(f64),
    Char(char),
    String(String),
    /// `list<T>` and fixed-length `list<T, N>`.
    List(Vec<Val>),
    /// A `list<u8>` in compact form: it lowers with one copy. Results lifted
    /// from exports (and arguments of host functions that opted in with
    /// [`crate::Linker::compact_bytes`]) carry `list<u8>` this way, not as a
    /// `Val` per byte. It equals the same bytes as a `List` of `U8`.
    Bytes(Vec<u8>),
    /// A `list` of another scalar type in compact form, as export results
    /// carry it (see [`Scalars`]). It equals the same elements as a `List`.
    Scalars(Scalars),
    Record(Vec<(String, Val)>),
    Tuple(Vec<Val>),
    Variant(String, Option<Box<Val>>),
    Enum(String),
    Option(Option<Box<Val>>),
    Result(Result<Option<Box<Val>>, Option<Box<Val>>>),
    /// The names of the flags that are set.
    Flags(Vec<String>),
    Map(Vec<(Val, Val)>),
    Resource(ResourceAny),
    /// A string on its way between two components, still in the sender's
    /// memory (see [`AdapterString`]). Only adapters make and consume these:
    /// host functions and embedders never see one.
    #[doc(hidden)]
    AdapterString(AdapterString),
}

impl Val {
    /// The elements of a list value, whichever form it has (`List`,
    /// `Bytes` or `Scalars`); `None` for anything else.
    pub fn list_elements(&self) -> Option<Vec<Val>> {
        match self {
            Val::List(vs) => Some(vs.clone()),
            Val::Bytes(bs) => Some(bs.iter().map(|b| Val::U8(*b)).collect()),
            Val::Scalars(xs) => Some(xs.iter().collect()),
            _ => None,
        }
    }
}

impl PartialEq for Val {
    fn eq(&self, other: &Val) -> bool {
        use Val::*;
        match (self, other) {
            (Bytes(b), List(l)) | (List(l), Bytes(b)) => {
                b.len() == l.len() && l.iter().zip(b).all(|(v, b)| matches!(v, U8(x) if x == b))
            }
            (Bool(a), Bool(b)) => a == b,
            (S8(a), S8(b)) => a == b,
            (U8(a), U8(b)) => a == b,
            (S16(a), S16(b)) => a == b,
            (U16(a), U16(b)) => a == b,
            (S32(a), S32(b)) => a == b,
            (U32(a), U32(b)) => a == b,
            (S64(a), S64(b)) => a == b,
            (U64(a), U64(b)) => a == b,
            (Float32(a), Float32(b)) => a == b,
            (Float64(a), Float64(b)) => a == b,
            (Char(a), Char(b)) => a == b,
            (String(a), String(b)) => a == b,
            (List(a), List(b)) | (Tuple(a), Tuple(b)) => a == b,
            (Bytes(a), Bytes(b)) => a == b,
            (Scalars(s), List(l)) | (List(l), Scalars(s)) => {
                s.len() == l.len() && s.iter().zip(l).all(|(a, b)| a == *b)
            }
            (Scalars(a), Scalars(b)) => a == b,
            (Record(a), Record(b)) => a == b,
            (Variant(n, a), Variant(m, b)) => n == m && a == b,
            (Enum(a), Enum(b)) => a == b,
            (Option(a), Option(b)) => a == b,
            (Result(a), Result(b)) => a == b,
            (Flags(a), Flags(b)) => a == b,
            (Map(a), Map(b)) => a == b,
            (Resource(a), Resource(b)) => a == b,
            (AdapterString(a), AdapterString(b)) => a == b,
            _ => false,
        }
    }
}

/// The elements of a `list` of one scalar type other than `u8`, held as a
/// plain vector: a result of 16 M `u32`s costs the host 64 MiB, not a
/// `Val` (tens of bytes) per element.
#[derive(Clone, Debug, PartialEq)]
pub enum Scalars {
    Bool(Vec<bool>),
    S8(Vec<i8>),
    S16(Vec<i16>),
    U16(Vec<u16>),
    S32(Vec<i32>),
    U32(Vec<u32>),
    S64(Vec<i64>),
    U64(Vec<u64>),
    F32(Vec<f32>),
    F64(Vec<f64>),
    Char(Vec<char>),
}

impl Scalars {
    pub fn len(&self) -> usize {
        match self {
            Scalars::Bool(v) => v.len(),
            Scalars::S8(v) => v.len(),
            Scalars::S16(v) => v.len(),
            Scalars::U16(v) => v.len(),
            Scalars::S32(v) => v.len(),
            Scalars::U32(v) => v.len(),
            Scalars::S64(v) => v.len(),
            Scalars::U64(v) => v.len(),
            Scalars::F32(v) => v.len(),
            Scalars::F64(v) => v.len(),
            Scalars::Char(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Element `i` as a value.
    pub fn get(&self, i: usize) -> Option<Val> {
        Some(match self {
            Scalars::Bool(v) => Val::Bool(*v.get(i)?),
            Scalars::S8(v) => Val::S8(*v.get(i)?),
            Scalars::S16(v) => Val::S16(*v.get(i)?),
            Scalars::U16(v) => Val::U16(*v.get(i)?),
            Scalars::S32(v) => Val::S32(*v.get(i)?),
            Scalars::U32(v) => Val::U32(*v.get(i)?),
            Scalars::S64(v) => Val::S64(*v.get(i)?),
            Scalars::U64(v) => Val::U64(*v.get(i)?),
            Scalars::F32(v) => Val::Float32(*v.get(i)?),
            Scalars::F64(v) => Val::Float64(*v.get(i)?),
            Scalars::Char(v) => Val::Char(*v.get(i)?),
        })
    }

    /// The elements as values, one at a time.
    pub fn iter(&self) -> impl Iterator<Item = Val> + '_ {
        (0..self.len()).filter_map(|i| self.get(i))
    }

    /// The elements as the canonical ABI stores them (little-endian).
    pub fn to_le_bytes(&self) -> Vec<u8> {
        fn le<T: Copy, const N: usize>(v: &[T], f: impl Fn(T) -> [u8; N]) -> Vec<u8> {
            v.iter().flat_map(|x| f(*x)).collect()
        }
        match self {
            Scalars::Bool(v) => v.iter().map(|b| *b as u8).collect(),
            Scalars::S8(v) => le(v, i8::to_le_bytes),
            Scalars::S16(v) => le(v, i16::to_le_bytes),
            Scalars::U16(v) => le(v, u16::to_le_bytes),
            Scalars::S32(v) => le(v, i32::to_le_bytes),
            Scalars::U32(v) => le(v, u32::to_le_bytes),
            Scalars::S64(v) => le(v, i64::to_le_bytes),
            Scalars::U64(v) => le(v, u64::to_le_bytes),
            Scalars::F32(v) => le(v, f32::to_le_bytes),
            Scalars::F64(v) => le(v, f64::to_le_bytes),
            Scalars::Char(v) => le(v, |c: char| (c as u32).to_le_bytes()),
        }
    }
}

/// A string an adapter lifted from one component's linear memory, not yet
/// copied: the host never materialises a string it only passes from one
/// component to another. Lowering it into the receiver transcodes memory to
/// memory in bounded chunks (the canonical ABI layer's adapter strings).
///
/// Its fields are private to the crate, so it cannot be made outside it, and
/// lowering one anywhere but in an adapter is an internal error.
#[derive(Clone, Copy, Debug)]
pub struct AdapterString {
    /// The sender's memory.
    pub(crate) memory: wasmi::Memory,
    /// Where the string starts; already checked to be aligned and in bounds.
    pub(crate) ptr: u32,
    /// Its length in code units of `encoding` (the `latin1+utf16` tag
    /// removed).
    pub(crate) units: u32,
    pub(crate) encoding: SourceEncoding,
}

/// The encoding of an [`AdapterString`] in the sender's memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SourceEncoding {
    Utf8,
    Utf16,
    /// `latin1+utf16` with the latin1 representation.
    CompactLatin1,
    /// `latin1+utf16` with the utf16 representation (tagged length).
    CompactUtf16,
}

impl SourceEncoding {
    /// Bytes per code unit.
    pub(crate) fn width(self) -> u32 {
        match self {
            SourceEncoding::Utf8 | SourceEncoding::CompactLatin1 => 1,
            SourceEncoding::Utf16 | SourceEncoding::CompactUtf16 => 2,
        }
    }
}

impl AdapterString {
    /// Its byte length in the sender's memory.
    pub(crate) fn byte_len(&self) -> u64 {
        self.units as u64 * self.encoding.width() as u64
    }
}

/// Strings in transit are never read for comparison: they are unequal, as
/// NaNs are.
impl PartialEq for AdapterString {
    fn eq(&self, _: &Self) -> bool {
        false
    }
}

/// A resource handle passed to or from the host: the resource type, its
/// representation, and whether it is owned (`own<T>`) or borrowed (`borrow<T>`).
#[derive(Clone, Debug, PartialEq)]
pub struct ResourceAny {
    pub ty: ResourceType,
    pub rep: u32,
    pub own: bool,
}

impl Val {
    /// A short name of the value's kind, for mismatch messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Val::Bool(_) => "bool",
            Val::S8(_) => "s8",
            Val::U8(_) => "u8",
            Val::S16(_) => "s16",
            Val::U16(_) => "u16",
            Val::S32(_) => "s32",
            Val::U32(_) => "u32",
            Val::S64(_) => "s64",
            Val::U64(_) => "u64",
            Val::Float32(_) => "f32",
            Val::Float64(_) => "f64",
            Val::Char(_) => "char",
            Val::String(_) => "string",
            Val::List(_) | Val::Bytes(_) | Val::Scalars(_) => "list",
            Val::Record(_) => "record",
            Val::Tuple(_) => "tuple",
            Val::Variant(..) => "variant",
            Val::Enum(_) => "enum",
            Val::Option(_) => "option",
            Val::Result(_) => "result",
            Val::Flags(_) => "flags",
            Val::Map(_) => "map",
            Val::Resource(_) => "resource",
            Val::AdapterString(_) => "string",
        }
    }
}

/// Prints values in the WAVE text form (`"s"`, `[1, 2]`, `{a: 1}`, `some(x)`).
impl fmt::Display for Val {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn seq<'a>(
            f: &mut fmt::Formatter<'_>,
            open: &str,
            close: &str,
            items: impl Iterator<Item = &'a Val>,
        ) -> fmt::Result {
            f.write_str(open)?;
            for (i, v) in items.enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write!(f, "{v}")?;
            }
            f.write_str(close)
        }
        fn payload(f: &mut fmt::Formatter<'_>, name: &str, v: &Option<Box<Val>>) -> fmt::Result {
            match v {
                Some(v) => write!(f, "{name}({v})"),
                None => f.write_str(name),
            }
        }
        match self {
            Val::Bool(b) => write!(f, "{b}"),
            Val::S8(v) => write!(f, "{v}"),
            Val::U8(v) => write!(f, "{v}"),
            Val::S16(v) => write!(f, "{v}"),
            Val::U16(v) => write!(f, "{v}"),
            Val::S32(v) => write!(f, "{v}"),
            Val::U32(v) => write!(f, "{v}"),
            Val::S64(v) => write!(f, "{v}"),
            Val::U64(v) => write!(f, "{v}"),
            Val::Float32(v) => fmt_float(f, *v as f64, v.is_nan()),
            Val::Float64(v) => fmt_float(f, *v, v.is_nan()),
            Val::Char(c) => write!(f, "{:?}", c),
            Val::String(s) => write!(f, "{:?}", s),
            Val::List(vs) => seq(f, "[", "]", vs.iter()),
            Val::Bytes(b) => seq(f, "[", "]", b.iter().map(|b| Val::U8(*b)).collect::<Vec<_>>().iter()),
            Val::Scalars(s) => seq(f, "[", "]", s.iter().collect::<Vec<_>>().iter()),
            Val::Tuple(vs) => seq(f, "(", ")", vs.iter()),
            Val::Record(fields) => {
                f.write_str("{")?;
                for (i, (k, v)) in fields.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{k}: {v}")?;
                }
                f.write_str("}")
            }
            Val::Variant(name, v) => payload(f, name, v),
            Val::Enum(name) => f.write_str(name),
            Val::Option(None) => f.write_str("none"),
            Val::Option(Some(v)) => write!(f, "some({v})"),
            Val::Result(Ok(v)) => payload(f, "ok", v),
            Val::Result(Err(v)) => payload(f, "err", v),
            Val::Flags(names) => write!(f, "{{{}}}", names.join(", ")),
            Val::Map(entries) => {
                f.write_str("{")?;
                for (i, (k, v)) in entries.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{k}: {v}")?;
                }
                f.write_str("}")
            }
            Val::Resource(r) => write!(f, "{}<{}>#{}", if r.own { "own" } else { "borrow" }, r.ty.name(), r.rep),
            Val::AdapterString(s) => write!(f, "<string of {} code units at {:#x} in guest memory>", s.units, s.ptr),
        }
    }
}

fn fmt_float(f: &mut fmt::Formatter<'_>, v: f64, nan: bool) -> fmt::Result {
    if nan {
        f.write_str("nan")
    } else if v.is_infinite() {
        f.write_str(if v > 0.0 { "inf" } else { "-inf" })
    } else {
        write!(f, "{v}")
    }
}
