//! `wasi:sockets`: `network`, `instance-network` and `ip-name-lookup` here,
//! TCP in [`tcp`], UDP in [`udp`], all under a per-instance [`NetworkPolicy`].

mod streams;
pub mod tcp;
pub mod udp;

pub(crate) use streams::{socket_ready, Socket, SocketReady};

use super::io::{IoError, Pollable, Signal};
use super::{err, get, get_mut, iface, ok, own, table_resource, Types, WasiView};
use crate::host::table::Resource;
use crate::values::Val;
use crate::Linker;
use anyhow::{anyhow, bail, Result};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6, ToSocketAddrs};
use std::sync::{Arc, Mutex};

/// Which addresses a guest may use. The default denies all networking: a
/// sandboxed guest gets a network only when the embedder grants one.
#[derive(Clone, Debug, Default)]
pub struct NetworkPolicy {
    /// Sockets may be created and used at all.
    pub enabled: bool,
    /// `ip-name-lookup` may resolve names.
    pub name_lookup: bool,
    /// If not empty, only addresses in these ranges (address, prefix length).
    pub allow: Vec<(IpAddr, u8)>,
    /// Addresses in these ranges are refused.
    pub deny: Vec<(IpAddr, u8)>,
    /// Loopback addresses (127.0.0.0/8, ::1) are refused.
    pub deny_loopback: bool,
    /// Private ranges (10/8, 172.16/12, 192.168/16, fc00::/7, link-local) are refused.
    pub deny_private: bool,
    /// At most this many sockets open at once (`new-socket-limit` beyond).
    pub max_sockets: Option<u64>,
    /// A connect, or a blocking read or write on a socket stream, that makes
    /// no progress for this long fails (`timeout`, or a closed stream).
    pub timeout: Option<std::time::Duration>,
    /// `wasi:http/outgoing-handler` may send requests (to addresses the
    /// lists above permit).
    pub http: bool,
}

/// One open socket counted against [`NetworkPolicy::max_sockets`]; the
/// count drops with it.
pub struct SocketSlot(Arc<std::sync::atomic::AtomicU64>);

impl SocketSlot {
    /// Takes a slot for a new socket, or the WIT error code that refuses it.
    pub(crate) fn take(ctx: &crate::wasi::WasiCtx) -> std::result::Result<Self, &'static str> {
        use std::sync::atomic::Ordering;
        if !ctx.network.enabled {
            return Err("access-denied");
        }
        let open = &ctx.open_sockets;
        let limit = ctx.network.max_sockets.unwrap_or(u64::MAX);
        open.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| (n < limit).then_some(n + 1))
            .map_err(|_| "new-socket-limit")?;
        Ok(SocketSlot(open.clone()))
    }
}

impl Drop for SocketSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

impl NetworkPolicy {
    /// Everything allowed, like wasmtime's `-S inherit-network`.
    pub fn inherit() -> Self {
        NetworkPolicy {
            enabled: true,
            name_lookup: true,
            http: true,
            ..Default::default()
        }
    }

    /// Whether the guest may bind, connect or send to `ip`.
    pub fn permits(&self, ip: IpAddr) -> bool {
        self.enabled && self.address_ok(ip)
    }

    /// Whether an outgoing HTTP request may go to `ip`.
    pub fn permits_http(&self, ip: IpAddr) -> bool {
        self.http && self.address_ok(ip)
    }

    fn address_ok(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        !self.deny.iter().any(|(net, len)| in_range(ip, *net, *len))
            && (self.allow.is_empty() || self.allow.iter().any(|(net, len)| in_range(ip, *net, *len)))
            && !(self.deny_loopback && ip.is_loopback())
            && !(self.deny_private && is_private(ip))
    }
}

