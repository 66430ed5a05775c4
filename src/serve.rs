//! Serving HTTP: `wippy-wasm serve`.
//!
//! A [`Server`] accepts HTTP/1.1 connections (hyper) on a few executor
//! threads and hands each request to a [`Handler`]: a component exporting
//! `wasi:http/incoming-handler` ([`ProxyHandler`], the `wasi:http/proxy`
//! world, as `wasmtime serve`), or registry endpoints
//! ([`crate::registry::http`]). Requests run concurrently on pooled
//! instances; request and response bodies stream through pipes.

use crate::pool::{Pool, PoolKind};
use crate::wasi::http::pipe::{pump, Pipe, PipeBody};
use crate::wasi::http::rt::{self, Io};
use crate::wasi::http::types::{IncomingRequest, Response, ResponseOutparam, Slot};
use crate::wasi::{WasiCtx, WasiView};
use crate::{Component, Engine, Func, InstancePre, Linker, Store, Val};
use anyhow::{anyhow, Context, Result};
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

/// The executor that runs connections and guest calls.
pub type Executor = &'static async_executor::Executor<'static>;

/// Turns a request into a response.
pub trait Handler: Send + Sync + 'static {
    fn handle(
        self: Arc<Self>,
        ex: Executor,
        req: http::Request<hyper::body::Incoming>,
    ) -> Pin<Box<dyn Future<Output = http::Response<PipeBody>> + Send>>;
}

/// Fuel per time slice of a guest call, as in the registry.
const FUEL_SLICE: u64 = 100_000;
/// The largest request head (request line and headers) accepted; beyond it
/// hyper answers 431.
pub const MAX_HEAD_BYTES: usize = 64 << 10;

/// How long a connection may keep the server waiting, as nginx's
/// `client_header_timeout` and `client_body_timeout`: a request head must
/// arrive within `header` of the connection going quiet, and a request
/// body's bytes no further apart than `body`. A client that stalls gets its
/// connection closed, and the guest reading its body an error, so no
/// instance is held hostage by a client that sends nothing.
#[derive(Clone, Copy, Debug)]
pub struct Timeouts {
    pub header: std::time::Duration,
    pub body: std::time::Duration,
}

impl Default for Timeouts {
    /// 10 s each.
    fn default() -> Self {
        Timeouts {
            header: std::time::Duration::from_secs(10),
            body: std::time::Duration::from_secs(10),
        }
    }
}

/// The body timeout of the server a request came through (a request
/// extension).
#[derive(Clone, Copy, Debug)]
pub struct BodyTimeout(pub std::time::Duration);

/// A plain-text response (errors).
pub fn text_response(status: u16, text: impl Into<String>) -> http::Response<PipeBody> {
    whole_response(status, text.into() + "\n", "text/plain; charset=utf-8")
}

/// A response with a whole body of type `content_type`.
pub fn whole_response(
    status: u16,
    body: impl Into<bytes::Bytes>,
    content_type: &'static str,
) -> http::Response<PipeBody> {
    let mut r = http::Response::new(PipeBody::new(Pipe::full(body.into())));
    *r.status_mut() = http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut()
        .insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static(content_type));
    r
}

