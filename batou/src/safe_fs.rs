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
//! - [`batched`] defers the `fsync` and rename of files committed with
//!   [`AtomicFile::commit_batched`] while a root deploys: their data is
//!   synced together and only then renamed into place, so durability costs
//!   a few journal commits instead of one per file. [`settle`] and
//!   [`settle_touching`] complete the deferred files before anything could
//!   look at them.
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

use std::cell::RefCell;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::os::unix::io::AsRawFd;
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

/// Whether a temp file name (`.<name>.batou-tmp-<pid>-<n>`) belongs to a
/// process that no longer runs (a killed earlier run). Temp files of
/// running processes, this one included, may be in the middle of a write
/// and are left alone.
fn is_stale(name: &str) -> bool {
    let Some(at) = name.rfind(TEMP_MARKER) else {
        return false;
    };
    if !name.starts_with('.') {
        return false;
    }
    let Some((pid, n)) = name[at + TEMP_MARKER.len()..].split_once('-') else {
        return false;
    };
    let (Ok(pid), true) = (
        pid.parse::<i32>(),
        !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()),
    ) else {
        return false;
    };
    if pid == std::process::id() as i32 {
        return false;
    }
    // SAFETY: signal 0 only checks whether the process exists.
    let exists = unsafe { libc::kill(pid, 0) } == 0
        || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
    // A killed process may linger as a zombie until it is reaped.
    let zombie = fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            stat.rsplit_once(')')
                .map(|(_, rest)| rest.trim_start().starts_with('Z'))
        })
        .unwrap_or(false);
    !exists || zombie
}

/// Directories this process has cleaned of stale temp files.
static CLEANED: std::sync::Mutex<Option<std::collections::HashSet<PathBuf>>> =
    std::sync::Mutex::new(None);

/// Removes the temp files a killed earlier run left in `path`'s
/// directory, once per directory per process (a deployment run): later
/// writes there find it cleaned.
pub fn remove_stale_temps(path: &Path) {
    let Some(dir) = path.parent() else {
        return;
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    {
        let mut cleaned = CLEANED.lock().unwrap_or_else(|e| e.into_inner());
        if !cleaned
            .get_or_insert_with(Default::default)
            .insert(dir.to_path_buf())
        {
            return;
        }
    }
    remove_stale_temps_in(dir);
}

/// Removes the temp files (`.<name>.batou-tmp-<pid>-<n>`, regular files
/// only) that processes which no longer run left in `dir`: an upload or a
/// write interrupted by a kill or a lost connection.
pub fn remove_stale_temps_in(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let is_file = e.file_type().is_ok_and(|t| t.is_file());
        if is_file && is_stale(&e.file_name().to_string_lossy()) {
            let _ = fs::remove_file(e.path());
        }
    }
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
        // What an interrupted earlier run left there goes first (once per
        // directory and process).
        remove_stale_temps(dest);
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

    /// Like [`Self::commit`], but inside [`batched`] the sync and rename
    /// are deferred to the next [`settle`] (the destination keeps its old
    /// content until then, and a crash before it leaves only a temp file).
    /// Outside a batch it commits at once.
    pub fn commit_batched(self) -> io::Result<()> {
        let waiting = BATCH.with(|b| b.borrow().as_ref().map(|batch| batch.deferred.len()));
        let Some(waiting) = waiting else {
            return self.commit();
        };
        if waiting >= MAX_DEFERRED {
            settle()?;
        }
        start_writeback(&self);
        BATCH.with(|b| {
            // Still open: settling empties a batch, it does not close it.
            let mut b = b.borrow_mut();
            let batch = b.get_or_insert_with(Batch::default);
            let at = batch.place(&self.dest);
            batch.deferred.push(Deferred { at, file: self });
        });
        Ok(())
    }
}

/// Files deferred by [`AtomicFile::commit_batched`] at most, before the
/// batch is settled on its own (each keeps its descriptor open).
const MAX_DEFERRED: usize = 128;

/// A committed file waiting for its sync and rename.
#[derive(Debug)]
struct Deferred {
    file: AtomicFile,
    /// Where the destination is, whatever links lead there.
    at: Option<Place>,
}

/// A directory entry named independently of the path that leads to it:
/// the directory's device and inode, and the entry's name.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Place {
    dir: (u64, u64),
    name: std::ffi::OsString,
}

/// The deferred files of this thread's open batch.
#[derive(Debug, Default)]
struct Batch {
    deferred: Vec<Deferred>,
    /// Directories looked up since the last settle (between two settles
    /// only components that leave directories alone run).
    dirs: std::collections::HashMap<PathBuf, Option<(u64, u64)>>,
}

