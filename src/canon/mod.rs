//! The canonical ABI (design/mvp/CanonicalABI.md), the second layer: layout
//! and flattening, lifting and lowering of values, string transcoding,
//! handle tables, and the per-store state these rules read and write
//! ([`state`]: component instance states, tasks, [`limits`]). Built on
//! [`crate::values`] only; the call protocols that use it (`canon lift`,
//! `canon lower`, `resource.*`) are in [`crate::component::calls`].

pub mod handles;
pub mod layout;
pub mod lift;
pub mod limits;
pub mod lower;
pub mod state;
pub mod strings;
pub mod trap;

pub(crate) use trap::trap;
pub use trap::Trap;

use state::StoreData;
use wasmi::{AsContext, AsContextMut, Func, Memory, StoreContextMut};

/// `string-encoding=` of a lift or lower.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum StringEncoding {
    #[default]
    Utf8,
    Utf16,
    /// `latin1+utf16`
    CompactUtf16,
}

/// Resolved canonical options of one `canon lift` or `canon lower`.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// The component instance that owns the core function (`cx.inst`).
    pub instance: usize,
    pub memory: Option<Memory>,
    pub realloc: Option<Func>,
    pub post_return: Option<Func>,
    pub encoding: StringEncoding,
}

/// Where a lift/lower happens: in a host call, or in an adapter between two
/// components. Only the trap messages differ (they follow wasmtime's, which the
/// spec tests match on).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Site {
    Host,
    Adapter,
}

/// The spec's `LiftLowerContext`: the store, the options, and the call whose
/// borrows are being tracked.
pub struct Cx<'a, 'o, T> {
    pub store: StoreContextMut<'a, StoreData<T>>,
    pub opts: &'o Options,
    pub site: Site,
    /// Handles lent by `lift_borrow` during a `canon lower` (released when the
    /// call returns).
    pub lenders: Vec<u32>,
    /// The task that borrows lowered by `lower_borrow` are scoped to.
    pub borrow_scope: Option<usize>,
    /// Lift `list<u8>` as `Val::Bytes` (export results, and host functions
    /// that opted in).
    pub compact_bytes: bool,
    /// Host memory this lift has committed to values so far, and the most
    /// it may ([`limits::Limits::lifted_bytes`]).
    lifted: u64,
    lift_limit: u64,
}

/// The spec's limit on a string's byte length (`definitions.py`), for
/// strings the host lifts or lowers.
pub const MAX_STRING_BYTE_LENGTH: u64 = (1 << 28) - 1;
/// The limit on a string's byte length in the receiver when one component
/// passes it to another, as wasmtime's adapters check it (FACT's
/// `MAX_STRING_BYTE_LENGTH`).
pub const MAX_ADAPTER_STRING_BYTE_LENGTH: u32 = (1 << 31) - 1;
pub const MAX_LIST_BYTE_LENGTH: u64 = (1 << 28) - 1;

impl<'a, 'o, T> Cx<'a, 'o, T> {
    pub fn new(store: StoreContextMut<'a, StoreData<T>>, opts: &'o Options, site: Site) -> Self {
        let lift_limit = store.data().limiter.limits.lifted_bytes as u64;
        Cx {
            store,
            opts,
            site,
            lenders: Vec::new(),
            borrow_scope: None,
            compact_bytes: false,
            lifted: 0,
            lift_limit,
        }
    }

    /// Charges `bytes` of host memory to this lift before it is allocated:
    /// one call's arguments or results may not make the host hold more than
    /// the limit, however the guest's data is shaped.
    pub fn charge_lift(&mut self, bytes: u64) -> Result<(), Trap> {
        self.lifted = self.lifted.saturating_add(bytes);
        if self.lifted > self.lift_limit {
            return Err(trap!(
                "the values of one call would take more than {} bytes of host memory (`Limits::lifted_bytes`)",
                self.lift_limit
            ));
        }
        Ok(())
    }

    fn memory(&self) -> Result<Memory, Trap> {
        self.opts
            .memory
            .ok_or_else(|| trap!("canonical option `memory` is required"))
    }

    pub fn mem(&self) -> Result<&[u8], Trap> {
        Ok(state::visible(self.memory()?, self.store.as_context()))
    }

    pub fn mem_mut(&mut self) -> Result<&mut [u8], Trap> {
        let m = self.memory()?;
        Ok(state::visible_mut(m, self.store.as_context_mut()).0)
    }

