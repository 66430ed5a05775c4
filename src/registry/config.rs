//! Wippy definition files: YAML with `version`, `namespace` and `entries`,
//! loaded from one file or a tree of `_index.yaml` files. Every error names
//! the file, the entry and the field.

use crate::pool::PoolKind;
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
    /// `process.wasm`: a function run as a process (spawned, supervised,
    /// or a command).
    Process(Box<ProcessSpec>),
    /// `process.service`: a supervised process.
    Service(Box<ServiceSpec>),
    /// `function.lua`.
    Lua(Box<LuaSpec>),
    /// `library.lua`: Lua source other Lua entries `require`.
    LuaLibrary(Box<LuaSpec>),
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

/// `pool:` as written (Wippy's fields); [`PoolSpec::config`] checks it.
#[derive(Debug, Clone, Deserialize, Default)]
pub struct PoolSpec {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub size: Option<i64>,
    pub workers: Option<i64>,
    pub buffer: Option<i64>,
    pub max_size: Option<i64>,
    /// Run the calls on a dedicated pool of `workers` OS threads.
    pub worker_class: Option<String>,
    /// Make one instance at load instead of at the first call.
    #[serde(default)]
    pub warm_start: bool,
    /// Every call gets an instance as fresh: one reset to its state after
    /// instantiation (`Store::reset`), or a new one.
    #[serde(default)]
    pub fresh_instances: bool,
}

/// A checked `pool:`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolConfig {
    pub kind: PoolKind,
    /// `worker_class`: its name and thread count.
    pub worker_class: Option<(String, usize)>,
    pub warm_start: bool,
    pub fresh_instances: bool,
}

impl PoolSpec {
    /// The pool this declares, Wippy's way; or the field at fault and why.
    ///
    /// - `inline`: one instance; `lazy` / `adaptive`: up to `max_size`
    ///   (default 16); `static`: `workers`, else `size`, else 8, with a
    ///   queue of `buffer` (default workers × 64).
    /// - No `type`: `workers` picks static; `size` alone picks inline;
    ///   otherwise lazy up to `max_size` (default 100).
    /// - `worker_class`: calls run on `workers` dedicated threads (default
    ///   the cores, at most 4), on a lazy pool of instances (`type` is
    ///   ignored, as in Wippy).
    pub fn config(&self) -> std::result::Result<PoolConfig, (String, String)> {
        let field = |name: &str, v: Option<i64>| -> std::result::Result<usize, (String, String)> {
            match v {
                Some(n) if n < 0 => Err((format!("pool.{name}"), format!("must not be negative (got {n})"))),
                Some(n) => Ok(n as usize),
                None => Ok(0),
            }
        };
        let (size, workers, buffer, max_size) = (
            field("size", self.size)?,
            field("workers", self.workers)?,
            field("buffer", self.buffer)?,
            field("max_size", self.max_size)?,
        );
        let or = |n: usize, default: usize| if n == 0 { default } else { n };
        let refuse = |f: &str, why: &str| Err((format!("pool.{f}"), why.to_string()));
        if let Some(class) = &self.worker_class {
            if class.trim().is_empty() {
                return refuse("worker_class", "must name a class (such as `wasm`)");
            }
            if buffer > 0 {
                return refuse(
                    "buffer",
                    "does not apply with `worker_class` (calls wait on the threads)",
                );
            }
            return Ok(PoolConfig {
                kind: PoolKind::Lazy { max: or(max_size, 100) },
                worker_class: Some((class.clone(), or(workers, crate::pool::workers::default_threads()))),
                warm_start: self.warm_start,
                fresh_instances: self.fresh_instances,
            });
        }
        let kind = match self.kind.as_deref() {
            Some("inline") => {
                for (f, v) in [("workers", workers), ("buffer", buffer), ("max_size", max_size)] {
                    if v > 0 {
                        return refuse(f, "does not apply to an inline pool (one instance)");
                    }
                }
                if size > 1 {
                    return refuse("size", "an inline pool has one instance");
                }
                PoolKind::Inline
            }
            Some(t @ ("lazy" | "adaptive")) => {
                for (f, v) in [("workers", workers), ("buffer", buffer)] {
                    if v > 0 {
                        return refuse(f, &format!("applies to static pools, not to a {t} pool (use max_size)"));
                    }
                }
                let max = or(max_size, 16);
                if t == "lazy" {
                    PoolKind::Lazy { max }
                } else {
                    PoolKind::Adaptive { max }
                }
            }
            Some("static") => {
                if max_size > 0 {
                    return refuse(
                        "max_size",
                        "applies to lazy and adaptive pools, not to a static pool (use workers)",
                    );
                }
                let workers = or(workers, or(size, 8));
                PoolKind::Static {
                    workers,
                    queue: or(buffer, workers * 64),
                }
            }
            Some(other) => {
                return Err((
                    "pool.type".into(),
                    format!("unknown pool type `{other}` (inline, lazy, static or adaptive)"),
                ))
            }
            None if workers > 0 => {
                if max_size > 0 {
                    return refuse(
                        "max_size",
                        "contradicts `workers`: workers make a static pool, max_size a lazy one",
                    );
                }
                PoolKind::Static {
                    workers,
                    queue: or(buffer, workers * 64),
                }
            }
            None if buffer > 0 => return refuse("buffer", "applies to static pools: give `workers` too"),
            None if size > 0 && max_size == 0 => PoolKind::Inline,
            None => PoolKind::Lazy { max: or(max_size, 100) },
        };
        Ok(PoolConfig {
            kind,
            worker_class: None,
            warm_start: self.warm_start,
            fresh_instances: self.fresh_instances,
        })
    }
}

