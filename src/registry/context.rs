//! What an entry refers to: `fs.directory` folders, `env.variable` values
//! and their storages, and from them the WASI context of a call (args, cwd,
//! env, mounts, network).

use super::config::{self, Entry, EnvStorage, FunctionSpec, Kind};
use super::files;
use super::Inner;
use crate::wasi::WasiCtx;
use anyhow::{anyhow, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

impl Inner {
    pub(super) fn fail(entry: &Entry, field: &str, msg: impl std::fmt::Display) -> anyhow::Error {
        anyhow!("{}: entry `{}`: field `{field}`: {msg}", entry.file.display(), entry.id)
    }

    pub(super) fn entry(&self, from: &Entry, field: &str, reference: &str) -> Result<&Entry> {
        let id = config::qualify(&from.namespace, reference);
        self.entries
            .get(&id)
            .ok_or_else(|| Self::fail(from, field, format!("no entry `{id}`")))
    }

    /// Reads a `file://` path of `entry`, relative to its definition file,
    /// which must stay inside the registry folder; returns its real path
    /// and contents.
    pub(super) fn registry_file(&self, entry: &Entry, field: &str, rel: &str) -> Result<(PathBuf, Vec<u8>)> {
        let path = entry.file.parent().unwrap_or(Path::new(".")).join(rel);
        let real = files::within(&self.root, &path, "the registry folder").map_err(|e| Self::fail(entry, field, e))?;
        let bytes = files::read_capped(&real, files::MAX_CODE_BYTES).map_err(|e| Self::fail(entry, field, e))?;
        Ok((real, bytes))
    }

    /// The host folder of an `fs.directory` reference.
    pub(super) fn directory(&self, from: &Entry, field: &str, reference: &str) -> Result<PathBuf> {
        Ok(self.directory_mode(from, field, reference)?.0)
    }

    /// The host folder of an `fs.directory` reference, and whether its mode
    /// allows writing.
    fn directory_mode(&self, from: &Entry, field: &str, reference: &str) -> Result<(PathBuf, bool)> {
        let target = self.entry(from, field, reference)?;
        let Kind::FsDirectory(d) = &target.kind else {
            return Err(Self::fail(
                from,
                field,
                format!("`{}` is not an fs.directory", target.id),
            ));
        };
        let dir = target.file.parent().unwrap_or(Path::new(".")).join(&d.directory);
        if !dir.is_dir() {
            if d.auto_init {
                std::fs::create_dir_all(&dir).map_err(|e| Self::fail(target, "directory", e))?;
            } else {
                return Err(Self::fail(
                    target,
                    "directory",
                    format!("{} does not exist", dir.display()),
                ));
            }
        }
        Ok((dir, d.writable()))
    }

    pub(super) fn storage(&self, from: &Entry, reference: &str) -> Result<&EnvStorage> {
        let target = self.entry(from, "storage", reference)?;
        match &target.kind {
            Kind::EnvStorage(s) => Ok(s),
            _ => Err(Self::fail(
                from,
                "storage",
                format!("`{}` is not an env.storage.* entry", target.id),
            )),
        }
    }

    /// The value of an `env.variable` entry, if set.
    fn variable(&self, from: &Entry, field: &str, reference: &str) -> Result<Option<String>> {
        let target = self.entry(from, field, reference)?;
        let Kind::EnvVariable(v) = &target.kind else {
            return Err(Self::fail(
                from,
                field,
                format!("`{}` is not an env.variable", target.id),
            ));
        };
        let key = v
            .variable
            .clone()
            .unwrap_or_else(|| target.id.rsplit(':').next().unwrap_or_default().to_string());
        let value = match self.storage(target, &v.storage)? {
            EnvStorage::Os => std::env::var(&key).ok(),
            EnvStorage::Static(values) => values.get(&key).cloned(),
            EnvStorage::File { path, auto_create } => match std::fs::read_to_string(path) {
                Ok(text) => parse_env_file(&text).remove(&key),
                Err(_) if *auto_create => None,
                Err(e) => {
                    return Err(Self::fail(
                        target,
                        "storage",
                        format!("cannot read {}: {e}", path.display()),
                    ))
                }
            },
        };
        Ok(value.or_else(|| v.default.clone()))
    }

    /// Resolves what the WASI context of entry `id` refers to (variables
    /// and their storages, mounted folders, the network policy) without
    /// reading values, so that `check` reports a broken reference; a
    /// required variable that is unset is an error of the call.
    pub(super) fn check_references(&self, id: &str, spec: &FunctionSpec) -> Result<()> {
        let entry = &self.entries[id];
        for (i, m) in spec.wasi.env.iter().enumerate() {
            let field = format!("wasi.env[{i}]");
            let target = self.entry(entry, &field, &m.id)?;
            let Kind::EnvVariable(v) = &target.kind else {
                return Err(Self::fail(
                    entry,
                    &field,
                    format!("`{}` is not an env.variable", target.id),
                ));
            };
            self.storage(target, &v.storage)?;
        }
        for (i, m) in spec.wasi.mounts.iter().enumerate() {
            self.directory_mode(entry, &format!("wasi.mounts[{i}].fs"), &m.fs)?;
        }
        if spec.imports.iter().any(|i| i == "wasi:sockets") {
            network_policy(spec).map_err(|e| Self::fail(entry, "network", e))?;
        }
        Ok(())
    }

    /// The WASI context of one call of entry `id`: args, cwd, env, mounts.
    pub(super) fn wasi_ctx(&self, id: &str, spec: &FunctionSpec) -> Result<WasiCtx> {
        let entry = &self.entries[id];
        let mut ctx = WasiCtx::new().args(std::iter::once(id.to_string()).chain(spec.wasi.args.iter().cloned()));
        if let Some(cwd) = &spec.wasi.cwd {
            ctx = ctx.cwd(cwd);
        }
        for (i, m) in spec.wasi.env.iter().enumerate() {
            let field = format!("wasi.env[{i}]");
            match self.variable(entry, &field, &m.id)? {
                Some(v) => ctx = ctx.env(&m.name, v),
                None if m.required => {
                    return Err(Self::fail(
                        entry,
                        &field,
                        format!("required variable `{}` ({}) is not set", m.id, m.name),
                    ))
                }
                None => {}
            }
        }
        for (i, m) in spec.wasi.mounts.iter().enumerate() {
            let (dir, writable) = self.directory_mode(entry, &format!("wasi.mounts[{i}].fs"), &m.fs)?;
            ctx = ctx.preopen_dir(&dir, &m.guest, m.read_only || !writable)?;
        }
        if spec.imports.iter().any(|i| i == "wasi:sockets") {
            ctx = ctx.network(network_policy(spec)?);
        }
        Ok(ctx)
    }
}

/// The network an entry importing `wasi:sockets` gets (see
/// [`config::NetworkSpec`]).
fn network_policy(spec: &FunctionSpec) -> Result<crate::wasi::sockets::NetworkPolicy> {
    use crate::wasi::sockets::parse_range;
    let net = spec.network.clone().unwrap_or_default();
    let ranges = |list: &[String]| list.iter().map(|r| parse_range(r)).collect::<Result<Vec<_>>>();
    let limits = spec.limits();
    Ok(crate::wasi::sockets::NetworkPolicy {
        enabled: true,
        name_lookup: net.name_lookup.unwrap_or(true),
        allow: ranges(&net.allow)?,
        deny: ranges(&net.deny)?,
        deny_loopback: !net.allow_loopback,
        deny_private: !net.allow_private,
        max_sockets: limits.max_open_sockets(),
        timeout: limits.socket_timeout(),
        http: true,
    })
}

/// `KEY=VALUE` lines; `#` starts a comment.
fn parse_env_file(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .map(|l| l.split('#').next().unwrap_or_default().trim())
        .filter(|l| !l.is_empty())
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}
