//! `wasi:sockets/tcp` and `tcp-create-socket`: the WIT's TCP state machine
//! over a non-blocking OS socket registered with the dispatcher's reactor.
//! Nothing here blocks: waiting happens through pollables and the blocking
//! stream operations, which suspend the guest.

use super::streams::{TcpReader, TcpWriter};
use super::{
    buffer_size, code, code_result as res, family_ok, hop_limit, io_code, open_socket, os, os_addr, set_buffer_size,
    set_hop_limit, socket_addr_arg, socket_addr_val, Network, SocketSlot,
};
use super::{socket_ready, Socket, SocketReady};
use crate::host::table::Resource;
use crate::values::ResourceType;
use crate::values::Val;
use crate::wasi::io::{InputStream, OutputStream, Pollable};
use crate::wasi::{get, get_mut, iface, ok, own, rep, table_resource, Types, WasiView};
use crate::Linker;
use anyhow::{bail, Result};
use socket2::{Protocol, Type};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

/// Where a socket is in the WIT's state machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Unbound,
    BindStarted,
    Bound,
    ListenStarted,
    Listening,
    Connecting,
    /// `start-connect` failed at once: `finish-connect` reports this code.
    ConnectFailed(&'static str),
    Connected,
    /// A connection failed or ended; the socket is of no further use.
    Closed,
}

/// `wasi:sockets/tcp.tcp-socket`.
pub struct TcpSocket {
    sock: Socket,
    _slot: SocketSlot,
    v6: bool,
    state: State,
    backlog: u32,
    /// When a connection in progress gives up (the policy's socket timeout).
    connect_deadline: Option<std::time::Instant>,
}

/// The default `listen` backlog, as wasmtime uses.
const DEFAULT_BACKLOG: u32 = 128;

impl TcpSocket {
    fn new(v6: bool, slot: SocketSlot) -> std::io::Result<Self> {
        Ok(TcpSocket {
            sock: open_socket(v6, Type::STREAM, Protocol::TCP)?,
            _slot: slot,
            v6,
            state: State::Unbound,
            backlog: DEFAULT_BACKLOG,
            connect_deadline: None,
        })
    }

    fn os(&self) -> &socket2::Socket {
        self.sock.get_ref()
    }
}

/// A stream pair for a connected socket, both children of `parent`.
fn streams<T: WasiView>(
    cx: &mut crate::StoreCx<'_, T>,
    types: &Types,
    parent: &Resource<TcpSocket>,
    sock: &Socket,
) -> Result<Val> {
    let ctx = cx.data_mut().wasi();
    let timeout = ctx.network.timeout;
    let input = InputStream::new(TcpReader {
        sock: sock.clone(),
        timeout,
    });
    let output = OutputStream::new(TcpWriter {
        sock: sock.clone(),
        pending: Vec::new(),
        timeout,
    });
    let input = ctx.table.push_child(input, parent)?;
    let output = ctx.table.push_child(output, parent)?;
    Ok(Val::Tuple(vec![
        own(&types.input_stream, input.rep()),
        own(&types.output_stream, output.rep()),
    ]))
}

/// Defines a method `[method]tcp-socket.NAME` whose body maps the socket
/// to a result (the WIT error code on failure).
fn method<T: WasiView>(
    inst: &mut crate::LinkerInstance<T>,
    name: &str,
    f: impl Fn(&mut TcpSocket, &[Val]) -> Result<std::result::Result<Option<Val>, &'static str>> + Send + Sync + 'static,
) {
    inst.func_new(&format!("[method]tcp-socket.{name}"), move |mut cx, args, out| {
        let s = get_mut::<T, TcpSocket>(&mut cx, &args[0])?;
        out.push(res(f(s, &args[1..])?));
        Ok(())
    });
}

pub(crate) fn add_to_linker<T: WasiView>(linker: &mut Linker<T>, types: &Types) {
    let tcp = linker.instance(&iface("wasi:sockets/tcp"));
    let socket_ty = table_resource::<T, TcpSocket>(tcp, "tcp-socket");
    add_state_machine(tcp, types, &socket_ty);
    add_options(tcp);

    super::define_create(
        linker,
        "wasi:sockets/tcp-create-socket",
        "create-tcp-socket",
        socket_ty,
        TcpSocket::new,
    );
}

