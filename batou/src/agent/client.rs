//! The controller side: start an agent and talk to it.

use super::liveness::{LastHeard, Pinger, SharedWriter};
use super::protocol::{read_frame, write_frame, Request, Response, PROTOCOL_VERSION};
use crate::environment::Environment;
use crate::output::Line;
use crate::report::Report;
use std::io::{BufReader, BufWriter};
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};

use crate::transport::TransportError;

/// A running agent.
pub struct AgentConnection {
    host: String,
    child: ChildGuard,
    /// Seconds between pings (the environment's timeout, at least 1).
    heartbeat: u64,
    writer: SharedWriter,
    /// Pings the agent while the connection lives (from the answer to
    /// `Hello` on).
    pinger: Option<Pinger>,
    reader: BufReader<Box<dyn Read + Send>>,
}

impl AgentConnection {
    /// Starts this executable as an agent in `project_root` (connect_method
    /// `local`) and exchanges `Hello`; pings it every `timeout` seconds.
    pub fn spawn_local(
        host: &str,
        project_root: &Path,
        timeout: u64,
    ) -> Result<AgentConnection, TransportError> {
        let exe = std::env::current_exe().map_err(|e| TransportError {
            kind: crate::transport::ErrorKind::Other,
            host: host.to_string(),
            detail: format!("cannot find the running executable: {e}"),
        })?;
        let mut cmd = Command::new(&exe);
        cmd.arg("agent").current_dir(project_root);
        Self::start(host, cmd, timeout)
    }

    /// Uploads this executable to the host (once per version) and starts it
    /// as an agent over the system's `ssh` (connect_method `ssh`).
    pub fn spawn_ssh(
        ssh: &crate::transport::Ssh,
        target_directory: &str,
        upload_progress: Option<crate::events::Progress>,
    ) -> Result<AgentConnection, TransportError> {
        // One ssh session in the usual case: the agent command starts the
        // executable if this version is there, else says it is missing.
        let start = || match ssh.client {
            crate::transport::SshClient::OpenSsh => {
                Self::start_checked(ssh, ssh.agent_command(target_directory)?)
            }
            crate::transport::SshClient::Russh => Self::start_checked_russh(ssh, target_directory),
        };
        match start()? {
            Started::Agent(conn) => Ok(conn),
            Started::Missing(uname) => {
                ssh.check_platform(&uname)?;
                ssh.upload(target_directory, upload_progress)?;
                match start()? {
                    Started::Agent(conn) => Ok(conn),
                    Started::Missing(_) => Err(TransportError {
                        kind: crate::transport::ErrorKind::Other,
                        host: ssh.host.clone(),
                        detail: "the uploaded agent cannot be started".into(),
                    }),
                }
            }
        }
    }

    /// Runs the agent command over russh (see [`Self::start_checked`]).
    fn start_checked_russh(
        ssh: &crate::transport::Ssh,
        target_directory: &str,
    ) -> Result<Started, TransportError> {
        let command = ssh.agent_command_line(target_directory)?;
        let tail = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let remote = ssh.russh_exec(&command, tail.clone())?;
        let (Ok(r), Ok(w)) = (remote.stream.try_clone(), remote.stream.try_clone()) else {
            return Err(ssh.explain("", "cannot use the connection"));
        };
        let conn = AgentConnection {
            host: ssh.host.clone(),
            child: ChildGuard::new(Process::Russh(remote), tail, ssh.timeout),
            heartbeat: super::liveness::heartbeat(ssh.timeout),
            writer: shared(Box::new(w)),
            pinger: None,
            reader: BufReader::new(Box::new(r)),
        };
        Self::handshake(ssh, conn)
    }

    /// Starts an agent command that may instead report the executable
    /// missing (see [`crate::transport::ssh::MISSING`]).
    fn start_checked(ssh: &crate::transport::Ssh, cmd: Command) -> Result<Started, TransportError> {
        let conn = Self::spawn_child(&ssh.host, cmd, ssh.timeout, true)?;
        Self::handshake(ssh, conn)
    }

