//! SSH in-process with russh: `ssh_config` (Host patterns, HostName,
//! Port, User, IdentityFile, UserKnownHostsFile, HostKeyAlias,
//! StrictHostKeyChecking), key-file authentication, known_hosts
//! verification (a changed key is always refused). A remote command's
//! stdin/stdout are bridged to a local socket pair, so the rest of batou
//! talks to it like to the system `ssh` process.

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Where and how to connect, as `ssh_config` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Host name or address to connect to.
    pub hostname: String,
    /// Port.
    pub port: u16,
    /// Login user.
    pub user: String,
    /// Private keys to try.
    pub identity_files: Vec<PathBuf>,
    /// known_hosts files.
    pub known_hosts: Vec<PathBuf>,
    /// Name looked up in known_hosts instead of `hostname:port`.
    pub host_key_alias: Option<String>,
    /// `yes`, `accept-new`, `no`.
    pub strict: String,
    /// `ProxyJump` (first hop; `none` or unset: direct).
    pub proxy_jump: Option<String>,
    /// The config file the settings came from (for the jump host's).
    pub config: Option<PathBuf>,
}

fn home() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/"))
}

fn expand(path: &str) -> PathBuf {
    match path.strip_prefix("~/") {
        Some(rest) => home().join(rest),
        None => PathBuf::from(path),
    }
}

/// `*` and `?` glob match, without backtracking blow-up: on a mismatch
/// only the most recent `*` takes one more character (O(pattern × text)).
fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, ti));
                pi += 1;
            }
            Some(&c) if c == '?' || c == t[ti] => {
                pi += 1;
                ti += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    pi = sp + 1;
                    ti = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

fn host_matches(patterns: &[String], host: &str) -> bool {
    let mut matched = false;
    for pat in patterns {
        if let Some(neg) = pat.strip_prefix('!') {
            if glob(neg, host) {
                return false;
            }
        } else if glob(pat, host) {
            matched = true;
        }
    }
    matched
}

/// Reads `config` (or `~/.ssh/config`) for `destination`; the first value
/// of each key wins, as in OpenSSH.
pub fn resolve(config: Option<&Path>, destination: &str) -> Target {
    let path = config
        .map(Path::to_path_buf)
        .unwrap_or_else(|| home().join(".ssh/config"));
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut active = true;
    let mut values: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, value) = match line.split_once(|c: char| c.is_whitespace() || c == '=') {
            Some((k, v)) => (
                k.to_ascii_lowercase(),
                v.trim_start_matches([' ', '\t', '=']).trim().to_string(),
            ),
            None => continue,
        };
        if key == "host" {
            let patterns: Vec<String> = value.split_whitespace().map(str::to_string).collect();
            active = host_matches(&patterns, destination);
            continue;
        }
        if key == "match" {
            active = false;
            continue;
        }
        if active {
            values.push((key, value));
        }
    }
    let first = |k: &str| {
        values
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
    };
    let mut identity_files: Vec<PathBuf> = values
        .iter()
        .filter(|(k, _)| k == "identityfile")
        .map(|(_, v)| expand(v))
        .collect();
    if identity_files.is_empty() {
        identity_files = ["id_ed25519", "id_ecdsa", "id_rsa"]
            .iter()
            .map(|n| home().join(".ssh").join(n))
            .collect();
    }
    let known_hosts = match first("userknownhostsfile") {
        Some(v) => v.split_whitespace().map(expand).collect(),
        None => vec![home().join(".ssh/known_hosts")],
    };
    Target {
        hostname: first("hostname").unwrap_or_else(|| destination.to_string()),
        port: first("port").and_then(|p| p.parse().ok()).unwrap_or(22),
        user: first("user")
            .or_else(|| std::env::var("USER").ok())
            .unwrap_or_else(|| "root".into()),
        identity_files,
        known_hosts,
        host_key_alias: first("hostkeyalias"),
        strict: first("stricthostkeychecking")
            .unwrap_or_else(|| "yes".into())
            .to_ascii_lowercase(),
        proxy_jump: first("proxyjump")
            .and_then(|j| j.split(',').next().map(str::to_string))
            .filter(|j| j != "none"),
        config: config.map(Path::to_path_buf),
    }
}

