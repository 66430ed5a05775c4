//! Lifting: core values and linear memory → [`Val`] (CanonicalABI.md
//! "Loading" and "Flat Lifting").

use super::handles::check_type;
use super::layout::{
    alignment, discriminant_size, elem_size, field_offsets, flags_size, flat_len, flatten_type, payload_offset,
    variant_cases,
};
use super::strings::lift_string;
use super::{trap, Cx, Trap, MAX_LIST_BYTE_LENGTH};
use crate::values::{ResourceAny, Scalars, Val};
use crate::values::{ResourceType, Type};

/// Flat core values as raw bits (i32/f32 in the low 32 bits): joined variant
/// slots then need no coercion beyond truncation.
pub struct FlatIter<'v> {
    vals: &'v [u64],
    i: usize,
}

impl<'v> FlatIter<'v> {
    pub fn new(vals: &'v [u64]) -> Self {
        FlatIter { vals, i: 0 }
    }
    pub fn take(&mut self) -> Result<u64, Trap> {
        let v = self
            .vals
            .get(self.i)
            .copied()
            .ok_or_else(|| trap!("too few core values"))?;
        self.i += 1;
        Ok(v)
    }
    fn next_i32(&mut self) -> Result<u32, Trap> {
        Ok(self.take()? as u32)
    }
}

pub fn load<T>(cx: &mut Cx<'_, '_, T>, ptr: u32, t: &Type) -> Result<Val, Trap> {
    Ok(match t {
        Type::Bool => Val::Bool(cx.load_u8(ptr)? != 0),
        Type::U8 => Val::U8(cx.load_u8(ptr)?),
        Type::U16 => Val::U16(cx.load_u16(ptr)?),
        Type::U32 => Val::U32(cx.load_u32(ptr)?),
        Type::U64 => Val::U64(cx.load_u64(ptr)?),
        Type::S8 => Val::S8(cx.load_u8(ptr)? as i8),
        Type::S16 => Val::S16(cx.load_u16(ptr)? as i16),
        Type::S32 => Val::S32(cx.load_u32(ptr)? as i32),
        Type::S64 => Val::S64(cx.load_u64(ptr)? as i64),
        Type::F32 => Val::Float32(canonicalize_nan32(f32::from_bits(cx.load_u32(ptr)?))),
        Type::F64 => Val::Float64(canonicalize_nan64(f64::from_bits(cx.load_u64(ptr)?))),
        Type::Char => Val::Char(convert_i32_to_char(cx.load_u32(ptr)?)?),
        Type::String => {
            let (begin, units) = (cx.load_u32(ptr)?, cx.load_u32(ptr + 4)?);
            lift_string(cx, begin, units)?
        }
        Type::List(e) if cx.compact_bytes && **e == Type::U8 => {
            let (begin, len) = (cx.load_u32(ptr)?, cx.load_u32(ptr + 4)?);
            Val::Bytes(load_bytes_from_range(cx, begin, len)?)
        }
        Type::List(e) if cx.compact_bytes && is_scalar(e) => {
            let (begin, len) = (cx.load_u32(ptr)?, cx.load_u32(ptr + 4)?);
            Val::Scalars(load_scalars_from_range(cx, begin, len, e)?)
        }
        Type::List(e) => {
            let (begin, len) = (cx.load_u32(ptr)?, cx.load_u32(ptr + 4)?);
            Val::List(load_list_from_range(cx, begin, len, e)?)
        }
        Type::Map(k, v) => {
            let (begin, len) = (cx.load_u32(ptr)?, cx.load_u32(ptr + 4)?);
            let entry = Type::Tuple(vec![(**k).clone(), (**v).clone()].into());
            let entries = load_list_from_range(cx, begin, len, &entry)?;
            Val::Map(entries.into_iter().map(tuple_pair).collect())
        }
        Type::FixedList(e, n) => {
            let size = elem_size(e);
            let mut vs = Vec::with_capacity(*n as usize);
            for i in 0..*n {
                vs.push(load(cx, ptr + i * size, e)?);
            }
            Val::List(vs)
        }
        Type::Record(fields) => {
            let names: usize = fields.iter().map(|f| f.name.len()).sum();
            cx.charge_lift((fields.len() * std::mem::size_of::<(String, Val)>() + names) as u64)?;
            let offsets = field_offsets(fields.iter().map(|f| &f.ty));
            let mut out = Vec::with_capacity(fields.len());
            for (f, off) in fields.iter().zip(offsets) {
                out.push((f.name.clone(), load(cx, ptr + off, &f.ty)?));
            }
            Val::Record(out)
        }
        Type::Tuple(ts) => {
            cx.charge_lift((ts.len() * std::mem::size_of::<Val>()) as u64)?;
            let offsets = field_offsets(ts.iter());
            let mut out = Vec::with_capacity(ts.len());
            for (t, off) in ts.iter().zip(offsets) {
                out.push(load(cx, ptr + off, t)?);
            }
            Val::Tuple(out)
        }
        Type::Flags(names) => {
            let bits = match flags_size(names.len()) {
                1 => cx.load_u8(ptr)? as u32,
                2 => cx.load_u16(ptr)? as u32,
                _ => cx.load_u32(ptr)?,
            };
            unpack_flags(bits, names)
        }
        Type::Own(rt) => lift_own(cx, cx.load_u32(ptr)?, rt)?,
        Type::Borrow(rt) => lift_borrow(cx, cx.load_u32(ptr)?, rt)?,
        _ => {
            let cases = variant_cases(t).expect("variant-like");
            let disc = match discriminant_size(cases.len()) {
                1 => cx.load_u8(ptr)? as u32,
                2 => cx.load_u16(ptr)? as u32,
                _ => cx.load_u32(ptr)?,
            };
            let case = disc as usize;
            if case >= cases.len() {
                return Err(bad_discriminant(disc, cases.len()));
            }
            let payload = match cases[case] {
                Some(pt) => Some(Box::new(load(cx, ptr + payload_offset(&cases), pt)?)),
                None => None,
            };
            make_variant(t, case, payload)
        }
    })
}

