//! Lowering: [`Val`] → linear memory and core values (CanonicalABI.md
//! "Storing" and "Flat Lowering"). A host value that does not match its type
//! is an error naming both, never a panic.

use super::handles::Handle;
use super::layout::{
    alignment, discriminant_size, elem_size, field_offsets, flags_size, flat_len, flatten_type, payload_offset,
    variant_cases, Flat,
};
use super::lift::check_tuple_ptr;
use super::strings::{store_adapter_string, store_string_into_range};
use super::{trap, Cx, Trap, MAX_LIST_BYTE_LENGTH};
use crate::values::Val;
use crate::values::{ResourceType, Type};

fn mismatch(t: &Type, v: &Val) -> wasmi::Error {
    trap!("type mismatch: expected {t}, found {} value", v.kind()).into()
}

pub fn store<T>(cx: &mut Cx<'_, '_, T>, v: &Val, t: &Type, ptr: u32) -> Result<(), wasmi::Error> {
    match (t, v) {
        (Type::Bool, Val::Bool(b)) => cx.write(ptr, &[*b as u8])?,
        (Type::U8, Val::U8(x)) => cx.write(ptr, &x.to_le_bytes())?,
        (Type::S8, Val::S8(x)) => cx.write(ptr, &x.to_le_bytes())?,
        (Type::U16, Val::U16(x)) => cx.write(ptr, &x.to_le_bytes())?,
        (Type::S16, Val::S16(x)) => cx.write(ptr, &x.to_le_bytes())?,
        (Type::U32, Val::U32(x)) => cx.write(ptr, &x.to_le_bytes())?,
        (Type::S32, Val::S32(x)) => cx.write(ptr, &x.to_le_bytes())?,
        (Type::U64, Val::U64(x)) => cx.write(ptr, &x.to_le_bytes())?,
        (Type::S64, Val::S64(x)) => cx.write(ptr, &x.to_le_bytes())?,
        (Type::F32, Val::Float32(x)) => cx.write(ptr, &x.to_bits().to_le_bytes())?,
        (Type::F64, Val::Float64(x)) => cx.write(ptr, &x.to_bits().to_le_bytes())?,
        (Type::Char, Val::Char(c)) => cx.write(ptr, &(*c as u32).to_le_bytes())?,
        (Type::String, Val::String(s)) => {
            let (begin, units) = store_string_into_range(cx, s)?;
            store_pair(cx, ptr, begin, units)?;
        }
        (Type::String, Val::AdapterString(s)) => {
            let (begin, units) = store_adapter_string(cx, s)?;
            store_pair(cx, ptr, begin, units)?;
        }
        (Type::List(e), Val::List(vs)) => {
            let (begin, len) = store_list_into_range(cx, vs, e)?;
            store_pair(cx, ptr, begin, len)?;
        }
        (Type::List(e), Val::Bytes(b)) if **e == Type::U8 => {
            let (begin, len) = store_bytes_into_range(cx, b)?;
            store_pair(cx, ptr, begin, len)?;
        }
        (Type::List(e), Val::Scalars(s)) => {
            let (begin, len) = store_scalars_into_range(cx, s, e)?;
            store_pair(cx, ptr, begin, len)?;
        }
        (Type::Map(k, val_t), Val::Map(entries)) => {
            let (begin, len) = store_map_into_range(cx, entries, k, val_t)?;
            store_pair(cx, ptr, begin, len)?;
        }
        (Type::FixedList(e, n), Val::List(vs)) => {
            if vs.len() != *n as usize {
                return Err(trap!("expected {n} elements for {t}, found {}", vs.len()).into());
            }
            let size = elem_size(e);
            for (i, v) in vs.iter().enumerate() {
                store(cx, v, e, ptr + i as u32 * size)?;
            }
        }
        (Type::Record(fields), Val::Record(vs)) => {
            let offsets = field_offsets(fields.iter().map(|f| &f.ty));
            for (f, off) in fields.iter().zip(offsets) {
                let fv = field(vs, &f.name)?;
                store(cx, fv, &f.ty, ptr + off)?;
            }
        }
        (Type::Tuple(ts), Val::Tuple(vs)) if ts.len() == vs.len() => {
            let offsets = field_offsets(ts.iter());
            for ((t, v), off) in ts.iter().zip(vs).zip(offsets) {
                store(cx, v, t, ptr + off)?;
            }
        }
        (Type::Flags(names), Val::Flags(set)) => {
            let bits = pack_flags(names, set)?;
            match flags_size(names.len()) {
                1 => cx.write(ptr, &[bits as u8])?,
                2 => cx.write(ptr, &(bits as u16).to_le_bytes())?,
                _ => cx.write(ptr, &bits.to_le_bytes())?,
            }
        }
        (Type::Own(rt), Val::Resource(r)) if r.own => {
            let i = lower_own(cx, r.rep, rt, &r.ty)?;
            cx.write(ptr, &i.to_le_bytes())?;
        }
        (Type::Borrow(rt), Val::Resource(r)) => {
            let i = lower_borrow(cx, r.rep, rt, &r.ty)?;
            cx.write(ptr, &i.to_le_bytes())?;
        }
        _ => {
            let cases = variant_cases(t).ok_or_else(|| mismatch(t, v))?;
            let (case, payload) = match_case(t, v)?;
            let disc = case as u32;
            match discriminant_size(cases.len()) {
                1 => cx.write(ptr, &[disc as u8])?,
                2 => cx.write(ptr, &(disc as u16).to_le_bytes())?,
                _ => cx.write(ptr, &disc.to_le_bytes())?,
            }
            if let (Some(pt), Some(pv)) = (cases[case], payload) {
                store(cx, pv, pt, ptr + payload_offset(&cases))?;
            }
        }
    }
    Ok(())
}

