//! The guest's linear memory as preview 1 functions see it: bounds- and
//! alignment-checked reads and writes of the witx types (`witx-docs.md`: a
//! pointer out of bounds or misaligned for its type traps), strings, and
//! the `iovec` arrays.

use super::errno::{Errno, Error, Result};

/// The guest's memory during one call.
pub(crate) struct Mem<'a>(pub &'a mut [u8]);

/// `iovec` / `ciovec`: a buffer in guest memory.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Iovec {
    pub buf: u32,
    pub len: u32,
}

impl Mem<'_> {
    /// The byte range `[ptr, ptr + len)`, if it is inside memory.
    fn range(&self, ptr: u32, len: u32) -> Result<std::ops::Range<usize>> {
        let end = ptr as u64 + len as u64;
        if end > self.0.len() as u64 {
            return Err(Error::trap(format!(
                "pointer out of bounds: {len} bytes at {ptr:#x} in a memory of {} bytes",
                self.0.len()
            )));
        }
        Ok(ptr as usize..end as usize)
    }

    /// The range of a value of `size` bytes aligned to `align` at `ptr`.
    fn aligned(&self, ptr: u32, size: u32, align: u32) -> Result<std::ops::Range<usize>> {
        if !ptr.is_multiple_of(align) {
            return Err(Error::trap(format!(
                "pointer not aligned: {ptr:#x} for a {align}-byte aligned type"
            )));
        }
        self.range(ptr, size)
    }

    pub fn bytes(&self, ptr: u32, len: u32) -> Result<&[u8]> {
        let r = self.range(ptr, len)?;
        Ok(&self.0[r])
    }

    pub fn bytes_mut(&mut self, ptr: u32, len: u32) -> Result<&mut [u8]> {
        let r = self.range(ptr, len)?;
        Ok(&mut self.0[r])
    }

    /// Copies `data` to `ptr` (a `pointer u8`: no alignment).
    pub fn write_bytes(&mut self, ptr: u32, data: &[u8]) -> Result<()> {
        let len = u32::try_from(data.len()).map_err(|_| Errno::Overflow)?;
        self.bytes_mut(ptr, len)?.copy_from_slice(data);
        Ok(())
    }

    /// A `string` argument (`ptr`, `len`): UTF-8, else `ilseq`.
    pub fn string(&self, ptr: u32, len: u32) -> Result<String> {
        let bytes = self.bytes(ptr, len)?;
        Ok(std::str::from_utf8(bytes).map_err(|_| Errno::Ilseq)?.to_string())
    }

    pub fn read_u8(&self, ptr: u32) -> Result<u8> {
        Ok(self.0[self.aligned(ptr, 1, 1)?][0])
    }

    pub fn read_u16(&self, ptr: u32) -> Result<u16> {
        let r = self.aligned(ptr, 2, 2)?;
        Ok(u16::from_le_bytes(self.0[r].try_into().expect("2 bytes")))
    }

    pub fn read_u32(&self, ptr: u32) -> Result<u32> {
        let r = self.aligned(ptr, 4, 4)?;
        Ok(u32::from_le_bytes(self.0[r].try_into().expect("4 bytes")))
    }

    pub fn read_u64(&self, ptr: u32) -> Result<u64> {
        let r = self.aligned(ptr, 8, 8)?;
        Ok(u64::from_le_bytes(self.0[r].try_into().expect("8 bytes")))
    }

    pub fn write_u8(&mut self, ptr: u32, v: u8) -> Result<()> {
        let r = self.aligned(ptr, 1, 1)?;
        self.0[r][0] = v;
        Ok(())
    }

    pub fn write_u16(&mut self, ptr: u32, v: u16) -> Result<()> {
        let r = self.aligned(ptr, 2, 2)?;
        self.0[r].copy_from_slice(&v.to_le_bytes());
        Ok(())
    }

    pub fn write_u32(&mut self, ptr: u32, v: u32) -> Result<()> {
        let r = self.aligned(ptr, 4, 4)?;
        self.0[r].copy_from_slice(&v.to_le_bytes());
        Ok(())
    }

    pub fn write_u64(&mut self, ptr: u32, v: u64) -> Result<()> {
        let r = self.aligned(ptr, 8, 8)?;
        self.0[r].copy_from_slice(&v.to_le_bytes());
        Ok(())
    }

    /// Checks that a record of `size` bytes aligned to `align` fits at
    /// `ptr`, before any of its fields is written.
    pub fn check_record(&self, ptr: u32, size: u32, align: u32) -> Result<()> {
        self.aligned(ptr, size, align).map(|_| ())
    }

    /// An `iovec_array` / `ciovec_array` (`ptr`, `len` elements of 8 bytes,
    /// aligned to 4).
    pub fn iovecs(&self, ptr: u32, len: u32) -> Result<Vec<Iovec>> {
        let size = len
            .checked_mul(8)
            .ok_or_else(|| Error::trap(format!("pointer out of bounds: an iovec array of {len} elements")))?;
        self.aligned(ptr, size, 4)?;
        (0..len)
            .map(|i| {
                let at = ptr + i * 8;
                Ok(Iovec {
                    buf: self.read_u32(at)?,
                    len: self.read_u32(at + 4)?,
                })
            })
            .collect()
    }

    /// The first non-empty buffer of an iovec array (or an empty one): as
    /// wasmtime, reads and writes move one buffer per call (a short read or
    /// write, which callers loop over). The buffer is bounds-checked.
    pub fn first_buffer(&self, ptr: u32, len: u32) -> Result<Iovec> {
        let iov = self
            .iovecs(ptr, len)?
            .into_iter()
            .find(|v| v.len > 0)
            .unwrap_or(Iovec { buf: 0, len: 0 });
        self.range(iov.buf, iov.len)?;
        Ok(iov)
    }
}

