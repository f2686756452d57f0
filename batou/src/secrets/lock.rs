//! Record locks on encrypted files, conflicting with batou's `lockf`:
//! shared for reading, exclusive for writing, never waiting. A concurrent
//! `secrets edit` of the same file (also by Python batou) is refused.
//! They are open-file-description locks ([`crate::lock::try_lock`]), so
//! reading the file through another descriptor while holding one does not
//! release it.

use super::{Result, SecretsError};
use crate::lock::LockKind;
use std::fs::{File, OpenOptions};
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
        lock(&file, LockKind::Shared, display)?;
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
        if let Err(e) = lock(&file, LockKind::Exclusive, display) {
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

fn lock(file: &File, kind: LockKind, display: &str) -> Result<()> {
    match crate::lock::try_lock(file, kind) {
        Ok(true) => Ok(()),
        Ok(false) => Err(SecretsError::Locked(display.to_string())),
        Err(source) => Err(SecretsError::Io {
            what: format!("Cannot lock {display}"),
            source,
        }),
    }
}
