//! Strings: loading in each encoding, and storing with transcoding
//! (CanonicalABI.md "Loading" / "Storing" strings). Host strings are UTF-8,
//! so every store from the host starts from a UTF-8 source.
//!
//! A string one component passes to another never becomes a host `String`:
//! the adapter lifts it as a [`Val::AdapterString`] (where it is in the
//! sender's memory) and the receiver's lowering transcodes memory to memory
//! through a bounded bounce buffer, with wasmtime's adapter semantics (FACT's
//! `translate_string` and its host transcoders): the receiver's `realloc` runs
//! before any byte is transcoded, the byte length in the receiver is limited
//! to 2^31-1, and a transcode that needs more room reallocates.

use super::{trap, Cx, Site, StringEncoding, Trap, MAX_ADAPTER_STRING_BYTE_LENGTH, MAX_STRING_BYTE_LENGTH};
use crate::values::val::{AdapterString, SourceEncoding};
use crate::values::Val;
use wasmi::AsContext;

const UTF16_TAG: u32 = 1 << 31;

/// Lifts a string: into a host `String` at the host site; in an adapter, as
/// an [`AdapterString`] for the receiver to copy from.
pub fn lift_string<T>(cx: &mut Cx<'_, '_, T>, ptr: u32, tagged_units: u32) -> Result<Val, Trap> {
    Ok(match cx.site {
        Site::Host => Val::String(load_string_from_range(cx, ptr, tagged_units)?),
        Site::Adapter => Val::AdapterString(load_adapter_string(cx, ptr, tagged_units)?),
    })
}

pub fn load_string_from_range<T>(cx: &mut Cx<'_, '_, T>, ptr: u32, tagged_units: u32) -> Result<String, Trap> {
    enum Enc {
        Utf8,
        Utf16,
        Latin1,
    }
    let (align, byte_len, enc) = match cx.opts.encoding {
        StringEncoding::Utf8 => (1, tagged_units as u64, Enc::Utf8),
        StringEncoding::Utf16 => (2, 2 * tagged_units as u64, Enc::Utf16),
        StringEncoding::CompactUtf16 if tagged_units & UTF16_TAG != 0 => {
            (2, 2 * (tagged_units ^ UTF16_TAG) as u64, Enc::Utf16)
        }
        StringEncoding::CompactUtf16 => (2, tagged_units as u64, Enc::Latin1),
    };
    if byte_len > MAX_STRING_BYTE_LENGTH {
        return Err(trap!("string byte length {byte_len} exceeds the maximum"));
    }
    cx.check_range(ptr, align, byte_len, "string")?;
    let bytes = &cx.mem()?[ptr as usize..(ptr as u64 + byte_len) as usize];
    match enc {
        Enc::Utf8 => std::str::from_utf8(bytes).map(str::to_owned).map_err(|e| trap!("{e}")),
        Enc::Utf16 => {
            let units = bytes.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]]));
            char::decode_utf16(units)
                .collect::<Result<String, _>>()
                .map_err(|_| trap!("invalid utf-16"))
        }
        Enc::Latin1 => Ok(bytes.iter().map(|&b| b as char).collect()),
    }
}

/// `store_string_into_range`: returns (ptr, tagged code units).
pub fn store_string_into_range<T>(cx: &mut Cx<'_, '_, T>, s: &str) -> Result<(u32, u32), wasmi::Error> {
    match cx.opts.encoding {
        StringEncoding::Utf8 => store_string_copy(cx, s),
        StringEncoding::Utf16 => store_utf8_to_utf16(cx, s),
        StringEncoding::CompactUtf16 => store_string_to_latin1_or_utf16(cx, s),
    }
}

fn src_units(s: &str) -> Result<u32, Trap> {
    u32::try_from(s.len())
        .ok()
        .filter(|&n| n as u64 <= MAX_STRING_BYTE_LENGTH)
        .ok_or_else(|| trap!("string too long to lower"))
}