/// The value of a record field, by name.
fn field<'v>(vs: &'v [(String, Val)], name: &str) -> Result<&'v Val, Trap> {
    vs.iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v)
        .ok_or_else(|| trap!("record value is missing field `{name}`"))
}

fn store_pair<T>(cx: &mut Cx<'_, '_, T>, ptr: u32, a: u32, b: u32) -> Result<(), Trap> {
    cx.write(ptr, &a.to_le_bytes())?;
    cx.write(ptr + 4, &b.to_le_bytes())
}

/// Finds the case index and payload of a variant-like value, checking that
/// payload presence matches the case type.
pub fn match_case<'v>(t: &Type, v: &'v Val) -> Result<(usize, Option<&'v Val>), wasmi::Error> {
    let (case, payload): (usize, Option<&Val>) = match (t, v) {
        (Type::Variant(cases), Val::Variant(name, p)) => {
            let i = cases
                .iter()
                .position(|c| c.name == *name)
                .ok_or_else(|| wasmi::Error::from(trap!("unknown case `{name}` for {t}")))?;
            (i, p.as_deref())
        }
        (Type::Enum(names), Val::Enum(name)) => {
            let i = names
                .iter()
                .position(|n| n == name)
                .ok_or_else(|| wasmi::Error::from(trap!("unknown case `{name}` for {t}")))?;
            (i, None)
        }
        (Type::Option(_), Val::Option(None)) => (0, None),
        (Type::Option(_), Val::Option(Some(p))) => (1, Some(&**p)),
        (Type::Result { .. }, Val::Result(Ok(p))) => (0, p.as_deref()),
        (Type::Result { .. }, Val::Result(Err(p))) => (1, p.as_deref()),
        _ => return Err(mismatch(t, v)),
    };
    let cases = variant_cases(t).expect("variant-like");
    if cases[case].is_some() != payload.is_some() {
        return Err(trap!("payload presence does not match case {case} of {t}").into());
    }
    Ok((case, payload))
}

fn pack_flags(names: &[String], set: &[String]) -> Result<u32, wasmi::Error> {
    let mut bits = 0u32;
    for name in set {
        let i = names
            .iter()
            .position(|n| n == name)
            .ok_or_else(|| wasmi::Error::from(trap!("unknown flag `{name}`")))?;
        bits |= 1 << i;
    }
    Ok(bits)
}

