//! The agent's side of the channel. Answers go out at once; the events of
//! a deployment (one per output line) are gathered and written together,
//! at most [`LATENCY`] after the first of them, so a root that prints
//! thousands of diff lines costs a few writes instead of one per line.

use super::protocol::{write_frame, write_frame_unflushed, Response};
use std::io::{BufWriter, Write};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How long an event may wait for others before it is written.
pub(super) const LATENCY: Duration = Duration::from_millis(10);

/// Frames on their way to the controller.
pub(super) struct Outbox<W: Write> {
    state: Mutex<State<W>>,
    /// Signalled when events start waiting.
    waiting: Condvar,
}

struct State<W: Write> {
    out: BufWriter<W>,
    /// When the oldest unwritten event was queued.
    since: Option<Instant>,
    /// A write failed: the controller is gone.
    broken: bool,
}

impl<W: Write> Outbox<W> {
    /// Frames to `out`.
    pub(super) fn new(out: W) -> Self {
        Outbox {
            state: Mutex::new(State {
                out: BufWriter::with_capacity(64 << 10, out),
                since: None,
                broken: false,
            }),
            waiting: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State<W>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sends `msg`: an event joins the waiting ones, anything else is
    /// written at once, after them. `false` once the channel is broken.
    pub(super) fn send(&self, msg: &Response) -> bool {
        let mut st = self.lock();
        if st.broken {
            return false;
        }
        let ok = if matches!(msg, Response::Event { .. }) {
            let first = st.since.is_none();
            st.since.get_or_insert_with(Instant::now);
            let ok = write_frame_unflushed(&mut st.out, msg).is_ok();
            if first {
                self.waiting.notify_one();
            }
            ok
        } else {
            st.since = None;
            write_frame(&mut st.out, msg).is_ok()
        };
        st.broken = !ok;
        ok
    }

    /// Writes waiting events once they are [`LATENCY`] old; runs until the
    /// channel breaks (on a thread of its own).
    pub(super) fn flush_events(&self) {
        let mut st = self.lock();
        loop {
            if st.broken {
                return;
            }
            let Some(since) = st.since else {
                st = self.waiting.wait(st).unwrap_or_else(|e| e.into_inner());
                continue;
            };
            let due = since + LATENCY;
            let now = Instant::now();
            if now < due {
                st = self
                    .waiting
                    .wait_timeout(st, due - now)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
                continue;
            }
            st.since = None;
            st.broken = st.out.flush().is_err();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// A writer that counts its writes and keeps the bytes.
    #[derive(Clone, Default)]
    struct Counting(Arc<Mutex<(usize, Vec<u8>)>>);

    impl Write for Counting {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let mut c = self.0.lock().unwrap();
            c.0 += 1;
            c.1.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn event(n: usize) -> Response {
        Response::Event {
            id: 1,
            event: Box::new(crate::events::Event::Warning {
                message: format!("line {n}"),
            }),
        }
    }

    fn frames(bytes: &[u8]) -> Vec<Response> {
        let mut r = bytes;
        std::iter::from_fn(|| super::super::protocol::read_frame(&mut r).unwrap()).collect()
    }

    #[test]
    fn events_are_written_together_and_answers_at_once_after_them() {
        let out = Counting::default();
        let outbox = Outbox::new(out.clone());
        for n in 0..100 {
            assert!(outbox.send(&event(n)));
        }
        assert_eq!(out.0.lock().unwrap().0, 0, "events wait");
        assert!(outbox.send(&Response::Failed {
            message: "done".into()
        }));
        let (writes, bytes) = out.0.lock().unwrap().clone();
        assert_eq!(writes, 1, "one write for 100 events and the answer");
        let got = frames(&bytes);
        assert_eq!(got.len(), 101);
        assert!(matches!(&got[100], Response::Failed { message } if message == "done"));
    }

    #[test]
    fn waiting_events_go_out_after_the_latency() {
        let out = Counting::default();
        let outbox = Arc::new(Outbox::new(out.clone()));
        let flusher = Arc::clone(&outbox);
        std::thread::spawn(move || flusher.flush_events());
        let sent = Instant::now();
        assert!(outbox.send(&event(1)));
        assert!(outbox.send(&event(2)));
        while out.0.lock().unwrap().1.is_empty() {
            assert!(sent.elapsed() < Duration::from_secs(10), "never written");
            std::thread::sleep(Duration::from_millis(1));
        }
        assert!(sent.elapsed() >= LATENCY);
        let (writes, bytes) = out.0.lock().unwrap().clone();
        assert_eq!((writes, frames(&bytes).len()), (1, 2));
    }

    #[test]
    fn a_broken_channel_is_reported_to_the_sender() {
        struct Broken;
        impl Write for Broken {
            fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
                Err(std::io::ErrorKind::BrokenPipe.into())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let outbox = Outbox::new(Broken);
        assert!(!outbox.send(&Response::Failed {
            message: "x".into()
        }));
        assert!(!outbox.send(&event(1)));
    }
}
