//! `wippy-wasm serve`: `wasi:http/proxy` components (C from
//! `tests/c_http/`, Python from `tests/python_http/`) behind an in-process
//! server on loopback, the registry's `wasi-http` transport, bad clients,
//! and the CLI's clean stop on SIGINT.

mod common;

use common::http::{exchange, get, post, reset, Running};
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use wippy_wasm::serve::{Handler, InstanceConfig, ProxyHandler, Timeouts};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn start(handler: Arc<dyn Handler>) -> Running {
    Running::start(handler, Timeouts::default())
}

fn c_proxy() -> Arc<ProxyHandler> {
    Arc::new(ProxyHandler::load(&root().join("tests/c_http/proxy.wasm"), InstanceConfig::default()).unwrap())
}

/// The Python proxy, built once per test binary (`None`: skipped).
fn python_proxy(config: InstanceConfig) -> Option<Arc<ProxyHandler>> {
    static BUILT: std::sync::OnceLock<Option<PathBuf>> = std::sync::OnceLock::new();
    let path = BUILT.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("wippy-pyhttp-serve-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        common::http::build_python("tests/python_http/build.sh", &dir.join("pyhttp.wasm"))
    });
    Some(Arc::new(ProxyHandler::load(path.as_ref()?, config).unwrap()))
}