    /// Sends `Hello`; the answer is the agent's, or the marker saying the
    /// executable is missing.
    fn handshake(
        ssh: &crate::transport::Ssh,
        mut conn: AgentConnection,
    ) -> Result<Started, TransportError> {
        // A remote command that only reports the executable missing may be
        // gone before the hello reaches it: its answer is still to be read.
        let hello = conn.hello();
        let _ = conn.send(&hello);
        let mut head = [0u8; 4];
        if std::io::Read::read_exact(&mut conn.reader, &mut head).is_err() {
            let status = conn.child.wait_status();
            // Let the stderr thread see the end of ssh's output.
            std::thread::sleep(std::time::Duration::from_millis(50));
            let stderr = conn.child.stderr().join("\n");
            return Err(ssh.explain(&status, &stderr));
        }
        let marker = crate::transport::ssh::MISSING.as_bytes();
        if head == marker[..4] {
            let mut rest = String::new();
            let _ = std::io::Read::read_to_string(&mut conn.reader, &mut rest);
            let _ = conn.child.wait_status();
            let uname = rest.lines().nth(1).unwrap_or("").to_string();
            return Ok(Started::Missing(uname));
        }
        let response =
            super::protocol::read_frame_after_length(&mut conn.reader, u32::from_be_bytes(head))
                .map_err(|e| conn.error(format!("broken channel to the agent: {e}")))?;
        match response {
            Response::Hello { protocol, .. } if protocol == PROTOCOL_VERSION => {
                conn.start_pinging();
                Ok(Started::Agent(conn))
            }
            Response::Failed { message } => Err(conn.error(message)),
            other => Err(conn.error(format!("unexpected answer to hello: {other:?}"))),
        }
    }

