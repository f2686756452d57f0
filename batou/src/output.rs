//! Terminal output in batou's style: centred section rules, step lines with
//! icons, tabular error fields, coloured diff lines.
//!
//! Remote agents do not print: they send [`Line`]s over the protocol and the
//! controller prints them here, so the output of every host looks the same.

use serde::{Deserialize, Serialize};
use std::io::{IsTerminal, Write};
use std::sync::Mutex;

/// A colour of batou's palette.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Color {
    /// Errors, removed diff lines.
    Red,
    /// Success, added diff lines.
    Green,
    /// Warnings.
    Yellow,
    /// Prediction results.
    Purple,
    /// Consistency check results.
    Cyan,
}

impl Color {
    fn ansi(self) -> anstyle::AnsiColor {
        match self {
            Color::Red => anstyle::AnsiColor::Red,
            Color::Green => anstyle::AnsiColor::Green,
            Color::Yellow => anstyle::AnsiColor::Yellow,
            Color::Purple => anstyle::AnsiColor::Magenta,
            Color::Cyan => anstyle::AnsiColor::Cyan,
        }
    }
}

/// How a line looks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Style {
    /// Bold.
    pub bold: bool,
    /// Colour, if any.
    pub color: Option<Color>,
}

impl Style {
    /// No styling.
    pub const PLAIN: Style = Style {
        bold: false,
        color: None,
    };
    /// Bold, no colour.
    pub const BOLD: Style = Style {
        bold: true,
        color: None,
    };
    /// A colour, not bold.
    pub const fn color(c: Color) -> Style {
        Style {
            bold: false,
            color: Some(c),
        }
    }
    /// A colour, bold.
    pub const fn bold_color(c: Color) -> Style {
        Style {
            bold: true,
            color: Some(c),
        }
    }
}

/// One line of output, as agents send it to the controller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Line {
    /// The text, without a newline.
    pub text: String,
    /// Its style.
    pub style: Style,
}

impl Line {
    /// A line with a style.
    pub fn new(text: impl Into<String>, style: Style) -> Line {
        Line {
            text: text.into(),
            style,
        }
    }
    /// An unstyled line.
    pub fn plain(text: impl Into<String>) -> Line {
        Line::new(text, Style::PLAIN)
    }
}

/// `🚀 host: message`-style step line text.
pub fn step_text(context: &str, message: &str, icon: Option<&str>) -> String {
    match icon {
        Some(icon) => format!("{icon} {context}: {message}"),
        None => format!("   {context}: {message}"),
    }
}

/// `key.rjust(15): value` as batou's `tabular`.
pub fn tabular_text(key: &str, value: &str) -> String {
    format!("{key:>15}: {value}")
}

/// The controller's terminal.
#[derive(Debug)]
pub struct Terminal {
    width: usize,
    color: bool,
    /// Write to stderr instead of stdout (when stdout carries data).
    stderr: bool,
    /// stdout is a terminal (live progress is drawn there).
    tty: bool,
    /// Lines held back while a batch is open (see [`Terminal::batch`]).
    held: Mutex<Held>,
}

/// Lines printed while batches are open, written when the last one ends.
#[derive(Debug, Default)]
struct Held {
    batches: usize,
    text: String,
}

impl Terminal {
    /// Looks at stdout: width from the terminal, `$COLUMNS` or 80. Colours:
    /// the `--color` choice wins; else `NO_COLOR` disables them; else
    /// `CLICOLOR_FORCE=1` forces them; else only on a terminal (not with
    /// `TERM=dumb`).
    pub fn detect(choice: crate::cli::ColorChoice) -> Terminal {
        let tty = std::io::stdout().is_terminal();
        Terminal {
            width: terminal_width(tty),
            color: use_color(choice, tty, |k| std::env::var(k).ok()),
            stderr: false,
            tty,
            held: Mutex::default(),
        }
    }

