//! The system `ssh` client as transport.

use crate::shipping::sha256_hex;
use crate::transport::TransportError;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

pub use crate::settings::SshClient;

/// How to reach one host.
#[derive(Debug, Clone)]
pub struct Ssh {
    /// The client.
    pub client: SshClient,
    /// Host name as in the environment.
    pub host: String,
    /// Name given to ssh (the fqdn).
    pub destination: String,
    /// `-F` file: the project's `ssh_config_<env>` or `ssh_config`.
    pub config: Option<PathBuf>,
    /// Connect timeout in seconds.
    pub timeout: u64,
    /// Run everything as this user (through `sudo -n`) when the login user
    /// differs.
    pub service_user: Option<String>,
    /// `require_sudo`: `Some(true)` always through sudo, `Some(false)`
    /// never (the login user is taken as the service user), `None` sudo
    /// only when the login user differs.
    pub require_sudo: Option<bool>,
    /// Remember the keys of hosts not in known_hosts (the user asked for it
    /// with `--accept-new-host-keys`); changed keys are always refused.
    pub accept_new_host_keys: bool,
}

/// The running executable's bytes and sha256 (read once).
fn executable() -> Result<&'static (Vec<u8>, String), String> {
    static EXE: OnceLock<Result<(Vec<u8>, String), String>> = OnceLock::new();
    EXE.get_or_init(|| {
        let path = std::env::current_exe()
            .map_err(|e| format!("cannot find the running executable: {e}"))?;
        let bytes =
            std::fs::read(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let hash = sha256_hex(&bytes);
        Ok((bytes, hash))
    })
    .as_ref()
    .map_err(Clone::clone)
}

/// A path for the remote shell: `~/x` becomes `"$HOME"/'x'`, the rest is
/// single-quoted.
fn shell_path(path: &str) -> String {
    let quote = |s: &str| format!("'{}'", s.replace('\'', "'\\''"));
    match path.strip_prefix("~/") {
        Some(rest) => format!("\"$HOME\"/{}", quote(rest)),
        None if path == "~" => "\"$HOME\"".into(),
        None => quote(path),
    }
}

impl Ssh {
    /// The ssh settings for a host of an environment in a project.
    pub fn new(
        project_root: &Path,
        environment: &str,
        host: &crate::environment::Host,
        timeout: u64,
    ) -> Ssh {
        let specific = project_root.join(format!("ssh_config_{environment}"));
        let generic = project_root.join("ssh_config");
        let config = if specific.is_file() {
            Some(specific)
        } else if generic.is_file() {
            Some(generic)
        } else {
            None
        };
        Ssh {
            client: SshClient::OpenSsh,
            host: host.name.clone(),
            destination: host.fqdn.clone(),
            config,
            timeout: timeout.max(1),
            service_user: None,
            require_sudo: None,
            accept_new_host_keys: false,
        }
    }

    /// The remote command, run as the service user if there is one: as is
    /// when the login user is the service user, else through
    /// `sudo -n -H -u USER` (never prompting).
    pub(crate) fn as_service_user(&self, remote: &str) -> String {
        let Some(user) = &self.service_user else {
            return remote.to_string();
        };
        let quote = |s: &str| format!("'{}'", s.replace('\'', "'\\''"));
        let (u, c) = (quote(user), quote(remote));
        match self.require_sudo {
            Some(false) => remote.to_string(),
            Some(true) => format!("exec sudo -n -H -u {u} sh -c {c}"),
            None => format!(
                "if [ \"$(id -un)\" = {u} ]; then exec sh -c {c}; else exec sudo -n -H -u {u} sh -c {c}; fi"
            ),
        }
    }

    /// `ssh [options] destination remote-command`.
    pub fn command(&self, remote: &str) -> Command {
        let remote = self.as_service_user(remote);
        let mut c = Command::new("ssh");
        if let Some(cfg) = &self.config {
            c.arg("-F").arg(cfg);
        }
        if self.accept_new_host_keys {
            c.args(["-o", "StrictHostKeyChecking=accept-new"]);
        }
        // Keep-alives at the environment's timeout: the host counts as
        // gone after the agent's own silence limit (see
        // crate::agent::liveness).
        c.args(["-o", "BatchMode=yes", "-o"])
            .arg(format!("ConnectTimeout={}", self.timeout))
            .arg("-o")
            .arg(format!(
                "ServerAliveInterval={}",
                crate::agent::liveness::heartbeat(self.timeout)
            ))
            .arg("-o")
            .arg(format!(
                "ServerAliveCountMax={}",
                crate::agent::liveness::MISSES - 1
            ))
            .args(["-C", "-T"])
            .arg(&self.destination)
            .arg(&remote);
        c
    }

