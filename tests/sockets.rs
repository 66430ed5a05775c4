//! wasi:sockets TCP and UDP through `tests/tcp.wat` and `tests/udp.wat`,
//! against servers and clients on loopback started by the tests. Guest results are values, or
//! -(1 + error-code) (see the fixture's header).

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const GUEST: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/tcp.wat");
const UDP_GUEST: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/udp.wat");

/// Runs `call` on `guest` with `flags`: exit status, stdout, stderr.
fn run(guest: &str, flags: &[&str], call: &str) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_wippy-wasm"))
        .arg("run")
        .args(flags)
        .args(["--invoke", call, guest])
        .output()
        .unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).trim().to_string();
    (out.status.code(), text(&out.stdout), text(&out.stderr))
}

/// Runs `call` on the TCP guest with `flags`; its printed result.
fn invoke(flags: &[&str], call: &str) -> String {
    let (status, out, err) = run(GUEST, flags, call);
    assert_eq!(status, Some(0), "{call}: {err}");
    out
}

/// Runs `call` on the UDP guest with `flags`; its printed result.
fn invoke_udp(flags: &[&str], call: &str) -> String {
    let (status, out, err) = run(UDP_GUEST, flags, call);
    assert_eq!(status, Some(0), "{call}: {err}");
    out
}

/// A loopback port nothing listens on.
fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

const NET: &[&str] = &["--inherit-network"];

#[test]
fn tcp_client_talks_to_a_local_server() {
    let port = common::pong_server(2);
    let pong = u32::from_le_bytes(*b"PONG").to_string();
    assert_eq!(invoke(NET, &format!("echo({port})")), pong);
    // The grant can also be a single allowed range.
    assert_eq!(invoke(&["--net-allow", "127.0.0.0/8"], &format!("echo({port})")), pong);
}

#[test]
fn tcp_over_ipv6_loopback() {
    let Ok(listener) = TcpListener::bind("[::1]:0") else {
        eprintln!("skipped: this host has no IPv6 loopback");
        return;
    };
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let (mut c, _) = listener.accept().unwrap();
        let mut buf = [0; 4];
        if c.read_exact(&mut buf).is_ok() && &buf == b"ping" {
            c.write_all(b"PONG").unwrap();
        }
    });
    let pong = u32::from_le_bytes(*b"PONG").to_string();
    assert_eq!(invoke(NET, &format!("echo6({port})")), pong);
    // An IPv6 address is loopback too.
    assert_eq!(
        invoke(&["--inherit-network", "--deny-loopback"], &format!("echo6({port})")),
        "-2"
    );
}

#[test]
fn run_limits_sockets_and_their_waits() {
    // No socket may be opened: new-socket-limit (10).
    let port = common::pong_server(0);
    assert_eq!(
        invoke(&["--inherit-network", "--max-sockets", "0"], &format!("echo({port})")),
        "-11"
    );
    // A server that accepts and never answers: the blocking read gives up.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let conn = silent.accept();
        std::thread::sleep(Duration::from_secs(5));
        drop(conn);
    });
    let start = Instant::now();
    let flags = ["--inherit-network", "--socket-timeout-ms", "200"];
    assert_eq!(invoke(&flags, &format!("echo({port})")), "-101");
    assert!(start.elapsed() < Duration::from_secs(3), "{:?}", start.elapsed());
}

#[test]
fn tcp_connection_refused() {
    assert_eq!(
        invoke(NET, &format!("echo({})", closed_port())),
        "-15",
        "connection-refused"
    );
}

#[test]
fn tcp_state_machine_errors() {
    // finish-connect before start: not-in-progress (7); start-listen before
    // bind, accept before listen, remote-address unconnected: invalid-state (9).
    assert_eq!(invoke(NET, "errors()"), 0x09090907u32.to_string());
    // start-connect on a connected socket: invalid-state.
    let port = common::pong_server(1);
    assert_eq!(invoke(NET, &format!("again({port})")), "9");
}

