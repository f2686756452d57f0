//! The encrypted files of one environment: which there are, decrypting
//! them, resolving members and encrypting to them.

use super::ages::{self, AgeKeys};
use super::{openpgp, Clear, Provider, Result, SecretsError};
use sequoia_openpgp::Cert;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// `environments/<env>/` and its secrets.
#[derive(Debug, Clone)]
pub struct EnvStore {
    /// Environment name.
    pub name: String,
    /// The directory.
    pub dir: PathBuf,
    /// The provider of the existing `secrets.cfg.*`, if any.
    pub provider: Option<Provider>,
}

impl EnvStore {
    /// The environment `env` of the project; an unknown environment or
    /// more than one `secrets.cfg.*` is an error.
    pub fn open(project_root: &Path, env: &str) -> Result<EnvStore> {
        let dir = project_root.join("environments").join(env);
        if !crate::environment::is_plain_name(env) || !dir.join("environment.cfg").is_file() {
            let existing = crate::environment::environment_names(project_root);
            return Err(SecretsError::Usage(format!(
                "Unknown environment {env:?}; existing environments: {}",
                if existing.is_empty() {
                    "none".to_string()
                } else {
                    existing.join(", ")
                }
            )));
        }
        let mut configs = Vec::new();
        let mut unknown = Vec::new();
        for entry in std::fs::read_dir(&dir)
            .map_err(SecretsError::io(format!("Cannot read {}", dir.display())))?
        {
            let Ok(entry) = entry else { continue };
            let name = entry.file_name().to_string_lossy().into_owned();
            if !name.starts_with("secrets.cfg.") {
                continue;
            }
            match Provider::ALL.into_iter().find(|p| p.config_name() == name) {
                Some(p) => configs.push(p),
                None => unknown.push(name),
            }
        }
        let rel = format!("environments/{env}");
        if let Some(name) = unknown.first() {
            return Err(SecretsError::Invalid {
                file: format!("{rel}/{name}"),
                message: "unknown kind of secrets file; expected secrets.cfg.gpg, secrets.cfg.age \
                          or secrets.cfg.age-diffable"
                    .into(),
            });
        }
        if configs.len() > 1 {
            let mut files: Vec<&str> = configs.iter().map(|p| p.config_name()).collect();
            files.sort_unstable();
            return Err(SecretsError::Multiple {
                dir: rel,
                files: files.join(", "),
            });
        }
        Ok(EnvStore {
            name: env.to_string(),
            dir,
            provider: configs.first().copied(),
        })
    }

    /// `environments/<env>/<file>`, as messages name files.
    pub fn display(&self, path: &Path) -> String {
        let file = path
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        format!("environments/{}/{file}", self.name)
    }

    /// The config file of a provider.
    pub fn config_path(&self, provider: Provider) -> PathBuf {
        self.dir.join(provider.config_name())
    }

    /// The path of secret file `name` with a provider.
    pub fn secret_file_path(&self, provider: Provider, name: &str) -> PathBuf {
        self.dir
            .join(format!("secret-{name}{}", provider.file_suffix()))
    }

    /// The secret files of a provider, by name.
    pub fn secret_files(&self, provider: Provider) -> Result<BTreeMap<String, PathBuf>> {
        let suffix = provider.file_suffix();
        let mut out = BTreeMap::new();
        let entries = std::fs::read_dir(&self.dir).map_err(SecretsError::io(format!(
            "Cannot read {}",
            self.dir.display()
        )))?;
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(stem) = name
                .strip_prefix("secret-")
                .and_then(|n| n.strip_suffix(suffix))
            else {
                continue;
            };
            if !stem.is_empty() && entry.file_type().map(|t| t.is_file()).unwrap_or(false) {
                out.insert(stem.to_string(), entry.path());
            }
        }
        Ok(out)
    }

    /// Whom the files of a provider are encrypted to, for error messages:
    /// for age the keys of `age_keys.txt`.
    pub fn age_recipients_hint(&self) -> String {
        let keys: Vec<String> = std::fs::read_to_string(self.dir.join("age_keys.txt"))
            .unwrap_or_default()
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .map(short_key)
            .collect();
        if keys.is_empty() {
            format!(
                "keys not recorded (environments/{}/age_keys.txt is missing)",
                self.name
            )
        } else {
            format!(
                "the keys of environments/{}/age_keys.txt: {}",
                self.name,
                keys.join(", ")
            )
        }
    }

    /// Decrypts a file of this environment by its kind.
    pub fn decrypt(&self, path: &Path) -> Result<Clear> {
        decrypt_file(path, &self.display(path), &self.age_recipients_hint())
    }
}

