//! `deploy --json`: one JSON object per event and line, each with an
//! `"event"` field, nothing else on stdout.

use crate::events::{Event, Reporter};
use std::io::Write;
use std::sync::Mutex;

/// Writes events as JSON lines.
pub struct JsonLines<W: Write + Send> {
    out: Mutex<W>,
}

impl<W: Write + Send> JsonLines<W> {
    /// A view writing to `out`.
    pub fn new(out: W) -> Self {
        JsonLines {
            out: Mutex::new(out),
        }
    }

    /// The writer back (tests).
    #[cfg(test)]
    pub fn into_inner(self) -> W {
        self.out.into_inner().unwrap_or_else(|e| e.into_inner())
    }
}

impl<W: Write + Send> Reporter for JsonLines<W> {
    fn event(&self, event: &Event) {
        let Ok(line) = serde_json::to_string(event) else {
            return;
        };
        let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_object_per_line() {
        let view = JsonLines::new(Vec::new());
        view.event(&Event::VerifyingRepository);
        view.event(&Event::Warning {
            message: "careful".into(),
        });
        let text = String::from_utf8(view.into_inner()).unwrap();
        assert_eq!(
            text,
            "{\"event\":\"verifying_repository\"}\n{\"event\":\"warning\",\"message\":\"careful\"}\n"
        );
    }
}
