//! Alignment, size and flattening of types (CanonicalABI.md "Alignment",
//! "Element Size", "Flattening"). 32-bit memories only: `ptr_type` is i32.

use crate::values::{Case, FuncType, Type};
use std::cell::RefCell;
use std::sync::{Arc, Weak};

pub const MAX_FLAT_PARAMS: usize = 16;
pub const MAX_FLAT_RESULTS: usize = 1;

/// A core value type in a flattened signature.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Flat {
    I32,
    I64,
    F32,
    F64,
}

impl Flat {
    pub fn wasmi(self) -> wasmi::ValType {
        match self {
            Flat::I32 => wasmi::ValType::I32,
            Flat::I64 => wasmi::ValType::I64,
            Flat::F32 => wasmi::ValType::F32,
            Flat::F64 => wasmi::ValType::F64,
        }
    }
}

/// The payload types of a variant-like type (variant, enum, option, result),
/// in case order; `None` where the type is not variant-like.
pub fn variant_cases(t: &Type) -> Option<Vec<Option<&Type>>> {
    cases(t).map(|(_, payloads)| payloads.collect())
}

/// [`variant_cases`] without allocating: layout questions are asked on
/// every call. Gives the number of cases too.
fn cases(t: &Type) -> Option<(usize, impl Iterator<Item = Option<&Type>>)> {
    let (n, variant, pair): (usize, &[crate::values::Case], [Option<&Type>; 2]) = match t {
        Type::Variant(cases) => (cases.len(), cases, [None, None]),
        Type::Enum(names) => (names.len(), &[], [None, None]),
        Type::Option(t) => (2, &[], [None, Some(&**t)]),
        Type::Result { ok, err } => (2, &[], [ok.as_deref(), err.as_deref()]),
        _ => return None,
    };
    let payloads = variant.iter().map(|c| c.ty.as_ref()).chain(pair);
    Some((n, payloads.chain(std::iter::repeat(None)).take(n)))
}

/// Byte size of the discriminant for `n` cases.
pub fn discriminant_size(n: usize) -> u32 {
    if n <= 1 << 8 {
        1
    } else if n <= 1 << 16 {
        2
    } else {
        4
    }
}

pub fn flags_size(n: usize) -> u32 {
    if n <= 8 {
        1
    } else if n <= 16 {
        2
    } else {
        4
    }
}

pub fn alignment(t: &Type) -> u32 {
    size_align(t).1
}

pub fn max_case_alignment(cases: &[Option<&Type>]) -> u32 {
    cases.iter().flatten().map(|t| alignment(t)).max().unwrap_or(1)
}

pub fn align_to(ptr: u32, align: u32) -> u32 {
    ptr.div_ceil(align) * align
}

/// Like [`align_to`] on u64, for bounds arithmetic that must not wrap.
pub fn align_to64(ptr: u64, align: u32) -> u64 {
    ptr.div_ceil(align as u64) * align as u64
}

pub fn elem_size(t: &Type) -> u32 {
    size_align(t).0
}

/// A type's element size and alignment, found in one walk of it.
fn size_align(t: &Type) -> (u32, u32) {
    match t {
        Type::Bool | Type::S8 | Type::U8 => (1, 1),
        Type::S16 | Type::U16 => (2, 2),
        Type::S32 | Type::U32 | Type::F32 | Type::Char => (4, 4),
        Type::S64 | Type::U64 | Type::F64 => (8, 8),
        Type::String | Type::List(_) | Type::Map(..) => (8, 4),
        Type::FixedList(e, n) => {
            let (size, align) = size_align(e);
            (size.saturating_mul(*n), align)
        }
        Type::Record(fields) => record_size_align(fields.iter().map(|f| &f.ty)),
        Type::Tuple(ts) => record_size_align(ts.iter()),
        Type::Flags(names) => (flags_size(names.len()), flags_size(names.len())),
        Type::Own(_) | Type::Borrow(_) => (4, 4),
        Type::Variant(cases) if cases.len() >= REMEMBERED_CASES => remembered(cases).size_align,
        _ => cases_size_align(t),
    }
}

/// Variants with this many cases have their layout remembered.
const REMEMBERED_CASES: usize = 8;

/// What is remembered of a large variant.
#[derive(Clone, Copy)]
struct Remembered {
    size_align: (u32, u32),
    flat_len: usize,
}

