//! Wippy definition files: YAML with `version`, `namespace` and `entries`,
//! loaded from one file or a tree of `_index.yaml` files. Every error names
//! the file, the entry and the field.

use anyhow::{anyhow, bail, Result};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One registry entry, with the file it came from.
#[derive(Debug, Clone)]
pub struct Entry {
    /// `namespace:name`.
    pub id: String,
    pub namespace: String,
    pub file: PathBuf,
    pub kind: Kind,
}

#[derive(Debug, Clone)]
pub enum Kind {
    FsDirectory(FsDirectory),
    EnvStorage(EnvStorage),
    EnvVariable(EnvVariable),
    /// `function.wasm` or `function.wat`.
    Function(Box<FunctionSpec>),
    /// `http.endpoint`: a route to a `wasi-http` function.
    HttpEndpoint(HttpEndpoint),
    /// Kinds this runtime does not act on (kept so references resolve).
    Other(String),
}

/// `http.endpoint`: requests with `method` on `path` go to `func`.
#[derive(Debug, Clone, Deserialize)]
pub struct HttpEndpoint {
    pub method: String,
    pub path: String,
    pub func: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct FsDirectory {
    /// Resolved against the definition file's folder.
    pub directory: String,
    #[serde(default)]
    pub auto_init: bool,
    /// Unix permission bits, octal (`"0755"`); without the owner write bit
    /// every mount of the directory is read-only.
    pub mode: Option<serde_yaml::Value>,
}

impl FsDirectory {
    /// The permission bits (default 0755).
    pub fn mode_bits(&self) -> Option<u32> {
        match &self.mode {
            None => Some(0o755),
            Some(serde_yaml::Value::String(s)) => u32::from_str_radix(s.trim_start_matches("0o"), 8).ok(),
            Some(serde_yaml::Value::Number(n)) => n.as_u64().and_then(|n| u32::from_str_radix(&n.to_string(), 8).ok()),
            Some(_) => None,
        }
    }

