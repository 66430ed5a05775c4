//! `wasi:http` — `types` and `outgoing-handler`, on hyper.
//!
//! Bodies stream through bounded [`pipe::Pipe`]s between the guest's
//! `wasi:io` streams and hyper; hyper connections and body pumps run on one
//! HTTP I/O thread ([`rt::spawn`]), so a guest waiting on a response or a
//! body chunk is suspended like any other wait. Serving
//! (`wasi:http/incoming-handler`) is [`crate::serve`].

mod body;
pub mod client;
mod error;
pub mod pipe;
pub mod rt;
pub mod types;

pub use error::HttpError;

use super::io::{InputStream, IoError, OutputStream, Pollable};
use super::{err, get, get_mut, iface, ok, own, rep, table_resource, Types, WasiView};
use crate::host::table::Resource;
use crate::values::ResourceType;
use crate::values::Val;
use crate::Linker;
use anyhow::{bail, Context, Result};
use body::{BodyReader, BodyWriter, PipeReady, PipeWait};
use std::time::Duration;
use types::*;

/// The resource types of `wasi:http/types`, for hosts that hand requests
/// to guests ([`crate::serve`]).
#[derive(Clone)]
pub struct HttpTypes {
    pub fields: ResourceType,
    pub incoming_request: ResourceType,
    pub outgoing_request: ResourceType,
    pub request_options: ResourceType,
    pub response_outparam: ResourceType,
    pub incoming_response: ResourceType,
    pub incoming_body: ResourceType,
    pub future_trailers: ResourceType,
    pub outgoing_response: ResourceType,
    pub outgoing_body: ResourceType,
    pub future_incoming_response: ResourceType,
}

/// Puts `value` in the table and returns an owned handle of type `ty`.
fn push<T: WasiView, R: Send + 'static>(cx: &mut crate::StoreCx<'_, T>, ty: &ResourceType, value: R) -> Result<Val> {
    Ok(own(ty, cx.data_mut().wasi().table.push(value)?.rep()))
}

/// Takes the object behind an owned handle argument out of the table.
fn take<T: WasiView, R: 'static>(cx: &mut crate::StoreCx<'_, T>, v: &Val) -> Result<R> {
    Ok(cx.data_mut().wasi().table.delete(Resource::<R>::new(rep(v)?))?)
}

fn unit_result(r: bool) -> Val {
    Val::Result(if r { Ok(None) } else { Err(None) })
}

fn duration_val(d: Option<Duration>) -> Val {
    Val::Option(d.map(|d| Box::new(Val::U64(d.as_nanos().min(u64::MAX as u128) as u64))))
}

fn duration_arg(v: &Val) -> Result<Option<Duration>> {
    Ok(match option_arg(v)? {
        Some(Val::U64(n)) => Some(Duration::from_nanos(*n)),
        Some(other) => bail!("expected a duration, got {}", other.kind()),
        None => None,
    })
}

/// An immutable copy of `map` for the guest.
fn fields_val<T: WasiView>(cx: &mut crate::StoreCx<'_, T>, ty: &HttpTypes, map: &http::HeaderMap) -> Result<Val> {
    push(
        cx,
        &ty.fields,
        Fields {
            map: map.clone(),
            immutable: true,
        },
    )
}

/// `consume`'s result: the body the first time, `err` after.
fn incoming_body_val<T: WasiView>(
    cx: &mut crate::StoreCx<'_, T>,
    ty: &HttpTypes,
    pipe: Option<std::sync::Arc<pipe::Pipe>>,
) -> Result<Val> {
    Ok(match pipe {
        Some(pipe) => {
            let body = IncomingBody {
                pipe,
                stream_taken: false,
            };
            ok(Some(push(cx, &ty.incoming_body, body)?))
        }
        None => Val::Result(Err(None)),
    })
}

/// `body`'s result for a request or (with `response`) a response: the
/// body the first time, `err` after.
fn outgoing_body_val<T: WasiView>(
    cx: &mut crate::StoreCx<'_, T>,
    ty: &HttpTypes,
    pipe: Option<std::sync::Arc<pipe::Pipe>>,
    response: bool,
) -> Result<Val> {
    Ok(match pipe {
        Some(pipe) => {
            let body = OutgoingBody {
                pipe,
                stream_taken: false,
                response,
            };
            ok(Some(push(cx, &ty.outgoing_body, body)?))
        }
        None => Val::Result(Err(None)),
    })
}

