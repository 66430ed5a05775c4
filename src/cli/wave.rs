//! WAVE (the WebAssembly Value Encoding, `wasm-wave`) for `run --invoke`:
//! parsing a call like `add(1, 2)` against an export's type, and printing
//! results.

use crate::values::Val;
use crate::values::{FuncType, Type};
use anyhow::{anyhow, bail, Result};
use std::borrow::Cow;
use wasm_wave::value::{Type as WType, Value};
use wasm_wave::wasm::{WasmTypeKind, WasmValue};

fn wave_type(t: &Type) -> Result<WType> {
    let none = || anyhow!("type {t} cannot be written in WAVE");
    Ok(match t {
        Type::Bool => WType::BOOL,
        Type::S8 => WType::S8,
        Type::U8 => WType::U8,
        Type::S16 => WType::S16,
        Type::U16 => WType::U16,
        Type::S32 => WType::S32,
        Type::U32 => WType::U32,
        Type::S64 => WType::S64,
        Type::U64 => WType::U64,
        Type::F32 => WType::F32,
        Type::F64 => WType::F64,
        Type::Char => WType::CHAR,
        Type::String => WType::STRING,
        Type::List(e) => WType::list(wave_type(e)?),
        Type::FixedList(e, n) => WType::fixed_length_list(wave_type(e)?, *n),
        Type::Map(k, v) => WType::map(wave_type(k)?, wave_type(v)?).ok_or_else(none)?,
        Type::Record(fields) => WType::record(
            fields
                .iter()
                .map(|f| Ok((f.name.clone(), wave_type(&f.ty)?)))
                .collect::<Result<Vec<_>>>()?,
        )
        .ok_or_else(none)?,
        Type::Tuple(ts) => WType::tuple(ts.iter().map(wave_type).collect::<Result<Vec<_>>>()?).ok_or_else(none)?,
        Type::Variant(cases) => WType::variant(
            cases
                .iter()
                .map(|c| Ok((c.name.clone(), c.ty.as_ref().map(wave_type).transpose()?)))
                .collect::<Result<Vec<_>>>()?,
        )
        .ok_or_else(none)?,
        Type::Enum(names) => WType::enum_ty(names.iter().cloned()).ok_or_else(none)?,
        Type::Option(t) => WType::option(wave_type(t)?),
        Type::Result { ok, err } => WType::result(
            ok.as_deref().map(wave_type).transpose()?,
            err.as_deref().map(wave_type).transpose()?,
        ),
        Type::Flags(names) => WType::flags(names.iter().cloned()).ok_or_else(none)?,
        Type::Own(_) | Type::Borrow(_) => bail!("resources cannot be written in WAVE"),
    })
}

fn from_wave(v: &Value) -> Val {
    let boxed = |v: Option<Cow<'_, Value>>| v.map(|v| Box::new(from_wave(&v)));
    match v.kind() {
        WasmTypeKind::Bool => Val::Bool(v.unwrap_bool()),
        WasmTypeKind::S8 => Val::S8(v.unwrap_s8()),
        WasmTypeKind::S16 => Val::S16(v.unwrap_s16()),
        WasmTypeKind::S32 => Val::S32(v.unwrap_s32()),
        WasmTypeKind::S64 => Val::S64(v.unwrap_s64()),
        WasmTypeKind::U8 => Val::U8(v.unwrap_u8()),
        WasmTypeKind::U16 => Val::U16(v.unwrap_u16()),
        WasmTypeKind::U32 => Val::U32(v.unwrap_u32()),
        WasmTypeKind::U64 => Val::U64(v.unwrap_u64()),
        WasmTypeKind::F32 => Val::Float32(v.unwrap_f32()),
        WasmTypeKind::F64 => Val::Float64(v.unwrap_f64()),
        WasmTypeKind::Char => Val::Char(v.unwrap_char()),
        WasmTypeKind::String => Val::String(v.unwrap_string().into_owned()),
        WasmTypeKind::List | WasmTypeKind::FixedLengthList => {
            Val::List(v.unwrap_list().map(|e| from_wave(&e)).collect())
        }
        WasmTypeKind::Record => Val::Record(
            v.unwrap_record()
                .map(|(n, e)| (n.into_owned(), from_wave(&e)))
                .collect(),
        ),
        WasmTypeKind::Tuple => Val::Tuple(v.unwrap_tuple().map(|e| from_wave(&e)).collect()),
        WasmTypeKind::Variant => {
            let (name, payload) = v.unwrap_variant();
            Val::Variant(name.into_owned(), boxed(payload))
        }
        WasmTypeKind::Enum => Val::Enum(v.unwrap_enum().into_owned()),
        WasmTypeKind::Option => Val::Option(boxed(v.unwrap_option())),
        WasmTypeKind::Result => Val::Result(match v.unwrap_result() {
            Ok(p) => Ok(boxed(p)),
            Err(p) => Err(boxed(p)),
        }),
        WasmTypeKind::Flags => Val::Flags(v.unwrap_flags().map(|f| f.into_owned()).collect()),
        WasmTypeKind::Map => Val::Map(v.unwrap_map().map(|(k, e)| (from_wave(&k), from_wave(&e))).collect()),
        _ => Val::Tuple(vec![]),
    }
}