/// A discriminant with no case: the spec tests match the first half of the
/// message, wasmtime's the second.
fn bad_discriminant(disc: u32, cases: usize) -> Trap {
    trap!("invalid variant discriminant: discriminant {disc} out of range [0..{cases})")
}

pub(crate) fn tuple_pair(v: Val) -> (Val, Val) {
    match v {
        Val::Tuple(mut kv) if kv.len() == 2 => {
            let v = kv.pop().expect("len 2");
            (kv.pop().expect("len 2"), v)
        }
        _ => unreachable!("map entries are loaded as pairs"),
    }
}

/// Builds the value of case `case` of a variant-like type.
pub fn make_variant(t: &Type, case: usize, payload: Option<Box<Val>>) -> Val {
    match t {
        Type::Variant(cases) => Val::Variant(cases[case].name.clone(), payload),
        Type::Enum(names) => Val::Enum(names[case].clone()),
        Type::Option(_) => Val::Option(if case == 0 { None } else { payload }),
        Type::Result { .. } => Val::Result(if case == 0 { Ok(payload) } else { Err(payload) }),
        _ => unreachable!("not a variant-like type"),
    }
}

pub fn unpack_flags(bits: u32, names: &[String]) -> Val {
    Val::Flags(
        names
            .iter()
            .enumerate()
            .filter(|(i, _)| bits & (1 << i) != 0)
            .map(|(_, n)| n.clone())
            .collect(),
    )
}

pub fn canonicalize_nan32(f: f32) -> f32 {
    if f.is_nan() {
        f32::from_bits(0x7fc00000)
    } else {
        f
    }
}

pub fn canonicalize_nan64(f: f64) -> f64 {
    if f.is_nan() {
        f64::from_bits(0x7ff8000000000000)
    } else {
        f
    }
}

pub fn convert_i32_to_char(i: u32) -> Result<char, Trap> {
    char::from_u32(i).ok_or_else(|| trap!("invalid `char` bit pattern"))
}

/// A `list<u8>` as bytes, with the checks of [`load_list_from_range`].
pub fn load_bytes_from_range<T>(cx: &mut Cx<'_, '_, T>, ptr: u32, len: u32) -> Result<Vec<u8>, Trap> {
    if len as u64 > MAX_LIST_BYTE_LENGTH {
        return Err(trap!("list byte length {len} exceeds the maximum"));
    }
    cx.check_range(ptr, 1, len as u64, "list")?;
    cx.charge_lift(len as u64)?;
    Ok(cx.mem()?[ptr as usize..ptr as usize + len as usize].to_vec())
}

