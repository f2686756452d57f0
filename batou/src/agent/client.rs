//! The controller side: start an agent and talk to it.

use super::protocol::{read_frame, write_frame, Request, Response, PROTOCOL_VERSION};
use crate::environment::Environment;
use crate::output::Line;
use crate::report::Report;
use std::io::{BufReader, BufWriter};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

/// A running agent.
pub struct AgentConnection {
    host: String,
    child: Child,
    writer: BufWriter<ChildStdin>,
    reader: BufReader<ChildStdout>,
}

/// A failure to talk to an agent.
#[derive(Debug, thiserror::Error)]
#[error("{host}: {message}")]
pub struct ConnectionError {
    /// The host.
    pub host: String,
    /// What went wrong.
    pub message: String,
}

impl AgentConnection {
    /// Starts this executable as an agent in `project_root` (connect_method
    /// `local`) and exchanges `Hello`.
    pub fn spawn_local(
        host: &str,
        project_root: &Path,
    ) -> Result<AgentConnection, ConnectionError> {
        let err = |message: String| ConnectionError {
            host: host.to_string(),
            message,
        };
        let exe = std::env::current_exe()
            .map_err(|e| err(format!("cannot find the running executable: {e}")))?;
        let mut child = Command::new(&exe)
            .arg("agent")
            .current_dir(project_root)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| err(format!("cannot start the agent {}: {e}", exe.display())))?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(err("the agent has no stdin/stdout".into()));
        };
        let mut conn = AgentConnection {
            host: host.to_string(),
            child,
            writer: BufWriter::new(stdin),
            reader: BufReader::new(stdout),
        };
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

    fn error(&self, message: String) -> ConnectionError {
        ConnectionError {
            host: self.host.clone(),
            message,
        }
    }

    fn send(&mut self, req: &Request) -> Result<(), ConnectionError> {
        write_frame(&mut self.writer, req)
            .map_err(|e| self.error(format!("lost connection to the agent: {e}")))
    }

    fn receive(&mut self) -> Result<Response, ConnectionError> {
        match read_frame(&mut self.reader) {
            Ok(Some(r)) => Ok(r),
            Ok(None) => {
                let status = self.child.wait().map(|s| s.to_string()).unwrap_or_default();
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
    ) -> Result<Vec<Report>, ConnectionError> {
        self.start_configure(project_root, environment)?;
        self.finish_configure()
    }

    /// Asks the agent to configure without waiting for the answer, so the
    /// controller can work meanwhile.
    pub fn start_configure(
        &mut self,
        project_root: &str,
        environment: &Environment,
    ) -> Result<(), ConnectionError> {
        self.send(&Request::Configure {
            project_root: project_root.to_string(),
            environment: Box::new(environment.clone()),
            host: self.host.clone(),
        })
    }

    /// Waits for the answer to [`Self::start_configure`].
    pub fn finish_configure(&mut self) -> Result<Vec<Report>, ConnectionError> {
        match self.receive()? {
            Response::Configured { errors } => Ok(errors),
            Response::Failed { message } => Err(self.error(message)),
            other => Err(self.error(format!("unexpected answer to configure: {other:?}"))),
        }
    }

    /// Deploys a root, passing every output line to `on_line`. `Ok(None)`:
    /// success; `Ok(Some(lines))`: the root failed with this report.
    pub fn deploy(
        &mut self,
        root: &str,
        predict: bool,
        mut on_line: impl FnMut(Line),
    ) -> Result<Option<Vec<Line>>, ConnectionError> {
        self.send(&Request::Deploy {
            root: root.to_string(),
            predict,
        })?;
        loop {
            match self.receive()? {
                Response::Output(line) => on_line(line),
                Response::Deployed { error } => return Ok(error),
                Response::Failed { message } => return Err(self.error(message)),
                other => return Err(self.error(format!("unexpected answer to deploy: {other:?}"))),
            }
        }
    }

    /// Says goodbye and waits for the agent to exit.
    pub fn close(mut self) {
        let _ = self.send(&Request::Bye);
        let _ = self.child.wait();
    }
}

impl Drop for AgentConnection {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