/// Copies a compact `list<u8>` into fresh guest memory.
pub fn store_bytes_into_range<T>(cx: &mut Cx<'_, '_, T>, bytes: &[u8]) -> Result<(u32, u32), wasmi::Error> {
    if bytes.len() as u64 > MAX_LIST_BYTE_LENGTH {
        return Err(trap!("list too long to lower").into());
    }
    let ptr = cx.allocate(1, bytes.len() as u32)?;
    cx.check_alloc(ptr, 1, bytes.len() as u64, "list")?;
    cx.write(ptr, bytes)?;
    Ok((ptr, bytes.len() as u32))
}

/// A compact list, written as it is (its elements are `e`s, checked).
pub fn store_scalars_into_range<T>(
    cx: &mut Cx<'_, '_, T>,
    s: &crate::values::Scalars,
    e: &Type,
) -> Result<(u32, u32), wasmi::Error> {
    let bytes = s.to_le_bytes();
    if bytes.len() as u64 > MAX_LIST_BYTE_LENGTH {
        return Err(trap!("list too long to lower").into());
    }
    let align = alignment(e);
    let ptr = cx.allocate(align, bytes.len() as u32)?;
    cx.check_alloc(ptr, align, bytes.len() as u64, "list")?;
    cx.write(ptr, &bytes)?;
    Ok((ptr, s.len() as u32))
}

pub fn store_list_into_range<T>(cx: &mut Cx<'_, '_, T>, vs: &[Val], e: &Type) -> Result<(u32, u32), wasmi::Error> {
    let size = elem_size(e);
    let byte_len = vs.len() as u64 * size as u64;
    if byte_len > MAX_LIST_BYTE_LENGTH {
        return Err(trap!("list too long to lower").into());
    }
    let align = alignment(e);
    let ptr = cx.allocate(align, byte_len as u32)?;
    cx.check_alloc(ptr, align, byte_len, "list")?;
    if let Type::U8 = e {
        let bytes: Result<Vec<u8>, _> = vs
            .iter()
            .map(|v| match v {
                Val::U8(b) => Ok(*b),
                other => Err(mismatch(e, other)),
            })
            .collect();
        cx.write(ptr, &bytes?)?;
    } else {
        for (i, v) in vs.iter().enumerate() {
            store(cx, v, e, ptr + i as u32 * size)?;
        }
    }
    Ok((ptr, vs.len() as u32))
}

fn store_map_into_range<T>(
    cx: &mut Cx<'_, '_, T>,
    entries: &[(Val, Val)],
    k: &Type,
    v: &Type,
) -> Result<(u32, u32), wasmi::Error> {
    let tuple: Vec<Val> = entries
        .iter()
        .map(|(k, v)| Val::Tuple(vec![k.clone(), v.clone()]))
        .collect();
    let entry = Type::Tuple(vec![k.clone(), v.clone()].into());
    store_list_into_range(cx, &tuple, &entry)
}

pub fn lower_own<T>(cx: &mut Cx<'_, '_, T>, rep: u32, rt: &ResourceType, actual: &ResourceType) -> Result<u32, Trap> {
    if rt != actual {
        return Err(trap!(
            "resource type mismatch: expected {}, found {}",
            rt.name(),
            actual.name()
        ));
    }
    cx.inst().handles.add(Handle {
        rt: rt.clone(),
        rep,
        own: true,
        borrow_scope: None,
        num_lends: 0,
    })
}

pub fn lower_borrow<T>(
    cx: &mut Cx<'_, '_, T>,
    rep: u32,
    rt: &ResourceType,
    actual: &ResourceType,
) -> Result<u32, Trap> {
    if rt != actual {
        return Err(trap!(
            "resource type mismatch: expected {}, found {}",
            rt.name(),
            actual.name()
        ));
    }
    if rt.impl_instance() == Some(cx.opts.instance) {
        return Ok(rep);
    }
    let scope = cx.borrow_scope;
    if let Some(task) = scope {
        cx.store.data_mut().rt.tasks[task].num_borrows += 1;
    }
    cx.inst().handles.add(Handle {
        rt: rt.clone(),
        rep,
        own: false,
        borrow_scope: scope,
        num_lends: 0,
    })
}

