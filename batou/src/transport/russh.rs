//! SSH in-process with russh: the target as the user's ssh configuration
//! says ([`super::ssh_config`]: HostName, Port, User, IdentityFile,
//! UserKnownHostsFile, HostKeyAlias, StrictHostKeyChecking, ProxyJump),
//! key-file authentication, known_hosts
//! verification (a changed key is always refused). A remote command's
//! stdin/stdout are bridged to a local socket pair, so the rest of batou
//! talks to it like to the system `ssh` process.

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::{Arc, Mutex};

pub use super::ssh_config::{resolve, StrictHostKeys, Target};

/// The settings of a `ProxyJump` hop: `[user@]host[:port]`, with the rest
/// from the config file.
fn jump_target(spec: &str, config: Option<&Path>) -> Result<Target, String> {
    let (user, rest) = match spec.split_once('@') {
        Some((u, r)) => (Some(u.to_string()), r),
        None => (None, spec),
    };
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) if p.parse::<u16>().is_ok() => (h, p.parse::<u16>().ok()),
        _ => (rest, None),
    };
    let mut t = resolve(config, host)?;
    if let Some(u) = user {
        t.user = u;
    }
    if let Some(p) = port {
        t.port = p;
    }
    Ok(t)
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
    ended: Arc<Mutex<Option<SessionEnd>>>,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<Connected, String>> + Send>> {
    Box::pin(async move {
        let outcome = Arc::new(Mutex::new(None));
        let client = Client {
            target: target.clone(),
            accept_new,
            outcome: outcome.clone(),
            ended: ended.clone(),
        };
        // Keep-alives at the environment's timeout; the host counts as
        // gone after the agent's own silence limit (see
        // crate::agent::liveness).
        let config = Arc::new(russh::client::Config {
            inactivity_timeout: None,
            keepalive_interval: Some(std::time::Duration::from_secs(
                crate::agent::liveness::heartbeat(timeout),
            )),
            keepalive_max: (crate::agent::liveness::MISSES - 1) as usize,
            ..Default::default()
        });
        let limit = std::time::Duration::from_secs(timeout);
        let (session, jump) = match &target.proxy_jump {
            Some(spec) if depth < 4 => {
                let hop = jump_target(spec, target.config.as_deref())
                    .map_err(|e| format!("ProxyJump {spec}: {e}"))?;
                let jump = connect(hop, accept_new, timeout, depth + 1, ended)
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
    /// Why the session ended, once it did.
    ended: Arc<Mutex<Option<SessionEnd>>>,
}

/// How a remote command's session ended, as far as the client saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionEnd {
    /// The command exited with this status.
    Exited(u32),
    /// The command was killed by this signal (`KILL`, `ABRT`, ...).
    Signalled(String),
    /// The host stopped answering keep-alives.
    Silent,
    /// The host (its sshd) closed the connection, or it broke.
    Closed(String),
}

/// Records the first thing known about the end (an exit status beats the
/// connection closing after it).
fn record_end(ended: &Mutex<Option<SessionEnd>>, end: SessionEnd) {
    let mut e = ended.lock().unwrap_or_else(|e| e.into_inner());
    if e.is_none() {
        *e = Some(end);
    }
}

impl russh::client::Handler for Client {
    type Error = russh::Error;

    async fn disconnected(
        &mut self,
        reason: russh::client::DisconnectReason<Self::Error>,
    ) -> Result<(), Self::Error> {
        let end = match &reason {
            russh::client::DisconnectReason::Error(russh::Error::KeepaliveTimeout) => {
                SessionEnd::Silent
            }
            russh::client::DisconnectReason::Error(e) => SessionEnd::Closed(e.to_string()),
            russh::client::DisconnectReason::ReceivedDisconnect(_) => {
                SessionEnd::Closed("the host disconnected".into())
            }
        };
        record_end(&self.ended, end);
        match reason {
            russh::client::DisconnectReason::ReceivedDisconnect(_) => Ok(()),
            russh::client::DisconnectReason::Error(e) => Err(e),
        }
    }

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
            && (self.accept_new || self.target.strict != StrictHostKeys::Yes)
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

/// `KILL` for `russh::Sig::KILL`, the name as sent for custom signals.
fn signal_name_of(sig: &russh::Sig) -> String {
    match sig {
        russh::Sig::Custom(name) => name.clone(),
        other => format!("{other:?}"),
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
    /// How the session ended, once it did.
    pub ended: Arc<Mutex<Option<SessionEnd>>>,
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
    let ended = Arc::new(Mutex::new(None));
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<(), String>>();
    let (target, command, st, err_tail, end) = (
        target.clone(),
        command.to_string(),
        status.clone(),
        stderr.clone(),
        ended.clone(),
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
            let connected = match connect(target, accept_new, timeout, 0, end.clone()).await {
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
                            record_end(&end, SessionEnd::Exited(exit_status));
                        }
                        russh::ChannelMsg::ExitSignal { signal_name, .. } => {
                            record_end(&end, SessionEnd::Signalled(signal_name_of(&signal_name)));
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
            ended,
            _thread: thread,
        }),
        Ok(Err(e)) => Err(e),
        Err(_) => Err("the ssh connection ended unexpectedly".into()),
    }
}
