//! `wasi:http/outgoing-handler` from a real guest: the Python HTTP
//! component (`tests/python_http/`, componentize-py) calls its exported
//! `fetch` against a loopback origin started in the test.
//!
//! Skipped without componentize-py, except under `CI` (see `.ci/run`).

mod common;

use common::http::{checksum, origin};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use wippy_wasm::wasi::sockets::NetworkPolicy;
use wippy_wasm::wasi::WasiCtx;
use wippy_wasm::{Component, Engine, Linker, Store, Val};

/// The guest's file, built once per test binary (`None`: skipped).
fn guest_path() -> Option<&'static std::path::PathBuf> {
    static PATH: OnceLock<Option<std::path::PathBuf>> = OnceLock::new();
    PATH.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("wippy-pyhttp-client-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        common::http::build_python("tests/python_http/build.sh", &dir.join("pyhttp.wasm"))
    })
    .as_ref()
}

/// The guest, loaded once per test binary (`None`: skipped).
fn guest() -> Option<&'static (Engine, Component)> {
    static GUEST: OnceLock<Option<(Engine, Component)>> = OnceLock::new();
    GUEST
        .get_or_init(|| {
            let engine = Engine::default();
            let component = Component::from_file(&engine, guest_path()?).unwrap();
            Some((engine, component))
        })
        .as_ref()
}

/// Outgoing HTTP to loopback.
fn loopback() -> NetworkPolicy {
    NetworkPolicy {
        http: true,
        ..Default::default()
    }
}

#[derive(Default)]
struct Call<'a> {
    method: &'a str,
    url: String,
    body: Option<Vec<u8>>,
    chunks: u32,
    connect_ms: Option<u64>,
    first_byte_ms: Option<u64>,
    between_ms: Option<u64>,
}

/// Calls the guest's `fetch`: its `ok` text or its `err` text.
fn fetch(policy: NetworkPolicy, call: Call) -> Option<Result<String, String>> {
    let (engine, component) = guest()?;
    let ctx = WasiCtx::new().network(policy).stderr(wippy_wasm::wasi::Sink::Inherit);
    let mut store = Store::new(engine, ctx);
    let mut linker = Linker::default();
    wippy_wasm::wasi::add_to_linker(&mut linker).unwrap();
    let instance = linker.instantiate(&mut store, component).unwrap();
    let f = instance.get_func(&store, "fetch").unwrap();
    let opt = |v: Option<u64>| Val::Option(v.map(|n| Box::new(Val::U64(n))));
    let args = [
        Val::String(call.method.into()),
        Val::String(call.url),
        Val::Option(
            call.body
                .map(|b| Box::new(Val::List(b.into_iter().map(Val::U8).collect()))),
        ),
        Val::U32(call.chunks.max(1)),
        opt(call.connect_ms),
        opt(call.first_byte_ms),
        opt(call.between_ms),
    ];
    let out = wippy_wasm::dispatch::block_on(f.call_async(&mut store, &args)).unwrap();
    Some(match &out[0] {
        Val::Result(Ok(Some(v))) => match &**v {
            Val::String(s) => Ok(s.clone()),
            other => panic!("{other:?}"),
        },
        Val::Result(Err(Some(v))) => match &**v {
            Val::String(s) => Err(s.clone()),
            other => panic!("{other:?}"),
        },
        other => panic!("{other:?}"),
    })
}

fn get(url: String) -> Call<'static> {
    Call {
        method: "GET",
        url,
        ..Default::default()
    }
}

#[test]
fn a_get_returns_status_headers_and_body() {
    let port = origin();
    let Some(r) = fetch(loopback(), get(format!("http://127.0.0.1:{port}/hello"))) else {
        return;
    };
    assert_eq!(r.unwrap(), "200\ncontent-length: 5\nx-test: yes\n\nhello\ntrailers: ");
}

#[test]
fn a_post_body_streams_in_chunks_and_arrives_whole() {
    let port = origin();
    let body: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let call = Call {
        method: "POST",
        url: format!("http://127.0.0.1:{port}/upload"),
        body: Some(body.clone()),
        chunks: 5,
        ..Default::default()
    };
    let Some(r) = fetch(loopback(), call) else { return };
    // No content-length: the body went out chunked, as it was written.
    let want = format!("{} {} chunked", body.len(), checksum(&body));
    assert!(r.as_ref().unwrap().contains(&want), "{r:?}");
}

#[test]
fn response_trailers_reach_the_guest() {
    let port = origin();
    let Some(r) = fetch(loopback(), get(format!("http://127.0.0.1:{port}/trailers"))) else {
        return;
    };
    assert!(
        r.as_ref().unwrap().ends_with("abcdef\ntrailers: x-checksum=abc"),
        "{r:?}"
    );
}

#[test]
fn connection_refused_is_its_error_code() {
    // A port that was free a moment ago.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let Some(r) = fetch(loopback(), get(format!("http://127.0.0.1:{port}/"))) else {
        return;
    };
    assert_eq!(r, Err("ConnectionRefused".into()));
}

#[test]
fn a_server_that_never_answers_hits_the_first_byte_timeout() {
    let port = origin();
    let start = Instant::now();
    let call = Call {
        first_byte_ms: Some(300),
        ..get(format!("http://127.0.0.1:{port}/silent"))
    };
    let Some(r) = fetch(loopback(), call) else { return };
    assert_eq!(r, Err("ConnectionReadTimeout".into()));
    assert!(start.elapsed() < Duration::from_secs(5), "{:?}", start.elapsed());
}

