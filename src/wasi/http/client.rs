//! `wasi:http/outgoing-handler`: sending a guest's request with hyper
//! (HTTP/1.1, and HTTPS through rustls with the webpki roots).

use super::pipe::{pump, Pipe, PipeBody};
use super::rt::{self, Io};
use super::types::{OutgoingRequest, RequestOptions, Response, Slot};
use super::HttpError;
use crate::dispatch::within;
use crate::wasi::sockets::NetworkPolicy;
use futures_rustls::rustls;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The timeout of each step when neither the request options nor the
/// network policy give one (wasmtime's default).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);

/// A request ready to go: everything `handle` checked.
pub struct Outgoing {
    pub method: http::Method,
    pub tls: bool,
    pub authority: http::uri::Authority,
    pub path_with_query: String,
    pub headers: http::HeaderMap,
    pub body: Arc<Pipe>,
}

impl Outgoing {
    /// Checks a guest's request: `Err` is the `error-code` `handle` returns.
    pub fn new(req: OutgoingRequest, policy: &NetworkPolicy) -> Result<Self, HttpError> {
        let req = req.0;
        if !policy.http {
            return Err(HttpError::Code("HTTP-request-denied"));
        }
        let tls = match req.scheme.as_ref().map(|s| s.as_str()) {
            None | Some("https") => true,
            Some("http") => false,
            Some(_) => return Err(HttpError::Code("HTTP-protocol-error")),
        };
        let authority: http::uri::Authority = req
            .authority
            .as_deref()
            .and_then(|a| a.parse().ok())
            .ok_or(HttpError::Code("HTTP-request-URI-invalid"))?;
        let body = match req.body {
            Some(pipe) => pipe,
            None => Pipe::full(bytes::Bytes::new()),
        };
        Ok(Outgoing {
            method: req.method,
            tls,
            authority,
            path_with_query: req.path_with_query.unwrap_or_else(|| "/".into()),
            headers: req.headers,
            body,
        })
    }

    /// Sends the request on the HTTP I/O thread; the response (or the
    /// error) arrives in the returned slot, its body streaming after.
    pub fn send(self, options: RequestOptions, policy: &NetworkPolicy) -> Arc<Slot<Result<Response, HttpError>>> {
        let slot: Arc<Slot<Result<Response, HttpError>>> = Arc::default();
        let out = slot.clone();
        let policy = policy.clone();
        rt::spawn(async move {
            let default = policy.timeout.unwrap_or(DEFAULT_TIMEOUT);
            let timeouts = Timeouts {
                connect: options.connect.unwrap_or(default),
                first_byte: options.first_byte.unwrap_or(default),
                between_bytes: options.between_bytes.or(policy.timeout),
            };
            out.set(self.exchange(&policy, timeouts).await);
        });
        slot
    }

    async fn exchange(self, policy: &NetworkPolicy, t: Timeouts) -> Result<Response, HttpError> {
        let host = self
            .authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let port = self.authority.port_u16().unwrap_or(if self.tls { 443 } else { 80 });
        let addrs = resolve(&host, port).await?;
        let addrs: Vec<SocketAddr> = addrs.into_iter().filter(|a| policy.permits_http(a.ip())).collect();
        if addrs.is_empty() {
            return Err(HttpError::Code("destination-IP-prohibited"));
        }
        let connect = async {
            let tcp = connect_any(&addrs).await?;
            if self.tls {
                let name = rustls::pki_types::ServerName::try_from(host.clone())
                    .map_err(|_| HttpError::Code("HTTP-request-URI-invalid"))?;
                let tls = tls_connector()
                    .connect(name, tcp)
                    .await
                    .map_err(|e| HttpError::from_io(&e))?;
                handshake(Io(tls)).await
            } else {
                handshake(Io(tcp)).await
            }
        };
        let mut sender = within(t.connect, connect)
            .await
            .ok_or(HttpError::Code("connection-timeout"))??;

        let mut req = http::Request::builder()
            .method(self.method)
            .uri(&self.path_with_query)
            .body(PipeBody::new(self.body))
            .map_err(|_| HttpError::Code("HTTP-request-URI-invalid"))?;
        *req.headers_mut() = self.headers;
        let host_header = http::HeaderValue::from_str(self.authority.as_str())
            .map_err(|_| HttpError::Code("HTTP-request-URI-invalid"))?;
        req.headers_mut().insert(http::header::HOST, host_header);

        let res = within(t.first_byte, sender.send_request(req))
            .await
            .ok_or(HttpError::Code("connection-read-timeout"))?
            .map_err(|e| HttpError::from_hyper(&e))?;
        let (parts, incoming) = res.into_parts();
        let body = Pipe::new(None);
        rt::spawn(pump(incoming, body.clone(), t.between_bytes));
        Ok(Response {
            status: parts.status.as_u16(),
            headers: parts.headers,
            body,
        })
    }
}