fn add_state_machine<T: WasiView>(tcp: &mut crate::LinkerInstance<T>, types: &Types, socket_ty: &ResourceType) {
    tcp.func_new("[method]tcp-socket.start-bind", |mut cx, args, out| {
        get::<T, Network>(&mut cx, &args[1])?;
        let addr = socket_addr_arg(&args[2])?;
        let permitted = cx.data_mut().wasi().network.permits(addr.ip());
        let s = get_mut::<T, TcpSocket>(&mut cx, &args[0])?;
        let r = (|| {
            if !family_ok(s.v6, &addr) {
                return Err("invalid-argument");
            }
            if s.state != State::Unbound {
                return Err("invalid-state");
            }
            if !permitted {
                return Err("access-denied");
            }
            // Like wasmtime: a listener can rebind a port in TIME_WAIT.
            os(s.os().set_reuse_address(true))?;
            os(s.os().bind(&addr.into()))?;
            s.state = State::BindStarted;
            Ok(None)
        })();
        out.push(res(r));
        Ok(())
    });
    method(tcp, "finish-bind", |s, _| {
        Ok(match s.state {
            State::BindStarted => {
                s.state = State::Bound;
                Ok(None)
            }
            _ => Err("not-in-progress"),
        })
    });
    tcp.func_new("[method]tcp-socket.start-connect", |mut cx, args, out| {
        get::<T, Network>(&mut cx, &args[1])?;
        let addr = socket_addr_arg(&args[2])?;
        let permitted = cx.data_mut().wasi().network.permits(addr.ip());
        let timeout = cx.data_mut().wasi().network.timeout;
        let s = get_mut::<T, TcpSocket>(&mut cx, &args[0])?;
        let r = (|| {
            if !family_ok(s.v6, &addr) {
                return Err("invalid-argument");
            }
            if addr.ip().is_unspecified() || addr.port() == 0 || is_broadcast(addr.ip()) {
                return Err("invalid-argument");
            }
            match s.state {
                State::Unbound | State::Bound => {}
                State::BindStarted | State::ListenStarted | State::Connecting => return Err("concurrency-conflict"),
                _ => return Err("invalid-state"),
            }
            if !permitted {
                return Err("access-denied");
            }
            s.state = match s.os().connect(&addr.into()) {
                Ok(()) => State::Connecting,
                Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => State::Connecting,
                Err(e) => State::ConnectFailed(io_code(&e)),
            };
            s.connect_deadline = timeout.map(|t| std::time::Instant::now() + t);
            Ok(None)
        })();
        out.push(res(r));
        Ok(())
    });
    let t = types.clone();
    tcp.func_new("[method]tcp-socket.finish-connect", move |mut cx, args, out| {
        let parent = Resource::<TcpSocket>::new(rep(&args[0])?);
        let s = get_mut::<T, TcpSocket>(&mut cx, &args[0])?;
        let r = match s.state {
            State::ConnectFailed(c) => {
                s.state = State::Closed;
                Err(c)
            }
            State::Connecting if !socket_ready(&s.sock, true) => {
                if s.connect_deadline.is_some_and(|t| std::time::Instant::now() >= t) {
                    s.state = State::Closed;
                    Err("timeout")
                } else {
                    Err("would-block")
                }
            }
            State::Connecting => match s.os().take_error() {
                Ok(None) if s.os().peer_addr().is_ok() => {
                    s.state = State::Connected;
                    Ok(s.sock.clone())
                }
                Ok(None) => {
                    s.state = State::Closed;
                    Err("connection-refused")
                }
                Ok(Some(e)) | Err(e) => {
                    s.state = State::Closed;
                    Err(io_code(&e))
                }
            },
            _ => Err("not-in-progress"),
        };
        out.push(match r {
            Ok(sock) => ok(Some(streams(&mut cx, &t, &parent, &sock)?)),
            Err(c) => code(c),
        });
        Ok(())
    });
    method(tcp, "start-listen", |s, _| {
        Ok((|| {
            match s.state {
                State::Bound => {}
                State::BindStarted | State::Connecting | State::ListenStarted => return Err("concurrency-conflict"),
                _ => return Err("invalid-state"),
            }
            os(s.os().listen(s.backlog.min(i32::MAX as u32) as i32))?;
            s.state = State::ListenStarted;
            Ok(None)
        })())
    });
    method(tcp, "finish-listen", |s, _| {
        Ok(match s.state {
            State::ListenStarted => {
                s.state = State::Listening;
                Ok(None)
            }
            _ => Err("not-in-progress"),
        })
    });
    let (t, st) = (types.clone(), socket_ty.clone());
    tcp.func_new("[method]tcp-socket.accept", move |mut cx, args, out| {
        let slot = SocketSlot::take(cx.data_mut().wasi());
        let s = get_mut::<T, TcpSocket>(&mut cx, &args[0])?;
        if s.state != State::Listening {
            out.push(code("invalid-state"));
            return Ok(());
        }
        // Over the limit, the connection stays queued for a later accept.
        let slot = match slot {
            Ok(slot) => slot,
            Err(c) => {
                out.push(code(c));
                return Ok(());
            }
        };
        let v6 = s.v6;
        let accepted = loop {
            match s.os().accept() {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                // A connection that died in the queue: try the next.
                Err(e) if e.raw_os_error() == Some(libc::ECONNABORTED) => continue,
                r => break r,
            }
        };
        let conn = match accepted.and_then(|(c, _)| Ok(Arc::new(async_io::Async::new(c)?))) {
            Ok(c) => c,
            Err(e) => {
                out.push(code(io_code(&e)));
                return Ok(());
            }
        };
        let child = TcpSocket {
            sock: conn.clone(),
            _slot: slot,
            v6,
            state: State::Connected,
            backlog: DEFAULT_BACKLOG,
            connect_deadline: None,
        };
        let r = cx.data_mut().wasi().table.push(child)?;
        let Val::Tuple(mut parts) = streams(&mut cx, &t, &r, &conn)? else {
            unreachable!()
        };
        parts.insert(0, own(&st, r.rep()));
        out.push(ok(Some(Val::Tuple(parts))));
        Ok(())
    });
    method(tcp, "local-address", |s, _| {
        Ok(match s.state {
            State::Unbound | State::BindStarted => Err("invalid-state"),
            _ => os_addr(s.os().local_addr()).map(|a| Some(socket_addr_val(a))),
        })
    });
    method(tcp, "remote-address", |s, _| {
        Ok(match s.state {
            State::Connected => os_addr(s.os().peer_addr()).map(|a| Some(socket_addr_val(a))),
            _ => Err("invalid-state"),
        })
    });
    tcp.func_new("[method]tcp-socket.is-listening", |mut cx, args, out| {
        out.push(Val::Bool(
            get::<T, TcpSocket>(&mut cx, &args[0])?.state == State::Listening,
        ));
        Ok(())
    });
    tcp.func_new("[method]tcp-socket.address-family", |mut cx, args, out| {
        let v6 = get::<T, TcpSocket>(&mut cx, &args[0])?.v6;
        out.push(Val::Enum(if v6 { "ipv6" } else { "ipv4" }.into()));
        Ok(())
    });
    let pt = types.pollable.clone();
    tcp.func_new("[method]tcp-socket.subscribe", move |mut cx, args, out| {
        let s = get::<T, TcpSocket>(&mut cx, &args[0])?;
        let p = match s.state {
            State::Listening => SocketReady::pollable(s.sock.clone(), false),
            State::Connecting => Pollable::new(SocketReady {
                sock: s.sock.clone(),
                write: true,
                until: s.connect_deadline,
            }),
            _ => Pollable::ready(),
        };
        let parent = Resource::<TcpSocket>::new(rep(&args[0])?);
        let p = cx.data_mut().wasi().table.push_child(p, &parent)?;
        out.push(own(&pt, p.rep()));
        Ok(())
    });
    method(tcp, "shutdown", |s, args| {
        let how = match &args[0] {
            Val::Enum(h) if h == "receive" => std::net::Shutdown::Read,
            Val::Enum(h) if h == "send" => std::net::Shutdown::Write,
            Val::Enum(h) if h == "both" => std::net::Shutdown::Both,
            _ => bail!("expected a shutdown-type"),
        };
        Ok(match s.state {
            State::Connected => os(s.os().shutdown(how)).map(|_| None),
            _ => Err("invalid-state"),
        })
    });
}

