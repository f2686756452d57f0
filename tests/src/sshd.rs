//! Real `sshd` processes on loopback for the tests: one per simulated host,
//! each with its own host key and its own Unix user (so every host has its
//! own home), a client key and a known_hosts file made for the test, and
//! an `ssh_config` that points the host names at them.
//!
//! Needs root (to create users and run sshd), which CI has. Processes are
//! killed by PID when the lab is dropped.

use std::fs;
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// One simulated host.
pub struct SshHost {
    /// Host name used in environments.
    pub name: String,
    /// Its Unix user.
    pub user: String,
    /// The user's home.
    pub home: PathBuf,
    /// sshd's port on 127.0.0.1.
    pub port: u16,
    config: PathBuf,
    child: Option<Child>,
}

/// A set of sshd processes.
pub struct SshLab {
    _dir: tempfile::TempDir,
    dir: PathBuf,
    /// The client's private key.
    pub key: PathBuf,
    /// The client's known_hosts.
    pub known_hosts: PathBuf,
    /// The hosts.
    pub hosts: Vec<SshHost>,
}

fn run(cmd: &mut Command) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Makes sure a Unix user exists (with a home, not locked); returns its
/// home with earlier deployments removed.
pub fn ensure_user(user: &str) -> PathBuf {
    let exists = Command::new("id")
        .arg(user)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if !exists.is_ok_and(|s| s.success()) {
        run(Command::new("useradd")
            .args(["-m", "-s", "/bin/sh"])
            .arg(user));
    }
    // No password, but not locked either (sshd refuses locked accounts
    // even for key logins).
    run(Command::new("usermod").args(["-p", "*"]).arg(user));
    let home = PathBuf::from(format!("/home/{user}"));
    let _ = fs::remove_dir_all(home.join("deployment"));
    home
}

/// Lets `login` run anything as `target` through `sudo -n`.
pub fn allow_sudo(login: &str, target: &str) {
    fs::create_dir_all("/etc/sudoers.d").expect("/etc/sudoers.d");
    let file = PathBuf::from(format!("/etc/sudoers.d/batou-test-{login}"));
    fs::write(&file, format!("{login} ALL=({target}) NOPASSWD: ALL\n")).expect("sudoers entry");
    fs::set_permissions(&file, fs::Permissions::from_mode(0o440)).expect("sudoers mode");
}

impl SshLab {
    /// Starts one sshd per name (user `batou-<name>`, home emptied of
    /// earlier deployments).
    pub fn start(names: &[&str]) -> SshLab {
        // SAFETY: geteuid has no preconditions.
        assert_eq!(
            unsafe { libc::geteuid() },
            0,
            "the SSH tests need root to create users and run sshd (CI runs them as root)"
        );
        Self::start_as_root(names)
    }