fn to_wave(v: &Val, t: &Type) -> Result<Value> {
    let ty = wave_type(t)?;
    let err = |e: wasm_wave::wasm::WasmValueError| anyhow!("{e}");
    let opt = |p: &Option<Box<Val>>, t: Option<&Type>| -> Result<Option<Value>> {
        match (p, t) {
            (Some(p), Some(t)) => Ok(Some(to_wave(p, t)?)),
            _ => Ok(None),
        }
    };
    Ok(match (v, t) {
        (Val::Bool(b), _) => Value::make_bool(*b),
        (Val::S8(x), _) => Value::make_s8(*x),
        (Val::U8(x), _) => Value::make_u8(*x),
        (Val::S16(x), _) => Value::make_s16(*x),
        (Val::U16(x), _) => Value::make_u16(*x),
        (Val::S32(x), _) => Value::make_s32(*x),
        (Val::U32(x), _) => Value::make_u32(*x),
        (Val::S64(x), _) => Value::make_s64(*x),
        (Val::U64(x), _) => Value::make_u64(*x),
        (Val::Float32(x), _) => Value::make_f32(*x),
        (Val::Float64(x), _) => Value::make_f64(*x),
        (Val::Char(c), _) => Value::make_char(*c),
        (Val::String(s), _) => Value::make_string(Cow::Borrowed(s)),
        (Val::Scalars(xs), Type::List(e)) => {
            Value::make_list(&ty, xs.iter().map(|x| to_wave(&x, e)).collect::<Result<Vec<_>>>()?).map_err(err)?
        }
        (Val::Bytes(bs), Type::List(_)) => Value::make_list(&ty, bs.iter().map(|b| Value::make_u8(*b))).map_err(err)?,
        (Val::List(vs), Type::List(e) | Type::FixedList(e, _)) => {
            Value::make_list(&ty, vs.iter().map(|v| to_wave(v, e)).collect::<Result<Vec<_>>>()?).map_err(err)?
        }
        (Val::Record(fields), Type::Record(ft)) => {
            let vals = ft
                .iter()
                .map(|f| {
                    let v = fields
                        .iter()
                        .find(|(n, _)| *n == f.name)
                        .map(|(_, v)| v)
                        .ok_or_else(|| anyhow!("missing field"))?;
                    Ok((f.name.as_str(), to_wave(v, &f.ty)?))
                })
                .collect::<Result<Vec<_>>>()?;
            Value::make_record(&ty, vals).map_err(err)?
        }
        (Val::Tuple(vs), Type::Tuple(ts)) => Value::make_tuple(
            &ty,
            vs.iter()
                .zip(ts.iter())
                .map(|(v, t)| to_wave(v, t))
                .collect::<Result<Vec<_>>>()?,
        )
        .map_err(err)?,
        (Val::Variant(name, p), Type::Variant(cases)) => {
            let case = cases
                .iter()
                .find(|c| c.name == *name)
                .ok_or_else(|| anyhow!("unknown case {name}"))?;
            Value::make_variant(&ty, name, opt(p, case.ty.as_ref())?).map_err(err)?
        }
        (Val::Enum(name), _) => Value::make_enum(&ty, name).map_err(err)?,
        (Val::Option(p), Type::Option(inner)) => Value::make_option(&ty, opt(p, Some(inner))?).map_err(err)?,
        (Val::Result(r), Type::Result { ok, err: e }) => {
            let r = match r {
                Ok(p) => Ok(opt(p, ok.as_deref())?),
                Err(p) => Err(opt(p, e.as_deref())?),
            };
            Value::make_result(&ty, r).map_err(err)?
        }
        (Val::Flags(names), _) => Value::make_flags(&ty, names.iter().map(|s| s.as_str())).map_err(err)?,
        (Val::Map(entries), Type::Map(k, vt)) => Value::make_map(
            &ty,
            entries
                .iter()
                .map(|(kv, vv)| Ok((to_wave(kv, k)?, to_wave(vv, vt)?)))
                .collect::<Result<Vec<_>>>()?,
        )
        .map_err(err)?,
        (v, t) => bail!("cannot write a {} value as {t}", v.kind()),
    })
}

/// The function name of a WAVE call such as `add(1, 2)`.
pub fn call_name(call: &str) -> Result<String> {
    let parsed =
        wasm_wave::untyped::UntypedFuncCall::parse(call).map_err(|e| anyhow!("invalid --invoke `{call}`: {e}"))?;
    Ok(parsed.name().to_string())
}

/// Parses a call's arguments against the function type.
pub fn call_args(call: &str, ty: &FuncType) -> Result<Vec<Val>> {
    let parsed =
        wasm_wave::untyped::UntypedFuncCall::parse(call).map_err(|e| anyhow!("invalid --invoke `{call}`: {e}"))?;
    let types = ty.param_types().map(wave_type).collect::<Result<Vec<_>>>()?;
    let vals: Vec<Value> = parsed
        .to_wasm_params(types.iter())
        .map_err(|e| anyhow!("invalid arguments in `{call}`: {e}"))?;
    Ok(vals.iter().map(from_wave).collect())
}

/// Writes a value in WAVE. A `list<u8>` result is written directly: a WAVE
/// value per byte would cost many times the guest's bytes.
pub fn format(v: &Val, t: &Type) -> Result<String> {
    if let Val::Bytes(bytes) = v {
        let mut out = String::with_capacity(bytes.len() * 5 + 2);
        out.push('[');
        for (i, b) in bytes.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            let _ = std::fmt::Write::write_fmt(&mut out, format_args!("{b}"));
        }
        out.push(']');
        return Ok(out);
    }
    wasm_wave::to_string(&to_wave(v, t)?).map_err(|e| anyhow!("{e}"))
}
