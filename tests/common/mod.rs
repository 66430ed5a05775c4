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
