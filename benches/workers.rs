//! `pool.worker_class`: a CPU-bound WAT function served by `wippy-wasm serve
//! -c` under 8 concurrent clients, with `workers: 1` and `workers: 2`.
//!
//! ```sh
//! cargo bench --bench workers     # uses wrk (Debian `wrk`) when installed
//! ```
//!
//! Each request runs `crunch(3)` (3 million multiply-adds in the
//! interpreter, tens of milliseconds). With one worker thread the calls take
//! turns on one core; with two they use both.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const CLIENTS: usize = 8;
const SECONDS: u64 = 6;

const CRUNCH: &str = r#"(module
  (func (export "crunch") (param $rounds i32) (result i64)
    (local $x i64) (local $i i64) (local $n i64)
    (local.set $x (i64.extend_i32_u (local.get $rounds)))
    (local.set $n (i64.mul (i64.extend_i32_u (local.get $rounds)) (i64.const 1000000)))
    (block $done (loop $l
      (br_if $done (i64.ge_u (local.get $i) (local.get $n)))
      (local.set $x (i64.add (i64.mul (local.get $x) (i64.const 6364136223846793005)) (i64.const 1442695040888963407)))
      (local.set $i (i64.add (local.get $i) (i64.const 1)))
      (br $l)))
    (local.get $x)))"#;

fn registry(dir: &Path, workers: usize) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("crunch.wat"), CRUNCH).unwrap();
    std::fs::write(
        dir.join("_index.yaml"),
        format!(
            "namespace: b\nentries:\n  - name: crunch\n    kind: function.wat\n    source: file://crunch.wat\n    wit: \"crunch: func(rounds: u32) -> u64;\"\n    method: crunch\n    transport: wasi-http\n    pool:\n      worker_class: wasm\n      workers: {workers}\n  - name: route\n    kind: http.endpoint\n    method: POST\n    path: /crunch\n    func: crunch\n"
        ),
    )
    .unwrap();
}

struct Server(Child, SocketAddr);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn serve(dir: &Path) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_wippy-wasm"))
        .args(["serve", "--addr", "127.0.0.1:0", "-c"])
        .arg(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .trim_start_matches("Serving HTTP on http://")
        .trim_end_matches('/')
        .parse()
        .unwrap_or_else(|_| panic!("unexpected banner {line:?}"));
    Server(child, addr)
}

/// Requests per second from `wrk`, if it is installed.
fn wrk(addr: SocketAddr, dir: &Path) -> Option<f64> {
    let script = dir.join("post.lua");
    std::fs::write(&script, "wrk.method = \"POST\"\nwrk.body = \"3\"\n").unwrap();
    let out = Command::new("wrk")
        .args(["-t1", &format!("-c{CLIENTS}"), &format!("-d{SECONDS}s"), "-s"])
        .arg(&script)
        .arg(format!("http://{addr}/crunch"))
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let rps = text.lines().find_map(|l| l.strip_prefix("Requests/sec:"))?;
    rps.trim().parse().ok()
}

/// Requests per second from our own keep-alive clients.
fn clients(addr: SocketAddr) -> f64 {
    let until = Instant::now() + Duration::from_secs(SECONDS);
    let threads: Vec<_> = (0..CLIENTS)
        .map(|_| {
            std::thread::spawn(move || {
                let mut done = 0u64;
                let mut s = TcpStream::connect(addr).unwrap();
                while Instant::now() < until {
                    s.write_all(b"POST /crunch HTTP/1.1\r\nhost: b\r\ncontent-length: 1\r\n\r\n3")
                        .unwrap();
                    let mut buf = [0u8; 512];
                    let n = s.read(&mut buf).unwrap();
                    assert!(
                        buf[..n].starts_with(b"HTTP/1.1 200"),
                        "{}",
                        String::from_utf8_lossy(&buf[..n])
                    );
                    done += 1;
                }
                done
            })
        })
        .collect();
    let total: u64 = threads.into_iter().map(|t| t.join().unwrap()).sum();
    total as f64 / SECONDS as f64
}

fn main() {
    let base = std::env::temp_dir().join(format!("wippy-bench-workers-{}", std::process::id()));
    println!("{CLIENTS} concurrent clients, {SECONDS} s each, POST /crunch (requests/s; higher is better)");
    let mut rates = Vec::new();
    for workers in [1, 2] {
        let dir: PathBuf = base.join(format!("w{workers}"));
        registry(&dir, workers);
        let server = serve(&dir);
        clients_warm_up(server.1);
        let (rps, how) = match wrk(server.1, &dir) {
            Some(r) => (r, "wrk"),
            None => (clients(server.1), "own clients"),
        };
        println!("worker_class wasm, workers: {workers}   {rps:>8.1} req/s  ({how})");
        rates.push(rps);
    }
    println!("workers: 2 / workers: 1 = {:.2}x", rates[1] / rates[0]);
    let _ = std::fs::remove_dir_all(&base);
}

fn clients_warm_up(addr: SocketAddr) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(b"POST /crunch HTTP/1.1\r\nhost: b\r\nconnection: close\r\ncontent-length: 1\r\n\r\n1")
        .unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    assert!(out.starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&out));
}