/// A response from a guest's parts.
pub fn response_of(r: Response) -> http::Response<PipeBody> {
    let mut out = http::Response::new(PipeBody::new(r.body));
    *out.status_mut() = http::StatusCode::from_u16(r.status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    *out.headers_mut() = r.headers;
    out
}

/// A hyper request as a guest's `incoming-request`; its body streams in,
/// pumped on `ex` (where its connection runs).
pub fn incoming_request(ex: Executor, req: http::Request<hyper::body::Incoming>) -> IncomingRequest {
    let (parts, body) = req.into_parts();
    let pipe = Pipe::new(None);
    let between_bytes = parts.extensions.get::<BodyTimeout>().map(|t| t.0);
    ex.spawn(pump(body, pipe.clone(), between_bytes)).detach();
    let authority = parts.uri.authority().map(|a| a.to_string()).or_else(|| {
        parts
            .headers
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .map(String::from)
    });
    IncomingRequest(crate::wasi::http::types::Request {
        method: parts.method,
        scheme: Some(parts.uri.scheme().cloned().unwrap_or(http::uri::Scheme::HTTP)),
        authority,
        path_with_query: Some(parts.uri.path_and_query().map_or("/".into(), |p| p.to_string())),
        headers: parts.headers,
        body: Some(pipe),
    })
}

/// The resource types a host needs to call `incoming-handler.handle`.
#[derive(Clone)]
pub struct HandlerTypes {
    incoming_request: crate::values::ResourceType,
    response_outparam: crate::values::ResourceType,
}

impl HandlerTypes {
    /// The types `linker` defined for `wasi:http/types`.
    pub fn of<T: 'static>(linker: &Linker<T>) -> Result<Self> {
        let ty = |name: &str| {
            linker
                .lookup_instance(&crate::wasi::iface("wasi:http/types"))
                .and_then(|i| i.resources.get(name).cloned())
                .ok_or_else(|| anyhow!("the linker defines no wasi:http/types {name}"))
        };
        Ok(HandlerTypes {
            incoming_request: ty("incoming-request")?,
            response_outparam: ty("response-outparam")?,
        })
    }

    /// Calls `handle` (`wasi:http/incoming-handler#handle`) in `store` with
    /// the request; the response goes to `slot`.
    pub async fn call<T: WasiView>(
        &self,
        store: &mut Store<T>,
        handle: &Func,
        req: IncomingRequest,
        slot: Arc<Slot<Result<Response, Val>>>,
    ) -> Result<()> {
        let body: Arc<std::sync::Mutex<Option<Arc<Pipe>>>> = Arc::default();
        let request_body = req.0.body.clone();
        let table = store.data_mut().wasi().table();
        let req = table.push(req)?.rep();
        let param = table.push(ResponseOutparam {
            slot,
            body: body.clone(),
        })?;
        let args = [
            crate::wasi::own(&self.incoming_request, req),
            crate::wasi::own(&self.response_outparam, param.rep()),
        ];
        let r = handle.call_async(store, &args).await.map(drop);
        // Nothing reads the request body after the call, even if a pooled
        // instance kept hold of it: its pump stops and lets the connection go.
        if let Some(pipe) = request_body {
            pipe.close_reader();
        }
        // The guest cannot run again for this request: a body it left
        // unfinished (still held, not dropped) ends here, as an error.
        if let Some(pipe) = body.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let msg = "the component returned without finishing the response body";
            let _ = pipe.finish(crate::wasi::http::pipe::End::Failed(
                crate::wasi::http::HttpError::internal(msg),
            ));
        }
        r
    }
}

/// Sets a signal when dropped, unless disarmed.
struct SetOnDrop(Option<Arc<crate::dispatch::Signal>>);

impl Drop for SetOnDrop {
    fn drop(&mut self) {
        if let Some(s) = self.0.take() {
            s.set();
        }
    }
}

/// Runs a guest's `handle` call (`call`) on `ex` and answers with the
/// response it sets in `slot` — while the call goes on streaming the body.
/// A failed call, or one that never sets a response, gives a 500 naming
/// `what` failed. If the client goes away first (hyper drops this future,
/// or the response body unfinished), the call is cancelled at its next fuel
/// slice or wait, and its instance discarded.
pub async fn proxy_response(
    ex: Executor,
    what: String,
    slot: Arc<Slot<Result<Response, Val>>>,
    call: impl Future<Output = Result<()>> + Send + 'static,
) -> http::Response<PipeBody> {
    let s = slot.clone();
    let gone: Arc<crate::dispatch::Signal> = Arc::default();
    let mut guard = SetOnDrop(Some(gone.clone()));
    let g = gone.clone();
    ex.spawn(async move {
        let cancelled = async {
            g.wait().await;
            Err(anyhow!("the client went away; the call was cancelled"))
        };
        let msg = match futures_lite::future::or(call, cancelled).await {
            Ok(()) => format!("{what} returned without setting a response"),
            Err(e) => {
                let msg = format!("{what}: {e:#}");
                eprintln!("error: {msg}");
                msg
            }
        };
        s.set(Err(Val::Variant(
            "internal-error".into(),
            Some(Box::new(Val::Option(Some(Box::new(Val::String(msg)))))),
        )));
    })
    .detach();
    let response = slot.wait().await;
    guard.0 = None;
    match response {
        Some(Ok(r)) => response_of(r).map(|body| body.on_abandon(gone)),
        Some(Err(code)) => text_response(500, format!("the component failed: {code}")),
        None => text_response(500, "no response"),
    }
}

