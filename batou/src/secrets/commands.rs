//! `batou secrets …`: edit, summary, add, remove, reencrypt,
//! decrypttostdout. The steps return data and report notes; the command
//! line (`lib.rs`) prints them.

use super::ages;
use super::cleartext::{members_values, set_batou_option, Cleartext, NEW_FILE_TEMPLATE};
use super::diffable::{self, Decoded};
use super::lock::FileLock;
use super::scratch::Scratch;
use super::store::{write_encrypted, Keys};
use super::{Clear, EnvStore, Provider, Result, SecretsError};
use std::path::Path;
use zeroize::Zeroizing;

/// What a command tells the user on the way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Note {
    /// Progress.
    Info(String),
    /// Something to check.
    Warning(String),
}

/// Where notes go.
pub type Notes<'a> = &'a mut dyn FnMut(Note);

/// What to do after an error in `edit` (batou's prompt).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Open the editor again with the edited text.
    Edit,
    /// Try to encrypt the edited text again.
    Encrypt,
    /// Give up; the edit is lost.
    Quit,
}

/// The current config of an environment, decrypted.
struct Current {
    provider: Provider,
    clear: Zeroizing<String>,
    decoded: Option<Decoded>,
}

fn read_current(store: &EnvStore) -> Result<Option<Current>> {
    let Some(provider) = store.provider else {
        return Ok(None);
    };
    let path = store.config_path(provider);
    let display = store.display(&path);
    let data = std::fs::read(&path).map_err(SecretsError::io(format!("Cannot read {display}")))?;
    if data.is_empty() {
        return Ok(Some(Current {
            provider,
            clear: Zeroizing::new(String::new()),
            decoded: None,
        }));
    }
    let utf8 = |bytes: Vec<u8>| {
        String::from_utf8(bytes).map_err(|_| SecretsError::Invalid {
            file: display.clone(),
            message: "the decrypted text is not UTF-8".into(),
        })
    };
    if provider == Provider::AgeDiffable {
        let text = utf8(data)?;
        let decoded = diffable::decrypt(&text, &display, &store.age_recipients_hint())?;
        return Ok(Some(Current {
            provider,
            clear: decoded.text.clone(),
            decoded: Some(decoded),
        }));
    }
    let clear = store.decrypt(&path)?;
    Ok(Some(Current {
        provider,
        clear: Zeroizing::new(utf8(clear.to_vec())?),
        decoded: None,
    }))
}