fn store_string_copy<T>(cx: &mut Cx<'_, '_, T>, s: &str) -> Result<(u32, u32), wasmi::Error> {
    let len = src_units(s)?;
    let ptr = cx.allocate(1, len)?;
    cx.check_alloc(ptr, 1, len as u64, "string")?;
    cx.write(ptr, s.as_bytes())?;
    Ok((ptr, len))
}

fn store_utf8_to_utf16<T>(cx: &mut Cx<'_, '_, T>, s: &str) -> Result<(u32, u32), wasmi::Error> {
    let worst = 2 * src_units(s)?;
    let mut ptr = cx.allocate(2, worst)?;
    cx.check_alloc(ptr, 2, worst as u64, "string")?;
    let encoded: Vec<u8> = s.encode_utf16().flat_map(u16::to_le_bytes).collect();
    cx.write(ptr, &encoded)?;
    let len = encoded.len() as u32;
    if len < worst {
        ptr = cx.reallocate(ptr, worst, 2, len)?;
        cx.check_alloc(ptr, 2, len as u64, "string")?;
    }
    Ok((ptr, len / 2))
}

fn store_string_to_latin1_or_utf16<T>(cx: &mut Cx<'_, '_, T>, s: &str) -> Result<(u32, u32), wasmi::Error> {
    let units = src_units(s)?;
    let mut ptr = cx.allocate(2, units)?;
    cx.check_alloc(ptr, 2, units as u64, "string")?;
    if s.chars().all(|c| (c as u32) < 0x100) {
        let latin1: Vec<u8> = s.chars().map(|c| c as u8).collect();
        cx.write(ptr, &latin1)?;
        let len = latin1.len() as u32;
        if len < units {
            ptr = cx.reallocate(ptr, units, 2, len)?;
            cx.check_alloc(ptr, 2, len as u64, "string")?;
        }
        return Ok((ptr, len));
    }
    let worst = 2 * units;
    ptr = cx.reallocate(ptr, units, 2, worst)?;
    cx.check_alloc(ptr, 2, worst as u64, "string")?;
    let encoded: Vec<u8> = s.encode_utf16().flat_map(u16::to_le_bytes).collect();
    cx.write(ptr, &encoded)?;
    let len = encoded.len() as u32;
    if len < worst {
        ptr = cx.reallocate(ptr, worst, 2, len)?;
        cx.check_alloc(ptr, 2, len as u64, "string")?;
    }
    Ok((ptr, (len / 2) | UTF16_TAG))
}

// Component to component (wasmtime's `crates/environ/src/fact/trampoline.rs`
// and the transcoders of `crates/wasmtime/src/runtime/vm/component/libcalls.rs`).

/// Bytes of the sender's memory read per step: the bounce buffer. A chunk
/// never splits a character unless the string ends there.
const CHUNK: usize = 1 << 16;

fn out_of_bounds() -> Trap {
    trap!("string content out-of-bounds")
}

fn invalid_utf8() -> Trap {
    trap!("invalid utf8 encoding")
}

fn invalid_utf16() -> Trap {
    trap!("invalid utf16 encoding")
}

/// `translate_string`, the sender's side: where the string is, its pointer
/// checked for alignment (2 for both `latin1+utf16` forms) and bounds.
fn load_adapter_string<T>(cx: &Cx<'_, '_, T>, ptr: u32, tagged_units: u32) -> Result<AdapterString, Trap> {
    let (units, encoding, align) = match cx.opts.encoding {
        StringEncoding::Utf8 => (tagged_units, SourceEncoding::Utf8, 1),
        StringEncoding::Utf16 => (tagged_units, SourceEncoding::Utf16, 2),
        StringEncoding::CompactUtf16 if tagged_units & UTF16_TAG != 0 => {
            (tagged_units ^ UTF16_TAG, SourceEncoding::CompactUtf16, 2)
        }
        StringEncoding::CompactUtf16 => (tagged_units, SourceEncoding::CompactLatin1, 2),
    };
    let s = AdapterString {
        memory: cx.memory()?,
        ptr,
        units,
        encoding,
    };
    cx.check_range(ptr, align, s.byte_len(), "string")?;
    Ok(s)
}

