//! Shipping the project to a host (update method `sync`): the controller
//! sends a manifest of the working copy, the agent answers which files it
//! lacks or has in another version, the controller streams those in
//! chunks, and the agent deletes what it shipped before and the project no
//! longer has. Nothing needs rsync on either side.
//!
//! The host's copy is owned by manifest: the agent records every path it
//! ships in `<target>/.batou/shipped.json` and only ever deletes paths of
//! that record. A target directory that is not empty and has no record is
//! refused ([`check_owned`]), so a careless `target_directory = ~` cannot
//! wipe a home directory. No symlink inside the target is followed (see
//! [`crate::safe_fs`]). The controller's manifest honours the project's
//! `.gitignore` on top of the fixed [`EXCLUDED`] names.

use crate::safe_fs::{self, AtomicFile};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Read, Write};
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

/// Where the agent records what it shipped, relative to the target.
pub const RECORD: &str = ".batou/shipped.json";

/// Bytes of a file per `ShipFile` frame.
pub const CHUNK: usize = 1 << 20;

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

/// A shipping failure, for the agent's `Failed` answer.
#[derive(Debug, thiserror::Error)]
pub enum ShipError {
    /// A path in the request could leave the target.
    #[error(transparent)]
    Path(#[from] safe_fs::PathError),
    /// The target holds things batou did not put there.
    #[error("refusing to deploy into {dir}: it is not empty and holds no record of an earlier deployment ({RECORD}), so batou would replace or delete what it did not make. It contains {listing}. Empty it or choose another target_directory.")]
    NotOwned {
        /// The target directory.
        dir: String,
        /// A few of its entries.
        listing: String,
    },
    /// A file arrived out of order or with other content than announced.
    #[error("{0}")]
    Protocol(String),
    /// Reading or writing failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        source: io::Error,
    },
}

fn io_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> ShipError {
    let what = what.into();
    move |source| ShipError::Io { what, source }
}

/// sha256 of bytes, hex.
pub fn sha256_hex(data: &[u8]) -> String {
    format!("{:x}", Sha256::digest(data))
}

/// sha256 of a file, read in chunks, hex.
pub fn sha256_file(path: &Path) -> io::Result<String> {
    let mut f = fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            return Ok(format!("{:x}", hasher.finalize()));
        }
        hasher.update(&buf[..n]);
    }
}

/// The manifest of a project directory, sorted by path: everything but
/// the [`EXCLUDED`] top-level names and what the project's `.gitignore`
/// files ignore.
pub fn manifest(root: &Path) -> io::Result<Vec<Entry>> {
    let walker = ignore::WalkBuilder::new(root)
        .hidden(false)
        .parents(false)
        .ignore(false)
        .git_global(false)
        .git_exclude(false)
        .require_git(false)
        .follow_links(false)
        .filter_entry(|e| {
            e.depth() != 1 || !EXCLUDED.contains(&e.file_name().to_string_lossy().as_ref())
        })
        .build();
    let mut out = Vec::new();
    for e in walker {
        let e = e.map_err(io::Error::other)?;
        if e.depth() == 0 {
            continue;
        }
        let rel = e
            .path()
            .strip_prefix(root)
            .map_err(io::Error::other)?
            .to_string_lossy()
            .into_owned();
        out.push(Entry {
            path: rel,
            kind: kind_of(e.path())?,
        });
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

/// What is at `path`, links not followed.
fn kind_of(path: &Path) -> io::Result<Kind> {
    let meta = fs::symlink_metadata(path)?;
    Ok(if meta.file_type().is_symlink() {
        Kind::Link {
            target: fs::read_link(path)?.to_string_lossy().into_owned(),
        }
    } else if meta.is_dir() {
        Kind::Dir
    } else {
        Kind::File {
            sha256: sha256_file(path)?,
            mode: meta.permissions().mode() & 0o7777,
        }
    })
}

/// Names in the target that batou itself keeps there before shipping.
const OWN: &[&str] = &[".batou", ".batou-lock"];

/// Refuses a target directory that is not empty (but for batou's own
/// `.batou/` and `.batou-lock`) and has no shipping record: its content is
/// not ours. A missing directory is fine.
pub fn check_owned(root: &Path) -> Result<(), ShipError> {
    if root.join(RECORD).is_file() {
        return Ok(());
    }
    let entries = match fs::read_dir(root) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_err(format!("reading {}", root.display()))(e)),
    };
    let mut names: Vec<String> = entries
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !OWN.contains(&n.as_str()))
        .collect();
    if names.is_empty() {
        return Ok(());
    }
    names.sort();
    let n = names.len();
    let mut listing = names
        .iter()
        .take(5)
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(", ");
    if n > 5 {
        listing.push_str(&format!(", … ({n} entries)"));
    }
    Err(ShipError::NotOwned {
        dir: root.display().to_string(),
        listing,
    })
}

