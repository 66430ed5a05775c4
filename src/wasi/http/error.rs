//! `wasi:http/types.error-code`: what failed in an HTTP exchange.

use crate::values::Val;
use futures_rustls::rustls;
use std::fmt;

/// An `error-code` the host produces. Payload-free cases are named by their
/// WIT case (`connection-refused`).
#[derive(Clone, Debug, PartialEq)]
pub enum HttpError {
    Code(&'static str),
    Dns(String),
    TlsAlert(Option<u8>, Option<String>),
    /// `HTTP-request-body-size`: the body did not match its `content-length`.
    BodySize(Option<u64>),
    /// `HTTP-response-body-size`.
    ResponseBodySize(Option<u64>),
    /// `HTTP-response-header-section-size`.
    HeaderSectionSize(Option<u32>),
    Internal(Option<String>),
}

impl HttpError {
    pub fn internal(msg: impl Into<String>) -> Self {
        HttpError::Internal(Some(msg.into()))
    }

    /// The WIT value.
    pub fn to_val(&self) -> Val {
        let some = |v: Val| Some(Box::new(v));
        let opt = |v: Option<Val>| Val::Option(v.map(Box::new));
        let (case, payload) = match self {
            HttpError::Code(c) => (*c, None),
            HttpError::Dns(msg) => (
                "DNS-error",
                some(Val::Record(vec![
                    ("rcode".into(), opt(Some(Val::String(msg.clone())))),
                    ("info-code".into(), opt(None)),
                ])),
            ),
            HttpError::TlsAlert(id, msg) => (
                "TLS-alert-received",
                some(Val::Record(vec![
                    ("alert-id".into(), opt(id.map(Val::U8))),
                    ("alert-message".into(), opt(msg.clone().map(Val::String))),
                ])),
            ),
            HttpError::BodySize(n) => ("HTTP-request-body-size", some(opt(n.map(Val::U64)))),
            HttpError::ResponseBodySize(n) => ("HTTP-response-body-size", some(opt(n.map(Val::U64)))),
            HttpError::HeaderSectionSize(n) => ("HTTP-response-header-section-size", some(opt(n.map(Val::U32)))),
            HttpError::Internal(msg) => ("internal-error", some(opt(msg.clone().map(Val::String)))),
        };
        Val::Variant(case.into(), payload)
    }

    /// The error a failed hyper exchange stands for.
    pub fn from_hyper(e: &hyper::Error) -> Self {
        use std::error::Error as _;
        let mut source = e.source();
        while let Some(s) = source {
            if let Some(h) = s.downcast_ref::<HttpError>() {
                return h.clone();
            }
            if let Some(io) = s.downcast_ref::<std::io::Error>() {
                return HttpError::from_io(io);
            }
            source = s.source();
        }
        if e.is_timeout() {
            HttpError::Code("HTTP-response-timeout")
        } else if e.is_incomplete_message() {
            HttpError::Code("HTTP-response-incomplete")
        } else if e.is_canceled() || e.is_closed() {
            HttpError::Code("connection-terminated")
        } else if e.is_parse_too_large() {
            HttpError::HeaderSectionSize(None)
        } else {
            HttpError::Code("HTTP-protocol-error")
        }
    }

    /// The error a failed connection (TCP or TLS) stands for.
    pub fn from_io(e: &std::io::Error) -> Self {
        use std::io::ErrorKind as K;
        if let Some(inner) = e.get_ref() {
            if let Some(h) = inner.downcast_ref::<HttpError>() {
                return h.clone();
            }
            if let Some(tls) = inner.downcast_ref::<rustls::Error>() {
                return HttpError::from_tls(tls);
            }
        }
        match e.kind() {
            K::ConnectionRefused => HttpError::Code("connection-refused"),
            K::TimedOut => HttpError::Code("connection-timeout"),
            K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe | K::UnexpectedEof => {
                HttpError::Code("connection-terminated")
            }
            K::HostUnreachable | K::NetworkUnreachable | K::NetworkDown => HttpError::Code("destination-unavailable"),
            K::AddrNotAvailable => HttpError::Code("destination-IP-unroutable"),
            _ => HttpError::internal(e.to_string()),
        }
    }

    fn from_tls(e: &rustls::Error) -> Self {
        match e {
            rustls::Error::InvalidCertificate(_) => HttpError::Code("TLS-certificate-error"),
            rustls::Error::AlertReceived(a) => HttpError::TlsAlert(Some(u8::from(*a)), Some(format!("{a:?}"))),
            _ => HttpError::Code("TLS-protocol-error"),
        }
    }
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpError::Code(c) => f.write_str(c),
            HttpError::Dns(m) => write!(f, "DNS error: {m}"),
            HttpError::TlsAlert(_, m) => write!(f, "TLS alert received: {}", m.as_deref().unwrap_or("?")),
            HttpError::BodySize(n) | HttpError::ResponseBodySize(n) => match n {
                Some(n) => write!(f, "body size does not match content-length ({n} bytes written)"),
                None => f.write_str("body size does not match content-length"),
            },
            HttpError::HeaderSectionSize(_) => f.write_str("header section too large"),
            HttpError::Internal(m) => write!(f, "internal error: {}", m.as_deref().unwrap_or("?")),
        }
    }
}

impl std::error::Error for HttpError {}