/// `limits:` (under `options`, or deprecated at the root).
#[derive(Debug, Clone, Deserialize, Default)]
pub struct LimitsSpec {
    /// A call's wall-clock budget; 0 is none.
    pub max_execution_ms: Option<i64>,
    /// Linear memory an instance may have (a wippy-wasm extension).
    pub memory_bytes: Option<i64>,
    /// A warm instance whose linear memory is over this after a call is
    /// retired instead of reused (default 64 MiB; 0 disables).
    pub max_retained_memory_bytes: Option<i64>,
    /// Calls between those checks (default 16; every call when the limit
    /// is given).
    pub retained_memory_check_interval: Option<i64>,
    pub max_open_sockets: Option<i64>,
    pub socket_timeout_ms: Option<i64>,
}

/// The default of `max_retained_memory_bytes`.
pub const DEFAULT_MAX_RETAINED_MEMORY: u64 = 64 << 20;

impl LimitsSpec {
    fn check(&self) -> std::result::Result<(), (String, String)> {
        for (name, v) in [
            ("max_execution_ms", self.max_execution_ms),
            ("memory_bytes", self.memory_bytes),
            ("max_retained_memory_bytes", self.max_retained_memory_bytes),
            ("retained_memory_check_interval", self.retained_memory_check_interval),
            ("max_open_sockets", self.max_open_sockets),
            ("socket_timeout_ms", self.socket_timeout_ms),
        ] {
            if let Some(n) = v.filter(|n| *n < 0) {
                return Err((
                    format!("options.limits.{name}"),
                    format!("must not be negative (got {n})"),
                ));
            }
        }
        Ok(())
    }

    fn get(v: Option<i64>) -> Option<u64> {
        v.map(|n| n.max(0) as u64)
    }

    /// `max_execution_ms`, if set and not 0.
    pub fn max_execution(&self) -> Option<std::time::Duration> {
        Self::get(self.max_execution_ms)
            .filter(|ms| *ms > 0)
            .map(std::time::Duration::from_millis)
    }

    pub fn memory_bytes(&self) -> Option<u64> {
        Self::get(self.memory_bytes)
    }

    pub fn max_open_sockets(&self) -> Option<u64> {
        Self::get(self.max_open_sockets)
    }

    pub fn socket_timeout(&self) -> Option<std::time::Duration> {
        Self::get(self.socket_timeout_ms).map(std::time::Duration::from_millis)
    }

    /// The retained-memory rule: (limit, calls between checks), or `None`
    /// when disabled.
    pub fn retained_memory(&self) -> Option<(u64, u64)> {
        let limit = Self::get(self.max_retained_memory_bytes).unwrap_or(DEFAULT_MAX_RETAINED_MEMORY);
        let default_interval = if self.max_retained_memory_bytes.is_some() {
            1
        } else {
            16
        };
        let interval = Self::get(self.retained_memory_check_interval)
            .filter(|n| *n > 0)
            .unwrap_or(default_interval);
        (limit > 0).then_some((limit, interval))
    }
}

#[derive(Debug, Clone, Deserialize, Default)]
pub struct OptionsSpec {
    pub limits: Option<LimitsSpec>,
}