/// The settings of a `ProxyJump` hop: `[user@]host[:port]`, with the rest
/// from the config file.
fn jump_target(spec: &str, config: Option<&Path>) -> Target {
    let (user, rest) = match spec.split_once('@') {
        Some((u, r)) => (Some(u.to_string()), r),
        None => (None, spec),
    };
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) if p.parse::<u16>().is_ok() => (h, p.parse::<u16>().ok()),
        _ => (rest, None),
    };
    let mut t = resolve(config, host);
    if let Some(u) = user {
        t.user = u;
    }
    if let Some(p) = port {
        t.port = p;
    }
    t
}

/// An authenticated session (and the jump session it runs through).
struct Connected {
    session: russh::client::Handle<Client>,
    _jump: Option<Box<Connected>>,
}

/// Connects (through the ProxyJump hop, if any), checks the host key and
/// authenticates with the key files, then the ssh-agent.
fn connect(
    target: Target,
    accept_new: bool,
    timeout: u64,
    depth: u8,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<Connected, String>> + Send>> {
    Box::pin(async move {
        let outcome = Arc::new(Mutex::new(None));
        let client = Client {
            target: target.clone(),
            accept_new,
            outcome: outcome.clone(),
        };
        let config = Arc::new(russh::client::Config {
            inactivity_timeout: None,
            keepalive_interval: Some(std::time::Duration::from_secs(15)),
            ..Default::default()
        });
        let limit = std::time::Duration::from_secs(timeout);
        let (session, jump) = match &target.proxy_jump {
            Some(spec) if depth < 4 => {
                let hop = jump_target(spec, target.config.as_deref());
                let jump = connect(hop, accept_new, timeout, depth + 1)
                    .await
                    .map_err(|e| format!("ProxyJump {spec}: {e}"))?;
                let channel = jump
                    .session
                    .channel_open_direct_tcpip(
                        target.hostname.clone(),
                        u32::from(target.port),
                        "127.0.0.1",
                        0,
                    )
                    .await
                    .map_err(|e| {
                        format!(
                            "ProxyJump {spec} cannot reach {}:{}: {e}",
                            target.hostname, target.port
                        )
                    })?;
                let s = tokio::time::timeout(
                    limit,
                    russh::client::connect_stream(config, channel.into_stream(), client),
                )
                .await;
                (s, Some(Box::new(jump)))
            }
            _ => {
                let addr = (target.hostname.clone(), target.port);
                (
                    tokio::time::timeout(limit, russh::client::connect(config, addr, client)).await,
                    None,
                )
            }
        };
        let mut session = match session {
            Err(_) => return Err(format!("connection timed out after {timeout}s")),
            Ok(Err(e)) => {
                return Err(
                    match outcome.lock().unwrap_or_else(|e| e.into_inner()).clone() {
                        Some(KeyCheck::Changed) => "HOST KEY CHANGED".to_string(),
                        Some(KeyCheck::Unknown) => "HOST KEY UNKNOWN".to_string(),
                        _ => e.to_string(),
                    },
                )
            }
            Ok(Ok(s)) => s,
        };
        let hash = session
            .best_supported_rsa_hash()
            .await
            .ok()
            .flatten()
            .flatten();
        for file in &target.identity_files {
            let Ok(key) = russh::keys::load_secret_key(file, None) else {
                continue;
            };
            let key = russh::keys::PrivateKeyWithHashAlg::new(Arc::new(key), hash);
            if let Ok(russh::client::AuthResult::Success) =
                session.authenticate_publickey(&target.user, key).await
            {
                return Ok(Connected {
                    session,
                    _jump: jump,
                });
            }
        }
        if let Ok(mut agent) = russh::keys::agent::client::AgentClient::connect_env().await {
            for id in agent.request_identities().await.unwrap_or_default() {
                if let russh::keys::agent::AgentIdentity::PublicKey { key, .. } = id {
                    if let Ok(russh::client::AuthResult::Success) = session
                        .authenticate_publickey_with(&target.user, key, hash, &mut agent)
                        .await
                    {
                        return Ok(Connected {
                            session,
                            _jump: jump,
                        });
                    }
                }
            }
        }
        Err(format!(
            "{}@{}: Permission denied (publickey).",
            target.user, target.hostname
        ))
    })
}

/// How the host key check went.
#[derive(Debug, Clone, PartialEq, Eq)]
enum KeyCheck {
    Known,
    Changed,
    Unknown,
    Learned,
}

struct Client {
    target: Target,
    accept_new: bool,
    outcome: Arc<Mutex<Option<KeyCheck>>>,
}

impl russh::client::Handler for Client {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        key: &russh::keys::PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let russh::keys::PublicKeyOrCertificate::PublicKey { key, .. } = key else {
            *self.outcome.lock().unwrap_or_else(|e| e.into_inner()) = Some(KeyCheck::Unknown);
            return Ok(false);
        };
        let (name, port) = match &self.target.host_key_alias {
            Some(alias) => (alias.as_str(), 22),
            None => (self.target.hostname.as_str(), self.target.port),
        };
        let mut result = KeyCheck::Unknown;
        for file in &self.target.known_hosts {
            match russh::keys::check_known_hosts_path(name, port, key, file) {
                Ok(true) => {
                    result = KeyCheck::Known;
                    break;
                }
                Ok(false) => {}
                Err(russh::keys::Error::KeyChanged { .. }) => {
                    result = KeyCheck::Changed;
                    break;
                }
                Err(_) => {}
            }
        }
        if result == KeyCheck::Unknown
            && (self.accept_new || self.target.strict == "accept-new" || self.target.strict == "no")
        {
            if let Some(file) = self.target.known_hosts.first() {
                if russh::keys::known_hosts::learn_known_hosts_path(name, port, key, file).is_ok() {
                    result = KeyCheck::Learned;
                }
            }
        }
        let ok = matches!(result, KeyCheck::Known | KeyCheck::Learned);
        *self.outcome.lock().unwrap_or_else(|e| e.into_inner()) = Some(result);
        Ok(ok)
    }
}

