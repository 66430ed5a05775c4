//! Hostile HTTP clients never freeze or exhaust `serve`: a client that
//! vanishes mid-body leaves no connection behind, stalled bodies and heads
//! time out and free their instances, and a client that goes away cancels
//! the guest call it started (with fresh instances, the instance is reset
//! and kept). Real servers on loopback; every client is
//! bounded and stops by itself.

mod common;

use common::http::Running;
use common::Served;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use wippy_wasm::serve::{Handler, InstanceConfig, ProxyHandler, Timeouts};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn start(handler: Arc<dyn Handler>, timeouts: Timeouts) -> Running {
    Running::start(handler, timeouts)
}

fn c_proxy(config: InstanceConfig) -> Arc<ProxyHandler> {
    Arc::new(ProxyHandler::load(&root().join("tests/c_http/proxy.wasm"), config).unwrap())
}

/// `GET path`: the status and the raw body (chunked as it came), or `None`
/// if no whole answer came within `limit`.
fn get_within(addr: SocketAddr, path: &str, limit: Duration) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(limit)).ok()?;
    write!(s, "GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").ok()?;
    let mut out = Vec::new();
    let start = Instant::now();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(_) => return None,
        }
        if start.elapsed() > limit {
            return None;
        }
    }
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text.get(9..12)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b).to_string();
    Some((status, body))
}

/// Opens `n` connections that each send a request head promising a 1 MB
/// body, then one byte of it, and go quiet; they close after `hold`.
fn stalled_bodies(addr: SocketAddr, n: usize, hold: Duration) -> std::thread::JoinHandle<()> {
    let mut conns = Vec::new();
    for _ in 0..n {
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(b"POST /echo HTTP/1.1\r\nhost: x\r\ncontent-length: 1000000\r\n\r\nx")
            .unwrap();
        conns.push(s);
    }
    std::thread::spawn(move || {
        std::thread::sleep(hold);
        drop(conns);
    })
}