/// Encrypts a new config text (and, where the keys or the provider
/// changed, every secret file) for an environment whose config the
/// caller has locked.
fn write_config(
    store: &EnvStore,
    current: Option<&Current>,
    new_text: &str,
    force: bool,
    notes: Notes,
) -> Result<()> {
    let old_provider = current.map(|c| c.provider);
    let target = store.display(&store.config_path(old_provider.unwrap_or(Provider::Age)));
    let parsed = Cleartext::parse(&target, new_text)?;
    let mut text = Zeroizing::new(new_text.to_string());
    let provider = match parsed.provider {
        Some(p) => p,
        None => {
            let p = old_provider.unwrap_or(Provider::Age);
            *text = set_batou_option(&text, "secret_provider", &[p.as_str().to_string()]);
            notes(Note::Info(format!(
                "Setting secret provider to {}.",
                p.as_str()
            )));
            p
        }
    };
    if parsed.members.is_empty() {
        return Err(SecretsError::Invalid {
            file: target,
            message: "no members: list at least one key in `members` of [batou]".into(),
        });
    }
    let keys = resolve_keys(store, provider, &parsed.members, notes)?;
    let converting = old_provider.is_some_and(|p| p != provider);
    let path = store.config_path(provider);
    let display = store.display(&path);
    let mut keys_changed = matches!(&keys, (_, true));
    let keys = keys.0;
    if !converting && !keys_changed {
        if let Ok(existing) = std::fs::read(&path) {
            keys_changed = !existing.is_empty() && keys.differ_from(&existing);
        }
    }
    let unchanged = current.is_some_and(|c| !converting && c.clear.as_str() == text.as_str());
    if !unchanged || keys_changed || force {
        let data = match provider {
            Provider::AgeDiffable => {
                let Keys::Age(age_keys) = &keys else {
                    return Err(SecretsError::Usage("age-diffable needs age keys".into()));
                };
                let old = current
                    .filter(|_| !converting)
                    .and_then(|c| c.decoded.as_ref());
                diffable::encrypt(&text, old, age_keys, force || keys_changed)?.into_bytes()
            }
            _ => keys.encrypt(text.as_bytes())?,
        };
        write_encrypted(&path, &display, &data).map_err(|e| name_file(e, &display))?;
        notes(Note::Info(format!("Encrypted {display}.")));
    }
    reencrypt_files(
        store,
        old_provider.unwrap_or(provider),
        provider,
        &keys,
        force || keys_changed,
        notes,
    )?;
    if let Some(old) = old_provider.filter(|_| converting) {
        let old_path = store.config_path(old);
        std::fs::remove_file(&old_path).map_err(SecretsError::io(format!(
            "Cannot remove {}",
            store.display(&old_path)
        )))?;
        notes(Note::Info(format!(
            "Secret provider changed from {} to {}.",
            old.as_str(),
            provider.as_str()
        )));
    }
    Ok(())
}

fn name_file(e: SecretsError, display: &str) -> SecretsError {
    match e {
        SecretsError::Encrypt { file, reason } if file.starts_with('(') => SecretsError::Encrypt {
            file: display.to_string(),
            reason,
        },
        e => e,
    }
}

/// Resolves members; for age writes `age_keys.txt` and tells whether it
/// changed.
fn resolve_keys(
    store: &EnvStore,
    provider: Provider,
    members: &[String],
    notes: Notes,
) -> Result<(Keys, bool)> {
    let keys = Keys::resolve(provider, members)?;
    let mut changed = false;
    if let Keys::Age(k) = &keys {
        for w in &k.warnings {
            notes(Note::Warning(w.clone()));
        }
        if let Some(w) = ages::write_keys_file(&store.dir, &k.keys_file)? {
            notes(Note::Warning(w));
            changed = true;
        }
    }
    Ok((keys, changed))
}

/// Re-encrypts the secret files when the keys or the provider changed
/// (or when forced); files of the old provider's suffix are replaced.
fn reencrypt_files(
    store: &EnvStore,
    from: Provider,
    to: Provider,
    keys: &Keys,
    force: bool,
    notes: Notes,
) -> Result<()> {
    for (name, old_path) in store.secret_files(from)? {
        let new_path = store.secret_file_path(to, &name);
        let moved = old_path != new_path;
        let data = std::fs::read(&old_path).unwrap_or_default();
        if !(force || moved || (!data.is_empty() && keys.differ_from(&data))) {
            continue;
        }
        let display = store.display(&new_path);
        let _lock = FileLock::exclusive(&old_path, &store.display(&old_path))?;
        let clear = store.decrypt(&old_path)?;
        let encrypted = keys.encrypt(&clear).map_err(|e| name_file(e, &display))?;
        write_encrypted(&new_path, &display, &encrypted)?;
        if moved {
            let _ = std::fs::remove_file(&old_path);
        }
        notes(Note::Info(format!("Encrypted {display}.")));
    }
    Ok(())
}

/// Runs the editor on the cleartext until it encrypts, nothing changed,
/// or the user quits. `editor` is a shell command (`$EDITOR`); the file
/// name is appended. `retry` decides after an error (batou's prompt).
pub fn edit(
    project_root: &Path,
    env: &str,
    file: Option<&str>,
    editor: &str,
    retry: &mut dyn FnMut(&SecretsError) -> Retry,
    notes: Notes,
) -> Result<()> {
    let store = EnvStore::open(project_root, env)?;
    match file {
        None => edit_config(&store, editor, retry, notes),
        Some(name) => edit_secret_file(&store, name, editor, retry, notes),
    }
}