/// Defines `wasi:http/types` and `wasi:http/outgoing-handler`.
pub(crate) fn add_to_linker<T: WasiView>(linker: &mut Linker<T>, io: &Types) -> HttpTypes {
    let inst = linker.instance(&iface("wasi:http/types"));
    let ty = HttpTypes {
        fields: table_resource::<T, Fields>(inst, "fields"),
        incoming_request: table_resource::<T, IncomingRequest>(inst, "incoming-request"),
        outgoing_request: table_resource::<T, OutgoingRequest>(inst, "outgoing-request"),
        request_options: table_resource::<T, RequestOptions>(inst, "request-options"),
        response_outparam: table_resource::<T, ResponseOutparam>(inst, "response-outparam"),
        incoming_response: table_resource::<T, IncomingResponse>(inst, "incoming-response"),
        incoming_body: table_resource::<T, IncomingBody>(inst, "incoming-body"),
        future_trailers: table_resource::<T, FutureTrailers>(inst, "future-trailers"),
        outgoing_response: table_resource::<T, OutgoingResponse>(inst, "outgoing-response"),
        outgoing_body: table_resource::<T, OutgoingBody>(inst, "outgoing-body"),
        future_incoming_response: table_resource::<T, FutureIncomingResponse>(inst, "future-incoming-response"),
    };
    add_fields(inst, &ty);
    add_requests(inst, &ty);
    add_responses(inst, &ty);
    add_bodies(inst, &ty, io);
    add_outgoing_handler(linker, &ty);
    ty
}

fn add_fields<T: WasiView>(inst: &mut crate::LinkerInstance<T>, ty: &HttpTypes) {
    let t = ty.clone();
    inst.func_new("[constructor]fields", move |mut cx, _, out| {
        let f = Fields {
            map: http::HeaderMap::new(),
            immutable: false,
        };
        out.push(push(&mut cx, &t.fields, f)?);
        Ok(())
    });
    let t = ty.clone();
    inst.func_new("[static]fields.from-list", move |mut cx, args, out| {
        let Val::List(entries) = &args[0] else {
            bail!("expected a list of entries")
        };
        let mut map = http::HeaderMap::new();
        for e in entries {
            let Val::Tuple(kv) = e else { bail!("expected a tuple") };
            let value = super::bytes_arg(&kv[1])?;
            match field(string_arg(&kv[0])?, Some(&value)) {
                Ok((name, Some(value))) => drop(map.append(name, value)),
                Ok(_) => unreachable!("a value was given"),
                Err(case) => {
                    out.push(header_error(case));
                    return Ok(());
                }
            }
        }
        let f = Fields { map, immutable: false };
        out.push(ok(Some(push(&mut cx, &t.fields, f)?)));
        Ok(())
    });
    inst.func_new("[method]fields.get", |mut cx, args, out| {
        let f = get::<T, Fields>(&mut cx, &args[0])?;
        let name = string_arg(&args[1])?;
        out.push(Val::List(
            f.map
                .get_all(name)
                .iter()
                .map(|v| super::bytes_val(v.as_bytes().to_vec()))
                .collect(),
        ));
        Ok(())
    });
    inst.func_new("[method]fields.has", |mut cx, args, out| {
        let f = get::<T, Fields>(&mut cx, &args[0])?;
        out.push(Val::Bool(f.map.contains_key(string_arg(&args[1])?)));
        Ok(())
    });
    // set, delete and append: checked names and values, mutable fields only.
    for op in ["set", "delete", "append"] {
        inst.func_new(&format!("[method]fields.{op}"), move |mut cx, args, out| {
            let f = get_mut::<T, Fields>(&mut cx, &args[0])?;
            let name = string_arg(&args[1])?;
            let values: Vec<Vec<u8>> = match (op, args.get(2)) {
                ("set", Some(Val::List(vs))) => vs.iter().map(super::bytes_arg).collect::<Result<_>>()?,
                ("append", Some(v)) => vec![super::bytes_arg(v)?],
                _ => Vec::new(),
            };
            if f.immutable {
                out.push(header_error("immutable"));
                return Ok(());
            }
            let checked: Result<Vec<_>, _> = if values.is_empty() {
                field(name, None).map(|(n, _)| vec![(n, None)])
            } else {
                values.iter().map(|v| field(name, Some(v))).collect()
            };
            let checked = match checked {
                Ok(c) => c,
                Err(case) => {
                    out.push(header_error(case));
                    return Ok(());
                }
            };
            if op != "append" {
                f.map.remove(&checked[0].0);
            }
            if op != "delete" {
                for (n, v) in checked {
                    if let Some(v) = v {
                        f.map.append(n, v);
                    }
                }
            }
            out.push(ok(None));
            Ok(())
        });
    }
    inst.func_new("[method]fields.entries", |mut cx, args, out| {
        out.push(entries_val(&get::<T, Fields>(&mut cx, &args[0])?.map));
        Ok(())
    });
    let t = ty.clone();
    inst.func_new("[method]fields.clone", move |mut cx, args, out| {
        let map = get::<T, Fields>(&mut cx, &args[0])?.map.clone();
        out.push(push(&mut cx, &t.fields, Fields { map, immutable: false })?);
        Ok(())
    });
}