    pub fn mem_len(&self) -> Result<u64, Trap> {
        Ok(self.mem()?.len() as u64)
    }

    /// Reads `N` bytes at `ptr`, trapping if out of bounds.
    pub fn read<const N: usize>(&self, ptr: u32) -> Result<[u8; N], Trap> {
        let mem = self.mem()?;
        let start = ptr as usize;
        mem.get(start..start + N)
            .map(|b| b.try_into().expect("length checked"))
            .ok_or_else(|| trap!("pointer out of bounds of memory"))
    }

    pub fn write(&mut self, ptr: u32, bytes: &[u8]) -> Result<(), Trap> {
        let start = ptr as usize;
        let mem = self.mem_mut()?;
        match mem.get_mut(start..start + bytes.len()) {
            Some(dst) => {
                dst.copy_from_slice(bytes);
                Ok(())
            }
            None => Err(trap!("pointer out of bounds of memory")),
        }
    }

    pub fn load_u8(&self, ptr: u32) -> Result<u8, Trap> {
        Ok(self.read::<1>(ptr)?[0])
    }
    pub fn load_u16(&self, ptr: u32) -> Result<u16, Trap> {
        Ok(u16::from_le_bytes(self.read(ptr)?))
    }
    pub fn load_u32(&self, ptr: u32) -> Result<u32, Trap> {
        Ok(u32::from_le_bytes(self.read(ptr)?))
    }
    pub fn load_u64(&self, ptr: u32) -> Result<u64, Trap> {
        Ok(u64::from_le_bytes(self.read(ptr)?))
    }

    /// The instance state of `cx.inst`.
    pub fn inst(&mut self) -> &mut handles::InstanceState {
        let i = self.opts.instance;
        &mut self.store.data_mut().rt.instances[i]
    }

    /// `cx.reallocate`: calls the guest's realloc with `may_leave` cleared.
    pub fn reallocate(&mut self, old: u32, old_size: u32, align: u32, new_size: u32) -> Result<u32, wasmi::Error> {
        let realloc = self
            .opts
            .realloc
            .ok_or_else(|| wasmi::Error::host(trap!("canonical option `realloc` is required")))?;
        self.inst().may_leave = false;
        let mut out = [wasmi::Val::I32(0)];
        let args = [old, old_size, align, new_size].map(|v| wasmi::Val::I32(v as i32));
        let r = state::with_nested_fuel(&mut self.store, |store| realloc.call(store, &args, &mut out));
        self.inst().may_leave = true;
        r?;
        Ok(out[0].i32().unwrap_or(0) as u32)
    }

    pub fn allocate(&mut self, align: u32, size: u32) -> Result<u32, wasmi::Error> {
        self.reallocate(0, 0, align, size)
    }

    /// Checks a freshly allocated `ptr` for `size` bytes: alignment first,
    /// then bounds (what = "list" or "string", for the message).
    pub fn check_alloc(&self, ptr: u32, align: u32, size: u64, what: &str) -> Result<(), Trap> {
        if !ptr.is_multiple_of(align) {
            return Err(match self.site {
                Site::Host => trap!("realloc return: result not aligned"),
                Site::Adapter => trap!("unaligned pointer"),
            });
        }
        if ptr as u64 + size > self.mem_len()? {
            return Err(match self.site {
                Site::Host => trap!("realloc return: beyond end of memory"),
                Site::Adapter => trap!("{what} content out-of-bounds"),
            });
        }
        Ok(())
    }

    /// Checks a guest-supplied range before reading it: alignment first,
    /// then bounds (what = "list" or "string", for the message; the host
    /// site words them as wasmtime's `WasmList` / `WasmStr` do).
    pub fn check_range(&self, ptr: u32, align: u32, size: u64, what: &str) -> Result<(), Trap> {
        if !ptr.is_multiple_of(align) {
            return Err(match self.site {
                Site::Host if what == "string" => trap!("string pointer not aligned to {align}"),
                Site::Host => trap!("{what} pointer is not aligned"),
                Site::Adapter => trap!("unaligned pointer"),
            });
        }
        if ptr as u64 + size > self.mem_len()? {
            return Err(match self.site {
                Site::Host => trap!("{what} pointer/length out of bounds of memory"),
                Site::Adapter => trap!("{what} content out-of-bounds"),
            });
        }
        Ok(())
    }
}
