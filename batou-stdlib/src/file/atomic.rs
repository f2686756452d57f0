//! Atomic file replacement and stale temp-file cleanup.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

static COUNTER: AtomicU64 = AtomicU64::new(0);

const MARKER: &str = ".batou-tmp-";

/// A temporary name next to `path`: `.<name>.batou-tmp-<pid>-<n>`.
pub fn temp_name(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    path.with_file_name(format!(".{name}{MARKER}{}-{n}", std::process::id()))
}

/// Replaces `path` with `data` atomically. An existing file's mode and
/// owner are kept (so `Mode`/`Owner` applied earlier stay in place); a new
/// file gets `new_mode`, or `0o666 & !umask`.
pub fn write_atomic(path: &Path, data: &[u8], new_mode: Option<u32>) -> std::io::Result<()> {
    remove_stale_temps(path);
    let tmp = temp_name(path);
    let existing = fs::metadata(path).ok().filter(|m| m.is_file());
    let result = (|| {
        let mut f: File = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o666)
            .open(&tmp)?;
        f.write_all(data)?;
        if let Some(m) = &existing {
            f.set_permissions(fs::Permissions::from_mode(m.mode() & 0o7777))?;
            // Keeping the owner only works for root; ignore EPERM otherwise.
            let _ = std::os::unix::fs::fchown(&f, Some(m.uid()), Some(m.gid()));
        } else if let Some(mode) = new_mode {
            f.set_permissions(fs::Permissions::from_mode(mode))?;
        }
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Whether a temp file name belongs to a process that no longer runs (a
/// killed earlier run). Temp files of running processes, this one included,
/// may be in the middle of a write and are left alone.
fn is_stale(name: &str, prefix: &str) -> bool {
    let Some(rest) = name.strip_prefix(prefix) else {
        return false;
    };
    let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<i32>().ok()) else {
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

/// Removes temp files a killed earlier run left next to `path`.
pub fn remove_stale_temps(path: &Path) {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return;
    };
    let prefix = format!(".{}{MARKER}", name.to_string_lossy());
    let Ok(entries) = fs::read_dir(if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    }) else {
        return;
    };
    for e in entries.flatten() {
        if is_stale(&e.file_name().to_string_lossy(), &prefix) {
            let _ = fs::remove_file(e.path());
        }
    }
}

/// Removes whatever is at `path` (file, symlink or directory tree).
pub fn remove_path(path: &Path) -> std::io::Result<()> {
    match fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
        Ok(m) if m.is_dir() => {
            // Move it aside first so the path is free at once.
            let aside = temp_name(path);
            fs::rename(path, &aside)?;
            fs::remove_dir_all(&aside)
        }
        Ok(_) => fs::remove_file(path),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_mode_and_cleans_up() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("f");
        write_atomic(&p, b"one", Some(0o600)).unwrap();
        assert_eq!(fs::metadata(&p).unwrap().mode() & 0o7777, 0o600);
        fs::set_permissions(&p, fs::Permissions::from_mode(0o751)).unwrap();
        // A temp file of a dead process is removed; one of a running
        // process (this one) is not.
        let dead = std::process::Command::new("true").spawn().unwrap();
        let dead_pid = dead.id();
        let mut dead = dead;
        dead.wait().unwrap();
        fs::write(
            d.path().join(format!(".f.batou-tmp-{dead_pid}-1")),
            b"stale",
        )
        .unwrap();
        let mine = format!(".f.batou-tmp-{}-999", std::process::id());
        fs::write(d.path().join(&mine), b"in flight").unwrap();
        write_atomic(&p, b"two", None).unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        assert_eq!(fs::metadata(&p).unwrap().mode() & 0o7777, 0o751);
        let mut names: Vec<_> = fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        assert_eq!(
            names,
            vec![
                std::ffi::OsString::from(mine),
                std::ffi::OsString::from("f")
            ]
        );
    }
}
