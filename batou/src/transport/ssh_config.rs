//! Where and how to reach a host, as the user's OpenSSH configuration
//! says, for the in-process (russh) transport.
//!
//! When OpenSSH's `ssh` is installed, its own `ssh -G` evaluates the
//! configuration (every keyword, `Include`, `Match` of any kind,
//! quoting), so the russh transport connects exactly where `ssh` would;
//! only the `%` tokens and `${VAR}`s that `-G` leaves in `IdentityFile`
//! and `UserKnownHostsFile` are expanded here. Without `ssh`, a reader of
//! our own follows OpenSSH's rules for what batou needs: `Host`,
//! `Match host|originalhost|user|localuser|tagged|all|final|exec`,
//! `Include` (globs, `~`, relative to `~/.ssh`), quoted values, first
//! value wins, every `IdentityFile` kept. What it cannot evaluate
//! (`Match localnetwork`, `Match canonical` with `CanonicalizeHostname`)
//! is an error naming the line and the `ssh_client = openssh` setting.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub use crate::settings::StrictHostKeys;

/// Where and how to connect, as `ssh_config` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Host name or address to connect to.
    pub hostname: String,
    /// Port.
    pub port: u16,
    /// Login user.
    pub user: String,
    /// Private keys to try, in order.
    pub identity_files: Vec<PathBuf>,
    /// known_hosts files.
    pub known_hosts: Vec<PathBuf>,
    /// Name looked up in known_hosts instead of `hostname:port`.
    pub host_key_alias: Option<String>,
    /// What to do with an unknown host key.
    pub strict: StrictHostKeys,
    /// `ProxyJump` (first hop; `none` or unset: direct).
    pub proxy_jump: Option<String>,
    /// The config file the settings came from (for the jump host's).
    pub config: Option<PathBuf>,
}

/// Settings as written (tokens not yet expanded); the first value wins.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Settings {
    hostname: Option<String>,
    port: Option<String>,
    user: Option<String>,
    identity_files: Vec<String>,
    known_hosts: Option<Vec<String>>,
    host_key_alias: Option<String>,
    strict: Option<String>,
    proxy_jump: Option<String>,
    tag: Option<String>,
    canonicalize: Option<String>,
}

impl Settings {
    /// Records one keyword's arguments (keyword lower-case); keywords
    /// batou does not use are ignored.
    fn set(&mut self, keyword: &str, args: &[String]) {
        let first = || args.first().cloned();
        let slot = match keyword {
            "hostname" => &mut self.hostname,
            "port" => &mut self.port,
            "user" => &mut self.user,
            "hostkeyalias" => &mut self.host_key_alias,
            "stricthostkeychecking" => &mut self.strict,
            "proxyjump" => &mut self.proxy_jump,
            "tag" => &mut self.tag,
            "canonicalizehostname" => &mut self.canonicalize,
            "identityfile" => {
                for a in args {
                    if !self.identity_files.contains(a) {
                        self.identity_files.push(a.clone());
                    }
                }
                return;
            }
            "userknownhostsfile" => {
                if self.known_hosts.is_none() && !args.is_empty() {
                    self.known_hosts = Some(args.to_vec());
                }
                return;
            }
            _ => return,
        };
        if slot.is_none() {
            *slot = first();
        }
    }
}

/// Reads the configuration (`config`, or the user's and the system's) for
/// `destination`: through `ssh -G` when OpenSSH's client is installed,
/// otherwise with batou's own reader.
pub fn resolve(config: Option<&Path>, destination: &str) -> Result<Target, String> {
    let settings = match find_ssh() {
        Some(ssh) => ask_openssh(&ssh, config, destination)?,
        None => read_builtin(config, destination)?,
    };
    finish(settings, config, destination)
}

/// `ssh` on `PATH`, if any.
fn find_ssh() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("ssh"))
        .find(|candidate| candidate.is_file())
}

/// The settings `ssh -G` prints for the destination.
fn ask_openssh(ssh: &Path, config: Option<&Path>, destination: &str) -> Result<Settings, String> {
    if destination.starts_with('-') {
        return Err(format!("`{destination}` is not a host name"));
    }
    let mut cmd = Command::new(ssh);
    cmd.arg("-G");
    if let Some(cfg) = config {
        cmd.arg("-F").arg(cfg);
    }
    let out = cmd
        .arg(destination)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {} -G: {e}", ssh.display()))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let reason: Vec<&str> = stderr
            .lines()
            .filter(|l| !l.starts_with("Pseudo-terminal will not be allocated"))
            .collect();
        return Err(format!(
            "the ssh configuration cannot be read (ssh -G {destination}): {}",
            reason.join("; ")
        ));
    }
    Ok(parse_openssh_output(&String::from_utf8_lossy(&out.stdout)))
}

