//! Reading batou's `environment.cfg` files.
//!
//! The INI syntax is read as Python's `RawConfigParser` reads it for batou
//! (see [`CfgFile::parse`]; a test compares with the real configparser), and
//! the line of every section header and every key is recorded, so that
//! errors can point at `environments/prod/environment.cfg:12`.
//!
//! Both the runtime (`batou`) and the compile-time override check
//! (`batou-macros`) read cfg files through this crate, so they agree on what a
//! file means.
//!
//! ```
//! let cfg = batou_cfg::CfgFile::parse(
//!     "environments/local/environment.cfg",
//!     "[environment]\nconnect_method = local\n\n[hosts]\nlocalhost = tick\n",
//! )
//! .unwrap();
//! assert_eq!(cfg.sections[1].name, "hosts");
//! assert_eq!(cfg.sections[1].entries[0].line, 5);
//! assert_eq!(cfg.sections[1].entries[0].value, "tick");
//! ```

use std::path::{Path, PathBuf};

/// A parsed cfg file: its sections in file order, duplicates kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CfgFile {
    /// The path used in messages (usually relative to the project).
    pub path: PathBuf,
    /// Sections in the order they appear. Keys before the first section
    /// header are reported in a section with an empty name.
    pub sections: Vec<Section>,
}

/// One `[section]` of a cfg file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    /// The text between the brackets.
    pub name: String,
    /// 1-based line of the header (0 for keys before any header).
    pub line: usize,
    /// The entries in file order, duplicates kept.
    pub entries: Vec<Entry>,
}

/// One `key = value` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The key, case preserved.
    pub key: String,
    /// The value; continuation lines are joined with `\n`.
    pub value: String,
    /// 1-based line of the key.
    pub line: usize,
}

/// A cfg file that cannot be parsed.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[error("{path}:{line}: {message}")]
pub struct CfgError {
    /// The file.
    pub path: String,
    /// 1-based line of the problem.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

impl CfgFile {
    /// Reads and parses a file; `display` is the path shown in messages.
    pub fn load(path: &Path, display: impl Into<PathBuf>) -> Result<CfgFile, CfgError> {
        let display = display.into();
        let text = std::fs::read_to_string(path).map_err(|e| CfgError {
            path: display.display().to_string(),
            line: 0,
            message: format!("cannot read file: {e}"),
        })?;
        CfgFile::parse(display, &text)
    }

    /// Parses the text of a cfg file as Python's `RawConfigParser` reads
    /// it for batou: lines whose first non-blank character is `#` or `;`
    /// are comments anywhere (also between the lines of a multi-line
    /// value); a line indented deeper than its key's line continues the
    /// value, empty lines inside a value are kept, the value is trimmed;
    /// `=` or `:` separates a key from its value, whichever comes first;
    /// no inline comments, quotes or escapes; keys keep their case.
    /// Duplicate sections and keys are kept in order (the loader reports
    /// them as batou does).
    pub fn parse(display: impl Into<PathBuf>, text: &str) -> Result<CfgFile, CfgError> {
        let path = display.into();
        let error = |line: usize, message: String| CfgError {
            path: path.display().to_string(),
            line,
            message,
        };
        let mut sections: Vec<Section> = Vec::new();
        // Continuation lines of the current value, until it ends.
        let mut open_value: Option<Vec<String>> = None;
        let mut indent_level = 0usize;
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            let content = raw.trim();
            if content.starts_with(['#', ';']) {
                continue;
            }
            if content.is_empty() {
                if let Some(lines) = open_value.as_mut() {
                    lines.push(String::new());
                }
                continue;
            }
            let indent = raw.chars().take_while(|c| c.is_whitespace()).count();
            if open_value.is_some() && indent > indent_level {
                if let Some(lines) = open_value.as_mut() {
                    lines.push(content.to_string());
                }
                continue;
            }
            finish_value(&mut sections, open_value.take());
            indent_level = indent;
            if let Some(name) = section_header(content) {
                sections.push(Section {
                    name: name.to_string(),
                    line,
                    entries: Vec::new(),
                });
                continue;
            }
            let Some((key, value)) = option_line(content) else {
                return Err(error(
                    line,
                    format!("expected `key = value` or a `[section]` header, found {content:?}"),
                ));
            };
            if key.is_empty() {
                return Err(error(line, format!("a value without a key: {content:?}")));
            }
            if sections.is_empty() {
                // Keys before the first header (configparser refuses the
                // file; the loader reports them).
                sections.push(Section {
                    name: String::new(),
                    line: 0,
                    entries: Vec::new(),
                });
            }
            if let Some(section) = sections.last_mut() {
                section.entries.push(Entry {
                    key: key.to_string(),
                    value: value.to_string(),
                    line,
                });
            }
            open_value = Some(Vec::new());
        }
        finish_value(&mut sections, open_value.take());
        Ok(CfgFile { path, sections })
    }