/// Prints a stderr line of the remote command and keeps the last 50.
fn push_stderr(tail: &Mutex<Vec<String>>, line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
    let mut tail = tail.lock().unwrap_or_else(|e| e.into_inner());
    tail.push(line.to_string());
    let excess = tail.len().saturating_sub(50);
    tail.drain(..excess);
}

/// A remote command over russh: its stdin/stdout as a local socket, its
/// stderr lines and exit status as they arrive.
pub struct Remote {
    /// stdin (write) and stdout (read) of the command.
    pub stream: UnixStream,
    /// Exit status, once known.
    pub status: Arc<Mutex<Option<u32>>>,
    /// The last stderr lines (also printed to our stderr).
    pub stderr: Arc<Mutex<Vec<String>>>,
    _thread: std::thread::JoinHandle<()>,
}

/// Connects, authenticates and starts `command`.
pub fn exec(
    target: &Target,
    accept_new: bool,
    timeout: u64,
    command: &str,
    stderr: Arc<Mutex<Vec<String>>>,
) -> Result<Remote, String> {
    let (ours, theirs) =
        UnixStream::pair().map_err(|e| format!("cannot make a socket pair: {e}"))?;
    let status = Arc::new(Mutex::new(None));
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<(), String>>();
    let (target, command, st, err_tail) = (
        target.clone(),
        command.to_string(),
        status.clone(),
        stderr.clone(),
    );
    let thread = std::thread::spawn(move || {
        let rt = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(rt) => rt,
            Err(e) => {
                let _ = ready_tx.send(Err(format!("cannot start the ssh runtime: {e}")));
                return;
            }
        };
        rt.block_on(async move {
            let connected = match connect(target, accept_new, timeout, 0).await {
                Ok(c) => c,
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                    return;
                }
            };
            let session = &connected.session;
            let channel = match session.channel_open_session().await {
                Ok(c) => c,
                Err(e) => {
                    let _ = ready_tx.send(Err(format!("cannot open a session: {e}")));
                    return;
                }
            };
            if let Err(e) = channel.exec(true, command.as_bytes()).await {
                let _ = ready_tx.send(Err(format!("cannot run the command: {e}")));
                return;
            }
            let _ = ready_tx.send(Ok(()));
            let _ = theirs.set_nonblocking(true);
            let Ok(sock) = tokio::net::UnixStream::from_std(theirs) else {
                return;
            };
            let (mut sock_r, mut sock_w) = sock.into_split();
            let (mut read_half, write_half) = channel.split();
            let to_remote = async move {
                let mut w = write_half.make_writer();
                let _ = tokio::io::copy(&mut sock_r, &mut w).await;
                let _ = write_half.eof().await;
            };
            let from_remote = async move {
                use tokio::io::AsyncWriteExt;
                let mut partial = String::new();
                while let Some(msg) = read_half.wait().await {
                    match msg {
                        russh::ChannelMsg::Data { data } => {
                            let written = sock_w.write_all(&data).await;
                            if written.is_err() {
                                break;
                            }
                        }
                        russh::ChannelMsg::ExtendedData { data, .. } => {
                            // stderr arrives in arbitrary pieces: pass on
                            // whole lines only.
                            partial.push_str(&String::from_utf8_lossy(&data));
                            while let Some(at) = partial.find('\n') {
                                let line: String = partial.drain(..=at).collect();
                                push_stderr(&err_tail, line.trim_end_matches('\n'));
                            }
                        }
                        russh::ChannelMsg::ExitStatus { exit_status } => {
                            *st.lock().unwrap_or_else(|e| e.into_inner()) = Some(exit_status);
                        }
                        russh::ChannelMsg::Close => break,
                        _ => {}
                    }
                }
                if !partial.is_empty() {
                    push_stderr(&err_tail, &partial);
                }
                let _ = sock_w.shutdown().await;
            };
            tokio::select! {
                _ = from_remote => {}
                _ = async { to_remote.await; std::future::pending::<()>().await } => {}
            }
            let _ = session
                .disconnect(russh::Disconnect::ByApplication, "", "")
                .await;
        });
    });
    match ready_rx.recv() {
        Ok(Ok(())) => Ok(Remote {
            stream: ours,
            status,
            stderr,
            _thread: thread,
        }),
        Ok(Err(e)) => Err(e),
        Err(_) => Err("the ssh connection ended unexpectedly".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_without_blowing_up() {
        assert!(glob("*", ""));
        assert!(glob("web?.example.*", "web1.example.com"));
        assert!(!glob("web?.example.*", "web10.example.com"));
        assert!(glob("*.*.com", "a.b.com"));
        assert!(!glob("a*b", "acbd"));
        assert!(glob("a*b*", "acbd"));
        // Exponential for a naive matcher: 40 stars against 200 characters.
        let pattern = format!("{}b", "a*".repeat(40));
        let text = "a".repeat(200);
        assert!(!glob(&pattern, &text));
        assert!(glob(&pattern, &format!("{text}b")));
    }

    #[test]
    fn ssh_config_first_value_wins_and_patterns_match() {
        let d = std::env::temp_dir().join(format!("batou-sshcfg-{}", std::process::id()));
        std::fs::write(
            &d,
            "Host web? !web9\n  HostName 10.0.0.1\n  Port 2222\n  IdentityFile ~/.ssh/web\nHost *\n  User deploy\n  Port 22\n",
        )
        .unwrap();
        let t = resolve(Some(&d), "web1");
        assert_eq!(
            (t.hostname.as_str(), t.port, t.user.as_str()),
            ("10.0.0.1", 2222, "deploy")
        );
        assert!(t.identity_files[0].ends_with(".ssh/web"));
        let other = resolve(Some(&d), "web9");
        assert_eq!((other.hostname.as_str(), other.port), ("web9", 22));
        std::fs::remove_file(d).unwrap();
    }
}
