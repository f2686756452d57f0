//! Writing inside a target without following links and without windows in
//! which a file is readable by others.
//!
//! Everything batou writes on a host goes through these functions: shipped
//! project files, the agent's records, and the File family of the standard
//! library.
//!
//! - [`relative`] accepts only plain relative paths (no empty path, `.`,
//!   `..` or absolute path), so a request can never name a place outside
//!   its root.
//! - [`make_dirs`] creates the directories between a root and a path
//!   without following symlinks: a link or file where a directory belongs
//!   is replaced by a directory, so nothing is ever written through a link.
//! - [`AtomicFile`] creates a temp file next to its destination with
//!   `O_CREAT|O_EXCL|O_NOFOLLOW` and mode 0600, sets the final mode with
//!   `fchmod` before the first byte of data, and renames it into place after
//!   `fsync`: the file never exists half-written, and never readable by
//!   others before it has its final mode.
//!
//! ```
//! use batou::safe_fs::{make_dirs, relative, AtomicFile};
//! use std::io::Write;
//! let root = tempfile::tempdir().unwrap();
//! let rel = relative("conf/app.ini").unwrap();
//! make_dirs(root.path(), rel.parent().unwrap()).unwrap();
//! let mut f = AtomicFile::create(&root.path().join(&rel), 0o640).unwrap();
//! f.write_all(b"[app]\n").unwrap();
//! f.commit().unwrap();
//! assert!(relative("../etc/passwd").is_err());
//! ```

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// A path in a request that could leave its root.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("refusing the path {path:?}: {why}")]
pub struct PathError {
    /// The path as given.
    pub path: String,
    /// What is wrong with it.
    pub why: &'static str,
}

/// `rel` as a plain relative path: not empty, not absolute, only normal
/// components (no `.`, no `..`).
pub fn relative(rel: &str) -> Result<PathBuf, PathError> {
    let err = |why| PathError {
        path: rel.to_string(),
        why,
    };
    if rel.is_empty() {
        return Err(err("it is empty"));
    }
    if rel.contains('\0') {
        return Err(err("it contains a NUL byte"));
    }
    let p = Path::new(rel);
    if p.is_absolute() {
        return Err(err("it is absolute"));
    }
    // `Path::components` drops inner `.`s; the raw segments keep them.
    if rel.split('/').any(|s| s == ".") {
        return Err(err("it contains `.`"));
    }
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => return Err(err("it contains `..`")),
            Component::CurDir => return Err(err("it contains `.`")),
            Component::RootDir | Component::Prefix(_) => return Err(err("it is absolute")),
        }
    }
    if out.as_os_str().is_empty() {
        return Err(err("it names no file"));
    }
    Ok(out)
}

/// A root directory as given in a request: absolute, or `~` / `~/...`,
/// with no `.` or `..` in it.
pub fn root(path: &str) -> Result<PathBuf, PathError> {
    let err = |why| PathError {
        path: path.to_string(),
        why,
    };
    let rest = if path == "~" {
        ""
    } else if let Some(rest) = path.strip_prefix("~/") {
        rest
    } else if path.starts_with('/') {
        path
    } else {
        return Err(err("it is neither absolute nor below `~`"));
    };
    if path.contains('\0') {
        return Err(err("it contains a NUL byte"));
    }
    if rest.split('/').any(|s| s == "." || s == "..") {
        return Err(err("it contains `.` or `..`"));
    }
    Ok(PathBuf::from(path))
}