/// `ssh-ed25519 …last12 comment`: a key recognisable in a message.
fn short_key(line: &str) -> String {
    let mut parts = line.split_whitespace();
    let kind = parts.next().unwrap_or("");
    let key = parts.next().unwrap_or("");
    let comment: Vec<&str> = parts.collect();
    let tail = &key[key.len().saturating_sub(12)..];
    let mut s = if key.is_empty() {
        kind.to_string()
    } else {
        format!("{kind} …{tail}")
    };
    if !comment.is_empty() {
        s.push(' ');
        s.push_str(&comment.join(" "));
    }
    s
}

/// Decrypts an encrypted file by the suffix of its name; an
/// age-diffable config decrypts to its cleartext INI. An empty file is
/// empty cleartext (as batou).
pub fn decrypt_file(path: &Path, display: &str, age_hint: &str) -> Result<Clear> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let kind = Provider::of_file(&name).ok_or_else(|| SecretsError::Invalid {
        file: display.to_string(),
        message: "not an encrypted file (expected .gpg, .age or .age-diffable)".into(),
    })?;
    let data = std::fs::read(path).map_err(SecretsError::io(format!("Cannot read {display}")))?;
    if data.is_empty() {
        return Ok(Clear::new(Vec::new()));
    }
    match kind {
        Provider::Gpg => openpgp::decrypt(path, display),
        Provider::Age => ages::decrypt(&data, display, age_hint),
        Provider::AgeDiffable => {
            let text = String::from_utf8(data).map_err(|_| SecretsError::Invalid {
                file: display.to_string(),
                message: "an age-diffable file must be UTF-8 text".into(),
            })?;
            let decoded = super::diffable::decrypt(&text, display, age_hint)?;
            Ok(Clear::new(decoded.text.as_bytes().to_vec()))
        }
    }
}

/// The members of an environment, resolved to keys.
pub enum Keys {
    /// OpenPGP certificates.
    Gpg(Vec<Cert>),
    /// age recipients.
    Age(AgeKeys),
}

impl Keys {
    /// Resolves `members` for a provider.
    pub fn resolve(provider: Provider, members: &[String]) -> Result<Keys> {
        Ok(match provider {
            Provider::Gpg => Keys::Gpg(openpgp::resolve_members(members)?),
            Provider::Age | Provider::AgeDiffable => Keys::Age(ages::resolve_members(members)?),
        })
    }

    /// Encrypts one whole file.
    pub fn encrypt(&self, plaintext: &[u8]) -> Result<Vec<u8>> {
        match self {
            Keys::Gpg(certs) => openpgp::encrypt(certs, plaintext),
            Keys::Age(keys) => ages::encrypt(keys, plaintext),
        }
    }

    /// Whether an existing file is encrypted to other keys than these
    /// (OpenPGP: its recipients; age files do not name theirs, and
    /// `age_keys.txt` tells instead).
    pub fn differ_from(&self, existing: &[u8]) -> bool {
        match self {
            Keys::Gpg(certs) => {
                openpgp::recipients_of(existing) != openpgp::encryption_key_ids(certs)
            }
            Keys::Age(_) => false,
        }
    }
}

/// Writes an encrypted file atomically (temp file, rename).
pub fn write_encrypted(path: &Path, display: &str, data: &[u8]) -> Result<()> {
    crate::safe_fs::write_atomic(path, data, 0o644)
        .map_err(SecretsError::io(format!("Cannot write {display}")))
}