/// `ssh -G` prints one `keyword value` per line (keywords lower-case,
/// one line per IdentityFile).
fn parse_openssh_output(text: &str) -> Settings {
    let mut settings = Settings::default();
    for line in text.lines() {
        let Some((keyword, value)) = line.split_once(' ') else {
            continue;
        };
        let args: Vec<String> = if keyword == "userknownhostsfile" {
            value.split_whitespace().map(str::to_string).collect()
        } else {
            vec![value.to_string()]
        };
        settings.set(keyword, &args);
    }
    settings
}

/// The target from the settings: defaults, then tokens, `${VAR}` and `~`
/// expanded where OpenSSH expands them.
fn finish(settings: Settings, config: Option<&Path>, destination: &str) -> Result<Target, String> {
    let local_user = local_user();
    let original = destination.to_string();
    let mut tokens = Tokens {
        home: home(),
        hostname: destination.to_ascii_lowercase(),
        original: original.clone(),
        port: 22,
        remote_user: settings.user.clone().unwrap_or_else(|| local_user.clone()),
        local_user,
        host_key_alias: settings.host_key_alias.clone(),
        proxy_jump: settings.proxy_jump.clone().unwrap_or_default(),
    };
    if let Some(h) = &settings.hostname {
        tokens.hostname = expand_tokens(h, &tokens, "HostName", HOSTNAME_TOKENS)?;
    }
    if let Some(p) = &settings.port {
        tokens.port = p
            .parse()
            .map_err(|_| format!("ssh configuration: bad port `{p}` for {destination}"))?;
    }
    let identity_files = if settings.identity_files.is_empty() {
        ["id_rsa", "id_ecdsa", "id_ed25519"]
            .iter()
            .map(|n| tokens.home.join(".ssh").join(n))
            .collect()
    } else {
        settings
            .identity_files
            .iter()
            .map(|f| expand_path(f, &tokens, "IdentityFile"))
            .collect::<Result<_, _>>()?
    };
    let known_hosts = match &settings.known_hosts {
        Some(files) => files
            .iter()
            .map(|f| expand_path(f, &tokens, "UserKnownHostsFile"))
            .collect::<Result<_, _>>()?,
        None => vec![tokens.home.join(".ssh/known_hosts")],
    };
    let strict = match &settings.strict {
        Some(s) => s.to_ascii_lowercase().parse().map_err(|e| {
            format!("ssh configuration: StrictHostKeyChecking `{s}` for {destination}: {e}")
        })?,
        None => StrictHostKeys::Yes,
    };
    Ok(Target {
        hostname: tokens.hostname.clone(),
        port: tokens.port,
        user: tokens.remote_user.clone(),
        identity_files,
        known_hosts,
        host_key_alias: settings.host_key_alias,
        strict,
        proxy_jump: settings
            .proxy_jump
            .and_then(|j| j.split(',').next().map(str::to_string))
            .filter(|j| j != "none"),
        config: config.map(Path::to_path_buf),
    })
}

/// What OpenSSH's `%` tokens stand for.
#[derive(Debug, Clone)]
struct Tokens {
    home: PathBuf,
    hostname: String,
    original: String,
    port: u16,
    remote_user: String,
    local_user: String,
    host_key_alias: Option<String>,
    proxy_jump: String,
}

/// The tokens of file names and `Match exec`.
const FILE_TOKENS: &str = "%dhprunlLikjC";
/// `HostName` takes only these.
const HOSTNAME_TOKENS: &str = "%h";