/// Parses `ADDR[/LEN]` (an address alone is a single host).
pub fn parse_range(s: &str) -> Result<(IpAddr, u8)> {
    let (addr, len) = s.split_once('/').map_or((s, None), |(a, l)| (a, Some(l)));
    let ip: IpAddr = addr
        .parse()
        .map_err(|_| anyhow!("`{s}` is not an IP address or CIDR range"))?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let len = match len {
        Some(l) => l
            .parse::<u8>()
            .ok()
            .filter(|l| *l <= max)
            .ok_or_else(|| anyhow!("`{s}`: bad prefix length"))?,
        None => max,
    };
    Ok((ip, len))
}

/// IPv4-mapped IPv6 addresses are treated as the IPv4 address they carry.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

fn in_range(ip: IpAddr, net: IpAddr, len: u8) -> bool {
    match (ip, canonical(net)) {
        (IpAddr::V4(a), IpAddr::V4(b)) => {
            let mask = if len == 0 { 0 } else { u32::MAX << (32 - len as u32) };
            u32::from(a) & mask == u32::from(b) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(b)) => {
            let mask = if len == 0 { 0 } else { u128::MAX << (128 - len as u32) };
            u128::from(a) & mask == u128::from(b) & mask
        }
        _ => false,
    }
}

fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_private() || v4.is_link_local(),
        IpAddr::V6(v6) => (v6.segments()[0] & 0xfe00) == 0xfc00 || (v6.segments()[0] & 0xffc0) == 0xfe80,
    }
}

/// `wasi:sockets/network.network`: the capability to use the policy.
pub struct Network;

/// A finished lookup: the addresses, or the WIT error code.
type Lookup = std::result::Result<Vec<IpAddr>, &'static str>;

/// `wasi:sockets/ip-name-lookup.resolve-address-stream`: filled in by a
/// lookup running off the executor, then read address by address.
pub struct ResolveStream {
    result: Arc<Mutex<Option<Lookup>>>,
    done: Arc<Signal>,
    next: usize,
}

/// The WIT value of an IP address.
pub fn ip_val(ip: IpAddr) -> Val {
    match ip {
        IpAddr::V4(v4) => Val::Variant(
            "ipv4".into(),
            Some(Box::new(Val::Tuple(v4.octets().map(Val::U8).to_vec()))),
        ),
        IpAddr::V6(v6) => Val::Variant(
            "ipv6".into(),
            Some(Box::new(Val::Tuple(v6.segments().map(Val::U16).to_vec()))),
        ),
    }
}

/// Reads an `ip-socket-address` value.
pub(crate) fn socket_addr_arg(v: &Val) -> Result<SocketAddr> {
    let field = |fields: &[(String, Val)], name: &str| -> Result<Val> {
        fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .ok_or_else(|| anyhow!("ip-socket-address: missing `{name}`"))
    };
    let (case, Some(payload)) = (match v {
        Val::Variant(case, payload) => (case.as_str(), payload.as_deref()),
        _ => bail!("expected an ip-socket-address"),
    }) else {
        bail!("ip-socket-address without a payload")
    };
    let Val::Record(fields) = payload else {
        bail!("expected an ip-socket-address record")
    };
    let Val::U16(port) = field(fields, "port")? else {
        bail!("ip-socket-address: bad port")
    };
    let Val::Tuple(parts) = field(fields, "address")? else {
        bail!("ip-socket-address: bad address")
    };
    Ok(match case {
        "ipv4" => {
            let b: Vec<u8> = parts
                .iter()
                .map(|p| match p {
                    Val::U8(b) => Ok(*b),
                    _ => Err(anyhow!("ipv4 address: expected u8")),
                })
                .collect::<Result<_>>()?;
            let b: [u8; 4] = b.try_into().map_err(|_| anyhow!("ipv4 address: expected 4 parts"))?;
            SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::from(b), port))
        }
        "ipv6" => {
            let s: Vec<u16> = parts
                .iter()
                .map(|p| match p {
                    Val::U16(s) => Ok(*s),
                    _ => Err(anyhow!("ipv6 address: expected u16")),
                })
                .collect::<Result<_>>()?;
            let s: [u16; 8] = s.try_into().map_err(|_| anyhow!("ipv6 address: expected 8 parts"))?;
            let (Val::U32(flow), Val::U32(scope)) = (field(fields, "flow-info")?, field(fields, "scope-id")?) else {
                bail!("ipv6 socket address: bad flow-info or scope-id")
            };
            SocketAddr::V6(SocketAddrV6::new(Ipv6Addr::from(s), port, flow, scope))
        }
        other => bail!("unknown ip-socket-address case `{other}`"),
    })
}