/// Scalar types other than `u8` (which lifts as `Val::Bytes`).
fn is_scalar(t: &Type) -> bool {
    matches!(
        t,
        Type::Bool
            | Type::S8
            | Type::S16
            | Type::U16
            | Type::S32
            | Type::U32
            | Type::S64
            | Type::U64
            | Type::F32
            | Type::F64
            | Type::Char
    )
}

/// A list of scalars as one vector (NaNs canonicalised, chars checked).
pub fn load_scalars_from_range<T>(cx: &mut Cx<'_, '_, T>, ptr: u32, len: u32, e: &Type) -> Result<Scalars, Trap> {
    let size = elem_size(e) as usize;
    let byte_len = len as u64 * size as u64;
    if byte_len > MAX_LIST_BYTE_LENGTH {
        return Err(trap!("list byte length {byte_len} exceeds the maximum"));
    }
    cx.check_range(ptr, alignment(e), byte_len, "list")?;
    cx.charge_lift(byte_len)?;
    let mem = &cx.mem()?[ptr as usize..(ptr as u64 + byte_len) as usize];
    fn each<const N: usize, R>(mem: &[u8], f: impl Fn([u8; N]) -> R) -> Vec<R> {
        mem.chunks_exact(N).map(|c| f(c.try_into().expect("N bytes"))).collect()
    }
    Ok(match e {
        Type::Bool => Scalars::Bool(mem.iter().map(|b| *b != 0).collect()),
        Type::S8 => Scalars::S8(each(mem, i8::from_le_bytes)),
        Type::S16 => Scalars::S16(each(mem, i16::from_le_bytes)),
        Type::U16 => Scalars::U16(each(mem, u16::from_le_bytes)),
        Type::S32 => Scalars::S32(each(mem, i32::from_le_bytes)),
        Type::U32 => Scalars::U32(each(mem, u32::from_le_bytes)),
        Type::S64 => Scalars::S64(each(mem, i64::from_le_bytes)),
        Type::U64 => Scalars::U64(each(mem, u64::from_le_bytes)),
        Type::F32 => Scalars::F32(each(mem, |b| canonicalize_nan32(f32::from_le_bytes(b)))),
        Type::F64 => Scalars::F64(each(mem, |b| canonicalize_nan64(f64::from_le_bytes(b)))),
        Type::Char => Scalars::Char(
            each(mem, u32::from_le_bytes)
                .into_iter()
                .map(convert_i32_to_char)
                .collect::<Result<_, _>>()?,
        ),
        other => return Err(trap!("internal: {other} is not a scalar")),
    })
}

pub fn load_list_from_range<T>(cx: &mut Cx<'_, '_, T>, ptr: u32, len: u32, e: &Type) -> Result<Vec<Val>, Trap> {
    let size = elem_size(e) as u64;
    let byte_len = len as u64 * size;
    if byte_len > MAX_LIST_BYTE_LENGTH {
        return Err(trap!("list byte length {byte_len} exceeds the maximum"));
    }
    cx.check_range(ptr, alignment(e), byte_len, "list")?;
    cx.charge_lift(len as u64 * std::mem::size_of::<Val>() as u64)?;
    let mut out = Vec::with_capacity(len as usize);
    // Fast path for bytes.
    if matches!(e, Type::U8) {
        let mem = cx.mem()?;
        out.extend(
            mem[ptr as usize..(ptr as u64 + byte_len) as usize]
                .iter()
                .map(|b| Val::U8(*b)),
        );
        return Ok(out);
    }
    for i in 0..len {
        out.push(load(cx, ptr + i * size as u32, e)?);
    }
    Ok(out)
}

pub fn lift_own<T>(cx: &mut Cx<'_, '_, T>, i: u32, rt: &ResourceType) -> Result<Val, Trap> {
    let h = cx.inst().handles.get(i)?.clone();
    check_type(i, &h, rt)?;
    if h.num_lends != 0 {
        return Err(trap!("cannot remove owned resource while borrowed"));
    }
    if !h.own {
        return Err(trap!("cannot lift own<{}> from a borrowed handle index {i}", rt.name()));
    }
    cx.inst().handles.remove(i)?;
    Ok(Val::Resource(ResourceAny {
        ty: rt.clone(),
        rep: h.rep,
        own: true,
    }))
}

