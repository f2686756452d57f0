//! Noticing a peer that went silent.
//!
//! A dropped network path is silent: neither end gets an error until TCP
//! gives up, hours later. So both ends watch the other:
//!
//! - The controller sends [`Request::Ping`] every heartbeat (the
//!   environment's `timeout`, at least a second) for the whole session
//!   ([`Pinger`]); the agent gives up after [`MISSES`] heartbeats without
//!   a frame ([`watch`]): it exits, which releases the host's
//!   `.batou-lock`. Every change is atomic, so the next run converges.
//! - The controller's ssh client sends keep-alives at the same interval
//!   and gives up after the same silence (`transport::ssh` and
//!   `transport::russh`).
//!
//! While an agent hears its controller it refreshes the lock file's time
//! ([`crate::lock::ProjectLock::refresh`]), so a refusal can tell a
//! deployment that is running from a holder that no longer serves one.

use super::protocol::{write_frame, Request};
use crate::lock::ProjectLock;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

/// Heartbeats without a word after which a peer counts as gone.
pub const MISSES: u64 = 4;

/// Seconds between heartbeats for an environment `timeout` (at least 1).
pub fn heartbeat(timeout: u64) -> u64 {
    timeout.max(1)
}

/// How long an agent waits for a frame before it gives up, for a
/// heartbeat of `heartbeat` seconds.
///
/// ```
/// use batou::agent::liveness::silence_limit;
/// assert_eq!(silence_limit(3).as_secs(), 12);
/// ```
pub fn silence_limit(heartbeat: u64) -> Duration {
    Duration::from_secs(heartbeat.max(1) * MISSES)
}

/// When the agent last received a frame.
#[derive(Debug)]
pub struct LastHeard {
    start: Instant,
    /// Milliseconds after `start`.
    at: AtomicU64,
}

impl Default for LastHeard {
    fn default() -> Self {
        LastHeard {
            start: Instant::now(),
            at: AtomicU64::new(0),
        }
    }
}

impl LastHeard {
    /// A frame arrived now.
    pub fn touch(&self) {
        let ms = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.at.store(ms, Ordering::Relaxed);
    }

    /// How long ago the last frame arrived.
    pub fn silent_for(&self) -> Duration {
        let now = self.start.elapsed();
        now.saturating_sub(Duration::from_millis(self.at.load(Ordering::Relaxed)))
    }
}

/// The agent's watchdog: ends the process when nothing arrived for
/// [`silence_limit`]`(heartbeat)`; meanwhile refreshes the held lock once
/// per heartbeat. Runs until the process ends.
pub fn watch(last: Arc<LastHeard>, heartbeat: u64, lock: Arc<Mutex<Option<ProjectLock>>>) {
    let limit = silence_limit(heartbeat);
    // A quarter heartbeat, between 250 ms and 1 s: the limit is kept to
    // within a tick, and a fleet of idle agents hardly wakes up.
    let tick = Duration::from_millis((heartbeat.max(1) * 250).min(1000));
    let mut refreshed = Instant::now();
    loop {
        std::thread::sleep(tick);
        let silent = last.silent_for();
        if silent >= limit {
            let _ = writeln!(
                std::io::stderr(),
                "batou agent: nothing heard from the controller for {}s (it pings every {heartbeat}s): the link or the controller is gone; stopping, which releases the lock",
                silent.as_secs()
            );
            // The lock is released by the end of the process; no deploy
            // thread may go on without its controller.
            std::process::exit(super::server::EXIT_CONTROLLER_GONE);
        }
        if refreshed.elapsed() >= Duration::from_secs(heartbeat) {
            refreshed = Instant::now();
            if let Some(l) = lock.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
                l.refresh();
            }
        }
    }
}

/// The controller's side: a thread writing [`Request::Ping`] every
/// heartbeat into the agent's channel until dropped (or the channel
/// breaks).
#[derive(Debug)]
pub struct Pinger {
    /// Dropping it wakes and ends the thread.
    _stop: mpsc::Sender<()>,
}

/// The controller's writing half of an agent channel, shared by the
/// requests and the [`Pinger`].
pub type SharedWriter = Arc<Mutex<std::io::BufWriter<Box<dyn Write + Send>>>>;

impl Pinger {
    /// Starts pinging through `writer` every `heartbeat` seconds.
    pub fn start(writer: SharedWriter, heartbeat: u64) -> Pinger {
        let (stop, stopped) = mpsc::channel::<()>();
        let every = Duration::from_secs(heartbeat.max(1));
        std::thread::spawn(move || {
            while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(every) {
                let mut w = writer.lock().unwrap_or_else(|e| e.into_inner());
                if write_frame(&mut *w, &Request::Ping).is_err() {
                    return;
                }
            }
        });
        Pinger { _stop: stop }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_silence_is_measured_from_the_last_frame() {
        let last = LastHeard::default();
        std::thread::sleep(Duration::from_millis(30));
        assert!(last.silent_for() >= Duration::from_millis(30));
        last.touch();
        assert!(last.silent_for() < Duration::from_millis(30));
    }

    #[test]
    fn pings_arrive_until_the_pinger_is_dropped() {
        let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        let writer: SharedWriter = Arc::new(Mutex::new(std::io::BufWriter::new(Box::new(a))));
        let pinger = Pinger::start(writer, 1);
        let mut r = std::io::BufReader::new(b.try_clone().unwrap());
        let ping: Option<Request> = super::super::protocol::read_frame(&mut r).unwrap();
        assert!(matches!(ping, Some(Request::Ping)));
        drop(pinger);
        // The thread ends at its next wake-up and drops the writer: the
        // channel ends.
        b.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let end: Option<Request> = super::super::protocol::read_frame(&mut r).unwrap();
        assert!(end.is_none());
    }
}
