//! Reaching hosts: russh in-process by default ([`russh`], reading the
//! user's ssh_config through [`ssh_config`]), or the system OpenSSH client
//! (`ssh_client = openssh`, for what only it honours: ControlMaster, FIDO
//! keys, ...), and uploading this executable as the agent.

pub mod russh;
pub mod ssh;
pub mod ssh_config;

mod error;
pub use error::{ErrorKind, TransportError};
pub use ssh::{Ssh, SshClient};

use std::path::{Path, PathBuf};
use std::process::Command;

/// `vagrant up` in the project (connect_method `vagrant`).
pub fn vagrant_up(project_root: &Path) -> Result<(), String> {
    let out = Command::new("vagrant")
        .arg("up")
        .current_dir(project_root)
        .output()
        .map_err(|e| format!("cannot run vagrant: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "vagrant up failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// The ssh settings Vagrant reports for a machine (`vagrant ssh-config
/// NAME`), written to `work/.batou/vagrant_ssh_config_NAME` for `ssh -F`.
pub fn vagrant_ssh_config(project_root: &Path, machine: &str) -> Result<PathBuf, TransportError> {
    let err = |message: String| TransportError {
        kind: crate::transport::ErrorKind::Other,
        host: machine.to_string(),
        detail: message,
    };
    let out = Command::new("vagrant")
        .args(["ssh-config", machine])
        .current_dir(project_root)
        .output()
        .map_err(|e| err(format!("cannot run vagrant: {e}")))?;
    if !out.status.success() {
        return Err(err(format!(
            "vagrant ssh-config {machine} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let dir = project_root.join("work").join(".batou");
    std::fs::create_dir_all(&dir)
        .map_err(|e| err(format!("cannot create {}: {e}", dir.display())))?;
    let file = dir.join(format!("vagrant_ssh_config_{machine}"));
    crate::safe_fs::write_atomic(&file, &out.stdout, 0o600)
        .map_err(|e| err(format!("cannot write {}: {e}", file.display())))?;
    Ok(file)
}

/// `kitchen create NAME` (connect_method `kitchen`).
pub fn kitchen_create(project_root: &Path, machine: &str) -> Result<(), TransportError> {
    let out = Command::new("kitchen")
        .args(["create", machine])
        .current_dir(project_root)
        .output()
        .map_err(|e| TransportError {
            kind: crate::transport::ErrorKind::Other,
            host: machine.to_string(),
            detail: format!("cannot run kitchen: {e}"),
        })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(TransportError {
            kind: crate::transport::ErrorKind::Other,
            host: machine.to_string(),
            detail: format!(
                "kitchen create {machine} failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        })
    }
}

/// The ssh settings of a test-kitchen instance (from `kitchen diagnose`'s
/// `state_file`: hostname, port, username, ssh_key), written as an
/// ssh_config for `ssh -F`. Kitchen instances are throw-away machines whose
/// host keys change with every `create`, so their keys are not checked
/// (as in batou).
pub fn kitchen_ssh_config(project_root: &Path, machine: &str) -> Result<PathBuf, TransportError> {
    let err = |message: String| TransportError {
        kind: crate::transport::ErrorKind::Other,
        host: machine.to_string(),
        detail: message,
    };
    let out = Command::new("kitchen")
        .args(["diagnose", "--log-level=error", machine])
        .current_dir(project_root)
        .output()
        .map_err(|e| err(format!("cannot run kitchen: {e}")))?;
    if !out.status.success() {
        return Err(err(format!(
            "kitchen diagnose {machine} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let info: serde_yaml::Value = serde_yaml::from_slice(&out.stdout)
        .map_err(|e| err(format!("cannot read kitchen diagnose: {e}")))?;
    let state = info
        .get("instances")
        .and_then(|i| i.as_mapping())
        .and_then(|m| m.values().next())
        .and_then(|i| i.get("state_file"))
        .ok_or_else(|| err("kitchen diagnose has no instance state (was it created?)".into()))?;
    let field = |k: &str| -> Result<String, TransportError> {
        match state.get(k) {
            Some(serde_yaml::Value::String(s)) => Ok(s.clone()),
            Some(serde_yaml::Value::Number(n)) => Ok(n.to_string()),
            _ => Err(err(format!("kitchen diagnose: state_file has no {k}"))),
        }
    };
    let text = format!(
        "Host {machine}\n  HostName {}\n  Port {}\n  User {}\n  IdentityFile {}\n  IdentitiesOnly yes\n  \
         StrictHostKeyChecking no\n  UserKnownHostsFile /dev/null\n  LogLevel ERROR\n",
        field("hostname")?,
        field("port")?,
        field("username")?,
        field("ssh_key")?,
    );
    let dir = project_root.join("work").join(".batou");
    std::fs::create_dir_all(&dir)
        .map_err(|e| err(format!("cannot create {}: {e}", dir.display())))?;
    let file = dir.join(format!("kitchen_ssh_config_{machine}"));
    crate::safe_fs::write_atomic(&file, text.as_bytes(), 0o600)
        .map_err(|e| err(format!("cannot write {}: {e}", file.display())))?;
    Ok(file)
}
