//! `wasi:sockets/udp` and `udp-create-socket`: a non-blocking UDP socket
//! and its datagram streams, with `check-send` permits enforced by trapping
//! as the WIT requires.

use super::{
    buffer_size, code, code_result as result, family_ok, hop_limit, io_code, open_socket, os_addr, set_buffer_size,
    set_hop_limit, socket_addr_arg, socket_addr_val, Code, Network, SocketSlot,
};
use super::{socket_ready, Socket, SocketReady};
use crate::host::table::Resource;
use crate::values::ResourceType;
use crate::values::Val;
use crate::wasi::io::Pollable;
use crate::wasi::{bytes_arg, bytes_val, get, get_mut, iface, ok, own, rep, table_resource, Types, WasiView};
use crate::Linker;
use anyhow::{anyhow, bail, Result};
use socket2::{Protocol, SockAddr, Type};
use std::net::SocketAddr;

/// `wasi:sockets/udp.udp-socket`.
pub struct UdpSocket {
    sock: Socket,
    _slot: SocketSlot,
    v6: bool,
    bound: Bound,
    /// The peer the current streams are connected to.
    remote: Option<SocketAddr>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Bound {
    No,
    Started,
    Yes,
}

/// `incoming-datagram-stream`.
pub struct IncomingStream {
    sock: Socket,
    remote: Option<SocketAddr>,
}

/// `outgoing-datagram-stream`: `permit` datagrams may be sent since the last
/// `check-send`.
pub struct OutgoingStream {
    sock: Socket,
    v6: bool,
    remote: Option<SocketAddr>,
    permit: u64,
}

/// Datagrams one `check-send` permits when the socket is writable.
const SEND_PERMIT: u64 = 64;
/// The largest UDP payload.
const MAX_DATAGRAM: usize = 65_535;

fn option_addr(v: &Val) -> Result<Option<SocketAddr>> {
    match v {
        Val::Option(None) => Ok(None),
        Val::Option(Some(a)) => socket_addr_arg(a).map(Some),
        other => bail!("expected option<ip-socket-address>, got {}", other.kind()),
    }
}

pub(crate) fn add_to_linker<T: WasiView>(linker: &mut Linker<T>, types: &Types) {
    let udp = linker.instance(&iface("wasi:sockets/udp"));
    let socket_ty = table_resource::<T, UdpSocket>(udp, "udp-socket");
    let incoming_ty = table_resource::<T, IncomingStream>(udp, "incoming-datagram-stream");
    let outgoing_ty = table_resource::<T, OutgoingStream>(udp, "outgoing-datagram-stream");
    add_socket(udp, types, &incoming_ty, &outgoing_ty);
    add_streams(udp, types);

    super::define_create(
        linker,
        "wasi:sockets/udp-create-socket",
        "create-udp-socket",
        socket_ty,
        |v6, slot| {
            Ok(UdpSocket {
                sock: open_socket(v6, Type::DGRAM, Protocol::UDP)?,
                _slot: slot,
                v6,
                bound: Bound::No,
                remote: None,
            })
        },
    );
}

fn add_socket<T: WasiView>(
    udp: &mut crate::LinkerInstance<T>,
    types: &Types,
    incoming_ty: &ResourceType,
    outgoing_ty: &ResourceType,
) {
    udp.func_new("[method]udp-socket.start-bind", |mut cx, args, out| {
        get::<T, Network>(&mut cx, &args[1])?;
        let addr = socket_addr_arg(&args[2])?;
        let permitted = cx.data_mut().wasi().network.permits(addr.ip());
        let s = get_mut::<T, UdpSocket>(&mut cx, &args[0])?;
        let r = if !family_ok(s.v6, &addr) {
            Err("invalid-argument")
        } else if s.bound != Bound::No {
            Err("invalid-state")
        } else if !permitted {
            Err("access-denied")
        } else {
            s.sock.get_ref().bind(&addr.into()).map_err(|e| io_code(&e)).map(|_| {
                s.bound = Bound::Started;
                None
            })
        };
        out.push(result(r));
        Ok(())
    });
    udp.func_new("[method]udp-socket.finish-bind", |mut cx, args, out| {
        let s = get_mut::<T, UdpSocket>(&mut cx, &args[0])?;
        out.push(result(if s.bound == Bound::Started {
            s.bound = Bound::Yes;
            Ok(None)
        } else {
            Err("not-in-progress")
        }));
        Ok(())
    });
    let (it, ot) = (incoming_ty.clone(), outgoing_ty.clone());
    udp.func_new("[method]udp-socket.stream", move |mut cx, args, out| {
        let remote = option_addr(&args[1])?;
        let permitted = remote.is_none_or(|a| cx.data_mut().wasi().network.permits(a.ip()));
        let parent = Resource::<UdpSocket>::new(rep(&args[0])?);
        let s = get_mut::<T, UdpSocket>(&mut cx, &args[0])?;
        let r = (|| {
            if s.bound != Bound::Yes {
                return Err("invalid-state");
            }
            if let Some(a) = remote {
                if !family_ok(s.v6, &a) || a.ip().is_unspecified() || a.port() == 0 {
                    return Err("invalid-argument");
                }
                if !permitted {
                    return Err("access-denied");
                }
                s.sock.get_ref().connect(&a.into()).map_err(|e| io_code(&e))?;
            } else if s.remote.is_some() {
                disconnect(s.sock.get_ref()).map_err(|e| io_code(&e))?;
            }
            s.remote = remote;
            Ok((s.sock.clone(), s.v6))
        })();
        let (sock, v6) = match r {
            Ok(x) => x,
            Err(c) => {
                out.push(code(c));
                return Ok(());
            }
        };
        let table = &mut cx.data_mut().wasi().table;
        let incoming = table.push_child(
            IncomingStream {
                sock: sock.clone(),
                remote,
            },
            &parent,
        )?;
        let outgoing = table.push_child(
            OutgoingStream {
                sock,
                v6,
                remote,
                permit: 0,
            },
            &parent,
        )?;
        out.push(ok(Some(Val::Tuple(vec![
            own(&it, incoming.rep()),
            own(&ot, outgoing.rep()),
        ]))));
        Ok(())
    });
    udp.func_new("[method]udp-socket.local-address", |mut cx, args, out| {
        let s = get::<T, UdpSocket>(&mut cx, &args[0])?;
        out.push(result(if s.bound != Bound::Yes {
            Err("invalid-state")
        } else {
            addr_of(s.sock.get_ref().local_addr())
        }));
        Ok(())
    });
    udp.func_new("[method]udp-socket.remote-address", |mut cx, args, out| {
        let s = get::<T, UdpSocket>(&mut cx, &args[0])?;
        out.push(result(match s.remote {
            Some(_) => addr_of(s.sock.get_ref().peer_addr()),
            None => Err("invalid-state"),
        }));
        Ok(())
    });
    udp.func_new("[method]udp-socket.address-family", |mut cx, args, out| {
        let v6 = get::<T, UdpSocket>(&mut cx, &args[0])?.v6;
        out.push(Val::Enum(if v6 { "ipv6" } else { "ipv4" }.into()));
        Ok(())
    });
    udp.func_new("[method]udp-socket.unicast-hop-limit", |mut cx, args, out| {
        let s = get::<T, UdpSocket>(&mut cx, &args[0])?;
        out.push(result(hop_limit(s.sock.get_ref(), s.v6)));
        Ok(())
    });
    udp.func_new("[method]udp-socket.set-unicast-hop-limit", |mut cx, args, out| {
        let Val::U8(n) = args[1] else { bail!("expected u8") };
        let s = get::<T, UdpSocket>(&mut cx, &args[0])?;
        out.push(result(set_hop_limit(s.sock.get_ref(), s.v6, n)));
        Ok(())
    });
    for (get_name, set_name, recv) in [
        ("receive-buffer-size", "set-receive-buffer-size", true),
        ("send-buffer-size", "set-send-buffer-size", false),
    ] {
        udp.func_new(&format!("[method]udp-socket.{get_name}"), move |mut cx, args, out| {
            let os = get::<T, UdpSocket>(&mut cx, &args[0])?.sock.get_ref();
            out.push(result(buffer_size(os, recv)));
            Ok(())
        });
        udp.func_new(&format!("[method]udp-socket.{set_name}"), move |mut cx, args, out| {
            let n = crate::wasi::u64_arg(&args[1])?;
            let os = get::<T, UdpSocket>(&mut cx, &args[0])?.sock.get_ref();
            out.push(result(set_buffer_size(os, recv, n)));
            Ok(())
        });
    }
    let pt = types.pollable.clone();
    udp.func_new("[method]udp-socket.subscribe", move |mut cx, args, out| {
        get::<T, UdpSocket>(&mut cx, &args[0])?;
        let parent = Resource::<UdpSocket>::new(rep(&args[0])?);
        let p = cx.data_mut().wasi().table.push_child(Pollable::ready(), &parent)?;
        out.push(own(&pt, p.rep()));
        Ok(())
    });
}

fn addr_of(a: std::io::Result<SockAddr>) -> std::result::Result<Option<Val>, Code> {
    Ok(Some(socket_addr_val(os_addr(a)?)))
}

/// Dissolves a UDP socket's association (connect to `AF_UNSPEC`).
fn disconnect(s: &socket2::Socket) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: a zeroed sockaddr with family AF_UNSPEC, its true length.
    let mut addr: libc::sockaddr = unsafe { std::mem::zeroed() };
    addr.sa_family = libc::AF_UNSPEC as libc::sa_family_t;
    let r = unsafe { libc::connect(s.as_raw_fd(), &addr, std::mem::size_of::<libc::sockaddr>() as u32) };
    if r == 0 {
        Ok(())
    } else {
        let e = std::io::Error::last_os_error();
        // Linux reports EAFNOSUPPORT after dissolving successfully.
        if e.raw_os_error() == Some(libc::EAFNOSUPPORT) {
            Ok(())
        } else {
            Err(e)
        }
    }
}