/// Getters shared by `incoming-request` and `outgoing-request`.
fn add_request_getters<T: WasiView, R: AsRef<Request> + 'static>(
    inst: &mut crate::LinkerInstance<T>,
    ty: &HttpTypes,
    resource: &str,
) {
    inst.func_new(&format!("[method]{resource}.method"), |mut cx, args, out| {
        out.push(method_val(&get::<T, R>(&mut cx, &args[0])?.as_ref().method));
        Ok(())
    });
    inst.func_new(&format!("[method]{resource}.scheme"), |mut cx, args, out| {
        let s = &get::<T, R>(&mut cx, &args[0])?.as_ref().scheme;
        out.push(Val::Option(s.as_ref().map(|s| Box::new(scheme_val(s)))));
        Ok(())
    });
    inst.func_new(&format!("[method]{resource}.authority"), |mut cx, args, out| {
        out.push(opt_string(&get::<T, R>(&mut cx, &args[0])?.as_ref().authority));
        Ok(())
    });
    inst.func_new(&format!("[method]{resource}.path-with-query"), |mut cx, args, out| {
        out.push(opt_string(&get::<T, R>(&mut cx, &args[0])?.as_ref().path_with_query));
        Ok(())
    });
    let t = ty.clone();
    inst.func_new(&format!("[method]{resource}.headers"), move |mut cx, args, out| {
        let map = get::<T, R>(&mut cx, &args[0])?.as_ref().headers.clone();
        out.push(fields_val(&mut cx, &t, &map)?);
        Ok(())
    });
}