    fn spawn_child(
        host: &str,
        mut cmd: Command,
        timeout: u64,
        via_ssh: bool,
    ) -> Result<AgentConnection, TransportError> {
        let err = |message: String| TransportError {
            kind: crate::transport::ErrorKind::Other,
            host: host.to_string(),
            detail: message,
        };
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| err(format!("cannot start the agent: {e}")))?;
        let (Some(stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return Err(err("the agent has no stdin/stdout".into()));
        };
        let stderr_tail = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let tail = stderr_tail.clone();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("{line}");
                let mut t = tail.lock().unwrap_or_else(|e| e.into_inner());
                t.push(line);
                if t.len() > 50 {
                    t.remove(0);
                }
            }
        });
        Ok(AgentConnection {
            host: host.to_string(),
            child: ChildGuard::new(Process::Child { child, via_ssh }, stderr_tail, timeout),
            heartbeat: super::liveness::heartbeat(timeout),
            writer: shared(Box::new(stdin)),
            pinger: None,
            reader: BufReader::new(Box::new(stdout)),
        })
    }

    /// Starts an agent command and exchanges `Hello`; pings it every
    /// `timeout` seconds from then on.
    pub fn start(
        host: &str,
        cmd: Command,
        timeout: u64,
    ) -> Result<AgentConnection, TransportError> {
        let mut conn = Self::spawn_child(host, cmd, timeout, false)?;
        let hello = conn.hello();
        conn.send(&hello)?;
        match conn.receive()? {
            Response::Hello { protocol, .. } if protocol == PROTOCOL_VERSION => {
                conn.start_pinging();
                Ok(conn)
            }
            Response::Failed { message } => Err(conn.error(message)),
            other => Err(conn.error(format!("unexpected answer to hello: {other:?}"))),
        }
    }

    /// Takes the host's deployment lock of the project directory.
    pub fn lock(&mut self, root: &str) -> Result<(), TransportError> {
        self.send(&Request::Lock {
            root: root.to_string(),
        })?;
        match self.receive()? {
            Response::Locked => Ok(()),
            Response::Failed { message } => Err(self.error(message)),
            other => Err(self.error(format!("unexpected answer to lock: {other:?}"))),
        }
    }

    /// Moves the host's git copy in `remote_root` to the controller's
    /// commit: with a bundle streamed from `git bundle` (`pull_url` None),
    /// or by fetching from `pull_url`. A host that ends on another commit
    /// is a repository-differs error.
    pub fn vcs_ship(
        &mut self,
        local: &crate::repository::LocalRepo,
        remote_root: &str,
        pull_url: Option<String>,
        progress: Option<crate::events::Progress>,
    ) -> Result<(), TransportError> {
        use base64::Engine;
        use std::io::Read;
        self.send(&Request::VcsHead {
            vcs: local.vcs,
            root: remote_root.to_string(),
        })?;
        let remote = match self.receive()? {
            Response::Head { commit } => commit,
            Response::Failed { message } => return Err(self.error(message)),
            other => return Err(self.error(format!("unexpected answer to git head: {other:?}"))),
        };
        if pull_url.is_none() {
            let Some(mut bundle) = local.bundle(remote.as_deref()).map_err(|e| self.error(e))?
            else {
                return Ok(());
            };
            let mut buf = vec![0u8; 1 << 20];
            let mut done = 0u64;
            loop {
                let n = bundle
                    .reader
                    .read(&mut buf)
                    .map_err(|e| self.error(format!("reading the bundle: {e}")))?;
                if n == 0 {
                    break;
                }
                self.send(&Request::VcsChunk {
                    data: base64::engine::general_purpose::STANDARD.encode(&buf[..n]),
                })?;
                done += n as u64;
                if let Some(p) = progress {
                    p(done, 0);
                }
            }
            bundle.finish().map_err(|e| self.error(e))?;
        }
        self.send(&Request::VcsUpdate {
            vcs: local.vcs,
            root: remote_root.to_string(),
            branch: local.branch.clone(),
            url: pull_url,
        })?;
        match self.receive()? {
            Response::Head { commit } if commit.as_deref() == Some(local.head.as_str()) => Ok(()),
            Response::Head { commit } => Err(self.error(format!(
                "The remote working copy is based on a different revision. Maybe you tried to deploy from the wrong branch. (Local: {}, Remote: {})",
                local.head,
                commit.unwrap_or_else(|| "none".into())
            ))),
            Response::Failed { message } => Err(self.error(message)),
            other => Err(self.error(format!("unexpected answer to git update: {other:?}"))),
        }
    }

    /// Ships the project in `local_root` to `remote_root` on the host;
    /// returns (files sent, paths deleted).
    pub fn ship(
        &mut self,
        local_root: &Path,
        remote_root: &str,
        progress: Option<crate::events::Progress>,
    ) -> Result<(usize, usize), TransportError> {
        use base64::Engine;
        let manifest = crate::shipping::manifest(local_root).map_err(|e| {
            self.error(format!(
                "cannot read the project {}: {e}",
                local_root.display()
            ))
        })?;
        self.send(&Request::Ship {
            root: remote_root.to_string(),
            manifest,
        })?;
        let paths = match self.receive()? {
            Response::Need { paths } => paths,
            Response::Failed { message } => return Err(self.error(message)),
            other => return Err(self.error(format!("unexpected answer to ship: {other:?}"))),
        };
        let total: u64 = paths
            .iter()
            .filter_map(|p| std::fs::metadata(local_root.join(p)).ok())
            .map(|m| m.len())
            .sum();
        let mut done = 0u64;
        for path in &paths {
            let rel = crate::safe_fs::relative(path).map_err(|e| self.error(e.to_string()))?;
            let mut lost = false;
            crate::shipping::read_chunks(&local_root.join(rel), |data, last| {
                self.send(&Request::ShipFile {
                    path: path.clone(),
                    data: base64::engine::general_purpose::STANDARD.encode(data),
                    last,
                })
                .map_err(|e| {
                    lost = true;
                    e.detail
                })?;
                done += data.len() as u64;
                if let Some(p) = progress {
                    p(done, total);
                }
                Ok(())
            })
            .map_err(|message| {
                if lost {
                    self.shipping_failed(message)
                } else {
                    self.error(message)
                }
            })?;
        }
        self.send(&Request::ShipDone)?;
        match self.receive()? {
            Response::Shipped { deleted } => Ok((paths.len(), deleted)),
            Response::Failed { message } => Err(self.error(message)),
            other => Err(self.error(format!("unexpected answer to ship done: {other:?}"))),
        }
    }

    /// A failed send while shipping: the agent's own `Failed` answer, if it
    /// gave one, explains it better than the broken pipe.
    fn shipping_failed(&mut self, message: String) -> TransportError {
        match read_answer(&mut self.reader, &self.child.heard) {
            Ok(Some(Response::Failed { message })) => self.error(message),
            _ => self.error(message),
        }
    }

    fn error(&self, message: String) -> TransportError {
        TransportError {
            kind: crate::transport::ErrorKind::Other,
            host: self.host.clone(),
            detail: message,
        }
    }

    /// Our `Hello`, with the heartbeat the agent may expect.
    fn hello(&self) -> Request {
        Request::Hello {
            protocol: PROTOCOL_VERSION,
            version: crate::VERSION.to_string(),
            heartbeat: self.heartbeat,
        }
    }

    fn start_pinging(&mut self) {
        self.pinger = Some(Pinger::start(self.writer.clone(), self.heartbeat));
    }

    fn send(&mut self, req: &Request) -> Result<(), TransportError> {
        let written = write_frame(&mut *lock(&self.writer), req);
        written.map_err(|e| {
            let why = self.child.why_lost(&e.to_string());
            self.error(why)
        })
    }

    fn receive(&mut self) -> Result<Response, TransportError> {
        let detail = match read_answer(&mut self.reader, &self.child.heard) {
            Ok(Some(r)) => return Ok(r),
            Ok(None) => "the channel ended".to_string(),
            Err(e) => e.to_string(),
        };
        let why = self.child.why_lost(&detail);
        Err(self.error(why))
    }

    /// Configures the model on the agent; returns its configuration errors.
    pub fn configure(
        &mut self,
        project_root: &str,
        environment: &Environment,
    ) -> Result<Vec<Report>, TransportError> {
        self.start_configure(project_root, environment.clone(), None)?;
        Ok(self.finish_configure()?.0)
    }

    /// Asks the agent to configure (`roots`: only these, `(host, root)`;
    /// `None`: all) without waiting for the answer, so the controller can
    /// work meanwhile.
    pub fn start_configure(
        &mut self,
        project_root: &str,
        environment: Environment,
        roots: Option<std::collections::BTreeSet<(String, String)>>,
    ) -> Result<(), TransportError> {
        self.send(&Request::Configure {
            project_root: project_root.to_string(),
            environment: Box::new(environment),
            host: self.host.clone(),
            roots,
        })
    }

    /// Waits for the answer to [`Self::start_configure`]: the agent's
    /// configuration errors and its [`Plan`](crate::model::Plan).
    pub fn finish_configure(
        &mut self,
    ) -> Result<(Vec<Report>, crate::model::Plan), TransportError> {
        match self.receive()? {
            Response::Configured { errors, plan } => Ok((errors, plan)),
            Response::Failed { message } => Err(self.error(message)),
            other => Err(self.error(format!("unexpected answer to configure: {other:?}"))),
        }
    }

    /// Switches to the deployment phase: a thread reads the agent's
    /// answers and forwards them, tagged with `index`, to `events`: all
    /// that arrived together in one message.
    pub fn into_deployer(
        self,
        index: usize,
        events: mpsc::Sender<(usize, Vec<AgentEvent>)>,
    ) -> Deployer {
        let AgentConnection {
            host,
            child,
            writer,
            pinger,
            mut reader,
            ..
        } = self;
        let child = Arc::new(Mutex::new(child));
        let closing = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let watched = Watched {
            child: child.clone(),
            closing: closing.clone(),
        };
        let reader_thread = std::thread::spawn(move || loop {
            let mut batch = vec![next_agent_event(&mut reader, &watched)];
            // Frames already read from the channel come along.
            while !reader.buffer().is_empty() && batch.len() < MAX_BATCH {
                if matches!(batch.last(), Some(AgentEvent::Lost { .. })) {
                    break;
                }
                batch.push(next_agent_event(&mut reader, &watched));
            }
            let last = matches!(batch.last(), Some(AgentEvent::Lost { .. }));
            if events.send((index, batch)).is_err() || last {
                return;
            }
        });
        Deployer {
            host,
            child,
            writer,
            _pinger: pinger,
            closing,
            reader_thread: Some(reader_thread),
        }
    }
}

