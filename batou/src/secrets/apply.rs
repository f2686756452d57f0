//! Secrets into the environment at load time: overrides like
//! environment.cfg's, host data, `environment.secret_files`, and the
//! values that hide diffs. Checked like environment.cfg (at `deploy -c`
//! too): an unknown component or host section, or an attribute set in
//! both files, is an error naming the file and the section.

use super::cleartext::Cleartext;
use super::lock::FileLock;
use super::{EnvStore, Result, SecretsError};
use crate::environment::{Environment, Override};
use crate::report::{order, Report};
use std::collections::BTreeMap;
use std::path::Path;
use zeroize::Zeroizing;

/// Shortest line of a secret file that counts as a secret value.
pub const MIN_SECRET_LINE: usize = 4;

/// The decrypted secrets of an environment.
pub struct Loaded {
    /// The config file, as messages name it.
    pub file: String,
    /// Its parsed cleartext.
    pub config: Cleartext,
    /// Secret files: name → text.
    pub files: BTreeMap<String, Zeroizing<String>>,
}

/// Decrypts the secrets of environment `env`; `None` when it has none.
pub fn load(project_root: &Path, env: &str) -> Result<Option<Loaded>> {
    let store = EnvStore::open(project_root, env)?;
    let Some(provider) = store.provider else {
        return Ok(None);
    };
    let path = store.config_path(provider);
    let file = store.display(&path);
    let _lock = FileLock::shared(&path, &file)?;
    let clear = store.decrypt(&path)?;
    let text = std::str::from_utf8(&clear).map_err(|_| SecretsError::Invalid {
        file: file.clone(),
        message: "the decrypted text is not UTF-8".into(),
    })?;
    let config = Cleartext::parse(&file, text)?;
    let mut files = BTreeMap::new();
    for (name, path) in store.secret_files(provider)? {
        let display = store.display(&path);
        let _lock = FileLock::shared(&path, &display)?;
        let clear = store.decrypt(&path)?;
        let text = String::from_utf8(clear.to_vec()).map_err(|_| SecretsError::Invalid {
            file: display.clone(),
            message: "a secret file must be UTF-8 text".into(),
        })?;
        files.insert(name, Zeroizing::new(text));
    }
    Ok(Some(Loaded {
        file,
        config,
        files,
    }))
}

/// Merges decrypted secrets into `env`; `known` tells the component
/// names of the registry. Returns the errors (nothing is merged for a
/// section in error).
pub fn apply(env: &mut Environment, loaded: Loaded, known: &dyn Fn(&str) -> bool) -> Vec<Report> {
    let mut errors = Vec::new();
    let file = &loaded.file;
    let at = |line: usize| format!("{file}:{line} (decrypted)");
    let mut values = std::mem::take(&mut env.secrets.values);
    for section in &loaded.config.components {
        if !known(&section.name) {
            errors.push(
                Report::new(
                    "Secrets section for unknown component",
                    order::CONFIGURATION,
                )
                .field("Component", &section.name)
                .field("Location", at(section.line)),
            );
            continue;
        }
        let list = env.overrides.entry(section.name.clone()).or_default();
        for e in &section.entries {
            if let Some(first) = list.iter().find(|o| o.key == e.key) {
                let title = if first.secret {
                    "Attribute set twice in the secrets"
                } else {
                    "Attribute set in both the secrets and the environment"
                };
                errors.push(
                    Report::new(title, order::CONFIGURATION)
                        .field("Component", &section.name)
                        .field("Attribute", &e.key)
                        .field("Secrets", at(e.line))
                        .field("Also at", &first.location),
                );
                continue;
            }
            if !e.value.trim().is_empty() {
                values.insert(e.value.trim().to_string());
            }
            list.push(Override {
                key: e.key.clone(),
                value: e.value.clone(),
                location: at(e.line),
                secret: true,
            });
        }
    }
    for section in &loaded.config.hosts {
        let Some(host) = env.hosts.iter_mut().find(|h| h.name == section.name) else {
            errors.push(
                Report::new("Secrets section for unknown host", order::CONFIGURATION)
                    .field("Host", &section.name)
                    .field("Location", at(section.line)),
            );
            continue;
        };
        for e in &section.entries {
            if !e.value.trim().is_empty() {
                values.insert(e.value.trim().to_string());
            }
            host.data.insert(e.key.clone(), e.value.clone());
        }
    }
    for (name, text) in &loaded.files {
        values.extend(
            text.lines()
                .map(str::trim)
                .filter(|l| l.chars().count() >= MIN_SECRET_LINE)
                .map(str::to_string),
        );
        env.secrets.files.insert(name.clone(), text.to_string());
    }
    env.secrets.values = values;
    errors
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loaded(text: &str, files: &[(&str, &str)]) -> Loaded {
        Loaded {
            file: "environments/e/secrets.cfg.age".into(),
            config: Cleartext::parse("s", text).unwrap(),
            files: files
                .iter()
                .map(|(k, v)| (k.to_string(), Zeroizing::new(v.to_string())))
                .collect(),
        }
    }

    #[test]
    fn merges_overrides_host_data_files_and_secret_values() {
        let mut env = Environment::new("e", "environments/e/environment.cfg");
        env.hosts.push(env.new_host("web"));
        let l = loaded(
            "[batou]\nmembers = x\n[app]\npassword = two words\n[host:web]\ndata-alias = a1\n",
            &[("cert", "line one is long\nab\n  padded line  \n")],
        );
        let errors = apply(&mut env, l, &|c| c == "app");
        assert!(errors.is_empty());
        let o = &env.overrides["app"][0];
        assert_eq!(
            (o.key.as_str(), o.value.as_str(), o.secret),
            ("password", "two words", true)
        );
        assert_eq!(o.location, "environments/e/secrets.cfg.age:4 (decrypted)");
        assert!(!format!("{o:?}").contains("two words"));
        assert_eq!(env.hosts[0].data["alias"], "a1");
        assert_eq!(
            env.secrets.files["cert"],
            "line one is long\nab\n  padded line  \n"
        );
        let values: Vec<&str> = env.secrets.values.iter().map(String::as_str).collect();
        assert_eq!(
            values,
            ["a1", "line one is long", "padded line", "two words"]
        );
        assert!(!format!("{:?}", env.secrets).contains("padded"));
    }

    #[test]
    fn reports_unknown_sections_and_duplicates() {
        let mut env = Environment::new("e", "environments/e/environment.cfg");
        env.overrides
            .entry("app".into())
            .or_default()
            .push(Override {
                key: "user".into(),
                value: "a".into(),
                location: "environments/e/environment.cfg:7".into(),
                secret: false,
            });
        let l = loaded(
            "[batou]\nmembers = x\n[app]\nuser = b\n[nope]\nk = v\n[host:ghost]\ndata-x = y\n",
            &[],
        );
        let errors = apply(&mut env, l, &|c| c == "app");
        let titles: Vec<&str> = errors.iter().map(|r| r.title.as_str()).collect();
        assert_eq!(
            titles,
            [
                "Attribute set in both the secrets and the environment",
                "Secrets section for unknown component",
                "Secrets section for unknown host"
            ]
        );
        assert_eq!(
            env.overrides["app"].len(),
            1,
            "nothing merged for the clash"
        );
    }
}