/// A fixed encoding in the receiver (FACT's `FixedEncoding`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Fixed {
    Utf8,
    Utf16,
    Latin1,
}

impl Fixed {
    fn width(self) -> u32 {
        match self {
            Fixed::Utf8 | Fixed::Latin1 => 1,
            Fixed::Utf16 => 2,
        }
    }
    fn align(self) -> u32 {
        match self {
            Fixed::Utf8 => 1,
            Fixed::Utf16 | Fixed::Latin1 => 2,
        }
    }
}

/// `translate_string`, the receiver's side: stores a string in transit
/// into the receiver's memory; returns (ptr, tagged code units).
pub fn store_adapter_string<T>(cx: &mut Cx<'_, '_, T>, src: &AdapterString) -> Result<(u32, u32), wasmi::Error> {
    use SourceEncoding as S;
    use StringEncoding as D;
    if cx.site != Site::Adapter {
        return Err(trap!("internal error: a string in transit between components reached a host lowering").into());
    }
    match (src.encoding, cx.opts.encoding) {
        (S::Utf8, D::Utf8) => string_copy(cx, src, Fixed::Utf8),
        (S::Utf8, D::Utf16) => string_utf8_to_utf16(cx, src),
        (S::Utf8 | S::Utf16, D::CompactUtf16) => string_to_compact(cx, src),
        (S::Utf16 | S::CompactUtf16 | S::CompactLatin1, D::Utf8) => string_deflate_to_utf8(cx, src),
        (S::Utf16 | S::CompactUtf16 | S::CompactLatin1, D::Utf16) => string_copy(cx, src, Fixed::Utf16),
        (S::CompactUtf16, D::CompactUtf16) => string_compact_utf16_to_compact(cx, src),
        (S::CompactLatin1, D::CompactUtf16) => string_copy(cx, src, Fixed::Latin1),
    }
}

/// `validate_string_length`: `units` code units must fit the maximum byte
/// length at `width` bytes each.
fn validate_string_length(units: u32, width: u32) -> Result<(), Trap> {
    if units > MAX_ADAPTER_STRING_BYTE_LENGTH / width {
        return Err(out_of_bounds());
    }
    Ok(())
}

/// `malloc`: the receiver's `realloc` for a fresh `size`-byte block, whose
/// result must be aligned and in bounds.
fn malloc<T>(cx: &mut Cx<'_, '_, T>, align: u32, size: u32) -> Result<u32, wasmi::Error> {
    realloc(cx, 0, 0, align, size)
}

/// `realloc`, checked as [`malloc`].
fn realloc<T>(cx: &mut Cx<'_, '_, T>, ptr: u32, old: u32, align: u32, size: u32) -> Result<u32, wasmi::Error> {
    let ptr = cx.reallocate(ptr, old, align, size)?;
    cx.check_alloc(ptr, align, size as u64, "string")?;
    Ok(ptr)
}

/// `string_copy`: one pass into a block sized up front, as the receiver's
/// code units are as many as the sender's.
fn string_copy<T>(cx: &mut Cx<'_, '_, T>, src: &AdapterString, dst: Fixed) -> Result<(u32, u32), wasmi::Error> {
    let len = src.units;
    validate_string_length(len, dst.width())?;
    let ptr = malloc(cx, dst.align(), len * dst.width())?;
    match (src.encoding, dst) {
        (SourceEncoding::Utf8, _) => pump(cx, src, 0, ptr, |c, out| {
            out.extend_from_slice(utf8(c)?.as_bytes());
            Ok(true)
        })?,
        (SourceEncoding::CompactLatin1, Fixed::Latin1) => pump(cx, src, 0, ptr, |c, out| {
            out.extend_from_slice(c);
            Ok(true)
        })?,
        (SourceEncoding::CompactLatin1, _) => pump(cx, src, 0, ptr, |c, out| {
            out.extend(c.iter().flat_map(|&b| [b, 0]));
            Ok(true)
        })?,
        (_, _) => pump(cx, src, 0, ptr, |c, out| {
            validate_utf16(c)?;
            out.extend_from_slice(c);
            Ok(true)
        })?,
    };
    Ok((ptr, len))
}