/// `process.wasm`: the fields of `function.wasm` (its `pool` is ignored:
/// each process has its own instance), and `meta.command` for commands.
#[derive(Debug, Clone)]
pub struct ProcessSpec {
    pub function: FunctionSpec,
    pub command: Option<CommandMeta>,
}

/// `meta.command`: run with `wippy-wasm run -c PATH NAME`.
#[derive(Debug, Clone, Deserialize)]
pub struct CommandMeta {
    pub name: String,
    #[serde(default)]
    pub short: String,
}

/// `process.service`: keeps a process running.
#[derive(Debug, Clone, Deserialize)]
pub struct ServiceSpec {
    /// The `process.wasm` entry.
    pub process: String,
    /// Its arguments (Wippy also calls them `input`).
    #[serde(default, alias = "input")]
    pub args: Vec<serde_json::Value>,
    /// The process host (accepted; one host runs every process here).
    pub host: Option<String>,
    #[serde(default)]
    pub lifecycle: LifecycleSpec,
}

/// `lifecycle:` of a service (Wippy's fields; durations as `1s`, `250ms`).
#[derive(Debug, Clone, Deserialize, Default)]
pub struct LifecycleSpec {
    #[serde(default)]
    pub auto_start: bool,
    #[serde(default)]
    pub restart: RestartSpec,
    /// How long a stopping service's process may take (default 10s).
    pub stop_timeout: Option<DurationSpec>,
    /// Running this long resets the restart count (default 5s).
    pub stable_threshold: Option<DurationSpec>,
    // Accepted for Wippy compatibility; not acted on.
    pub start_timeout: Option<DurationSpec>,
    #[serde(default, alias = "depends_on")]
    pub requires: Vec<String>,
    pub startup: Option<String>,
    pub security: Option<serde_yaml::Value>,
}

/// `lifecycle.restart:` (0 means the default, as in Wippy).
#[derive(Debug, Clone, Deserialize, Default)]
pub struct RestartSpec {
    /// Wait before the first restart (default 1s).
    pub initial_delay: Option<DurationSpec>,
    /// The longest wait (default 90s).
    pub max_delay: Option<DurationSpec>,
    /// Each wait is the last times this (default 2.0).
    pub backoff_factor: Option<f64>,
    /// ± this fraction of each wait, at random (default 0.1).
    pub jitter: Option<f64>,
    /// Restarts before the service is given up (default 0: never).
    pub max_attempts: Option<u32>,
}

/// A duration: `"90s"`, `"250ms"`, `"2m"`, `"1h"`, `"1.5s"`, or a number of
/// milliseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DurationSpec(pub std::time::Duration);

impl<'de> Deserialize<'de> for DurationSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let v = serde_yaml::Value::deserialize(d)?;
        let parsed = match &v {
            serde_yaml::Value::Number(n) => n
                .as_f64()
                .map(|ms| std::time::Duration::from_secs_f64(ms.max(0.0) / 1000.0)),
            serde_yaml::Value::String(s) => parse_duration(s),
            _ => None,
        };
        parsed.map(DurationSpec).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "`{}` is not a duration (such as 1s, 250ms, 2m)",
                serde_yaml::to_string(&v).unwrap_or_default().trim()
            ))
        })
    }
}

/// Parses a Go-style duration: a number and a unit (`ns`, `us`, `ms`, `s`,
/// `m`, `h`), possibly several (`1m30s`).
pub fn parse_duration(s: &str) -> Option<std::time::Duration> {
    let mut rest = s.trim();
    if rest.is_empty() {
        return None;
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let num_end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let (num, tail) = rest.split_at(num_end);
        let value: f64 = num.parse().ok()?;
        let unit_end = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_end);
        let secs = match unit {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        total += value * secs;
        rest = tail;
    }
    Some(std::time::Duration::from_secs_f64(total))
}

impl LifecycleSpec {
    fn check(&self) -> std::result::Result<(), (String, String)> {
        let r = &self.restart;
        if r.backoff_factor.is_some_and(|f| !f.is_finite() || f < 0.0) {
            return Err((
                "lifecycle.restart.backoff_factor".into(),
                "must be a number >= 1 (or 0 for the default)".into(),
            ));
        }
        if r.jitter.is_some_and(|j| !(0.0..=1.0).contains(&j)) {
            return Err((
                "lifecycle.restart.jitter".into(),
                "must be a fraction between 0 and 1".into(),
            ));
        }
        Ok(())
    }
}

