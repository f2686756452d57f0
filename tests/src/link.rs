//! A network path that can be cut: a TCP forwarder on loopback between
//! the client and a host's sshd.
//!
//! [`Link::cut`] makes every connection through it silent, as a pulled
//! cable or a firewall rule dropping packets does: the sockets stay open,
//! no byte passes in either direction, neither end gets an error or an
//! end of stream. New connections while cut are accepted and left silent
//! too. [`Link::restore`] lets new connections through again; the cut
//! ones stay dead, as their peers have given up on them.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The forwarder; its threads end when it is dropped.
pub struct Link {
    /// The port on 127.0.0.1 to connect to instead of the host's.
    pub port: u16,
    shared: Arc<Shared>,
}

#[derive(Default)]
struct Shared {
    /// Bumped by every cut: connections older than it are silent.
    cuts: AtomicU64,
    /// New connections are left silent.
    down: AtomicBool,
    closed: AtomicBool,
    /// Sockets of cut connections, kept open so that no end sees a close.
    silent: Mutex<Vec<TcpStream>>,
}

impl Link {
    /// Forwards a new port on 127.0.0.1 to `port` on 127.0.0.1.
    pub fn to(port: u16) -> Link {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a port for the link");
        let own = listener.local_addr().expect("its address").port();
        listener.set_nonblocking(true).expect("nonblocking accept");
        let shared = Arc::new(Shared::default());
        let s = shared.clone();
        std::thread::spawn(move || {
            while !s.closed.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((client, _)) => connect(&s, client, port),
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        Link { port: own, shared }
    }

    /// Silences every connection through the link, and new ones.
    pub fn cut(&self) {
        self.shared.down.store(true, Ordering::SeqCst);
        self.shared.cuts.fetch_add(1, Ordering::SeqCst);
    }

    /// Lets new connections through again.
    pub fn restore(&self) {
        self.shared.down.store(false, Ordering::SeqCst);
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        self.shared.closed.store(true, Ordering::SeqCst);
        self.shared
            .silent
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }
}

fn connect(s: &Arc<Shared>, client: TcpStream, port: u16) {
    let _ = client.set_nonblocking(false);
    if s.down.load(Ordering::SeqCst) {
        keep_silent(s, client);
        return;
    }
    let Ok(server) = TcpStream::connect(("127.0.0.1", port)) else {
        return; // dropping the client closes it, as a refused connect
    };
    let generation = s.cuts.load(Ordering::SeqCst);
    for (from, to) in [(&client, &server), (&server, &client)] {
        let (Ok(from), Ok(to)) = (from.try_clone(), to.try_clone()) else {
            return;
        };
        let s = s.clone();
        std::thread::spawn(move || pump(&s, generation, from, to));
    }
}

/// Copies `from` to `to` until either ends or the link is cut; a cut
/// keeps both sockets open and silent.
fn pump(s: &Shared, generation: u64, mut from: TcpStream, mut to: TcpStream) {
    let _ = from.set_read_timeout(Some(Duration::from_millis(50)));
    let mut buf = vec![0u8; 64 << 10];
    loop {
        if s.closed.load(Ordering::SeqCst) {
            return;
        }
        if s.cuts.load(Ordering::SeqCst) != generation {
            keep_silent(s, from);
            keep_silent(s, to);
            return;
        }
        match from.read(&mut buf) {
            Ok(0) => {
                let _ = to.shutdown(std::net::Shutdown::Write);
                return;
            }
            Ok(n) => {
                // Bytes read before the cut may still pass: a packet in
                // flight.
                if to.write_all(&buf[..n]).is_err() {
                    return;
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return,
        }
    }
}

fn keep_silent(s: &Shared, socket: TcpStream) {
    s.silent
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(socket);
}