    pub fn writable(&self) -> bool {
        self.mode_bits().is_some_and(|m| m & 0o200 != 0)
    }
}

#[derive(Debug, Clone)]
pub enum EnvStorage {
    Os,
    Static(BTreeMap<String, String>),
    File { path: PathBuf, auto_create: bool },
}

#[derive(Debug, Clone, Deserialize)]
pub struct EnvVariable {
    pub variable: Option<String>,
    pub storage: String,
    pub default: Option<String>,
    #[serde(default)]
    pub readonly: bool,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct WasiSpec {
    #[serde(default)]
    pub args: Vec<String>,
    pub cwd: Option<String>,
    #[serde(default)]
    pub env: Vec<EnvMapping>,
    #[serde(default)]
    pub mounts: Vec<MountSpec>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvMapping {
    /// The `env.variable` entry.
    pub id: String,
    /// The name the guest sees.
    pub name: String,
    #[serde(default)]
    pub required: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MountSpec {
    /// The `fs.directory` entry.
    pub fs: String,
    pub guest: String,
    #[serde(default)]
    pub read_only: bool,
}

/// `network:` — what an entry importing `wasi:sockets` may reach. By
/// default any public address: loopback and private ranges (the host's own
/// services) must be opted into.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct NetworkSpec {
    /// If set, only these `ADDR[/LEN]` ranges.
    #[serde(default)]
    pub allow: Vec<String>,
    /// These `ADDR[/LEN]` ranges are refused.
    #[serde(default)]
    pub deny: Vec<String>,
    #[serde(default)]
    pub allow_loopback: bool,
    #[serde(default)]
    pub allow_private: bool,
    /// `ip-name-lookup` (default: allowed).
    pub name_lookup: Option<bool>,
}

#[derive(Debug, Clone, Deserialize, Default)]
pub struct PoolSpec {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub max_size: Option<usize>,
    pub size: Option<usize>,
    pub workers: Option<usize>,
    pub buffer: Option<usize>,
}

#[derive(Debug, Clone, Deserialize, Default)]
pub struct LimitsSpec {
    pub max_execution_ms: Option<u64>,
    pub memory_bytes: Option<u64>,
    pub max_retained_memory_bytes: Option<u64>,
    pub retained_memory_check_interval: Option<u64>,
    pub max_open_sockets: Option<u64>,
    pub socket_timeout_ms: Option<u64>,
}

#[derive(Debug, Clone, Deserialize, Default)]
pub struct OptionsSpec {
    pub limits: Option<LimitsSpec>,
}

/// `function.wasm` / `function.wat`.
#[derive(Debug, Clone, Deserialize)]
pub struct FunctionSpec {
    pub fs: Option<String>,
    pub path: Option<String>,
    pub hash: Option<String>,
    pub source: Option<String>,
    pub method: String,
    pub wit: Option<String>,
    #[serde(default)]
    pub imports: Vec<String>,
    #[serde(default)]
    pub wasi: WasiSpec,
    pub network: Option<NetworkSpec>,
    #[serde(default)]
    pub pool: PoolSpec,
    /// Deprecated spelling of `options.limits`.
    pub limits: Option<LimitsSpec>,
    #[serde(default)]
    pub options: OptionsSpec,
    pub transport: Option<String>,
    #[serde(skip)]
    pub wat: bool,
}

impl FunctionSpec {
    /// Served over HTTP by `http.endpoint` entries.
    pub fn wasi_http(&self) -> bool {
        self.transport.as_deref() == Some("wasi-http")
    }

    pub fn limits(&self) -> LimitsSpec {
        self.options
            .limits
            .clone()
            .or_else(|| self.limits.clone())
            .unwrap_or_default()
    }
}

#[derive(Deserialize)]
struct FileDoc {
    #[allow(dead_code)]
    version: Option<serde_yaml::Value>,
    namespace: String,
    #[serde(default)]
    entries: Vec<serde_yaml::Value>,
}

/// `ns:name` as written, or `name` in the current namespace.
pub fn qualify(namespace: &str, reference: &str) -> String {
    if reference.contains(':') {
        reference.to_string()
    } else {
        format!("{namespace}:{reference}")
    }
}

/// Loads one definition file, or every `_index.yaml` below a folder.
pub fn load(path: &Path) -> Result<BTreeMap<String, Entry>> {
    let mut files = Vec::new();
    if path.is_dir() {
        collect(path, &mut files)?;
        if files.is_empty() {
            bail!("{}: no _index.yaml files found", path.display());
        }
    } else {
        files.push(path.to_path_buf());
    }
    let mut entries = BTreeMap::new();
    for f in files {
        for e in load_file(&f)? {
            if let Some(prev) = entries.get(&e.id) {
                let prev: &Entry = prev;
                bail!(
                    "{}: entry `{}` is already defined in {}",
                    f.display(),
                    e.id,
                    prev.file.display()
                );
            }
            entries.insert(e.id.clone(), e);
        }
    }
    Ok(entries)
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let mut items: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| anyhow!("{}: {e}", dir.display()))?
        .flatten()
        .map(|e| e.path())
        .collect();
    items.sort();
    for p in items {
        if p.is_dir() {
            collect(&p, out)?;
        } else if p.file_name().is_some_and(|n| n == "_index.yaml") {
            out.push(p);
        }
    }
    Ok(())
}

fn load_file(file: &Path) -> Result<Vec<Entry>> {
    let text = std::fs::read_to_string(file).map_err(|e| anyhow!("{}: cannot read: {e}", file.display()))?;
    let doc: FileDoc = serde_yaml::from_str(&text).map_err(|e| anyhow!("{}: {e}", file.display()))?;
    let mut out = Vec::new();
    for (i, raw) in doc.entries.iter().enumerate() {
        let name = raw
            .get("name")
            .and_then(|n| n.as_str())
            .ok_or_else(|| anyhow!("{}: entry #{}: field `name`: missing", file.display(), i + 1))?;
        let id = format!("{}:{name}", doc.namespace);
        let fail = |field: &str, msg: &dyn std::fmt::Display| {
            anyhow!("{}: entry `{id}`: field `{field}`: {msg}", file.display())
        };
        let kind_name = raw
            .get("kind")
            .and_then(|k| k.as_str())
            .ok_or_else(|| fail("kind", &"missing"))?;
        let kind = match kind_name {
            "fs.directory" => {
                let d: FsDirectory = typed(raw, &fail)?;
                if d.mode_bits().is_none_or(|m| m > 0o7777) {
                    return Err(fail("mode", &"must be octal permission bits such as \"0755\""));
                }
                Kind::FsDirectory(d)
            }
            "env.variable" => Kind::EnvVariable(typed(raw, &fail)?),
            "env.storage.os" => Kind::EnvStorage(EnvStorage::Os),
            "env.storage.static" => {
                #[derive(Deserialize)]
                struct S {
                    #[serde(default)]
                    values: BTreeMap<String, String>,
                }
                let s: S = typed(raw, &fail)?;
                Kind::EnvStorage(EnvStorage::Static(s.values))
            }
            "env.storage.file" => {
                #[derive(Deserialize)]
                struct F {
                    file_path: String,
                    #[serde(default)]
                    auto_create: bool,
                }
                let f: F = typed(raw, &fail)?;
                let path = file.parent().unwrap_or(Path::new(".")).join(&f.file_path);
                Kind::EnvStorage(EnvStorage::File {
                    path,
                    auto_create: f.auto_create,
                })
            }
            "function.wasm" | "function.wat" => {
                let mut spec: FunctionSpec = typed(raw, &fail)?;
                spec.wat = kind_name == "function.wat";
                check_function(&spec, &fail)?;
                Kind::Function(Box::new(spec))
            }
            "http.endpoint" => {
                let e: HttpEndpoint = typed(raw, &fail)?;
                if http::Method::from_bytes(e.method.to_ascii_uppercase().as_bytes()).is_err() {
                    return Err(fail("method", &format!("`{}` is not an HTTP method", e.method)));
                }
                if !e.path.starts_with('/') {
                    return Err(fail("path", &"must start with `/`"));
                }
                Kind::HttpEndpoint(e)
            }
            other => Kind::Other(other.to_string()),
        };
        out.push(Entry {
            id: id.clone(),
            namespace: doc.namespace.clone(),
            file: file.to_path_buf(),
            kind,
        });
    }
    Ok(out)
}

/// Deserialises an entry, reporting the path of a bad field.
fn typed<T: serde::de::DeserializeOwned>(
    raw: &serde_yaml::Value,
    fail: &dyn Fn(&str, &dyn std::fmt::Display) -> anyhow::Error,
) -> Result<T> {
    serde_path_to_error::deserialize(raw.clone()).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        // serde names a missing field in its message, not in the path.
        let field = inner
            .strip_prefix("missing field `")
            .and_then(|r| r.split('`').next())
            .map(String::from)
            .unwrap_or(if path == "." { String::from("(entry)") } else { path });
        fail(&field, &inner)
    })
}