/// Reads the agent's next answer; its `Pong`s only say it is there.
fn read_answer(
    reader: &mut BufReader<Box<dyn Read + Send>>,
    heard: &LastHeard,
) -> std::io::Result<Option<Response>> {
    loop {
        match read_frame::<Response>(reader)? {
            Some(Response::Pong) => heard.touch(),
            Some(answer) => {
                heard.touch();
                return Ok(Some(answer));
            }
            None => return Ok(None),
        }
    }
}

/// Events forwarded in one message at most.
const MAX_BATCH: usize = 1024;

/// What the deployment phase's reader knows of the agent's end.
struct Watched {
    child: Arc<Mutex<ChildGuard>>,
    /// Set before `Bye`: the end of the channel is then the agent's
    /// normal end, with nothing to explain.
    closing: Arc<std::sync::atomic::AtomicBool>,
}

/// Reads the agent's next answer in the deployment phase; at an
/// unexpected end of the channel, the child says why.
fn next_agent_event(reader: &mut BufReader<Box<dyn Read + Send>>, watched: &Watched) -> AgentEvent {
    let child = &watched.child;
    let heard = lock(child).heard.clone();
    match read_answer(reader, &heard) {
        Ok(Some(Response::Event { id, event })) => AgentEvent::Event { id, event },
        Ok(Some(Response::Deployed {
            id,
            changed,
            seconds,
            error,
        })) => AgentEvent::Deployed {
            id,
            changed,
            seconds,
            error,
        },
        Ok(Some(Response::Failed { message })) => AgentEvent::Lost { message },
        Ok(Some(other)) => AgentEvent::Lost {
            message: format!("unexpected answer during deployment: {other:?}"),
        },
        Ok(None) if watched.closing.load(std::sync::atomic::Ordering::SeqCst) => AgentEvent::Lost {
            message: "the agent ended after Bye".into(),
        },
        Ok(None) => AgentEvent::Lost {
            message: lock(child).why_lost("the channel ended"),
        },
        Err(e) => AgentEvent::Lost {
            message: lock(child).why_lost(&e.to_string()),
        },
    }
}