fn is_broadcast(ip: IpAddr) -> bool {
    matches!(ip, IpAddr::V4(v4) if v4.is_broadcast() || v4.is_multicast())
        || matches!(ip, IpAddr::V6(v6) if v6.is_multicast())
}

/// A non-zero numeric argument, or `invalid-argument`.
fn nonzero(v: &Val) -> Result<std::result::Result<u64, &'static str>> {
    let n = match v {
        Val::U64(n) => *n,
        Val::U32(n) => *n as u64,
        Val::U8(n) => *n as u64,
        other => bail!("expected a number, got {}", other.kind()),
    };
    Ok(if n == 0 { Err("invalid-argument") } else { Ok(n) })
}

fn add_options<T: WasiView>(tcp: &mut crate::LinkerInstance<T>) {
    method(tcp, "set-listen-backlog-size", |s, args| {
        let n = match nonzero(&args[0])? {
            Ok(n) => n.min(i32::MAX as u64) as u32,
            Err(c) => return Ok(Err(c)),
        };
        Ok(match s.state {
            State::Connecting | State::Connected | State::ConnectFailed(_) | State::Closed => Err("invalid-state"),
            State::Listening => os(s.os().listen(n as i32)).map(|_| {
                s.backlog = n;
                None
            }),
            _ => {
                s.backlog = n;
                Ok(None)
            }
        })
    });
    method(tcp, "keep-alive-enabled", |s, _| {
        Ok(os(s.os().keepalive()).map(|b| Some(Val::Bool(b))))
    });
    method(tcp, "set-keep-alive-enabled", |s, args| {
        let Val::Bool(on) = args[0] else {
            bail!("expected a bool")
        };
        Ok(os(s.os().set_keepalive(on)).map(|_| None))
    });
    method(tcp, "keep-alive-idle-time", |s, _| {
        Ok(os(s.os().tcp_keepalive_time()).map(|d| Some(Val::U64(d.as_nanos() as u64))))
    });
    method(tcp, "set-keep-alive-idle-time", |s, args| {
        Ok(nonzero(&args[0])?.and_then(|ns| {
            // The kernel counts whole seconds; round up so a value is never 0.
            let d = Duration::from_secs(ns.div_ceil(1_000_000_000));
            os(s.os().set_tcp_keepalive(&socket2::TcpKeepalive::new().with_time(d))).map(|_| None)
        }))
    });
    method(tcp, "keep-alive-interval", |s, _| {
        Ok(os(s.os().tcp_keepalive_interval()).map(|d| Some(Val::U64(d.as_nanos() as u64))))
    });
    method(tcp, "set-keep-alive-interval", |s, args| {
        Ok(nonzero(&args[0])?.and_then(|ns| {
            let d = Duration::from_secs(ns.div_ceil(1_000_000_000));
            os(s.os().set_tcp_keepalive(&socket2::TcpKeepalive::new().with_interval(d))).map(|_| None)
        }))
    });
    method(tcp, "keep-alive-count", |s, _| {
        Ok(os(s.os().tcp_keepalive_retries()).map(|n| Some(Val::U32(n))))
    });
    method(tcp, "set-keep-alive-count", |s, args| {
        Ok(nonzero(&args[0])?.and_then(|n| {
            let n = n.min(u32::MAX as u64) as u32;
            os(s.os().set_tcp_keepalive(&socket2::TcpKeepalive::new().with_retries(n))).map(|_| None)
        }))
    });
    method(tcp, "hop-limit", |s, _| Ok(hop_limit(s.os(), s.v6)));
    method(tcp, "set-hop-limit", |s, args| {
        let Val::U8(n) = args[0] else { bail!("expected u8") };
        Ok(set_hop_limit(s.os(), s.v6, n))
    });
    for (get_name, set_name, recv) in [
        ("receive-buffer-size", "set-receive-buffer-size", true),
        ("send-buffer-size", "set-send-buffer-size", false),
    ] {
        method(tcp, get_name, move |s, _| Ok(buffer_size(s.os(), recv)));
        method(tcp, set_name, move |s, args| {
            Ok(set_buffer_size(s.os(), recv, crate::wasi::u64_arg(&args[0])?))
        });
    }
}
