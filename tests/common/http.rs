//! HTTP helpers for the tests: a loopback origin server with routes that
//! misbehave on purpose, and a raw HTTP/1.1 client.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

/// A parsed request or response head and its (de-chunked) body.
#[derive(Debug, Default)]
pub struct Message {
    /// The status code, or 0 for a request.
    pub status: u16,
    /// Request line or status line.
    pub start: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub chunked: bool,
    pub trailers: Vec<(String, String)>,
}

impl Message {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

fn read_headers(r: &mut impl BufRead) -> std::io::Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        let line = line.trim_end();
        if line.is_empty() {
            return Ok(out);
        }
        if let Some((k, v)) = line.split_once(':') {
            out.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
}

/// Reads one message (request or response) from `r`. `until_eof`: a
/// response without length is delimited by the connection's end.
pub fn read_message(r: &mut impl BufRead, until_eof: bool) -> std::io::Result<Message> {
    let mut start = String::new();
    if r.read_line(&mut start)? == 0 {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    let start = start.trim_end().to_string();
    let status = start
        .strip_prefix("HTTP/1.1 ")
        .and_then(|s| s.get(..3))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers = read_headers(r)?;
    let mut m = Message {
        status,
        start,
        headers,
        ..Default::default()
    };
    if m.header("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        m.chunked = true;
        loop {
            let mut size = String::new();
            r.read_line(&mut size)?;
            let n = usize::from_str_radix(size.trim().split(';').next().unwrap_or(""), 16)
                .map_err(|_| std::io::Error::other(format!("bad chunk size {size:?}")))?;
            if n == 0 {
                m.trailers = read_headers(r)?;
                break;
            }
            let mut chunk = vec![0; n + 2];
            r.read_exact(&mut chunk)?;
            m.body.extend_from_slice(&chunk[..n]);
        }
    } else if let Some(len) = m.header("content-length").and_then(|v| v.parse::<usize>().ok()) {
        m.body = vec![0; len];
        r.read_exact(&mut m.body)?;
    } else if until_eof && status != 0 {
        r.read_to_end(&mut m.body)?;
    }
    Ok(m)
}

/// Sends `raw` to `addr` and reads one response.
pub fn exchange(addr: SocketAddr, raw: &[u8]) -> std::io::Result<Message> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    s.write_all(raw)?;
    read_message(&mut BufReader::new(s), true)
}

/// A GET of `path`.
pub fn get(addr: SocketAddr, path: &str) -> Message {
    exchange(
        addr,
        format!("GET {path} HTTP/1.1\r\nhost: test\r\nconnection: close\r\n\r\n").as_bytes(),
    )
    .unwrap()
}

/// A POST of `body` to `path`.
pub fn post(addr: SocketAddr, path: &str, body: &[u8]) -> Message {
    let mut raw = format!(
        "POST {path} HTTP/1.1\r\nhost: test\r\nconnection: close\r\ncontent-length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    raw.extend_from_slice(body);
    exchange(addr, &raw).unwrap()
}

/// The sum of the bytes, as the origin reports uploads.
pub fn checksum(data: &[u8]) -> u32 {
    data.iter()
        .fold(0u32, |a, b| a.wrapping_mul(31).wrapping_add(*b as u32))
}

/// Starts a loopback origin server; returns its port. Routes:
/// - `/hello`: 200 "hello" with `content-length` and `x-test: yes`;
/// - `/upload`: answers "BYTES CHECKSUM chunked|length" for the body;
/// - `/trailers`: a chunked body with a trailer `x-checksum: abc`;
/// - `/silent`: never answers;
/// - `/stall`: headers and 5 of 100 bytes, then nothing;
/// - `/reset`: headers and 10 of 1000 bytes, then a TCP reset.
pub fn origin() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { return };
            std::thread::spawn(move || {
                let _ = serve_one(conn);
            });
        }
    });
    port
}

fn serve_one(conn: TcpStream) -> std::io::Result<()> {
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut w = conn;
    let req = read_message(&mut reader, false)?;
    let path = req.start.split(' ').nth(1).unwrap_or("/").to_string();
    match path.as_str() {
        "/hello" => {
            w.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\nx-test: yes\r\nconnection: close\r\n\r\nhello")?
        }
        "/upload" => {
            let kind = if req.chunked { "chunked" } else { "length" };
            let text = format!("{} {} {kind}", req.body.len(), checksum(&req.body));
            write!(
                w,
                "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{text}",
                text.len()
            )?;
        }
        "/trailers" => w.write_all(
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ntrailer: x-checksum\r\nconnection: close\r\n\r\n\
              3\r\nabc\r\n3\r\ndef\r\n0\r\nx-checksum: abc\r\n\r\n",
        )?,
        "/silent" => std::thread::sleep(Duration::from_secs(20)),
        "/stall" => {
            w.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nhello")?;
            std::thread::sleep(Duration::from_secs(20));
        }
        "/reset" => {
            w.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n0123456789")?;
            w.flush()?;
            std::thread::sleep(Duration::from_millis(50));
            reset(w);
        }
        _ => w.write_all(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")?,
    }
    Ok(())
}

/// Closes `s` with a TCP reset (linger 0) instead of a clean FIN.
pub fn reset(s: TcpStream) {
    use std::os::fd::AsRawFd;
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: a valid socket and a correctly sized option value.
    unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
    drop(s);
}

/// Builds a componentize-py guest with `script` (relative to the crate)
/// into `out`; `None` (skip) if componentize-py is not installed, except
/// under `CI`, where it must be.
pub fn build_python(script: &str, out: &std::path::Path) -> Option<std::path::PathBuf> {
    let available = std::process::Command::new("python3")
        .args(["-c", "import componentize_py"])
        .status()
        .is_ok_and(|s| s.success());
    if !available {
        assert!(std::env::var_os("CI").is_none(), "componentize-py is not installed");
        eprintln!("skipped: componentize-py is not installed");
        return None;
    }
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let status = std::process::Command::new("bash")
        .arg(root.join(script))
        .arg(out)
        .status()
        .unwrap();
    assert!(status.success(), "{script} failed");
    Some(out.to_path_buf())
}

/// An in-process `serve` server on a free loopback port, on two executor
/// threads; it stops (1 s grace) when dropped.
#[allow(dead_code)]
pub struct Running {
    pub addr: SocketAddr,
    stop: std::sync::Arc<wippy_wasm::wasi::io::Signal>,
    thread: Option<std::thread::JoinHandle<()>>,
}

#[allow(dead_code)]
impl Running {
    pub fn start(
        handler: std::sync::Arc<dyn wippy_wasm::serve::Handler>,
        timeouts: wippy_wasm::serve::Timeouts,
    ) -> Running {
        let server = wippy_wasm::serve::Server::bind("127.0.0.1:0".parse().unwrap())
            .unwrap()
            .with_timeouts(timeouts);
        let addr = server.local_addr().unwrap();
        let stop: std::sync::Arc<wippy_wasm::wasi::io::Signal> = Default::default();
        let s = stop.clone();
        let thread = std::thread::spawn(move || {
            server
                .run(handler, 2, async move { s.wait().await }, Duration::from_secs(1))
                .unwrap()
        });
        Running {
            addr,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop.set();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