/// The outcome of starting an agent over ssh.
enum Started {
    Agent(AgentConnection),
    /// This version is not on the host; `uname -sm` of the host.
    Missing(String),
}

/// What an agent reports during the deployment phase.
#[derive(Debug)]
pub enum AgentEvent {
    /// Something happened in deployment `id`.
    Event {
        /// The deployment.
        id: u64,
        /// What.
        event: Box<crate::events::Event>,
    },
    /// Deployment `id` finished (`Some`: the error report).
    Deployed {
        /// The deployment.
        id: u64,
        /// Whether anything changed.
        changed: bool,
        /// Seconds it took.
        seconds: f64,
        /// The error report, if it failed.
        error: Option<Vec<Line>>,
    },
    /// The connection is gone or the agent refused to go on.
    Lost {
        /// Why.
        message: String,
    },
}

/// An agent in the deployment phase: requests go out here, answers arrive
/// as [`AgentEvent`]s.
pub struct Deployer {
    host: String,
    child: Arc<Mutex<ChildGuard>>,
    writer: SharedWriter,
    _pinger: Option<Pinger>,
    /// Set by [`Self::close`] before `Bye`.
    closing: Arc<std::sync::atomic::AtomicBool>,
    reader_thread: Option<std::thread::JoinHandle<()>>,
}

impl Deployer {
    /// Asks the agent to deploy a root; answers carry `id`.
    pub fn deploy(&mut self, id: u64, root: &str, predict: bool) -> Result<(), TransportError> {
        let request = Request::Deploy {
            id,
            root: root.to_string(),
            predict,
        };
        let written = write_frame(&mut *lock(&self.writer), &request);
        written.map_err(|e| TransportError {
            kind: crate::transport::ErrorKind::Other,
            host: self.host.clone(),
            detail: lock(&self.child).why_lost(&e.to_string()),
        })
    }

    /// Says goodbye and waits for the agent (and its running deployments).
    pub fn close(mut self) {
        self.closing
            .store(true, std::sync::atomic::Ordering::SeqCst);
        let _ = write_frame(&mut *lock(&self.writer), &Request::Bye);
        let _ = lock(&self.child).wait_status();
        if let Some(t) = self.reader_thread.take() {
            let _ = t.join();
        }
    }
}

/// The agent's process: a local child (the agent itself, or the system
/// `ssh` running it), or a command run over russh.
enum Process {
    Child {
        child: Child,
        /// The child is `ssh`: its own failures exit 255 and say why on
        /// stderr.
        via_ssh: bool,
    },
    Russh(crate::transport::russh::Remote),
}

/// The agent's process, with what it wrote to stderr; killed if it still
/// runs when dropped.
struct ChildGuard {
    process: Process,
    /// The last lines the agent (or ssh) wrote to stderr; they are also
    /// passed on to the controller's stderr.
    stderr_tail: Arc<Mutex<Vec<String>>>,
    /// The environment's timeout (seconds), for the silence limit.
    timeout: u64,
    /// When the agent was last heard (any frame, its `Pong`s included).
    heard: Arc<LastHeard>,
}