/// Expands the `allowed` ones of `%d %h %p %r %u %n %l %L %i %k %j %C %%`
/// as OpenSSH does; another token is an error naming the keyword.
fn expand_tokens(text: &str, t: &Tokens, keyword: &str, allowed: &str) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let unknown = |token: char| {
            format!("ssh configuration: unknown token %{token} in {keyword} `{text}`")
        };
        let token = chars.next().ok_or_else(|| {
            format!("ssh configuration: a lone % at the end of {keyword} `{text}`")
        })?;
        if !allowed.contains(token) {
            return Err(unknown(token));
        }
        match token {
            '%' => out.push('%'),
            'd' => out.push_str(&t.home.to_string_lossy()),
            'h' => out.push_str(&t.hostname),
            'p' => out.push_str(&t.port.to_string()),
            'r' => out.push_str(&t.remote_user),
            'u' => out.push_str(&t.local_user),
            'n' => out.push_str(&t.original),
            'l' => out.push_str(&local_hostname()),
            'L' => out.push_str(local_hostname().split('.').next().unwrap_or_default()),
            // SAFETY: getuid has no preconditions.
            'i' => out.push_str(&unsafe { libc::getuid() }.to_string()),
            'k' => out.push_str(t.host_key_alias.as_deref().unwrap_or(&t.original)),
            'j' => out.push_str(&t.proxy_jump),
            'C' => out.push_str(&connection_hash(t)),
            other => return Err(unknown(other)),
        }
    }
    Ok(out)
}

/// `%C`: the SHA-1 of `%l%h%p%r%j`, in hex.
fn connection_hash(t: &Tokens) -> String {
    use sha1::Digest;
    let text = format!(
        "{}{}{}{}{}",
        local_hostname(),
        t.hostname,
        t.port,
        t.remote_user,
        t.proxy_jump
    );
    sha1::Sha1::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A file name: `%` tokens, then `${VAR}`, then a leading `~/`.
fn expand_path(text: &str, t: &Tokens, keyword: &str) -> Result<PathBuf, String> {
    let expanded = expand_variables(&expand_tokens(text, t, keyword, FILE_TOKENS)?, keyword)?;
    Ok(match expanded.strip_prefix("~/") {
        Some(rest) => t.home.join(rest),
        None if expanded == "~" => t.home.clone(),
        None => PathBuf::from(expanded),
    })
}

/// `${NAME}` from the environment (unset: an error, as in OpenSSH).
fn expand_variables(text: &str, keyword: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find("${") {
        out.push_str(&rest[..at]);
        let after = &rest[at + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| format!("ssh configuration: unterminated ${{ in {keyword} `{text}`"))?;
        let name = &after[..end];
        let value = std::env::var(name).map_err(|_| {
            format!("ssh configuration: {keyword} `{text}` uses ${{{name}}}, which is not set")
        })?;
        out.push_str(&value);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn home() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/"))
}

/// The local user's name, from the password database as OpenSSH takes
/// it (`$USER` if the database has no entry).
fn local_user() -> String {
    let mut buf = vec![0 as libc::c_char; 4096];
    // SAFETY: all-zero is a valid passwd; getpwuid_r writes into it and
    // buf (of the given length) and sets `found` to it or null.
    unsafe {
        let mut pwd: libc::passwd = std::mem::zeroed();
        let mut found: *mut libc::passwd = std::ptr::null_mut();
        let rc = libc::getpwuid_r(
            libc::getuid(),
            &mut pwd,
            buf.as_mut_ptr(),
            buf.len(),
            &mut found,
        );
        if rc == 0 && !found.is_null() && !pwd.pw_name.is_null() {
            return std::ffi::CStr::from_ptr(pwd.pw_name)
                .to_string_lossy()
                .into_owned();
        }
    }
    std::env::var("USER").unwrap_or_else(|_| "root".into())
}

fn local_hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most buf.len() bytes into buf.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return String::new();
    }
    let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// `*` and `?` glob match, without backtracking blow-up: on a mismatch
/// only the most recent `*` takes one more character (O(pattern × text)).
pub(crate) fn glob(pattern: &str, text: &str) -> bool {
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

/// OpenSSH's pattern lists: a negated pattern that matches decides
/// `false`; otherwise any positive match decides `true`.
fn patterns_match<'p>(patterns: impl IntoIterator<Item = &'p str>, text: &str) -> bool {
    let mut matched = false;
    for pattern in patterns {
        if let Some(negated) = pattern.strip_prefix('!') {
            if glob(negated, text) {
                return false;
            }
        } else if glob(pattern, text) {
            matched = true;
        }
    }
    matched
}

/// Splits a line's arguments as OpenSSH does: whitespace separates,
/// `"..."` and `'...'` quote, a backslash escapes a quote, a backslash or
/// a space, and `#` starts a comment outside quotes.
fn split_arguments(text: &str) -> Result<Vec<String>, String> {
    let mut args = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let Some(&first) = chars.peek() else {
            break;
        };
        if first == '#' {
            break;
        }
        let mut arg = String::new();
        let mut quote: Option<char> = None;
        while let Some(c) = chars.next() {
            match (c, quote) {
                ('\\', _) if matches!(chars.peek(), Some('"' | '\'' | '\\' | ' ')) => {
                    arg.extend(chars.next());
                }
                ('"' | '\'', None) => quote = Some(c),
                (c, Some(q)) if c == q => quote = None,
                (c, None) if c.is_whitespace() => break,
                (c, _) => arg.push(c),
            }
        }
        if let Some(q) = quote {
            return Err(format!("unterminated {q}quote"));
        }
        args.push(arg);
    }
    Ok(args)
}

