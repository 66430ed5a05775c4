//! The `wasi-http` transport: `http.endpoint` entries route requests to
//! `function.wasm` entries with `transport: wasi-http`, served by
//! `wippy-wasm serve -c PATH`.
//!
//! A function whose method is `wasi:http/incoming-handler#handle` gets the
//! request itself, as a `wasi:http/proxy` component does; any other method
//! gets the request body as its payload (a `string` or `list<u8>`
//! parameter directly, else JSON arguments) and its result is the response
//! body — Wippy's mapping of HTTP to function arguments and results.

use super::chain::Chain;
use super::config::{Entry, HttpEndpoint};
use super::function::{Warm, WarmCall};
use super::{Inner, Registry};
use crate::serve::{proxy_response, text_response, whole_response, Executor, Handler, HandlerTypes};
use crate::values::{Type, Val};
use crate::wasi::http::pipe::PipeBody;
use crate::wasi::http::types::{IncomingRequest, Response, Slot};
use anyhow::{anyhow, bail, Result};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// The largest request body passed to a payload function.
pub const MAX_PAYLOAD_BYTES: usize = 16 << 20;

/// One `http.endpoint` route.
pub struct Endpoint {
    pub id: String,
    pub method: http::Method,
    /// Path segments; `{name}` matches any one segment.
    segments: Vec<String>,
    /// The function entry it calls.
    pub func: String,
    /// The function is a `wasi:http/incoming-handler`.
    proxy: bool,
}

impl Endpoint {
    pub(super) fn new(inner: &Inner, entry: &Entry, e: &HttpEndpoint) -> Result<Self> {
        let func = super::config::qualify(&entry.namespace, &e.func);
        let f = inner
            .functions
            .get(&func)
            .ok_or_else(|| Inner::fail(entry, "func", format!("no function entry `{func}`")))?;
        if !f.spec.wasi_http() {
            return Err(Inner::fail(
                entry,
                "func",
                format!("`{func}` is not served over HTTP: give it `transport: wasi-http`"),
            ));
        }
        let proxy = is_proxy_method(&f.spec.method);
        if !proxy && f.ty.is_none() {
            return Err(Inner::fail(
                entry,
                "func",
                format!(
                    "`{func}`: method `{}` takes or returns resources; use `wasi:http/incoming-handler#handle`",
                    f.spec.method
                ),
            ));
        }
        Ok(Endpoint {
            id: entry.id.clone(),
            method: http::Method::from_bytes(e.method.to_ascii_uppercase().as_bytes())?,
            segments: split(&e.path),
            func,
            proxy,
        })
    }

    fn matches_path(&self, path: &str) -> bool {
        let parts = split(path);
        parts.len() == self.segments.len()
            && self
                .segments
                .iter()
                .zip(&parts)
                .all(|(want, got)| (want.starts_with('{') && want.ends_with('}')) || want == got)
    }
}

fn split(path: &str) -> Vec<String> {
    path.split('/').filter(|s| !s.is_empty()).map(String::from).collect()
}

fn is_proxy_method(method: &str) -> bool {
    method.split_once('#').is_some_and(|(i, f)| {
        crate::component::names::split_version(i).0 == "wasi:http/incoming-handler" && f == "handle"
    })
}

/// Serves a registry's endpoints.
pub struct EndpointHandler {
    registry: Registry,
    types: HandlerTypes,
}

impl EndpointHandler {
    pub fn new(registry: &Registry) -> Result<Self> {
        if registry.inner.endpoints.is_empty() {
            bail!("the registry has no `http.endpoint` entries to serve");
        }
        Ok(EndpointHandler {
            registry: registry.clone(),
            types: HandlerTypes::of(&registry.inner.linker)?,
        })
    }

    /// Routes: (method, path, function) of every endpoint.
    pub fn routes(&self) -> Vec<(String, String, String)> {
        self.registry
            .inner
            .endpoints
            .iter()
            .map(|e| {
                (
                    e.method.to_string(),
                    format!("/{}", e.segments.join("/")),
                    e.func.clone(),
                )
            })
            .collect()
    }
}

impl Handler for EndpointHandler {
    fn handle(
        self: Arc<Self>,
        ex: Executor,
        req: http::Request<hyper::body::Incoming>,
    ) -> Pin<Box<dyn Future<Output = http::Response<PipeBody>> + Send>> {
        let endpoints = &self.registry.inner.endpoints;
        let on_path: Vec<&Endpoint> = endpoints.iter().filter(|e| e.matches_path(req.uri().path())).collect();
        let Some(endpoint) = on_path.iter().find(|e| e.method == req.method()) else {
            if on_path.is_empty() {
                return Box::pin(std::future::ready(text_response(404, "no endpoint for this path")));
            }
            let allow: Vec<String> = on_path.iter().map(|e| e.method.to_string()).collect();
            let mut r = text_response(405, "method not allowed");
            if let Ok(v) = http::HeaderValue::from_str(&allow.join(", ")) {
                r.headers_mut().insert(http::header::ALLOW, v);
            }
            return Box::pin(std::future::ready(r));
        };
        let func = endpoint.func.clone();
        if endpoint.proxy {
            let slot: Arc<Slot<Result<Response, Val>>> = Arc::default();
            let incoming = crate::serve::incoming_request(ex, req);
            let what = format!("`{func}`");
            let s = slot.clone();
            let call = async move { self.registry.call_proxy(&func, &self.types, incoming, s).await };
            Box::pin(proxy_response(ex, what, slot, call))
        } else {
            Box::pin(async move { self.registry.call_payload(&func, req).await })
        }
    }
}

