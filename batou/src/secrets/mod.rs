//! Secrets: encrypted overrides and secret files per environment, as
//! batou ≥ 2.4 names them.
//!
//! - `environments/<env>/secrets.cfg.gpg` | `.age` | `.age-diffable` (at
//!   most one): an INI text with `[batou]` (`members`, `secret_provider`),
//!   `[component:NAME]` (or `[NAME]`) overrides and `[host:NAME]` with
//!   `data-*` keys;
//! - `environments/<env>/secret-<name>.gpg` | `.age`: further files,
//!   `environment.secret_files["<name>"]` in templates and components.
//!
//! What runs where:
//! - OpenPGP encryption is in-process (sequoia-openpgp) to the members'
//!   certificates, read from the user's GnuPG keyring (`$GNUPGHOME` or
//!   `~/.gnupg`: `pubring.kbx` or `pubring.gpg`; `gpg --export` only when
//!   GnuPG keeps its keys in keyboxd). Recipients of a file are read
//!   in-process too.
//! - OpenPGP decryption needs the user's secret keys, which GnuPG keeps in
//!   gpg-agent (passphrase cache, smartcards): it runs `gpg --decrypt` and
//!   reads the cleartext from its stdout, never from a file.
//! - age encryption and decryption are in-process (the `age` crate): no
//!   `age` or `rage` binary is needed.
//!
//! Cleartext lives only in memory (zeroized when dropped); `secrets edit`
//! hands it to the editor in a 0600 file in a private directory (on
//! `/dev/shm` where there is one), removed on every way out.

pub(crate) mod ages;
mod apply;
pub(crate) mod cleartext;
pub(crate) mod commands;
mod diffable;
mod fetch;
mod lock;
#[doc(hidden)]
pub mod openpgp;
mod scratch;
mod store;
mod value;

pub(crate) use apply::{apply, load};
pub(crate) use store::{decrypt_file, EnvStore};
pub use value::Secret;

use std::str::FromStr;

#[doc(hidden)]
/// Decrypted bytes: wiped from memory when dropped.
pub type Clear = zeroize::Zeroizing<Vec<u8>>;

#[doc(hidden)]
/// How the files of an environment are encrypted (`secret_provider`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    /// OpenPGP (`.gpg`).
    Gpg,
    /// age (`.age`).
    Age,
    /// age per value: the config stays INI, every value is encrypted on
    /// its own (`.age-diffable`); secret files are `.age`.
    AgeDiffable,
}

impl Provider {
    /// All providers.
    pub const ALL: [Provider; 3] = [Provider::Gpg, Provider::Age, Provider::AgeDiffable];

    /// The name in `secret_provider`.
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Gpg => "gpg",
            Provider::Age => "age",
            Provider::AgeDiffable => "age-diffable",
        }
    }

    /// File name of the encrypted config.
    pub fn config_name(self) -> &'static str {
        match self {
            Provider::Gpg => "secrets.cfg.gpg",
            Provider::Age => "secrets.cfg.age",
            Provider::AgeDiffable => "secrets.cfg.age-diffable",
        }
    }

    /// Suffix of secret files.
    pub fn file_suffix(self) -> &'static str {
        match self {
            Provider::Gpg => ".gpg",
            Provider::Age | Provider::AgeDiffable => ".age",
        }
    }

    /// The kind of an encrypted file by its name's suffix.
    pub fn of_file(name: &str) -> Option<Provider> {
        if name.ends_with(".age-diffable") {
            Some(Provider::AgeDiffable)
        } else if name.ends_with(".age") {
            Some(Provider::Age)
        } else if name.ends_with(".gpg") {
            Some(Provider::Gpg)
        } else {
            None
        }
    }
}

impl FromStr for Provider {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Provider::ALL
            .into_iter()
            .find(|p| p.as_str() == s.trim())
            .ok_or_else(|| {
                format!(
                    "expected one of: gpg, age, age-diffable (got {:?})",
                    s.trim()
                )
            })
    }
}

#[doc(hidden)]
/// What can go wrong with secrets; every message names the file.
#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    /// More than one `secrets.cfg.*`.
    #[error("Multiple secrets files in {dir}: {files}. Keep exactly one.")]
    Multiple {
        /// The environment directory.
        dir: String,
        /// The files found.
        files: String,
    },
    /// A file could not be decrypted.
    #[error("Cannot decrypt {file}: {reason}")]
    Decrypt {
        /// The file.
        file: String,
        /// Why, and the keys it is encrypted to.
        reason: String,
    },
    /// A file could not be encrypted.
    #[error("Cannot encrypt {file}: {reason}")]
    Encrypt {
        /// The file.
        file: String,
        /// Why.
        reason: String,
    },
    /// Another process holds the file.
    #[error("File already locked: {0} (another batou secrets command is using it)")]
    Locked(String),
    /// The cleartext is not valid.
    #[error("{file}: {message}")]
    Invalid {
        /// The file.
        file: String,
        /// What is wrong.
        message: String,
    },
    /// A wrong command line.
    #[error("{0}")]
    Usage(String),
    /// Reading or writing failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

impl SecretsError {
    pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> SecretsError {
        let what = what.into();
        move |source| SecretsError::Io { what, source }
    }
}

#[doc(hidden)]
/// `Result` of secrets operations.
pub type Result<T, E = SecretsError> = std::result::Result<T, E>;