#[test]
fn stalled_request_bodies_time_out_and_free_their_instances() {
    let handler = c_proxy(InstanceConfig {
        max_instances: Some(2),
        ..Default::default()
    });
    let server = start(
        handler.clone(),
        Timeouts {
            header: Duration::from_secs(10),
            body: Duration::from_millis(300),
        },
    );
    // Twice as many stalled uploads as instances, held for 20 s.
    let stalls = stalled_bodies(server.addr, 4, Duration::from_secs(20));
    std::thread::sleep(Duration::from_millis(100));
    let start = Instant::now();
    let answer = get_within(server.addr, "/hello", Duration::from_secs(5));
    assert!(
        answer
            .as_ref()
            .is_some_and(|(status, body)| *status == 200 && body.contains("hello from c")),
        "{answer:?} after {:?}",
        start.elapsed()
    );
    // Each stalled call saw its body time out and ended.
    let start = Instant::now();
    while handler.busy() > 0 {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "{} calls held",
            handler.busy()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(server);
    drop(stalls);
}

#[test]
fn a_stalled_request_head_is_closed_at_the_header_timeout() {
    let handler = c_proxy(InstanceConfig::default());
    let server = start(
        handler,
        Timeouts {
            header: Duration::from_millis(300),
            body: Duration::from_secs(10),
        },
    );
    let mut s = TcpStream::connect(server.addr).unwrap();
    s.write_all(b"GET /hello HTTP/1.1\r\nhost: x\r\n").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let start = Instant::now();
    let mut buf = Vec::new();
    // The server answers 408 or just closes; either way the read ends.
    let _ = s.read_to_end(&mut buf);
    assert!(start.elapsed() < Duration::from_secs(3), "{:?}", start.elapsed());
}

#[test]
fn clients_vanishing_mid_body_leave_no_connection_behind() {
    let server = Served::start(&["tests/c_http/proxy.wasm"]);
    let addr = server.addr;
    assert_eq!(
        get_within(addr, "/hello", Duration::from_secs(5)).map(|a| a.0),
        Some(200)
    );
    let fds = server.open_fds();
    let rss = server.rss_kib();
    // 200 clients: `GET /hello` promising 10 MB, 1 MB of it; each reads
    // the answer, then goes (a FIN, no reset: the server must notice).
    let threads: Vec<_> = (0..4)
        .map(|_| {
            std::thread::spawn(move || {
                for _ in 0..50 {
                    let Ok(mut s) = TcpStream::connect(addr) else { continue };
                    let _ = s.set_write_timeout(Some(Duration::from_millis(500)));
                    let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
                    let _ = s.write_all(b"GET /hello HTTP/1.1\r\nhost: x\r\ncontent-length: 10000000\r\n\r\n");
                    let _ = s.write_all(&vec![b'x'; 1 << 20]);
                    let mut answer = [0u8; 256];
                    let _ = s.read(&mut answer);
                    let _ = s.shutdown(std::net::Shutdown::Write);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let start = Instant::now();
    while server.open_fds() > fds + 4 {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{} descriptors open, {fds} before the clients",
            server.open_fds()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // Nothing held for them either (a stuck body holds its 256 KiB pipe).
    let grown = server.rss_kib().saturating_sub(rss);
    eprintln!(
        "after 200 vanished clients: {} descriptors ({fds} before), RSS +{grown} KiB",
        server.open_fds()
    );
    assert!(grown < 32 * 1024, "RSS grew by {grown} KiB");
    assert_eq!(
        get_within(addr, "/hello", Duration::from_secs(5)).map(|a| a.0),
        Some(200)
    );
}

#[test]
fn a_client_that_goes_away_cancels_the_spinning_call_it_started() {
    let dir = std::env::temp_dir().join(format!("wippy-hostile-py-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let Some(wasm) = common::http::build_python("tests/python_http/build.sh", &dir.join("pyhttp.wasm")) else {
        return;
    };
    // One instance and no execution limit: only the client's going away can
    // free the instance its spinning call holds.
    let config = InstanceConfig {
        max_instances: Some(1),
        max_execution: None,
        ..Default::default()
    };
    let handler = Arc::new(ProxyHandler::load(&wasm, config.clone()).unwrap());
    let server = start(handler.clone(), Timeouts::default());
    let mut s = TcpStream::connect(server.addr).unwrap();
    s.write_all(b"GET /spin HTTP/1.1\r\nhost: x\r\n\r\n").unwrap();
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(handler.busy(), 1, "the call spins");
    drop(s);
    let start = Instant::now();
    while handler.busy() > 0 {
        assert!(start.elapsed() < Duration::from_secs(5), "the call still spins");
        std::thread::sleep(Duration::from_millis(20));
    }
    let answer = get_within(server.addr, "/hello", Duration::from_secs(10));
    assert!(
        answer
            .as_ref()
            .is_some_and(|(_, body)| body.contains("hello from python")),
        "{answer:?}"
    );
    drop(server);
    // With fresh instances, the cancelled call's instance is reset, not
    // replaced: a client walking away costs a reset, not an instantiation.
    let handler = Arc::new(
        ProxyHandler::load(
            &wasm,
            InstanceConfig {
                fresh_instances: true,
                ..config
            },
        )
        .unwrap(),
    );
    let server = Running::start(handler.clone(), Timeouts::default());
    for _ in 0..3 {
        let mut s = TcpStream::connect(server.addr).unwrap();
        s.write_all(b"GET /spin HTTP/1.1\r\nhost: x\r\n\r\n").unwrap();
        let since = Instant::now();
        while handler.busy() == 0 {
            assert!(since.elapsed() < Duration::from_secs(5), "the call never started");
            std::thread::sleep(Duration::from_millis(10));
        }
        drop(s);
        while handler.busy() > 0 {
            assert!(since.elapsed() < Duration::from_secs(10), "the call still spins");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let answer = get_within(server.addr, "/hello", Duration::from_secs(10));
    assert!(answer.is_some_and(|(_, body)| body.contains("hello from python")));
    let stats = handler.pool_stats();
    assert_eq!((stats.created, stats.live), (1, 1), "{stats:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn serve_stops_spinning_guests_by_default() {
    // A spinning guest is stopped after 30 s unless the operator says
    // otherwise (`--max-execution-ms 0` for none); so are stalled clients.
    let (status, out, _) = common::cli(&["serve", "--help"]);
    assert_eq!(status, 0);
    let flat = out.split_whitespace().collect::<Vec<_>>().join(" ");
    for (flag, default) in [
        ("--max-execution-ms", "30000"),
        ("--header-timeout-ms", "10000"),
        ("--body-timeout-ms", "10000"),
    ] {
        let at = flat.find(flag).unwrap_or_else(|| panic!("{flag} missing: {out}"));
        let rest = &flat[at..];
        let end = rest.find("[default: ").map(|i| &rest[i..]).unwrap_or("");
        assert!(end.starts_with(&format!("[default: {default}]")), "{flag}: {out}");
    }
}