/// `string_deflate_to_utf8` (latin1 or utf16 → utf8): a block of one byte
/// per code unit, filled while the characters are ASCII; at the first that is
/// not, the worst case (2 or 3 bytes per unit) is reallocated, the rest
/// transcoded, and the block shrunk to fit.
fn string_deflate_to_utf8<T>(cx: &mut Cx<'_, '_, T>, src: &AdapterString) -> Result<(u32, u32), wasmi::Error> {
    let len = src.units;
    let latin1 = src.encoding == SourceEncoding::CompactLatin1;
    validate_string_length(len, src.encoding.width())?;
    let mut ptr = malloc(cx, 1, len)?;
    let mut read = 0u32;
    let written = if latin1 {
        pump(cx, src, 0, ptr, |c, out| {
            let ascii = c.iter().position(|&b| b >= 0x80).unwrap_or(c.len());
            out.extend_from_slice(&c[..ascii]);
            read += ascii as u32;
            Ok(ascii == c.len())
        })?
    } else {
        pump(cx, src, 0, ptr, |c, out| {
            for ch in char::decode_utf16(units(c)) {
                let ch = ch.map_err(|_| invalid_utf16())?;
                if !ch.is_ascii() {
                    return Ok(false);
                }
                out.push(ch as u8);
                read += 1;
            }
            Ok(true)
        })?
    };
    if read == len {
        return Ok((ptr, written));
    }
    let factor = if latin1 { 2 } else { 3 };
    validate_string_length(len, factor)?;
    let size = len * factor;
    ptr = realloc(cx, ptr, len, 1, size)?;
    let rest = if latin1 {
        pump(cx, src, read, ptr + written, |c, out| {
            let mut buf = [0; 2];
            for &b in c {
                out.extend_from_slice(char::from(b).encode_utf8(&mut buf).as_bytes());
            }
            Ok(true)
        })?
    } else {
        pump(cx, src, read, ptr + written, |c, out| {
            let mut buf = [0; 4];
            for ch in char::decode_utf16(units(c)) {
                let ch = ch.map_err(|_| invalid_utf16())?;
                out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
            }
            Ok(true)
        })?
    };
    let total = written + rest;
    if total != size {
        ptr = realloc(cx, ptr, size, 1, total)?;
    }
    Ok((ptr, total))
}

/// `string_utf8_to_utf16`: the worst case (two bytes per utf8 byte) up
/// front, shrunk to fit.
fn string_utf8_to_utf16<T>(cx: &mut Cx<'_, '_, T>, src: &AdapterString) -> Result<(u32, u32), wasmi::Error> {
    let len = src.units;
    validate_string_length(len, 2)?;
    let size = 2 * len;
    let mut ptr = malloc(cx, 2, size)?;
    let n = pump(cx, src, 0, ptr, utf8_to_utf16)? / 2;
    if n != len {
        ptr = realloc(cx, ptr, size, 2, 2 * n)?;
    }
    Ok((ptr, n))
}

/// `string_compact_utf16_to_compact` (utf16-tagged `latin1+utf16` →
/// `latin1+utf16`): a utf16-sized block; if every character is latin1 the
/// string is stored as latin1 and the block shrunk.
fn string_compact_utf16_to_compact<T>(cx: &mut Cx<'_, '_, T>, src: &AdapterString) -> Result<(u32, u32), wasmi::Error> {
    let len = src.units;
    validate_string_length(len, 2)?;
    let size = 2 * len;
    let mut ptr = malloc(cx, 2, size)?;
    let mut latin1 = true;
    pump(cx, src, 0, ptr, |c, _| {
        validate_utf16(c)?;
        latin1 &= units(c).all(|u| u < 0x100);
        Ok(true)
    })?;
    if !latin1 {
        pump(cx, src, 0, ptr, |c, out| {
            out.extend_from_slice(c);
            Ok(true)
        })?;
        return Ok((ptr, len | UTF16_TAG));
    }
    pump(cx, src, 0, ptr, |c, out| {
        out.extend(units(c).map(|u| u as u8));
        Ok(true)
    })?;
    ptr = realloc(cx, ptr, size, 2, len)?;
    Ok((ptr, len))
}