pub fn lift_borrow<T>(cx: &mut Cx<'_, '_, T>, i: u32, rt: &ResourceType) -> Result<Val, Trap> {
    let h = cx.inst().handles.get_mut(i)?;
    let rep = h.rep;
    check_type(i, &h.clone(), rt)?;
    h.num_lends += 1;
    cx.lenders.push(i);
    Ok(Val::Resource(ResourceAny {
        ty: rt.clone(),
        rep,
        own: false,
    }))
}

pub fn lift_flat<T>(cx: &mut Cx<'_, '_, T>, vi: &mut FlatIter<'_>, t: &Type) -> Result<Val, Trap> {
    Ok(match t {
        Type::Bool => Val::Bool(vi.next_i32()? != 0),
        Type::U8 => Val::U8(vi.next_i32()? as u8),
        Type::U16 => Val::U16(vi.next_i32()? as u16),
        Type::U32 => Val::U32(vi.next_i32()?),
        Type::U64 => Val::U64(vi.take()?),
        Type::S8 => Val::S8(vi.next_i32()? as i8),
        Type::S16 => Val::S16(vi.next_i32()? as i16),
        Type::S32 => Val::S32(vi.next_i32()? as i32),
        Type::S64 => Val::S64(vi.take()? as i64),
        Type::F32 => Val::Float32(canonicalize_nan32(f32::from_bits(vi.next_i32()?))),
        Type::F64 => Val::Float64(canonicalize_nan64(f64::from_bits(vi.take()?))),
        Type::Char => Val::Char(convert_i32_to_char(vi.next_i32()?)?),
        Type::String => {
            let (ptr, units) = (vi.next_i32()?, vi.next_i32()?);
            lift_string(cx, ptr, units)?
        }
        Type::List(e) if cx.compact_bytes && **e == Type::U8 => {
            let (ptr, len) = (vi.next_i32()?, vi.next_i32()?);
            Val::Bytes(load_bytes_from_range(cx, ptr, len)?)
        }
        Type::List(e) if cx.compact_bytes && is_scalar(e) => {
            let (ptr, len) = (vi.next_i32()?, vi.next_i32()?);
            Val::Scalars(load_scalars_from_range(cx, ptr, len, e)?)
        }
        Type::List(e) => {
            let (ptr, len) = (vi.next_i32()?, vi.next_i32()?);
            Val::List(load_list_from_range(cx, ptr, len, e)?)
        }
        Type::Map(k, v) => {
            let (ptr, len) = (vi.next_i32()?, vi.next_i32()?);
            let entry = Type::Tuple(vec![(**k).clone(), (**v).clone()].into());
            let entries = load_list_from_range(cx, ptr, len, &entry)?;
            Val::Map(entries.into_iter().map(tuple_pair).collect())
        }
        Type::FixedList(e, n) => {
            let mut vs = Vec::with_capacity(*n as usize);
            for _ in 0..*n {
                vs.push(lift_flat(cx, vi, e)?);
            }
            Val::List(vs)
        }
        Type::Record(fields) => {
            let mut out = Vec::with_capacity(fields.len());
            for f in fields.iter() {
                out.push((f.name.clone(), lift_flat(cx, vi, &f.ty)?));
            }
            Val::Record(out)
        }
        Type::Tuple(ts) => {
            let mut out = Vec::with_capacity(ts.len());
            for t in ts.iter() {
                out.push(lift_flat(cx, vi, t)?);
            }
            Val::Tuple(out)
        }
        Type::Flags(names) => unpack_flags(vi.next_i32()?, names),
        Type::Own(rt) => lift_own(cx, vi.next_i32()?, rt)?,
        Type::Borrow(rt) => lift_borrow(cx, vi.next_i32()?, rt)?,
        _ => {
            let cases = variant_cases(t).expect("variant-like");
            let slots = flat_len(t).saturating_sub(1);
            let disc = vi.next_i32()?;
            let case = disc as usize;
            if case >= cases.len() {
                return Err(bad_discriminant(disc, cases.len()));
            }
            let (payload, used) = match cases[case] {
                Some(pt) => {
                    let mut flat = Vec::new();
                    flatten_type(pt, &mut flat);
                    // Joined slots are raw bits: truncate to each wanted type.
                    let mut raw = Vec::with_capacity(flat.len());
                    for want in &flat {
                        let x = vi.take()?;
                        raw.push(match want {
                            super::layout::Flat::I32 | super::layout::Flat::F32 => x as u32 as u64,
                            _ => x,
                        });
                    }
                    let v = lift_flat(cx, &mut FlatIter::new(&raw), pt)?;
                    (Some(Box::new(v)), flat.len())
                }
                None => (None, 0),
            };
            for _ in used..slots {
                vi.take()?;
            }
            make_variant(t, case, payload)
        }
    })
}