fn edit_config(
    store: &EnvStore,
    editor: &str,
    retry: &mut dyn FnMut(&SecretsError) -> Retry,
    notes: Notes,
) -> Result<()> {
    let lock_path = store.config_path(store.provider.unwrap_or(Provider::Age));
    let _lock = FileLock::exclusive(&lock_path, &store.display(&lock_path))?;
    let current = read_current(store)?;
    let original: Option<Zeroizing<String>> = current
        .as_ref()
        .filter(|c| !c.clear.is_empty())
        .map(|c| c.clear.clone());
    let start = original
        .clone()
        .unwrap_or_else(|| Zeroizing::new(NEW_FILE_TEMPLATE.to_string()));
    edit_loop(
        &start,
        ".cfg",
        editor,
        original.as_deref().map(String::as_str),
        retry,
        notes,
        &mut |text, notes| write_config(store, current.as_ref(), text, false, notes),
    )
}

fn edit_secret_file(
    store: &EnvStore,
    name: &str,
    editor: &str,
    retry: &mut dyn FnMut(&SecretsError) -> Retry,
    notes: Notes,
) -> Result<()> {
    let Some(provider) = store.provider else {
        return Err(SecretsError::Usage(format!(
            "Cannot edit secret files for environment {} without secret configuration \
             (create it first with `batou secrets edit {}`)",
            store.name, store.name
        )));
    };
    if name.is_empty() || name.contains('/') || name.starts_with('.') {
        return Err(SecretsError::Usage(format!(
            "Invalid secret file name {name:?}"
        )));
    }
    let config_path = store.config_path(provider);
    let _config_lock = FileLock::exclusive(&config_path, &store.display(&config_path))?;
    let current = read_current(store)?;
    let members = current
        .as_ref()
        .map(|c| Cleartext::parse(&store.display(&config_path), &c.clear))
        .transpose()?
        .map(|c| c.members)
        .unwrap_or_default();
    let path = store.secret_file_path(provider, name);
    let display = store.display(&path);
    let _lock = FileLock::exclusive(&path, &display)?;
    let data = std::fs::read(&path).unwrap_or_default();
    let original = if data.is_empty() {
        None
    } else {
        let clear = store.decrypt(&path)?;
        Some(Zeroizing::new(String::from_utf8(clear.to_vec()).map_err(
            |_| SecretsError::Invalid {
                file: display.clone(),
                message: "a secret file must be UTF-8 text".into(),
            },
        )?))
    };
    let start = original.clone().unwrap_or_default();
    let suffix = Path::new(name)
        .extension()
        .map(|e| format!(".{}", e.to_string_lossy()))
        .unwrap_or_default();
    edit_loop(
        &start,
        &suffix,
        editor,
        original.as_deref().map(String::as_str),
        retry,
        notes,
        &mut |text, notes| {
            if members.is_empty() {
                return Err(SecretsError::Invalid {
                    file: store.display(&config_path),
                    message: "no members: list at least one key in `members` of [batou]".into(),
                });
            }
            let (keys, _) = resolve_keys(store, provider, &members, notes)?;
            let encrypted = keys
                .encrypt(text.as_bytes())
                .map_err(|e| name_file(e, &display))?;
            write_encrypted(&path, &display, &encrypted)?;
            notes(Note::Info(format!("Encrypted {display}.")));
            Ok(())
        },
    )
}

