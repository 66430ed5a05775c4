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
pub(crate) fn lift_string<T>(cx: &mut Cx<'_, '_, T>, ptr: u32, tagged_units: u32) -> Result<Val, Trap> {
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
    cx.charge_lift(byte_len)?;
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
pub(crate) fn store_adapter_string<T>(cx: &mut Cx<'_, '_, T>, src: &AdapterString) -> Result<(u32, u32), wasmi::Error> {
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
        let mem = crate::canon::state::visible(src.memory, cx.store.as_context());
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Component, Engine, Linker, Store};

    /// A bump `realloc` from `$next` that grows memory as needed and keeps the
    /// old contents; with `log`, it first appends its four arguments to the
    /// log at 1024 (read with the callee's `log` export).
    fn bump_realloc(log: bool) -> String {
        let log = if log {
            "(call $log (local.get $old)) (call $log (local.get $osize)) (call $log (local.get $align)) (call $log (local.get $nsize))"
        } else {
            ""
        };
        format!(
            r#"(func (export "realloc") (param $old i32) (param $osize i32) (param $align i32) (param $nsize i32) (result i32)
        (local $r i32)
        {log}
        (local.set $r (i32.and (i32.add (global.get $next) (i32.sub (local.get $align) (i32.const 1)))
                               (i32.sub (i32.const 0) (local.get $align))))
        (global.set $next (i32.add (local.get $r) (local.get $nsize)))
        (if (i32.gt_u (global.get $next) (i32.shl (memory.size) (i32.const 16)))
          (then (if (i32.eq (i32.const -1) (memory.grow (i32.shr_u (i32.add (i32.sub (global.get $next)
                    (i32.shl (memory.size) (i32.const 16))) (i32.const 65535)) (i32.const 16))))
                  (then unreachable))))
        (if (local.get $old) (then (memory.copy (local.get $r) (local.get $old)
          (select (local.get $osize) (local.get $nsize) (i32.lt_u (local.get $osize) (local.get $nsize))))))
        (local.get $r))"#
        )
    }

    /// `$Callee` lifts `echo(s) -> s` with `enc`, and `log` (its realloc calls
    /// as (old, old size, align, new size) quadruples); `realloc` replaces
    /// the logging bump allocator.
    fn callee(enc: &str, realloc: Option<&str>) -> String {
        let realloc = realloc.map_or_else(|| bump_realloc(true), str::to_owned);
        format!(
            r#"(component $Callee
    (core module $M
      (memory (export "mem") 1)
      (global $next (mut i32) (i32.const 4096))
      (global $logged (mut i32) (i32.const 0))
      (func $log (param i32)
        (if (i32.lt_u (global.get $logged) (i32.const 3072))
          (then (i32.store (i32.add (i32.const 1024) (global.get $logged)) (local.get 0))
                (global.set $logged (i32.add (global.get $logged) (i32.const 4))))))
      {realloc}
      (func (export "echo") (param i32 i32) (result i32)
        (i32.store (i32.const 0) (local.get 0))
        (i32.store (i32.const 4) (local.get 1))
        (i32.const 0))
      (func (export "log") (result i32)
        (i32.store (i32.const 8) (i32.const 1024))
        (i32.store (i32.const 12) (i32.shr_u (global.get $logged) (i32.const 2)))
        (i32.const 8)))
    (core instance $m (instantiate $M))
    (func (export "echo") (param "s" string) (result string)
      (canon lift (core func $m "echo") (memory (core memory $m "mem")) (realloc (core func $m "realloc"))
        string-encoding={enc}))
    (func (export "log") (result (list u32)) (canon lift (core func $m "log") (memory (core memory $m "mem")))))"#
        )
    }

    /// `$Caller` lowers `echo` with `enc`: `run(s)` passes a host string
    /// through it and returns the echo, `raw(ptr, units)` passes whatever is
    /// at `ptr` in its memory (of `pages` pages, filled with `poke`).
    fn caller(enc: &str, pages: u32) -> String {
        let realloc = bump_realloc(false);
        format!(
            r#"(component $Caller
    (import "echo" (func $echo (param "s" string) (result string)))
    (core module $Libc
      (memory (export "mem") {pages})
      (global $next (mut i32) (i32.const 65536))
      {realloc}
      (func (export "poke") (param i32 i32) (i32.store8 (local.get 0) (local.get 1))))
    (core instance $libc (instantiate $Libc))
    (core func $echo' (canon lower (func $echo) (memory (core memory $libc "mem"))
      (realloc (core func $libc "realloc")) string-encoding={enc}))
    (core module $Main
      (import "" "echo" (func $echo (param i32 i32 i32)))
      (func (export "run") (param i32 i32) (result i32)
        (call $echo (local.get 0) (local.get 1) (i32.const 8))
        (i32.const 8))
      (func (export "raw") (param i32 i32)
        (call $echo (local.get 0) (local.get 1) (i32.const 8))))
    (core instance $main (instantiate $Main (with "" (instance (export "echo" (func $echo'))))))
    (func (export "run") (param "s" string) (result string)
      (canon lift (core func $main "run") (memory (core memory $libc "mem")) (realloc (core func $libc "realloc"))
        string-encoding={enc}))
    (func (export "raw") (param "p" u32) (param "n" u32) (canon lift (core func $main "raw")))
    (func (export "poke") (param "at" u32) (param "b" u8) (canon lift (core func $libc "poke"))))"#
        )
    }

    struct Pair {
        store: Store<()>,
        instance: crate::Instance,
    }

    impl Pair {
        fn new(from: &str, to: &str) -> Self {
            Self::with(&caller(from, 2), &callee(to, None))
        }

        fn with(caller: &str, callee: &str) -> Self {
            let wat = format!(
                r#"(component
  {callee}
  {caller}
  (instance $callee (instantiate $Callee))
  (instance $caller (instantiate $Caller (with "echo" (func $callee "echo"))))
  (export "run" (func $caller "run"))
  (export "raw" (func $caller "raw"))
  (export "poke" (func $caller "poke"))
  (export "log" (func $callee "log")))"#
            );
            let engine = Engine::default();
            let component = Component::new(&engine, wat.as_bytes()).unwrap_or_else(|e| panic!("{e:#}"));
            let mut store = Store::new(&engine, ());
            let instance = Linker::default().instantiate(&mut store, &component).unwrap();
            Pair { store, instance }
        }

        fn call(&mut self, f: &str, args: &[Val]) -> anyhow::Result<Vec<Val>> {
            let func = self.instance.get_func(&self.store, f).unwrap();
            func.call(&mut self.store, args)
        }

        fn run(&mut self, s: &str) -> anyhow::Result<String> {
            match self.call("run", &[Val::String(s.into())])?.as_slice() {
                [Val::String(s)] => Ok(s.clone()),
                other => panic!("run returned {other:?}"),
            }
        }

        fn poke(&mut self, at: u32, bytes: &[u8]) {
            for (i, b) in bytes.iter().enumerate() {
                self.call("poke", &[Val::U32(at + i as u32), Val::U8(*b)]).unwrap();
            }
        }

        /// `raw(ptr, units)`: the error text of its trap.
        fn raw_trap(&mut self, ptr: u32, units: u32) -> String {
            let e = self
                .call("raw", &[Val::U32(ptr), Val::U32(units)])
                .expect_err("expected a trap");
            format!("{e:#}")
        }

        fn log(&mut self) -> Vec<u32> {
            match self.call("log", &[]).unwrap().as_slice() {
                [v] if v.list_elements().is_some() => v
                    .list_elements()
                    .unwrap()
                    .iter()
                    .map(|v| match v {
                        Val::U32(x) => *x,
                        other => panic!("{other:?}"),
                    })
                    .collect(),
                other => panic!("log returned {other:?}"),
            }
        }
    }

    const ENCODINGS: [&str; 3] = ["utf8", "utf16", "latin1+utf16"];

    /// Strings whose characters straddle the 64 KiB chunks in every source
    /// encoding, and latin1 runs longer than a chunk.
    fn samples() -> Vec<String> {
        vec![
            String::new(),
            "hello".into(),
            "héllo ÿ".into(),
            "h☃ snowman".into(),
            "🍰 cake, aé☃🍰".into(),
            format!("{}☃{}", "a".repeat(CHUNK - 1), "é".repeat(100)),
            format!("{}🍰{}", "a".repeat(CHUNK / 2 - 1), "b".repeat(10)),
            format!("a{}", "é".repeat(CHUNK + 3)),
            format!("{}☃", "é".repeat(CHUNK + 3)),
            format!("{}🍰x", "é".repeat(CHUNK / 2 - 1)),
        ]
    }

    #[test]
    fn strings_cross_between_every_pair_of_encodings_both_ways() {
        for from in ENCODINGS {
            for to in ENCODINGS {
                let mut pair = Pair::new(from, to);
                for s in samples() {
                    let got = pair.run(&s).unwrap_or_else(|e| panic!("{from} -> {to}: {e:#}"));
                    assert!(
                        got == s,
                        "{from} -> {to} -> {from} changed a string of {} bytes",
                        s.len()
                    );
                }
            }
        }
    }

    /// The receiver's realloc calls for (old size, align, new size) calls of
    /// the bump allocator from 4096.
    fn bump_log(calls: &[(u32, u32, u32)]) -> Vec<u32> {
        let (mut next, mut prev, mut log) = (4096u32, 0u32, Vec::new());
        for &(osize, align, nsize) in calls {
            let r = next.div_ceil(align) * align;
            log.extend([if log.is_empty() { 0 } else { prev }, osize, align, nsize]);
            next = r + nsize;
            prev = r;
        }
        log
    }

    /// The receiver's allocations are wasmtime's: sized from the source's
    /// code units, before anything is transcoded, grown to the worst case
    /// when a first pass stops, and shrunk to fit.
    #[test]
    fn the_receiver_allocates_as_wasmtimes_adapters_do() {
        /// (sender's encoding, receiver's, string, realloc calls).
        type Case = (&'static str, &'static str, &'static str, &'static [(u32, u32, u32)]);
        let cases: [Case; 11] = [
            ("utf8", "utf8", "☃", &[(0, 1, 3)]),
            ("utf16", "utf16", "☃", &[(0, 2, 2)]),
            ("utf8", "utf16", "é", &[(0, 2, 4), (4, 2, 2)]),
            ("utf16", "utf8", "aé", &[(0, 1, 2), (2, 1, 6), (6, 1, 3)]),
            ("utf16", "utf8", "ab", &[(0, 1, 2)]),
            ("latin1+utf16", "utf8", "é", &[(0, 1, 1), (1, 1, 2)]),
            ("latin1+utf16", "utf16", "é", &[(0, 2, 2)]),
            ("latin1+utf16", "latin1+utf16", "A☃", &[(0, 2, 4)]),
            ("utf8", "latin1+utf16", "é", &[(0, 2, 2), (2, 2, 1)]),
            ("utf8", "latin1+utf16", "é☃", &[(0, 2, 5), (5, 2, 10), (10, 2, 4)]),
            ("utf16", "latin1+utf16", "é☃", &[(0, 2, 2), (2, 2, 4)]),
        ];
        for (from, to, s, calls) in cases {
            let mut pair = Pair::new(from, to);
            assert_eq!(pair.run(s).unwrap(), s);
            assert_eq!(pair.log(), bump_log(calls), "{from} -> {to} of {s:?}");
        }
    }

    /// wasmtime reads the string only after the receiver's realloc: an
    /// invalid string whose receiver's realloc traps reports the realloc.
    #[test]
    fn the_receivers_realloc_runs_before_the_string_is_read() {
        let unreachable = r#"(func (export "realloc") (param i32 i32 i32 i32) (result i32) unreachable)"#;
        for to in ENCODINGS {
            let mut pair = Pair::with(&caller("utf8", 2), &callee(to, Some(unreachable)));
            pair.poke(65536, &[0xff]);
            let e = pair.raw_trap(65536, 1);
            assert!(e.contains("unreachable"), "utf8 -> {to}: {e}");
        }
    }

    #[test]
    fn invalid_strings_trap_even_past_the_first_chunk() {
        let at = 65536;
        for to in ENCODINGS {
            let mut pair = Pair::with(&caller("utf8", 4), &callee(to, None));
            pair.poke(at + CHUNK as u32 + 7, &[0xc3]);
            let e = pair.raw_trap(at, CHUNK as u32 + 8);
            assert!(e.contains("invalid utf8 encoding"), "utf8 -> {to}: {e}");

            // A lone high surrogate, after a non-ASCII character so that
            // first passes stop before it.
            let mut pair = Pair::with(&caller("utf16", 4), &callee(to, None));
            pair.poke(at + 2, &[0xe9, 0x00]);
            pair.poke(at + 2 * CHUNK as u32 + 10, &[0x00, 0xd8]);
            let e = pair.raw_trap(at, CHUNK as u32 + 8);
            assert!(e.contains("invalid utf16 encoding"), "utf16 -> {to}: {e}");
        }
    }

    /// The spec's 2^28-1 limit is the host's; between components wasmtime's
    /// 2^31-1 applies, so a 2^28-byte string reaches the receiver's realloc.
    #[test]
    fn strings_between_components_may_exceed_the_hosts_limit() {
        let unreachable = r#"(func (export "realloc") (param i32 i32 i32 i32) (result i32) unreachable)"#;
        let mut pair = Pair::with(&caller("utf8", (1 << 12) + 1), &callee("utf8", Some(unreachable)));
        let e = pair.raw_trap(0, 1 << 28);
        assert!(e.contains("unreachable"), "{e}");
    }

    #[test]
    fn the_receivers_byte_length_is_limited_to_2_31_minus_1() {
        let max = MAX_ADAPTER_STRING_BYTE_LENGTH;
        assert!(validate_string_length(max, 1).is_ok());
        assert_eq!(validate_string_length(max + 1, 1), Err(out_of_bounds()));
        assert!(validate_string_length(0x3fff_ffff, 2).is_ok());
        assert_eq!(validate_string_length(0x4000_0000, 2), Err(out_of_bounds()));
        assert!(validate_string_length(715_827_882, 3).is_ok());
        assert_eq!(validate_string_length(715_827_883, 3), Err(out_of_bounds()));
    }

    #[test]
    fn the_senders_pointer_is_checked_for_alignment_then_bounds() {
        let mut pair = Pair::new("utf16", "utf8");
        assert!(pair.raw_trap(65537, 0).contains("unaligned pointer"));
        let mut pair = Pair::new("latin1+utf16", "utf8");
        assert!(pair.raw_trap(65537, 1).contains("unaligned pointer"));
        let mut pair = Pair::new("utf8", "utf8");
        assert!(pair.raw_trap(2 * 65536 - 1, 2).contains("string content out-of-bounds"));
        let mut pair = Pair::new("utf16", "utf16");
        assert!(pair.raw_trap(2 * 65536 - 2, 2).contains("string content out-of-bounds"));
    }

    /// Every realloc result is checked (wasmtime's strings.wast: a shrink of
    /// a utf16-tagged string that turns out latin1 returns a bad pointer).
    #[test]
    fn every_realloc_result_is_checked() {
        let second_unaligned = r#"(func (export "realloc") (param $old i32) (param i32 i32 i32) (result i32)
        (if (result i32) (i32.eqz (local.get $old)) (then (i32.const 2)) (else (i32.const 3))))"#;
        let mut pair = Pair::with(
            &caller("latin1+utf16", 2),
            &callee("latin1+utf16", Some(second_unaligned)),
        );
        pair.poke(65536, b"A\0A\0");
        let e = pair.raw_trap(65536, UTF16_TAG | 2);
        assert!(e.contains("unaligned pointer"), "{e}");

        let beyond = r#"(func (export "realloc") (param i32 i32 i32 i32) (result i32) (i32.const 65535))"#;
        let mut pair = Pair::with(&caller("utf8", 2), &callee("utf8", Some(beyond)));
        let e = pair.raw_trap(65536, 2);
        assert!(e.contains("string content out-of-bounds"), "{e}");
    }

    /// The error text of calling `f` of a component lifting a string `f`
    /// that returns (ptr, units) with `enc`.
    fn host_lift_trap(enc: &str, ptr: u32, units: u32) -> String {
        let wat = format!(
            r#"(component
  (core module $M
    (memory (export "mem") 1)
    (func (export "f") (result i32)
      (i32.store (i32.const 0) (i32.const {ptr})) (i32.store (i32.const 4) (i32.const {units})) (i32.const 0)))
  (core instance $m (instantiate $M))
  (func (export "f") (result string) (canon lift (core func $m "f") (memory (core memory $m "mem")) string-encoding={enc})))"#,
            units = units as i32
        );
        let engine = Engine::default();
        let component = Component::new(&engine, wat.as_bytes()).unwrap();
        let mut store = Store::new(&engine, ());
        let instance = Linker::default().instantiate(&mut store, &component).unwrap();
        let f = instance.get_func(&store, "f").unwrap();
        format!("{:#}", f.call(&mut store, &[]).expect_err("expected a trap"))
    }

    /// The host's unaligned-string trap is worded as wasmtime's `WasmStr`.
    #[test]
    fn an_unaligned_string_for_the_host_names_its_alignment() {
        assert!(host_lift_trap("utf16", 17, 1).contains("string pointer not aligned to 2"));
        assert!(host_lift_trap("latin1+utf16", 17, 1).contains("string pointer not aligned to 2"));
        assert!(host_lift_trap("latin1+utf16", 17, UTF16_TAG | 1).contains("string pointer not aligned to 2"));
        // Bounds are checked after alignment, with the spec tests' words.
        assert!(host_lift_trap("utf16", 65534, 2).contains("string pointer/length out of bounds of memory"));
    }

    #[test]
    fn chunks_end_on_character_boundaries() {
        use SourceEncoding::*;
        assert_eq!(whole_characters(b"ab", Utf8), 2);
        assert_eq!(whole_characters("a☃".as_bytes(), Utf8), 4);
        assert_eq!(whole_characters(&"a☃".as_bytes()[..3], Utf8), 1);
        assert_eq!(whole_characters(&"a🍰".as_bytes()[..4], Utf8), 1);
        // Four continuation bytes are invalid whatever follows: kept, so
        // that validation traps on them.
        assert_eq!(whole_characters(&[0x61, 0x80, 0x80, 0x80, 0x80], Utf8), 5);
        let cake: Vec<u8> = "a🍰".encode_utf16().flat_map(u16::to_le_bytes).collect();
        assert_eq!(whole_characters(&cake, Utf16), 6);
        assert_eq!(whole_characters(&cake[..4], CompactUtf16), 2);
        assert_eq!(whole_characters(&[0xc3], CompactLatin1), 1);
    }

    #[test]
    fn the_latin1_prefix_of_utf8_is_encoding_rs_s() {
        let mut out = Vec::new();
        assert_eq!(utf8_to_latin1("aéÿ☃".as_bytes(), &mut out), 5);
        assert_eq!(out, [b'a', 0xe9, 0xff]);
        out.clear();
        // A lead byte without its continuation stops the prefix.
        assert_eq!(utf8_to_latin1(&[b'a', 0xc3, b'b'], &mut out), 1);
        assert_eq!(utf8_to_latin1(&[0xc3], &mut out), 0);
    }

    /// A string in transit lowered anywhere but in an adapter is an internal
    /// error, never a read of the sender's memory for a host.
    #[test]
    fn a_string_in_transit_cannot_be_lowered_for_the_host() {
        use crate::canon::limits::Limits;
        use crate::canon::state::StoreData;
        let engine = wasmi::Engine::default();
        let mut store = wasmi::Store::new(&engine, StoreData::new((), Limits::default()));
        let memory = wasmi::Memory::new(&mut store, wasmi::MemoryType::new(1, None)).unwrap();
        let s = AdapterString {
            memory,
            ptr: 0,
            units: 1,
            encoding: SourceEncoding::Utf8,
        };
        let opts = super::super::Options {
            memory: Some(memory),
            ..Default::default()
        };
        let mut cx = Cx::new(wasmi::AsContextMut::as_context_mut(&mut store), &opts, Site::Host);
        let e = store_adapter_string(&mut cx, &s).unwrap_err();
        assert!(e.to_string().contains("internal error"), "{e}");
        let e = super::super::lower::lower_flat(
            &mut cx,
            &Val::AdapterString(s),
            &crate::values::Type::String,
            &mut Vec::new(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("internal error"), "{e}");
    }
}
