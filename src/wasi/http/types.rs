//! The host objects behind `wasi:http/types` resources.

use super::pipe::{End, Pipe};
use super::HttpError;
use crate::values::Val;
use anyhow::{anyhow, bail, Result};
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Header names no guest may set: they belong to the connection, which the
/// host manages (wasmtime's list).
const FORBIDDEN: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "transfer-encoding",
    "upgrade",
    "host",
    "http2-settings",
];

pub fn forbidden(name: &HeaderName) -> bool {
    FORBIDDEN.contains(&name.as_str())
}

/// `fields` (headers or trailers). Those a request or response hands out
/// are immutable.
pub struct Fields {
    pub map: HeaderMap,
    pub immutable: bool,
}

/// The `header-error` a field operation fails with.
pub fn header_error(case: &str) -> Val {
    super::super::err(Val::Variant(case.into(), None))
}

/// Parses a name and value; `Err` is a `header-error` case.
pub fn field(name: &str, value: Option<&[u8]>) -> Result<(HeaderName, Option<HeaderValue>), &'static str> {
    let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| "invalid-syntax")?;
    let value = value
        .map(|v| HeaderValue::from_bytes(v).map_err(|_| "invalid-syntax"))
        .transpose()?;
    if forbidden(&name) {
        return Err("forbidden");
    }
    Ok((name, value))
}

/// What both request resources hold.
pub struct Request {
    pub method: Method,
    pub scheme: Option<http::uri::Scheme>,
    pub authority: Option<String>,
    pub path_with_query: Option<String>,
    pub headers: HeaderMap,
    /// The body's pipe: an incoming body until `consume` takes it; an
    /// outgoing one once `body` made it.
    pub body: Option<Arc<Pipe>>,
}

/// `incoming-request`: a request a served component handles.
pub struct IncomingRequest(pub Request);

impl Drop for IncomingRequest {
    /// A body never consumed will never be read: its pump stops, and the
    /// connection is not held open for it.
    fn drop(&mut self) {
        if let Some(pipe) = self.0.body.take() {
            pipe.close_reader();
        }
    }
}

/// `outgoing-request`: what a guest builds to send.
pub struct OutgoingRequest(pub Request);

impl AsRef<Request> for IncomingRequest {
    fn as_ref(&self) -> &Request {
        &self.0
    }
}

impl AsRef<Request> for OutgoingRequest {
    fn as_ref(&self) -> &Request {
        &self.0
    }
}

/// `request-options`.
#[derive(Clone, Copy, Debug, Default)]
pub struct RequestOptions {
    pub connect: Option<Duration>,
    pub first_byte: Option<Duration>,
    pub between_bytes: Option<Duration>,
}

/// A response that has arrived: the client's answer, or what a served
/// component set.
pub struct Response {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Arc<Pipe>,
}

/// A value that arrives later, with a signal pollables wait on.
pub struct Slot<T> {
    value: Mutex<Option<T>>,
    pub signal: Arc<crate::dispatch::Signal>,
}

impl<T> Default for Slot<T> {
    fn default() -> Self {
        Slot {
            value: Mutex::new(None),
            signal: Arc::default(),
        }
    }
}

impl<T> Slot<T> {
    /// Fills the slot (the first value wins).
    pub fn set(&self, v: T) {
        let mut slot = self.value.lock().unwrap_or_else(|e| e.into_inner());
        if slot.is_none() {
            *slot = Some(v);
        }
        drop(slot);
        self.signal.set();
    }