#[allow(clippy::too_many_arguments)]
fn edit_loop(
    start: &str,
    suffix: &str,
    editor: &str,
    original: Option<&str>,
    retry: &mut dyn FnMut(&SecretsError) -> Retry,
    notes: Notes,
    save: &mut dyn FnMut(&str, Notes) -> Result<()>,
) -> Result<()> {
    let mut text = Zeroizing::new(start.to_string());
    let mut next = Retry::Edit;
    loop {
        let attempt = (|| {
            if next == Retry::Edit {
                *text = run_editor(editor, suffix, &text)?;
            }
            if original == Some(text.as_str()) {
                notes(Note::Info(
                    "No changes from original cleartext. Not updating.".into(),
                ));
                return Ok(());
            }
            save(&text, &mut *notes)
        })();
        match attempt {
            Ok(()) => return Ok(()),
            Err(e) => match retry(&e) {
                Retry::Quit => return Err(e),
                r => next = r,
            },
        }
    }
}

/// The editor on a scratch copy; returns the edited text (the scratch
/// file is gone when this returns).
fn run_editor(editor: &str, suffix: &str, text: &str) -> Result<String> {
    let scratch = Scratch::create(suffix, text.as_bytes())?;
    let status = std::process::Command::new("/bin/sh")
        .arg("-c")
        .arg(format!("{editor} \"$1\""))
        .arg("batou-secrets-edit")
        .arg(scratch.path())
        .status()
        .map_err(SecretsError::io(format!(
            "Cannot run the editor {editor:?}"
        )))?;
    if !status.success() {
        return Err(SecretsError::Usage(format!(
            "The editor {editor:?} failed ({status}); nothing was encrypted"
        )));
    }
    let edited = scratch.read()?;
    String::from_utf8(edited.to_vec())
        .map_err(|_| SecretsError::Usage("The edited text is not UTF-8".into()))
}

/// The environments named in `--environments a,b` (all when empty).
pub fn select_environments(project_root: &Path, list: &str) -> Result<Vec<String>> {
    let all = crate::environment::environment_names(project_root);
    let wanted: Vec<String> = list
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    if wanted.is_empty() {
        return Ok(all);
    }
    let unknown: Vec<&str> = wanted
        .iter()
        .filter(|w| !all.contains(w))
        .map(String::as_str)
        .collect();
    if !unknown.is_empty() {
        return Err(SecretsError::Usage(format!(
            "Unknown environment(s): {}; existing environments: {}",
            unknown.join(", "),
            all.join(", ")
        )));
    }
    Ok(wanted)
}

/// What `secrets summary` shows of one environment.
#[derive(Debug)]
pub struct EnvSummary {
    /// Environment.
    pub name: String,
    /// Members and secret files, or why they cannot be read.
    pub state: Result<Option<(Vec<String>, Vec<String>)>>,
}

/// Members and secret files of every environment, sorted by name.
pub fn summary(project_root: &Path) -> Vec<EnvSummary> {
    crate::environment::environment_names(project_root)
        .into_iter()
        .map(|name| {
            let state = summarize(project_root, &name);
            EnvSummary { name, state }
        })
        .collect()
}

fn summarize(project_root: &Path, env: &str) -> Result<Option<(Vec<String>, Vec<String>)>> {
    let store = EnvStore::open(project_root, env)?;
    let Some(provider) = store.provider else {
        return Ok(None);
    };
    let path = store.config_path(provider);
    let display = store.display(&path);
    let _lock = FileLock::shared(&path, &display)?;
    let text: Zeroizing<String> = if provider == Provider::AgeDiffable {
        // [batou] is in clear: no key needed.
        Zeroizing::new(
            std::fs::read_to_string(&path)
                .map_err(SecretsError::io(format!("Cannot read {display}")))?,
        )
    } else {
        let clear = store.decrypt(&path)?;
        Zeroizing::new(String::from_utf8_lossy(&clear).into_owned())
    };
    let members = batou_members(&display, &text)?;
    let files = store.secret_files(provider)?.into_keys().collect();
    Ok(Some((members, files)))
}