fn add_streams<T: WasiView>(udp: &mut crate::LinkerInstance<T>, types: &Types) {
    udp.func_new("[method]incoming-datagram-stream.receive", |mut cx, args, out| {
        let max = crate::wasi::u64_arg(&args[1])?.min(1024);
        let s = get::<T, IncomingStream>(&mut cx, &args[0])?;
        let mut got = Vec::new();
        let mut failure = None;
        let mut buf = Vec::new();
        while (got.len() as u64) < max {
            if !socket_ready(&s.sock, false) {
                break;
            }
            // Allocated once, only when a datagram is waiting.
            buf.resize(MAX_DATAGRAM, std::mem::MaybeUninit::<u8>::uninit());
            match s.sock.get_ref().recv_from(&mut buf) {
                Ok((n, from)) => {
                    let Some(from) = from.as_socket() else { continue };
                    // A connected socket only receives from its peer (the OS
                    // filters too; this covers a race with `stream`).
                    if s.remote.is_some_and(|r| r != from) {
                        continue;
                    }
                    // SAFETY: recv_from initialised the first n bytes.
                    let data: Vec<u8> = buf[..n].iter().map(|b| unsafe { b.assume_init() }).collect();
                    got.push(Val::Record(vec![
                        ("data".into(), bytes_val(data)),
                        ("remote-address".into(), socket_addr_val(from)),
                    ]));
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    failure = Some(io_code(&e));
                    break;
                }
            }
        }
        out.push(match failure {
            Some(c) if got.is_empty() => code(c),
            _ => ok(Some(Val::List(got))),
        });
        Ok(())
    });
    let pt = types.pollable.clone();
    udp.func_new(
        "[method]incoming-datagram-stream.subscribe",
        move |mut cx, args, out| {
            let sock = get::<T, IncomingStream>(&mut cx, &args[0])?.sock.clone();
            let parent = Resource::<IncomingStream>::new(rep(&args[0])?);
            let p = SocketReady::pollable(sock, false);
            let p = cx.data_mut().wasi().table.push_child(p, &parent)?;
            out.push(own(&pt, p.rep()));
            Ok(())
        },
    );
    udp.func_new("[method]outgoing-datagram-stream.check-send", |mut cx, args, out| {
        let s = get_mut::<T, OutgoingStream>(&mut cx, &args[0])?;
        s.permit = if socket_ready(&s.sock, true) { SEND_PERMIT } else { 0 };
        out.push(ok(Some(Val::U64(s.permit))));
        Ok(())
    });
    udp.func_new("[method]outgoing-datagram-stream.send", |mut cx, args, out| {
        let Val::List(datagrams) = &args[1] else {
            bail!("expected a list of datagrams")
        };
        let policy = cx.data_mut().wasi().network.clone();
        let s = get_mut::<T, OutgoingStream>(&mut cx, &args[0])?;
        if datagrams.len() as u64 > s.permit {
            bail!(
                "outgoing-datagram-stream.send: {} datagrams exceed the {} that check-send permitted",
                datagrams.len(),
                s.permit
            );
        }
        s.permit -= datagrams.len() as u64;
        let mut sent = 0u64;
        let mut failure = None;
        for d in datagrams {
            let Val::Record(fields) = d else {
                bail!("expected an outgoing-datagram")
            };
            let field = |n: &str| {
                fields
                    .iter()
                    .find(|(k, _)| k == n)
                    .map(|(_, v)| v)
                    .ok_or_else(|| anyhow!("outgoing-datagram: missing `{n}`"))
            };
            let data = bytes_arg(field("data")?)?;
            let to = option_addr(field("remote-address")?)?;
            let r = match (to, s.remote) {
                (Some(a), Some(r)) if a != r => Err("invalid-argument"),
                (None, None) => Err("invalid-argument"),
                (Some(a), None) if !family_ok(s.v6, &a) || a.ip().is_unspecified() || a.port() == 0 => {
                    Err("invalid-argument")
                }
                (Some(a), None) if !policy.permits(a.ip()) => Err("access-denied"),
                _ if data.len() > MAX_DATAGRAM => Err("datagram-too-large"),
                (Some(a), None) => s.sock.get_ref().send_to(&data, &a.into()).map_err(|e| io_code(&e)),
                (_, Some(_)) => s.sock.get_ref().send(&data).map_err(|e| io_code(&e)),
            };
            match r {
                Ok(_) => sent += 1,
                Err(c) => {
                    failure = Some(c);
                    break;
                }
            }
        }
        out.push(match failure {
            // A full send buffer after some datagrams went: report those.
            Some(c) if sent == 0 => code(c),
            _ => ok(Some(Val::U64(sent))),
        });
        Ok(())
    });
    let pt = types.pollable.clone();
    udp.func_new(
        "[method]outgoing-datagram-stream.subscribe",
        move |mut cx, args, out| {
            let sock = get::<T, OutgoingStream>(&mut cx, &args[0])?.sock.clone();
            let parent = Resource::<OutgoingStream>::new(rep(&args[0])?);
            let p = SocketReady::pollable(sock, true);
            let p = cx.data_mut().wasi().table.push_child(p, &parent)?;
            out.push(own(&pt, p.rep()));
            Ok(())
        },
    );
}
