//! `wasi:cli` — environment, exit, stdio and terminals.

use super::io::{InputStream, OutputStream};
use super::{iface, own, Exit, Types, WasiView};
use crate::val::Val;
use crate::Linker;
use anyhow::bail;

pub(crate) fn add_to_linker<T: WasiView>(linker: &mut Linker<T>, types: &Types) {
    linker
        .instance(&iface("wasi:cli/environment"))
        .func_new("get-environment", |mut cx, _, out| {
            let env = &cx.data_mut().wasi().env;
            out.push(Val::List(
                env.iter()
                    .map(|(k, v)| Val::Tuple(vec![Val::String(k.clone()), Val::String(v.clone())]))
                    .collect(),
            ));
            Ok(())
        })
        .func_new("get-arguments", |mut cx, _, out| {
            out.push(Val::List(
                cx.data_mut().wasi().args.iter().cloned().map(Val::String).collect(),
            ));
            Ok(())
        })
        .func_new("initial-cwd", |mut cx, _, out| {
            out.push(Val::Option(
                cx.data_mut().wasi().cwd.clone().map(|c| Box::new(Val::String(c))),
            ));
            Ok(())
        });

    linker
        .instance(&iface("wasi:cli/exit"))
        .func_new("exit", |_, args, _| match &args[0] {
            Val::Result(Ok(_)) => Err(Exit(0).into()),
            _ => Err(Exit(1).into()),
        })
        .func_wrap("exit-with-code", |_, (code,): (u8,)| -> anyhow::Result<()> {
            Err(Exit(code as i32).into())
        });

    let t = types.clone();
    linker
        .instance(&iface("wasi:cli/stdin"))
        .func_new("get-stdin", move |mut cx, _, out| {
            let ctx = cx.data_mut().wasi();
            let stream = InputStream::from_source(&ctx.stdin);
            out.push(own(&t.input_stream, ctx.table.push(stream)?.rep()));
            Ok(())
        });
    let t = types.clone();
    linker
        .instance(&iface("wasi:cli/stdout"))
        .func_new("get-stdout", move |mut cx, _, out| {
            let ctx = cx.data_mut().wasi();
            let stream = OutputStream::Stdout(ctx.stdout.clone());
            out.push(own(&t.output_stream, ctx.table.push(stream)?.rep()));
            Ok(())
        });
    let t = types.clone();
    linker
        .instance(&iface("wasi:cli/stderr"))
        .func_new("get-stderr", move |mut cx, _, out| {
            let ctx = cx.data_mut().wasi();
            let stream = OutputStream::Stderr(ctx.stderr.clone());
            out.push(own(&t.output_stream, ctx.table.push(stream)?.rep()));
            Ok(())
        });

    // Terminals: guests never see one (stdio may be redirected, and a
    // sandboxed guest should not learn about the host's terminal).
    linker
        .instance(&iface("wasi:cli/terminal-input"))
        .resource("terminal-input", |_, _| bail!("no terminal handles are ever created"));
    linker
        .instance(&iface("wasi:cli/terminal-output"))
        .resource("terminal-output", |_, _| bail!("no terminal handles are ever created"));
    for (name, f) in [
        ("wasi:cli/terminal-stdin", "get-terminal-stdin"),
        ("wasi:cli/terminal-stdout", "get-terminal-stdout"),
        ("wasi:cli/terminal-stderr", "get-terminal-stderr"),
    ] {
        linker.instance(&iface(name)).func_new(f, |_, _, out| {
            out.push(Val::Option(None));
            Ok(())
        });
    }
}