/// What every served instance gets.
#[derive(Clone, Default)]
pub struct InstanceConfig {
    pub env: Vec<(String, String)>,
    pub dirs: Vec<crate::wasi::DirMount>,
    pub network: crate::wasi::sockets::NetworkPolicy,
    /// Largest number of instances at once (default 64).
    pub max_instances: Option<usize>,
    /// A request's guest call that runs longer is stopped (its instance
    /// discarded): a 500 if no response started, else a cut body.
    pub max_execution: Option<std::time::Duration>,
    /// Every request gets an instance as fresh, as `wasmtime serve` does:
    /// no state survives between requests. An instance whose store can be
    /// reset to its snapshot after instantiation (`Store::reset`) is reused
    /// that way; otherwise (its memory grew, it kept a handle) a new one is
    /// made.
    pub fresh_instances: bool,
}

/// A warm instance of a proxy component.
struct Warm {
    store: Store<WasiCtx>,
    handle: Func,
    /// Its state after instantiation, to reset it to between requests
    /// (with `fresh_instances`; `None` if it cannot be reset).
    snapshot: Option<crate::Snapshot>,
}

/// Serves a component exporting `wasi:http/incoming-handler`.
pub struct ProxyHandler {
    name: String,
    engine: Engine,
    /// The component with its imports resolved once.
    pre: InstancePre<WasiCtx>,
    config: InstanceConfig,
    pool: Pool<Warm>,
    /// The first instance's snapshot, whose memory images later instances
    /// holding the same share (`fresh_instances`).
    template: std::sync::OnceLock<crate::Snapshot>,
    types: HandlerTypes,
}

impl ProxyHandler {
    pub fn new(name: &str, engine: &Engine, component: Component, config: InstanceConfig) -> Result<Self> {
        if !component.exports_interface("wasi:http/incoming-handler") {
            anyhow::bail!("{name} does not export `wasi:http/incoming-handler`: it is not an HTTP proxy component");
        }
        let mut linker = Linker::default();
        crate::wasi::add_to_linker(&mut linker)?;
        let types = HandlerTypes::of(&linker)?;
        let pre = linker
            .instantiate_pre(&component)
            .with_context(|| format!("linking {name}"))?;
        let pool = Pool::new(PoolKind::Lazy {
            max: config.max_instances.unwrap_or(64),
        });
        let handler = ProxyHandler {
            name: name.into(),
            engine: engine.clone(),
            pre,
            config,
            pool,
            template: std::sync::OnceLock::new(),
            types,
        };
        // Fail now, not on the first request, if it cannot be instantiated.
        let deadline = handler.config.max_execution.map(|d| std::time::Instant::now() + d);
        let warm = crate::dispatch::block_on(handler.instantiate(deadline))?;
        if let Some(snapshot) = &warm.snapshot {
            handler.pool.rotate(crate::pool::spares_for(snapshot.image_bytes()));
        }
        handler.pool.put_back(warm);
        Ok(handler)
    }

    /// Loads a component file, on an engine with fuel metering (fuel
    /// slices keep one busy request from starving the others).
    pub fn load(path: &std::path::Path, config: InstanceConfig) -> Result<Self> {
        let mut engine_config = crate::Config::default();
        engine_config.consume_fuel(true);
        let engine = Engine::new(&engine_config);
        let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        let component = Component::new(&engine, &bytes).with_context(|| format!("cannot load {}", path.display()))?;
        let name = path
            .file_name()
            .map_or("component".into(), |n| n.to_string_lossy().into_owned());
        ProxyHandler::new(&name, &engine, component, config)
    }

    /// Instance counts of the pool.
    pub fn pool_stats(&self) -> crate::pool::PoolStats {
        self.pool.stats()
    }

    /// Guest calls running now (a call ends after its response body).
    pub fn busy(&self) -> usize {
        self.pool.busy()
    }

    /// A new instance for a request ending by `deadline` (start functions
    /// are sliced and stop there).
    async fn instantiate(&self, deadline: Option<std::time::Instant>) -> Result<Warm> {
        let mut store = Store::new(&self.engine, self.context()?);
        store.set_fuel_slice(Some(FUEL_SLICE));
        store.set_deadline(deadline);
        let instance = self
            .pre
            .instantiate_async(&mut store)
            .await
            .with_context(|| format!("instantiating {}", self.name))?;
        let handle = instance
            .get_func(&store, "wasi:http/incoming-handler#handle")
            .ok_or_else(|| anyhow!("{} exports no `wasi:http/incoming-handler#handle`", self.name))?;
        let snapshot = store.settle(self.config.fresh_instances, &self.template);
        Ok(Warm {
            store,
            handle,
            snapshot,
        })
    }