#[test]
fn a_stalled_body_hits_the_between_bytes_timeout() {
    let port = origin();
    let call = Call {
        between_ms: Some(300),
        ..get(format!("http://127.0.0.1:{port}/stall"))
    };
    let Some(r) = fetch(loopback(), call) else { return };
    assert_eq!(r, Err("body: ConnectionReadTimeout".into()));
}

#[test]
fn a_stalled_connect_hits_the_connect_timeout() {
    // A listener whose accept queue is full drops new SYNs.
    let (addr, _held) = common::full_listener();
    let call = Call {
        connect_ms: Some(300),
        ..get(format!("http://{addr}/"))
    };
    let Some(r) = fetch(loopback(), call) else { return };
    assert_eq!(r, Err("ConnectionTimeout".into()));
}

#[test]
fn a_reset_mid_body_fails_the_body_read() {
    let port = origin();
    let Some(r) = fetch(loopback(), get(format!("http://127.0.0.1:{port}/reset"))) else {
        return;
    };
    let e = r.unwrap_err();
    assert!(
        e == "body: ConnectionTerminated" || e == "body: HttpResponseIncomplete",
        "{e}"
    );
}

#[test]
fn policy_denials_are_error_codes() {
    let port = origin();
    let url = format!("http://127.0.0.1:{port}/hello");
    // No grant at all.
    let Some(r) = fetch(NetworkPolicy::default(), get(url.clone())) else {
        return;
    };
    assert_eq!(r, Err("HttpRequestDenied".into()));
    // HTTP granted, loopback refused.
    let policy = NetworkPolicy {
        deny_loopback: true,
        ..loopback()
    };
    assert_eq!(
        fetch(policy, get(url.clone())).unwrap(),
        Err("DestinationIpProhibited".into())
    );
    // An allow list without this address.
    let policy = NetworkPolicy {
        allow: vec![wippy_wasm::wasi::sockets::parse_range("10.0.0.0/8").unwrap()],
        ..loopback()
    };
    assert_eq!(fetch(policy, get(url)).unwrap(), Err("DestinationIpProhibited".into()));
}

#[test]
fn https_to_a_plain_http_server_is_a_tls_error() {
    // A plain HTTP server that answers whatever arrives.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        use std::io::Write;
        let (mut c, _) = listener.accept().unwrap();
        let _ = c.write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n");
        std::thread::sleep(Duration::from_secs(2));
    });
    let Some(r) = fetch(loopback(), get(format!("https://127.0.0.1:{port}/hello"))) else {
        return;
    };
    assert_eq!(r, Err("TlsProtocolError".into()));
}

/// A loopback HTTPS origin for `localhost` with a fresh self-signed
/// certificate; returns its port and the certificate in PEM.
fn tls_origin() -> (u16, String) {
    use futures_rustls::rustls;
    use std::io::{BufRead, Write};
    let key = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let pem = key.cert.pem();
    let private = rustls::pki_types::PrivateKeyDer::Pkcs8(key.signing_key.serialize_der().into());
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![key.cert.der().clone()], private)
        .unwrap();
    let config = Arc::new(config);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for tcp in listener.incoming() {
            let Ok(tcp) = tcp else { return };
            let config = config.clone();
            std::thread::spawn(move || {
                let conn = rustls::ServerConnection::new(config).unwrap();
                let mut tls = std::io::BufReader::new(rustls::StreamOwned::new(conn, tcp));
                // The request head, then the answer.
                let mut line = String::new();
                while tls.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
                    line.clear();
                }
                let tls = tls.get_mut();
                let _ =
                    tls.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 13\r\nconnection: close\r\n\r\nhello, tls!\r\n");
                tls.conn.send_close_notify();
                let _ = tls.flush();
            });
        }
    });
    (port, pem)
}

#[test]
fn https_verifies_the_server_certificate() {
    let (port, pem) = tls_origin();
    let url = format!("https://localhost:{port}/");
    // Not trusted yet: a certificate error.
    let Some(r) = fetch(loopback(), get(url.clone())) else {
        return;
    };
    assert_eq!(r, Err("TlsCertificateError".into()));
    // Trusted: the exchange goes through TLS.
    assert_eq!(wippy_wasm::wasi::http::client::trust_pem(pem.as_bytes()).unwrap(), 1);
    let r = fetch(loopback(), get(url)).unwrap();
    assert_eq!(r.unwrap(), "200\ncontent-length: 13\n\nhello, tls!\r\n\ntrailers: ");
}

#[test]
fn the_cli_grants_outgoing_http_with_allow_http() {
    let Some(path) = guest_path() else { return };
    let port = origin();
    let call = format!("fetch(\"GET\", \"http://127.0.0.1:{port}/hello\", none, 1, none, none, none)");
    let run = |flags: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_wippy-wasm"))
            .arg("run")
            .args(flags)
            .args(["--invoke", &call])
            .arg(path)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    assert_eq!(run(&[]), "err(\"HttpRequestDenied\")");
    assert_eq!(
        run(&["--allow-http"]),
        "ok(\"200\\ncontent-length: 5\\nx-test: yes\\n\\nhello\\ntrailers: \")"
    );
    assert_eq!(
        run(&["--allow-http", "--deny-loopback"]),
        "err(\"DestinationIpProhibited\")"
    );
}