/// `members` of `[batou]` only (the other sections of an age-diffable
/// file are ciphertext).
fn batou_members(display: &str, text: &str) -> Result<Vec<String>> {
    use super::cleartext::{ini_lines, IniLine};
    let mut section = String::new();
    for l in ini_lines(text) {
        match l {
            IniLine::Header(name, _) => section = name,
            IniLine::Key { key, value, .. } if section == "batou" && key == "members" => {
                return Ok(super::cleartext::split_members(&value));
            }
            _ => {}
        }
    }
    let _ = display;
    Ok(Vec::new())
}

fn change_members(
    project_root: &Path,
    envs: &str,
    notes: Notes,
    change: &dyn Fn(&mut Vec<String>) -> bool,
) -> Result<()> {
    for env in select_environments(project_root, envs)? {
        let store = EnvStore::open(project_root, &env)?;
        let Some(provider) = store.provider else {
            notes(Note::Info(format!("{env}: no secrets, nothing to change")));
            continue;
        };
        let path = store.config_path(provider);
        let _lock = FileLock::exclusive(&path, &store.display(&path))?;
        let Some(current) = read_current(&store)? else {
            continue;
        };
        let mut members = Cleartext::parse(&store.display(&path), &current.clear)?.members;
        if !change(&mut members) {
            notes(Note::Info(format!("{env}: members unchanged")));
            continue;
        }
        let text = Zeroizing::new(set_batou_option(
            &current.clear,
            "members",
            &members_values(&members),
        ));
        write_config(&store, Some(&current), &text, false, notes)?;
        notes(Note::Info(format!(
            "{env}: members are now {}",
            members.join(", ")
        )));
    }
    Ok(())
}

/// Adds a member to the environments (all when `envs` is empty) and
/// re-encrypts their secrets.
pub fn add(project_root: &Path, member: &str, envs: &str, notes: Notes) -> Result<()> {
    let member = member.trim().to_string();
    change_members(project_root, envs, notes, &|m| {
        if m.contains(&member) {
            false
        } else {
            m.push(member.clone());
            true
        }
    })
}

/// Removes a member from the environments (all when `envs` is empty)
/// and re-encrypts their secrets without it.
pub fn remove(project_root: &Path, member: &str, envs: &str, notes: Notes) -> Result<()> {
    let member = member.trim().to_string();
    change_members(project_root, envs, notes, &|m| {
        let before = m.len();
        m.retain(|x| *x != member);
        m.len() != before
    })
}

/// Re-encrypts the secrets of the environments whose keys changed (all
/// of them with `force`).
pub fn reencrypt(project_root: &Path, envs: &str, force: bool, notes: Notes) -> Result<()> {
    for env in select_environments(project_root, envs)? {
        let store = EnvStore::open(project_root, &env)?;
        let Some(provider) = store.provider else {
            continue;
        };
        let path = store.config_path(provider);
        let _lock = FileLock::exclusive(&path, &store.display(&path))?;
        let Some(current) = read_current(&store)? else {
            continue;
        };
        let text = current.clear.clone();
        write_config(&store, Some(&current), &text, force, notes)?;
        notes(Note::Info(format!("{env}: re-encrypted where needed")));
    }
    Ok(())
}

/// The cleartext of one encrypted file (for git's textconv).
pub fn decrypt_to_stdout(path: &Path) -> Result<Clear> {
    let display = path.display().to_string();
    if !path.is_file() {
        return Err(SecretsError::Usage(format!("No such file: {display}")));
    }
    let _lock = FileLock::shared(path, &display)?;
    let hint = path
        .parent()
        .map(|d| {
            let keys = d.join("age_keys.txt");
            if keys.is_file() {
                format!("the keys of {}", keys.display())
            } else {
                "keys not recorded (no age_keys.txt next to it)".into()
            }
        })
        .unwrap_or_default();
    super::decrypt_file(path, &display, &hint)
}