/// The WIT value of a socket address.
pub(crate) fn socket_addr_val(a: SocketAddr) -> Val {
    let (case, mut fields) = match a {
        SocketAddr::V4(_) => ("ipv4", vec![("port".to_string(), Val::U16(a.port()))]),
        SocketAddr::V6(_) => ("ipv6", vec![("port".to_string(), Val::U16(a.port()))]),
    };
    let Val::Variant(_, Some(ip)) = ip_val(a.ip()) else {
        unreachable!()
    };
    match a {
        SocketAddr::V4(_) => fields.push(("address".into(), *ip)),
        SocketAddr::V6(v6) => {
            fields.push(("flow-info".into(), Val::U32(v6.flowinfo())));
            fields.push(("address".into(), *ip));
            fields.push(("scope-id".into(), Val::U32(v6.scope_id())));
        }
    }
    Val::Variant(case.into(), Some(Box::new(Val::Record(fields))))
}

/// A WIT `error-code` name.
pub(crate) type Code = &'static str;

/// `Ok(v)` or the error code, as a `result` value.
pub(crate) fn code_result(r: std::result::Result<Option<Val>, Code>) -> Val {
    match r {
        Ok(v) => ok(v),
        Err(c) => code(c),
    }
}

/// An OS call's outcome with its error as a WIT code.
pub(crate) fn os<R>(r: std::io::Result<R>) -> std::result::Result<R, Code> {
    r.map_err(|e| io_code(&e))
}

/// The socket address an OS call reported.
pub(crate) fn os_addr(a: std::io::Result<socket2::SockAddr>) -> std::result::Result<SocketAddr, Code> {
    os(a)?.as_socket().ok_or("unknown")
}

/// Whether a guest address fits a socket: the family must match, and
/// IPv4-mapped IPv6 addresses are not accepted.
pub(crate) fn family_ok(v6: bool, a: &SocketAddr) -> bool {
    match a {
        SocketAddr::V4(_) => !v6,
        SocketAddr::V6(a) => v6 && a.ip().to_ipv4_mapped().is_none(),
    }
}

/// An `ip-address-family` argument: whether it is IPv6.
fn family_arg(v: &Val) -> Result<bool> {
    match v {
        Val::Enum(f) => Ok(f == "ipv6"),
        _ => bail!("expected an ip-address-family"),
    }
}

/// A new non-blocking socket of `ty` registered with the reactor; IPv6
/// sockets are IPv6-only, as WASI requires.
pub(crate) fn open_socket(v6: bool, ty: socket2::Type, proto: socket2::Protocol) -> std::io::Result<Socket> {
    let domain = if v6 {
        socket2::Domain::IPV6
    } else {
        socket2::Domain::IPV4
    };
    let s = socket2::Socket::new(domain, ty, Some(proto))?;
    if v6 {
        s.set_only_v6(true)?;
    }
    Ok(Arc::new(async_io::Async::new(s)?))
}

/// The unicast hop limit (TTL) of a socket.
pub(crate) fn hop_limit(s: &socket2::Socket, v6: bool) -> std::result::Result<Option<Val>, Code> {
    let hops = os(if v6 { s.unicast_hops_v6() } else { s.ttl_v4() })?;
    Ok(Some(Val::U8(hops.min(255) as u8)))
}

/// Sets the unicast hop limit; 0 is `invalid-argument`.
pub(crate) fn set_hop_limit(s: &socket2::Socket, v6: bool, n: u8) -> std::result::Result<Option<Val>, Code> {
    if n == 0 {
        return Err("invalid-argument");
    }
    os(if v6 {
        s.set_unicast_hops_v6(n.into())
    } else {
        s.set_ttl_v4(n.into())
    })?;
    Ok(None)
}