#[test]
fn tcp_server_accepts_and_echoes() {
    let port = closed_port();
    let mut guest = Command::new(env!("CARGO_BIN_EXE_wippy-wasm"))
        .args(["run", "--inherit-network", "--invoke", &format!("serve({port})"), GUEST])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut conn = loop {
        match TcpStream::connect(("127.0.0.1", port)) {
            Ok(c) => break c,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => {
                let _ = guest.kill();
                panic!("the guest never listened on {port}: {e}");
            }
        }
    };
    conn.write_all(b"hello").unwrap();
    let mut echoed = [0; 5];
    conn.read_exact(&mut echoed).unwrap();
    assert_eq!(&echoed, b"hello");
    let out = guest.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "5");
}

#[test]
fn tcp_policy_denies_with_access_denied() {
    let port = common::pong_server(0);
    let echo = format!("echo({port})");
    // No grant: creating a socket is refused.
    assert_eq!(invoke(&[], &echo), "-2");
    // Granted, but the address is excluded.
    for flags in [
        &["--inherit-network", "--deny-loopback"][..],
        &["--inherit-network", "--net-deny", "127.0.0.1"],
        &["--net-allow", "10.0.0.0/8"],
    ] {
        assert_eq!(invoke(flags, &echo), "-2", "{flags:?}");
        assert_eq!(invoke(flags, &format!("serve({port})")), "-2", "bind: {flags:?}");
    }
}

/// A loopback UDP peer answering each "ping" with "PONG".
fn udp_pong_server(datagrams: usize) -> u16 {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = sock.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut buf = [0; 64];
        for _ in 0..datagrams {
            let (n, from) = sock.recv_from(&mut buf).unwrap();
            if &buf[..n] == b"ping" {
                sock.send_to(b"PONG", from).unwrap();
            }
        }
    });
    port
}

#[test]
fn udp_send_and_receive() {
    let port = udp_pong_server(1);
    let pong = u32::from_le_bytes(*b"PONG").to_string();
    assert_eq!(invoke_udp(NET, &format!("ping({port})")), pong);
}

#[test]
fn udp_sending_more_than_check_send_permits_traps() {
    let port = udp_pong_server(0);
    let (status, _, err) = run(UDP_GUEST, NET, &format!("overflow({port})"));
    assert_ne!(status, Some(0));
    assert!(err.contains("exceed the 64 that check-send permitted"), "{err}");
}

#[test]
fn udp_errors_and_policy() {
    // No address on an unconnected stream: invalid-argument (3).
    assert_eq!(invoke_udp(NET, "unaddressed()"), "-4");
    // Streams before bind: invalid-state (9).
    assert_eq!(invoke_udp(NET, "unbound(9)"), "-10");
    // No grant, or a denied peer: access-denied (1).
    let port = udp_pong_server(0);
    assert_eq!(invoke_udp(&[], &format!("ping({port})")), "-2");
    assert_eq!(
        invoke_udp(&["--inherit-network", "--deny-loopback"], &format!("ping({port})")),
        "-2"
    );
}

#[test]
fn tcp_peer_reset_is_a_stream_error_with_its_network_code() {
    // The server takes "ping" and resets the connection (linger 0).
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let (mut c, _) = listener.accept().unwrap();
        let mut buf = [0; 4];
        c.read_exact(&mut buf).unwrap();
        socket2::SockRef::from(&c).set_linger(Some(Duration::ZERO)).unwrap();
    });
    // connection-reset is code 15.
    assert_eq!(invoke(NET, &format!("reset({port})")), "15");
}

#[test]
fn a_blocking_read_that_fails_while_waiting_reports_the_network_code() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for _ in 0..2 {
            let (mut c, _) = listener.accept().unwrap();
            let mut buf = [0; 4];
            c.read_exact(&mut buf).unwrap();
            // The guest is waiting in blocking-read by now.
            std::thread::sleep(Duration::from_millis(100));
            socket2::SockRef::from(&c).set_linger(Some(Duration::ZERO)).unwrap();
        }
    });
    // A reset during the wait: connection-reset (15).
    assert_eq!(invoke(NET, &format!("wait({port})")), "15");
    // A wait past --socket-timeout-ms: timeout (5).
    assert_eq!(
        invoke(
            &["--inherit-network", "--socket-timeout-ms", "30"],
            &format!("wait({port})")
        ),
        "5"
    );
}