    /// Whether live progress may be drawn: stdout is a terminal.
    pub fn is_tty(&self) -> bool {
        self.tty && !self.stderr
    }

    /// Like [`Self::detect`] for stderr, when stdout carries data (`graph`).
    pub fn detect_stderr(choice: crate::cli::ColorChoice) -> Terminal {
        let tty = std::io::stderr().is_terminal();
        Terminal {
            width: terminal_width(false),
            color: use_color(choice, tty, |k| std::env::var(k).ok()),
            stderr: true,
            tty: false,
            held: Mutex::default(),
        }
    }

    /// A terminal with fixed settings (tests).
    pub fn fixed(width: usize, color: bool) -> Terminal {
        Terminal {
            width,
            color,
            stderr: false,
            tty: false,
            held: Mutex::default(),
        }
    }

    /// Prints a line.
    pub fn line(&self, line: &Line) {
        let text = if line.text.trim().is_empty() {
            ""
        } else {
            line.text.as_str()
        };
        let rendered = self.paint(text, line.style);
        let mut held = self.held();
        if held.batches > 0 {
            held.text.push_str(&rendered);
            held.text.push('\n');
            return;
        }
        self.write(&format!("{rendered}\n"));
    }

    fn held(&self) -> std::sync::MutexGuard<'_, Held> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes `text` at once (the caller holds `held`, which orders writes).
    fn write(&self, text: &str) {
        if self.stderr {
            let _ = std::io::stderr().lock().write_all(text.as_bytes());
        } else {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(text.as_bytes());
            let _ = out.flush();
        }
    }

    /// Runs `print` and writes the lines it prints in one go at its end
    /// (at the end of the outermost batch, when batches nest).
    pub fn batch(&self, print: &mut dyn FnMut()) {
        /// Closes the batch also when `print` panics.
        struct Open<'t>(&'t Terminal);
        impl Drop for Open<'_> {
            fn drop(&mut self) {
                let mut held = self.0.held();
                held.batches -= 1;
                if held.batches == 0 && !held.text.is_empty() {
                    let text = std::mem::take(&mut held.text);
                    self.0.write(&text);
                }
            }
        }
        self.held().batches += 1;
        let _open = Open(self);
        print();
    }

    /// Prints a plain line.
    pub fn plain(&self, text: &str) {
        self.line(&Line::plain(text));
    }

    /// A centred `=====  title  =====` rule, bold.
    pub fn section(&self, title: &str, color: Option<Color>) {
        self.line(&Line::new(self.rule(title), Style { bold: true, color }));
    }

    /// The text of a section rule at this terminal's width.
    pub fn rule(&self, title: &str) -> String {
        let title_len = title.chars().count();
        let n = ((self.width as isize - title_len as isize - 2) / 2).max(1) as usize;
        let mut s = format!("{} {} {}", "=".repeat(n), title, "=".repeat(n));
        if s.chars().count() < self.width {
            s.push('=');
        }
        s
    }

    /// `icon context: message`, bold.
    pub fn step(&self, context: &str, message: &str, icon: Option<&str>) {
        self.line(&Line::new(step_text(context, message, icon), Style::BOLD));
    }

    /// `ERROR: message`, bold red.
    pub fn error(&self, message: &str) {
        self.line(&Line::new(
            format!("ERROR: {message}"),
            Style::bold_color(Color::Red),
        ));
    }

    /// `   WARN: message`, bold yellow.
    pub fn warn(&self, message: &str) {
        self.line(&Line::new(
            format!("   WARN: {message}"),
            Style::bold_color(Color::Yellow),
        ));
    }

    /// `        key: value`.
    pub fn tabular(&self, key: &str, value: &str, style: Style) {
        self.line(&Line::new(tabular_text(key, value), style));
    }

    fn paint(&self, text: &str, style: Style) -> String {
        if !self.color || (style.color.is_none() && !style.bold) || text.is_empty() {
            return text.to_string();
        }
        let mut a = anstyle::Style::new();
        if style.bold {
            a = a.bold();
        }
        if let Some(c) = style.color {
            a = a.fg_color(Some(anstyle::Color::Ansi(c.ansi())));
        }
        format!("{}{text}{}", a.render(), a.render_reset())
    }
}

