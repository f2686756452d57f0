//! The agent side: serve requests from stdin, answer on stdout.
//!
//! The set-up phase (hello, lock, ship, configure) is a `Session` with
//! one handler per request; nothing but `Hello` is served before `Hello`.
//! Then every `Deploy` runs on a thread of its own while others run, so
//! several roots of one host deploy at once when the controller asks for it
//! (`-j`); a thread that finished takes the next request. Answers carry the
//! request's id. A frame that is too large or not a request is answered
//! with `Failed` naming the problem before the agent exits non-zero.

use super::liveness::LastHeard;
use super::protocol::{read_frame, Request, Response, PROTOCOL_VERSION};
use crate::environment::Environment;
use crate::lock::ProjectLock;
use crate::model::{Model, ModelEnv};
use crate::output::Line;
use crate::shipping::Receiver;
use std::fs::File;
use std::io::BufReader;
use std::os::fd::FromRawFd;
use std::path::PathBuf;
use std::sync::atomic::Ordering::SeqCst;
use std::sync::{Arc, Mutex};

/// Exit code after a request the agent could not handle.
const EXIT_FAILED: i32 = 1;
/// Exit code after garbage on the channel (oversized or invalid frame).
const EXIT_PROTOCOL: i32 = 2;
/// Exit code when the controller went away (the channel ended or went
/// silent) while deploying.
pub(crate) const EXIT_CONTROLLER_GONE: i32 = 3;

/// What the reader thread passes on: a request, the end of the channel
/// (`None`), or garbage on it.
type Incoming = std::io::Result<Option<Request>>;

/// Reads frames from stdin on a thread of its own, so the agent hears its
/// controller also while it configures or deploys: every frame counts as
/// a sign of life, `Ping`s are answered here, the rest is passed on.
fn read_requests(
    last_heard: Arc<LastHeard>,
    outbox: Arc<super::outbox::Outbox<File>>,
) -> std::sync::mpsc::Receiver<Incoming> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut reader = BufReader::new(std::io::stdin().lock());
        loop {
            let frame: Incoming = read_frame(&mut reader);
            match frame {
                Ok(Some(Request::Ping)) => {
                    last_heard.touch();
                    outbox.send(&Response::Pong);
                }
                Ok(Some(req)) => {
                    last_heard.touch();
                    if tx.send(Ok(Some(req))).is_err() {
                        return;
                    }
                }
                end => {
                    let _ = tx.send(end);
                    return;
                }
            }
        }
    });
    rx
}

/// The next request; `Ok(None)` when the channel ended.
fn next_request(requests: &std::sync::mpsc::Receiver<Incoming>) -> Incoming {
    requests.recv().unwrap_or(Ok(None))
}

/// Runs the agent until the controller says `Bye` or closes the channel.
/// Returns the process exit code.
pub fn serve() -> i32 {
    // The protocol owns the original stdout. Anything component code prints
    // to fd 1 goes to stderr instead and cannot corrupt the frames. The copy
    // is close-on-exec: a daemon that a command starts (supervisord) must
    // not inherit it, or the controller would wait for its end forever.
    // SAFETY: plain descriptor duplication on descriptors this process owns.
    let proto_fd = unsafe { libc::fcntl(libc::STDOUT_FILENO, libc::F_DUPFD_CLOEXEC, 3) };
    if proto_fd < 0 || unsafe { libc::dup2(libc::STDERR_FILENO, libc::STDOUT_FILENO) } < 0 {
        eprintln!("batou agent: cannot set up the protocol channel");
        return 1;
    }
    // SAFETY: proto_fd is a fresh descriptor owned by nothing else.
    let out = unsafe { File::from_raw_fd(proto_fd) };
    let outbox = std::sync::Arc::new(super::outbox::Outbox::new(out));
    let flusher = std::sync::Arc::clone(&outbox);
    std::thread::spawn(move || flusher.flush_events());
    let last_heard = Arc::new(LastHeard::default());
    let requests = read_requests(last_heard.clone(), outbox.clone());
    let send = |msg: &Response| -> bool { outbox.send(msg) };

    let mut session = Session {
        send: &send,
        greeted: false,
        heartbeat: 0,
        last_heard,
        lock: Arc::new(Mutex::new(None)),
        receiving: None,
        bundle: None,
    };
    let (model, host) = loop {
        let req: Request = match next_request(&requests) {
            Ok(Some(r)) => r,
            Ok(None) => return 0,
            Err(e) => return refuse_frame(&send, e),
        };
        match session.handle(req) {
            Ok(Next::Continue) => {}
            Ok(Next::Configured(model, host, errors)) => {
                if !send(&Response::Configured {
                    errors,
                    plan: model.plan(),
                }) {
                    return EXIT_FAILED;
                }
                break (*model, host);
            }
            Ok(Next::Exit(code)) => return code,
            Err(message) => {
                send(&Response::Failed { message });
                return EXIT_FAILED;
            }
        }
    };
    // The lock is held until the deployments end.
    let code = deploy_phase(&requests, &send, &model, &host);
    drop(
        session
            .lock
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take(),
    );
    code
}