    /// The host state of a new instance.
    fn context(&self) -> Result<WasiCtx> {
        let mut ctx = WasiCtx::new()
            .stdout(crate::wasi::Sink::Inherit)
            .stderr(crate::wasi::Sink::Inherit)
            .network(self.config.network.clone());
        for (k, v) in &self.config.env {
            ctx = ctx.env(k, v);
        }
        for d in &self.config.dirs {
            ctx = ctx.preopen_dir(&d.host, &d.guest, d.read_only)?;
        }
        Ok(ctx)
    }

    /// After a request: a pooled instance goes back as it is if the call
    /// returned; with `fresh_instances` it goes back, however the call
    /// ended (a trap, a client gone), only if it could be reset to its
    /// state after instantiation, host state renewed.
    fn recycle(&self, w: &mut Warm, ended: crate::pool::Ended) -> bool {
        if !self.config.fresh_instances {
            return ended == crate::pool::Ended::Returned;
        }
        let Some(snapshot) = &w.snapshot else { return false };
        if !w.store.reset(snapshot) {
            return false;
        }
        match self.context() {
            Ok(ctx) => {
                *w.store.data_mut() = ctx;
                true
            }
            Err(_) => false,
        }
    }

    /// Calls the guest's `handle` with the request on a pooled instance.
    async fn call(&self, req: IncomingRequest, slot: Arc<Slot<Result<Response, Val>>>) -> Result<()> {
        let deadline = self.config.max_execution.map(|d| std::time::Instant::now() + d);
        self.pool
            .with(
                &self.name,
                false,
                async || self.instantiate(deadline).await,
                async |w: &mut Warm| {
                    w.store.set_deadline(deadline);
                    self.types.call(&mut w.store, &w.handle, req, slot).await
                },
                |w, ended| self.recycle(w, ended),
            )
            .await
    }
}

impl Handler for ProxyHandler {
    fn handle(
        self: Arc<Self>,
        ex: Executor,
        req: http::Request<hyper::body::Incoming>,
    ) -> Pin<Box<dyn Future<Output = http::Response<PipeBody>> + Send>> {
        let slot: Arc<Slot<Result<Response, Val>>> = Arc::default();
        let incoming = incoming_request(ex, req);
        let what = format!("{}: wasi:http/incoming-handler#handle", self.name);
        let s = slot.clone();
        let call = async move { self.call(incoming, s).await };
        Box::pin(proxy_response(ex, what, slot, call))
    }
}

/// A listening server.
pub struct Server {
    listener: async_io::Async<std::net::TcpListener>,
    ex: Executor,
    timeouts: Timeouts,
}

impl Server {
    /// Binds `addr` (port 0 picks a free port).
    pub fn bind(addr: SocketAddr) -> Result<Self> {
        let listener =
            async_io::Async::<std::net::TcpListener>::bind(addr).with_context(|| format!("cannot listen on {addr}"))?;
        let ex: Executor = Box::leak(Box::default());
        Ok(Server {
            listener,
            ex,
            timeouts: Timeouts::default(),
        })
    }

    /// Replaces the default [`Timeouts`].
    pub fn with_timeouts(mut self, timeouts: Timeouts) -> Self {
        self.timeouts = timeouts;
        self
    }

    pub fn local_addr(&self) -> Result<SocketAddr> {
        Ok(self.listener.get_ref().local_addr()?)
    }

