"""The Python HTTP guest (componentize-py, `wasi:http/proxy` world).

Served, it answers:
  GET  /hello        "hello from python"
  POST /echo         the request body, streamed back chunk by chunk
  GET  /fetch        fetches the URL in the `x-url` header (outgoing handler)
                     and answers with what `fetch` reports
  GET  /leak         starts a body and returns without finishing it
  GET  /spin         never returns (the host's time limit must stop it)
  GET  /trap         fails (the host must answer 500 and go on serving)
  GET  /remember/X   keeps X in the interpreter's memory (and, for
                     `handle-…`, a `fields` resource holding it)
  GET  /recall       what was remembered, or "nothing" (a fresh instance)
  GET  /remember-then-trap/X   remembers X, then fails
  POST /remember-then-read/X   remembers X, then reads the body to its end
Exported `fetch` drives `wasi:http/outgoing-handler` for the tests.
"""

import wit_world
from wit_world import exports
from wit_world.imports import outgoing_handler, streams
from wit_world.imports.types import (
    Fields,
    IncomingBody,
    IncomingRequest,
    Method_Get,
    Method_Other,
    Method_Post,
    Method_Put,
    OutgoingBody,
    OutgoingRequest,
    OutgoingResponse,
    RequestOptions,
    ResponseOutparam,
    Scheme_Http,
    Scheme_Https,
)
from componentize_py_types import Err, Ok

CHUNK = 4096


def read_all(body: IncomingBody) -> bytes:
    """Reads an incoming body to its end, blocking (the host suspends us)."""
    out = bytearray()
    with body.stream() as stream:
        while True:
            try:
                out += stream.blocking_read(65536)
            except Err as e:
                if isinstance(e.value, streams.StreamError_Closed):
                    break
                raise
    return bytes(out)


