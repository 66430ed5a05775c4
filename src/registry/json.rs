//! The payload transport: positional JSON arguments lowered to an export's
//! WIT parameters, and results lifted back to JSON, with Wippy's mapping
//! (records as objects, `null` for `none`, `{"ok": …}`/`{"err": …}`,
//! `{"case": payload}`, enums as names, flags as lists of names).

use crate::values::Val;
use crate::values::{FuncType, Type};
use anyhow::{anyhow, bail, Result};
use serde::ser::{Error as _, SerializeMap, Serializer};
use serde::Serialize;
use serde_json::Value as Json;

/// Converts positional JSON arguments to the function's parameters. Errors
/// name the parameter and the path inside it.
pub fn args_from_json(ty: &FuncType, args: &[Json]) -> Result<Vec<Val>> {
    if args.len() != ty.params.len() {
        bail!("expected {} argument(s) for {ty}, got {}", ty.params.len(), args.len());
    }
    ty.params
        .iter()
        .zip(args)
        .map(|((name, t), v)| from_json(v, t, &mut String::new()).map_err(|e| anyhow!("parameter `{name}`: {e}")))
        .collect()
}

/// Converts results to JSON: the single result, or `null` when there is none.
pub fn result_to_json(ty: &FuncType, results: &[Val]) -> Result<Json> {
    match (results.first(), &ty.result) {
        (Some(v), Some(t)) => to_json(v, t),
        _ => Ok(Json::Null),
    }
}

fn at(path: &str) -> String {
    if path.is_empty() {
        String::new()
    } else {
        format!("at `{path}`: ")
    }
}

fn int<T: TryFrom<i64> + TryFrom<u64>>(v: &Json, t: &Type, path: &str) -> Result<T> {
    let out = match v {
        Json::Number(n) => match (n.as_i64(), n.as_u64()) {
            (_, Some(u)) => T::try_from(u).ok(),
            (Some(i), _) => T::try_from(i).ok(),
            _ => None,
        },
        _ => None,
    };
    out.ok_or_else(|| anyhow!("{}expected {t} (an integer in range), found {v}", at(path)))
}