/// Answers garbage on the channel with `Failed`, then ends the agent.
fn refuse_frame(send: &dyn Fn(&Response) -> bool, e: std::io::Error) -> i32 {
    if e.kind() == std::io::ErrorKind::UnexpectedEof {
        return 0;
    }
    send(&Response::Failed {
        message: format!("batou agent: refusing the request: {e}"),
    });
    EXIT_PROTOCOL
}

/// What the set-up loop does after a request.
enum Next {
    Continue,
    Configured(Box<Model>, String, Vec<crate::report::Report>),
    Exit(i32),
}

/// The set-up phase's state.
struct Session<'s> {
    send: &'s dyn Fn(&Response) -> bool,
    greeted: bool,
    /// When the last frame arrived (for the watchdog).
    last_heard: Arc<LastHeard>,
    /// The host's lock, once taken; shared with the watchdog, which
    /// refreshes it.
    lock: Arc<Mutex<Option<ProjectLock>>>,
    /// The controller's heartbeat, seconds (0: none).
    heartbeat: u64,
    receiving: Option<Receiver>,
    /// The bundle file being received for a VCS update.
    bundle: Option<PathBuf>,
}

impl Session<'_> {
    fn handle(&mut self, req: Request) -> Result<Next, String> {
        if !self.greeted && !matches!(req, Request::Hello { .. }) {
            return Err("batou agent: the first request must be Hello".into());
        }
        match req {
            Request::Hello {
                protocol,
                version,
                heartbeat,
            } => self.hello(protocol, &version, heartbeat),
            Request::Lock { root } => self.lock(&root),
            Request::Ship { root, manifest } => self.ship(&root, manifest),
            Request::ShipFile { path, data, last } => self.ship_file(&path, &data, last),
            Request::ShipDone => self.ship_done(),
            Request::VcsHead { vcs, root } => self.vcs_head(vcs, &root),
            Request::VcsChunk { data } => self.vcs_chunk(&data),
            Request::VcsUpdate {
                vcs,
                root,
                branch,
                url,
            } => self.vcs_update(vcs, &root, &branch, url),
            Request::Configure {
                project_root,
                environment,
                host,
                roots,
            } => configure(&project_root, *environment, host, roots.as_ref()),
            Request::Bye => Ok(Next::Exit(0)),
            // Taken by the reader; harmless if one gets here.
            Request::Ping => Ok(Next::Continue),
            Request::Deploy { .. } => Err("deploy before configure".into()),
        }
    }

    fn reply(&self, msg: Response) -> Result<Next, String> {
        Ok(if (self.send)(&msg) {
            Next::Continue
        } else {
            Next::Exit(EXIT_FAILED)
        })
    }

    fn hello(&mut self, protocol: u32, version: &str, heartbeat: u64) -> Result<Next, String> {
        if protocol != PROTOCOL_VERSION {
            return Err(format!(
                "protocol mismatch: controller batou {version} speaks protocol {protocol}, this agent (batou {}) speaks {PROTOCOL_VERSION}",
                crate::VERSION
            ));
        }
        self.greeted = true;
        if heartbeat > 0 && self.heartbeat == 0 {
            self.heartbeat = heartbeat;
            let (last, lock) = (self.last_heard.clone(), self.lock.clone());
            std::thread::spawn(move || super::liveness::watch(last, heartbeat, lock));
        }
        self.reply(Response::Hello {
            protocol: PROTOCOL_VERSION,
            version: crate::VERSION.to_string(),
        })
    }

    fn lock(&mut self, root: &str) -> Result<Next, String> {
        let root = target_root(root)?;
        std::fs::create_dir_all(&root)
            .map_err(|e| format!("cannot create {}: {e}", root.display()))?;
        let taken = if self.heartbeat > 0 {
            ProjectLock::acquire_for_agent(&root, super::liveness::silence_limit(self.heartbeat))
        } else {
            ProjectLock::acquire(&root)
        };
        match taken {
            Ok(l) => {
                *self.lock.lock().unwrap_or_else(|e| e.into_inner()) = Some(l);
                self.reply(Response::Locked)
            }
            Err(e @ crate::lock::LockError::Held { .. }) => Err(format!(
                "another deployment is running in {} on this host: {e}. Wait for it to finish (or stop it) and deploy again.",
                root.display()
            )),
            Err(e) => Err(e.to_string()),
        }
    }

    fn ship(&mut self, root: &str, manifest: Vec<crate::shipping::Entry>) -> Result<Next, String> {
        let root = target_root(root)?;
        let (receiver, paths) = Receiver::start(&root, manifest).map_err(|e| e.to_string())?;
        self.receiving = Some(receiver);
        self.reply(Response::Need { paths })
    }

    fn ship_file(&mut self, path: &str, data: &str, last: bool) -> Result<Next, String> {
        let Some(receiver) = &mut self.receiving else {
            return Err("file before manifest".into());
        };
        let bytes = decode(data).map_err(|e| format!("cannot write {path}: {e}"))?;
        receiver
            .chunk(path, &bytes, last)
            .map_err(|e| format!("cannot write {path}: {e}"))?;
        Ok(Next::Continue)
    }

    fn ship_done(&mut self) -> Result<Next, String> {
        let Some(receiver) = self.receiving.take() else {
            return Err("ship done before manifest".into());
        };
        let deleted = receiver
            .finish()
            .map_err(|e| format!("cannot finish shipping: {e}"))?;
        self.reply(Response::Shipped { deleted })
    }

    fn vcs_head(&mut self, vcs: crate::repository::Vcs, root: &str) -> Result<Next, String> {
        let root = target_root(root)?;
        let commit = crate::repository::remote_head(vcs, &root)?;
        let bundle = root.join(".batou").join("bundle");
        let _ = std::fs::remove_file(&bundle);
        self.bundle = Some(bundle);
        self.reply(Response::Head { commit })
    }

    fn vcs_chunk(&mut self, data: &str) -> Result<Next, String> {
        use std::io::Write;
        let Some(bundle) = &self.bundle else {
            return Err("bundle before head".into());
        };
        decode(data)
            .and_then(|bytes| {
                if let Some(dir) = bundle.parent() {
                    crate::safe_fs::private_dir(dir)?;
                }
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(bundle)?
                    .write_all(&bytes)
            })
            .map_err(|e| format!("cannot write the bundle: {e}"))?;
        Ok(Next::Continue)
    }

    fn vcs_update(
        &mut self,
        vcs: crate::repository::Vcs,
        root: &str,
        branch: &str,
        url: Option<String>,
    ) -> Result<Next, String> {
        let root = target_root(root)?;
        let bundle = root.join(".batou").join("bundle");
        let source = url.unwrap_or_else(|| bundle.to_string_lossy().into_owned());
        let result = crate::repository::update(vcs, &root, &source, branch);
        let _ = std::fs::remove_file(&bundle);
        self.reply(Response::Head {
            commit: Some(result?),
        })
    }
}