/// The receive (or send) buffer size.
pub(crate) fn buffer_size(s: &socket2::Socket, recv: bool) -> std::result::Result<Option<Val>, Code> {
    let n = os(if recv {
        s.recv_buffer_size()
    } else {
        s.send_buffer_size()
    })?;
    Ok(Some(Val::U64(n as u64)))
}

/// Sets the receive (or send) buffer size; 0 is `invalid-argument`. The
/// kernel clamps (and doubles) the size, which the WIT allows.
pub(crate) fn set_buffer_size(s: &socket2::Socket, recv: bool, n: u64) -> std::result::Result<Option<Val>, Code> {
    if n == 0 {
        return Err("invalid-argument");
    }
    let n = n.min(i32::MAX as u64 / 2) as usize;
    os(if recv {
        s.set_recv_buffer_size(n)
    } else {
        s.set_send_buffer_size(n)
    })?;
    Ok(None)
}

/// Defines `ns:pkg/iface.func(address-family) -> result<own<socket>, error-code>`:
/// takes a slot under the policy's socket limit, opens the socket with
/// `open`, and hands the guest its handle.
pub(crate) fn define_create<T: WasiView, S: Send + 'static>(
    linker: &mut Linker<T>,
    interface: &str,
    func: &str,
    ty: crate::values::ResourceType,
    open: impl Fn(bool, SocketSlot) -> std::io::Result<S> + Send + Sync + 'static,
) {
    linker
        .instance(&iface(interface))
        .func_new(func, move |mut cx, args, out| {
            let v6 = family_arg(&args[0])?;
            let ctx = cx.data_mut().wasi();
            let made = SocketSlot::take(ctx).and_then(|slot| os(open(v6, slot)));
            out.push(match made {
                Ok(s) => ok(Some(own(&ty, ctx.table.push(s)?.rep()))),
                Err(c) => code(c),
            });
            Ok(())
        });
}

/// A socket stream's `network-error-code`, carried by its `wasi:io` errors.
pub struct NetworkCode(pub &'static str);

/// The WIT error code for an OS socket error.
pub(crate) fn io_code(e: &std::io::Error) -> &'static str {
    match e.raw_os_error() {
        Some(libc::EACCES | libc::EPERM) => "access-denied",
        Some(libc::EAFNOSUPPORT | libc::EOPNOTSUPP | libc::EPROTONOSUPPORT) => "not-supported",
        Some(libc::EINVAL) => "invalid-argument",
        Some(libc::ENOMEM | libc::ENOBUFS) => "out-of-memory",
        Some(libc::ETIMEDOUT) => "timeout",
        Some(libc::EALREADY) => "concurrency-conflict",
        Some(libc::EWOULDBLOCK) => "would-block",
        Some(libc::EISCONN | libc::ENOTCONN) => "invalid-state",
        Some(libc::EMFILE | libc::ENFILE) => "new-socket-limit",
        Some(libc::EADDRNOTAVAIL) => "address-not-bindable",
        Some(libc::EADDRINUSE) => "address-in-use",
        Some(libc::ENETUNREACH | libc::EHOSTUNREACH | libc::ENETDOWN | libc::EHOSTDOWN) => "remote-unreachable",
        Some(libc::ECONNREFUSED) => "connection-refused",
        Some(libc::ECONNRESET | libc::EPIPE) => "connection-reset",
        Some(libc::ECONNABORTED) => "connection-aborted",
        Some(libc::EMSGSIZE) => "datagram-too-large",
        // Our own timeouts (`socket_timeout_ms`) carry no OS error.
        _ if e.kind() == std::io::ErrorKind::TimedOut => "timeout",
        _ => "unknown",
    }
}

fn code(c: &str) -> Val {
    err(Val::Enum(c.into()))
}