/// JSON → [`Val`] of type `t`; `path` locates the value for messages.
pub fn from_json(v: &Json, t: &Type, path: &mut String) -> Result<Val> {
    let mismatch = |want: &str| anyhow!("{}expected {want}, found {v}", at(path));
    Ok(match t {
        Type::Bool => Val::Bool(v.as_bool().ok_or_else(|| mismatch("bool"))?),
        Type::S8 => Val::S8(int(v, t, path)?),
        Type::U8 => Val::U8(int(v, t, path)?),
        Type::S16 => Val::S16(int(v, t, path)?),
        Type::U16 => Val::U16(int(v, t, path)?),
        Type::S32 => Val::S32(int(v, t, path)?),
        Type::U32 => Val::U32(int(v, t, path)?),
        Type::S64 => Val::S64(int(v, t, path)?),
        Type::U64 => Val::U64(int(v, t, path)?),
        Type::F32 => Val::Float32(v.as_f64().ok_or_else(|| mismatch("f32"))? as f32),
        Type::F64 => Val::Float64(v.as_f64().ok_or_else(|| mismatch("f64"))?),
        Type::Char => {
            let s = v.as_str().ok_or_else(|| mismatch("char (a one-character string)"))?;
            let mut chars = s.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) => Val::Char(c),
                _ => return Err(mismatch("char (a one-character string)")),
            }
        }
        Type::String => Val::String(v.as_str().ok_or_else(|| mismatch("string"))?.to_string()),
        // Bytes may come as text (a Lua string, say): its UTF-8 bytes.
        Type::List(e) if **e == Type::U8 && v.is_string() => {
            Val::Bytes(v.as_str().unwrap_or_default().as_bytes().to_vec())
        }
        Type::List(e) | Type::FixedList(e, _) => {
            let items = v.as_array().ok_or_else(|| mismatch("list (an array)"))?;
            if let Type::FixedList(_, n) = t {
                if items.len() != *n as usize {
                    return Err(anyhow!("{}expected {n} elements, found {}", at(path), items.len()));
                }
            }
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                out.push(nested(path, &format!("[{i}]"), |p| from_json(item, e, p))?);
            }
            Val::List(out)
        }
        Type::Map(k, val) => {
            let obj = v.as_object().ok_or_else(|| mismatch("map (an object)"))?;
            let mut out = Vec::with_capacity(obj.len());
            for (key, item) in obj {
                let kv = nested(path, &format!(".{key}"), |p| {
                    from_json(&Json::String(key.clone()), k, p)
                })?;
                out.push((kv, nested(path, &format!(".{key}"), |p| from_json(item, val, p))?));
            }
            Val::Map(out)
        }
        Type::Record(fields) => {
            let obj = v.as_object().ok_or_else(|| mismatch("record (an object)"))?;
            if let Some(extra) = obj.keys().find(|k| !fields.iter().any(|f| &f.name == *k)) {
                return Err(anyhow!("{}unknown field `{extra}`", at(path)));
            }
            let mut out = Vec::with_capacity(fields.len());
            for f in fields.iter() {
                let item = match (obj.get(&f.name), &f.ty) {
                    (Some(item), _) => item,
                    (None, Type::Option(_)) => &Json::Null,
                    (None, _) => return Err(anyhow!("{}missing field `{}`", at(path), f.name)),
                };
                out.push((
                    f.name.clone(),
                    nested(path, &format!(".{}", f.name), |p| from_json(item, &f.ty, p))?,
                ));
            }
            Val::Record(out)
        }
        Type::Tuple(ts) => {
            let items = v
                .as_array()
                .filter(|a| a.len() == ts.len())
                .ok_or_else(|| mismatch(&format!("{t} (an array of {})", ts.len())))?;
            let mut out = Vec::with_capacity(ts.len());
            for (i, (item, et)) in items.iter().zip(ts.iter()).enumerate() {
                out.push(nested(path, &format!("[{i}]"), |p| from_json(item, et, p))?);
            }
            Val::Tuple(out)
        }
        Type::Variant(cases) => {
            let (name, payload) = one_key(v).ok_or_else(|| mismatch("variant ({\"case\": payload} or \"case\")"))?;
            let case = cases
                .iter()
                .find(|c| c.name == name)
                .ok_or_else(|| anyhow!("{}unknown case `{name}` of {t}", at(path)))?;
            let p = match (&case.ty, payload) {
                (Some(ct), Some(p)) => Some(Box::new(nested(path, &format!(".{name}"), |pp| from_json(p, ct, pp))?)),
                (Some(_), None) => return Err(anyhow!("{}case `{name}` needs a payload", at(path))),
                (None, _) => None,
            };
            Val::Variant(name, p)
        }
        Type::Enum(names) => {
            let s = v.as_str().ok_or_else(|| mismatch("enum (a case name)"))?;
            if !names.iter().any(|n| n == s) {
                return Err(anyhow!("{}unknown case `{s}` of {t}", at(path)));
            }
            Val::Enum(s.to_string())
        }
        Type::Option(inner) => match v {
            Json::Null => Val::Option(None),
            other => Val::Option(Some(Box::new(from_json(other, inner, path)?))),
        },
        Type::Result { ok, err } => {
            let (name, payload) = one_key(v).ok_or_else(|| mismatch("result ({\"ok\": …} or {\"err\": …})"))?;
            let (target, is_ok) = match name.as_str() {
                "ok" => (ok, true),
                "err" => (err, false),
                _ => return Err(mismatch("result ({\"ok\": …} or {\"err\": …})")),
            };
            let p = match (target, payload) {
                (Some(pt), Some(p)) => Some(Box::new(nested(path, &format!(".{name}"), |pp| from_json(p, pt, pp))?)),
                (None, None | Some(Json::Null)) => None,
                (Some(_), None) => return Err(anyhow!("{}`{name}` needs a value", at(path))),
                (None, Some(_)) => return Err(anyhow!("{}`{name}` takes no value", at(path))),
            };
            Val::Result(if is_ok { Ok(p) } else { Err(p) })
        }
        Type::Flags(names) => {
            let items = v.as_array().ok_or_else(|| mismatch("flags (an array of names)"))?;
            let mut out = Vec::new();
            for item in items {
                let s = item.as_str().ok_or_else(|| mismatch("flags (an array of names)"))?;
                if !names.iter().any(|n| n == s) {
                    return Err(anyhow!("{}unknown flag `{s}`", at(path)));
                }
                out.push(s.to_string());
            }
            Val::Flags(out)
        }
        Type::Own(_) | Type::Borrow(_) => bail!("{}resources cannot be passed as JSON", at(path)),
    })
}

fn nested<R>(path: &mut String, step: &str, f: impl FnOnce(&mut String) -> Result<R>) -> Result<R> {
    let len = path.len();
    path.push_str(step);
    let r = f(path);
    path.truncate(len);
    r
}

/// `"name"` or `{"name": payload}`.
fn one_key(v: &Json) -> Option<(String, Option<&Json>)> {
    match v {
        Json::String(s) => Some((s.clone(), None)),
        Json::Object(m) if m.len() == 1 => m.iter().next().map(|(k, v)| (k.clone(), Some(v))),
        _ => None,
    }
}

/// [`Val`] → JSON.
pub fn to_json(v: &Val, t: &Type) -> Result<Json> {
    serde_json::to_value(Typed(v, t)).map_err(|e| anyhow!("{e}"))
}

/// [`Val`] → JSON text, written straight from the value: a large result
/// (a `list<u8>` of many MiB) never exists as a JSON tree.
pub fn to_json_text(v: &Val, t: &Type) -> Result<String> {
    serde_json::to_string(&Typed(v, t)).map_err(|e| anyhow!("{e}"))
}

