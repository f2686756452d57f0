//! Shipping the project to a host (update method `sync`): the controller
//! sends a manifest of the working copy, the agent answers which files it
//! lacks or has in another version, the controller sends those, and the
//! agent deletes what the project no longer has. Every file is written
//! atomically; nothing needs rsync on either side.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Top-level names that are never shipped (and never deleted remotely).
pub const EXCLUDED: &[&str] = &[
    "work",
    "target",
    ".git",
    ".hg",
    ".batou",
    ".batou-lock",
    ".appenv",
    ".vagrant",
    ".kitchen",
];

/// One shipped path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Path relative to the project, `/`-separated.
    pub path: String,
    /// What it is.
    pub kind: Kind,
}

/// A file (with its content hash and permission bits), a symlink or a
/// directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Kind {
    /// Regular file.
    File {
        /// sha256, hex.
        sha256: String,
        /// Permission bits.
        mode: u32,
    },
    /// Symbolic link.
    Link {
        /// Its target.
        target: String,
    },
    /// Directory.
    Dir,
}

/// sha256 of bytes, hex.
pub fn sha256_hex(data: &[u8]) -> String {
    format!("{:x}", Sha256::digest(data))
}

/// The manifest of a project directory, sorted by path.
pub fn manifest(root: &Path) -> std::io::Result<Vec<Entry>> {
    let mut out = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        for e in fs::read_dir(root.join(&rel))? {
            let e = e?;
            let name = e.file_name().to_string_lossy().into_owned();
            if rel.as_os_str().is_empty() && EXCLUDED.contains(&name.as_str()) {
                continue;
            }
            let r = rel.join(&name);
            let meta = fs::symlink_metadata(e.path())?;
            let path = r.to_string_lossy().into_owned();
            let kind = if meta.file_type().is_symlink() {
                Kind::Link {
                    target: fs::read_link(e.path())?.to_string_lossy().into_owned(),
                }
            } else if meta.is_dir() {
                stack.push(r);
                Kind::Dir
            } else {
                Kind::File {
                    sha256: sha256_hex(&fs::read(e.path())?),
                    mode: meta.permissions().mode() & 0o7777,
                }
            };
            out.push(Entry { path, kind });
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

/// The files of `wanted` that `root` lacks or has in another version.
pub fn missing(root: &Path, wanted: &[Entry]) -> Vec<String> {
    let have: BTreeMap<String, Kind> = manifest(root)
        .unwrap_or_default()
        .into_iter()
        .map(|e| (e.path, e.kind))
        .collect();
    wanted
        .iter()
        .filter(|e| matches!(e.kind, Kind::File { .. }) && have.get(&e.path) != Some(&e.kind))
        .map(|e| e.path.clone())
        .collect()
}

fn checked(root: &Path, rel: &str) -> std::io::Result<PathBuf> {
    let p = Path::new(rel);
    if p.is_absolute()
        || p.components()
            .any(|c| matches!(c, std::path::Component::ParentDir))
    {
        return Err(std::io::Error::other(format!(
            "refusing path outside the project: {rel}"
        )));
    }
    Ok(root.join(p))
}

/// Writes one shipped file atomically with its mode.
pub fn write_file(root: &Path, rel: &str, data: &[u8], mode: u32) -> std::io::Result<()> {
    let target = checked(root, rel)?;
    if let Some(parent) = target.parent() {
        fs::create_dir_all(parent)?;
    }
    if fs::symlink_metadata(&target).is_ok_and(|m| m.is_dir()) {
        fs::remove_dir_all(&target)?;
    }
    let tmp = target.with_file_name(format!(
        ".{}.batou-ship-{}",
        target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        std::process::id()
    ));
    fs::write(&tmp, data)?;
    fs::set_permissions(&tmp, fs::Permissions::from_mode(mode))?;
    fs::rename(&tmp, &target)
}

/// Makes directories and symlinks as in `wanted` and deletes everything the
/// manifest does not have (outside the excluded top-level names). Returns
/// the number of deleted paths.
pub fn finish(root: &Path, wanted: &[Entry]) -> std::io::Result<usize> {
    for e in wanted {
        let target = checked(root, &e.path)?;
        match &e.kind {
            Kind::Dir => {
                if !target.is_dir() {
                    let _ = fs::remove_file(&target);
                    fs::create_dir_all(&target)?;
                }
            }
            Kind::Link { target: to } => {
                if fs::read_link(&target).ok().as_deref() != Some(Path::new(to)) {
                    if let Some(parent) = target.parent() {
                        fs::create_dir_all(parent)?;
                    }
                    if fs::symlink_metadata(&target).is_ok_and(|m| m.is_dir()) {
                        fs::remove_dir_all(&target)?;
                    } else {
                        let _ = fs::remove_file(&target);
                    }
                    std::os::unix::fs::symlink(to, &target)?;
                }
            }
            Kind::File { .. } => {}
        }
    }
    let keep: std::collections::BTreeSet<&str> = wanted.iter().map(|e| e.path.as_str()).collect();
    let mut deleted = 0;
    // Deepest first, so directories are empty when they go.
    let mut have = manifest(root)?;
    have.reverse();
    for e in have {
        if keep.contains(e.path.as_str()) {
            continue;
        }
        let p = root.join(&e.path);
        let r = match e.kind {
            Kind::Dir => fs::remove_dir_all(&p),
            _ => fs::remove_file(&p),
        };
        if r.is_ok() {
            deleted += 1;
        }
    }
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ships_changes_and_deletes_what_is_gone() {
        let src = tempfile::tempdir().unwrap();
        let dst = tempfile::tempdir().unwrap();
        fs::create_dir_all(src.path().join("components/tick")).unwrap();
        fs::write(src.path().join("components/tick/tick.sh"), "a").unwrap();
        fs::write(src.path().join("README"), "r").unwrap();
        fs::create_dir_all(src.path().join("work/x")).unwrap();
        fs::write(dst.path().join("stale"), "old").unwrap();
        fs::create_dir_all(dst.path().join("work")).unwrap();
        fs::write(dst.path().join("work/keep"), "state").unwrap();

        let m = manifest(src.path()).unwrap();
        assert!(m.iter().all(|e| !e.path.starts_with("work")));
        let need = missing(dst.path(), &m);
        assert_eq!(need, ["README", "components/tick/tick.sh"]);
        for p in &need {
            write_file(dst.path(), p, &fs::read(src.path().join(p)).unwrap(), 0o644).unwrap();
        }
        assert_eq!(finish(dst.path(), &m).unwrap(), 1);
        assert!(!dst.path().join("stale").exists());
        assert!(
            dst.path().join("work/keep").exists(),
            "work/ is the host's state"
        );
        assert!(missing(dst.path(), &m).is_empty());
        assert!(write_file(dst.path(), "../escape", b"x", 0o644).is_err());
    }
}
