//! The decrypted secrets config, as batou reads it: `[batou]` with
//! `members` and `secret_provider`, `[component:NAME]` (or `[NAME]`)
//! overrides, `[host:NAME]` with `data-*` keys. Also the line-based
//! rewriting that `add`/`remove`/`edit` need and that keeps comments.

use super::{Provider, Result, SecretsError};
use batou_cfg::{CfgFile, Entry};

/// The template of a new environment's secrets (age, as batou).
pub const NEW_FILE_TEMPLATE: &str = "[batou]\nsecret_provider = age\nmembers =\n";

/// A parsed secrets config.
#[derive(Clone)]
pub struct Cleartext {
    /// `members`, in order.
    pub members: Vec<String>,
    /// `secret_provider`, if set.
    pub provider: Option<Provider>,
    /// Override sections.
    pub components: Vec<SectionData>,
    /// `[host:NAME]` sections (keys without `data-`).
    pub hosts: Vec<SectionData>,
}

impl std::fmt::Debug for Cleartext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cleartext")
            .field("members", &self.members)
            .field("provider", &self.provider)
            .field(
                "components",
                &self.components.iter().map(|s| &s.name).collect::<Vec<_>>(),
            )
            .field(
                "hosts",
                &self.hosts.iter().map(|s| &s.name).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

/// A section: its name (without `component:`/`host:`), line, entries.
#[derive(Clone)]
pub struct SectionData {
    /// Component or host name.
    pub name: String,
    /// Line of the header in the cleartext.
    pub line: usize,
    /// Keys and values.
    pub entries: Vec<Entry>,
}

impl Cleartext {
    /// Parses the cleartext of `file` (named in errors).
    pub fn parse(file: &str, text: &str) -> Result<Cleartext> {
        let cfg = CfgFile::parse(file, text).map_err(|e| SecretsError::Invalid {
            file: file.to_string(),
            message: format!("line {}: {}", e.line, e.message),
        })?;
        let mut out = Cleartext {
            members: Vec::new(),
            provider: None,
            components: Vec::new(),
            hosts: Vec::new(),
        };
        for s in cfg.sections {
            let invalid = |message: String| SecretsError::Invalid {
                file: file.to_string(),
                message,
            };
            if s.name == "batou" {
                for e in &s.entries {
                    match e.key.as_str() {
                        "members" => out.members = split_members(&e.value),
                        "secret_provider" if !e.value.trim().is_empty() => {
                            out.provider = Some(e.value.parse().map_err(|m| {
                                invalid(format!("line {}: secret_provider: {m}", e.line))
                            })?)
                        }
                        _ => {}
                    }
                }
            } else if s.name.is_empty() {
                return Err(invalid(format!(
                    "line {}: keys outside of a section",
                    s.entries.first().map_or(0, |e| e.line)
                )));
            } else if let Some(host) = s.name.strip_prefix("host:") {
                let entries = s
                    .entries
                    .into_iter()
                    .map(|mut e| {
                        if let Some(k) = e.key.strip_prefix("data-") {
                            e.key = k.to_string();
                        }
                        e
                    })
                    .collect();
                out.hosts.push(SectionData {
                    name: host.trim().to_string(),
                    line: s.line,
                    entries,
                });
            } else {
                let name = s.name.strip_prefix("component:").unwrap_or(&s.name);
                out.components.push(SectionData {
                    name: name.trim().to_string(),
                    line: s.line,
                    entries: s.entries,
                });
            }
        }
        Ok(out)
    }
}

/// `members` split at commas and newlines.
pub fn split_members(value: &str) -> Vec<String> {
    value
        .split([',', '\n'])
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .map(str::to_string)
        .collect()
}

/// One line (or a key with its continuation lines) of an INI text.
#[derive(Debug)]
pub(crate) enum IniLine<'a> {
    /// `[name]`.
    Header(String, &'a str),
    /// `key = value` and its indented continuation lines.
    Key {
        /// The key.
        key: String,
        /// The value; continuation lines joined with `\n`, each trimmed.
        value: String,
        /// The lines as written.
        raw: Vec<&'a str>,
    },
    /// Comments, blank lines.
    Other(&'a str),
}

/// Splits an INI text into lines, keeping every byte of the layout.
pub(crate) fn ini_lines(text: &str) -> Vec<IniLine<'_>> {
    let mut out: Vec<IniLine<'_>> = Vec::new();
    for line in text.split_inclusive('\n') {
        let t = line.trim();
        let indented = line.starts_with([' ', '\t']);
        if indented && !t.is_empty() {
            if let Some(IniLine::Key { value, raw, .. }) = out.last_mut() {
                if !value.is_empty() {
                    value.push('\n');
                }
                value.push_str(t);
                raw.push(line);
                continue;
            }
        }
        if t.is_empty() || t.starts_with('#') || t.starts_with(';') {
            out.push(IniLine::Other(line));
        } else if t.starts_with('[') && t.ends_with(']') {
            out.push(IniLine::Header(t[1..t.len() - 1].trim().to_string(), line));
        } else if let Some(i) = t.find(['=', ':']) {
            out.push(IniLine::Key {
                key: t[..i].trim().to_string(),
                value: t[i + 1..].trim().to_string(),
                raw: vec![line],
            });
        } else {
            out.push(IniLine::Other(line));
        }
    }
    out
}

/// `key = value` lines: one line, or a first empty line and the values
/// indented below (batou's layout for several members).
pub(crate) fn format_key(key: &str, values: &[String]) -> String {
    match values {
        [] => format!("{key} =\n"),
        [one] if !one.contains('\n') => format!("{key} = {one}\n"),
        many => {
            let mut s = format!("{key} =\n");
            for v in many {
                for l in v.split('\n') {
                    s.push_str("    ");
                    s.push_str(l);
                    s.push('\n');
                }
            }
            s
        }
    }
}

/// Sets `key` in `[batou]` to `values`, keeping everything else; a new
/// key goes after the last key of the section.
pub fn set_batou_option(text: &str, key: &str, values: &[String]) -> String {
    let replacement = format_key(key, values);
    let mut chunks: Vec<String> = Vec::new();
    let mut in_batou = false;
    let mut replaced = false;
    let mut insert_at: Option<usize> = None;
    for l in ini_lines(text) {
        match l {
            IniLine::Header(name, raw) => {
                in_batou = name == "batou";
                let mut raw = raw.to_string();
                if !raw.ends_with('\n') {
                    raw.push('\n');
                }
                chunks.push(raw);
                if in_batou {
                    insert_at = Some(chunks.len());
                }
            }
            IniLine::Key { key: k, .. } if in_batou && k == key => {
                if !replaced {
                    chunks.push(replacement.clone());
                    replaced = true;
                }
            }
            IniLine::Key { raw, .. } => {
                let mut joined: String = raw.concat();
                if !joined.ends_with('\n') {
                    joined.push('\n');
                }
                chunks.push(joined);
                if in_batou {
                    insert_at = Some(chunks.len());
                }
            }
            IniLine::Other(raw) => chunks.push(raw.to_string()),
        }
    }
    if !replaced {
        match insert_at {
            Some(i) => chunks.insert(i, replacement),
            None => chunks.insert(0, format!("[batou]\n{replacement}")),
        }
    }
    chunks.concat()
}

/// `members` in batou's layout (one per line, comma-separated).
pub fn members_values(members: &[String]) -> Vec<String> {
    let n = members.len();
    members
        .iter()
        .enumerate()
        .map(|(i, m)| {
            if i + 1 < n {
                format!("{m},")
            } else {
                m.clone()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_batou_sections() {
        let c = Cleartext::parse(
            "s.cfg",
            "[batou]\nmembers = a@example.com,\n  b@example.com\nsecret_provider = gpg\n\n\
             [component:hello]\nword = deploy often\n[other]\nx = 1\n[host:web]\ndata-alias = foo\n",
        )
        .unwrap();
        assert_eq!(c.members, ["a@example.com", "b@example.com"]);
        assert_eq!(c.provider, Some(Provider::Gpg));
        let names: Vec<_> = c.components.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["hello", "other"]);
        assert_eq!(c.components[0].entries[0].value, "deploy often");
        assert_eq!(c.components[0].line, 6);
        assert_eq!(c.hosts[0].name, "web");
        assert_eq!(c.hosts[0].entries[0].key, "alias");
    }

    #[test]
    fn bad_provider_and_stray_keys_are_errors() {
        let e = Cleartext::parse("s.cfg", "[batou]\nsecret_provider = rot13\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "s.cfg: line 2: secret_provider: expected one of: gpg, age, age-diffable (got \"rot13\")"
        );
        let e = Cleartext::parse("s.cfg", "x = 1\n[batou]\n").unwrap_err();
        assert_eq!(e.to_string(), "s.cfg: line 1: keys outside of a section");
    }

    #[test]
    fn rewrites_members_keeping_comments() {
        let text =
            "# who may read\n[batou]\nmembers = a\nsecret_provider = age\n\n[c]\n# keep\nk = v\n";
        let out = set_batou_option(text, "members", &members_values(&["a".into(), "b".into()]));
        assert_eq!(
            out,
            "# who may read\n[batou]\nmembers =\n    a,\n    b\nsecret_provider = age\n\n[c]\n# keep\nk = v\n"
        );
        let c = Cleartext::parse("x", &out).unwrap();
        assert_eq!(c.members, ["a", "b"]);
        // Missing key and missing section.
        let out = set_batou_option("[batou]\nmembers = a\n", "secret_provider", &["gpg".into()]);
        assert_eq!(out, "[batou]\nmembers = a\nsecret_provider = gpg\n");
        let out = set_batou_option("[c]\nk = v\n", "secret_provider", &["gpg".into()]);
        assert_eq!(out, "[batou]\nsecret_provider = gpg\n[c]\nk = v\n");
    }
}