/// The keyword of a line and the rest (`Key value`, `Key=value`,
/// `Key = value`).
fn split_keyword(line: &str) -> (String, &str) {
    let end = line
        .find(|c: char| c.is_whitespace() || c == '=')
        .unwrap_or(line.len());
    let keyword = line[..end].to_ascii_lowercase();
    let mut rest = line[end..].trim_start();
    if let Some(r) = rest.strip_prefix('=') {
        rest = r.trim_start();
    }
    (keyword, rest)
}

/// Includes nest at most this deep (as in OpenSSH).
const MAX_INCLUDE_DEPTH: u8 = 16;

/// batou's own reader, for machines without OpenSSH's client.
struct Reader {
    original: String,
    local_user: String,
    settings: Settings,
    final_pass: bool,
    wants_final: bool,
    /// Where relative `Include`s start: `~/.ssh` for the user's files,
    /// `/etc/ssh` for the system's.
    include_base: PathBuf,
}

/// Reads `config` (or `~/.ssh/config`, then `/etc/ssh/ssh_config`) for
/// `destination`, with a final pass when a `Match final` asks for it.
fn read_builtin(config: Option<&Path>, destination: &str) -> Result<Settings, String> {
    let mut reader = Reader {
        original: destination.to_string(),
        local_user: local_user(),
        settings: Settings::default(),
        final_pass: false,
        wants_final: false,
        include_base: home().join(".ssh"),
    };
    reader.read_all(config)?;
    if reader.wants_final {
        reader.final_pass = true;
        reader.read_all(config)?;
    }
    Ok(reader.settings)
}

impl Reader {
    fn read_all(&mut self, config: Option<&Path>) -> Result<(), String> {
        match config {
            Some(file) => {
                self.include_base = home().join(".ssh");
                self.read_file(file, false, 0, true)
            }
            None => {
                self.include_base = home().join(".ssh");
                self.read_file(&home().join(".ssh/config"), false, 0, false)?;
                self.include_base = PathBuf::from("/etc/ssh");
                self.read_file(Path::new("/etc/ssh/ssh_config"), false, 0, false)
            }
        }
    }