    fn error(&self, message: impl Into<String>) -> TransportError {
        TransportError {
            kind: crate::transport::ErrorKind::Other,
            host: self.host.clone(),
            detail: message.into(),
        }
    }

    /// Runs a short remote command; stdout on success, a clear error with
    /// ssh's own message otherwise.
    fn run(
        &self,
        remote: &str,
        input: Option<&[u8]>,
        progress: Option<crate::events::Progress>,
    ) -> Result<String, TransportError> {
        if self.client == SshClient::Russh {
            let tail = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
            let mut r = self.russh_exec(&self.as_service_user(remote), tail.clone())?;
            if let Some(data) = input {
                let _ = write_with_progress(&mut r.stream, data, progress);
            }
            let _ = r.stream.shutdown(std::net::Shutdown::Write);
            let mut out = String::new();
            let _ = std::io::Read::read_to_string(&mut r.stream, &mut out);
            let mut status = None;
            for _ in 0..500 {
                status = *r.status.lock().unwrap_or_else(|e| e.into_inner());
                if status.is_some() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            let stderr = tail.lock().unwrap_or_else(|e| e.into_inner()).join("\n");
            return match status {
                Some(0) => Ok(out),
                Some(code) => Err(self.explain(&format!("exit status: {code}"), &stderr)),
                None => Err(self.explain("no exit status", &stderr)),
            };
        }
        let mut cmd = self.command(remote);
        cmd.stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .map_err(|e| self.error(format!("cannot run ssh: {e}")))?;
        if let (Some(data), Some(mut stdin)) = (input, child.stdin.take()) {
            let _ = write_with_progress(&mut stdin, data, progress);
        }
        let out = child
            .wait_with_output()
            .map_err(|e| self.error(format!("ssh failed: {e}")))?;
        if out.status.success() {
            return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
        }
        Err(self.explain(
            &out.status.to_string(),
            &String::from_utf8_lossy(&out.stderr),
        ))
    }

    /// A clear error from a failed ssh invocation's exit status and stderr.
    pub fn explain(&self, status: &str, stderr: &str) -> TransportError {
        let mut why: Vec<&str> = stderr
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        use crate::transport::ErrorKind;
        if stderr.contains("REMOTE HOST IDENTIFICATION HAS CHANGED") {
            return self.error(format!(
                "the host key of {} has CHANGED; refusing to connect (check known_hosts: someone may be intercepting the connection, or the host was reinstalled)",
                self.destination
            )).with_kind(ErrorKind::HostKey);
        }
        if stderr.contains("Host key verification failed") {
            return self.error(format!(
                "the host key of {} is not known; refusing to connect (check its fingerprint and add it to known_hosts, or deploy once with --accept-new-host-keys)",
                self.destination
            )).with_kind(ErrorKind::HostKey);
        }
        if let Some(line) = stderr.lines().find(|l| l.contains(UNSAFE)) {
            let why = line.split_once(": ").map(|(_, w)| w).unwrap_or(line);
            return self.error(format!(
                "refusing to run the agent on {}: {why}; remove the target's .batou directory (or make it private to the login user) and deploy again",
                self.destination
            ));
        }
        if let (Some(user), true) = (&self.service_user, stderr.contains("sudo:")) {
            return self.error(format!(
                "cannot become the service user {user} on {} with `sudo -n` ({}); allow the login user passwordless sudo to {user}",
                self.destination,
                why.iter().find(|l| l.starts_with("sudo:")).copied().unwrap_or("sudo failed")
            ));
        }
        why.retain(|l| !l.starts_with("Warning: Permanently added"));
        let last = why.last().copied().unwrap_or("no message");
        self.error(format!(
            "ssh to {} failed ({status}): {last}",
            self.destination,
        ))
        .with_kind(network_kind(last))
    }

    /// Where this executable lives on the host:
    /// `<target>/.batou/bin/batou-<sha256 prefix>`, quoted for the shell.
    pub fn executable_path(&self, target_directory: &str) -> Result<String, TransportError> {
        let (_, hash) = executable().map_err(|e| self.error(e))?;
        Ok(shell_path(&format!(
            "{}/.batou/bin/batou-{}",
            target_directory.trim_end_matches('/'),
            &hash[..16]
        )))
    }

    /// The shell script that starts the agent if this version is there
    /// and safe to run, prints [`MISSING`] and `uname -sm` if it is not
    /// there (or not this version), and refuses (with [`UNSAFE`] on
    /// stderr) when `.batou`, `.batou/bin` or the executable belong to
    /// another user or are writable by group or others.
    fn agent_script(&self, target_directory: &str) -> Result<String, TransportError> {
        let (_, hash) = executable().map_err(|e| self.error(e))?;
        let path = self.executable_path(target_directory)?;
        let batou = shell_path(&format!(
            "{}/.batou",
            target_directory.trim_end_matches('/')
        ));
        Ok(format!(
            "p={path}; b={batou}; \
             if [ ! -e \"$p\" ]; then echo {MISSING}; uname -sm; exit 0; fi; \
             for x in \"$b\" \"$b/bin\" \"$p\"; do \
               if [ -L \"$x\" ] || [ ! -O \"$x\" ] || [ -n \"$(find \"$x\" -maxdepth 0 -perm /022)\" ]; then \
                 echo \"{UNSAFE}: $x is a link, belongs to another user or is writable by group or others\" >&2; exit 97; fi; \
             done; \
             if [ \"$(sha256sum \"$p\" | cut -d' ' -f1)\" != {hash} ]; then echo {MISSING}; uname -sm; exit 0; fi; \
             exec \"$p\" agent"
        ))
    }

    /// The remote command line that starts the agent (see
    /// [`Self::agent_script`]), run as the service user.
    pub fn agent_command_line(&self, target_directory: &str) -> Result<String, TransportError> {
        Ok(self.as_service_user(&self.agent_script(target_directory)?))
    }

    /// [`Self::agent_command_line`] as a system `ssh` command.
    pub fn agent_command(&self, target_directory: &str) -> Result<Command, TransportError> {
        Ok(self.command(&self.agent_script(target_directory)?))
    }

    /// Starts a remote command (already wrapped for the service user) over
    /// russh.
    pub fn russh_exec(
        &self,
        command: &str,
        stderr: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    ) -> Result<super::russh::Remote, TransportError> {
        let target = super::russh::resolve(self.config.as_deref(), &self.destination)
            .map_err(|e| self.error(e))?;
        super::russh::exec(
            &target,
            self.accept_new_host_keys,
            self.timeout,
            command,
            stderr,
        )
        .map_err(|e| match e.as_str() {
            "HOST KEY CHANGED" => self.explain("", "REMOTE HOST IDENTIFICATION HAS CHANGED"),
            "HOST KEY UNKNOWN" => self.explain("", "Host key verification failed"),
            _ => self.explain("connection failed", &e),
        })
    }

    /// Checks that the host (as `uname -sm` describes it) can run this
    /// executable.
    pub fn check_platform(&self, uname: &str) -> Result<(), TransportError> {
        let platform = uname.trim();
        let local = local_platform();
        if platform != local {
            return Err(self.error(format!(
                "the host runs {platform}, this executable is built for {local}: build a matching executor \
                 (e.g. `cargo build --release --target <triple>` for the host) and deploy with it"
            )));
        }
        Ok(())
    }

    /// Uploads this executable to [`Self::executable_path`], verified by
    /// its sha256 on the host before it is moved into place.
    pub fn upload(
        &self,
        target_directory: &str,
        progress: Option<crate::events::Progress>,
    ) -> Result<(), TransportError> {
        let (bytes, hash) = executable().map_err(|e| self.error(e))?;
        let path = self.executable_path(target_directory)?;
        let dir = shell_path(&format!(
            "{}/.batou/bin",
            target_directory.trim_end_matches('/')
        ));
        let batou = shell_path(&format!(
            "{}/.batou",
            target_directory.trim_end_matches('/')
        ));
        let target = shell_path(target_directory);
        // .batou and .batou/bin are private; only the current and the
        // previous executable are kept, and half-uploaded ones of upload
        // shells that no longer run (a dropped connection) are removed.
        let script = format!(
            "set -e; mkdir -p {target}; (umask 077; mkdir -p {dir}); \
             for x in {batou} {dir}; do \
               if [ -L \"$x\" ] || [ ! -O \"$x\" ]; then echo \"{UNSAFE}: $x is a link or belongs to another user\" >&2; exit 97; fi; \
               chmod 700 \"$x\"; done; \
             for s in {dir}/*.tmp.*; do [ -f \"$s\" ] || continue; kill -0 \"${{s##*.}}\" 2>/dev/null || rm -f \"$s\"; done; \
             t={path}.tmp.$$; (umask 077; cat > \"$t\"); \
             h=$(sha256sum \"$t\" | cut -d' ' -f1); \
             if [ \"$h\" != {hash} ]; then rm -f \"$t\"; echo \"upload corrupted: got $h\" >&2; exit 3; fi; \
             chmod 700 \"$t\"; mv -f \"$t\" {path}; \
             n=0; for f in $(ls -t {dir}); do case $f in batou-*) n=$((n+1)); if [ $n -gt 2 ]; then rm -f {dir}/\"$f\"; fi;; esac; done"
        );
        self.run(&script, Some(bytes), progress).map(|_| ())
    }
}

/// Writes `data` in pieces, reporting the bytes written.
fn write_with_progress(
    w: &mut impl Write,
    data: &[u8],
    progress: Option<crate::events::Progress>,
) -> std::io::Result<()> {
    let total = data.len() as u64;
    let mut done = 0u64;
    for piece in data.chunks(256 << 10) {
        w.write_all(piece)?;
        done += piece.len() as u64;
        if let Some(p) = progress {
            p(done, total);
        }
    }
    w.flush()
}

/// The kind of an ssh client's last error line.
fn network_kind(message: &str) -> crate::transport::ErrorKind {
    use crate::transport::ErrorKind;
    let has = |needles: &[&str]| needles.iter().any(|n| message.contains(n));
    if has(&["timed out", "Timeout"]) {
        ErrorKind::Timeout
    } else if has(&[
        "Connection refused",
        "Connection reset",
        "Connection closed",
        "No route to host",
        "Could not resolve hostname",
        "Name or service not known",
    ]) {
        ErrorKind::Refused
    } else if has(&[
        "Permission denied",
        "no authentication method",
        "authentication failed",
    ]) {
        ErrorKind::Auth
    } else {
        ErrorKind::Other
    }
}

/// What the agent command prints instead of starting when this version of
/// the executable is not on the host yet.
pub const MISSING: &str = "BATOU-AGENT-MISSING";

/// What the agent command prints on stderr when it refuses to start an
/// executable others could have replaced.
pub const UNSAFE: &str = "BATOU-AGENT-UNSAFE";

/// `Linux x86_64` as `uname -sm` prints it for this build.
fn local_platform() -> String {
    let os = match std::env::consts::OS {
        "linux" => "Linux",
        "macos" => "Darwin",
        "freebsd" => "FreeBSD",
        other => other,
    };
    let arch = match std::env::consts::ARCH {
        "aarch64" if os == "Darwin" => "arm64",
        other => other,
    };
    format!("{os} {arch}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn require_sudo_decides_how_the_service_user_is_reached() {
        let env = crate::environment::Environment::new("e", "e.cfg");
        let host = env.new_host("web");
        let mut ssh = Ssh::new(Path::new("/nonexistent"), "e", &host, 3);
        assert_eq!(ssh.as_service_user("run"), "run");
        ssh.service_user = Some("app".into());
        assert_eq!(
            ssh.as_service_user("run"),
            "if [ \"$(id -un)\" = 'app' ]; then exec sh -c 'run'; else exec sudo -n -H -u 'app' sh -c 'run'; fi"
        );
        ssh.require_sudo = Some(true);
        assert_eq!(
            ssh.as_service_user("run"),
            "exec sudo -n -H -u 'app' sh -c 'run'"
        );
        ssh.require_sudo = Some(false);
        assert_eq!(ssh.as_service_user("run"), "run");
    }

    #[test]
    fn shell_paths() {
        assert_eq!(shell_path("~/deployment/x"), "\"$HOME\"/'deployment/x'");
        assert_eq!(shell_path("/srv/it's"), "'/srv/it'\\''s'");
    }
}