#[derive(Clone, Copy)]
struct Timeouts {
    connect: Duration,
    first_byte: Duration,
    between_bytes: Option<Duration>,
}

/// Resolves `host` off the executor (IP literals directly).
async fn resolve(host: &str, port: u16) -> Result<Vec<SocketAddr>, HttpError> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let name = host.to_string();
    blocking::unblock(move || (name.as_str(), port).to_socket_addrs().map(|a| a.collect::<Vec<_>>()))
        .await
        .map_err(|e| HttpError::Dns(e.to_string()))
        .and_then(|a| {
            if a.is_empty() {
                Err(HttpError::Code("destination-not-found"))
            } else {
                Ok(a)
            }
        })
}

/// Connects to the first address that answers.
async fn connect_any(addrs: &[SocketAddr]) -> Result<async_io::Async<std::net::TcpStream>, HttpError> {
    let mut last = HttpError::Code("destination-unavailable");
    for a in addrs {
        match async_io::Async::<std::net::TcpStream>::connect(*a).await {
            Ok(s) => {
                let _ = s.get_ref().set_nodelay(true);
                return Ok(s);
            }
            Err(e) => last = HttpError::from_io(&e),
        }
    }
    Err(last)
}

/// The HTTP/1.1 handshake; the connection runs on the I/O thread.
async fn handshake<S>(io: Io<S>) -> Result<hyper::client::conn::http1::SendRequest<PipeBody>, HttpError>
where
    S: futures_lite::AsyncRead + futures_lite::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, conn) = hyper::client::conn::http1::Builder::new()
        .handshake(io)
        .await
        .map_err(|e| HttpError::from_hyper(&e))?;
    rt::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

/// Certificates trusted beside the webpki roots ([`trust_pem`], and the
/// PEM file `SSL_CERT_FILE` names, read when the first TLS connection is made).
static EXTRA_ROOTS: Mutex<Vec<rustls::pki_types::CertificateDer<'static>>> = Mutex::new(Vec::new());
/// The client configuration, rebuilt after the roots change.
static CONFIG: Mutex<Option<Arc<rustls::ClientConfig>>> = Mutex::new(None);

/// Trusts the certificates in `pem` (besides the webpki roots) for HTTPS
/// requests made from now on; returns how many were added.
pub fn trust_pem(pem: &[u8]) -> anyhow::Result<usize> {
    use rustls::pki_types::pem::PemObject;
    let certs = rustls::pki_types::CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow::anyhow!("not PEM certificates: {e:?}"))?;
    let n = certs.len();
    EXTRA_ROOTS.lock().unwrap_or_else(|e| e.into_inner()).extend(certs);
    *CONFIG.lock().unwrap_or_else(|e| e.into_inner()) = None;
    Ok(n)
}

fn tls_connector() -> futures_rustls::TlsConnector {
    static ENV_READ: std::sync::Once = std::sync::Once::new();
    ENV_READ.call_once(|| {
        if let Some(file) = std::env::var_os("SSL_CERT_FILE") {
            match std::fs::read(&file)
                .map_err(anyhow::Error::from)
                .and_then(|pem| trust_pem(&pem))
            {
                Ok(_) => {}
                Err(e) => eprintln!(
                    "warning: SSL_CERT_FILE {}: {e:#}",
                    std::path::Path::new(&file).display()
                ),
            }
        }
    });
    let mut config = CONFIG.lock().unwrap_or_else(|e| e.into_inner());
    let config = config.get_or_insert_with(|| {
        let mut roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.into(),
        };
        for cert in EXTRA_ROOTS.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            let _ = roots.add(cert.clone());
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("ring supports the default TLS versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        Arc::new(config)
    });
    futures_rustls::TlsConnector::from(config.clone())
}