/// The layout of a large variant, remembered per thread: wasi:http's
/// `error-code` (39 cases, most with payloads) is laid out again in every
/// call that passes or returns a `result` of it. Keyed by the cases'
/// allocation: the memo holds it weakly, so the address cannot be reused
/// while kept, and what the cases hold (host resource types) is not kept
/// alive. A host function's type is built once per `InstancePre`, so the
/// few kept serve every instance.
fn remembered(cases: &Arc<[Case]>) -> Remembered {
    const KEPT: usize = 32;
    /// Kept entries, and where the next one goes (oldest first out).
    struct Memo {
        kept: Vec<(Weak<[Case]>, Remembered)>,
        next: usize,
    }
    thread_local! {
        static MEMO: RefCell<Memo> = const { RefCell::new(Memo { kept: Vec::new(), next: 0 }) };
    }
    let at = Arc::as_ptr(cases).cast::<()>();
    let found = MEMO.with_borrow(|memo| {
        memo.kept
            .iter()
            .find(|(c, _)| c.as_ptr().cast::<()>() == at)
            .map(|(_, r)| *r)
    });
    if let Some(r) = found {
        return r;
    }
    let t = Type::Variant(cases.clone());
    let r = Remembered {
        size_align: cases_size_align(&t),
        flat_len: cases_flat_len(&t),
    };
    let key = Arc::downgrade(cases);
    MEMO.with_borrow_mut(|memo| {
        if memo.kept.len() < KEPT {
            memo.kept.push((key, r));
        } else {
            let next = memo.next;
            memo.kept[next] = (key, r);
            memo.next = (next + 1) % KEPT;
        }
    });
    r
}

/// [`size_align`] of a variant-like type (variant, enum, option, result).
fn cases_size_align(t: &Type) -> (u32, u32) {
    let Some((n, payloads)) = cases(t) else { return (1, 1) };
    let (size, align) = payloads
        .flatten()
        .map(size_align)
        .fold((0, 1), |(s, a), (ps, pa)| (s.max(ps), a.max(pa)));
    let discriminant = discriminant_size(n);
    let whole = discriminant.max(align);
    (align_to(align_to(discriminant, align) + size, whole), whole)
}

fn record_size_align<'a>(fields: impl Iterator<Item = &'a Type>) -> (u32, u32) {
    let mut s = 0u32;
    let mut a = 1;
    for f in fields {
        let (size, align) = size_align(f);
        s = align_to(s, align).saturating_add(size);
        a = a.max(align);
    }
    (align_to(s, a), a)
}

/// Field offsets of a record-like type, relative to its start.
pub fn field_offsets<'a>(fields: impl Iterator<Item = &'a Type>) -> Vec<u32> {
    let mut offsets = Vec::new();
    let mut s = 0;
    for f in fields {
        s = align_to(s, alignment(f));
        offsets.push(s);
        s += elem_size(f);
    }
    offsets
}

/// Offset of a variant's payload from its start.
pub fn payload_offset(cases: &[Option<&Type>]) -> u32 {
    align_to(discriminant_size(cases.len()), max_case_alignment(cases))
}

pub fn flatten_type(t: &Type, out: &mut Vec<Flat>) {
    match t {
        Type::Bool | Type::S8 | Type::U8 | Type::S16 | Type::U16 | Type::S32 | Type::U32 | Type::Char => {
            out.push(Flat::I32)
        }
        Type::S64 | Type::U64 => out.push(Flat::I64),
        Type::F32 => out.push(Flat::F32),
        Type::F64 => out.push(Flat::F64),
        Type::String | Type::List(_) | Type::Map(..) => out.extend([Flat::I32, Flat::I32]),
        Type::FixedList(e, n) => {
            for _ in 0..*n {
                flatten_type(e, out);
            }
        }
        Type::Record(fields) => fields.iter().for_each(|f| flatten_type(&f.ty, out)),
        Type::Tuple(ts) => ts.iter().for_each(|t| flatten_type(t, out)),
        Type::Flags(_) | Type::Own(_) | Type::Borrow(_) => out.push(Flat::I32),
        _ => {
            if let Some((_, payloads)) = cases(t) {
                flatten_cases(payloads.flatten(), out);
            }
        }
    }
}

