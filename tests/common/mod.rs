//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod http;

use std::path::{Path, PathBuf};

/// Path of a committed fixture under `spec-tests/fixtures`.
pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("spec-tests/fixtures")
        .join(name)
}

/// Wraps a wasm32-wasip1 core module into a `wasi:cli/command` component with
/// the preview1 command adapter, as `wasm-tools component new` does.
pub fn componentize_command(core: &[u8]) -> Vec<u8> {
    wippy_wasm::component::wrap::adapt_preview1(core).expect("adapt")
}

/// Core-module fields of a bump allocator with a memory: `(memory "mem")`
/// and `realloc` that honours alignment and copies on growth.
pub const LIBC: &str = r#"
    (memory (export "mem") 1)
    (global $next (mut i32) (i32.const 1024))
    (func (export "realloc") (param $old i32) (param $osize i32) (param $align i32) (param $nsize i32) (result i32)
      (local $r i32)
      (local.set $r (i32.and (i32.add (global.get $next) (i32.sub (local.get $align) (i32.const 1)))
                             (i32.sub (i32.const 0) (local.get $align))))
      (global.set $next (i32.add (local.get $r) (local.get $nsize)))
      (if (i32.ne (local.get $old) (i32.const 0))
        (then (memory.copy (local.get $r) (local.get $old) (local.get $osize))))
      (local.get $r))"#;

/// The sha256 of a file, in hex (as registry `hash:` fields want it).
pub fn sha256(path: &Path) -> String {
    use sha2::Digest;
    let bytes = std::fs::read(path).unwrap();
    sha2::Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A loopback TCP server answering each of `connections` "ping"s with "PONG".
pub fn pong_server(connections: usize) -> u16 {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for _ in 0..connections {
            let Ok((mut c, _)) = listener.accept() else { return };
            let mut buf = [0; 4];
            if c.read_exact(&mut buf).is_ok() && &buf == b"ping" {
                let _ = c.write_all(b"PONG");
            }
        }
    });
    port
}

/// A loopback listener whose accept queue is full, so it drops new SYNs:
/// a connect to its address stalls. Keep the sockets alive meanwhile.
pub fn full_listener() -> (std::net::SocketAddr, Vec<socket2::Socket>) {
    use socket2::{Domain, Socket, Type};
    let full = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    full.bind(&"127.0.0.1:0".parse::<std::net::SocketAddr>().unwrap().into())
        .unwrap();
    full.listen(0).unwrap();
    let addr = full.local_addr().unwrap().as_socket().unwrap();
    let mut held = vec![full];
    for _ in 0..4 {
        let s = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        s.set_nonblocking(true).unwrap();
        let _ = s.connect(&addr.into());
        held.push(s);
    }
    std::thread::sleep(std::time::Duration::from_millis(100));
    (addr, held)
}

/// Runs `wippy-wasm ARGS`: (exit status, stdout, stderr).
pub fn cli(args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_wippy-wasm"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// What [`cli_measured`] reports of one `wippy-wasm` run.
#[allow(dead_code)]
pub struct Measured {
    pub status: i32,
    pub stdout: String,
    pub stderr: String,
    /// Peak resident set size, KiB.
    pub peak_kib: u64,
    pub elapsed: std::time::Duration,
}

/// Spawns argv[1..] and waits for it, writing its peak RSS (KiB) to the
/// file named by `$PEAK_FILE`; exits with its status.
const MEASURE_PY: &str = "import os, sys
pid = os.posix_spawn(sys.argv[1], sys.argv[1:], os.environ)
_, status, usage = os.wait4(pid, 0)
open(os.environ['PEAK_FILE'], 'w').write(str(usage.ru_maxrss))
sys.exit(os.waitstatus_to_exitcode(status))";

/// Runs `wippy-wasm ARGS` and reports its output, its peak RSS and its
/// wall time. The child is started by a small Python process: a process
/// spawned straight from this one (vfork, then exec) inherits this test
/// binary's own peak RSS in `ru_maxrss`, other tests' allocations included.
#[allow(dead_code)]
pub fn cli_measured(args: &[&str]) -> Measured {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let peak_file = std::env::temp_dir().join(format!("wippy-peak-{}-{n}", std::process::id()));
    let start = std::time::Instant::now();
    let out = std::process::Command::new("python3")
        .args(["-c", MEASURE_PY, env!("CARGO_BIN_EXE_wippy-wasm")])
        .args(args)
        .env("PEAK_FILE", &peak_file)
        .output()
        .unwrap();
    let elapsed = start.elapsed();
    let peak = std::fs::read_to_string(&peak_file);
    let _ = std::fs::remove_file(&peak_file);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let peak_kib = peak
        .unwrap_or_else(|e| panic!("no peak RSS reported ({e}): {stderr}"))
        .trim()
        .parse()
        .unwrap();
    Measured {
        status: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr,
        peak_kib,
        elapsed,
    }
}

/// `wippy-wasm serve ARGS` as a child process on a free loopback port;
/// killed when dropped.
pub struct Served {
    pub addr: std::net::SocketAddr,
    child: std::process::Child,
    stderr: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Served {
    pub fn start(args: &[&str]) -> Served {
        use std::io::BufRead;
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_wippy-wasm"))
            .args(["serve", "--addr", "127.0.0.1:0"])
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let stderr: std::sync::Arc<std::sync::Mutex<String>> = Default::default();
        let (err_pipe, sink) = (child.stderr.take().unwrap(), stderr.clone());
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(err_pipe).lines().map_while(Result::ok) {
                let mut s = sink.lock().unwrap();
                s.push_str(&line);
                s.push('\n');
            }
        });
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let Some(url) = line.trim().strip_prefix("Serving HTTP on http://") else {
            let _ = child.wait();
            std::thread::sleep(std::time::Duration::from_millis(100));
            panic!("serve did not start: {line}{}", stderr.lock().unwrap());
        };
        let addr = url.trim_end_matches('/').parse().unwrap();
        Served { addr, child, stderr }
    }

    /// What the server wrote to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Whether stderr shows `needle` within a few seconds (it is read on
    /// another thread, so it may lag the server).
    #[allow(dead_code)]
    /// Open file descriptors of the server process now.
    #[allow(dead_code)]
    pub fn open_fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.child.id())).map_or(0, |d| d.count())
    }

    /// Resident set size of the server process now, KiB.
    #[allow(dead_code)]
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    }

    pub fn stderr_shows(&self, needle: &str) -> bool {
        let start = std::time::Instant::now();
        while start.elapsed() < std::time::Duration::from_secs(5) {
            if self.stderr().contains(needle) {
                return true;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        false
    }

    /// Sends SIGINT and waits up to `limit` for the server to exit; its
    /// status, or `None` if it is still running.
    #[allow(dead_code)]
    pub fn interrupt(&mut self, limit: std::time::Duration) -> Option<std::process::ExitStatus> {
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        let start = std::time::Instant::now();
        while start.elapsed() < limit {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