    pub fn take(&self) -> Option<T> {
        self.value.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    pub async fn wait(&self) -> Option<T> {
        self.signal.wait().await;
        self.take()
    }
}

/// `future-incoming-response`.
pub struct FutureIncomingResponse {
    pub slot: Arc<Slot<Result<Response, HttpError>>>,
    pub taken: bool,
}

/// `incoming-response`.
pub struct IncomingResponse {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Option<Arc<Pipe>>,
}

/// `incoming-body`: an incoming request's or response's body.
pub struct IncomingBody {
    pub pipe: Arc<Pipe>,
    pub stream_taken: bool,
}

impl Drop for IncomingBody {
    /// Nobody will read the rest: the pump stops waiting for a reader.
    fn drop(&mut self) {
        self.pipe.close_reader();
    }
}

/// `future-trailers`.
pub struct FutureTrailers {
    pub pipe: Arc<Pipe>,
    pub taken: bool,
}

/// `outgoing-response`: what a served component answers.
pub struct OutgoingResponse {
    pub status: u16,
    pub headers: HeaderMap,
    /// The body's pipe once `body` made it.
    pub body: Option<Arc<Pipe>>,
}

/// `outgoing-body`: the writing end of a request's or response's body.
pub struct OutgoingBody {
    pub pipe: Arc<Pipe>,
    pub stream_taken: bool,
    /// A response body: size mismatches are `HTTP-response-body-size`.
    pub response: bool,
}

impl Drop for OutgoingBody {
    /// Dropped without `finish`: the body is incomplete and fails (a finished
    /// body ignores this).
    fn drop(&mut self) {
        let _ = self
            .pipe
            .finish(End::Failed(HttpError::internal("outgoing-body dropped without finish")));
    }
}

/// `response-outparam`: where a served component's response goes.
pub struct ResponseOutparam {
    pub slot: Arc<Slot<Result<Response, Val>>>,
    /// The body of the response set, so the host can end it if the guest
    /// returns without finishing it.
    pub body: Arc<Mutex<Option<Arc<Pipe>>>>,
}

/// `body` of an outgoing request or response: a new pipe in `slot` the
/// first time (a malformed `content-length` fails when the message is
/// sent), `None` after.
pub fn open_body(slot: &mut Option<Arc<Pipe>>, headers: &HeaderMap) -> Option<Arc<Pipe>> {
    if slot.is_some() {
        return None;
    }
    let pipe = body_pipe(headers).unwrap_or_else(|| Pipe::new(None));
    *slot = Some(pipe.clone());
    Some(pipe)
}

/// The body pipe for a message with `headers`, sized by its `content-length`
/// (`None` if that header is malformed).
pub fn body_pipe(headers: &HeaderMap) -> Option<Arc<Pipe>> {
    let values: Vec<&HeaderValue> = headers.get_all(http::header::CONTENT_LENGTH).iter().collect();
    let length = match values.as_slice() {
        [] => None,
        [v] => Some(
            v.to_str()
                .ok()
                .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|s| s.parse::<u64>().ok())?,
        ),
        _ => return None,
    };
    Some(Pipe::new(length))
}

// Conversions between WIT values and `http` types.

pub fn method_val(m: &Method) -> Val {
    let known = [
        "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
    ];
    if known.contains(&m.as_str()) {
        Val::Variant(m.as_str().to_ascii_lowercase(), None)
    } else {
        Val::Variant("other".into(), Some(Box::new(Val::String(m.as_str().into()))))
    }
}

/// A `method`; `None` if an `other` method is not a valid token.
pub fn method_arg(v: &Val) -> Result<Option<Method>> {
    let Val::Variant(case, payload) = v else {
        bail!("expected a method")
    };
    Ok(match (case.as_str(), payload.as_deref()) {
        ("other", Some(Val::String(s))) => Method::from_bytes(s.as_bytes()).ok(),
        (c, None) => Method::from_bytes(c.to_ascii_uppercase().as_bytes()).ok(),
        _ => bail!("bad method value"),
    })
}

pub fn scheme_val(s: &http::uri::Scheme) -> Val {
    match s.as_str() {
        "http" => Val::Variant("HTTP".into(), None),
        "https" => Val::Variant("HTTPS".into(), None),
        other => Val::Variant("other".into(), Some(Box::new(Val::String(other.into())))),
    }
}

/// A `scheme`; `None` if an `other` scheme is not valid.
pub fn scheme_arg(v: &Val) -> Result<Option<http::uri::Scheme>> {
    let Val::Variant(case, payload) = v else {
        bail!("expected a scheme")
    };
    Ok(match (case.as_str(), payload.as_deref()) {
        ("HTTP", None) => Some(http::uri::Scheme::HTTP),
        ("HTTPS", None) => Some(http::uri::Scheme::HTTPS),
        ("other", Some(Val::String(s))) => s.parse().ok(),
        _ => bail!("bad scheme value"),
    })
}

pub fn string_arg(v: &Val) -> Result<&str> {
    match v {
        Val::String(s) => Ok(s),
        other => Err(anyhow!("expected a string, got {}", other.kind())),
    }
}

pub fn option_arg(v: &Val) -> Result<Option<&Val>> {
    match v {
        Val::Option(o) => Ok(o.as_deref()),
        other => Err(anyhow!("expected an option, got {}", other.kind())),
    }
}

pub fn opt_string(s: &Option<String>) -> Val {
    Val::Option(s.clone().map(|s| Box::new(Val::String(s))))
}

/// The entries of `map` as `list<tuple<field-name, field-value>>`.
pub fn entries_val(map: &HeaderMap) -> Val {
    Val::List(
        map.iter()
            .map(|(k, v)| {
                Val::Tuple(vec![
                    Val::String(k.as_str().into()),
                    crate::wasi::bytes_val(v.as_bytes().to_vec()),
                ])
            })
            .collect(),
    )
}

/// Whether `authority` is a valid `host[:port]`.
pub fn valid_authority(authority: &str) -> bool {
    authority.parse::<http::uri::Authority>().is_ok() && !authority.contains('@')
}

/// Whether `p` is a valid path with query.
pub fn valid_path(p: &str) -> bool {
    p.parse::<http::uri::PathAndQuery>().is_ok()
}