fn add_requests<T: WasiView>(inst: &mut crate::LinkerInstance<T>, ty: &HttpTypes) {
    add_request_getters::<T, IncomingRequest>(inst, ty, "incoming-request");
    add_request_getters::<T, OutgoingRequest>(inst, ty, "outgoing-request");
    let t = ty.clone();
    inst.func_new("[method]incoming-request.consume", move |mut cx, args, out| {
        let body = get_mut::<T, IncomingRequest>(&mut cx, &args[0])?.0.body.take();
        out.push(incoming_body_val(&mut cx, &t, body)?);
        Ok(())
    });

    let t = ty.clone();
    inst.func_new("[constructor]outgoing-request", move |mut cx, args, out| {
        let headers = take::<T, Fields>(&mut cx, &args[0])?.map;
        let req = OutgoingRequest(Request {
            method: http::Method::GET,
            scheme: None,
            authority: None,
            path_with_query: None,
            headers,
            body: None,
        });
        out.push(push(&mut cx, &t.outgoing_request, req)?);
        Ok(())
    });
    let t = ty.clone();
    inst.func_new("[method]outgoing-request.body", move |mut cx, args, out| {
        let req = &mut get_mut::<T, OutgoingRequest>(&mut cx, &args[0])?.0;
        let pipe = open_body(&mut req.body, &req.headers);
        out.push(outgoing_body_val(&mut cx, &t, pipe, false)?);
        Ok(())
    });
    inst.func_new("[method]outgoing-request.set-method", |mut cx, args, out| {
        let m = method_arg(&args[1])?;
        let req = &mut get_mut::<T, OutgoingRequest>(&mut cx, &args[0])?.0;
        out.push(unit_result(m.map(|m| req.method = m).is_some()));
        Ok(())
    });
    inst.func_new("[method]outgoing-request.set-scheme", |mut cx, args, out| {
        let s = option_arg(&args[1])?.map(scheme_arg).transpose()?;
        let req = &mut get_mut::<T, OutgoingRequest>(&mut cx, &args[0])?.0;
        out.push(unit_result(match s {
            None => {
                req.scheme = None;
                true
            }
            Some(Some(s)) => {
                req.scheme = Some(s);
                true
            }
            Some(None) => false,
        }));
        Ok(())
    });
    for (name, valid) in [
        ("set-authority", valid_authority as fn(&str) -> bool),
        ("set-path-with-query", valid_path),
    ] {
        inst.func_new(&format!("[method]outgoing-request.{name}"), move |mut cx, args, out| {
            let v = option_arg(&args[1])?.map(string_arg).transpose()?;
            let good = v.is_none_or(valid);
            let v = v.map(str::to_string);
            let req = &mut get_mut::<T, OutgoingRequest>(&mut cx, &args[0])?.0;
            if good {
                if name == "set-authority" {
                    req.authority = v;
                } else {
                    req.path_with_query = v;
                }
            }
            out.push(unit_result(good));
            Ok(())
        });
    }

    let t = ty.clone();
    inst.func_new("[constructor]request-options", move |mut cx, _, out| {
        out.push(push(&mut cx, &t.request_options, RequestOptions::default())?);
        Ok(())
    });
    type Field = fn(&mut RequestOptions) -> &mut Option<Duration>;
    let fields: [(&str, Field); 3] = [
        ("connect-timeout", |o| &mut o.connect),
        ("first-byte-timeout", |o| &mut o.first_byte),
        ("between-bytes-timeout", |o| &mut o.between_bytes),
    ];
    for (name, field) in fields {
        inst.func_new(&format!("[method]request-options.{name}"), move |mut cx, args, out| {
            let o = get_mut::<T, RequestOptions>(&mut cx, &args[0])?;
            out.push(duration_val(*field(o)));
            Ok(())
        });
        inst.func_new(
            &format!("[method]request-options.set-{name}"),
            move |mut cx, args, out| {
                let d = duration_arg(&args[1])?;
                *field(get_mut::<T, RequestOptions>(&mut cx, &args[0])?) = d;
                out.push(ok(None));
                Ok(())
            },
        );
    }
}

fn add_responses<T: WasiView>(inst: &mut crate::LinkerInstance<T>, ty: &HttpTypes) {
    inst.func_new("[method]response-outparam.send-informational", |_, _, out| {
        // hyper's HTTP/1 server sends no 1xx responses of the guest's own.
        out.push(err(
            HttpError::internal("informational responses are not supported").to_val()
        ));
        Ok(())
    });
    inst.func_new("[static]response-outparam.set", |mut cx, args, _| {
        let param = take::<T, ResponseOutparam>(&mut cx, &args[0])?;
        let response = match &args[1] {
            Val::Result(Ok(Some(r))) => {
                let mut r = take::<T, OutgoingResponse>(&mut cx, r)?;
                let body = r.body.take().unwrap_or_else(|| pipe::Pipe::full(bytes::Bytes::new()));
                *param.body.lock().unwrap_or_else(|e| e.into_inner()) = Some(body.clone());
                Ok(Response {
                    status: r.status,
                    headers: std::mem::take(&mut r.headers),
                    body,
                })
            }
            Val::Result(Err(Some(code))) => Err((**code).clone()),
            _ => bail!("response-outparam.set: expected result<outgoing-response, error-code>"),
        };
        param.slot.set(response);
        Ok(())
    });

    inst.func_new("[method]incoming-response.status", |mut cx, args, out| {
        out.push(Val::U16(get::<T, IncomingResponse>(&mut cx, &args[0])?.status));
        Ok(())
    });
    let t = ty.clone();
    inst.func_new("[method]incoming-response.headers", move |mut cx, args, out| {
        let map = get::<T, IncomingResponse>(&mut cx, &args[0])?.headers.clone();
        out.push(fields_val(&mut cx, &t, &map)?);
        Ok(())
    });
    let t = ty.clone();
    inst.func_new("[method]incoming-response.consume", move |mut cx, args, out| {
        let body = get_mut::<T, IncomingResponse>(&mut cx, &args[0])?.body.take();
        out.push(incoming_body_val(&mut cx, &t, body)?);
        Ok(())
    });

    let t = ty.clone();
    inst.func_new("[constructor]outgoing-response", move |mut cx, args, out| {
        let headers = take::<T, Fields>(&mut cx, &args[0])?.map;
        let r = OutgoingResponse {
            status: 200,
            headers,
            body: None,
        };
        out.push(push(&mut cx, &t.outgoing_response, r)?);
        Ok(())
    });
    inst.func_new("[method]outgoing-response.status-code", |mut cx, args, out| {
        out.push(Val::U16(get::<T, OutgoingResponse>(&mut cx, &args[0])?.status));
        Ok(())
    });
    inst.func_new("[method]outgoing-response.set-status-code", |mut cx, args, out| {
        let Val::U16(code) = args[1] else {
            bail!("expected a status code")
        };
        let r = get_mut::<T, OutgoingResponse>(&mut cx, &args[0])?;
        let good = http::StatusCode::from_u16(code).is_ok();
        if good {
            r.status = code;
        }
        out.push(unit_result(good));
        Ok(())
    });
    let t = ty.clone();
    inst.func_new("[method]outgoing-response.headers", move |mut cx, args, out| {
        let map = get::<T, OutgoingResponse>(&mut cx, &args[0])?.headers.clone();
        out.push(fields_val(&mut cx, &t, &map)?);
        Ok(())
    });
    let t = ty.clone();
    inst.func_new("[method]outgoing-response.body", move |mut cx, args, out| {
        let r = get_mut::<T, OutgoingResponse>(&mut cx, &args[0])?;
        let pipe = open_body(&mut r.body, &r.headers);
        out.push(outgoing_body_val(&mut cx, &t, pipe, true)?);
        Ok(())
    });
}