/// A target directory from a request (absolute or below `~`), expanded.
fn target_root(root: &str) -> Result<PathBuf, String> {
    let root = crate::safe_fs::root(root).map_err(|e| e.to_string())?;
    Ok(crate::model::expand_user(&root))
}

fn decode(data: &str) -> std::io::Result<Vec<u8>> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(data.as_bytes())
        .map_err(std::io::Error::other)
}

fn configure(
    project_root: &str,
    env: Environment,
    host: String,
    roots: Option<&std::collections::BTreeSet<(String, String)>>,
) -> Result<Next, String> {
    let project_root = target_root(project_root)?;
    if !env.hosts.iter().any(|h| h.name == host) {
        return Err(format!(
            "host {host} is not part of environment {}",
            env.name
        ));
    }
    // Configuration errors are the answer's data, not a failure of the
    // request.
    let (model, errors) = Model::configure_only(ModelEnv::new(project_root, env), roots);
    Ok(Next::Configured(Box::new(model), host, errors))
}

/// Serves `Deploy` requests until `Bye` (running deployments finish first)
/// or the end of the channel. Each request runs on a thread of its own
/// while others run (`-j`); a thread that finished takes the next one, so
/// roots deployed one after the other do not start a thread each.
fn deploy_phase(
    requests: &std::sync::mpsc::Receiver<Incoming>,
    send: &(dyn Fn(&Response) -> bool + Sync),
    model: &Model,
    host: &str,
) -> i32 {
    let (jobs, queue) = std::sync::mpsc::channel::<Job>();
    let queue = std::sync::Mutex::new(queue);
    // Threads waiting for a job (or about to).
    let idle = std::sync::atomic::AtomicUsize::new(0);
    let (queue, idle) = (&queue, &idle);
    std::thread::scope(|scope| {
        // Dropped when this closure returns: the waiting threads end.
        let jobs = jobs;
        loop {
            let req: Request = match next_request(requests) {
                Ok(Some(r)) => r,
                // The controller is gone (killed, or the connection
                // dropped): stop at once rather than deploy on our own.
                // Every change is atomic; the next run converges.
                Ok(None) => std::process::exit(EXIT_CONTROLLER_GONE),
                Err(e) => {
                    refuse_frame(send, e);
                    std::process::exit(EXIT_CONTROLLER_GONE)
                }
            };
            match req {
                Request::Deploy { id, root, predict } => {
                    let mut job = Job { id, root, predict };
                    if idle
                        .fetch_update(SeqCst, SeqCst, |n| n.checked_sub(1))
                        .is_ok()
                    {
                        // An idle thread has not ended: `jobs` is alive.
                        match jobs.send(job) {
                            Ok(()) => continue,
                            Err(std::sync::mpsc::SendError(back)) => job = back,
                        }
                    }
                    scope.spawn(move || {
                        let mut next = Some(job);
                        while let Some(job) = next.take() {
                            deploy_root(send, model, host, job.id, &job.root, job.predict);
                            idle.fetch_add(1, SeqCst);
                            next = queue.lock().unwrap_or_else(|e| e.into_inner()).recv().ok();
                        }
                    });
                }
                // Running deployments finish first: the scope joins them.
                Request::Bye => return 0,
                _ => {
                    send(&Response::Failed {
                        message: "unexpected request after configure".into(),
                    });
                    return EXIT_FAILED;
                }
            }
        }
    })
}