impl Registry {
    /// Calls a `wasi:http/incoming-handler` function with a request.
    async fn call_proxy(
        &self,
        id: &str,
        types: &HandlerTypes,
        req: IncomingRequest,
        slot: Arc<Slot<Result<Response, Val>>>,
    ) -> Result<()> {
        let f = self.function(id)?;
        let limit = f.spec.limits().max_execution();
        let deadline = limit.map(|d| std::time::Instant::now() + d);
        let types = types.clone();
        let calls_from = Chain::default().through(&f.id);
        let call: WarmCall<()> = Box::new(move |w: &mut Warm| {
            Box::pin(async move {
                w.store.data_mut().chain = calls_from;
                w.store.set_deadline(deadline);
                types.call(&mut w.store, &w.func, req, slot).await
            })
        });
        self.on_instance(f, false, deadline, call).await
    }

    /// Calls a payload function with a request's body, Wippy's way: no body
    /// is no argument, a body is one argument (a `string` or `list<u8>`
    /// parameter takes it as it is, other parameters JSON). The result is
    /// the response: none is 204, a string `text/plain`, bytes
    /// `application/octet-stream`, anything else JSON; a `result` is
    /// unwrapped, its `err` a 500.
    async fn call_payload(&self, id: &str, req: http::Request<hyper::body::Incoming>) -> http::Response<PipeBody> {
        use http_body_util::BodyExt;
        let between_bytes = req.extensions().get::<crate::serve::BodyTimeout>().map(|t| t.0);
        let mut body = http_body_util::Limited::new(req.into_body(), MAX_PAYLOAD_BYTES);
        let mut bytes = Vec::new();
        loop {
            let frame = match between_bytes {
                Some(t) => match crate::dispatch::within(t, body.frame()).await {
                    Some(f) => f,
                    None => return text_response(408, "the request body stalled"),
                },
                None => body.frame().await,
            };
            match frame {
                None => break,
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        bytes.extend_from_slice(&data);
                    }
                }
                Some(Err(e)) if e.is::<http_body_util::LengthLimitError>() => {
                    return text_response(413, format!("the body exceeds {MAX_PAYLOAD_BYTES} bytes"))
                }
                Some(Err(e)) => return text_response(400, format!("cannot read the request body: {e}")),
            }
        }
        match self.payload_call(id, bytes).await {
            Ok(r) => r,
            Err(e) => {
                eprintln!("error: `{id}`: {e:#}");
                text_response(500, format!("`{id}` failed: {e:#}"))
            }
        }
    }

    async fn payload_call(&self, id: &str, body: Vec<u8>) -> Result<http::Response<PipeBody>> {
        let ty = self.func_type(id)?;
        let params: Vec<&Type> = ty.param_types().collect();
        let args = match (params.as_slice(), body.is_empty()) {
            ([], _) | (_, true) => Vec::new(),
            ([Type::String], false) => {
                vec![Val::String(
                    String::from_utf8(body).map_err(|_| anyhow!("the body is not UTF-8 text"))?,
                )]
            }
            ([Type::List(e)], false) if **e == Type::U8 => vec![Val::Bytes(body)],
            _ => {
                let text = std::str::from_utf8(&body).map_err(|_| anyhow!("the body is not UTF-8 JSON"))?;
                let json: serde_json::Value =
                    serde_json::from_str(text).map_err(|e| anyhow!("the body is not JSON: {e}"))?;
                let args = match json {
                    serde_json::Value::Array(items) if params.len() != 1 => items,
                    v => vec![v],
                };
                super::json::args_from_json(&ty, &args)?
            }
        };
        let out = self.call_at(id, args, Chain::default()).await?;
        let (v, t) = match (out.first(), ty.result.as_ref()) {
            (Some(Val::Result(Err(e))), Some(Type::Result { err, .. })) => {
                let msg = match (e, err) {
                    (Some(e), Some(et)) => super::json::to_json_text(e, et)?,
                    _ => "error".into(),
                };
                bail!("{msg}");
            }
            (Some(Val::Result(Ok(v))), Some(Type::Result { ok, .. })) => (v.as_deref(), ok.as_deref()),
            (v, t) => (v, t),
        };
        Ok(match (v, t) {
            (None, _) | (_, None) => {
                let mut r = whole_response(204, bytes::Bytes::new(), "text/plain; charset=utf-8");
                r.headers_mut().remove(http::header::CONTENT_TYPE);
                r
            }
            (Some(Val::String(s)), _) => whole_response(200, s.clone(), "text/plain; charset=utf-8"),
            (Some(Val::Bytes(b)), _) => whole_response(200, b.clone(), "application/octet-stream"),
            (Some(v), Some(Type::List(e))) if **e == Type::U8 => {
                let bytes = super::json::to_json(v, &Type::List(e.clone()))?;
                let bytes: Vec<u8> = serde_json::from_value(bytes)?;
                whole_response(200, bytes, "application/octet-stream")
            }
            (Some(v), Some(t)) => whole_response(200, super::json::to_json_text(v, t)?, "application/json"),
        })
    }
}