/// Creates `root/rel` and the directories in between (`root` itself must
/// exist) without following links: whatever else stands where a directory
/// belongs (a symlink, a file) is removed and replaced by a directory.
pub fn make_dirs(root: &Path, rel: &Path) -> io::Result<()> {
    let mut at = root.to_path_buf();
    for c in rel.components() {
        let Component::Normal(name) = c else {
            return Err(io::Error::other(format!(
                "refusing the directory {}",
                rel.display()
            )));
        };
        at.push(name);
        match fs::symlink_metadata(&at) {
            Ok(m) if m.is_dir() => continue,
            Ok(_) => fs::remove_file(&at)?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        match fs::create_dir(&at) {
            Ok(()) => {}
            // Made meanwhile by a parallel writer: fine if it is a directory.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                if !fs::symlink_metadata(&at)?.is_dir() {
                    return Err(e);
                }
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Whether some directory between `root` and `root/rel` (exclusive of the
/// last component) is a symlink or not a directory.
pub fn has_link_in_parents(root: &Path, rel: &Path) -> bool {
    let mut at = root.to_path_buf();
    let parts: Vec<_> = rel.components().collect();
    for c in parts.iter().take(parts.len().saturating_sub(1)) {
        at.push(c);
        match fs::symlink_metadata(&at) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => return true,
            Err(_) => return false,
        }
    }
    false
}

/// Removes whatever is at `path` without following links: a file or
/// symlink is unlinked, a directory tree is moved aside and removed
/// (`remove_dir_all` does not follow links inside it). Missing is fine.
pub fn remove(path: &Path) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
        Ok(m) if m.is_dir() => {
            let aside = temp_name(path, ".batou-rm-");
            fs::rename(path, &aside)?;
            fs::remove_dir_all(&aside)
        }
        Ok(_) => fs::remove_file(path),
    }
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// Marker in the names of batou's temp files: `.<name>.batou-tmp-<pid>-<n>`.
pub const TEMP_MARKER: &str = ".batou-tmp-";

/// A fresh temp name next to `path`, tagged with this process's id.
pub fn temp_name(path: &Path, marker: &str) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    path.with_file_name(format!(".{name}{marker}{}-{n}", std::process::id()))
}

/// A file being written next to its destination; [`AtomicFile::commit`]
/// moves it into place, dropping it uncommitted removes it.
#[derive(Debug)]
pub struct AtomicFile {
    file: File,
    /// Empty once committed.
    tmp: PathBuf,
    dest: PathBuf,
}

impl AtomicFile {
    /// Starts replacing `dest` with a file of mode `mode`. The temp file is
    /// created private (0600, never through a link, never an existing
    /// file) and gets `mode` before any data is written.
    pub fn create(dest: &Path, mode: u32) -> io::Result<AtomicFile> {
        let tmp = temp_name(dest, TEMP_MARKER);
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&tmp)?;
        let guard = AtomicFile {
            file,
            tmp,
            dest: dest.to_path_buf(),
        };
        // fchmod: the final mode is in place before the first byte.
        guard
            .file
            .set_permissions(fs::Permissions::from_mode(mode & 0o7777))?;
        Ok(guard)
    }

    /// The open temp file (e.g. for `fchown`).
    pub fn file(&self) -> &File {
        &self.file
    }

    /// Flushes to disk and renames over the destination.
    pub fn commit(mut self) -> io::Result<()> {
        self.file.sync_all()?;
        fs::rename(&self.tmp, &self.dest)?;
        self.tmp = PathBuf::new();
        Ok(())
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if !self.tmp.as_os_str().is_empty() {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

/// Writes `data` to `dest` atomically with mode `mode` (see [`AtomicFile`]).
pub fn write_atomic(dest: &Path, data: &[u8], mode: u32) -> io::Result<()> {
    let mut f = AtomicFile::create(dest, mode)?;
    f.write_all(data)?;
    f.commit()
}

/// Creates a private directory (0700) and makes sure an existing one is
/// a real directory of this user with no access for others.
pub fn private_dir(path: &Path) -> io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt};
    match fs::DirBuilder::new().mode(0o700).create(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    let m = fs::symlink_metadata(path)?;
    if !m.is_dir() {
        return Err(io::Error::other(format!(
            "{} is not a directory",
            path.display()
        )));
    }
    // SAFETY: geteuid has no preconditions.
    if m.uid() != unsafe { libc::geteuid() } {
        return Err(io::Error::other(format!(
            "{} belongs to another user (uid {})",
            path.display(),
            m.uid()
        )));
    }
    if m.mode() & 0o077 != 0 {
        fs::set_permissions(path, fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn relative_paths_only() {
        assert_eq!(relative("a/b").unwrap(), PathBuf::from("a/b"));
        for bad in ["", ".", "..", "/etc", "a/../b", "./a", "a/./b", "a\0b"] {
            assert!(relative(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(
            relative("../x").unwrap_err().to_string(),
            "refusing the path \"../x\": it contains `..`"
        );
    }

    #[test]
    fn roots_are_absolute_or_home() {
        for good in ["~", "~/deployment", "/srv/app"] {
            assert!(root(good).is_ok(), "{good:?} refused");
        }
        for bad in ["", "deployment", "~/../x", "/srv/./x", "~other"] {
            assert!(root(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn dirs_replace_links_instead_of_following_them() {
        let d = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), d.path().join("data")).unwrap();
        make_dirs(d.path(), Path::new("data/sub")).unwrap();
        assert!(fs::symlink_metadata(d.path().join("data"))
            .unwrap()
            .is_dir());
        assert!(d.path().join("data/sub").is_dir());
        assert_eq!(fs::read_dir(outside.path()).unwrap().count(), 0);
    }

    #[test]
    fn files_get_their_mode_before_data_and_never_follow_links() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("secret");
        let mut f = AtomicFile::create(&p, 0o640).unwrap();
        assert_eq!(f.file().metadata().unwrap().mode() & 0o777, 0o640);
        f.write_all(b"x").unwrap();
        f.commit().unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"x");
        assert_eq!(fs::read_dir(d.path()).unwrap().count(), 1);
        // A dropped, uncommitted file leaves nothing behind.
        drop(AtomicFile::create(&p, 0o600).unwrap());
        assert_eq!(fs::read_dir(d.path()).unwrap().count(), 1);
        // The destination being a link replaces the link, not its target.
        let outside = d.path().join("outside");
        fs::write(&outside, "keep").unwrap();
        std::os::unix::fs::symlink(&outside, d.path().join("l")).unwrap();
        write_atomic(&d.path().join("l"), b"new", 0o644).unwrap();
        assert_eq!(fs::read_to_string(&outside).unwrap(), "keep");
        assert!(!fs::symlink_metadata(d.path().join("l"))
            .unwrap()
            .file_type()
            .is_symlink());
    }

    #[test]
    fn a_private_dir_of_another_user_is_refused() {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("SKIPPED: needs root to give a directory to another user");
            return;
        }
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join(".batou");
        fs::create_dir(&p).unwrap();
        std::os::unix::fs::chown(&p, Some(65534), None).unwrap();
        let err = private_dir(&p).unwrap_err().to_string();
        assert_eq!(
            err,
            format!("{} belongs to another user (uid 65534)", p.display())
        );
        let link = d.path().join("link");
        std::os::unix::fs::symlink(d.path(), &link).unwrap();
        assert_eq!(
            private_dir(&link).unwrap_err().to_string(),
            format!("{} is not a directory", link.display())
        );
    }

    #[test]
    fn private_dirs_lose_group_and_other_access() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("bin");
        fs::create_dir(&p).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o777)).unwrap();
        private_dir(&p).unwrap();
        assert_eq!(fs::metadata(&p).unwrap().mode() & 0o777, 0o700);
    }
}
