//! One way of reaching hosts per `connect_method`, behind one trait (as
//! pyinfra's connectors or colmena's hosts): a local agent process, SSH
//! (russh or the system client), and SSH to machines that Vagrant or Test
//! Kitchen manage. The controller's connect step only asks for an agent.

use super::connect::start_with_retries;
use crate::agent::client::AgentConnection;
use crate::environment::{ConnectMethod, Environment, Host};
use crate::events::Progress;
use crate::transport::{Ssh, TransportError};
use std::path::{Path, PathBuf};

/// How hosts are reached.
pub trait Connector: Send + Sync {
    /// Once per deployment, before any host (e.g. `vagrant up`).
    fn prepare(&self) -> Result<(), String> {
        Ok(())
    }
    /// A running agent on the host; `upload` hears the bytes of an upload
    /// of the executable.
    fn open(&self, host: &Host, upload: Progress) -> Result<AgentConnection, TransportError>;
    /// Where the project lives on the host: `None` when the agent works in
    /// the controller's own project (nothing to lock or ship).
    fn target_directory(&self) -> Option<&str>;
}

/// The connector of the environment's `connect_method`.
pub fn for_environment(
    project_root: &Path,
    env: &Environment,
    accept_new_host_keys: bool,
) -> Box<dyn Connector> {
    let ssh = SshConnector {
        project_root: project_root.to_path_buf(),
        env: env.clone(),
        accept_new_host_keys,
    };
    match env.connect_method {
        ConnectMethod::Local => Box::new(Local {
            project_root: project_root.to_path_buf(),
            timeout: env.timeout,
        }),
        ConnectMethod::Ssh => Box::new(ssh),
        ConnectMethod::Vagrant => Box::new(Vagrant(ssh)),
        ConnectMethod::Kitchen => Box::new(Kitchen(ssh)),
    }
}

/// `connect_method = local`: this executable as a local agent process.
struct Local {
    project_root: PathBuf,
    /// The environment's timeout: the agent's heartbeat.
    timeout: u64,
}

impl Connector for Local {
    fn open(&self, host: &Host, _upload: Progress) -> Result<AgentConnection, TransportError> {
        AgentConnection::spawn_local(&host.name, &self.project_root, self.timeout)
    }
    fn target_directory(&self) -> Option<&str> {
        None
    }
}

/// `connect_method = ssh`: the executable uploads itself and runs as the
/// agent over SSH.
struct SshConnector {
    project_root: PathBuf,
    env: Environment,
    accept_new_host_keys: bool,
}

impl SshConnector {
    /// The SSH settings of a host; `client` and `config` as the method
    /// needs them.
    fn settings(&self, host: &Host) -> Ssh {
        let env = &self.env;
        let mut ssh = Ssh::new(&self.project_root, &env.name, host, env.timeout);
        ssh.client = env.ssh_client;
        ssh.service_user = host
            .service_user
            .clone()
            .or_else(|| env.service_user.clone());
        ssh.require_sudo = host.require_sudo;
        ssh.accept_new_host_keys = self.accept_new_host_keys;
        ssh
    }

    fn start(&self, ssh: &Ssh, upload: Progress) -> Result<AgentConnection, TransportError> {
        start_with_retries(ssh, &self.env.target_directory, upload)
    }

    /// Through the system client with an ssh_config a tool wrote for the
    /// host (Vagrant, Test Kitchen).
    fn start_with_config(
        &self,
        host: &Host,
        config: PathBuf,
        upload: Progress,
    ) -> Result<AgentConnection, TransportError> {
        let mut ssh = self.settings(host);
        ssh.client = crate::transport::SshClient::OpenSsh;
        ssh.config = Some(config);
        ssh.destination = host.name.clone();
        self.start(&ssh, upload)
    }
}

impl Connector for SshConnector {
    fn open(&self, host: &Host, upload: Progress) -> Result<AgentConnection, TransportError> {
        self.start(&self.settings(host), upload)
    }
    fn target_directory(&self) -> Option<&str> {
        Some(&self.env.target_directory)
    }
}

/// `connect_method = vagrant`: `vagrant up` once, then SSH with the
/// settings of `vagrant ssh-config NAME` (through the system client).
struct Vagrant(SshConnector);

impl Connector for Vagrant {
    fn prepare(&self) -> Result<(), String> {
        crate::transport::vagrant_up(&self.0.project_root)
    }
    fn open(&self, host: &Host, upload: Progress) -> Result<AgentConnection, TransportError> {
        let config = crate::transport::vagrant_ssh_config(&self.0.project_root, &host.name)?;
        self.0.start_with_config(host, config, upload)
    }
    fn target_directory(&self) -> Option<&str> {
        self.0.target_directory()
    }
}

/// `connect_method = kitchen`: `kitchen create NAME`, then SSH with the
/// state `kitchen diagnose` reports (through the system client).
struct Kitchen(SshConnector);

impl Connector for Kitchen {
    fn open(&self, host: &Host, upload: Progress) -> Result<AgentConnection, TransportError> {
        crate::transport::kitchen_create(&self.0.project_root, &host.name)?;
        let config = crate::transport::kitchen_ssh_config(&self.0.project_root, &host.name)?;
        self.0.start_with_config(host, config, upload)
    }
    fn target_directory(&self) -> Option<&str> {
        self.0.target_directory()
    }
}
