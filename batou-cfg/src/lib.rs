//! Reading batou's `environment.cfg` files.
//!
//! The INI syntax is parsed by [`rust-ini`](https://docs.rs/rust-ini) with the
//! settings that match Python's `configparser` as batou uses it: case-sensitive
//! keys, no quote or escape processing, indented continuation lines. On top of
//! that this crate records the line of every section header and every key, so
//! that errors can point at `environments/prod/environment.cfg:12`.
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

use ini::{Ini, ParseOption};
use std::collections::{HashMap, VecDeque};
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

    /// Parses the text of a cfg file.
    pub fn parse(display: impl Into<PathBuf>, text: &str) -> Result<CfgFile, CfgError> {
        let path = display.into();
        let options = ParseOption {
            enabled_quote: false,
            enabled_escape: false,
            enabled_indented_mutiline_value: true,
            enabled_preserve_key_leading_whitespace: false,
        };
        let ini = Ini::load_from_str_opt(text, options).map_err(|e| {
            // rust-ini reports an unclosed header where it gave up (often the
            // end of the file); point at the header itself instead.
            let unclosed = text.lines().position(|l| {
                let t = l.trim_start();
                !l.starts_with([' ', '\t']) && t.starts_with('[') && !t.contains(']')
            });
            CfgError {
                path: path.display().to_string(),
                line: unclosed.map_or(e.line, |i| i + 1),
                message: e.msg.to_string(),
            }
        })?;
        let lines = scan_lines(text);
        let mut sections = Vec::new();
        let mut cursor = 0usize;
        for (name, props) in ini.iter() {
            let name = name.unwrap_or("").to_string();
            if name.is_empty() && props.is_empty() {
                continue;
            }
            // Find the next scanned header of this name (sections come in order).
            let scanned = lines[cursor..]
                .iter()
                .position(|s| s.name == name)
                .map(|i| {
                    cursor += i + 1;
                    &lines[cursor - 1]
                });
            // The lines of each key in order, taken one by one: linear in
            // the number of keys, duplicates included.
            let mut key_lines: HashMap<&str, VecDeque<usize>> = HashMap::new();
            if let Some(sc) = scanned {
                for (k, line) in &sc.keys {
                    key_lines.entry(k.as_str()).or_default().push_back(*line);
                }
            }
            let mut entries = Vec::new();
            for (key, value) in props.iter() {
                let line = key_lines
                    .get_mut(key)
                    .and_then(VecDeque::pop_front)
                    .unwrap_or(0);
                entries.push(Entry {
                    key: key.to_string(),
                    value: value.trim().to_string(),
                    line,
                });
            }
            sections.push(Section {
                name,
                line: scanned.map_or(0, |s| s.line),
                entries,
            });
        }
        Ok(CfgFile { path, sections })
    }

    /// `path:line` for messages.
    pub fn location(&self, line: usize) -> String {
        format!("{}:{}", self.path.display(), line)
    }
}

struct ScannedSection {
    name: String,
    line: usize,
    keys: Vec<(String, usize)>,
}

/// Finds section headers and keys with their line numbers. Continuation
/// lines (indented) and comments are skipped.
fn scan_lines(text: &str) -> Vec<ScannedSection> {
    let mut out = vec![ScannedSection {
        name: String::new(),
        line: 0,
        keys: Vec::new(),
    }];
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        if raw.starts_with([' ', '\t']) {
            continue;
        }
        let t = raw.trim();
        if t.is_empty() || t.starts_with('#') || t.starts_with(';') {
            continue;
        }
        if let Some(rest) = t.strip_prefix('[') {
            let name = rest.split(']').next().unwrap_or("").trim().to_string();
            out.push(ScannedSection {
                name,
                line,
                keys: Vec::new(),
            });
            continue;
        }
        let end = t.find(['=', ':']).unwrap_or(t.len());
        let key = t[..end].trim().to_string();
        if let Some(last) = out.last_mut() {
            last.keys.push((key, line));
        }
    }
    out
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