fn add_bodies<T: WasiView>(inst: &mut crate::LinkerInstance<T>, ty: &HttpTypes, io: &Types) {
    let i = io.clone();
    inst.func_new("[method]incoming-body.stream", move |mut cx, args, out| {
        let body_res = Resource::<IncomingBody>::new(rep(&args[0])?);
        let table = &mut cx.data_mut().wasi().table;
        let body = table.get_mut(&body_res)?;
        if body.stream_taken {
            out.push(Val::Result(Err(None)));
            return Ok(());
        }
        body.stream_taken = true;
        let stream = InputStream::new(BodyReader(body.pipe.clone()));
        let s = table.push_child(stream, &body_res)?;
        out.push(ok(Some(own(&i.input_stream, s.rep()))));
        Ok(())
    });
    let t = ty.clone();
    inst.func_new("[static]incoming-body.finish", move |mut cx, args, out| {
        let body = take::<T, IncomingBody>(&mut cx, &args[0])
            .context("incoming-body.finish: drop the body's input-stream first")?;
        let trailers = FutureTrailers {
            pipe: body.pipe.clone(),
            taken: false,
        };
        out.push(push(&mut cx, &t.future_trailers, trailers)?);
        Ok(())
    });
    let i = io.clone();
    inst.func_new("[method]future-trailers.subscribe", move |mut cx, args, out| {
        let f = get::<T, FutureTrailers>(&mut cx, &args[0])?;
        let p = PipeReady::pollable(f.pipe.clone(), PipeWait::End);
        let parent = Resource::<FutureTrailers>::new(rep(&args[0])?);
        let p = cx.data_mut().wasi().table.push_child(p, &parent)?;
        out.push(own(&i.pollable, p.rep()));
        Ok(())
    });
    let t = ty.clone();
    inst.func_new("[method]future-trailers.get", move |mut cx, args, out| {
        let f = get_mut::<T, FutureTrailers>(&mut cx, &args[0])?;
        let Some(end) = f.pipe.end() else {
            out.push(Val::Option(None));
            return Ok(());
        };
        if std::mem::replace(&mut f.taken, true) {
            out.push(Val::Option(Some(Box::new(Val::Result(Err(None))))));
            return Ok(());
        }
        let inner = match end {
            pipe::End::Finished(None) => ok(Some(Val::Option(None))),
            pipe::End::Finished(Some(map)) => {
                let f = push(&mut cx, &t.fields, Fields { map, immutable: true })?;
                ok(Some(Val::Option(Some(Box::new(f)))))
            }
            pipe::End::Failed(e) => err(e.to_val()),
        };
        out.push(Val::Option(Some(Box::new(ok(Some(inner))))));
        Ok(())
    });

    let i = io.clone();
    inst.func_new("[method]outgoing-body.write", move |mut cx, args, out| {
        let body_res = Resource::<OutgoingBody>::new(rep(&args[0])?);
        let table = &mut cx.data_mut().wasi().table;
        let body = table.get_mut(&body_res)?;
        if body.stream_taken {
            out.push(Val::Result(Err(None)));
            return Ok(());
        }
        body.stream_taken = true;
        let stream = OutputStream::new(BodyWriter(body.pipe.clone()));
        let s = table.push_child(stream, &body_res)?;
        out.push(ok(Some(own(&i.output_stream, s.rep()))));
        Ok(())
    });
    inst.func_new("[static]outgoing-body.finish", |mut cx, args, out| {
        let body = take::<T, OutgoingBody>(&mut cx, &args[0])
            .context("outgoing-body.finish: drop the body's output-stream first")?;
        let trailers = match option_arg(&args[1])? {
            Some(t) => Some(take::<T, Fields>(&mut cx, t)?.map),
            None => None,
        };
        out.push(match body.pipe.finish(pipe::End::Finished(trailers)) {
            Ok(()) => ok(None),
            Err(HttpError::BodySize(n)) if body.response => err(HttpError::ResponseBodySize(n).to_val()),
            Err(e) => err(e.to_val()),
        });
        Ok(())
    });

    let i = io.clone();
    inst.func_new(
        "[method]future-incoming-response.subscribe",
        move |mut cx, args, out| {
            let parent = Resource::<FutureIncomingResponse>::new(rep(&args[0])?);
            let signal = cx.data_mut().wasi().table.get(&parent)?.slot.signal.clone();
            let p = cx
                .data_mut()
                .wasi()
                .table
                .push_child(Pollable::signal(signal), &parent)?;
            out.push(own(&i.pollable, p.rep()));
            Ok(())
        },
    );
    let t = ty.clone();
    inst.func_new("[method]future-incoming-response.get", move |mut cx, args, out| {
        let f = get_mut::<T, FutureIncomingResponse>(&mut cx, &args[0])?;
        if f.taken {
            out.push(Val::Option(Some(Box::new(Val::Result(Err(None))))));
            return Ok(());
        }
        let Some(result) = f.slot.take() else {
            out.push(Val::Option(None));
            return Ok(());
        };
        f.taken = true;
        let inner = match result {
            Ok(r) => {
                let resp = IncomingResponse {
                    status: r.status,
                    headers: r.headers,
                    body: Some(r.body),
                };
                ok(Some(push(&mut cx, &t.incoming_response, resp)?))
            }
            Err(e) => err(e.to_val()),
        };
        out.push(Val::Option(Some(Box::new(ok(Some(inner))))));
        Ok(())
    });

    inst.func_new("http-error-code", |mut cx, args, out| {
        let code = get::<T, IoError>(&mut cx, &args[0])?.code::<HttpError>();
        let code = code.map(|e| Box::new(e.to_val()));
        out.push(Val::Option(code));
        Ok(())
    });
}

fn add_outgoing_handler<T: WasiView>(linker: &mut Linker<T>, ty: &HttpTypes) {
    let t = ty.clone();
    linker
        .instance(&iface("wasi:http/outgoing-handler"))
        .func_new("handle", move |mut cx, args, out| {
            let req = take::<T, OutgoingRequest>(&mut cx, &args[0])?;
            let options = match option_arg(&args[1])? {
                Some(o) => take::<T, RequestOptions>(&mut cx, o)?,
                None => RequestOptions::default(),
            };
            let policy = cx.data_mut().wasi().network.clone();
            // A body sized by a malformed content-length cannot be sent.
            let bad_length = req.0.body.is_some() && body_pipe(&req.0.headers).is_none();
            let outgoing = if bad_length {
                Err(HttpError::BodySize(None))
            } else {
                client::Outgoing::new(req, &policy)
            };
            out.push(match outgoing {
                Ok(o) => {
                    let slot = o.send(options, &policy);
                    let f = FutureIncomingResponse { slot, taken: false };
                    ok(Some(push(&mut cx, &t.future_incoming_response, f)?))
                }
                Err(e) => err(e.to_val()),
            });
            Ok(())
        });
}
