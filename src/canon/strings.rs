//! Strings: loading in each encoding, and storing with transcoding
//! (CanonicalABI.md "Loading" / "Storing" strings). Host strings are UTF-8,
//! so every store starts from a UTF-8 source.

use super::{trap, Cx, StringEncoding, Trap, MAX_STRING_BYTE_LENGTH};

const UTF16_TAG: u32 = 1 << 31;

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