/// Raw-bit flat lowering; see [`super::lift::FlatIter`].
pub fn lower_flat<T>(cx: &mut Cx<'_, '_, T>, v: &Val, t: &Type, out: &mut Vec<u64>) -> Result<(), wasmi::Error> {
    match (t, v) {
        (Type::Bool, Val::Bool(b)) => out.push(*b as u64),
        (Type::U8, Val::U8(x)) => out.push(*x as u64),
        (Type::U16, Val::U16(x)) => out.push(*x as u64),
        (Type::U32, Val::U32(x)) => out.push(*x as u64),
        (Type::U64, Val::U64(x)) => out.push(*x),
        (Type::S8, Val::S8(x)) => out.push(*x as i32 as u32 as u64),
        (Type::S16, Val::S16(x)) => out.push(*x as i32 as u32 as u64),
        (Type::S32, Val::S32(x)) => out.push(*x as u32 as u64),
        (Type::S64, Val::S64(x)) => out.push(*x as u64),
        (Type::F32, Val::Float32(x)) => out.push(x.to_bits() as u64),
        (Type::F64, Val::Float64(x)) => out.push(x.to_bits()),
        (Type::Char, Val::Char(c)) => out.push(*c as u64),
        (Type::String, Val::String(s)) => {
            let (p, n) = store_string_into_range(cx, s)?;
            out.extend([p as u64, n as u64]);
        }
        (Type::String, Val::AdapterString(s)) => {
            let (p, n) = store_adapter_string(cx, s)?;
            out.extend([p as u64, n as u64]);
        }
        (Type::List(e), Val::List(vs)) => {
            let (p, n) = store_list_into_range(cx, vs, e)?;
            out.extend([p as u64, n as u64]);
        }
        (Type::List(e), Val::Bytes(b)) if **e == Type::U8 => {
            let (p, n) = store_bytes_into_range(cx, b)?;
            out.extend([p as u64, n as u64]);
        }
        (Type::List(e), Val::Scalars(s)) => {
            let (p, n) = store_scalars_into_range(cx, s, e)?;
            out.extend([p as u64, n as u64]);
        }
        (Type::Map(k, vt), Val::Map(entries)) => {
            let (p, n) = store_map_into_range(cx, entries, k, vt)?;
            out.extend([p as u64, n as u64]);
        }
        (Type::FixedList(e, n), Val::List(vs)) => {
            if vs.len() != *n as usize {
                return Err(trap!("expected {n} elements for {t}, found {}", vs.len()).into());
            }
            for v in vs {
                lower_flat(cx, v, e, out)?;
            }
        }
        (Type::Record(fields), Val::Record(vs)) => {
            for f in fields.iter() {
                let fv = field(vs, &f.name)?;
                lower_flat(cx, fv, &f.ty, out)?;
            }
        }
        (Type::Tuple(ts), Val::Tuple(vs)) if ts.len() == vs.len() => {
            for (t, v) in ts.iter().zip(vs) {
                lower_flat(cx, v, t, out)?;
            }
        }
        (Type::Flags(names), Val::Flags(set)) => out.push(pack_flags(names, set)? as u64),
        (Type::Own(rt), Val::Resource(r)) if r.own => out.push(lower_own(cx, r.rep, rt, &r.ty)? as u64),
        (Type::Borrow(rt), Val::Resource(r)) => out.push(lower_borrow(cx, r.rep, rt, &r.ty)? as u64),
        _ => {
            let cases = variant_cases(t).ok_or_else(|| mismatch(t, v))?;
            let (case, payload) = match_case(t, v)?;
            let slots = flat_len(t).saturating_sub(1);
            out.push(case as u64);
            let start = out.len();
            if let (Some(pt), Some(pv)) = (cases[case], payload) {
                // Payload values are raw bits, already valid in any joined slot.
                lower_flat(cx, pv, pt, out)?;
            }
            let used = out.len() - start;
            out.extend(std::iter::repeat_n(0, slots - used));
        }
    }
    Ok(())
}

