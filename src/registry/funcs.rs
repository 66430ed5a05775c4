//! `wippy:runtime/funcs@0.1.0` (`wit/wippy/funcs.wit`): guests call registry
//! functions by ID. The caller is suspended while the callee runs (the
//! callee's call is the host future), and every failure is `err(message)`.

use super::chain::Chain;
use super::{CallCtx, Registry, MAX_CALL_DEPTH};
use crate::values::Type;
use crate::values::Val;
use crate::Linker;
use anyhow::{anyhow, bail, Result};
use serde_json::Value as Json;

/// The interface name as hosts define it.
pub const INTERFACE: &str = "wippy:runtime/funcs@0.1.0";

/// What a guest passed: text or bytes.
pub(crate) enum Input {
    Text(String),
    Bytes(Vec<u8>),
}

impl Input {
    /// Positional JSON arguments for a target that does not take the input
    /// as is: a JSON array, one JSON value, or none for empty input.
    fn json_args(&self) -> Result<Vec<Json>> {
        let text = match self {
            Input::Text(t) => t.as_str(),
            Input::Bytes(b) => {
                std::str::from_utf8(b).map_err(|_| anyhow!("input is neither the target's bytes nor UTF-8 JSON"))?
            }
        };
        if text.trim().is_empty() {
            return Ok(Vec::new());
        }
        match serde_json::from_str(text) {
            Ok(Json::Array(items)) => Ok(items),
            Ok(v) => Ok(vec![v]),
            Err(e) => bail!("input is not JSON: {e}"),
        }
    }
}

/// Calls `target` for a guest in `chain`; the output is text or bytes as
/// the guest asked.
pub(crate) async fn call(registry: Registry, target: String, input: Input, chain: Chain) -> Result<Input> {
    if !target.contains(':') || target.starts_with(':') || target.ends_with(':') {
        bail!("invalid target `{target}`: expected `namespace:name`");
    }
    if chain.depth() > MAX_CALL_DEPTH {
        bail!("call depth limit ({MAX_CALL_DEPTH}) exceeded calling `{target}`");
    }
    let as_bytes = matches!(input, Input::Bytes(_));
    if let Some(f) = registry.lua_function(&target) {
        return f
            .call_input(std::sync::Arc::downgrade(&registry.inner), input, chain)
            .await;
    }
    if registry.native(&target).is_none() {
        let ty = registry.func_type(&target)?;
        let direct = match (ty.params.iter().map(|(_, t)| t).collect::<Vec<_>>().as_slice(), &input) {
            ([Type::String], Input::Text(t)) => Some(Val::String(t.clone())),
            ([Type::List(e)], Input::Bytes(b)) if **e == Type::U8 => Some(Val::Bytes(b.clone())),
            _ => None,
        };
        if let Some(arg) = direct {
            let out = registry.call_at(&target, vec![arg], chain).await?;
            return output(out.first(), ty.result.as_ref(), as_bytes);
        }
    }
    let result = registry.call_json_async(&target, input.json_args()?, chain).await?;
    let text = match result {
        Json::String(s) => s,
        other => other.to_string(),
    };
    Ok(if as_bytes {
        Input::Bytes(text.into_bytes())
    } else {
        Input::Text(text)
    })
}

/// A callee's result for the guest: strings and bytes as they are, a
/// `result` unwrapped (its `err` becomes the call's error), anything else JSON.
fn output(v: Option<&Val>, t: Option<&Type>, as_bytes: bool) -> Result<Input> {
    let (v, t) = match (v, t) {
        (Some(Val::Result(Err(e))), Some(Type::Result { err, .. })) => {
            let msg = match (e, err) {
                (Some(e), Some(et)) => match super::json::to_json(e, et)? {
                    Json::String(s) => s,
                    other => other.to_string(),
                },
                _ => "error".to_string(),
            };
            bail!("{msg}");
        }
        (Some(Val::Result(Ok(Some(v)))), Some(Type::Result { ok: Some(ot), .. })) => (Some(&**v), Some(&**ot)),
        other => other,
    };
    Ok(match (v, t, as_bytes) {
        (Some(Val::String(s)), _, false) => Input::Text(s.clone()),
        (Some(Val::String(s)), _, true) => Input::Bytes(s.clone().into_bytes()),
        (Some(Val::Bytes(bytes)), _, true) => Input::Bytes(bytes.clone()),
        (Some(Val::List(items)), Some(Type::List(e)), true) if **e == Type::U8 => {
            Input::Bytes(items.iter().map(|b| if let Val::U8(b) = b { *b } else { 0 }).collect())
        }
        (Some(v), Some(t), _) => {
            let text = super::json::to_json_text(v, t)?;
            if as_bytes {
                Input::Bytes(text.into_bytes())
            } else {
                Input::Text(text)
            }
        }
        _ => {
            if as_bytes {
                Input::Bytes(b"null".to_vec())
            } else {
                Input::Text("null".into())
            }
        }
    })
}

fn ok_or_err(r: Result<Input>) -> Val {
    match r {
        Ok(Input::Text(t)) => Val::Result(Ok(Some(Box::new(Val::String(t))))),
        Ok(Input::Bytes(b)) => Val::Result(Ok(Some(Box::new(crate::wasi::bytes_val(b))))),
        Err(e) => Val::Result(Err(Some(Box::new(Val::String(format!("{e:#}")))))),
    }
}

fn string_arg(v: &Val) -> Result<String> {
    match v {
        Val::String(s) => Ok(s.clone()),
        other => Err(anyhow!("expected a string, got {}", other.kind())),
    }
}

pub(crate) fn add_to_linker(linker: &mut Linker<CallCtx>) {
    let i = linker.instance(INTERFACE);
    i.func_async("call-string", |cx, args| {
        let (target, input) = (string_arg(&args[0])?, string_arg(&args[1])?);
        let (registry, chain) = (cx.data().registry()?, cx.data().chain.clone());
        Ok(Box::pin(async move {
            Ok(vec![ok_or_err(call(registry, target, Input::Text(input), chain).await)])
        }))
    });
    i.func_async("call-bytes", |cx, args| {
        let (target, input) = (string_arg(&args[0])?, crate::wasi::bytes_arg(&args[1])?);
        let (registry, chain) = (cx.data().registry()?, cx.data().chain.clone());
        Ok(Box::pin(async move {
            Ok(vec![ok_or_err(
                call(registry, target, Input::Bytes(input), chain).await,
            )])
        }))
    });
    linker.compact_bytes(INTERFACE);
}
