//! The controller side: start an agent and talk to it.

use super::protocol::{read_frame, write_frame, Request, Response, PROTOCOL_VERSION};
use crate::environment::Environment;
use crate::output::Line;
use crate::report::Report;
use std::io::{BufReader, BufWriter};
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;

use crate::transport::TransportError;

/// A running agent.
pub struct AgentConnection {
    host: String,
    child: ChildGuard,
    /// The last lines the agent (or ssh) wrote to stderr; they are also
    /// passed on to the controller's stderr.
    stderr_tail: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    writer: BufWriter<Box<dyn Write + Send>>,
    reader: BufReader<Box<dyn Read + Send>>,
}

impl AgentConnection {
    /// Starts this executable as an agent in `project_root` (connect_method
    /// `local`) and exchanges `Hello`.
    pub fn spawn_local(host: &str, project_root: &Path) -> Result<AgentConnection, TransportError> {
        let exe = std::env::current_exe().map_err(|e| TransportError {
            kind: crate::transport::ErrorKind::Other,
            host: host.to_string(),
            detail: format!("cannot find the running executable: {e}"),
        })?;
        let mut cmd = Command::new(&exe);
        cmd.arg("agent").current_dir(project_root);
        Self::start(host, cmd)
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
            child: ChildGuard(Process::Russh(remote)),
            stderr_tail: tail,
            writer: BufWriter::new(Box::new(w)),
            reader: BufReader::new(Box::new(r)),
        };
        Self::handshake(ssh, conn)
    }

    /// Starts an agent command that may instead report the executable
    /// missing (see [`crate::transport::ssh::MISSING`]).
    fn start_checked(ssh: &crate::transport::Ssh, cmd: Command) -> Result<Started, TransportError> {
        let conn = Self::spawn_child(&ssh.host, cmd)?;
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
        let _ = conn.send(&Request::Hello {
            protocol: PROTOCOL_VERSION,
            version: crate::VERSION.to_string(),
        });
        let mut head = [0u8; 4];
        if std::io::Read::read_exact(&mut conn.reader, &mut head).is_err() {
            let status = conn.child.wait_status();
            // Let the stderr thread see the end of ssh's output.
            std::thread::sleep(std::time::Duration::from_millis(50));
            let stderr = conn
                .stderr_tail
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .join("\n");
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
                Ok(Started::Agent(conn))
            }
            Response::Failed { message } => Err(conn.error(message)),
            other => Err(conn.error(format!("unexpected answer to hello: {other:?}"))),
        }
    }

    fn spawn_child(host: &str, mut cmd: Command) -> Result<AgentConnection, TransportError> {
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
            child: ChildGuard(Process::Child(child)),
            stderr_tail,
            writer: BufWriter::new(Box::new(stdin)),
            reader: BufReader::new(Box::new(stdout)),
        })
    }

    /// Starts an agent command and exchanges `Hello`.
    pub fn start(host: &str, cmd: Command) -> Result<AgentConnection, TransportError> {
        let mut conn = Self::spawn_child(host, cmd)?;
        conn.send(&Request::Hello {
            protocol: PROTOCOL_VERSION,
            version: crate::VERSION.to_string(),
        })?;
        match conn.receive()? {
            Response::Hello { protocol, .. } if protocol == PROTOCOL_VERSION => Ok(conn),
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
        match read_frame::<Response>(&mut self.reader) {
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

    fn send(&mut self, req: &Request) -> Result<(), TransportError> {
        write_frame(&mut self.writer, req)
            .map_err(|e| self.error(format!("lost connection to the agent: {e}")))
    }

    fn receive(&mut self) -> Result<Response, TransportError> {
        match read_frame(&mut self.reader) {
            Ok(Some(r)) => Ok(r),
            Ok(None) => {
                let status = self.child.wait_status();
                Err(self.error(format!("the agent exited unexpectedly ({status})")))
            }
            Err(e) => Err(self.error(format!("broken channel to the agent: {e}"))),
        }
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
            mut reader,
            ..
        } = self;
        let reader_thread = std::thread::spawn(move || loop {
            let mut batch = vec![next_agent_event(&mut reader)];
            // Frames already read from the channel come along.
            while !reader.buffer().is_empty() && batch.len() < MAX_BATCH {
                if matches!(batch.last(), Some(AgentEvent::Lost { .. })) {
                    break;
                }
                batch.push(next_agent_event(&mut reader));
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
            reader_thread: Some(reader_thread),
        }
    }
}

/// Events forwarded in one message at most.
const MAX_BATCH: usize = 1024;

/// Reads the agent's next answer in the deployment phase.
fn next_agent_event(reader: &mut BufReader<Box<dyn Read + Send>>) -> AgentEvent {
    match read_frame::<Response>(reader) {
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
        Ok(None) => AgentEvent::Lost {
            message: "the agent closed the connection".into(),
        },
        Err(e) => AgentEvent::Lost {
            message: format!("broken channel to the agent: {e}"),
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
    child: ChildGuard,
    writer: BufWriter<Box<dyn Write + Send>>,
    reader_thread: Option<std::thread::JoinHandle<()>>,
}

impl Deployer {
    /// Asks the agent to deploy a root; answers carry `id`.
    pub fn deploy(&mut self, id: u64, root: &str, predict: bool) -> Result<(), TransportError> {
        write_frame(
            &mut self.writer,
            &Request::Deploy {
                id,
                root: root.to_string(),
                predict,
            },
        )
        .map_err(|e| TransportError {
            kind: crate::transport::ErrorKind::Other,
            host: self.host.clone(),
            detail: format!("lost connection to the agent: {e}"),
        })
    }

    /// Says goodbye and waits for the agent (and its running deployments).
    pub fn close(mut self) {
        let _ = write_frame(&mut self.writer, &Request::Bye);
        let _ = self.child.wait_status();
        if let Some(t) = self.reader_thread.take() {
            let _ = t.join();
        }
    }
}

/// The agent's process: a local child (the agent itself or the system
/// `ssh`), or a command run over russh.
enum Process {
    Child(Child),
    Russh(crate::transport::russh::Remote),
}

/// Kills the agent process if it is still running when dropped.
struct ChildGuard(Process);

impl ChildGuard {
    /// Waits for the process to end; its exit status as text.
    fn wait_status(&mut self) -> String {
        match &mut self.0 {
            Process::Child(c) => c.wait().map(|s| s.to_string()).unwrap_or_default(),
            Process::Russh(r) => {
                for _ in 0..200 {
                    if let Some(code) = *r.status.lock().unwrap_or_else(|e| e.into_inner()) {
                        return format!("exit status: {code}");
                    }
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                "connection closed".into()
            }
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        match &mut self.0 {
            Process::Child(c) => {
                if let Ok(None) = c.try_wait() {
                    let _ = c.kill();
                }
                let _ = c.wait();
            }
            // Closing the socket ends the remote command's stdin.
            Process::Russh(r) => {
                let _ = r.stream.shutdown(std::net::Shutdown::Both);
            }
        }
    }
}
