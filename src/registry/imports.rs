//! `imports:` — the host capabilities an entry declares, and the check of a
//! component's imports against them.
//!
//! A declaration is a group (Wippy's host profiles, as our product page
//! defines them), `wasi1` (or an alias) for a core module that imports
//! WASI preview 1, or one interface by name (`wasi:cli/stdout`,
//! `wippy:runtime/funcs@0.1.0`), which grants just that interface. Type
//! imports (a world's own `record`s) and instances that export only types
//! are not capabilities: they need no declaration.

use crate::component::names::split_version;
use std::collections::BTreeSet;

/// Each group and the interfaces it grants.
pub const GROUPS: &[(&str, &[&str])] = &[
    ("wasi:io", &["wasi:io/error", "wasi:io/streams", "wasi:io/poll"]),
    // Kept as a spelling of its own: Wippy splits `poll` out of `wasi:io`.
    ("wasi:poll", &["wasi:io/poll"]),
    (
        "wasi:cli",
        &[
            "wasi:cli/environment",
            "wasi:cli/exit",
            "wasi:cli/stdin",
            "wasi:cli/stdout",
            "wasi:cli/stderr",
            "wasi:cli/terminal-input",
            "wasi:cli/terminal-output",
            "wasi:cli/terminal-stdin",
            "wasi:cli/terminal-stdout",
            "wasi:cli/terminal-stderr",
        ],
    ),
    (
        "wasi:clocks",
        &["wasi:clocks/wall-clock", "wasi:clocks/monotonic-clock"],
    ),
    (
        "wasi:filesystem",
        &["wasi:filesystem/types", "wasi:filesystem/preopens"],
    ),
    (
        "wasi:random",
        &[
            "wasi:random/random",
            "wasi:random/insecure",
            "wasi:random/insecure-seed",
        ],
    ),
    (
        "wasi:sockets",
        &[
            "wasi:sockets/network",
            "wasi:sockets/instance-network",
            "wasi:sockets/ip-name-lookup",
            "wasi:sockets/tcp",
            "wasi:sockets/tcp-create-socket",
            "wasi:sockets/udp",
            "wasi:sockets/udp-create-socket",
        ],
    ),
    ("wasi:http", &["wasi:http/types", "wasi:http/outgoing-handler"]),
    ("funcs", &["wippy:runtime/funcs"]),
];

/// The names of the WASI preview 1 group, for core modules.
pub const PREVIEW1: &[&str] = &["wasi1", "wasi-preview1", "preview1", "wasi_snapshot_preview1"];

/// What preview 1 is made of on WASI 0.2: the interfaces the preview1
/// adapter imports. A core module declaring `wasi1` gets these.
const PREVIEW1_INTERFACES: &[&str] = &[
    "wasi:cli/environment",
    "wasi:cli/exit",
    "wasi:cli/stdin",
    "wasi:cli/stdout",
    "wasi:cli/stderr",
    "wasi:cli/terminal-input",
    "wasi:cli/terminal-output",
    "wasi:cli/terminal-stdin",
    "wasi:cli/terminal-stdout",
    "wasi:cli/terminal-stderr",
    "wasi:clocks/wall-clock",
    "wasi:clocks/monotonic-clock",
    "wasi:filesystem/types",
    "wasi:filesystem/preopens",
    "wasi:io/error",
    "wasi:io/streams",
    "wasi:io/poll",
    "wasi:random/random",
];

/// The interfaces an entry's `imports:` grant.
#[derive(Debug, Default, Clone)]
pub struct Grants {
    interfaces: BTreeSet<String>,
    /// `wasi1` was declared.
    pub preview1: bool,
}

impl Grants {
    /// Resolves the declarations; an unknown one is an error naming it.
    /// `known` tells whether a single interface name is one the host has.
    pub fn resolve(declared: &[String], known: impl Fn(&str) -> bool) -> Result<Grants, String> {
        let mut g = Grants::default();
        for d in declared {
            let name = d.trim();
            if let Some((_, interfaces)) = GROUPS.iter().find(|(group, _)| *group == name) {
                g.interfaces.extend(interfaces.iter().map(|i| i.to_string()));
            } else if PREVIEW1.contains(&name) {
                g.preview1 = true;
            } else if name.contains('/') && known(split_version(name).0) {
                g.interfaces.insert(split_version(name).0.to_string());
            } else {
                let groups: Vec<&str> = GROUPS.iter().map(|(g, _)| *g).collect();
                return Err(format!(
                    "unknown import `{name}`: expected a group ({}, wasi1) or an interface the host provides, such as `wasi:cli/stdout`",
                    groups.join(", ")
                ));
            }
        }
        Ok(g)
    }

    /// Whether interface `name` (any version) is granted; `adapted` says the
    /// component is a core module wrapped with the preview1 adapter.
    pub fn allows(&self, name: &str, adapted: bool) -> bool {
        let base = split_version(name).0;
        self.interfaces.contains(base) || (adapted && self.preview1 && PREVIEW1_INTERFACES.contains(&base))
    }
}

/// The group that grants interface `name`, for the hint in an error.
pub fn group_of(name: &str) -> Option<&'static str> {
    let base = split_version(name).0;
    GROUPS
        .iter()
        .find(|(_, interfaces)| interfaces.contains(&base))
        .map(|(g, _)| *g)
}

/// What to add to `imports` for interface `name`; `adapted` says the
/// component is a core module wrapped with the preview1 adapter.
pub fn hint(name: &str, adapted: bool) -> Option<&'static str> {
    if adapted && PREVIEW1_INTERFACES.contains(&split_version(name).0) {
        return Some("wasi1");
    }
    group_of(name)
}