    /// [`Self::start`] for tests: `None` (after saying so on stderr) when
    /// not run as root, so the test skips instead of failing.
    pub fn for_test(names: &[&str]) -> Option<SshLab> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!(
                "SKIPPED: this test needs root to create Unix users and run sshd (CI runs it as root)"
            );
            return None;
        }
        Some(Self::start_as_root(names))
    }

    fn start_as_root(names: &[&str]) -> SshLab {
        let tmp = tempfile::Builder::new()
            .prefix("batou-sshd-")
            .tempdir()
            .expect("temp dir");
        let dir = tmp.path().to_path_buf();
        fs::create_dir_all("/run/sshd").expect("privilege separation directory");
        let key = dir.join("client_key");
        run(Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", "batou-test", "-f"])
            .arg(&key));
        let client_pub = fs::read_to_string(key.with_extension("pub")).expect("client public key");
        let known_hosts = dir.join("known_hosts");
        let mut known = String::new();
        let mut hosts = Vec::new();
        for name in names {
            let user = format!("batou-{name}");
            let exists = Command::new("id")
                .arg(&user)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            if !exists.is_ok_and(|s| s.success()) {
                run(Command::new("useradd")
                    .args(["-m", "-s", "/bin/sh"])
                    .arg(&user));
            }
            // No password, but not locked either (sshd refuses locked
            // accounts even for key logins).
            run(Command::new("usermod").args(["-p", "*"]).arg(&user));
            let home = PathBuf::from(format!("/home/{user}"));
            // Target directories the tests deploy to, from earlier runs.
            for dir in ["deployment", "other", "pulled"] {
                let _ = fs::remove_dir_all(home.join(dir));
            }
            let ssh_dir = home.join(".ssh");
            fs::create_dir_all(&ssh_dir).expect("~/.ssh");
            fs::write(ssh_dir.join("authorized_keys"), &client_pub).expect("authorized_keys");
            run(Command::new("chown")
                .arg("-R")
                .arg(format!("{user}:"))
                .arg(&home));
            let host_key = dir.join(format!("host_{name}"));
            run(Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-f"])
                .arg(&host_key));
            let host_pub =
                fs::read_to_string(host_key.with_extension("pub")).expect("host public key");
            let mut parts = host_pub.split_whitespace();
            known.push_str(&format!(
                "{name} {} {}\n",
                parts.next().unwrap_or_default(),
                parts.next().unwrap_or_default()
            ));
            let port = free_port();
            let config = dir.join(format!("sshd_{name}.conf"));
            fs::write(
                &config,
                format!(
                    "Port {port}\nListenAddress 127.0.0.1\nHostKey {}\nPidFile {}\nStrictModes no\nUsePAM no\n\
                     PasswordAuthentication no\nKbdInteractiveAuthentication no\nPubkeyAuthentication yes\n\
                     AllowUsers {user}\nLogLevel ERROR\n",
                    host_key.display(),
                    dir.join(format!("sshd_{name}.pid")).display()
                ),
            )
            .expect("sshd config");
            let mut host = SshHost {
                name: name.to_string(),
                user,
                home,
                port,
                config,
                child: None,
            };
            host.start();
            hosts.push(host);
        }
        fs::write(&known_hosts, known).expect("known_hosts");
        fs::set_permissions(&key, fs::Permissions::from_mode(0o600)).expect("key mode");
        SshLab {
            _dir: tmp,
            dir,
            key,
            known_hosts,
            hosts,
        }
    }

    /// An ssh_config for the hosts (as a project's `ssh_config`).
    pub fn ssh_config(&self) -> String {
        let mut s = String::new();
        for h in &self.hosts {
            s.push_str(&format!(
                "Host {name} {name}.*\n  HostName 127.0.0.1\n  Port {port}\n  User {user}\n  IdentityFile {key}\n  \
                 IdentitiesOnly yes\n  UserKnownHostsFile {known}\n  GlobalKnownHostsFile /dev/null\n  \
                 StrictHostKeyChecking yes\n  HostKeyAlias {name}\n  LogLevel ERROR\n\n",
                name = h.name,
                port = h.port,
                user = h.user,
                key = self.key.display(),
                known = self.known_hosts.display(),
            ));
        }
        s
    }

    /// A host by name.
    pub fn host(&mut self, name: &str) -> &mut SshHost {
        self.hosts
            .iter_mut()
            .find(|h| h.name == name)
            .expect("known host")
    }

    /// Gives a host a new host key (as if it was reinstalled or is an
    /// impostor): known_hosts still has the old one.
    pub fn change_host_key(&mut self, name: &str) {
        let key = self.dir.join(format!("host_{name}"));
        let _ = fs::remove_file(&key);
        let _ = fs::remove_file(key.with_extension("pub"));
        run(Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(&key));
        let h = self.host(name);
        h.stop();
        h.start();
    }
}

impl SshHost {
    /// Starts (or restarts) this host's sshd and waits until it listens.
    pub fn start(&mut self) {
        let child = Command::new("/usr/sbin/sshd")
            .arg("-D")
            .arg("-e")
            .arg("-f")
            .arg(&self.config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start sshd");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "sshd for {} did not start",
                self.name
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills this host's sshd (and with it the sessions it serves).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        // Sessions are children of the listener's process group members;
        // kill what still runs for this host's user.
        let _ = Command::new("pkill")
            .arg("-KILL")
            .arg("-u")
            .arg(&self.user)
            .status();
    }

    /// A path in the host user's home.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.home.join(rel)
    }

    /// Makes the host's user own `path` and everything below it (files
    /// the test put into the user's home).
    pub fn give(&self, path: &std::path::Path) {
        let ok = Command::new("chown")
            .arg("-R")
            .arg(format!("{0}:{0}", self.user))
            .arg(path)
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "chown -R {} {}", self.user, path.display());
    }
}

impl Drop for SshLab {
    fn drop(&mut self) {
        for h in &mut self.hosts {
            h.stop();
        }
    }
}

/// Whether `path` exists (for readability in tests).
pub fn exists(path: &Path) -> bool {
    path.exists()
}
