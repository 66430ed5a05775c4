//! Commands: `process.wasm` entries with `meta.command`, run with
//! `wippy-wasm run -c PATH NAME [ARGS...]`. Command-line arguments are
//! strings; a parameter that is not a string gets its argument parsed into
//! its type (JSON: `42`, `true`, `[1, 2]`). A command whose method is
//! `wasi:cli/run#run` gets them as its argv instead.

use super::SpawnOptions;
use crate::registry::config::Kind;
use crate::registry::Registry;
use crate::values::Type;
use anyhow::{anyhow, bail, Result};
use serde_json::Value as Json;

/// A command and the entry it runs.
#[derive(Debug, Clone)]
pub struct CommandInfo {
    pub name: String,
    pub short: String,
    pub id: String,
}

impl Registry {
    /// Every command, by name.
    pub fn commands(&self) -> Vec<CommandInfo> {
        let mut out: Vec<CommandInfo> = self
            .inner
            .entries
            .values()
            .filter_map(|e| match &e.kind {
                Kind::Process(p) => p.command.as_ref().map(|c| CommandInfo {
                    name: c.name.clone(),
                    short: c.short.clone(),
                    id: e.id.clone(),
                }),
                _ => None,
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    /// The command named `name`.
    ///
    /// # Errors
    /// There is none (the message lists those there are).
    pub fn command(&self, name: &str) -> Result<CommandInfo> {
        let all = self.commands();
        if let Some(c) = all.iter().find(|c| c.name == name) {
            return Ok(c.clone());
        }
        let names: Vec<&str> = all.iter().map(|c| c.name.as_str()).collect();
        if names.is_empty() {
            bail!("unknown command `{name}`: the registry has no commands (`meta.command` on a process.wasm entry)");
        }
        bail!("unknown command `{name}` (commands: {})", names.join(", "))
    }

    /// The spawn arguments of command-line `args` for process `id`.
    ///
    /// # Errors
    /// Too many or too few arguments, or one that does not parse into its
    /// parameter's type; the message shows the signature.
    pub fn command_args(&self, id: &str, args: &[String]) -> Result<(Vec<Json>, SpawnOptions)> {
        let f = self
            .inner
            .processes
            .get(id)
            .ok_or_else(|| anyhow!("unknown process `{id}`"))?;
        if f.spec.method.starts_with("wasi:cli/run") {
            return Ok((Vec::new(), SpawnOptions { argv: args.to_vec() }));
        }
        let ty =
            f.ty.clone()
                .ok_or_else(|| anyhow!("`{id}` takes or returns resources"))?;
        let signature = ty
            .params
            .iter()
            .map(|(n, t)| format!("{n}: {t}"))
            .collect::<Vec<_>>()
            .join(", ");
        if args.len() != ty.params.len() {
            bail!(
                "`{id}` takes {} argument(s) ({signature}), given {}",
                ty.params.len(),
                args.len()
            );
        }
        let mut out = Vec::with_capacity(args.len());
        for (i, ((name, t), arg)) in ty.params.iter().zip(args).enumerate() {
            let v = match t {
                Type::String => Json::String(arg.clone()),
                Type::Char => Json::String(arg.clone()),
                _ => serde_json::from_str(arg)
                    .map_err(|_| anyhow!("argument {} (`{name}: {t}`): `{arg}` is not a {t}", i + 1))?,
            };
            // Checked now, so the message names the argument.
            let mut path = String::new();
            crate::registry::json::from_json(&v, t, &mut path)
                .map_err(|e| anyhow!("argument {} (`{name}: {t}`): {e:#}", i + 1))?;
            out.push(v);
        }
        Ok((out, SpawnOptions::default()))
    }
}
