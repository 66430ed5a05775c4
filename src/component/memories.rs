//! The memories `rewrite` made imports of, provided at instantiation, and
//! the size and grow functions behind every module's `memory.size` and
//! `memory.grow` (`crate::memory` has the why).

use super::rewrite::{MEMORY_MODULE, MEMORY_OPS_EXPORT};
use crate::canon::state::StoreData;
use crate::memory::{Grow, PAGE};
use anyhow::{anyhow, Result};
use wasmi::{AsContext, AsContextMut, Caller, StoreContextMut};

/// Whether an import is one of the memories we provide.
pub(crate) fn is_provided(import: &wasmi::ImportType<'_>) -> bool {
    import.module() == MEMORY_MODULE
}

/// A new memory of type `ty` for a module that imports it from us.
pub(crate) fn provide<T>(
    store: &mut StoreContextMut<'_, StoreData<T>>,
    ty: wasmi::MemoryType,
) -> Result<wasmi::Memory> {
    let err = |e: wasmi::Error| anyhow!("cannot make a linear memory: {e}");
    // A memory the limiter refuses is refused by wasmi before anything is
    // committed; a reservation would commit its initial pages first.
    let initial = ty.minimum().saturating_mul(crate::memory::PAGE);
    if !store.data().limiter.allows_memory(initial) {
        return wasmi::Memory::new(store.as_context_mut(), ty).map_err(err);
    }
    match crate::memory::reserve(&ty) {
        Some((reservation, buffer)) => {
            let memory = wasmi::Memory::new_static(store.as_context_mut(), ty, buffer).map_err(err)?;
            store.data_mut().rt.memories.adopt(reservation, &ty);
            Ok(memory)
        }
        None => wasmi::Memory::new(store.as_context_mut(), ty).map_err(err),
    }
}

/// Fills `instance`'s ops table (if its module sizes or grows memory):
/// `memories` are its memories in index order.
pub(crate) fn bind<T: 'static>(
    store: &mut StoreContextMut<'_, StoreData<T>>,
    instance: &wasmi::Instance,
    memories: &[wasmi::Memory],
) -> Result<()> {
    let Some(table) = instance.get_table(&*store, MEMORY_OPS_EXPORT) else {
        return Ok(());
    };
    for (m, memory) in memories.iter().enumerate() {
        let data = memory.data_ptr(&*store);
        let funcs = match store.data().rt.memories.ops(data) {
            Some(funcs) => funcs,
            None => {
                let owned = store.data().rt.memories.owned(data);
                let funcs = ops(store, *memory, owned);
                store.data_mut().rt.memories.keep_ops(data, funcs);
                funcs
            }
        };
        for (slot, f) in funcs.into_iter().enumerate() {
            table
                .set(
                    store.as_context_mut(),
                    (2 * m + slot) as u64,
                    wasmi::Ref::Func(wasmi::Nullable::Val(f)),
                )
                .map_err(|e| anyhow!("cannot bind memory functions: {e}"))?;
        }
    }
    Ok(())
}

/// `memory.size` and `memory.grow` of `memory` (`owned`: its index among
/// the store's owned memories), at its index type.
fn ops<T: 'static>(
    store: &mut StoreContextMut<'_, StoreData<T>>,
    memory: wasmi::Memory,
    owned: Option<usize>,
) -> [wasmi::Func; 2] {
    let size = move |c: &Caller<'_, StoreData<T>>| match owned {
        Some(i) => c.data().rt.memories.size(i),
        None => memory.size(c),
    };
    let grow = move |c: &mut Caller<'_, StoreData<T>>, delta: u64| -> Result<Option<u64>, wasmi::Error> {
        let Some(i) = owned else {
            return Ok(memory.grow(c.as_context_mut(), delta).ok());
        };
        let real = memory.size(c.as_context());
        // Pages opened again within wasmi's size are counted as a fresh
        // instance's grow would count them (a reset gave them back); wasmi
        // counts the rest.
        let visible = c.data().rt.memories.size(i);
        let again = visible.saturating_add(delta).min(real).saturating_sub(visible) * PAGE;
        if !c.data_mut().limiter.take(again) {
            return Ok(None);
        }
        let grown = match c.data_mut().rt.memories.grow(i, delta, real) {
            Err(oob) => Err(oob.into()),
            Ok(Grow::Failed) => Ok(None),
            Ok(Grow::Grew(old)) => Ok(Some(old)),
            Ok(Grow::Real { old, by }) => match memory.grow(c.as_context_mut(), by) {
                Ok(_) => {
                    c.data_mut().rt.memories.grown(i, real, real + by);
                    Ok(Some(old))
                }
                Err(_) => Ok(None),
            },
        };
        if !matches!(grown, Ok(Some(_))) {
            c.data_mut().limiter.give_back(again);
        }
        grown
    };
    if memory.ty(&*store).is_64() {
        [
            wasmi::Func::wrap(store.as_context_mut(), move |c: Caller<'_, StoreData<T>>| {
                size(&c) as i64
            }),
            wasmi::Func::wrap(
                store.as_context_mut(),
                move |mut c: Caller<'_, StoreData<T>>, delta: i64| -> Result<i64, wasmi::Error> {
                    Ok(grow(&mut c, delta as u64)?.map_or(-1, |old| old as i64))
                },
            ),
        ]
    } else {
        [
            wasmi::Func::wrap(store.as_context_mut(), move |c: Caller<'_, StoreData<T>>| {
                size(&c) as i32
            }),
            wasmi::Func::wrap(
                store.as_context_mut(),
                move |mut c: Caller<'_, StoreData<T>>, delta: i32| -> Result<i32, wasmi::Error> {
                    Ok(grow(&mut c, delta as u32 as u64)?.map_or(-1, |old| old as i32))
                },
            ),
        ]
    }
}
