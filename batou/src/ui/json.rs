//! `deploy --json`: one JSON object per event and line, each with an
//! `"event"` field, nothing else on stdout.

use crate::events::{Event, Reporter};
use std::io::Write;
use std::sync::Mutex;

/// Writes events as JSON lines.
pub struct JsonLines<W: Write + Send> {
    out: Mutex<Out<W>>,
}

/// The writer, and how many batches are open (lines are flushed when the
/// last one ends).
struct Out<W: Write> {
    w: std::io::BufWriter<W>,
    batches: usize,
}

impl<W: Write + Send> JsonLines<W> {
    /// A view writing to `out`.
    pub fn new(out: W) -> Self {
        JsonLines {
            out: Mutex::new(Out {
                w: std::io::BufWriter::new(out),
                batches: 0,
            }),
        }
    }

    /// The writer back (tests).
    #[cfg(test)]
    pub fn into_inner(self) -> W {
        let out = self.out.into_inner().unwrap_or_else(|e| e.into_inner());
        out.w
            .into_inner()
            .unwrap_or_else(|e| panic!("{}", e.error()))
    }

    fn out(&self) -> std::sync::MutexGuard<'_, Out<W>> {
        self.out.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl<W: Write + Send> Reporter for JsonLines<W> {
    fn event(&self, event: &Event) {
        let Ok(line) = serde_json::to_string(event) else {
            return;
        };
        let mut out = self.out();
        let _ = writeln!(out.w, "{line}");
        if out.batches == 0 {
            let _ = out.w.flush();
        }
    }

    fn batch(&self, report: &mut dyn FnMut()) {
        /// Closes the batch also when `report` panics.
        struct Open<'v, W: Write + Send>(&'v JsonLines<W>);
        impl<W: Write + Send> Drop for Open<'_, W> {
            fn drop(&mut self) {
                let mut out = self.0.out();
                out.batches -= 1;
                if out.batches == 0 {
                    let _ = out.w.flush();
                }
            }
        }
        self.out().batches += 1;
        let _open = Open(self);
        report();
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

    /// Counts the writes that reach it.
    struct Counting(std::sync::Arc<Mutex<usize>>);

    impl Write for Counting {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            *self.0.lock().unwrap() += 1;
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_batch_is_written_at_its_end_in_one_go() {
        let writes = std::sync::Arc::new(Mutex::new(0));
        let view = JsonLines::new(Counting(writes.clone()));
        view.event(&Event::VerifyingRepository);
        assert_eq!(*writes.lock().unwrap(), 1, "alone: at once");
        view.batch(&mut || {
            for _ in 0..50 {
                view.event(&Event::VerifyingRepository);
            }
            assert_eq!(*writes.lock().unwrap(), 1, "held in the batch");
        });
        assert_eq!(*writes.lock().unwrap(), 2);
    }
}