/// `lower_flat_values`: lowers `vs` to flat values, or stores them through a
/// pointer when they are `spilled` (allocated with realloc when `out_param`
/// is `None`).
pub fn lower_flat_values<'t, T>(
    cx: &mut Cx<'_, '_, T>,
    spilled: bool,
    vs: &[Val],
    ts: impl ExactSizeIterator<Item = &'t Type> + Clone,
    out_param: Option<u32>,
    out: &mut Vec<u64>,
) -> Result<(), wasmi::Error> {
    if vs.len() != ts.len() {
        return Err(trap!("expected {} values, found {}", ts.len(), vs.len()).into());
    }
    if spilled {
        let tuple = Type::Tuple(ts.clone().cloned().collect::<Vec<_>>().into());
        let ptr = match out_param {
            Some(p) => p,
            None => {
                let p = cx.allocate(alignment(&tuple), elem_size(&tuple))?;
                out.push(p as u64);
                p
            }
        };
        check_tuple_ptr(cx, ptr, &tuple)?;
        // Field by field, as `store` does a tuple, without copying the values.
        for ((t, v), off) in ts.clone().zip(vs).zip(field_offsets(ts)) {
            store(cx, v, t, ptr + off)?;
        }
    } else {
        for (v, t) in vs.iter().zip(ts) {
            lower_flat(cx, v, t, out)?;
        }
    }
    Ok(())
}

/// Flat types of `t`, for building core signatures.
pub fn flat_of(t: &Type) -> Vec<Flat> {
    let mut v = Vec::new();
    flatten_type(t, &mut v);
    v
}

/// Checks that a host-supplied value has type `t`, before any guest state is
/// touched.
pub fn type_check(v: &Val, t: &Type) -> Result<(), Trap> {
    let ok = match (t, v) {
        (Type::Bool, Val::Bool(_))
        | (Type::S8, Val::S8(_))
        | (Type::U8, Val::U8(_))
        | (Type::S16, Val::S16(_))
        | (Type::U16, Val::U16(_))
        | (Type::S32, Val::S32(_))
        | (Type::U32, Val::U32(_))
        | (Type::S64, Val::S64(_))
        | (Type::U64, Val::U64(_))
        | (Type::F32, Val::Float32(_))
        | (Type::F64, Val::Float64(_))
        | (Type::Char, Val::Char(_))
        | (Type::String, Val::String(_)) => true,
        (Type::List(e), Val::List(vs)) => return vs.iter().try_for_each(|v| type_check(v, e)),
        (Type::List(e), Val::Bytes(_)) => **e == Type::U8,
        (Type::List(e), Val::Scalars(s)) => s.get(0).is_none_or(|v| type_check(&v, e).is_ok()),
        (Type::FixedList(e, n), Val::List(vs)) => {
            if vs.len() != *n as usize {
                return Err(trap!("expected {n} elements for {t}, found {}", vs.len()));
            }
            return vs.iter().try_for_each(|v| type_check(v, e));
        }
        (Type::Map(k, vt), Val::Map(entries)) => {
            return entries.iter().try_for_each(|(kv, vv)| {
                type_check(kv, k)?;
                type_check(vv, vt)
            })
        }
        (Type::Record(fields), Val::Record(vs)) => {
            for f in fields.iter() {
                let fv = field(vs, &f.name)?;
                type_check(fv, &f.ty)?;
            }
            return Ok(());
        }
        (Type::Tuple(ts), Val::Tuple(vs)) if ts.len() == vs.len() => {
            return ts.iter().zip(vs).try_for_each(|(t, v)| type_check(v, t))
        }
        (Type::Flags(names), Val::Flags(set)) => {
            if let Some(bad) = set.iter().find(|f| !names.contains(f)) {
                return Err(trap!("unknown flag `{bad}` for {t}"));
            }
            true
        }
        (Type::Own(rt), Val::Resource(r)) => r.own && &r.ty == rt,
        (Type::Borrow(rt), Val::Resource(r)) => &r.ty == rt,
        _ if variant_cases(t).is_some() => {
            let (case, payload) = match_case(t, v).map_err(|e| trap!("{e}"))?;
            let cases = variant_cases(t).expect("variant-like");
            if let (Some(pt), Some(pv)) = (cases[case], payload) {
                type_check(pv, pt)?;
            }
            true
        }
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(trap!("type mismatch: expected {t}, found {} value", v.kind()))
    }
}