/// A `Deploy` request for a thread of [`deploy_phase`].
struct Job {
    id: u64,
    root: String,
    predict: bool,
}

fn deploy_root(
    send: &(dyn Fn(&Response) -> bool + Sync),
    model: &Model,
    host: &str,
    id: u64,
    root: &str,
    predict: bool,
) {
    let started = std::time::Instant::now();
    let sink = |event: crate::events::Event| {
        if !send(&Response::Event {
            id,
            event: Box::new(event),
        }) {
            // The controller is gone: stop here. Every change is atomic,
            // the next run converges.
            std::process::exit(EXIT_CONTROLLER_GONE);
        }
    };
    // A panic in component code fails this root with a report, like any
    // other error.
    let result = crate::panics::catch(|| model.deploy_root(host, root, predict, &sink))
        .unwrap_or_else(|panic| {
            use crate::output::{tabular_text, Color, Style};
            let red = Style::color(Color::Red);
            let mut lines = vec![Line::new(
                format!("ERROR: panic while deploying {root}: {}", panic.message),
                Style::bold_color(Color::Red),
            )];
            if let Some(l) = panic.location {
                lines.push(Line::new(tabular_text("Source", &l), red));
            }
            Err(lines)
        });
    let seconds = started.elapsed().as_secs_f64();
    let (changed, error) = match result {
        Ok(changed) => (changed, None),
        Err(lines) => (false, Some(lines)),
    };
    if !send(&Response::Deployed {
        id,
        changed,
        seconds,
        error,
    }) {
        std::process::exit(EXIT_CONTROLLER_GONE);
    }
    // A root deploys once per run: its tree is dropped here, while the next
    // root deploys, and its memory kept for the process's end (see
    // `crate::alloc`). A component whose drop panics has been answered for
    // already; the panic is not the agent's end.
    let tree = model.release_root(host, root);
    if crate::panics::catch(move || crate::alloc::drop_without_freeing(tree)).is_err() {
        eprintln!("batou agent: a component of {root} panicked while being dropped");
    }
}