    /// `path:line` for messages.
    pub fn location(&self, line: usize) -> String {
        format!("{}:{}", self.path.display(), line)
    }
}

/// Appends the continuation lines of the last entry to its value, as
/// configparser joins them (`\n`, trailing empty lines dropped).
fn finish_value(sections: &mut [Section], lines: Option<Vec<String>>) {
    let Some(lines) = lines else {
        return;
    };
    if let Some(entry) = sections.last_mut().and_then(|s| s.entries.last_mut()) {
        for l in lines {
            entry.value.push('\n');
            entry.value.push_str(&l);
        }
        // configparser keeps a leading newline when the value starts on
        // the next line; batou strips it wherever it reads a value.
        entry.value = entry.value.trim().to_string();
    }
}

/// `[name]`: configparser's `\[(?P<header>.+)\]` matched at the start of
/// the line (the name runs to the last `]`; what follows it is ignored).
fn section_header(content: &str) -> Option<&str> {
    let rest = content.strip_prefix('[')?;
    let close = rest.rfind(']')?;
    (close > 0).then(|| &rest[..close])
}

/// `key = value` or `key: value`, split at the first `=` or `:`.
fn option_line(content: &str) -> Option<(&str, &str)> {
    let at = content.find(['=', ':'])?;
    Some((content[..at].trim_end(), content[at + 1..].trim()))
}

/// The name nearest to `name` among `names` (at most 2 edits away, or one
/// that starts with it): the "did you mean" of every unknown name batou
/// reports, at build time and at run time.
///
/// ```
/// let names = ["sleep".to_string(), "server_name".to_string()];
/// assert_eq!(batou_cfg::closest("slep", &names), Some("sleep"));
/// assert_eq!(batou_cfg::closest("sever_name", &names), Some("server_name"));
/// assert_eq!(batou_cfg::closest("colour", &names), None);
/// ```
pub fn closest<'a, S: AsRef<str>>(name: &str, names: &'a [S]) -> Option<&'a str> {
    names
        .iter()
        .map(|n| (edit_distance(name, n.as_ref()), n.as_ref()))
        .filter(|(d, n)| *d <= 2 || (!name.is_empty() && n.starts_with(name)))
        .min()
        .map(|(_, n)| n)
}

/// Levenshtein distance of two short strings.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_and_continuations() {
        let text = "# comment\n[environment]\nconnect_method = local\n\n[host:a]\ncomponents =\n    x\n    y\nplatform: p\n[host:a]\nignore = True\n";
        let cfg = CfgFile::parse("e.cfg", text).unwrap();
        assert_eq!(cfg.sections.len(), 3);
        assert_eq!(cfg.sections[0].line, 2);
        assert_eq!(cfg.sections[1].entries[0].value, "x\ny");
        assert_eq!(cfg.sections[1].entries[1].line, 9);
        assert_eq!(cfg.sections[1].entries[1].value, "p");
        assert_eq!(cfg.sections[2].line, 10);
        assert_eq!(cfg.sections[2].entries[0].line, 11);
    }

    #[test]
    fn duplicate_keys_are_kept_in_order() {
        let cfg = CfgFile::parse("e.cfg", "[hosts]\na = x\na = y\n").unwrap();
        let e = &cfg.sections[0].entries;
        assert_eq!(e.len(), 2);
        assert_eq!((e[0].line, e[1].line), (2, 3));
    }

    #[test]
    fn parse_errors_carry_the_line() {
        let err = CfgFile::parse("e.cfg", "[hosts]\nlocalhost = tick\n[broken\n").unwrap_err();
        assert_eq!(err.path, "e.cfg");
        assert_eq!(err.line, 3);
    }
}
