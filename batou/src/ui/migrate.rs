//! The view of `batou migrate`: batou's lines for each step, and the
//! refusal of other commands while a migration is pending.

use crate::migrate::{self, Kind, Migration};
use crate::output::{Color, Line, Style, Terminal};
use std::path::Path;

/// Runs the migration (or, with `bootstrap`, only records the newest
/// version) and prints it as batou does; the exit code.
pub fn run(root: &Path, bootstrap: bool, term: &Terminal) -> i32 {
    if bootstrap {
        let text = format!("{{\"migration\": {{\"version\": {}}}}}\n", migrate::LATEST);
        return match crate::safe_fs::write_atomic(
            &root.join(migrate::CONFIG_FILE),
            text.as_bytes(),
            0o644,
        ) {
            Ok(()) => 0,
            Err(e) => {
                term.error(&format!("writing {}: {e}", migrate::CONFIG_FILE));
                1
            }
        };
    }
    match migrate::migrate(root) {
        Ok(m) => {
            print(&m, term);
            0
        }
        Err(e) => {
            term.error(&e.to_string());
            1
        }
    }
}

fn print(m: &Migration, term: &Terminal) {
    term.line(&Line::new(
        format!("Current version: {}", m.current),
        Style::BOLD,
    ));
    for step in &m.steps {
        term.line(&Line::new(
            format!("⚪ Version: {}", step.version),
            Style::BOLD,
        ));
        term.plain("");
        let (icon, color) = match step.kind {
            Kind::Automatic => ("✅", Color::Green),
            Kind::Manual => ("🔧", Color::Yellow),
        };
        term.line(&Line::new(
            format!("    {icon} {}", step.title),
            Style::color(color),
        ));
        term.plain("");
        for line in step.text.lines() {
            term.plain(format!("    {line}").trim_end());
        }
        for (from, to) in &step.moves {
            term.plain(&format!("    {from} → {to}"));
        }
        term.plain("");
    }
    term.line(&Line::new(
        format!("Reached version: {}", m.reached),
        Style::bold_color(Color::Green),
    ));
}

/// Refuses a command on a project that needs `migrate`; the exit code.
pub fn refuse(root: &Path) -> i32 {
    let found = migrate::pending(root).unwrap_or_default();
    eprintln!("ERROR: Please run `./batou migrate` first.");
    for f in found {
        eprintln!("    {f}");
    }
    1
}