impl Batch {
    /// Where `path` is: its directory (links followed) and its name.
    fn place(&mut self, path: &Path) -> Option<Place> {
        use std::os::unix::fs::MetadataExt;
        let name = path.file_name()?.to_os_string();
        let parent = path.parent().filter(|p| !p.as_os_str().is_empty())?;
        let dir = *self
            .dirs
            .entry(parent.to_path_buf())
            .or_insert_with(|| fs::metadata(parent).ok().map(|m| (m.dev(), m.ino())));
        Some(Place { dir: dir?, name })
    }
}

thread_local! {
    static BATCH: RefCell<Option<Batch>> = const { RefCell::new(None) };
}

/// Asks the kernel to start writing `file` back now (Linux), so the sync
/// at [`settle`] mostly finds it on disk already.
fn start_writeback(file: &AtomicFile) {
    #[cfg(target_os = "linux")]
    // SAFETY: a valid descriptor; the call only schedules writeback.
    unsafe {
        libc::sync_file_range(file.file.as_raw_fd(), 0, 0, libc::SYNC_FILE_RANGE_WRITE);
    }
    #[cfg(not(target_os = "linux"))]
    let _ = file;
}

/// Runs `deploy` with a batch open on this thread: files committed with
/// [`AtomicFile::commit_batched`] are synced and renamed at the next
/// [`settle`], at the latest when `deploy` returns (or unwinds). Returns
/// `deploy`'s result and the outcome of that last settle.
///
/// ```
/// use batou::safe_fs::{batched, AtomicFile};
/// use std::io::Write;
/// let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("app.conf");
/// let ((), settled) = batched(|| {
///     let mut f = AtomicFile::create(&path, 0o644).unwrap();
///     f.write_all(b"port = 80\n").unwrap();
///     f.commit_batched().unwrap();
///     assert!(!path.exists(), "renamed only once synced");
/// });
/// settled.unwrap();
/// assert_eq!(std::fs::read(&path).unwrap(), b"port = 80\n");
/// ```
pub fn batched<R>(deploy: impl FnOnce() -> R) -> (R, io::Result<()>) {
    /// Settles on the way out, also when `deploy` panics.
    struct Open(Option<Batch>);
    impl Drop for Open {
        fn drop(&mut self) {
            let _ = settle();
            BATCH.with(|b| *b.borrow_mut() = self.0.take());
        }
    }
    let outer = BATCH.with(|b| b.borrow_mut().replace(Batch::default()));
    let guard = Open(outer);
    let result = deploy();
    let settled = settle();
    drop(guard);
    (result, settled)
}

/// Whether files wait for [`settle`] on this thread.
pub fn has_deferred() -> bool {
    BATCH.with(|b| b.borrow().as_ref().is_some_and(|b| !b.deferred.is_empty()))
}

