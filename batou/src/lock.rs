//! `.batou-lock`: one deployment per project directory at a time, on the
//! controller and in each host's target directory.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

/// Holds an exclusive lock of `<dir>/.batou-lock` and this process's PID
/// in it for the whole run; emptied and released when dropped.
#[derive(Debug)]
pub struct ProjectLock {
    file: File,
}

/// Why the lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// The lock file cannot be opened.
    #[error("Could not open lock file {path}: {source}")]
    Open {
        /// The lock file.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// Another process holds it.
    #[error("the lock {path} is held{}", holder(.pid, .since))]
    Held {
        /// The lock file.
        path: String,
        /// The holder's PID, as it wrote it.
        pid: Option<u32>,
        /// When the holder took it.
        since: Option<SystemTime>,
    },
}

fn holder(pid: &Option<u32>, since: &Option<SystemTime>) -> String {
    match (pid, since) {
        (Some(p), Some(s)) => format!(" by PID {p} since {}", utc(*s)),
        (Some(p), None) => format!(" by PID {p}"),
        _ => String::new(),
    }
}

/// `2026-12-01 20:31:05 UTC`.
pub fn utc(t: SystemTime) -> String {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rest) = ((secs / 86_400) as i64, secs % 86_400);
    // Days to a civil date (proleptic Gregorian), after Howard Hinnant.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rest / 3600,
        rest / 60 % 60,
        rest % 60
    )
}

impl ProjectLock {
    /// Takes the lock of `dir` or says who holds it.
    pub fn acquire(dir: &Path) -> Result<ProjectLock, LockError> {
        let path = dir.join(".batou-lock");
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|source| LockError::Open {
                path: path.display().to_string(),
                source,
            })?;
        if file.try_lock().is_err() {
            let mut pid = String::new();
            let _ = file.read_to_string(&mut pid);
            return Err(LockError::Held {
                path: path.display().to_string(),
                pid: pid.trim().parse().ok(),
                since: file.metadata().and_then(|m| m.modified()).ok(),
            });
        }
        let _ = file.set_len(0);
        let _ = file.rewind();
        let _ = write!(file, "{}", std::process::id());
        let _ = file.flush();
        Ok(ProjectLock { file })
    }
}

impl Drop for ProjectLock {
    fn drop(&mut self) {
        let _ = self.file.set_len(0);
        let _ = self.file.unlock();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(utc(UNIX_EPOCH), "1970-01-01 00:00:00 UTC");
        let t = UNIX_EPOCH + std::time::Duration::from_secs(1_796_156_465);
        assert_eq!(utc(t), "2026-12-01 20:21:05 UTC");
    }

    #[test]
    fn a_second_lock_names_the_holder() {
        let d = tempfile::tempdir().unwrap();
        let _held = ProjectLock::acquire(d.path()).unwrap();
        let err = ProjectLock::acquire(d.path()).err().unwrap().to_string();
        let want = format!(
            "the lock {}/.batou-lock is held by PID {} since ",
            d.path().display(),
            std::process::id()
        );
        assert!(err.starts_with(&want), "{err}");
    }
}