fn read_record(root: &Path) -> Result<BTreeMap<String, Kind>, ShipError> {
    let path = root.join(RECORD);
    match fs::read(&path) {
        Ok(bytes) => {
            let entries: Vec<Entry> = serde_json::from_slice(&bytes).map_err(|e| {
                ShipError::Protocol(format!(
                    "the shipping record {} is damaged ({e}); remove the target's content and the record to start afresh",
                    path.display()
                ))
            })?;
            Ok(entries.into_iter().map(|e| (e.path, e.kind)).collect())
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(BTreeMap::new()),
        Err(e) => Err(io_err(format!("reading {}", path.display()))(e)),
    }
}

fn write_record(root: &Path, entries: &BTreeMap<String, Kind>) -> Result<(), ShipError> {
    let list: Vec<Entry> = entries
        .iter()
        .map(|(path, kind)| Entry {
            path: path.clone(),
            kind: kind.clone(),
        })
        .collect();
    let data = serde_json::to_vec(&list).map_err(|e| ShipError::Protocol(e.to_string()))?;
    let dir = root.join(".batou");
    safe_fs::private_dir(&dir).map_err(io_err(format!("creating {}", dir.display())))?;
    safe_fs::write_atomic(&root.join(RECORD), &data, 0o600)
        .map_err(io_err(format!("writing {}", root.join(RECORD).display())))
}

/// The file being received.
struct Incoming {
    path: String,
    file: AtomicFile,
    hasher: Sha256,
    sha256: String,
}

/// The agent's side of one shipping exchange.
pub struct Receiver {
    root: PathBuf,
    wanted: BTreeMap<String, Kind>,
    previous: BTreeMap<String, Kind>,
    incoming: Option<Incoming>,
}

impl Receiver {
    /// Checks the manifest and the target and records what will be
    /// shipped; returns the receiver and the files the host needs.
    pub fn start(root: &Path, manifest: Vec<Entry>) -> Result<(Receiver, Vec<String>), ShipError> {
        let mut wanted = BTreeMap::new();
        for e in manifest {
            let rel = safe_fs::relative(&e.path)?;
            if rel
                .components()
                .next()
                .is_some_and(|c| EXCLUDED.contains(&c.as_os_str().to_string_lossy().as_ref()))
            {
                return Err(ShipError::Protocol(format!(
                    "refusing to ship {}: {} is the host's own",
                    e.path,
                    rel.components()
                        .next()
                        .map(|c| c.as_os_str().to_string_lossy().into_owned())
                        .unwrap_or_default()
                )));
            }
            wanted.insert(rel.to_string_lossy().into_owned(), e.kind);
        }
        check_owned(root)?;
        fs::create_dir_all(root).map_err(io_err(format!("creating {}", root.display())))?;
        let previous = read_record(root)?;
        // Record the union first: an interrupted run still knows all it
        // may have written.
        let mut union = previous.clone();
        union.extend(wanted.iter().map(|(p, k)| (p.clone(), k.clone())));
        write_record(root, &union)?;
        let need = wanted
            .iter()
            .filter(|(path, kind)| {
                matches!(kind, Kind::File { .. }) && !is_current(root, path, kind)
            })
            .map(|(path, _)| path.clone())
            .collect();
        Ok((
            Receiver {
                root: root.to_path_buf(),
                wanted,
                previous,
                incoming: None,
            },
            need,
        ))
    }

    /// Takes one chunk of a needed file; `last` closes the file, checks
    /// its hash against the manifest and moves it into place.
    pub fn chunk(&mut self, path: &str, data: &[u8], last: bool) -> Result<(), ShipError> {
        if self.incoming.as_ref().is_some_and(|i| i.path != path) {
            return Err(ShipError::Protocol(format!(
                "a chunk of {path} arrived while {} was incomplete",
                self.incoming
                    .as_ref()
                    .map(|i| i.path.as_str())
                    .unwrap_or("")
            )));
        }
        let mut incoming = match self.incoming.take() {
            Some(i) => i,
            None => self.open(path)?,
        };
        incoming
            .file
            .write_all(data)
            .map_err(io_err(format!("writing {path}")))?;
        incoming.hasher.update(data);
        if !last {
            self.incoming = Some(incoming);
            return Ok(());
        }
        let got = format!("{:x}", incoming.hasher.finalize());
        if got != incoming.sha256 {
            return Err(ShipError::Protocol(format!(
                "{path} arrived with other content than announced (it changed while shipping?); deploy again"
            )));
        }
        incoming
            .file
            .commit()
            .map_err(io_err(format!("writing {path}")))
    }

    fn open(&self, path: &str) -> Result<Incoming, ShipError> {
        let Some(Kind::File { sha256, mode }) = self.wanted.get(path) else {
            return Err(ShipError::Protocol(format!(
                "{path} is not a file of the manifest"
            )));
        };
        let rel = safe_fs::relative(path)?;
        let target = self.root.join(&rel);
        if let Some(parent) = rel.parent() {
            safe_fs::make_dirs(&self.root, parent)
                .map_err(io_err(format!("creating the directories of {path}")))?;
        }
        if fs::symlink_metadata(&target).is_ok_and(|m| m.is_dir()) {
            safe_fs::remove(&target).map_err(io_err(format!("replacing {path}")))?;
        }
        let file = AtomicFile::create(&target, *mode).map_err(io_err(format!("writing {path}")))?;
        Ok(Incoming {
            path: path.to_string(),
            file,
            hasher: Sha256::new(),
            sha256: sha256.clone(),
        })
    }

    /// Makes directories and symlinks as in the manifest, deletes what was
    /// shipped before and is gone now, and records the new manifest.
    /// Returns the number of deleted paths.
    pub fn finish(mut self) -> Result<usize, ShipError> {
        if let Some(i) = self.incoming.take() {
            return Err(ShipError::Protocol(format!(
                "shipping ended while {} was incomplete",
                i.path
            )));
        }
        for (path, kind) in &self.wanted {
            self.place(path, kind)?;
        }
        self.remove_stale_temps();
        let deleted = self.delete_gone()?;
        write_record(&self.root, &self.wanted)?;
        Ok(deleted)
    }

    fn place(&self, path: &str, kind: &Kind) -> Result<(), ShipError> {
        let rel = PathBuf::from(path);
        let target = self.root.join(&rel);
        match kind {
            Kind::Dir => {
                safe_fs::make_dirs(&self.root, &rel).map_err(io_err(format!("creating {path}")))?
            }
            Kind::Link { target: to } => {
                if let Some(parent) = rel.parent() {
                    safe_fs::make_dirs(&self.root, parent)
                        .map_err(io_err(format!("creating the directories of {path}")))?;
                }
                if fs::read_link(&target).ok().as_deref() != Some(Path::new(to)) {
                    safe_fs::remove(&target).map_err(io_err(format!("replacing {path}")))?;
                    std::os::unix::fs::symlink(to, &target)
                        .map_err(io_err(format!("linking {path}")))?;
                }
            }
            Kind::File { .. } => {
                if !is_current(&self.root, path, kind) {
                    return Err(ShipError::Protocol(format!(
                        "{path} was not shipped although the host needs it"
                    )));
                }
            }
        }
        Ok(())
    }

    /// Removes what interrupted earlier shipments left: the temp files of
    /// agents that no longer run, in every directory the manifest has
    /// (never through a link).
    fn remove_stale_temps(&self) {
        let mut dirs = std::collections::BTreeSet::from([PathBuf::new()]);
        for (path, kind) in &self.wanted {
            let rel = PathBuf::from(path);
            match kind {
                Kind::Dir => dirs.insert(rel),
                _ => dirs.insert(rel.parent().map(Path::to_path_buf).unwrap_or_default()),
            };
        }
        for dir in dirs {
            if dir.as_os_str().is_empty()
                || !safe_fs::has_link_in_parents(&self.root, &dir.join("x"))
            {
                safe_fs::remove_stale_temps_in(&self.root.join(&dir));
            }
        }
    }

    /// Deletes, deepest first, what the previous record has and the new
    /// manifest does not, only where it still is what was shipped: a
    /// directory only when empty, never through a link.
    fn delete_gone(&self) -> Result<usize, ShipError> {
        let mut deleted = 0;
        for (path, kind) in self.previous.iter().rev() {
            if self.wanted.contains_key(path) {
                continue;
            }
            let rel = PathBuf::from(path);
            if safe_fs::relative(path).is_err() || safe_fs::has_link_in_parents(&self.root, &rel) {
                continue;
            }
            let target = self.root.join(&rel);
            let Ok(meta) = fs::symlink_metadata(&target) else {
                continue;
            };
            let removed = match kind {
                Kind::Dir if meta.is_dir() => fs::remove_dir(&target).is_ok(),
                Kind::File { .. } | Kind::Link { .. } if !meta.is_dir() => {
                    fs::remove_file(&target).map_err(io_err(format!("deleting {path}")))?;
                    true
                }
                _ => false,
            };
            if removed {
                deleted += 1;
            }
        }
        Ok(deleted)
    }
}

/// Whether `root/path` is a regular file (reached without links) with the
/// content and mode of `kind`.
fn is_current(root: &Path, path: &str, kind: &Kind) -> bool {
    let rel = PathBuf::from(path);
    if safe_fs::has_link_in_parents(root, &rel) {
        return false;
    }
    let target = root.join(&rel);
    match fs::symlink_metadata(&target) {
        Ok(m) if m.is_file() => kind_of(&target).ok().as_ref() == Some(kind),
        _ => false,
    }
}

/// Reads a file in [`CHUNK`]-sized pieces for `ShipFile` frames: calls
/// `send(data, last)` for each (at least once, also for an empty file).
pub fn read_chunks(
    path: &Path,
    mut send: impl FnMut(&[u8], bool) -> Result<(), String>,
) -> Result<(), String> {
    let mut f = fs::File::open(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut buf = vec![0u8; CHUNK];
    loop {
        // Fill a whole chunk (short reads happen) before sending it.
        let mut n = 0;
        while n < CHUNK {
            match f.read(&mut buf[n..]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
            }
        }
        let last = n < CHUNK;
        send(&buf[..n], last)?;
        if last {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ship(src: &Path, dst: &Path) -> Result<(usize, usize), ShipError> {
        let m = manifest(src).unwrap();
        let (mut r, need) = Receiver::start(dst, m)?;
        for p in &need {
            let mut chunks = Vec::new();
            read_chunks(&src.join(p), |d, last| {
                chunks.push((d.to_vec(), last));
                Ok(())
            })
            .unwrap();
            for (d, last) in chunks {
                r.chunk(p, &d, last)?;
            }
        }
        Ok((need.len(), r.finish()?))
    }

    #[test]
    fn ships_changes_and_deletes_only_what_it_shipped() {
        let src = tempfile::tempdir().unwrap();
        let dst = tempfile::tempdir().unwrap();
        fs::create_dir_all(src.path().join("components/tick")).unwrap();
        fs::write(src.path().join("components/tick/tick.sh"), "a").unwrap();
        fs::write(src.path().join("README"), "r").unwrap();
        fs::create_dir_all(src.path().join("work/x")).unwrap();
        assert_eq!(ship(src.path(), dst.path()).unwrap(), (2, 0));
        // The host's own state, and a file someone put there.
        fs::create_dir_all(dst.path().join("work")).unwrap();
        fs::write(dst.path().join("work/keep"), "state").unwrap();
        fs::write(dst.path().join("components/local-note"), "mine").unwrap();
        fs::remove_file(src.path().join("README")).unwrap();
        fs::remove_dir_all(src.path().join("components")).unwrap();
        // README, tick.sh and the tick directory; components/ keeps the
        // note.
        assert_eq!(ship(src.path(), dst.path()).unwrap(), (0, 3));
        assert!(!dst.path().join("README").exists());
        assert!(!dst.path().join("components/tick").exists());
        assert!(dst.path().join("work/keep").exists(), "work/ is the host's");
        assert!(
            dst.path().join("components/local-note").exists(),
            "never shipped, never deleted"
        );
        assert_eq!(ship(src.path(), dst.path()).unwrap(), (0, 0));
    }

    #[test]
    fn refuses_a_target_with_foreign_content() {
        let src = tempfile::tempdir().unwrap();
        let home = tempfile::tempdir().unwrap();
        fs::write(src.path().join("README"), "r").unwrap();
        fs::create_dir(home.path().join(".ssh")).unwrap();
        fs::write(home.path().join(".ssh/authorized_keys"), "key").unwrap();
        fs::write(home.path().join("notes.txt"), "n").unwrap();
        let err = ship(src.path(), home.path()).unwrap_err().to_string();
        assert!(
            err.starts_with(&format!(
                "refusing to deploy into {}: it is not empty and holds no record",
                home.path().display()
            )),
            "{err}"
        );
        assert!(err.contains("It contains .ssh, notes.txt."), "{err}");
        assert!(home.path().join(".ssh/authorized_keys").exists());
        assert!(!home.path().join("README").exists());
        assert!(!home.path().join(RECORD).exists());
    }

    #[test]
    fn rejects_paths_that_leave_the_target() {
        let dst = tempfile::tempdir().unwrap();
        for bad in [
            "../escape",
            "/etc/x",
            "",
            ".",
            "a/../../b",
            "work/x",
            ".batou/bin/x",
        ] {
            let m = vec![Entry {
                path: bad.into(),
                kind: Kind::Dir,
            }];
            assert!(Receiver::start(dst.path(), m).is_err(), "{bad:?} accepted");
        }
        assert_eq!(fs::read_dir(dst.path()).unwrap().count(), 0);
    }

    #[test]
    fn links_in_the_target_are_replaced_not_followed() {
        let src = tempfile::tempdir().unwrap();
        let dst = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), src.path().join("data")).unwrap();
        ship(src.path(), dst.path()).unwrap();
        assert!(fs::symlink_metadata(dst.path().join("data"))
            .unwrap()
            .file_type()
            .is_symlink());
        // The link becomes a real directory with a file in it.
        fs::remove_file(src.path().join("data")).unwrap();
        fs::create_dir(src.path().join("data")).unwrap();
        fs::write(src.path().join("data/victim"), "v").unwrap();
        ship(src.path(), dst.path()).unwrap();
        assert_eq!(fs::read_dir(outside.path()).unwrap().count(), 0);
        assert!(fs::symlink_metadata(dst.path().join("data"))
            .unwrap()
            .is_dir());
        assert_eq!(
            fs::read_to_string(dst.path().join("data/victim")).unwrap(),
            "v"
        );
        assert_eq!(ship(src.path(), dst.path()).unwrap(), (0, 0));
    }

    #[test]
    fn files_are_private_until_their_mode_and_honour_gitignore() {
        use std::os::unix::fs::MetadataExt;
        let src = tempfile::tempdir().unwrap();
        let dst = tempfile::tempdir().unwrap();
        fs::write(src.path().join(".gitignore"), "*.log\nsecrets/\n").unwrap();
        fs::write(src.path().join("app.log"), "junk").unwrap();
        fs::create_dir(src.path().join("secrets")).unwrap();
        fs::write(src.path().join("secrets/key"), "k").unwrap();
        fs::write(src.path().join("key.pem"), "pem").unwrap();
        fs::set_permissions(
            src.path().join("key.pem"),
            fs::Permissions::from_mode(0o600),
        )
        .unwrap();
        ship(src.path(), dst.path()).unwrap();
        assert!(!dst.path().join("app.log").exists());
        assert!(!dst.path().join("secrets").exists());
        assert_eq!(
            fs::metadata(dst.path().join("key.pem")).unwrap().mode() & 0o777,
            0o600
        );
        assert!(dst.path().join(".gitignore").exists());
    }

    #[test]
    fn a_damaged_record_or_changed_content_is_an_error() {
        let dst = tempfile::tempdir().unwrap();
        fs::create_dir(dst.path().join(".batou")).unwrap();
        fs::write(dst.path().join(RECORD), "not json").unwrap();
        let err = Receiver::start(dst.path(), Vec::new())
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.starts_with(&format!(
                "the shipping record {} is damaged (",
                dst.path().join(RECORD).display()
            )),
            "{err}"
        );
        assert!(err.ends_with("remove the target's content and the record to start afresh"));

        let dst = tempfile::tempdir().unwrap();
        let m = vec![Entry {
            path: "a".into(),
            kind: Kind::File {
                sha256: sha256_hex(b"announced"),
                mode: 0o644,
            },
        }];
        let (mut r, need) = Receiver::start(dst.path(), m).unwrap();
        assert_eq!(need, ["a"]);
        let err = r.chunk("a", b"other", true).unwrap_err().to_string();
        assert_eq!(
            err,
            "a arrived with other content than announced (it changed while shipping?); deploy again"
        );
        assert!(!dst.path().join("a").exists(), "nothing half-written stays");
        let err = r.chunk("b", b"x", true).unwrap_err().to_string();
        assert_eq!(err, "b is not a file of the manifest");
    }

    #[test]
    fn what_an_interrupted_shipment_left_is_removed_by_the_next() {
        let src = tempfile::tempdir().unwrap();
        let dst = tempfile::tempdir().unwrap();
        fs::create_dir_all(src.path().join("components/app")).unwrap();
        fs::write(src.path().join("components/app/big"), "data").unwrap();
        ship(src.path(), dst.path()).unwrap();
        let mut dead = std::process::Command::new("true").spawn().unwrap();
        let dead_pid = dead.id();
        dead.wait().unwrap();
        let stale = dst
            .path()
            .join(format!("components/app/.big.batou-tmp-{dead_pid}-3"));
        let stale_top = dst.path().join(format!(".new.batou-tmp-{dead_pid}-4"));
        let live = dst.path().join(format!(
            "components/app/.big.batou-tmp-{}-5",
            std::process::id()
        ));
        for f in [&stale, &stale_top, &live] {
            fs::write(f, "half").unwrap();
        }
        ship(src.path(), dst.path()).unwrap();
        assert!(!stale.exists() && !stale_top.exists());
        assert!(live.exists(), "a running process's temp file is left alone");
    }

    #[test]
    fn large_files_travel_in_chunks() {
        let src = tempfile::tempdir().unwrap();
        let dst = tempfile::tempdir().unwrap();
        let data: Vec<u8> = (0..(CHUNK * 2 + 17)).map(|i| (i % 251) as u8).collect();
        fs::write(src.path().join("big"), &data).unwrap();
        let mut n = 0;
        read_chunks(&src.path().join("big"), |_, _| {
            n += 1;
            Ok(())
        })
        .unwrap();
        assert_eq!(n, 3);
        ship(src.path(), dst.path()).unwrap();
        assert_eq!(fs::read(dst.path().join("big")).unwrap(), data);
    }
}