/// `string_to_compact` (utf8 or utf16 → `latin1+utf16`): a block of one
/// byte per code unit, filled while the characters are latin1; at the first
/// that is not, the block is reallocated to two bytes per unit, the latin1
/// so far inflated in place, the rest transcoded as utf16 and the block
/// shrunk to fit.
fn string_to_compact<T>(cx: &mut Cx<'_, '_, T>, src: &AdapterString) -> Result<(u32, u32), wasmi::Error> {
    let len = src.units;
    let from_utf8 = src.encoding == SourceEncoding::Utf8;
    validate_string_length(len, src.encoding.width())?;
    let mut ptr = malloc(cx, 2, len)?;
    let mut read = 0u32;
    let written = if from_utf8 {
        pump(cx, src, 0, ptr, |c, out| {
            let n = utf8_to_latin1(c, out);
            read += n as u32;
            Ok(n == c.len())
        })?
    } else {
        pump(cx, src, 0, ptr, |c, out| {
            for u in units(c) {
                let Ok(b) = u8::try_from(u) else { return Ok(false) };
                out.push(b);
                read += 1;
            }
            Ok(true)
        })?
    };
    if read == len {
        if written != len {
            ptr = realloc(cx, ptr, len, 2, written)?;
        }
        return Ok((ptr, written));
    }
    if from_utf8 {
        validate_string_length(len, 2)?;
    }
    let size = 2 * len;
    ptr = realloc(cx, ptr, len, 2, size)?;
    inflate_latin1(cx, ptr, written)?;
    let rest = if from_utf8 {
        pump(cx, src, read, ptr + 2 * written, utf8_to_utf16)?
    } else {
        pump(cx, src, read, ptr + 2 * written, |c, out| {
            validate_utf16(c)?;
            out.extend_from_slice(c);
            Ok(true)
        })?
    };
    let n = written + rest / 2;
    if n != len {
        ptr = realloc(cx, ptr, size, 2, 2 * n)?;
    }
    Ok((ptr, n | UTF16_TAG))
}

/// Runs a transcoder over the sender's string from code unit `from` on, a
/// chunk at a time, writing what it produces to the receiver's memory from
/// `dst` on; `step` returns `false` to stop early. Returns the bytes written.
fn pump<T>(
    cx: &mut Cx<'_, '_, T>,
    src: &AdapterString,
    from: u32,
    dst: u32,
    mut step: impl FnMut(&[u8], &mut Vec<u8>) -> Result<bool, Trap>,
) -> Result<u32, wasmi::Error> {
    let width = src.encoding.width() as u64;
    let end = src.byte_len();
    let mut pos = from as u64 * width;
    let mut written = 0u64;
    let (mut chunk, mut out) = (Vec::new(), Vec::new());
    while pos < end {
        let n = (end - pos).min(CHUNK as u64) as usize;
        let start = src.ptr as usize + pos as usize;
        let mem = src.memory.data(cx.store.as_context());
        chunk.clear();
        chunk.extend_from_slice(mem.get(start..start + n).ok_or_else(out_of_bounds)?);
        let keep = if pos + n as u64 == end {
            n
        } else {
            whole_characters(&chunk, src.encoding)
        };
        out.clear();
        let more = step(&chunk[..keep], &mut out)?;
        let at = u32::try_from(dst as u64 + written).map_err(|_| out_of_bounds())?;
        cx.write(at, &out)?;
        written += out.len() as u64;
        if !more {
            break;
        }
        pos += keep as u64;
    }
    Ok(written as u32)
}

