//! The one place cleartext touches a file system: the file `secrets edit`
//! hands to the editor. It lives in a fresh 0700 directory on `/dev/shm`
//! (memory) where there is one, else in `$TMPDIR`, is created 0600, and
//! is removed when the [`Scratch`] is dropped, on a panic, and on
//! SIGINT/SIGTERM/SIGHUP/SIGQUIT (the handler removes it, then the signal
//! takes its default course).

use super::{Result, SecretsError};
use std::ffi::CString;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicPtr, Ordering};

/// The paths the signal handler removes: a leaked `[file, dir]` pair.
static PATHS: AtomicPtr<[CString; 2]> = AtomicPtr::new(std::ptr::null_mut());

const SIGNALS: [libc::c_int; 4] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT];

/// A cleartext file for the editor.
#[derive(Debug)]
pub struct Scratch {
    dir: PathBuf,
    file: PathBuf,
}

impl Scratch {
    /// Writes `text` to `<private dir>/edit<suffix>`.
    pub fn create(suffix: &str, text: &[u8]) -> Result<Scratch> {
        let base = scratch_base();
        let dir = fresh_private_dir(&base).map_err(SecretsError::io(format!(
            "Cannot create a private directory in {}",
            base.display()
        )))?;
        let file = dir.join(format!("edit{suffix}"));
        let scratch = Scratch { dir, file };
        scratch.arm();
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&scratch.file)
            .map_err(SecretsError::io("Cannot create the file to edit"))?;
        f.write_all(text)
            .map_err(SecretsError::io("Cannot write the file to edit"))?;
        Ok(scratch)
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.file
    }

    /// The file's current text.
    pub fn read(&self) -> Result<super::Clear> {
        std::fs::read(&self.file)
            .map(zeroize::Zeroizing::new)
            .map_err(SecretsError::io("Cannot read the edited file"))
    }

    fn arm(&self) {
        let paths = Box::new([
            CString::new(self.file.as_os_str().as_bytes()).unwrap_or_default(),
            CString::new(self.dir.as_os_str().as_bytes()).unwrap_or_default(),
        ]);
        let old = PATHS.swap(Box::into_raw(paths), Ordering::SeqCst);
        if !old.is_null() {
            // SAFETY: the pointer came from Box::into_raw above.
            drop(unsafe { Box::from_raw(old) });
        }
        for sig in SIGNALS {
            // SAFETY: installs a handler that only calls async-signal-safe
            // functions (unlink, rmdir, signal, raise).
            unsafe {
                libc::signal(sig, on_signal as *const () as libc::sighandler_t);
            }
        }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        for sig in SIGNALS {
            // SAFETY: restores the default disposition.
            unsafe {
                libc::signal(sig, libc::SIG_DFL);
            }
        }
        let old = PATHS.swap(std::ptr::null_mut(), Ordering::SeqCst);
        if !old.is_null() {
            // SAFETY: the pointer came from Box::into_raw in `arm`.
            drop(unsafe { Box::from_raw(old) });
        }
        let _ = std::fs::remove_file(&self.file);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

extern "C" fn on_signal(sig: libc::c_int) {
    let paths = PATHS.load(Ordering::SeqCst);
    if !paths.is_null() {
        // SAFETY: the pair stays allocated until swapped out by Drop, which
        // restores the default handler first.
        let [file, dir] = unsafe { &*paths };
        // SAFETY: valid C strings; unlink and rmdir are async-signal-safe.
        unsafe {
            libc::unlink(file.as_ptr());
            libc::rmdir(dir.as_ptr());
        }
    }
    // SAFETY: async-signal-safe; the default action ends the process.
    unsafe {
        libc::signal(sig, libc::SIG_DFL);
        libc::raise(sig);
    }
}

/// `/dev/shm` if it is a writable directory, else the temp directory.
fn scratch_base() -> PathBuf {
    let shm = Path::new("/dev/shm");
    let writable = |p: &Path| {
        CString::new(p.as_os_str().as_bytes())
            // SAFETY: a valid C string.
            .map(|c| unsafe { libc::access(c.as_ptr(), libc::W_OK | libc::X_OK) } == 0)
            .unwrap_or(false)
    };
    if shm.is_dir() && writable(shm) {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    }
}

/// A new directory (0700) under `base` with a name no one else chose.
fn fresh_private_dir(base: &Path) -> std::io::Result<PathBuf> {
    let mut last = None;
    for n in 0..100u32 {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let dir = base.join(format!("batou-secrets-{}-{nanos:x}{n}", std::process::id()));
        match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("no free name")))
}