/// `total` requests from `clients` threads, alternating a GET of `/hello`
/// and a POST of a distinct body to `/echo`; every answer is checked.
fn load(addr: SocketAddr, clients: usize, total: usize, hello: &str) {
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let threads: Vec<_> = (0..clients)
        .map(|_| {
            let next = next.clone();
            let hello = hello.to_string();
            std::thread::spawn(move || loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                if i >= total {
                    return;
                }
                if i.is_multiple_of(2) {
                    let r = get(addr, "/hello");
                    assert_eq!((r.status, r.text()), (200, hello.clone()), "request {i}");
                } else {
                    let body: Vec<u8> = (0..(i * 37) % 20_000).map(|j| (i + j) as u8).collect();
                    let r = post(addr, "/echo", &body);
                    assert_eq!(r.status, 200, "request {i}");
                    assert!(r.body == body, "request {i}: echo of {} bytes differs", body.len());
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

#[test]
fn a_c_proxy_serves_1000_requests_from_32_clients() {
    let handler = c_proxy();
    let server = start(handler.clone());
    load(server.addr, 32, 1000, "hello from c");
    let stats = handler.pool_stats();
    assert!(stats.created >= 1 && stats.peak <= 64, "{stats:?}");
}

#[test]
fn a_python_proxy_serves_1000_requests_from_32_clients() {
    let Some(handler) = python_proxy(InstanceConfig::default()) else {
        return;
    };
    let server = start(handler.clone());
    load(server.addr, 32, 1000, "hello from python");
    // A trap answers 500 and costs that instance only.
    let r = get(server.addr, "/trap");
    assert_eq!(r.status, 500);
    assert!(r.text().contains("wasi:http/incoming-handler#handle"), "{}", r.text());
    assert_eq!(get(server.addr, "/hello").text(), "hello from python");
    // A body the guest leaves unfinished is cut when `handle` returns: the
    // client sees an incomplete response at once, not a hang.
    let start = Instant::now();
    let r = exchange(
        server.addr,
        b"GET /leak HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
    );
    assert!(r.is_err(), "{r:?}");
    assert!(start.elapsed() < Duration::from_secs(5), "{:?}", start.elapsed());
    assert_eq!(get(server.addr, "/hello").text(), "hello from python");
}

#[test]
fn malformed_requests_and_oversized_headers_get_clean_errors() {
    let handler = c_proxy();
    let server = start(handler);
    let r = exchange(server.addr, b"THIS IS NOT HTTP\r\n\r\n").unwrap();
    assert_eq!(r.status, 400);
    let r = exchange(
        server.addr,
        b"GET /hello HTTP/1.1\r\nhost: x\r\nbad header line\r\n\r\n",
    )
    .unwrap();
    assert_eq!(r.status, 400);
    let big = format!(
        "GET /hello HTTP/1.1\r\nhost: x\r\nx-big: {}\r\n\r\n",
        "a".repeat(wippy_wasm::serve::MAX_HEAD_BYTES + 1)
    );
    let r = exchange(server.addr, big.as_bytes()).unwrap();
    assert_eq!(r.status, 431);
    // A body shorter than its content-length, then the end of the connection.
    let mut s = std::net::TcpStream::connect(server.addr).unwrap();
    s.write_all(b"POST /echo HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\nshort")
        .unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    drop(s);
    assert_eq!(get(server.addr, "/hello").text(), "hello from c");
}

#[test]
fn a_client_reset_mid_body_ends_the_guest_call_and_the_server_goes_on() {
    let handler = c_proxy();
    let server = start(handler.clone());
    for _ in 0..5 {
        let mut s = std::net::TcpStream::connect(server.addr).unwrap();
        s.write_all(b"POST /echo HTTP/1.1\r\nhost: x\r\ncontent-length: 1000000\r\n\r\n")
            .unwrap();
        s.write_all(&[7u8; 100_000]).unwrap();
        std::thread::sleep(Duration::from_millis(50));
        reset(s);
    }
    // Each guest call sees its body fail and ends: none stays stuck.
    let start = Instant::now();
    while handler.busy() > 0 {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "{} calls stuck",
            handler.busy()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    load(server.addr, 4, 20, "hello from c");
}

#[test]
fn registry_endpoints_serve_wasi_http_functions() {
    let dir = std::env::temp_dir().join(format!("wippy-endpoints-{}", std::process::id()));
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    for (from, to) in [
        ("tests/c_http/proxy.wasm", "proxy.wasm"),
        ("examples/registry/bin/hello.wasm", "hello.wasm"),
    ] {
        std::fs::copy(root().join(from), bin.join(to)).unwrap();
    }
    let yaml = format!(
        r#"namespace: web
entries:
  - name: bin
    kind: fs.directory
    directory: bin
  - name: proxy
    kind: function.wasm
    fs: web:bin
    path: /proxy.wasm
    hash: sha256:{}
    method: wasi:http/incoming-handler#handle
    transport: wasi-http
    imports: [wasi:http, wasi:io]
  - name: hello
    kind: function.wasm
    fs: web:bin
    path: /hello.wasm
    hash: sha256:{}
    method: hello
    transport: wasi-http
  - name: c_hello
    kind: http.endpoint
    method: GET
    path: /hello
    func: proxy
  - name: c_echo
    kind: http.endpoint
    method: POST
    path: /echo
    func: proxy
  - name: greet
    kind: http.endpoint
    method: POST
    path: /greet/{{who}}
    func: hello
"#,
        common::sha256(&bin.join("proxy.wasm")),
        common::sha256(&bin.join("hello.wasm")),
    );
    std::fs::write(dir.join("_index.yaml"), yaml).unwrap();
    let registry = wippy_wasm::registry::Registry::load(dir.join("_index.yaml")).unwrap();
    let handler = wippy_wasm::registry::http::EndpointHandler::new(&registry).unwrap();
    let server = start(Arc::new(handler));

    // The proxy function gets the request itself.
    load(server.addr, 8, 100, "hello from c");
    // The payload function gets the body as its string argument.
    let r = post(server.addr, "/greet/anyone", b"wippy");
    assert_eq!(
        (r.status, r.header("content-type")),
        (200, Some("text/plain; charset=utf-8"))
    );
    let direct = registry.call_json("web:hello", &[serde_json::json!("wippy")]).unwrap();
    assert_eq!(serde_json::Value::String(r.text()), direct);
    // No route, and a route without this method.
    assert_eq!(get(server.addr, "/nowhere").status, 404);
    let r = get(server.addr, "/echo");
    assert_eq!((r.status, r.header("allow")), (405, Some("POST")));
}

#[test]
fn an_endpoint_needs_a_wasi_http_function() {
    let dir = std::env::temp_dir().join(format!("wippy-endpoints-bad-{}", std::process::id()));
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::copy(root().join("examples/registry/bin/hello.wasm"), bin.join("hello.wasm")).unwrap();
    let yaml = format!(
        "namespace: web
entries:
  - name: bin
    kind: fs.directory
    directory: bin
  - name: hello
    kind: function.wasm
    fs: web:bin
    path: /hello.wasm
    hash: sha256:{}
    method: hello
  - name: greet
    kind: http.endpoint
    method: POST
    path: /greet
    func: hello
  - name: broken
    kind: http.endpoint
    method: FETCH ME
    path: /x
    func: hello
",
        common::sha256(&bin.join("hello.wasm")),
    );
    std::fs::write(dir.join("_index.yaml"), yaml).unwrap();
    let err = wippy_wasm::registry::Registry::load(dir.join("_index.yaml"))
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("entry `web:broken`: field `method`"), "{err}");
    let problems = wippy_wasm::registry::Registry::check(dir.join("_index.yaml"));
    assert!(problems.iter().any(|p| p.contains("field `method`")), "{problems:?}");
    // Without the broken entry: the endpoint's function lacks the transport.
    let yaml = std::fs::read_to_string(dir.join("_index.yaml")).unwrap();
    let cut = yaml.find("  - name: broken").unwrap();
    std::fs::write(dir.join("_index.yaml"), &yaml[..cut]).unwrap();
    let err = wippy_wasm::registry::Registry::load(dir.join("_index.yaml"))
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("entry `web:greet`: field `func`: `web:hello` is not served over HTTP"),
        "{err}"
    );
}

#[test]
fn the_cli_prints_its_address_and_stops_cleanly_on_sigint() {
    use std::io::BufRead;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_wippy-wasm"))
        .args(["serve", "--addr", "127.0.0.1:0"])
        .arg(root().join("tests/c_http/proxy.wasm"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line.trim().strip_prefix("Serving HTTP on http://").expect(&line);
    let addr: SocketAddr = url.trim_end_matches('/').parse().unwrap();
    assert_eq!(get(addr, "/hello").text(), "hello from c");
    // An idle keep-alive connection must not hold the stop up.
    let idle = std::net::TcpStream::connect(addr).unwrap();
    (&idle).write_all(b"GET /hello HTTP/1.1\r\nhost: x\r\n\r\n").unwrap();
    let mut reader = std::io::BufReader::new(idle.try_clone().unwrap());
    let r = common::http::read_message(&mut reader, false).unwrap();
    assert_eq!(r.text(), "hello from c");
    // SAFETY: signals our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        // Well inside the 5 s given to requests in flight.
        assert!(start.elapsed() < Duration::from_secs(3), "still running after SIGINT");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status:?}");
    let mut rest = Vec::new();
    assert_eq!(
        std::io::Read::read_to_end(&mut reader, &mut rest).unwrap_or(0),
        0,
        "idle connection closed"
    );
    assert!(std::net::TcpStream::connect(addr).is_err(), "still listening");
}

#[test]
fn serve_refuses_a_component_that_is_not_a_proxy() {
    let err = serve_fails(&["examples/registry/bin/hello.wasm"]);
    assert!(err.contains("does not export `wasi:http/incoming-handler`"), "{err}");
}

#[test]
fn serve_c_needs_endpoints() {
    let err = serve_fails(&["-c", "examples/registry"]);
    assert!(err.contains("no `http.endpoint` entries"), "{err}");
}

/// `wippy-wasm serve ARGS` (paths relative to the crate) must fail: its stderr.
fn serve_fails(args: &[&str]) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_wippy-wasm"))
        .args(["serve", "--addr", "127.0.0.1:0"])
        .args(args)
        .current_dir(root())
        .output()
        .unwrap();
    assert!(!out.status.success());
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_guest_that_spins_is_stopped_at_max_execution() {
    let config = InstanceConfig {
        max_execution: Some(Duration::from_millis(300)),
        ..Default::default()
    };
    let Some(handler) = python_proxy(config) else { return };
    let server = start(handler.clone());
    let start = Instant::now();
    let r = get(server.addr, "/spin");
    assert_eq!(r.status, 500);
    assert!(r.text().contains("execution time limit exceeded"), "{}", r.text());
    assert!(start.elapsed() < Duration::from_secs(5), "{:?}", start.elapsed());
    // The spinning instance was discarded; a fresh one serves the next request.
    assert_eq!(get(server.addr, "/hello").text(), "hello from python");
    let start = Instant::now();
    while handler.busy() > 0 {
        assert!(start.elapsed() < Duration::from_secs(5), "a call is stuck");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn fresh_instances_under_concurrent_load() {
    // The C proxy's malloc grows memory on its first request; a reset
    // brings it back to its size after instantiation (`crate::memory`), so
    // 4 clients are served by a few instances, reset between requests:
    // those in use and 8 kept idle (their resets finish together).
    let config = InstanceConfig {
        fresh_instances: true,
        ..Default::default()
    };
    let handler = Arc::new(ProxyHandler::load(&root().join("tests/c_http/proxy.wasm"), config.clone()).unwrap());
    let server = start(handler.clone());
    load(server.addr, 4, 40, "hello from c");
    settle(&handler);
    let stats = handler.pool_stats();
    assert!(stats.created <= 8 + 4 + 1 && stats.live == stats.created, "{stats:?}");
    drop(server);
    // The Python proxy too, whether a request grows its heap (`/echo` of a
    // large body) or not.
    let Some(handler) = python_proxy(config) else { return };
    let server = start(handler.clone());
    load(server.addr, 4, 40, "hello from python");
    settle(&handler);
    let before = handler.pool_stats();
    // (A request can arrive while an instance is being reset: one more.)
    assert!(before.created < 10, "instances were reset: {before:?}");
    let body = vec![b'x'; 4 << 20];
    for _ in 0..10 {
        assert_eq!(get(server.addr, "/hello").text(), "hello from python");
        let r = post(server.addr, "/echo", &body);
        assert_eq!(r.body.len(), body.len());
    }
    settle(&handler);
    let after = handler.pool_stats();
    assert!(after.created <= before.created + 1, "{before:?} then {after:?}");
}

/// Waits for guest calls still finishing after their responses went out.
fn settle(handler: &ProxyHandler) {
    let start = Instant::now();
    while handler.busy() > 0 {
        assert!(start.elapsed() < Duration::from_secs(5), "a call is stuck");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn fresh_instances_keep_no_secret_between_requests() {
    let recall = |addr| get(addr, "/recall").text();
    // Pooled, the interpreter's memory carries a secret to the next request.
    let Some(pooled) = python_proxy(InstanceConfig {
        max_instances: Some(1),
        ..Default::default()
    }) else {
        return;
    };
    let server = start(pooled);
    assert_eq!(get(server.addr, "/remember/s3cret").text(), "remembered");
    assert_eq!(recall(server.addr), "s3cret");
    drop(server);
    // Fresh, none does: not in memory, nor in a resource handle kept.
    let fresh = python_proxy(InstanceConfig {
        max_instances: Some(1),
        fresh_instances: true,
        ..Default::default()
    })
    .unwrap();
    let server = start(fresh.clone());
    for secret in ["s3cret", "handle-s3cret", "again"] {
        assert_eq!(get(server.addr, &format!("/remember/{secret}")).text(), "remembered");
        assert_eq!(recall(server.addr), "nothing", "{secret}");
    }
    // One instance served them all, reset after each (its kept handle
    // dropped with the rest of its state).
    settle(&fresh);
    let stats = fresh.pool_stats();
    assert_eq!(stats.created, 1, "{stats:?}");
    // A trap mid-request leaves nothing behind either, nor does a client
    // going away mid-request (the guest waiting for its body): and the
    // instance is reset, not made again.
    assert_eq!(get(server.addr, "/trap").status, 500);
    assert_eq!(recall(server.addr), "nothing");
    assert_eq!(get(server.addr, "/remember-then-trap/trapped-s3cret").status, 500);
    assert_eq!(recall(server.addr), "nothing");
    let mut gone = std::net::TcpStream::connect(server.addr).unwrap();
    gone.write_all(b"POST /remember-then-read/gone-s3cret HTTP/1.1\r\nhost: x\r\ncontent-length: 1000\r\n\r\npart")
        .unwrap();
    // The guest is waiting for the rest of the body when the client goes.
    let start = Instant::now();
    while fresh.busy() == 0 && start.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(100));
    reset(gone);
    settle(&fresh);
    assert_eq!(recall(server.addr), "nothing");
    settle(&fresh);
    let stats = fresh.pool_stats();
    assert_eq!(
        (stats.created, stats.live),
        (1, 1),
        "reset after a trap and a cancel: {stats:?}"
    );
}
