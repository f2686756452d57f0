//! Atomic file replacement and stale temp-file cleanup.

use batou::safe_fs::{AtomicFile, TEMP_MARKER};
use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

const MARKER: &str = TEMP_MARKER;

/// A temporary name next to `path`: `.<name>.batou-tmp-<pid>-<n>`.
pub fn temp_name(path: &Path) -> PathBuf {
    batou::safe_fs::temp_name(path, MARKER)
}

/// The process's umask (read from /proc, which leaves it unchanged; once
/// per process: nothing in batou changes it).
pub fn umask() -> u32 {
    static UMASK: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *UMASK.get_or_init(|| {
        std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("Umask:"))
                    .and_then(|v| u32::from_str_radix(v.trim(), 8).ok())
            })
            .unwrap_or(0o022)
    })
}

/// The ownership and mode a replacement of `path` gets: an existing
/// file's mode and owner are kept (so `Mode`/`Owner` applied earlier stay
/// in place); a new file gets `new_mode`, or `0o666 & !umask`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Attributes {
    /// Permission bits of a new file.
    pub new_mode: Option<u32>,
    /// Owner to give the file (kept from an existing file otherwise).
    pub uid: Option<u32>,
    /// Group to give the file (kept from an existing file otherwise).
    pub gid: Option<u32>,
}

/// Starts replacing `path`: a private temp file that already has its final
/// mode and owner (see [`Attributes`]) before any data is written.
pub fn replace(path: &Path, attrs: Attributes) -> std::io::Result<AtomicFile> {
    let existing = fs::symlink_metadata(path).ok().filter(|m| m.is_file());
    let mode = match &existing {
        Some(m) => m.mode() & 0o7777,
        None => attrs.new_mode.unwrap_or(0o666 & !umask()),
    };
    let f = AtomicFile::create(path, mode)?;
    let uid = attrs.uid.or(existing.as_ref().map(|m| m.uid()));
    let gid = attrs.gid.or(existing.as_ref().map(|m| m.gid()));
    if uid.is_some() || gid.is_some() {
        let r = std::os::unix::fs::fchown(f.file(), uid, gid);
        // Only asked-for ids are an error; keeping the old owner only works
        // for root and is skipped otherwise.
        if let Err(e) = r {
            if attrs.uid.is_some() || attrs.gid.is_some() {
                return Err(e);
            }
        }
        // chown clears set-id bits: set the mode again.
        if mode & 0o7000 != 0 {
            use std::os::unix::fs::PermissionsExt;
            f.file().set_permissions(fs::Permissions::from_mode(mode))?;
        }
    }
    Ok(f)
}

/// Replaces `path` with `data` atomically (see [`replace`]).
pub fn write_atomic(path: &Path, data: &[u8], new_mode: Option<u32>) -> std::io::Result<()> {
    let mut f = replace(
        path,
        Attributes {
            new_mode,
            ..Attributes::default()
        },
    )?;
    f.write_all(data)?;
    f.commit()
}

/// Replaces `path` with the content of `source`, copied in chunks
/// (committed in the deployment's batch: see
/// [`AtomicFile::commit_batched`]).
pub fn copy_atomic(source: &Path, path: &Path, attrs: Attributes) -> std::io::Result<()> {
    let mut input = fs::File::open(source)?;
    let mut f = replace(path, attrs)?;
    std::io::copy(&mut input, &mut f)?;
    f.commit_batched()
}

/// Whether two files have the same content, compared in chunks (`false`
/// when `b` is missing).
pub fn same_content(a: &Path, b: &Path) -> std::io::Result<bool> {
    let (ma, mb) = match (fs::metadata(a), fs::symlink_metadata(b)) {
        (Ok(ma), Ok(mb)) => (ma, mb),
        (Err(e), _) => return Err(e),
        (_, Err(_)) => return Ok(false),
    };
    if !mb.is_file() || ma.len() != mb.len() {
        return Ok(false);
    }
    let (mut fa, mut fb) = (fs::File::open(a)?, fs::File::open(b)?);
    let (mut ba, mut bb) = (vec![0u8; 64 << 10], vec![0u8; 64 << 10]);
    loop {
        let n = read_full(&mut fa, &mut ba)?;
        let m = read_full(&mut fb, &mut bb)?;
        if n != m || ba[..n] != bb[..m] {
            return Ok(false);
        }
        if n == 0 {
            return Ok(true);
        }
    }
}

pub(crate) fn read_full(f: &mut fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

pub use batou::safe_fs::remove_stale_temps;

/// Removes whatever is at `path` (file, symlink or directory tree; links
/// are removed, never followed).
pub fn remove_path(path: &Path) -> std::io::Result<()> {
    batou::safe_fs::remove(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn keeps_mode_and_cleans_up() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("f");
        // A temp file of a dead process is removed by the first write in
        // its directory (of any file there); one of a running process
        // (this one) is not.
        let dead = std::process::Command::new("true").spawn().unwrap();
        let dead_pid = dead.id();
        let mut dead = dead;
        dead.wait().unwrap();
        fs::write(
            d.path().join(format!(".f.batou-tmp-{dead_pid}-1")),
            b"stale",
        )
        .unwrap();
        fs::write(
            d.path().join(format!(".other.batou-tmp-{dead_pid}-7")),
            b"stale",
        )
        .unwrap();
        let mine = format!(".f.batou-tmp-{}-999", std::process::id());
        fs::write(d.path().join(&mine), b"in flight").unwrap();
        write_atomic(&p, b"one", Some(0o600)).unwrap();
        assert_eq!(fs::metadata(&p).unwrap().mode() & 0o7777, 0o600);
        fs::set_permissions(&p, fs::Permissions::from_mode(0o751)).unwrap();
        // Once per directory and run: a later write does not list it again.
        fs::write(
            d.path().join(format!(".g.batou-tmp-{dead_pid}-2")),
            b"left for the next run",
        )
        .unwrap();
        write_atomic(&p, b"two", None).unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        assert_eq!(fs::metadata(&p).unwrap().mode() & 0o7777, 0o751);
        assert!(same_content(&p, &p).unwrap());
        assert!(!same_content(&p, &d.path().join("missing")).unwrap());
        let mut names: Vec<_> = fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        assert_eq!(
            names,
            vec![
                std::ffi::OsString::from(mine),
                std::ffi::OsString::from(format!(".g.batou-tmp-{dead_pid}-2")),
                std::ffi::OsString::from("f")
            ]
        );
    }
}