def write_all(body: OutgoingBody, data: bytes, chunks: int = 1) -> None:
    """Writes `data` in `chunks` pieces, each flushed before the next."""
    with body.write() as stream:
        size = max(1, -(-len(data) // max(1, chunks)))
        for i in range(0, len(data), size):
            piece = data[i : i + size]
            for j in range(0, len(piece), CHUNK):
                stream.blocking_write_and_flush(piece[j : j + CHUNK])


def error_text(e) -> str:
    value = e.value if isinstance(e, Err) else e
    name = type(value).__name__.split("_", 1)[-1]
    inner = getattr(value, "value", None)
    return name if inner is None else f"{name}({inner})"


def method_of(name: str):
    return {"GET": Method_Get(), "POST": Method_Post(), "PUT": Method_Put()}.get(name, Method_Other(name))


class WitWorld(wit_world.WitWorld):
    def fetch(self, method, url, body, chunks, connect_ms, first_byte_ms, between_ms):
        scheme, rest = url.split("://", 1)
        authority, _, path = rest.partition("/")
        headers = [("user-agent", b"wippy-pyhttp")]
        if body is not None:
            headers.append(("content-type", b"application/octet-stream"))
        req = OutgoingRequest(Fields.from_list(headers))
        req.set_method(method_of(method))
        req.set_scheme(Scheme_Https() if scheme == "https" else Scheme_Http())
        req.set_authority(authority)
        req.set_path_with_query("/" + path)
        options = None
        if connect_ms is not None or first_byte_ms is not None or between_ms is not None:
            options = RequestOptions()
            ms = lambda v: None if v is None else v * 1_000_000
            options.set_connect_timeout(ms(connect_ms))
            options.set_first_byte_timeout(ms(first_byte_ms))
            options.set_between_bytes_timeout(ms(between_ms))
        out_body = req.body() if body is not None else None
        try:
            future = outgoing_handler.handle(req, options)
        except Err as e:
            raise Err(error_text(e))
        # The request is on its way: stream the body while it goes.
        if out_body is not None:
            write_all(out_body, body, chunks)
            OutgoingBody.finish(out_body, None)
        with future.subscribe() as ready:
            ready.block()
        result = future.get()
        if isinstance(result, Err) or isinstance(result.value, Err):
            raise Err(error_text(result.value))
        response = result.value.value
        lines = [str(response.status())]
        with response.headers() as h:
            for name, value in h.entries():
                if name in ("x-test", "content-type", "content-length"):
                    lines.append(f"{name}: {value.decode()}")
        incoming = response.consume()
        try:
            data = read_all(incoming)
        except Err as e:
            raise Err("body: " + error_text(streams_error(e)))
        trailers = IncomingBody.finish(incoming)
        with trailers.subscribe() as ready:
            ready.block()
        got = trailers.get()
        trailer_text = ""
        if isinstance(got, Ok) and isinstance(got.value, Ok) and got.value.value is not None:
            with got.value.value as t:
                trailer_text = ", ".join(f"{k}={v.decode()}" for k, v in t.entries())
        elif isinstance(got, Ok) and isinstance(got.value, Err):
            raise Err("trailers: " + error_text(got.value))
        response.__exit__(None, None, None)
        return "\n".join(lines) + "\n\n" + data.decode(errors="replace") + "\ntrailers: " + trailer_text


def streams_error(e):
    """A stream's last-operation-failed as its HTTP error code, if it has one."""
    from wit_world.imports import types

    if isinstance(e.value, streams.StreamError_LastOperationFailed):
        code = types.http_error_code(e.value.value)
        if code is not None:
            return code
    return e.value


def respond(out: ResponseOutparam, status: int, text: bytes, content_type: bytes = b"text/plain") -> None:
    response = OutgoingResponse(Fields.from_list([("content-type", content_type)]))
    response.set_status_code(status)
    body = response.body()
    ResponseOutparam.set(out, Ok(response))
    write_all(body, text)
    OutgoingBody.finish(body, None)


class IncomingHandler(exports.IncomingHandler):
    def handle(self, request: IncomingRequest, response_out: ResponseOutparam) -> None:
        path = request.path_with_query() or "/"
        method = request.method()
        if path == "/hello":
            respond(response_out, 200, b"hello from python")
        elif path == "/echo" and isinstance(method, Method_Post):
            body = request.consume()
            response = OutgoingResponse(Fields.from_list([("content-type", b"application/octet-stream")]))
            out = response.body()
            ResponseOutparam.set(response_out, Ok(response))
            total = 0
            with body.stream() as src, out.write() as dst:
                while True:
                    try:
                        chunk = src.blocking_read(65536)
                    except Err as e:
                        if isinstance(e.value, streams.StreamError_Closed):
                            break
                        raise
                    total += len(chunk)
                    for j in range(0, len(chunk), CHUNK):
                        dst.blocking_write_and_flush(chunk[j : j + CHUNK])
            OutgoingBody.finish(out, None)
        elif path == "/fetch":
            with request.headers() as h:
                url = h.get("x-url")[0].decode()
            try:
                respond(response_out, 200, WitWorld().fetch("GET", url, None, 1, None, None, None).encode())
            except Err as e:
                respond(response_out, 502, str(e.value).encode())
        elif path == "/leak":
            response = OutgoingResponse(Fields.from_list([("content-type", b"text/plain")]))
            body = response.body()
            ResponseOutparam.set(response_out, Ok(response))
            stream = body.write()
            stream.blocking_write_and_flush(b"partial")
            LEAKED.append((body, stream))
        elif path == "/spin":
            while True:
                pass
        elif path == "/trap":
            raise RuntimeError("the guest failed on purpose")
        elif path.startswith("/remember/"):
            remember(path[len("/remember/") :])
            respond(response_out, 200, b"remembered")
        elif path.startswith("/remember-then-trap/"):
            remember(path[len("/remember-then-trap/") :])
            raise RuntimeError("the guest failed on purpose, holding a secret")
        elif path.startswith("/remember-then-read/"):
            remember(path[len("/remember-then-read/") :])
            body = request.consume()
            with body.stream() as src:
                while True:
                    try:
                        src.blocking_read(65536)
                    except Err:
                        break
            respond(response_out, 200, b"remembered")
        elif path == "/recall":
            respond(response_out, 200, (",".join(REMEMBERED) or "nothing").encode())
        else:
            respond(response_out, 404, b"not found")


# Bodies `/leak` keeps alive on purpose: the response never finishes from
# the guest's side, so the host must end it when `handle` returns.
LEAKED = []

# What `/remember` keeps: a fresh instance must not have it.
REMEMBERED = []
KEPT = []


def remember(secret: str) -> None:
    REMEMBERED.append(secret)
    if secret.startswith("handle-"):
        KEPT.append(Fields.from_list([("x-secret", secret.encode())]))
