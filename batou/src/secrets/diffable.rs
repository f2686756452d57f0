//! `secrets.cfg.age-diffable`: the config stays INI; `[batou]` is in
//! clear, every other value is base64 of the age encryption of that value
//! alone. Values that did not change keep their ciphertext, so a git diff
//! shows which keys changed.

use super::ages::{self, AgeKeys};
use super::cleartext::{ini_lines, IniLine};
use super::{Result, SecretsError};
use base64::Engine;
use std::collections::BTreeMap;
use zeroize::Zeroizing;

/// A decrypted age-diffable file: the cleartext INI and, per
/// `(section, key)`, the ciphertext and the value it decrypts to.
pub struct Decoded {
    /// The cleartext, as the user edits it.
    pub text: Zeroizing<String>,
    values: BTreeMap<(String, String), (String, Zeroizing<String>)>,
}

/// Decrypts every value of `text` (the file `display`).
pub fn decrypt(text: &str, display: &str, encrypted_to: &str) -> Result<Decoded> {
    let mut out = Zeroizing::new(String::with_capacity(text.len()));
    let mut values = BTreeMap::new();
    let mut section = String::new();
    for line in ini_lines(text) {
        match line {
            IniLine::Header(name, raw) => {
                section = name;
                push_line(&mut out, raw);
            }
            IniLine::Key { raw, .. } if section == "batou" => {
                raw.iter().for_each(|r| out.push_str(r))
            }
            IniLine::Key { key, value, .. } => {
                let b64: String = value.split_whitespace().collect();
                let data = base64::engine::general_purpose::STANDARD
                    .decode(b64.as_bytes())
                    .map_err(|e| SecretsError::Decrypt {
                        file: display.to_string(),
                        reason: format!("[{section}] {key}: not base64 ({e})"),
                    })?;
                let clear =
                    ages::decrypt(&data, &format!("{display} [{section}] {key}"), encrypted_to)?;
                let clear = Zeroizing::new(String::from_utf8(clear.to_vec()).map_err(|_| {
                    SecretsError::Decrypt {
                        file: display.to_string(),
                        reason: format!("[{section}] {key}: not UTF-8"),
                    }
                })?);
                out.push_str(&key_line(&key, &clear));
                values.insert((section.clone(), key), (b64, clear));
            }
            IniLine::Other(raw) => out.push_str(raw),
        }
    }
    Ok(Decoded { text: out, values })
}

/// Encrypts the cleartext INI `clear`: values unchanged since `old` keep
/// their ciphertext unless `force`.
pub fn encrypt(clear: &str, old: Option<&Decoded>, keys: &AgeKeys, force: bool) -> Result<String> {
    let mut out = String::with_capacity(clear.len() * 2);
    let mut section = String::new();
    for line in ini_lines(clear) {
        match line {
            IniLine::Header(name, raw) => {
                section = name;
                push_line(&mut out, raw);
            }
            IniLine::Key { raw, .. } if section == "batou" => {
                raw.iter().for_each(|r| out.push_str(r))
            }
            IniLine::Key { key, value, .. } => {
                let kept = old
                    .filter(|_| !force)
                    .and_then(|o| o.values.get(&(section.clone(), key.clone())))
                    .filter(|(_, plain)| plain.as_str() == value)
                    .map(|(b64, _)| b64.clone());
                let b64 = match kept {
                    Some(b) => b,
                    None => base64::engine::general_purpose::STANDARD
                        .encode(ages::encrypt(keys, value.as_bytes())?),
                };
                out.push_str(&format!("{key} = {b64}\n"));
            }
            IniLine::Other(raw) => out.push_str(raw),
        }
    }
    Ok(out)
}

fn push_line(out: &mut String, raw: &str) {
    out.push_str(raw);
    if !raw.ends_with('\n') {
        out.push('\n');
    }
}

/// `key = value`; further lines of a multi-line value indented below.
fn key_line(key: &str, value: &str) -> String {
    let mut lines = value.split('\n');
    let mut s = format!("{key} = {}\n", lines.next().unwrap_or(""));
    for l in lines {
        s.push_str("    ");
        s.push_str(l);
        s.push('\n');
    }
    s
}