/// A variant's flat values onto `out`: the discriminant, then each payload
/// position joined across cases. A case's values go after the joined
/// ones, are folded in, and the list is cut back (no allocation).
fn flatten_cases<'a>(payloads: impl Iterator<Item = &'a Type>, out: &mut Vec<Flat>) {
    out.push(Flat::I32);
    let joined_from = out.len();
    let mut joined = 0;
    for payload in payloads {
        let case_from = out.len();
        flatten_type(payload, out);
        let case_len = out.len() - case_from;
        for i in 0..case_len {
            let v = out[case_from + i];
            let slot = &mut out[joined_from + i];
            *slot = if i < joined { join(*slot, v) } else { v };
        }
        joined = joined.max(case_len);
        out.truncate(joined_from + joined);
    }
}

/// How many flat values `t` takes (`flatten_type(t).len()`), without
/// building them.
pub fn flat_len(t: &Type) -> usize {
    match t {
        Type::String | Type::List(_) | Type::Map(..) => 2,
        Type::FixedList(e, n) => flat_len(e).saturating_mul(*n as usize),
        Type::Record(fields) => fields.iter().map(|f| flat_len(&f.ty)).fold(0, usize::saturating_add),
        Type::Tuple(ts) => ts.iter().map(flat_len).fold(0, usize::saturating_add),
        Type::Flags(_) => 1,
        Type::Variant(cases) if cases.len() >= REMEMBERED_CASES => remembered(cases).flat_len,
        Type::Variant(_) | Type::Enum(_) | Type::Option(_) | Type::Result { .. } => cases_flat_len(t),
        _ => 1,
    }
}

/// [`flat_len`] of a variant-like type: the discriminant and its widest case.
fn cases_flat_len(t: &Type) -> usize {
    cases(t).map_or(1, |(_, payloads)| {
        payloads.flatten().map(flat_len).max().unwrap_or(0).saturating_add(1)
    })
}

fn join(a: Flat, b: Flat) -> Flat {
    match (a, b) {
        _ if a == b => a,
        (Flat::I32, Flat::F32) | (Flat::F32, Flat::I32) => Flat::I32,
        _ => Flat::I64,
    }
}

impl FuncType {
    /// A function type, with its flat core value counts.
    pub fn new(params: Vec<(String, Type)>, result: Option<Type>) -> Self {
        FuncType {
            flat_params: flatten_types(params.iter().map(|(_, t)| t)).len(),
            flat_results: flatten_types(result.iter()).len(),
            params: params.into(),
            result,
        }
    }

    /// Whether the parameters travel through memory (more than 16 flat values).
    pub fn params_spilled(&self) -> bool {
        self.flat_params > MAX_FLAT_PARAMS
    }

    /// Whether the result travels through memory (more than 1 flat value).
    pub fn result_spilled(&self) -> bool {
        self.flat_results > MAX_FLAT_RESULTS
    }
}

pub fn flatten_types<'a>(ts: impl Iterator<Item = &'a Type>) -> Vec<Flat> {
    let mut out = Vec::new();
    for t in ts {
        flatten_type(t, &mut out);
    }
    out
}

/// The core signature of a function, for `canon lift` (`lower == false`) or
/// `canon lower` (`lower == true`).
pub fn flatten_functype(ft: &FuncType, lower: bool) -> (Vec<Flat>, Vec<Flat>) {
    let mut params = flatten_types(ft.param_types());
    let mut results = flatten_types(ft.result.iter());
    if params.len() > MAX_FLAT_PARAMS {
        params = vec![Flat::I32];
    }
    if results.len() > MAX_FLAT_RESULTS {
        if lower {
            params.push(Flat::I32);
            results = vec![];
        } else {
            results = vec![Flat::I32];
        }
    }
    (params, results)
}

