//! Live per-host lines while hosts are set up (uploading the agent,
//! shipping the project): bytes, percentage and elapsed time, drawn with
//! indicatif on stdout when it is a terminal. Other output is printed
//! above them; a host's line goes when it is connected or failed.

use crate::events::{Event, Phase};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::collections::BTreeMap;
use std::sync::Mutex;

/// The progress lines of the hosts being set up.
pub struct Progress {
    multi: MultiProgress,
    bars: Mutex<BTreeMap<String, ProgressBar>>,
}

impl Default for Progress {
    fn default() -> Self {
        Self::new()
    }
}

impl Progress {
    /// Lines drawn on stdout.
    pub fn new() -> Self {
        Progress {
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::stdout()),
            bars: Mutex::new(BTreeMap::new()),
        }
    }

    /// Handles the events that only move progress lines; `false` for
    /// events the text view prints (which may remove lines first).
    pub fn takes(&self, event: &Event) -> bool {
        match event {
            Event::HostProgress {
                host,
                stage,
                done,
                total,
            } => {
                let bar = self.bar(host, stage.verb());
                if bar.message() != stage.verb() {
                    // A new stage starts from zero.
                    bar.reset();
                    bar.set_message(stage.verb());
                }
                if let Some(t) = total {
                    bar.set_length(*t);
                }
                bar.set_position(*done);
                bar.set_style(if total.is_some() {
                    known_style()
                } else {
                    unknown_style()
                });
                true
            }
            Event::HostConnected { host, .. } => {
                self.remove(host);
                true
            }
            Event::ConnectFailed { host, .. } => {
                self.remove(host);
                false
            }
            Event::Phase {
                phase: Phase::Deploying | Phase::Predicting,
            }
            | Event::Finished { .. } => {
                self.clear();
                false
            }
            _ => false,
        }
    }

    /// Whether progress lines are on the screen.
    pub fn is_drawing(&self) -> bool {
        !self
            .bars
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_empty()
    }

    /// Runs `print` with the lines hidden, so text lands above them.
    pub fn suspend(&self, print: impl FnOnce()) {
        if self
            .bars
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_empty()
        {
            print();
        } else {
            self.multi.suspend(print);
        }
    }

    fn bar(&self, host: &str, message: &'static str) -> ProgressBar {
        let mut bars = self.bars.lock().unwrap_or_else(|e| e.into_inner());
        bars.entry(host.to_string())
            .or_insert_with(|| {
                let bar = ProgressBar::new(0)
                    .with_style(unknown_style())
                    .with_prefix(host.to_string())
                    .with_message(message);
                self.multi.add(bar)
            })
            .clone()
    }

    fn remove(&self, host: &str) {
        if let Some(bar) = self
            .bars
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(host)
        {
            bar.finish_and_clear();
            self.multi.remove(&bar);
        }
    }

    fn clear(&self) {
        let bars = std::mem::take(&mut *self.bars.lock().unwrap_or_else(|e| e.into_inner()));
        for bar in bars.values() {
            bar.finish_and_clear();
            self.multi.remove(bar);
        }
    }
}

fn known_style() -> ProgressStyle {
    ProgressStyle::with_template(
        "⏳ {prefix:.bold}: {msg} {bytes}/{total_bytes} ({percent}%) {elapsed}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
}

fn unknown_style() -> ProgressStyle {
    ProgressStyle::with_template("⏳ {prefix:.bold}: {msg} {bytes} {elapsed}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::Stage;

    fn progress(host: &str, done: u64, total: Option<u64>) -> Event {
        Event::HostProgress {
            host: host.into(),
            stage: Stage::Upload,
            done,
            total,
        }
    }

    #[test]
    fn a_line_per_host_until_it_is_connected() {
        let p = Progress {
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::hidden()),
            bars: Mutex::new(BTreeMap::new()),
        };
        assert!(p.takes(&progress("a", 10, Some(100))));
        assert!(p.takes(&progress("b", 5, None)));
        assert!(p.takes(&progress("a", 50, Some(100))));
        {
            let bars = p.bars.lock().unwrap();
            assert_eq!(bars.len(), 2);
            assert_eq!(bars["a"].position(), 50);
            assert_eq!(bars["a"].length(), Some(100));
            assert_eq!(bars["a"].message(), "uploading the agent");
        }
        assert!(p.takes(&Event::HostConnected {
            host: "a".into(),
            seconds: 1.0
        }));
        assert!(!p.takes(&Event::ConnectFailed {
            host: "b".into(),
            message: "refused".into()
        }));
        assert!(p.bars.lock().unwrap().is_empty());
        assert!(!p.takes(&Event::VerifyingRepository), "printed by the view");
    }
}
