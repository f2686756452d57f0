//! `fcntl` record locks on encrypted files, as batou's `lockf`: shared
//! for reading, exclusive for writing, never waiting. A concurrent
//! `secrets edit` of the same file (also by Python batou) is refused.

use super::{Result, SecretsError};
use std::fs::{File, OpenOptions};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

/// A held lock; released when dropped. A file the lock created (because
/// it did not exist) is removed again if it is still empty.
#[derive(Debug)]
pub struct FileLock {
    /// Holds the lock while open.
    _file: File,
    path: PathBuf,
    created: bool,
}

impl FileLock {
    /// A shared lock for reading an existing file.
    pub fn shared(path: &Path, display: &str) -> Result<FileLock> {
        let file = File::open(path).map_err(SecretsError::io(format!("Cannot open {display}")))?;
        lock(&file, libc::F_RDLCK, display)?;
        Ok(FileLock {
            _file: file,
            path: path.to_path_buf(),
            created: false,
        })
    }

    /// An exclusive lock for writing; creates an empty file to lock when
    /// there is none yet.
    pub fn exclusive(path: &Path, display: &str) -> Result<FileLock> {
        let created = !path.exists();
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(SecretsError::io(format!("Cannot open {display}")))?;
        if let Err(e) = lock(&file, libc::F_WRLCK, display) {
            if created {
                let _ = std::fs::remove_file(path);
            }
            return Err(e);
        }
        Ok(FileLock {
            _file: file,
            path: path.to_path_buf(),
            created,
        })
    }
}

impl Drop for FileLock {
    fn drop(&mut self) {
        // The path, not the descriptor: a write replaces the file by rename.
        let empty = std::fs::metadata(&self.path)
            .map(|m| m.len() == 0)
            .unwrap_or(false);
        if self.created && empty {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

fn lock(file: &File, kind: libc::c_int, display: &str) -> Result<()> {
    // SAFETY: an all-zero flock is valid; l_len 0 locks the whole file.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = kind as libc::c_short;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    // SAFETY: a valid descriptor and a valid flock struct.
    let rc = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_SETLK, &fl) };
    if rc == 0 {
        return Ok(());
    }
    let err = std::io::Error::last_os_error();
    match err.raw_os_error() {
        Some(libc::EAGAIN) | Some(libc::EACCES) => Err(SecretsError::Locked(display.to_string())),
        _ => Err(SecretsError::Io {
            what: format!("Cannot lock {display}"),
            source: err,
        }),
    }
}