/// Resolves `name`: IP literals directly, other names through the system
/// resolver (called on `blocking`'s thread pool, never on the executor).
fn resolve(name: &str) -> Lookup {
    if let Ok(ip) = name.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>() {
        return Ok(vec![ip]);
    }
    match (name, 0u16).to_socket_addrs() {
        Ok(addrs) => {
            let mut unique: Vec<IpAddr> = Vec::new();
            for ip in addrs.map(|a| a.ip()) {
                if !unique.contains(&ip) {
                    unique.push(ip);
                }
            }
            if unique.is_empty() {
                Err("name-unresolvable")
            } else {
                Ok(unique)
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Err("temporary-resolver-failure"),
        Err(_) => Err("name-unresolvable"),
    }
}

fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 253 && !name.contains(['\0', ' ', '/', '\\'])
}

pub(crate) fn add_to_linker<T: WasiView>(linker: &mut Linker<T>, types: &Types) {
    let net = linker.instance(&iface("wasi:sockets/network"));
    let network_ty = table_resource::<T, Network>(net, "network");
    net.func_new("network-error-code", |mut cx, args, out| {
        let code = get::<T, IoError>(&mut cx, &args[0])?.code::<NetworkCode>();
        let code = code.map(|c| Box::new(Val::Enum(c.0.to_string())));
        out.push(Val::Option(code));
        Ok(())
    });
    let nt = network_ty.clone();
    linker
        .instance(&iface("wasi:sockets/instance-network"))
        .func_new("instance-network", move |mut cx, _, out| {
            let r = cx.data_mut().wasi().table.push(Network)?;
            out.push(own(&nt, r.rep()));
            Ok(())
        });
    let lookup = linker.instance(&iface("wasi:sockets/ip-name-lookup"));
    let stream_ty = table_resource::<T, ResolveStream>(lookup, "resolve-address-stream");
    lookup.func_new("resolve-addresses", move |mut cx, args, out| {
        get::<T, Network>(&mut cx, &args[0])?;
        let Val::String(name) = &args[1] else {
            anyhow::bail!("expected a name")
        };
        let ctx = cx.data_mut().wasi();
        if !ctx.network.name_lookup {
            out.push(code("access-denied"));
            return Ok(());
        }
        if !valid_name(name) {
            out.push(code("invalid-argument"));
            return Ok(());
        }
        let stream = ResolveStream {
            result: Arc::default(),
            done: Arc::default(),
            next: 0,
        };
        let (result, done, name) = (stream.result.clone(), stream.done.clone(), name.clone());
        blocking::unblock(move || {
            *result.lock().unwrap_or_else(|e| e.into_inner()) = Some(resolve(&name));
            done.set();
        })
        .detach();
        let r = ctx.table.push(stream)?;
        out.push(ok(Some(own(&stream_ty, r.rep()))));
        Ok(())
    });
    lookup.func_new(
        "[method]resolve-address-stream.resolve-next-address",
        |mut cx, args, out| {
            let stream = get_mut::<T, ResolveStream>(&mut cx, &args[0])?;
            let result = stream.result.lock().unwrap_or_else(|e| e.into_inner()).clone();
            out.push(match result {
                None => code("would-block"),
                Some(Err(c)) => code(c),
                Some(Ok(ips)) => {
                    let ip = ips.get(stream.next).copied();
                    stream.next += 1;
                    ok(Some(Val::Option(ip.map(|ip| Box::new(ip_val(ip))))))
                }
            });
            Ok(())
        },
    );
    let pt = types.pollable.clone();
    lookup.func_new("[method]resolve-address-stream.subscribe", move |mut cx, args, out| {
        let done = get::<T, ResolveStream>(&mut cx, &args[0])?.done.clone();
        let parent = Resource::<ResolveStream>::new(super::rep(&args[0])?);
        let p = cx.data_mut().wasi().table.push_child(Pollable::signal(done), &parent)?;
        out.push(own(&pt, p.rep()));
        Ok(())
    });
    tcp::add_to_linker(linker, types);
    udp::add_to_linker(linker, types);
}