/// Syncs every file deferred on this thread, then renames them into place
/// in the order they were committed. A file that cannot be synced is not
/// renamed (its temp file is removed); the first error names it.
pub fn settle() -> io::Result<()> {
    let deferred = BATCH.with(|b| {
        b.borrow_mut()
            .as_mut()
            .map(|batch| {
                batch.dirs.clear();
                std::mem::take(&mut batch.deferred)
            })
            .unwrap_or_default()
    });
    let mut first_error = None;
    let synced: Vec<AtomicFile> = deferred
        .into_iter()
        .filter_map(|d| match d.file.file.sync_all() {
            Ok(()) => Some(d.file),
            Err(e) => {
                first_error.get_or_insert_with(|| context(e, &d.file.dest));
                None
            }
        })
        .collect();
    for mut f in synced {
        match fs::rename(&f.tmp, &f.dest) {
            Ok(()) => f.tmp = PathBuf::new(),
            Err(e) => {
                first_error.get_or_insert_with(|| context(e, &f.dest));
            }
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// Settles this thread's deferred files if one of them is one of the
/// files `paths` (also when reached through other links), or one is
/// inside the other as written: what a component that reads or changes
/// only the files `paths`, and no directories, needs before it looks at
/// them.
pub fn settle_touching(paths: &[&Path]) -> io::Result<()> {
    let touching = BATCH.with(|b| {
        let mut b = b.borrow_mut();
        let Some(batch) = b.as_mut().filter(|b| !b.deferred.is_empty()) else {
            return false;
        };
        paths.iter().any(|p| {
            let at = batch.place(p);
            batch
                .deferred
                .iter()
                .any(|d| related(&d.file.dest, p) || (at.is_some() && d.at == at) || d.at.is_none())
        })
    });
    if touching {
        settle()
    } else {
        Ok(())
    }
}

/// Whether one path is the other or inside it.
fn related(a: &Path, b: &Path) -> bool {
    a.starts_with(b) || b.starts_with(a)
}

fn context(e: io::Error, dest: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("writing {}: {e}", dest.display()))
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

    fn deferred(path: &Path, data: &[u8]) {
        let mut f = AtomicFile::create(path, 0o644).unwrap();
        f.write_all(data).unwrap();
        f.commit_batched().unwrap();
    }

    #[test]
    fn batched_files_are_renamed_only_when_settled() {
        let d = tempfile::tempdir().unwrap();
        let (a, b) = (d.path().join("a"), d.path().join("b"));
        fs::write(&a, "old").unwrap();
        // Outside a batch: at once.
        deferred(&b, b"now");
        assert_eq!(fs::read(&b).unwrap(), b"now");
        let ((), settled) = batched(|| {
            deferred(&a, b"new");
            deferred(&b, b"later");
            assert!(has_deferred());
            assert_eq!(fs::read(&a).unwrap(), b"old");
            settle().unwrap();
            assert!(!has_deferred());
            assert_eq!(fs::read(&a).unwrap(), b"new");
            deferred(&b, b"last");
        });
        settled.unwrap();
        assert_eq!(fs::read(&b).unwrap(), b"last");
        assert_eq!(
            fs::read_dir(d.path()).unwrap().count(),
            2,
            "no temp file left"
        );
    }

    #[test]
    fn only_components_touching_a_batched_file_settle_it() {
        let d = tempfile::tempdir().unwrap();
        let real = d.path().join("real");
        fs::create_dir(&real).unwrap();
        std::os::unix::fs::symlink(&real, d.path().join("link")).unwrap();
        let conf = real.join("app.conf");
        let ((), settled) = batched(|| {
            deferred(&conf, b"x");
            let (other, elsewhere) = (real.join("other.conf"), d.path().join("elsewhere"));
            settle_touching(&[&other, &elsewhere]).unwrap();
            assert!(has_deferred(), "unrelated files do not settle");
            // The same file reached through a link to its directory.
            settle_touching(&[&d.path().join("link/app.conf")]).unwrap();
            assert!(!has_deferred());
            assert_eq!(fs::read(&conf).unwrap(), b"x");
            // A path the file is in, as written.
            deferred(&conf, b"y");
            settle_touching(&[&real]).unwrap();
            assert!(!has_deferred());
        });
        settled.unwrap();
    }

    #[test]
    fn a_panicking_deployment_still_puts_its_files_in_place() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("f");
        let caught = std::panic::catch_unwind(|| {
            batched(|| {
                deferred(&p, b"done");
                panic!("component code");
            })
        });
        assert!(caught.is_err());
        assert_eq!(fs::read(&p).unwrap(), b"done");
        assert!(!has_deferred());
    }

    #[test]
    fn a_file_that_cannot_be_put_in_place_is_named_and_the_others_land() {
        let d = tempfile::tempdir().unwrap();
        let sub = d.path().join("sub");
        fs::create_dir(&sub).unwrap();
        let (gone, kept) = (sub.join("gone"), d.path().join("kept"));
        let ((), settled) = batched(|| {
            deferred(&gone, b"1");
            deferred(&kept, b"2");
            // Its directory is replaced meanwhile: the rename fails.
            fs::rename(&sub, d.path().join("moved")).unwrap();
        });
        let err = settled.unwrap_err().to_string();
        assert!(
            err.starts_with(&format!("writing {}: ", gone.display())),
            "{err}"
        );
        assert_eq!(fs::read(&kept).unwrap(), b"2");
    }

    #[test]
    fn batches_are_settled_on_their_own_when_full() {
        let d = tempfile::tempdir().unwrap();
        let ((), settled) = batched(|| {
            for i in 0..=MAX_DEFERRED {
                deferred(&d.path().join(format!("f{i}")), b"x");
            }
            // The first MAX_DEFERRED were settled to make room.
            assert!(d.path().join("f0").exists());
            assert!(!d.path().join(format!("f{MAX_DEFERRED}")).exists());
        });
        settled.unwrap();
        assert_eq!(fs::read_dir(d.path()).unwrap().count(), MAX_DEFERRED + 1);
    }
}
