//! The files a registry reads, read safely: its folder walked without
//! following links out of it or round in a loop, and the files entries
//! name (definitions, binaries, sources) kept inside their base folder,
//! regular files only and capped in size, so that `/dev/zero`, a FIFO or a
//! `../../` path cannot exhaust or escape the host.

use anyhow::{anyhow, bail, Result};
use std::collections::HashSet;
use std::io::Read;
use std::path::{Path, PathBuf};

/// The largest definition file read (`_index.yaml`).
pub const MAX_DEFINITION_BYTES: u64 = 16 << 20;
/// The largest binary or source file an entry may name.
pub const MAX_CODE_BYTES: u64 = 512 << 20;
/// Folders deeper than this below the registry root are not walked.
const MAX_FOLDER_DEPTH: usize = 64;

/// Every `_index.yaml` below `root`, in path order, and a message for each
/// link or folder that was not followed.
pub fn index_files(root: &Path) -> Result<(Vec<PathBuf>, Vec<String>)> {
    let real_root = root.canonicalize().map_err(|e| anyhow!("{}: {e}", root.display()))?;
    let mut walk = Walk {
        root: real_root.clone(),
        seen: HashSet::from([real_root]),
        files: Vec::new(),
        refused: Vec::new(),
    };
    walk.folder(root, 0)?;
    Ok((walk.files, walk.refused))
}

struct Walk {
    root: PathBuf,
    /// Real paths of folders already walked: a link back to one is a loop.
    seen: HashSet<PathBuf>,
    files: Vec<PathBuf>,
    refused: Vec<String>,
}

impl Walk {
    fn folder(&mut self, dir: &Path, depth: usize) -> Result<()> {
        let mut items: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|e| anyhow!("{}: {e}", dir.display()))?
            .flatten()
            .map(|e| e.path())
            .collect();
        items.sort();
        for p in items {
            let Ok(meta) = std::fs::symlink_metadata(&p) else {
                continue;
            };
            let is_link = meta.file_type().is_symlink();
            if !p.is_dir() {
                if p.file_name().is_some_and(|n| n == "_index.yaml") {
                    match inside(&self.root, &p) {
                        Ok(_) => self.files.push(p),
                        Err(e) => self.refused.push(e),
                    }
                }
                continue;
            }
            let real = match inside(&self.root, &p) {
                Ok(real) => real,
                Err(e) => {
                    self.refused.push(e);
                    continue;
                }
            };
            if !self.seen.insert(real.clone()) {
                if is_link {
                    self.refused.push(format!(
                        "{}: link loop (leads back to {}), not followed",
                        p.display(),
                        real.display()
                    ));
                }
                continue;
            }
            if depth + 1 > MAX_FOLDER_DEPTH {
                self.refused.push(format!(
                    "{}: more than {MAX_FOLDER_DEPTH} folders deep, not walked",
                    p.display()
                ));
                continue;
            }
            self.folder(&p, depth + 1)?;
        }
        Ok(())
    }
}

/// `path` with `.` and `..` resolved by their names alone.
fn lexical(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    out
}

/// The real path of `path`, which must lie inside `base` (already real):
/// by its name (`..` may not climb out) and once links are resolved.
fn inside(base: &Path, path: &Path) -> Result<PathBuf, String> {
    let named = lexical(&std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()));
    let real_parent = named.parent().and_then(|p| p.canonicalize().ok());
    if !named.starts_with(base) && !real_parent.is_some_and(|p| p.starts_with(base)) {
        return Err(format!("{} is outside {}", path.display(), base.display()));
    }
    let real = path
        .canonicalize()
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if real.starts_with(base) {
        Ok(real)
    } else {
        Err(format!(
            "{} leads outside {} (to {}), not followed",
            path.display(),
            base.display(),
            real.display()
        ))
    }
}

/// The real path of `path`, which must lie inside the real folder `base`,
/// called `what` in errors ("the registry folder").
pub fn within(base: &Path, path: &Path, what: &str) -> Result<PathBuf> {
    inside(base, path).map_err(|e| {
        let e = e.trim_end_matches(", not followed");
        anyhow!(e.replacen(
            &format!("outside {}", base.display()),
            &format!("outside {what} {}", base.display()),
            1
        ))
    })
}

/// Reads a regular file of at most `max` bytes.
pub fn read_capped(path: &Path, max: u64) -> Result<Vec<u8>> {
    // Non-blocking, so that opening a FIFO does not wait for a writer; the
    // type is checked on the opened file, not on a path that may change.
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, libc::O_NONBLOCK);
    let file = options
        .open(path)
        .map_err(|e| anyhow!("cannot read {}: {e}", path.display()))?;
    let meta = file
        .metadata()
        .map_err(|e| anyhow!("cannot read {}: {e}", path.display()))?;
    if !meta.is_file() {
        bail!("{} is not a regular file", path.display());
    }
    if meta.len() > max {
        bail!("{} is {} bytes, over the limit of {max}", path.display(), meta.len());
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    // The file may grow while read: never past the limit.
    file.take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| anyhow!("cannot read {}: {e}", path.display()))?;
    if bytes.len() as u64 > max {
        bail!("{} grew over the limit of {max} bytes while read", path.display());
    }
    Ok(bytes)
}
