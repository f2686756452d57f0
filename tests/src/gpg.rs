//! A throw-away GnuPG home with keys made by the real `gpg`, for the
//! secrets tests; its gpg-agent is stopped when dropped.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// A GnuPG home in a short temp path (gpg-agent's socket path is limited).
pub struct GnuPg {
    dir: tempfile::TempDir,
}

impl GnuPg {
    /// A new home (0700) whose agent accepts preset passphrases.
    pub fn new() -> GnuPg {
        let dir = tempfile::Builder::new()
            .prefix("gpg-")
            .tempdir_in("/tmp")
            .expect("create a GnuPG home");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700))
            .expect("chmod the GnuPG home");
        std::fs::write(
            dir.path().join("gpg-agent.conf"),
            "allow-preset-passphrase\nallow-loopback-pinentry\n",
        )
        .expect("write gpg-agent.conf");
        GnuPg { dir }
    }

    /// `GNUPGHOME`.
    pub fn home(&self) -> &Path {
        self.dir.path()
    }

    /// `gpg` with this home, in batch mode.
    pub fn gpg(&self) -> Command {
        let mut c = Command::new("gpg");
        c.env("GNUPGHOME", self.home())
            .args(["--batch", "--yes", "--quiet", "--trust-model", "always"])
            .stdin(Stdio::null());
        c
    }

    /// Makes a key (ed25519 with a cv25519 encryption subkey) for `uid`,
    /// protected by `passphrase` if given; returns its fingerprint.
    pub fn generate(&self, uid: &str, passphrase: Option<&str>) -> String {
        let out = self
            .gpg()
            .args([
                "--pinentry-mode",
                "loopback",
                "--passphrase",
                passphrase.unwrap_or(""),
            ])
            .args([
                "--quick-generate-key",
                uid,
                "future-default",
                "default",
                "never",
            ])
            .output()
            .expect("run gpg --quick-generate-key");
        assert!(
            out.status.success(),
            "gpg key generation failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        self.colons(uid, "fpr")
            .into_iter()
            .next()
            .expect("the new key's fingerprint")
    }

    /// Field 10 of `--with-colons` lines of a kind (`fpr`, `grp`).
    fn colons(&self, uid: &str, kind: &str) -> Vec<String> {
        let out = self
            .gpg()
            .args(["--with-colons", "--with-keygrip", "--list-secret-keys", uid])
            .output()
            .expect("run gpg --list-secret-keys");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.starts_with(&format!("{kind}:")))
            .filter_map(|l| l.split(':').nth(9).map(str::to_string))
            .collect()
    }

    /// Puts the passphrase of every key of `uid` into gpg-agent's cache
    /// (so only the agent holds the unlocked key).
    pub fn preset(&self, uid: &str, passphrase: &str) {
        for grip in self.colons(uid, "grp") {
            let status = Command::new("/usr/lib/gnupg/gpg-preset-passphrase")
                .env("GNUPGHOME", self.home())
                .args(["--preset", "-P", passphrase, &grip])
                .status()
                .expect("run gpg-preset-passphrase");
            assert!(status.success(), "gpg-preset-passphrase failed");
        }
    }

    /// Empties gpg-agent's passphrase cache.
    pub fn forget_passphrases(&self) {
        let _ = Command::new("gpgconf")
            .env("GNUPGHOME", self.home())
            .args(["--reload", "gpg-agent"])
            .status();
    }

    /// Encrypts `text` to `recipients` with gpg (binary output).
    pub fn encrypt(&self, recipients: &[&str], text: &str) -> Vec<u8> {
        let mut c = self.gpg();
        c.arg("--encrypt");
        for r in recipients {
            c.args(["-r", r]);
        }
        let out = pipe(c, text.as_bytes());
        assert!(
            out.status.success(),
            "gpg --encrypt failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    /// Decrypts with gpg.
    pub fn decrypt(&self, data: &[u8]) -> Output {
        let mut c = self.gpg();
        c.arg("--decrypt");
        pipe(c, data)
    }

    /// Deletes the secret key of a fingerprint (the public key stays).
    pub fn delete_secret_key(&self, fpr: &str) {
        let out = self
            .gpg()
            .args(["--delete-secret-keys", fpr])
            .output()
            .expect("run gpg --delete-secret-keys");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The keyring file.
    pub fn pubring(&self) -> PathBuf {
        self.home().join("pubring.kbx")
    }
}

impl Default for GnuPg {
    fn default() -> Self {
        GnuPg::new()
    }
}

fn pipe(mut c: Command, input: &[u8]) -> Output {
    use std::io::Write;
    let mut child = c
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run gpg");
    let mut stdin = child.stdin.take().expect("gpg's stdin");
    stdin.write_all(input).expect("write to gpg");
    drop(stdin);
    child.wait_with_output().expect("wait for gpg")
}

impl Drop for GnuPg {
    fn drop(&mut self) {
        let _ = Command::new("gpgconf")
            .env("GNUPGHOME", self.home())
            .args(["--kill", "gpg-agent"])
            .status();
    }
}