    /// Serves until `stop` completes, on `threads` executor threads; then
    /// stops accepting, closes idle connections and gives requests in
    /// flight `grace` to finish.
    pub fn run(
        self,
        handler: Arc<dyn Handler>,
        threads: usize,
        stop: impl Future<Output = ()>,
        grace: std::time::Duration,
    ) -> Result<()> {
        let ex = self.ex;
        let timeouts = self.timeouts;
        let active = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        // Set when the server stops: connections finish gracefully.
        let stopping: Arc<crate::dispatch::Signal> = Arc::default();
        // Set when the worker threads may end.
        let done: Arc<crate::dispatch::Signal> = Arc::default();
        for i in 0..threads.max(1).saturating_sub(1) {
            let done = done.clone();
            std::thread::Builder::new()
                .name(format!("wippy-serve-{i}"))
                .spawn(move || async_io::block_on(ex.run(done.wait())))?;
        }
        let accept = async {
            loop {
                let (stream, _) = match self.listener.accept().await {
                    Ok(c) => c,
                    // Out of descriptors and the like: wait a moment.
                    Err(_) => {
                        async_io::Timer::after(std::time::Duration::from_millis(10)).await;
                        continue;
                    }
                };
                let _ = stream.get_ref().set_nodelay(true);
                let handler = handler.clone();
                let active = active.clone();
                let stopping = stopping.clone();
                ex.spawn(async move {
                    active.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let service = hyper::service::service_fn(move |mut req: http::Request<hyper::body::Incoming>| {
                        let h = handler.clone();
                        req.extensions_mut().insert(BodyTimeout(timeouts.body));
                        async move {
                            // hyper bounds its read buffer, not the head a
                            // single read may bring whole: check it here.
                            if head_size(&req) > MAX_HEAD_BYTES {
                                return Ok::<_, std::convert::Infallible>(text_response(
                                    431,
                                    "request header fields too large",
                                ));
                            }
                            Ok(h.handle(ex, req).await)
                        }
                    });
                    let conn = hyper::server::conn::http1::Builder::new()
                        .timer(rt::Timer)
                        .header_read_timeout(timeouts.header)
                        .max_buf_size(MAX_HEAD_BYTES)
                        .serve_connection(Io(stream), service);
                    let mut conn = std::pin::pin!(conn);
                    let ended = futures_lite::future::or(
                        async {
                            let _ = conn.as_mut().await;
                            true
                        },
                        async {
                            stopping.wait().await;
                            false
                        },
                    )
                    .await;
                    if !ended {
                        // Finish the request in flight, if any, then close.
                        conn.as_mut().graceful_shutdown();
                        let _ = conn.await;
                    }
                    active.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
                })
                .detach();
            }
        };
        async_io::block_on(ex.run(futures_lite::future::or(accept, stop)));
        drop(self.listener);
        stopping.set();
        let deadline = std::time::Instant::now() + grace;
        async_io::block_on(ex.run(async {
            while active.load(std::sync::atomic::Ordering::SeqCst) > 0 && std::time::Instant::now() < deadline {
                async_io::Timer::after(std::time::Duration::from_millis(20)).await;
            }
        }));
        done.set();
        Ok(())
    }
}

/// The bytes of a request's head: its target and header lines.
fn head_size<B>(req: &http::Request<B>) -> usize {
    let target = req.uri().path_and_query().map_or(1, |p| p.as_str().len());
    let headers: usize = req.headers().iter().map(|(k, v)| k.as_str().len() + v.len() + 4).sum();
    target + headers
}

/// Completes when the process gets SIGINT or SIGTERM.
pub fn shutdown_signal() -> Result<impl Future<Output = ()>> {
    use std::os::fd::IntoRawFd;
    static WRITE_FD: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(-1);
    extern "C" fn on_signal(_: libc::c_int) {
        let fd = WRITE_FD.load(std::sync::atomic::Ordering::SeqCst);
        // SAFETY: write(2) is async-signal-safe; one byte from a static.
        unsafe { libc::write(fd, b"x".as_ptr().cast(), 1) };
    }
    let (read, write) = std::os::unix::net::UnixStream::pair()?;
    WRITE_FD.store(write.into_raw_fd(), std::sync::atomic::Ordering::SeqCst);
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: installs a handler that only calls write(2).
        unsafe { libc::signal(sig, on_signal as *const () as libc::sighandler_t) };
    }
    let read = async_io::Async::new(read)?;
    Ok(async move {
        let _ = read.readable().await;
    })
}

/// Serves `component` (a file) at `addr` until SIGINT, printing the address.
pub fn serve_component(
    path: &std::path::Path,
    addr: SocketAddr,
    config: InstanceConfig,
    timeouts: Timeouts,
) -> Result<()> {
    serve(Arc::new(ProxyHandler::load(path, config)?), addr, timeouts)
}

/// Runs `handler` at `addr` until SIGINT or SIGTERM.
pub fn serve(handler: Arc<dyn Handler>, addr: SocketAddr, timeouts: Timeouts) -> Result<()> {
    let server = Server::bind(addr)?.with_timeouts(timeouts);
    let stop = shutdown_signal()?;
    println!("Serving HTTP on http://{}/", server.local_addr()?);
    use std::io::Write;
    let _ = std::io::stdout().flush();
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    server.run(handler, threads, stop, std::time::Duration::from_secs(5))?;
    eprintln!("stopped");
    Ok(())
}