/// `lift_flat_values`: all of `ts` from flat values, or through a pointer when
/// they are `spilled` (flatten to more than the limit).
pub fn lift_flat_values<'t, T>(
    cx: &mut Cx<'_, '_, T>,
    spilled: bool,
    vi: &mut FlatIter<'_>,
    ts: impl ExactSizeIterator<Item = &'t Type> + Clone,
) -> Result<Vec<Val>, Trap> {
    if spilled {
        let ptr = vi.next_i32()?;
        let tuple = Type::Tuple(ts.cloned().collect::<Vec<_>>().into());
        check_tuple_ptr(cx, ptr, &tuple)?;
        match load(cx, ptr, &tuple)? {
            Val::Tuple(vs) => Ok(vs),
            _ => unreachable!("a tuple loads as a tuple"),
        }
    } else {
        let mut out = Vec::with_capacity(ts.len());
        for t in ts {
            out.push(lift_flat(cx, vi, t)?);
        }
        Ok(out)
    }
}

/// The pointer to spilled params or results must be aligned and in bounds.
pub fn check_tuple_ptr<T>(cx: &Cx<'_, '_, T>, ptr: u32, tuple: &Type) -> Result<(), Trap> {
    if !ptr.is_multiple_of(alignment(tuple)) {
        return Err(trap!("unaligned pointer"));
    }
    if ptr as u64 + elem_size(tuple) as u64 > cx.mem_len()? {
        return Err(trap!("pointer out of bounds of memory"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::{Component, Engine, Linker, Store};

    /// The error text of calling `f`, which lifts the core `body` (returning
    /// `core`) as component type `ty`.
    fn trap_of(ty: &str, core: &str, body: &str) -> String {
        let wat = format!(
            r#"(component
  (core module $M (memory (export "mem") 1) (func (export "f") (result {core}) {body}))
  (core instance $m (instantiate $M))
  (type $T0 {ty})
  (export $T "t" (type $T0))
  (func (export "f") (result $T) (canon lift (core func $m "f") (memory (core memory $m "mem")))))"#
        );
        let engine = Engine::default();
        let component = Component::new(&engine, wat.as_bytes()).unwrap_or_else(|e| panic!("{e:#}"));
        let mut store = Store::new(&engine, ());
        let instance = Linker::default().instantiate(&mut store, &component).unwrap();
        let f = instance.get_func(&store, "f").unwrap();
        format!("{:#}", f.call(&mut store, &[]).expect_err("expected a trap"))
    }

    /// The spec tests match `invalid variant discriminant`, wasmtime's
    /// `discriminant N out of range [0..CASES)`: the trap says both, flat
    /// and loaded from memory.
    #[test]
    fn a_bad_discriminant_says_it_is_out_of_the_cases_range() {
        let flat = trap_of(r#"(enum "a" "b" "c")"#, "i32", "(i32.const 3)");
        assert!(
            flat.contains("invalid variant discriminant: discriminant 3 out of range [0..3)"),
            "{flat}"
        );
        let stored = trap_of(
            r#"(variant (case "a" u32) (case "b"))"#,
            "i32",
            "(i32.store8 (i32.const 0) (i32.const 2)) (i32.const 0)",
        );
        assert!(
            stored.contains("invalid variant discriminant: discriminant 2 out of range [0..2)"),
            "{stored}"
        );
    }
}