/// Layouts of the witx records the functions write (size, alignment).
pub(crate) mod layout {
    pub const FDSTAT: (u32, u32) = (24, 8);
    pub const FILESTAT: (u32, u32) = (64, 8);
    pub const PRESTAT: (u32, u32) = (8, 4);
    pub const DIRENT_SIZE: u32 = 24;
    pub const SUBSCRIPTION: (u32, u32) = (48, 8);
    pub const EVENT: (u32, u32) = (32, 8);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_of_bounds_and_misaligned_pointers_trap() {
        let mut buf = vec![0u8; 16];
        let mut m = Mem(&mut buf);
        assert!(m.write_u32(12, 7).is_ok());
        assert!(matches!(m.write_u32(13, 7), Err(Error::Trap(_))));
        assert!(matches!(m.write_u32(16, 7), Err(Error::Trap(_))));
        assert!(matches!(m.read_u64(u32::MAX - 3), Err(Error::Trap(_))));
        assert!(matches!(m.bytes(10, u32::MAX), Err(Error::Trap(_))));
        assert!(matches!(m.iovecs(0, u32::MAX), Err(Error::Trap(_))));
        assert_eq!(m.read_u32(12).unwrap(), 7);
    }

    #[test]
    fn strings_must_be_utf8() {
        let mut buf = b"ok\xff".to_vec();
        let m = Mem(&mut buf);
        assert_eq!(m.string(0, 2).unwrap(), "ok");
        assert!(matches!(m.string(0, 3), Err(Error::Errno(Errno::Ilseq))));
    }

    #[test]
    fn the_first_non_empty_iovec_is_used() {
        let mut buf = vec![0u8; 64];
        buf[8..12].copy_from_slice(&32u32.to_le_bytes());
        buf[12..16].copy_from_slice(&5u32.to_le_bytes());
        let m = Mem(&mut buf);
        let iov = m.first_buffer(0, 2).unwrap();
        assert_eq!((iov.buf, iov.len), (32, 5));
    }
}