/// `function.lua` / `library.lua`.
#[derive(Debug, Clone, Deserialize)]
pub struct LuaSpec {
    /// Inline Lua, or `file://PATH` relative to the definition file.
    pub source: String,
    /// The function to call (`function.lua`).
    pub method: Option<String>,
    /// Built-in modules the code may `require` (`funcs`, `json`, `time`,
    /// `logger`).
    #[serde(default)]
    pub modules: Vec<String>,
    /// `alias: namespace:name` of `library.lua` entries, for `require(alias)`.
    #[serde(default)]
    pub imports: BTreeMap<String, String>,
    #[serde(default)]
    pub pool: PoolSpec,
    /// Deprecated spelling of `options.limits`.
    pub limits: Option<LimitsSpec>,
    #[serde(default)]
    pub options: OptionsSpec,
}

impl LuaSpec {
    pub fn limits(&self) -> LimitsSpec {
        self.options
            .limits
            .clone()
            .or_else(|| self.limits.clone())
            .unwrap_or_default()
    }
}

/// `function.wasm` / `function.wat`.
#[derive(Debug, Clone, Deserialize)]
pub struct FunctionSpec {
    pub fs: Option<String>,
    pub path: Option<String>,
    pub hash: Option<String>,
    pub source: Option<String>,
    #[serde(default)]
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

/// A problem found while loading: the entry it breaks (when known) and a
/// message naming the file, the entry and the field.
#[derive(Debug, Clone)]
pub struct Problem {
    pub id: Option<String>,
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// What reading the definition files found: the entries that parsed, the
/// problems that broke others, and warnings (fields and kinds this runtime
/// does not know, deprecated spellings).
#[derive(Debug, Default)]
pub struct Loaded {
    pub entries: BTreeMap<String, Entry>,
    pub problems: Vec<Problem>,
    pub warnings: Vec<String>,
}

/// Wippy kinds this runtime reads but does not run: no warning for them.
const KNOWN_OTHER_KINDS: &[&str] = &[
    "http.service",
    "http.router",
    "http.static",
    "process.host",
    "terminal.host",
    "registry.entry",
    "env.storage.memory",
    "env.storage.router",
];

/// Loads one definition file, or every `_index.yaml` below a folder. Each
/// file and each entry is read on its own: one that is broken is a
/// [`Problem`], and the rest still load.
///
/// # Errors
/// Only if `path` itself cannot be read, or a folder has no `_index.yaml`.
pub fn load(path: &Path) -> Result<Loaded> {
    let mut loaded = Loaded::default();
    let files = if path.is_dir() {
        let (files, refused) = super::files::index_files(path)?;
        loaded
            .problems
            .extend(refused.into_iter().map(|message| Problem { id: None, message }));
        if files.is_empty() {
            bail!("{}: no _index.yaml files found", path.display());
        }
        files
    } else if path.is_file() {
        vec![path.to_path_buf()]
    } else {
        bail!("{}: no such file or folder", path.display());
    };
    for f in files {
        let entries = match load_file(&f, &mut loaded) {
            Ok(e) => e,
            Err(e) => {
                loaded.problems.push(Problem {
                    id: None,
                    message: format!("{e:#}"),
                });
                continue;
            }
        };
        for e in entries {
            if let Some(prev) = loaded.entries.get(&e.id) {
                let message = format!(
                    "{}: entry `{}` is already defined in {}",
                    f.display(),
                    e.id,
                    prev.file.display()
                );
                loaded.problems.push(Problem {
                    id: Some(e.id.clone()),
                    message,
                });
                continue;
            }
            loaded.entries.insert(e.id.clone(), e);
        }
    }
    Ok(loaded)
}

/// YAML nested deeper than this is refused before it is parsed (the parse
/// of deep nesting is quadratic).
const MAX_YAML_DEPTH: usize = 64;

/// The deepest nesting of a YAML text, over-estimated cheaply: flow
/// brackets open outside quotes, plus block indentation and `- ` items.
/// The contents of block scalars (`|`, `>`: inline Lua, say) are text.
fn yaml_depth(text: &str) -> usize {
    let mut deepest = 0;
    let mut flow = 0usize;
    // The indentation of a line that opened a block scalar.
    let mut scalar: Option<usize> = None;
    for line in text.lines() {
        let body = line.trim_start_matches(' ');
        let indent = line.len() - body.len();
        match scalar {
            Some(at) if body.is_empty() || indent > at => continue,
            _ => scalar = None,
        }
        let mut block = indent / 2;
        let mut rest = body;
        while let Some(r) = rest.strip_prefix("- ").or_else(|| rest.strip_prefix("? ")) {
            block += 1;
            rest = r.trim_start_matches(' ');
        }
        let mut quote = None;
        for c in rest.chars() {
            match (quote, c) {
                (None, '#') => break,
                (None, '"' | '\'') => quote = Some(c),
                (Some(q), c) if c == q => quote = None,
                (None, '[' | '{') => {
                    flow += 1;
                    deepest = deepest.max(flow + block);
                }
                (None, ']' | '}') => flow = flow.saturating_sub(1),
                _ => {}
            }
        }
        let head = rest.split(" #").next().unwrap_or_default().trim_end();
        if flow == 0
            && head
                .trim_end_matches(['-', '+', '1', '2', '3', '4', '5', '6', '7', '8', '9'])
                .ends_with(['|', '>'])
        {
            scalar = Some(indent);
        }
        deepest = deepest.max(flow + block);
    }
    deepest
}

/// Reads a file's entries; an entry that does not parse is a problem of
/// its own, recorded in `loaded`.
fn load_file(file: &Path, loaded: &mut Loaded) -> Result<Vec<Entry>> {
    let bytes = super::files::read_capped(file, super::files::MAX_DEFINITION_BYTES)?;
    let text = String::from_utf8(bytes).map_err(|_| anyhow!("{}: not UTF-8 text", file.display()))?;
    if yaml_depth(&text) > MAX_YAML_DEPTH {
        bail!("{}: nested more than {MAX_YAML_DEPTH} levels deep", file.display());
    }
    let doc: FileDoc = serde_yaml::from_str(&text).map_err(|e| anyhow!("{}: {e}", file.display()))?;
    let mut out = Vec::new();
    for (i, raw) in doc.entries.iter().enumerate() {
        let Some(name) = raw.get("name").and_then(|n| n.as_str()) else {
            loaded.problems.push(Problem {
                id: None,
                message: format!("{}: entry #{}: field `name`: missing", file.display(), i + 1),
            });
            continue;
        };
        let id = format!("{}:{name}", doc.namespace);
        match entry_kind(file, &id, raw, &mut loaded.warnings) {
            Ok(kind) => out.push(Entry {
                id,
                namespace: doc.namespace.clone(),
                file: file.to_path_buf(),
                kind,
            }),
            Err(e) => loaded.problems.push(Problem {
                id: Some(id),
                message: format!("{e:#}"),
            }),
        }
    }
    Ok(out)
}

fn entry_kind(file: &Path, id: &str, raw: &serde_yaml::Value, warnings: &mut Vec<String>) -> Result<Kind> {
    let fail =
        |field: &str, msg: &dyn std::fmt::Display| anyhow!("{}: entry `{id}`: field `{field}`: {msg}", file.display());
    let kind_name = raw
        .get("kind")
        .and_then(|k| k.as_str())
        .ok_or_else(|| fail("kind", &"missing"))?;
    let mut unknown = Vec::new();
    let kind = match kind_name {
        "fs.directory" => {
            let d: FsDirectory = typed(raw, &fail, &mut unknown)?;
            if d.mode_bits().is_none_or(|m| m > 0o7777) {
                return Err(fail("mode", &"must be octal permission bits such as \"0755\""));
            }
            Kind::FsDirectory(d)
        }
        "env.variable" => Kind::EnvVariable(typed(raw, &fail, &mut unknown)?),
        "env.storage.os" => {
            #[derive(Deserialize)]
            struct O {}
            let _: O = typed(raw, &fail, &mut unknown)?;
            Kind::EnvStorage(EnvStorage::Os)
        }
        "env.storage.static" => {
            #[derive(Deserialize)]
            struct S {
                #[serde(default)]
                values: BTreeMap<String, String>,
            }
            let s: S = typed(raw, &fail, &mut unknown)?;
            Kind::EnvStorage(EnvStorage::Static(s.values))
        }
        "env.storage.file" => {
            #[derive(Deserialize)]
            struct F {
                file_path: String,
                #[serde(default)]
                auto_create: bool,
            }
            let f: F = typed(raw, &fail, &mut unknown)?;
            let path = file.parent().unwrap_or(Path::new(".")).join(&f.file_path);
            Kind::EnvStorage(EnvStorage::File {
                path,
                auto_create: f.auto_create,
            })
        }
        "function.wasm" | "function.wat" => {
            let mut spec: FunctionSpec = typed(raw, &fail, &mut unknown)?;
            spec.wat = kind_name == "function.wat";
            check_function(&spec, &fail)?;
            if spec.limits.is_some() {
                warnings.push(format!(
                    "{}: entry `{id}`: field `limits` is deprecated: use `options.limits`",
                    file.display()
                ));
            }
            Kind::Function(Box::new(spec))
        }
        "process.wasm" => {
            let mut spec: FunctionSpec = typed(raw, &fail, &mut unknown)?;
            if spec.method.is_empty() {
                spec.method = "main".into();
            }
            check_function(&spec, &fail)?;
            let command = match raw.get("meta").and_then(|m| m.get("command")) {
                Some(c) => {
                    Some(serde_yaml::from_value::<CommandMeta>(c.clone()).map_err(|e| fail("meta.command", &e))?)
                }
                None => None,
            };
            if command
                .as_ref()
                .is_some_and(|c| c.name.trim().is_empty() || c.name.contains(char::is_whitespace))
            {
                return Err(fail("meta.command.name", &"must be one word"));
            }
            Kind::Process(Box::new(ProcessSpec {
                function: spec,
                command,
            }))
        }
        "process.service" => {
            let spec: ServiceSpec = typed(raw, &fail, &mut unknown)?;
            spec.lifecycle.check().map_err(|(field, why)| fail(&field, &why))?;
            Kind::Service(Box::new(spec))
        }
        "function.lua" | "library.lua" => {
            let spec: LuaSpec = typed(raw, &fail, &mut unknown)?;
            let library = kind_name == "library.lua";
            match (&spec.method, library) {
                (None, false) => return Err(fail("method", &"missing: the Lua function to call")),
                (Some(_), true) => return Err(fail("method", &"a library.lua has no method: it exports a table")),
                _ => {}
            }
            spec.pool.config().map_err(|(field, why)| fail(&field, &why))?;
            if spec.limits.is_some() && spec.options.limits.is_some() {
                return Err(fail(
                    "limits",
                    &"is given twice: at the root (deprecated) and in `options.limits`",
                ));
            }
            spec.limits().check().map_err(|(field, why)| fail(&field, &why))?;
            if library {
                Kind::LuaLibrary(Box::new(spec))
            } else {
                Kind::Lua(Box::new(spec))
            }
        }
        "http.endpoint" => {
            let e: HttpEndpoint = typed(raw, &fail, &mut unknown)?;
            if http::Method::from_bytes(e.method.to_ascii_uppercase().as_bytes()).is_err() {
                return Err(fail("method", &format!("`{}` is not an HTTP method", e.method)));
            }
            if !e.path.starts_with('/') {
                return Err(fail("path", &"must start with `/`"));
            }
            Kind::HttpEndpoint(e)
        }
        other => {
            if !KNOWN_OTHER_KINDS.contains(&other) {
                warnings.push(format!(
                    "{}: entry `{id}`: kind `{other}` is unknown to wippy-wasm (the entry is ignored)",
                    file.display()
                ));
            }
            Kind::Other(other.to_string())
        }
    };
    for field in unknown {
        warnings.push(format!(
            "{}: entry `{id}`: field `{field}` is not a field of {kind_name} (ignored)",
            file.display()
        ));
    }
    Ok(kind)
}

/// Deserialises an entry (less `name`, `kind` and `meta`), reporting the
/// path of a bad field, and collecting the fields the type does not have.
fn typed<T: serde::de::DeserializeOwned>(
    raw: &serde_yaml::Value,
    fail: &dyn Fn(&str, &dyn std::fmt::Display) -> anyhow::Error,
    unknown: &mut Vec<String>,
) -> Result<T> {
    let mut fields = raw.clone();
    if let Some(map) = fields.as_mapping_mut() {
        for k in ["name", "kind", "meta"] {
            map.remove(k);
        }
    }
    let mut note = |path: serde_ignored::Path<'_>| unknown.push(path.to_string());
    let ignored = serde_ignored::Deserializer::new(fields, &mut note);
    serde_path_to_error::deserialize(ignored).map_err(|e| {
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
    if spec.method.is_empty() {
        return Err(fail("method", &"missing: the export to call"));
    }
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
    spec.pool.config().map_err(|(field, why)| fail(&field, &why))?;
    if spec.limits.is_some() && spec.options.limits.is_some() {
        return Err(fail(
            "limits",
            &"is given twice: at the root (deprecated) and in `options.limits`",
        ));
    }
    spec.limits().check().map_err(|(field, why)| fail(&field, &why))?;
    Ok(())
}