/// Results as JSON text: the single result, or `null`.
pub fn result_to_json_text(ty: &FuncType, results: &[Val]) -> Result<String> {
    match (results.first(), &ty.result) {
        (Some(v), Some(t)) => to_json_text(v, t),
        _ => Ok("null".into()),
    }
}

/// A value with its type, serialised with Wippy's JSON mapping.
struct Typed<'a>(&'a Val, &'a Type);

impl Serialize for Typed<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let fail = |m: String| S::Error::custom(m);
        match (self.0, self.1) {
            (Val::Bool(b), _) => s.serialize_bool(*b),
            (Val::S8(x), _) => s.serialize_i8(*x),
            (Val::U8(x), _) => s.serialize_u8(*x),
            (Val::S16(x), _) => s.serialize_i16(*x),
            (Val::U16(x), _) => s.serialize_u16(*x),
            (Val::S32(x), _) => s.serialize_i32(*x),
            (Val::U32(x), _) => s.serialize_u32(*x),
            (Val::S64(x), _) => s.serialize_i64(*x),
            (Val::U64(x), _) => s.serialize_u64(*x),
            // Non-finite floats are `null`, as `serde_json::json!` has them.
            (Val::Float32(x), _) if !x.is_finite() => s.serialize_unit(),
            (Val::Float64(x), _) if !x.is_finite() => s.serialize_unit(),
            (Val::Float32(x), _) => s.serialize_f32(*x),
            (Val::Float64(x), _) => s.serialize_f64(*x),
            (Val::Char(c), _) => s.serialize_char(*c),
            (Val::String(v), _) => s.serialize_str(v),
            (Val::List(items), Type::List(e) | Type::FixedList(e, _)) => {
                s.collect_seq(items.iter().map(|i| Typed(i, e)))
            }
            (Val::Bytes(bytes), _) => s.collect_seq(bytes),
            (Val::Scalars(xs), Type::List(e)) => {
                use serde::ser::SerializeSeq;
                let mut seq = s.serialize_seq(Some(xs.len()))?;
                for x in xs.iter() {
                    seq.serialize_element(&Typed(&x, e))?;
                }
                seq.end()
            }
            (Val::Map(entries), Type::Map(k, vt)) => {
                let mut keyed = Vec::with_capacity(entries.len());
                for (key, val) in entries {
                    let key = match to_json(key, k).map_err(|e| fail(format!("{e:#}")))? {
                        Json::String(s) => s,
                        other => other.to_string(),
                    };
                    keyed.push((key, val));
                }
                // Keys sorted and the last of equal keys kept, as in a
                // `serde_json` object.
                keyed.reverse();
                keyed.sort_by(|a, b| a.0.cmp(&b.0));
                keyed.dedup_by(|a, b| a.0 == b.0);
                let mut m = s.serialize_map(Some(keyed.len()))?;
                for (key, val) in keyed {
                    m.serialize_entry(&key, &Typed(val, vt))?;
                }
                m.end()
            }
            (Val::Record(fields), Type::Record(ft)) => {
                // Keys sorted, as in a `serde_json` object.
                let mut sorted: Vec<_> = fields.iter().zip(ft.iter()).collect();
                sorted.sort_by(|a, b| a.0 .0.cmp(&b.0 .0));
                let mut m = s.serialize_map(Some(fields.len()))?;
                for ((name, val), f) in sorted {
                    m.serialize_entry(name, &Typed(val, &f.ty))?;
                }
                m.end()
            }
            (Val::Tuple(items), Type::Tuple(ts)) => {
                s.collect_seq(items.iter().zip(ts.iter()).map(|(i, t)| Typed(i, t)))
            }
            (Val::Variant(name, p), Type::Variant(cases)) => {
                let ct = cases.iter().find(|c| c.name == *name).and_then(|c| c.ty.as_ref());
                let mut m = s.serialize_map(Some(1))?;
                match (p, ct) {
                    (Some(p), Some(ct)) => m.serialize_entry(name, &Typed(p, ct))?,
                    _ => m.serialize_entry(name, &())?,
                }
                m.end()
            }
            (Val::Enum(name), _) => s.serialize_str(name),
            (Val::Option(None), _) => s.serialize_unit(),
            (Val::Option(Some(p)), Type::Option(inner)) => Typed(p, inner).serialize(s),
            (Val::Result(r), Type::Result { ok, err }) => {
                let (key, p, pt) = match r {
                    Ok(p) => ("ok", p, ok),
                    Err(p) => ("err", p, err),
                };
                let mut m = s.serialize_map(Some(1))?;
                match (p, pt) {
                    (Some(p), Some(pt)) => m.serialize_entry(key, &Typed(p, pt))?,
                    _ => m.serialize_entry(key, &())?,
                }
                m.end()
            }
            (Val::Flags(names), _) => s.collect_seq(names),
            (Val::Resource(_), _) => Err(fail("a resource cannot be returned as JSON".into())),
            (v, t) => Err(fail(format!("cannot write a {} value as {t}", v.kind()))),
        }
    }
}