/// How long to wait for a process whose channel ended to tell why.
const ENDING_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

impl ChildGuard {
    fn new(process: Process, stderr_tail: Arc<Mutex<Vec<String>>>, timeout: u64) -> ChildGuard {
        ChildGuard {
            process,
            stderr_tail,
            timeout,
            heard: Arc::new(LastHeard::default()),
        }
    }

    /// The last stderr lines.
    fn stderr(&self) -> Vec<String> {
        lock(&self.stderr_tail).clone()
    }

    /// Waits for the process to end; its exit status as text.
    fn wait_status(&mut self) -> String {
        match &mut self.process {
            Process::Child { child, .. } => child.wait().map(|s| s.to_string()).unwrap_or_default(),
            Process::Russh(r) => {
                for _ in 0..200 {
                    if let Some(code) = *lock(&r.status) {
                        return format!("exit status: {code}");
                    }
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                "connection closed".into()
            }
        }
    }

    /// Why the channel to the agent broke (`detail`: what the channel
    /// said), in words for the error: the host went silent, its sshd
    /// closed the connection, the agent was killed or ran out of memory,
    /// or it exited.
    fn why_lost(&mut self, detail: &str) -> String {
        let ending = self.ending();
        // Let the stderr threads pass on the last lines.
        std::thread::sleep(std::time::Duration::from_millis(50));
        describe_loss(&ending, &self.stderr(), self.timeout, detail)
    }

    /// How the process ended, waiting a little for it to tell.
    fn ending(&mut self) -> Ending {
        let deadline = std::time::Instant::now() + ENDING_WAIT;
        loop {
            if let Some(ending) = self.ended() {
                return ending;
            }
            if std::time::Instant::now() >= deadline {
                return Ending::Unknown;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// Whether the agent, which answers every ping, missed at least two
    /// of them (ssh gives up after a few keep-alives unanswered).
    fn went_silent(&self) -> bool {
        let heartbeat = super::liveness::heartbeat(self.timeout);
        self.heard.silent_for() >= std::time::Duration::from_secs(2 * heartbeat)
    }

    fn ended(&mut self) -> Option<Ending> {
        use crate::transport::russh::SessionEnd;
        use std::os::unix::process::ExitStatusExt;
        match &mut self.process {
            Process::Child { child, via_ssh } => {
                let status = child.try_wait().ok()??;
                Some(match (status.signal(), status.code()) {
                    (Some(sig), _) => Ending::Signalled(signal_name(sig)),
                    // ssh's own failure: its stderr says which, or (at a
                    // LogLevel that hides it) the silence before it.
                    (None, Some(255)) if *via_ssh => {
                        let said = ssh_failure(&lock(&self.stderr_tail));
                        match said {
                            Ending::Exited(_) if self.went_silent() => Ending::Silent,
                            // The agent never exits 255: ssh lost the host.
                            Ending::Exited(_) => Ending::HostClosed,
                            ending => ending,
                        }
                    }
                    (None, code) => Ending::Exited(code.unwrap_or(-1)),
                })
            }
            Process::Russh(r) => Some(match lock(&r.ended).clone()? {
                SessionEnd::Exited(code) => Ending::Exited(code as i32),
                SessionEnd::Signalled(name) => Ending::Signalled(name),
                SessionEnd::Silent => Ending::Silent,
                SessionEnd::Closed(_) => Ending::HostClosed,
            }),
        }
    }
}

/// How an agent's channel ended.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Ending {
    /// The agent exited with this code.
    Exited(i32),
    /// The agent was killed by this signal (`KILL`, `ABRT`).
    Signalled(String),
    /// The host stopped answering keep-alives.
    Silent,
    /// The host's sshd closed the connection (restarted, or the session
    /// was killed).
    HostClosed,
    /// Not known (yet).
    Unknown,
}

/// What an `ssh` that exited 255 says of its end.
fn ssh_failure(stderr: &[String]) -> Ending {
    let said = |needle: &str| stderr.iter().any(|l| l.contains(needle));
    if said("not responding") || said("Timeout") {
        Ending::Silent
    } else if said("closed by remote host") || said("Connection reset") || said("Broken pipe") {
        Ending::HostClosed
    } else {
        Ending::Exited(255)
    }
}

/// `KILL` for 9.
fn signal_name(sig: i32) -> String {
    let names = [
        (libc::SIGKILL, "KILL"),
        (libc::SIGABRT, "ABRT"),
        (libc::SIGSEGV, "SEGV"),
        (libc::SIGTERM, "TERM"),
        (libc::SIGINT, "INT"),
        (libc::SIGHUP, "HUP"),
        (libc::SIGBUS, "BUS"),
        (libc::SIGPIPE, "PIPE"),
    ];
    names
        .iter()
        .find(|(n, _)| *n == sig)
        .map(|(_, name)| name.to_string())
        .unwrap_or_else(|| sig.to_string())
}

/// The error text for a lost agent. An allocation failure the agent
/// printed names the cause best; then how the process or the connection
/// ended.
fn describe_loss(ending: &Ending, stderr: &[String], timeout: u64, detail: &str) -> String {
    if let Some(line) = stderr
        .iter()
        .rev()
        .find(|l| l.contains("memory allocation of") && l.contains("failed"))
    {
        return format!("the agent ran out of memory ({})", line.trim());
    }
    let heartbeat = super::liveness::heartbeat(timeout);
    match ending {
        Ending::Silent => format!(
            "the host stopped answering: nothing heard for {}s (keep-alives every {heartbeat}s, the environment's timeout); its agent stops by itself when it hears nothing for as long, which releases the host's lock",
            super::liveness::silence_limit(heartbeat).as_secs()
        ),
        Ending::HostClosed => {
            "the host closed the connection (its sshd ended the session: restarted, or the session was killed)".into()
        }
        Ending::Signalled(name) if name == "KILL" => "the agent was killed (SIGKILL): on a host short of memory this is the kernel's out-of-memory killer (see `dmesg` or `journalctl -k` there)".into(),
        Ending::Signalled(name) => format!("the agent was killed by SIG{name}"),
        Ending::Exited(code) => match stderr.last() {
            Some(last) => format!("the agent exited unexpectedly (exit status {code}): {}", last.trim()),
            None => format!("the agent exited unexpectedly (exit status {code})"),
        },
        Ending::Unknown => format!("lost the connection to the agent ({detail})"),
    }
}

/// Locks a mutex, also one a panicking thread held.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The writing half of a channel, to share with the [`Pinger`].
fn shared(w: Box<dyn Write + Send>) -> SharedWriter {
    Arc::new(Mutex::new(BufWriter::new(w)))
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        match &mut self.process {
            Process::Child { child, .. } => {
                if let Ok(None) = child.try_wait() {
                    let _ = child.kill();
                }
                let _ = child.wait();
            }
            // Closing the socket ends the remote command's stdin.
            Process::Russh(r) => {
                let _ = r.stream.shutdown(std::net::Shutdown::Both);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn losses_are_explained_by_their_cause() {
        let none: Vec<String> = Vec::new();
        let silent = describe_loss(&Ending::Silent, &none, 3, "");
        assert!(
            silent.starts_with(
                "the host stopped answering: nothing heard for 12s (keep-alives every 3s"
            ),
            "{silent}"
        );
        assert!(describe_loss(&Ending::HostClosed, &none, 3, "")
            .starts_with("the host closed the connection (its sshd ended the session"));
        assert!(
            describe_loss(&Ending::Signalled("KILL".into()), &none, 3, "")
                .contains("out-of-memory killer")
        );
        let oom = vec!["memory allocation of 1073741824 bytes failed".to_string()];
        assert_eq!(
            describe_loss(&Ending::Signalled("ABRT".into()), &oom, 3, ""),
            "the agent ran out of memory (memory allocation of 1073741824 bytes failed)"
        );
        assert_eq!(
            describe_loss(&Ending::Exited(2), &["boom".to_string()], 3, ""),
            "the agent exited unexpectedly (exit status 2): boom"
        );
        assert_eq!(
            describe_loss(&Ending::Unknown, &none, 3, "Broken pipe (os error 32)"),
            "lost the connection to the agent (Broken pipe (os error 32))"
        );
        assert_eq!(
            ssh_failure(&["Timeout, server 127.0.0.1 not responding.".into()]),
            Ending::Silent
        );
        assert_eq!(
            ssh_failure(&["Connection to 127.0.0.1 closed by remote host.".into()]),
            Ending::HostClosed
        );
    }
}
