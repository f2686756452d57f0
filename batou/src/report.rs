//! Errors as users see them: collected, merged across hosts, sorted, and
//! printed in batou's format (`ERROR: ...`, tabular fields, `Affected hosts`).

use crate::output::{Color, Line, Style};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// One reportable error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// The text after `ERROR: `.
    pub title: String,
    /// `key: value` lines under the title.
    pub fields: Vec<(String, String)>,
    /// Further lines (tracebacks, cycles, lists).
    pub details: Vec<String>,
    /// Sort order: batou's `sort_key` classes first, then text.
    pub sort: (i32, Vec<String>),
    /// The host the error is about, if any (merged into `Affected hosts`).
    pub host: Option<String>,
}

/// batou's sort classes (`sort_key` of its exception types).
pub mod order {
    /// Component usage errors come first.
    pub const USAGE: i32 = -1;
    /// Load errors and generic configuration errors.
    pub const CONFIGURATION: i32 = 0;
    /// Attribute conversion and expansion errors.
    pub const CONVERSION: i32 = 1;
    /// Duplicate component definitions.
    pub const DUPLICATE_COMPONENT: i32 = 2;
    /// Overrides for attributes that do not exist; missing attributes.
    pub const OVERRIDES: i32 = 3;
    /// Unexpected errors (panics) in component code.
    pub const UNKNOWN: i32 = 4;
    /// Provided resources nobody required.
    pub const UNUSED: i32 = 5;
    /// Required resources nobody provided.
    pub const UNSATISFIED: i32 = 6;
    /// Dependency cycles between roots.
    pub const CYCLE: i32 = 99;
    /// The final "remaining unconfigured" summary.
    pub const REMAINING: i32 = 100;
}

impl Report {
    /// A report with a title and sort class.
    pub fn new(title: impl Into<String>, class: i32) -> Report {
        let title = title.into();
        Report {
            sort: (class, vec![title.clone()]),
            title,
            fields: Vec::new(),
            details: Vec::new(),
            host: None,
        }
    }
    /// Adds a `key: value` line.
    pub fn field(mut self, key: impl Into<String>, value: impl Into<String>) -> Report {
        self.fields.push((key.into(), value.into()));
        self
    }
    /// Adds a free line.
    pub fn detail(mut self, line: impl Into<String>) -> Report {
        self.details.push(line.into());
        self
    }
    /// Sets the affected host.
    pub fn on_host(mut self, host: impl Into<String>) -> Report {
        self.host = Some(host.into());
        self
    }
    /// Sets the sort key after the class.
    pub fn sort_by(mut self, keys: Vec<String>) -> Report {
        self.sort.1 = keys;
        self
    }

    /// The lines this report prints (without `Affected hosts`).
    pub fn lines(&self) -> Vec<Line> {
        let red = Style::color(Color::Red);
        let mut out = vec![Line::new(
            format!("ERROR: {}", self.title),
            Style::bold_color(Color::Red),
        )];
        for (k, v) in &self.fields {
            let mut first = true;
            for part in v.split('\n') {
                if first {
                    out.push(Line::new(crate::output::tabular_text(k, part), red));
                    first = false;
                } else {
                    out.push(Line::new(format!("{:>15}  {part}", ""), red));
                }
            }
        }
        for d in &self.details {
            out.push(Line::new(d.clone(), red));
        }
        out
    }
}

/// Reports merged across hosts: identical errors (apart from the host) are
/// printed once with all `Affected hosts`.
pub fn merge(reports: Vec<Report>) -> Vec<(Report, BTreeSet<String>)> {
    let mut merged: Vec<(Report, BTreeSet<String>)> = Vec::new();
    for mut r in reports {
        let host = r.host.take();
        if let Some((_, hosts)) = merged.iter_mut().find(|(m, _)| *m == r) {
            hosts.extend(host);
        } else {
            merged.push((r, host.into_iter().collect()));
        }
    }
    merged.sort_by(|a, b| a.0.sort.cmp(&b.0.sort));
    merged
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_errors_merge_and_sort() {
        let a = Report::new("b problem", order::CONFIGURATION).on_host("h2");
        let b = Report::new("b problem", order::CONFIGURATION).on_host("h1");
        let c = Report::new("usage", order::USAGE);
        let m = merge(vec![a, b, c]);
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].0.title, "usage");
        assert_eq!(m[1].1.iter().cloned().collect::<Vec<_>>(), vec!["h1", "h2"]);
    }

    #[test]
    fn multi_line_fields_are_indented() {
        let r = Report::new("x", 0).field("Message", "a\nb");
        let l = r.lines();
        assert_eq!(l[1].text, "        Message: a");
        assert_eq!(l[2].text, "                 b");
    }
}
