//! `.batou-lock`: one deployment per project directory at a time, on the
//! controller and in each host's target directory; and the record locks
//! both it and the secrets files use ([`try_lock`]).
//!
//! The locks are open-file-description record locks (`F_OFD_SETLK`): they
//! conflict with Python batou's `fcntl.lockf` on the same file, and unlike
//! classic `fcntl` record locks they are not released when the process
//! closes *another* descriptor of the file (reading it with
//! `std::fs::read`, say).

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::os::unix::io::AsRawFd;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A record lock's kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockKind {
    /// Many readers.
    Shared,
    /// One writer.
    Exclusive,
}

/// Takes a lock of the whole of `file` without waiting: `Ok(false)` when
/// another process (or another open of the file) holds a conflicting one.
/// Held until the descriptor is closed (or [`unlock`]).
pub fn try_lock(file: &File, kind: LockKind) -> std::io::Result<bool> {
    let kind = match kind {
        LockKind::Shared => libc::F_RDLCK,
        LockKind::Exclusive => libc::F_WRLCK,
    };
    set_lock(file, kind)
}

/// Releases a lock taken with [`try_lock`].
pub fn unlock(file: &File) {
    let _ = set_lock(file, libc::F_UNLCK);
}

fn set_lock(file: &File, kind: libc::c_int) -> std::io::Result<bool> {
    // SAFETY: an all-zero flock is valid; l_len 0 covers the whole file,
    // l_pid must be 0 for OFD locks.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = kind as libc::c_short;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    // SAFETY: a valid descriptor and a valid flock struct.
    let rc = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_OFD_SETLK, &fl) };
    if rc == 0 {
        return Ok(true);
    }
    let err = std::io::Error::last_os_error();
    match err.raw_os_error() {
        Some(libc::EAGAIN) | Some(libc::EACCES) => Ok(false),
        _ => Err(err),
    }
}

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
    #[error("the lock {path} is held{}{}", holder(.pid, .since), stale(.pid, .silent))]
    Held {
        /// The lock file.
        path: String,
        /// The holder's PID, as it wrote it.
        pid: Option<u32>,
        /// When the holder took it.
        since: Option<SystemTime>,
        /// How long the holder, an agent, has not heard from its controller,
        /// when that is longer than the agent's own limit: it no longer
        /// serves a deployment.
        silent: Option<Duration>,
    },
}

fn stale(pid: &Option<u32>, silent: &Option<Duration>) -> String {
    let Some(silent) = silent else {
        return String::new();
    };
    let kill = pid
        .map(|p| format!(" (`kill {p}` on this host)"))
        .unwrap_or_default();
    format!(
        "; it has not heard from its controller for {}s and no longer serves a deployment: stop it{kill}",
        silent.as_secs()
    )
}

/// What a holder writes into the lock file: its PID, when it took the
/// lock (Unix seconds) and, for an agent, after how many seconds without
/// its controller it gives up. Python batou writes the PID only.
#[derive(Debug, Default, PartialEq, Eq)]
struct Holder {
    pid: Option<u32>,
    since: Option<u64>,
    limit: Option<u64>,
}

impl Holder {
    fn parse(text: &str) -> Holder {
        let mut words = text.split_whitespace().map(|w| w.parse::<u64>().ok());
        let mut next = || words.next().flatten();
        Holder {
            pid: next().and_then(|p| u32::try_from(p).ok()),
            since: next(),
            limit: next(),
        }
    }
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
        Self::acquire_as(dir, None)
    }

    /// [`Self::acquire`] by an agent that gives up after `limit` without
    /// its controller and [refreshes](Self::refresh) the lock meanwhile.
    pub fn acquire_for_agent(dir: &Path, limit: Duration) -> Result<ProjectLock, LockError> {
        Self::acquire_as(dir, Some(limit))
    }

    fn acquire_as(dir: &Path, limit: Option<Duration>) -> Result<ProjectLock, LockError> {
        let path = dir.join(".batou-lock");
        let open_error = |source| LockError::Open {
            path: path.display().to_string(),
            source,
        };
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(open_error)?;
        if !try_lock(&file, LockKind::Exclusive).map_err(open_error)? {
            let mut text = String::new();
            let _ = file.read_to_string(&mut text);
            let holder = Holder::parse(&text);
            let touched = file.metadata().and_then(|m| m.modified()).ok();
            let silent = touched
                .and_then(|t| SystemTime::now().duration_since(t).ok())
                .filter(|silent| {
                    holder
                        .limit
                        .is_some_and(|l| silent.as_secs() > l.max(1) * 2)
                });
            return Err(LockError::Held {
                path: path.display().to_string(),
                pid: holder.pid,
                since: holder
                    .since
                    .map(|s| UNIX_EPOCH + Duration::from_secs(s))
                    .or(touched),
                silent,
            });
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let mut text = format!("{} {now}", std::process::id());
        if let Some(l) = limit {
            text.push_str(&format!(" {}", l.as_secs()));
        }
        let _ = file.set_len(0);
        let _ = file.rewind();
        let _ = writeln!(file, "{text}");
        let _ = file.flush();
        Ok(ProjectLock { file })
    }

    /// Marks the holder alive (the lock file's modification time): an
    /// agent does so while it hears its controller.
    pub fn refresh(&self) {
        let _ = self.file.set_modified(SystemTime::now());
    }
}

impl Drop for ProjectLock {
    fn drop(&mut self) {
        let _ = self.file.set_len(0);
        unlock(&self.file);
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
    fn the_holder_line_is_read_as_written_also_from_python_batou() {
        assert_eq!(
            Holder::parse("42 1796156465 12\n"),
            Holder {
                pid: Some(42),
                since: Some(1_796_156_465),
                limit: Some(12)
            }
        );
        assert_eq!(
            Holder::parse("42\n"),
            Holder {
                pid: Some(42),
                ..Holder::default()
            }
        );
        assert_eq!(Holder::parse("garbage"), Holder::default());
    }

    #[test]
    fn an_agent_that_stopped_hearing_its_controller_is_named_stale() {
        let d = tempfile::tempdir().unwrap();
        let held = ProjectLock::acquire_for_agent(d.path(), Duration::from_secs(1)).unwrap();
        // A fresh holder is a running deployment.
        let err = ProjectLock::acquire(d.path()).err().unwrap().to_string();
        assert!(!err.contains("no longer serves"), "{err}");
        // Not refreshed for longer than twice its limit.
        held.file
            .set_modified(SystemTime::now() - Duration::from_secs(30))
            .unwrap();
        let err = ProjectLock::acquire(d.path()).err().unwrap().to_string();
        let want = format!(
            "; it has not heard from its controller for 30s and no longer serves a deployment: stop it (`kill {}` on this host)",
            std::process::id()
        );
        assert!(err.ends_with(&want), "{err}");
        held.refresh();
        let err = ProjectLock::acquire(d.path()).err().unwrap().to_string();
        assert!(!err.contains("no longer serves"), "{err}");
    }

    #[test]
    fn a_python_style_lockf_conflicts_and_reading_the_file_keeps_the_lock() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("f");
        std::fs::write(&path, "x").unwrap();
        let a = File::open(&path).unwrap();
        assert!(try_lock(&a, LockKind::Shared).unwrap());
        // Opening and closing another descriptor (as std::fs::read does)
        // would drop a classic fcntl lock; an OFD lock stays.
        let _ = std::fs::read(&path).unwrap();
        let b = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        assert!(!try_lock(&b, LockKind::Exclusive).unwrap());
        drop(a);
        assert!(try_lock(&b, LockKind::Exclusive).unwrap());
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