/// Whether to colour, from the choice, whether stdout is a terminal and
/// the environment (`var`).
pub fn use_color(
    choice: crate::cli::ColorChoice,
    tty: bool,
    var: impl Fn(&str) -> Option<String>,
) -> bool {
    use crate::cli::ColorChoice;
    let set = |k: &str| var(k).is_some_and(|v| !v.is_empty());
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto if set("NO_COLOR") => false,
        ColorChoice::Auto if var("CLICOLOR_FORCE").is_some_and(|v| !v.is_empty() && v != "0") => {
            true
        }
        ColorChoice::Auto => tty && var("TERM").is_none_or(|t| t != "dumb"),
    }
}

fn terminal_width(tty: bool) -> usize {
    let mut width = 0usize;
    if tty {
        // SAFETY: TIOCGWINSZ fills a winsize struct we own.
        let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
        if unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut ws) } == 0 {
            width = ws.ws_col as usize;
        }
    }
    if width == 0 {
        width = std::env::var("COLUMNS")
            .ok()
            .and_then(|c| c.parse().ok())
            .unwrap_or(80);
    }
    if width < 40 {
        80
    } else {
        width
    }
}

/// `1.23s`, `1m1s`, or `∅` for nothing, as batou formats durations.
pub fn format_duration(seconds: Option<f64>) -> String {
    match seconds {
        None => "∅".to_string(),
        Some(s) if s < 60.0 => format!("{s:.2}s"),
        Some(s) => {
            let total = s.round() as u64;
            format!("{}m{}s", total / 60, total % 60)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_match_batou_at_80_columns() {
        let t = Terminal::fixed(80, false);
        let r = t.rule("Preparing");
        assert_eq!(
            r,
            format!("{} Preparing {}", "=".repeat(34), "=".repeat(35))
        );
        assert_eq!(r.len(), 80);
        assert_eq!(t.rule("DEPLOYMENT FINISHED").chars().count(), 80);
    }

    #[test]
    fn durations() {
        assert_eq!(format_duration(Some(1.234)), "1.23s");
        assert_eq!(format_duration(Some(61.0)), "1m1s");
        assert_eq!(format_duration(None), "∅");
    }

    #[test]
    fn colours_only_when_enabled() {
        let line = Line::new("x", Style::bold_color(Color::Red));
        assert_eq!(
            Terminal::fixed(80, true).paint(&line.text, line.style),
            "\x1b[1m\x1b[31mx\x1b[0m"
        );
        assert_eq!(
            Terminal::fixed(80, false).paint(&line.text, line.style),
            "x"
        );
    }

    #[test]
    fn the_flag_wins_then_no_color_then_clicolor_force_then_the_terminal() {
        use crate::cli::ColorChoice::*;
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert!(use_color(Always, false, env(&[("NO_COLOR", "1")])));
        assert!(!use_color(Never, true, env(&[("CLICOLOR_FORCE", "1")])));
        assert!(!use_color(
            Auto,
            true,
            env(&[("NO_COLOR", "1"), ("CLICOLOR_FORCE", "1")])
        ));
        assert!(use_color(Auto, false, env(&[("CLICOLOR_FORCE", "1")])));
        assert!(!use_color(Auto, false, env(&[("CLICOLOR_FORCE", "0")])));
        assert!(use_color(Auto, true, env(&[])));
        assert!(!use_color(Auto, true, env(&[("TERM", "dumb")])));
        assert!(!use_color(Auto, false, env(&[])));
    }

    #[test]
    fn tabular_right_aligns() {
        assert_eq!(tabular_text("Component", "x"), "      Component: x");
    }
}
