//! Reaching hosts: the system OpenSSH client as transport (it honours the
//! user's full OpenSSH configuration: Include, Match, ProxyJump,
//! ControlMaster, agents, FIDO keys), and uploading this executable as the
//! agent.

pub mod ssh;

pub use ssh::Ssh;

use crate::agent::client::ConnectionError;
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
pub fn vagrant_ssh_config(project_root: &Path, machine: &str) -> Result<PathBuf, ConnectionError> {
    let err = |message: String| ConnectionError {
        host: machine.to_string(),
        message,
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
    std::fs::write(&file, &out.stdout)
        .map_err(|e| err(format!("cannot write {}: {e}", file.display())))?;
    Ok(file)
}