/// Whether lifting or lowering values of `t` needs linear memory.
pub fn needs_memory(t: &Type) -> bool {
    match t {
        Type::String | Type::List(_) | Type::Map(..) => true,
        Type::FixedList(e, _) => needs_memory(e),
        Type::Record(fields) => fields.iter().any(|f| needs_memory(&f.ty)),
        Type::Tuple(ts) => ts.iter().any(needs_memory),
        _ => variant_cases(t).is_some_and(|cs| cs.iter().flatten().any(|t| needs_memory(t))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::values::{Case, Field};
    use std::sync::Arc;

    fn record(ts: &[Type]) -> Type {
        Type::Record(
            ts.iter()
                .enumerate()
                .map(|(i, t)| Field {
                    name: format!("f{i}"),
                    ty: t.clone(),
                })
                .collect::<Vec<_>>()
                .into(),
        )
    }

    #[test]
    fn record_layout_pads_to_the_largest_alignment() {
        let r = record(&[Type::U8, Type::U32, Type::U8]);
        assert_eq!((alignment(&r), elem_size(&r)), (4, 12));
        assert_eq!(field_offsets([Type::U8, Type::U64, Type::U16].iter()), vec![0, 8, 16]);
    }

    #[test]
    fn variant_discriminant_and_payload() {
        let opt = Type::Option(Arc::new(Type::U64));
        assert_eq!((alignment(&opt), elem_size(&opt)), (8, 16));
        let cases: Vec<Case> = (0..300)
            .map(|i| Case {
                name: format!("c{i}"),
                ty: None,
            })
            .collect();
        let big = Type::Variant(cases.into());
        assert_eq!(elem_size(&big), 2, "more than 256 cases need a u16 discriminant");
        assert_eq!(flags_size(9), 2);
        assert_eq!(flags_size(32), 4);
    }

    #[test]
    fn a_large_variant_is_laid_out_as_walked_and_as_remembered() {
        // Like wasi:http's error-code: many cases, payloads of every width.
        let payloads = [
            None,
            Some(Type::U8),
            Some(Type::Option(Arc::new(Type::String))),
            Some(record(&[Type::Option(Arc::new(Type::U16)), Type::U64])),
            Some(Type::Option(Arc::new(Type::U32))),
        ];
        let cases: Vec<Case> = (0..40)
            .map(|i| Case {
                name: format!("c{i}"),
                ty: payloads[i % payloads.len()].clone(),
            })
            .collect();
        let cases: Arc<[Case]> = cases.into();
        // As many cases, all without payloads: only the allocation tells
        // the two apart.
        let bare: Arc<[Case]> = cases
            .iter()
            .map(|c| Case {
                name: c.name.clone(),
                ty: None,
            })
            .collect();
        let t = Type::Result {
            ok: Some(Arc::new(Type::Own(crate::values::ResourceType::host("r", None)))),
            err: Some(Arc::new(Type::Variant(cases.clone()))),
        };
        let walked = cases_size_align(&Type::Variant(cases.clone()));
        assert_eq!(walked, (24, 8), "u8 discriminant, 8-aligned 16-byte payload");
        for round in 0..2 {
            assert_eq!(size_align(&Type::Variant(cases.clone())), walked, "round {round}");
            assert_eq!(size_align(&Type::Variant(bare.clone())), (1, 1), "round {round}");
            assert_eq!(flat_len(&Type::Variant(bare.clone())), 1, "round {round}");
            assert_eq!((elem_size(&t), alignment(&t)), (32, 8), "round {round}");
            let mut flat = Vec::new();
            flatten_type(&t, &mut flat);
            assert_eq!(flat_len(&t), flat.len(), "round {round}");
            assert_eq!(flat.len(), 5, "two discriminants, a payload of (i32, i32, i64)");
        }
        for t in [record(&[Type::String, Type::F64]), Type::Enum(vec!["a".into()].into())] {
            let mut flat = Vec::new();
            flatten_type(&t, &mut flat);
            assert_eq!(flat_len(&t), flat.len());
        }
    }

    #[test]
    fn flattening_joins_variant_payloads() {
        let v = Type::Variant(
            vec![
                Case {
                    name: "a".into(),
                    ty: Some(Type::F32),
                },
                Case {
                    name: "b".into(),
                    ty: Some(Type::U32),
                },
                Case {
                    name: "c".into(),
                    ty: Some(Type::F64),
                },
            ]
            .into(),
        );
        assert_eq!(flatten_types([&v].into_iter()), vec![Flat::I32, Flat::I64]);
        let v = Type::Variant(
            vec![
                Case {
                    name: "a".into(),
                    ty: Some(Type::F32),
                },
                Case {
                    name: "b".into(),
                    ty: Some(Type::U32),
                },
            ]
            .into(),
        );
        assert_eq!(flatten_types([&v].into_iter()), vec![Flat::I32, Flat::I32]);
    }

    #[test]
    fn sixteen_flat_params_then_a_pointer() {
        let params: Vec<(String, Type)> = (0..17).map(|i| (format!("p{i}"), Type::U32)).collect();
        let ft = FuncType::new(params[..16].to_vec(), Some(Type::String));
        assert_eq!(flatten_functype(&ft, false), (vec![Flat::I32; 16], vec![Flat::I32]));
        assert_eq!(flatten_functype(&ft, true), (vec![Flat::I32; 17], vec![]));
        let ft = FuncType::new(params, None);
        assert_eq!(flatten_functype(&ft, false).0, vec![Flat::I32]);
    }
}