fn check_function(spec: &FunctionSpec, fail: &dyn Fn(&str, &dyn std::fmt::Display) -> anyhow::Error) -> Result<()> {
    if spec.wat {
        if spec.source.is_none() {
            return Err(fail("source", &"missing (inline text or file://PATH)"));
        }
    } else {
        for (field, v) in [("fs", &spec.fs), ("path", &spec.path), ("hash", &spec.hash)] {
            if v.is_none() {
                return Err(fail(field, &"missing"));
            }
        }
        let hash = spec.hash.as_deref().unwrap_or_default();
        let hex = hash
            .strip_prefix("sha256:")
            .ok_or_else(|| fail("hash", &"must be `sha256:<64 hex digits>`"))?;
        if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(fail("hash", &"must be `sha256:<64 hex digits>`"));
        }
    }
    if let Some(cwd) = &spec.wasi.cwd {
        if !cwd.starts_with('/') {
            return Err(fail("wasi.cwd", &"must be an absolute path"));
        }
    }
    let mut guests = std::collections::HashSet::new();
    for (i, m) in spec.wasi.mounts.iter().enumerate() {
        if !m.guest.starts_with('/') {
            return Err(fail(&format!("wasi.mounts[{i}].guest"), &"must be an absolute path"));
        }
        if !guests.insert(m.guest.clone()) {
            return Err(fail(
                &format!("wasi.mounts[{i}].guest"),
                &format!("`{}` is mounted twice", m.guest),
            ));
        }
    }
    if let Some(net) = &spec.network {
        if !spec.imports.iter().any(|i| i == "wasi:sockets" || i == "wasi:http") {
            return Err(fail(
                "network",
                &"is set, but the entry imports neither `wasi:sockets` nor `wasi:http`",
            ));
        }
        for (list, ranges) in [("allow", &net.allow), ("deny", &net.deny)] {
            for (i, r) in ranges.iter().enumerate() {
                crate::wasi::sockets::parse_range(r).map_err(|e| fail(&format!("network.{list}[{i}]"), &e))?;
            }
        }
    }
    if let Some(t) = &spec.transport {
        if !["payload", "wasi-http"].contains(&t.as_str()) {
            return Err(fail(
                "transport",
                &format!("unknown transport `{t}` (payload or wasi-http)"),
            ));
        }
    }
    if let Some(kind) = &spec.pool.kind {
        if !["inline", "lazy", "static", "adaptive"].contains(&kind.as_str()) {
            return Err(fail(
                "pool.type",
                &format!("unknown pool type `{kind}` (inline, lazy, static or adaptive)"),
            ));
        }
    }
    Ok(())
}