/// The length of the longest prefix of `chunk` that ends on a character
/// boundary: a utf8 sequence or a utf16 surrogate pair cut by the chunk's end
/// is left for the next chunk.
fn whole_characters(chunk: &[u8], encoding: SourceEncoding) -> usize {
    let n = chunk.len();
    match encoding {
        SourceEncoding::CompactLatin1 => n,
        SourceEncoding::Utf8 => {
            // The start of the last sequence: at most three continuation
            // bytes back.
            let lead = (n.saturating_sub(4)..n).rev().find(|&i| chunk[i] & 0xc0 != 0x80);
            match lead {
                Some(i) if i + utf8_sequence_len(chunk[i]) > n => i,
                _ => n,
            }
        }
        SourceEncoding::Utf16 | SourceEncoding::CompactUtf16 => {
            let high_surrogate_last =
                n >= 2 && (0xd800..0xdc00).contains(&u16::from_le_bytes([chunk[n - 2], chunk[n - 1]]));
            if high_surrogate_last {
                n - 2
            } else {
                n
            }
        }
    }
}

/// The length a utf8 lead byte announces (1 for a byte that cannot lead).
fn utf8_sequence_len(lead: u8) -> usize {
    match lead {
        0xc0..=0xdf => 2,
        0xe0..=0xef => 3,
        0xf0..=0xf7 => 4,
        _ => 1,
    }
}

/// Little-endian utf16 code units.
fn units(c: &[u8]) -> impl Iterator<Item = u16> + '_ {
    c.chunks_exact(2).map(|u| u16::from_le_bytes([u[0], u[1]]))
}

fn utf8(c: &[u8]) -> Result<&str, Trap> {
    std::str::from_utf8(c).map_err(|_| invalid_utf8())
}

fn validate_utf16(c: &[u8]) -> Result<(), Trap> {
    char::decode_utf16(units(c)).try_for_each(|ch| ch.map(drop).map_err(|_| invalid_utf16()))
}

/// utf8 → utf16, the whole chunk (wasmtime's `utf8_to_utf16`).
fn utf8_to_utf16(c: &[u8], out: &mut Vec<u8>) -> Result<bool, Trap> {
    out.extend(utf8(c)?.encode_utf16().flat_map(u16::to_le_bytes));
    Ok(true)
}

/// The latin1 prefix of utf8 bytes (encoding_rs's `utf8_latin1_up_to`: ASCII,
/// or `C2`/`C3` and a continuation byte), pushed as latin1; returns the utf8
/// bytes it covers.
fn utf8_to_latin1(c: &[u8], out: &mut Vec<u8>) -> usize {
    let mut i = 0;
    while i < c.len() {
        match c[i] {
            b @ 0..=0x7f => {
                out.push(b);
                i += 1;
            }
            b @ (0xc2 | 0xc3) if c.get(i + 1).is_some_and(|n| n & 0xc0 == 0x80) => {
                out.push((b & 0x1f) << 6 | (c[i + 1] & 0x3f));
                i += 2;
            }
            _ => break,
        }
    }
    i
}

/// Inflates the `n` latin1 bytes at `ptr` in the receiver's memory to utf16
/// in place, from the end, a chunk at a time.
fn inflate_latin1<T>(cx: &mut Cx<'_, '_, T>, ptr: u32, n: u32) -> Result<(), Trap> {
    let mut end = n as usize;
    let mut out = Vec::new();
    while end > 0 {
        let start = end.saturating_sub(CHUNK);
        let from = ptr as usize;
        let bytes = cx.mem()?.get(from + start..from + end).ok_or_else(out_of_bounds)?;
        out.clear();
        out.extend(bytes.iter().flat_map(|&b| [b, 0]));
        cx.write(ptr + 2 * start as u32, &out)?;
        end = start;
    }
    Ok(())
}