    /// One file; `never_match` for a file included from an inactive
    /// block; a missing file is an error only when `required`.
    fn read_file(
        &mut self,
        path: &Path,
        never_match: bool,
        depth: u8,
        required: bool,
    ) -> Result<(), String> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if !required && e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
        };
        let mut active = !never_match;
        for (index, raw) in text.lines().enumerate() {
            let at = format!("{}:{}", path.display(), index + 1);
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (keyword, rest) = split_keyword(line);
            let args = split_arguments(rest).map_err(|e| format!("{at}: {e}"))?;
            match keyword.as_str() {
                "host" => {
                    active = !never_match
                        && patterns_match(args.iter().map(String::as_str), &self.original);
                }
                "match" => {
                    let matched = self.match_line(&args, &at)?;
                    active = !never_match && matched;
                }
                "include" => {
                    if depth >= MAX_INCLUDE_DEPTH {
                        return Err(format!("{at}: Include nested too deeply"));
                    }
                    for pattern in &args {
                        for file in self.include_files(pattern, &at)? {
                            self.read_file(&file, !active, depth + 1, false)?;
                        }
                    }
                }
                _ if active => self.settings.set(&keyword, &args),
                _ => {}
            }
        }
        Ok(())
    }

    /// The files an `Include` argument names, sorted (`~` and relative
    /// paths expanded, globs matched).
    fn include_files(&self, pattern: &str, at: &str) -> Result<Vec<PathBuf>, String> {
        let path = match pattern.strip_prefix("~/") {
            Some(rest) => home().join(rest),
            None if pattern.starts_with('/') => PathBuf::from(pattern),
            None => self.include_base.join(pattern),
        };
        let text = path.to_string_lossy();
        let paths =
            glob::glob(&text).map_err(|e| format!("{at}: bad Include pattern `{pattern}`: {e}"))?;
        let mut files: Vec<PathBuf> = paths.flatten().filter(|p| p.is_file()).collect();
        files.sort();
        Ok(files)
    }

    /// Evaluates a `Match` line's criteria in order (a later `exec` is not
    /// run once a criterion failed).
    fn match_line(&mut self, args: &[String], at: &str) -> Result<bool, String> {
        let unsupported = |what: &str| {
            format!(
                "{at}: `Match {what}` cannot be evaluated by batou's own ssh_config reader \
                 (OpenSSH's `ssh`, which batou asks with `ssh -G` when it is installed, is not): \
                 install OpenSSH's client or set `ssh_client = openssh` in [environment]"
            )
        };
        let mut result = true;
        let mut items = args.iter();
        if args.is_empty() {
            return Err(format!("{at}: Match without criteria"));
        }
        while let Some(item) = items.next() {
            let (negate, criterion) = match item.strip_prefix('!') {
                Some(c) => (true, c.to_ascii_lowercase()),
                None => (false, item.to_ascii_lowercase()),
            };
            let mut argument = || {
                items
                    .next()
                    .ok_or_else(|| format!("{at}: Match {criterion} needs an argument"))
            };
            let matched = match criterion.as_str() {
                "all" => true,
                "final" => {
                    self.wants_final = true;
                    self.final_pass
                }
                "canonical" => match self.settings.canonicalize.as_deref() {
                    Some(v) if !v.eq_ignore_ascii_case("no") => {
                        return Err(unsupported("canonical (with CanonicalizeHostname)"))
                    }
                    _ => false,
                },
                "host" => {
                    let list = argument()?;
                    let host = self.current_hostname()?;
                    patterns_match(list.split(','), &host)
                }
                "originalhost" => patterns_match(argument()?.split(','), &self.original),
                "user" => {
                    let list = argument()?;
                    let user = self
                        .settings
                        .user
                        .clone()
                        .unwrap_or_else(|| self.local_user.clone());
                    patterns_match(list.split(','), &user)
                }
                "localuser" => patterns_match(argument()?.split(','), &self.local_user),
                "tagged" => {
                    let tag = self.settings.tag.clone().unwrap_or_default();
                    patterns_match(argument()?.split(','), &tag)
                }
                "exec" => {
                    let command = argument()?;
                    if result {
                        self.run_exec(command, at)?
                    } else {
                        false
                    }
                }
                "localnetwork" => return Err(unsupported("localnetwork")),
                other => return Err(format!("{at}: unknown Match criterion `{other}`")),
            };
            result &= matched != negate;
        }
        Ok(result)
    }

    /// The host name `Match host` sees: `HostName` (with `%h`) if set.
    fn current_hostname(&self) -> Result<String, String> {
        let tokens = self.tokens();
        match &self.settings.hostname {
            Some(h) => expand_tokens(h, &tokens, "HostName", HOSTNAME_TOKENS),
            None => Ok(tokens.hostname),
        }
    }

    fn tokens(&self) -> Tokens {
        Tokens {
            home: home(),
            hostname: self.original.to_ascii_lowercase(),
            original: self.original.clone(),
            port: self
                .settings
                .port
                .as_deref()
                .and_then(|p| p.parse().ok())
                .unwrap_or(22),
            remote_user: self
                .settings
                .user
                .clone()
                .unwrap_or_else(|| self.local_user.clone()),
            local_user: self.local_user.clone(),
            host_key_alias: self.settings.host_key_alias.clone(),
            proxy_jump: self.settings.proxy_jump.clone().unwrap_or_default(),
        }
    }

    /// `Match exec`: the command (tokens expanded) run by `/bin/sh -c`;
    /// exit status 0 matches.
    fn run_exec(&self, command: &str, at: &str) -> Result<bool, String> {
        let mut tokens = self.tokens();
        tokens.hostname = self.current_hostname()?;
        let command = expand_tokens(command, &tokens, "Match exec", FILE_TOKENS)?;
        let status = Command::new("/bin/sh")
            .arg("-c")
            .arg(&command)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .status()
            .map_err(|e| format!("{at}: cannot run Match exec `{command}`: {e}"))?;
        Ok(status.success())
    }
}

#[cfg(test)]
mod tests;
