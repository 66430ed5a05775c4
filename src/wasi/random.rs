//! `wasi:random` — `random` from the OS CSPRNG; `insecure` from ChaCha8
//! seeded per instance; `insecure-seed` fixed per instance.

use super::{bytes_val, iface, u64_arg, WasiView};
use crate::values::Val;
use crate::Linker;
use anyhow::{bail, Result};
use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};

/// Largest `len` accepted for one call (the guest has to receive it).
const MAX_BYTES: u64 = 64 << 20;

/// An instance's insecure generator and seed, drawn from the OS on first
/// use: most guests never ask, and a context is made for every instance
/// (every request, with fresh instances).
#[derive(Default)]
pub(crate) struct RandomState {
    insecure: Option<ChaCha8Rng>,
    seed: Option<(u64, u64)>,
}

impl RandomState {
    pub fn new() -> Self {
        Self::default()
    }

    fn insecure(&mut self) -> &mut ChaCha8Rng {
        self.insecure.get_or_insert_with(|| {
            let mut seed = [0u8; 32];
            let _ = getrandom::fill(&mut seed);
            ChaCha8Rng::from_seed(seed)
        })
    }

    fn seed(&mut self) -> (u64, u64) {
        *self.seed.get_or_insert_with(|| {
            let mut s = [0u8; 16];
            let _ = getrandom::fill(&mut s);
            (
                u64::from_le_bytes(s[..8].try_into().expect("8 bytes")),
                u64::from_le_bytes(s[8..].try_into().expect("8 bytes")),
            )
        })
    }
}

fn secure_bytes(len: u64) -> Result<Vec<u8>> {
    if len > MAX_BYTES {
        bail!("get-random-bytes: {len} bytes requested, at most {MAX_BYTES}");
    }
    let mut buf = vec![0; len as usize];
    fill_secure(&mut buf)?;
    Ok(buf)
}

/// Fills `buf` from the OS CSPRNG (`wasi:random/random`).
pub(crate) fn fill_secure(buf: &mut [u8]) -> Result<()> {
    getrandom::fill(buf).map_err(|e| anyhow::anyhow!("OS random source failed: {e}"))
}

pub(crate) fn add_to_linker<T: WasiView>(linker: &mut Linker<T>) {
    linker
        .instance(&iface("wasi:random/random"))
        .func_new("get-random-bytes", |_, args, out| {
            out.push(bytes_val(secure_bytes(u64_arg(&args[0])?)?));
            Ok(())
        })
        .func_wrap("get-random-u64", |_, ()| {
            let b = secure_bytes(8)?;
            Ok(u64::from_le_bytes(b.try_into().expect("8 bytes")))
        });
    linker
        .instance(&iface("wasi:random/insecure"))
        .func_new("get-insecure-random-bytes", |mut cx, args, out| {
            let len = u64_arg(&args[0])?;
            if len > MAX_BYTES {
                bail!("get-insecure-random-bytes: {len} bytes requested, at most {MAX_BYTES}");
            }
            let mut buf = vec![0; len as usize];
            cx.data_mut().wasi().random.insecure().fill_bytes(&mut buf);
            out.push(bytes_val(buf));
            Ok(())
        })
        .func_wrap("get-insecure-random-u64", |mut cx, ()| {
            Ok(cx.data_mut().wasi().random.insecure().next_u64())
        });
    linker
        .instance(&iface("wasi:random/insecure-seed"))
        .func_new("insecure-seed", |mut cx, _, out| {
            let (a, b) = cx.data_mut().wasi().random.seed();
            out.push(Val::Tuple(vec![Val::U64(a), Val::U64(b)]));
            Ok(())
        });
}
