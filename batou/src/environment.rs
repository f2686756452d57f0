//! `environments/<env>/environment.cfg` → [`Environment`].
//!
//! Every problem of a cfg file is collected (with the file and line) and
//! reported together, as batou does, before `DEPLOYMENT FAILED (during load)`.
//! Unlike batou, unknown keys are errors too: a typo must not be ignored.

use crate::component::registrations;
use crate::report::{order, Report};
use batou_cfg::{CfgFile, Entry, Section};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

pub use crate::settings::{ConnectMethod, SshClient, UpdateMethod};

const ENVIRONMENT_KEYS: &[&str] = &[
    "connect_method",
    "ssh_client",
    "update_method",
    "service_user",
    "host_domain",
    "platform",
    "branch",
    "timeout",
    "target_directory",
    "jobs",
    "require_v4",
    "require_v6",
    "require_sudo",
    "repository_url",
    "repository_root",
    "develop",
];
/// Keys batou reads (or once read) that this project does not use, and
/// why: each gets a one-line warning instead of an error.
const IGNORED_ENVIRONMENT_KEYS: &[(&str, &str)] = &[
    (
        "develop",
        "batou 1's path to a development copy of batou; the agent is this executable",
    ),
    (
        "repository_root",
        "`sync` ships the project directory, git and hg the repository that holds it",
    ),
];
const HOST_KEYS: &[&str] = &[
    "components",
    "ignore",
    "platform",
    "service_user",
    "require_sudo",
    "provisioner",
    "provision-dynamic-hostname",
    "provision-aliases",
];
const SECTIONS: &[&str] = &[
    "environment",
    "hosts",
    "host:NAME",
    "component:NAME",
    "provisioner:NAME",
    "resolver",
    "vfs",
];

/// A loaded environment: everything the model needs, serializable so the
/// controller can hand it to agents over the channel.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Environment {
    /// Name (the directory under `environments/`).
    pub name: String,
    /// The cfg file, relative to the project.
    pub cfg_path: String,
    /// `local`, `ssh`, `vagrant` or `kitchen`.
    pub connect_method: ConnectMethod,
    /// How the project is shipped.
    pub update_method: UpdateMethod,
    /// SSH client for `ssh`: `russh` (in-process) or `openssh` (the
    /// system `ssh`, for configurations russh cannot honour).
    pub ssh_client: SshClient,
    /// User the deployment runs as on the hosts.
    pub service_user: Option<String>,
    /// Appended to host names to form the fqdn; default platform.
    pub host_domain: Option<String>,
    /// Platform for platform-specific components.
    pub platform: Option<String>,
    /// Branch shipped by VCS update methods (default: the checked-out one).
    pub branch: Option<String>,
    /// Where `git-pull`/`hg-pull` hosts fetch from (default: the local
    /// repository's default remote).
    pub repository_url: Option<String>,
    /// Seconds per SSH connection attempt (and for components, e.g. pip).
    pub timeout: u64,
    /// Where the project lives on remote hosts.
    pub target_directory: String,
    /// Parallel root deployments.
    pub jobs: usize,
    /// `True`, `False` or `optional`.
    pub require_v4: crate::address::Family,
    /// `True`, `False` or `optional`.
    pub require_v6: crate::address::Family,
    /// Hosts sorted by name.
    pub hosts: Vec<Host>,
    /// Attribute overrides per root component name.
    pub overrides: BTreeMap<String, Vec<Override>>,
    /// `[resolver]`: host name → addresses.
    pub resolver: BTreeMap<String, Vec<String>>,
    /// `[vfs]` entries.
    pub vfs: BTreeMap<String, String>,
    /// What the secrets files add besides overrides and host data.
    #[serde(default)]
    pub secrets: SecretData,
    /// `require_sudo`: `None` finds out (sudo when the login user is not
    /// the service user).
    #[serde(default)]
    pub require_sudo: Option<bool>,
    /// `[provisioner:NAME]` sections.
    #[serde(default)]
    pub provisioners: BTreeMap<String, crate::provision::Provisioner>,
    /// One-line warnings of the load (keys batou knows that have no
    /// effect here), `file:line: text`.
    #[serde(skip)]
    pub warnings: Vec<String>,
}

/// Secret files and the secret values (for hiding diffs) of an
/// environment. Kept in memory only; its `Debug` shows names, not contents.
#[derive(Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct SecretData {
    /// `secret-<name>.*` files: name → text.
    pub files: BTreeMap<String, String>,
    /// Every override value of the secrets file and every line (of at
    /// least 4 characters, trimmed) of every secret file: a diff whose text
    /// contains one of them is not shown.
    pub values: std::collections::BTreeSet<String>,
}

impl std::fmt::Debug for SecretData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretData")
            .field("files", &self.files.keys().collect::<Vec<_>>())
            .field("values", &format_args!("<{} hidden>", self.values.len()))
            .finish()
    }
}

/// A host of the environment.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Host {
    /// Name as written in the cfg.
    pub name: String,
    /// `name.host_domain`, or the name.
    pub fqdn: String,
    /// Not connected, not deployed (still configured).
    pub ignore: bool,
    /// Ignored because `--limit` does not select it (`ignore` is set too).
    #[serde(default)]
    pub not_selected: bool,
    /// Host-specific platform.
    pub platform: Option<String>,
    /// Host-specific service user.
    pub service_user: Option<String>,
    /// `data-*` keys.
    pub data: BTreeMap<String, String>,
    /// Root components in cfg order.
    pub components: Vec<RootSpec>,
    /// `require_sudo` of the host, else the environment's.
    #[serde(default)]
    pub require_sudo: Option<bool>,
    /// The provisioner section that applies (`provisioner = NAME`, else
    /// `default` if there is one; `none`: no provisioner).
    #[serde(default)]
    pub provisioner: Option<String>,
    /// `provision-aliases` → alias → public fqdn
    /// (`alias.host.provisioner-host`), `{{ host.aliases.NAME }}`.
    #[serde(default)]
    pub aliases: BTreeMap<String, String>,
}

/// A root component assigned to a host.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RootSpec {
    /// Component name.
    pub name: String,
    /// `component:feature` features.
    pub features: Vec<String>,
    /// `!component`: configured but not deployed.
    pub ignore: bool,
}

/// One `[component:x] key = value` override.
#[derive(Clone, Serialize, Deserialize, PartialEq)]
pub struct Override {
    /// Attribute name.
    pub key: String,
    /// Raw value (expanded and converted at configure time).
    pub value: String,
    /// `file:line` of the key.
    pub location: String,
    /// From a secrets file: never shown (`Debug` prints `***`, errors
    /// leave it out).
    #[serde(default)]
    pub secret: bool,
}

impl std::fmt::Debug for Override {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("Override");
        d.field("key", &self.key);
        if self.secret {
            d.field("value", &format_args!("***"));
        } else {
            d.field("value", &self.value);
        }
        d.field("location", &self.location)
            .field("secret", &self.secret)
            .finish()
    }
}

/// Loading failed: the reports to print.
#[derive(Debug, Clone)]
pub struct LoadErrors(pub Vec<Report>);

impl Environment {
    /// An environment with batou's defaults and no hosts (`ssh`, `sync`,
    /// timeout 3, `~/deployment`, one job, IPv4 required).
    pub fn new(name: impl Into<String>, cfg_path: impl Into<String>) -> Environment {
        Environment {
            name: name.into(),
            cfg_path: cfg_path.into(),
            connect_method: ConnectMethod::Ssh,
            update_method: UpdateMethod::Sync,
            ssh_client: SshClient::Russh,
            service_user: None,
            host_domain: None,
            platform: None,
            branch: None,
            repository_url: None,
            timeout: 3,
            target_directory: "~/deployment".into(),
            jobs: 1,
            require_v4: crate::address::Family::Required,
            require_v6: crate::address::Family::Disabled,
            hosts: Vec::new(),
            overrides: BTreeMap::new(),
            resolver: BTreeMap::new(),
            vfs: BTreeMap::new(),
            secrets: SecretData::default(),
            require_sudo: None,
            provisioners: BTreeMap::new(),
            warnings: Vec::new(),
        }
    }

    /// A host with this environment's domain, no components.
    pub fn new_host(&self, name: &str) -> Host {
        Host {
            name: name.to_string(),
            fqdn: match &self.host_domain {
                Some(d) => format!("{name}.{d}"),
                None => name.to_string(),
            },
            ignore: false,
            not_selected: false,
            platform: None,
            service_user: None,
            data: BTreeMap::new(),
            components: Vec::new(),
            require_sudo: self.require_sudo,
            provisioner: None,
            aliases: BTreeMap::new(),
        }
    }

    /// The hosts an agent that configures `roots` (`(host, root)`: its
    /// host's and those they read from) needs: every host stays (a
    /// `require` may name any), but one without such a root keeps only
    /// its name and address, not its components and data, so what each
    /// agent receives does not grow with the other hosts' definitions.
    pub fn hosts_for(&self, roots: &std::collections::BTreeSet<(String, String)>) -> Vec<Host> {
        let needed: std::collections::BTreeSet<&str> =
            roots.iter().map(|(host, _)| host.as_str()).collect();
        self.hosts
            .iter()
            .map(|h| {
                if needed.contains(h.name.as_str()) {
                    h.clone()
                } else {
                    Host {
                        name: h.name.clone(),
                        fqdn: h.fqdn.clone(),
                        ignore: h.ignore,
                        not_selected: h.not_selected,
                        platform: None,
                        service_user: None,
                        data: BTreeMap::new(),
                        components: Vec::new(),
                        require_sudo: None,
                        provisioner: None,
                        aliases: BTreeMap::new(),
                    }
                }
            })
            .collect()
    }

    /// The platform of a host: `-p`, then the host's, then the environment's.
    pub fn platform_of(&self, host: &Host) -> Option<String> {
        host.platform.clone().or_else(|| self.platform.clone())
    }

    /// Loads `environments/<name>/environment.cfg` below `project_root`.
    pub fn load(project_root: &Path, name: &str) -> Result<Environment, LoadErrors> {
        let name = name.strip_suffix(".cfg").unwrap_or(name);
        if let Some(found) = crate::migrate::pending(project_root) {
            return Err(LoadErrors(vec![Report::new(
                "Please run `./batou migrate` first.",
                order::CONFIGURATION,
            )
            .field("Message", "the project has files of an older batou layout")
            .field("Found", found.join(", "))]));
        }
        let rel = format!("environments/{name}/environment.cfg");
        let path = project_root.join(&rel);
        if !is_plain_name(name) || !path.is_file() {
            let existing = environment_names(project_root);
            let mut report =
                Report::new("Missing environment", order::CONFIGURATION).field("Environment", name);
            report = report.field(
                "Existing environments",
                if existing.is_empty() {
                    "none (environments/NAME/environment.cfg)".to_string()
                } else {
                    existing.join(", ")
                },
            );
            if let Some(close) = closest(name, &existing) {
                report = report.field("Did you mean", close);
            }
            return Err(LoadErrors(vec![report]));
        }
        let cfg = CfgFile::load(&path, &rel).map_err(|e| {
            LoadErrors(vec![Report::new(
                "Malformed environment configuration",
                order::CONFIGURATION,
            )
            .field("Location", format!("{}:{}", e.path, e.line))
            .field("Message", e.message)])
        })?;
        let hostmap = crate::provision::hostmap(project_root, name).map_err(|message| {
            LoadErrors(vec![Report::new(
                "Malformed environment configuration",
                order::CONFIGURATION,
            )
            .field("Message", message)])
        })?;
        let all = registrations();
        let known = |c: &str| crate::component::find_registration(&all, c).map(|r| r.features);
        let mut loader = Loader::new(name, &cfg, &known);
        loader.hostmap = hostmap;
        loader.run()
    }
}

/// An environment name is the plain name of a directory under
/// `environments/`: not empty, no `/`, not `.` or `..`, not hidden.
pub fn is_plain_name(name: &str) -> bool {
    !name.is_empty() && !name.starts_with('.') && !name.contains(['/', '\\', '\0'])
}

pub(crate) use batou_cfg::closest;

/// The environments of a project (directories of `environments/` with an
/// `environment.cfg`), sorted.
pub fn environment_names(project_root: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(project_root.join("environments"))
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().join("environment.cfg").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| is_plain_name(n))
        .collect();
    names.sort();
    names
}

/// Reports two component types registered under one name.
pub fn duplicate_components(used: &dyn Fn(&str) -> bool) -> Vec<Report> {
    let all = registrations();
    let mut out = Vec::new();
    for pair in all.windows(2) {
        if pair[0].name == pair[1].name && used(pair[0].name) {
            let choices: Vec<String> = all
                .iter()
                .filter(|r| r.name == pair[0].name)
                .map(|r| format!("{}.{}", r.crate_name, r.name))
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect();
            out.push(
                Report::new(
                    format!("Duplicate component \"{}\"", pair[0].name),
                    order::DUPLICATE_COMPONENT,
                )
                .field(
                    "Occurrence",
                    format!("{} ({})", pair[0].type_name, pair[0].location()),
                )
                .field(
                    "Occurrence",
                    format!("{} ({})", pair[1].type_name, pair[1].location()),
                )
                .field(
                    "Choose one",
                    format!("name it {} in environment.cfg", choices.join(" or ")),
                )
                .sort_by(vec![pair[0].name.to_string()]),
            );
        }
    }
    out
}

struct Loader<'a> {
    cfg: &'a CfgFile,
    /// The features of a registered component; `None`: no such component.
    known: &'a dyn Fn(&str) -> Option<&'static [&'static str]>,
    /// Hosts that list any component (even an unknown one).
    listed: std::collections::BTreeSet<String>,
    errors: Vec<Report>,
    env: Environment,
    /// `hostmap.json`: the machines' names of dynamically named hosts.
    hostmap: BTreeMap<String, String>,
    /// Per host: `provisioner`, `provision-aliases` and
    /// `provision-dynamic-hostname` as written, with their lines.
    provision_keys: BTreeMap<String, HostProvisionKeys>,
}

/// A host's `provision*` keys, resolved once all sections are read.
#[derive(Default)]
struct HostProvisionKeys {
    provisioner: Option<(String, usize)>,
    aliases: Option<(String, usize)>,
    dynamic: Option<(bool, usize)>,
}

impl<'a> Loader<'a> {
    fn new(
        name: &str,
        cfg: &'a CfgFile,
        known: &'a dyn Fn(&str) -> Option<&'static [&'static str]>,
    ) -> Self {
        Loader {
            cfg,
            known,
            listed: Default::default(),
            errors: Vec::new(),
            env: Environment::new(name, cfg.path.display().to_string()),
            hostmap: BTreeMap::new(),
            provision_keys: BTreeMap::new(),
        }
    }

    fn warn(&mut self, line: usize, message: String) {
        let loc = self.loc(line);
        self.env.warnings.push(format!("{loc}: {message}"));
    }

    fn loc(&self, line: usize) -> String {
        self.cfg.location(line)
    }

    fn error(&mut self, report: Report, line: usize) {
        let loc = self.loc(line);
        let mut r = report.field("Location", loc.clone());
        r.sort.1.push(loc);
        self.errors.push(r);
    }

    fn invalid(&mut self, section: &Section, e: &Entry, message: String) {
        self.error(
            Report::new(
                "Invalid value in environment configuration",
                order::CONFIGURATION,
            )
            .field("Section", section.name.clone())
            .field("Key", e.key.clone())
            .field("Value", e.value.clone())
            .field("Message", message),
            e.line,
        );
    }

    fn run(mut self) -> Result<Environment, LoadErrors> {
        let cfg = self.cfg;
        // Sections that may appear once.
        let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
        for s in &cfg.sections {
            if s.name.starts_with("host:") {
                continue;
            }
            if let Some(first) = seen.get(s.name.as_str()) {
                let first = self.loc(*first);
                self.error(
                    Report::new(
                        "Duplicate section in environment configuration",
                        order::CONFIGURATION,
                    )
                    .field("Section", s.name.clone())
                    .field("First", first),
                    s.line,
                );
            } else {
                seen.insert(&s.name, s.line);
            }
        }
        for s in &cfg.sections {
            self.check_duplicate_keys(s);
        }
        // [environment] first: host_domain is needed for fqdns.
        for s in cfg.sections.iter().filter(|s| s.name == "environment") {
            self.environment_section(s);
        }
        // Provisioners before hosts: a host names its provisioner.
        for s in cfg
            .sections
            .iter()
            .filter(|s| s.name.starts_with("provisioner:"))
        {
            self.provisioner_section(s);
        }
        let mut hosts: BTreeMap<String, (Host, usize)> = BTreeMap::new();
        for s in &cfg.sections {
            match s.name.as_str() {
                "environment" => {}
                "hosts" => self.hosts_section(s, &mut hosts),
                "resolver" => self.resolver_section(s),
                "vfs" => self.vfs_section(s),
                name if name.starts_with("host:") => self.host_section(s, &mut hosts),
                name if name.starts_with("component:") => self.component_section(s),
                name if name.starts_with("provisioner:") => {}
                "" => {
                    let line = s.entries.first().map_or(0, |e| e.line);
                    self.error(
                        Report::new(
                            "Key outside of any section in environment configuration",
                            order::CONFIGURATION,
                        )
                        .field(
                            "Key",
                            s.entries.first().map(|e| e.key.clone()).unwrap_or_default(),
                        ),
                        line,
                    );
                }
                _ => {
                    let mut report = Report::new(
                        "Superfluous section in environment configuration",
                        order::CONFIGURATION,
                    )
                    .field("Section", s.name.clone())
                    .field("Known sections", SECTIONS.join(", "));
                    let names: Vec<String> = SECTIONS
                        .iter()
                        .map(|k| k.trim_end_matches("NAME").to_string())
                        .collect();
                    let head = s
                        .name
                        .split_once(':')
                        .map_or(s.name.clone(), |(h, _)| format!("{h}:"));
                    if let Some(close) = closest(&head, &names) {
                        report = report.field(
                            "Did you mean",
                            format!(
                                "[{}{}]",
                                close,
                                s.name.split_once(':').map_or("", |(_, r)| r)
                            ),
                        );
                    }
                    self.error(report, s.line)
                }
            }
        }
        for (name, (host, line)) in &hosts {
            // A host whose only components were wrong has its error already.
            if host.components.is_empty() && !self.listed.contains(name) {
                self.error(
                    Report::new("Host without components", order::CONFIGURATION)
                        .field("Host", name.clone())
                        .field(
                            "Message",
                            "list its components in [hosts] or [host:NAME] components, or remove the host",
                        ),
                    *line,
                );
            }
        }
        for (host, _) in hosts.values_mut() {
            self.apply_provisioning(host);
        }
        self.env.hosts = hosts.into_values().map(|(h, _)| h).collect();
        if self.errors.is_empty() {
            Ok(self.env)
        } else {
            Err(LoadErrors(self.errors))
        }
    }

    fn check_duplicate_keys(&mut self, s: &Section) {
        let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
        for e in &s.entries {
            if let Some(first) = seen.get(e.key.as_str()) {
                let first = self.loc(*first);
                self.error(
                    Report::new(
                        "Duplicate key in environment configuration",
                        order::CONFIGURATION,
                    )
                    .field("Section", s.name.clone())
                    .field("Key", e.key.clone())
                    .field("First", first),
                    e.line,
                );
            } else {
                seen.insert(&e.key, e.line);
            }
        }
    }

    fn unknown_key(&mut self, s: &Section, e: &Entry, known: &[&str]) {
        let names: Vec<String> = known.iter().map(|k| k.to_string()).collect();
        let mut report = Report::new(
            "Unknown key in environment configuration",
            order::CONFIGURATION,
        )
        .field("Section", s.name.clone())
        .field("Key", e.key.clone());
        if let Some(close) = closest(&e.key, &names) {
            report = report.field("Did you mean", close);
        }
        self.error(report.field("Known keys", known.join(", ")), e.line);
    }

    fn provisioner_section(&mut self, s: &Section) {
        let name = s.name["provisioner:".len()..].trim().to_string();
        for e in &s.entries {
            if !crate::provision::KEYS.contains(&e.key.as_str()) {
                self.unknown_key(s, e, crate::provision::KEYS);
            }
        }
        let entries: Vec<(&str, &str, usize)> = s
            .entries
            .iter()
            .map(|e| (e.key.as_str(), e.value.as_str(), e.line))
            .collect();
        match crate::provision::Provisioner::from_entries(&name, s.line, &entries) {
            Ok(p) => {
                self.env.provisioners.insert(name, p);
            }
            Err(problems) => {
                for (key, line, message) in problems {
                    self.error(
                        Report::new(
                            "Invalid provisioner in environment configuration",
                            order::CONFIGURATION,
                        )
                        .field("Section", s.name.clone())
                        .field("Key", key)
                        .field("Message", message),
                        line,
                    );
                }
            }
        }
    }

    /// The host's provisioner (named, else `default`), its aliases below
    /// the provisioner's host, and the machine's name from hostmap.json.
    fn apply_provisioning(&mut self, host: &mut Host) {
        let keys = self.provision_keys.remove(&host.name).unwrap_or_default();
        host.provisioner = match &keys.provisioner {
            Some((name, _)) if name == "none" => None,
            Some((name, line)) => {
                if self.env.provisioners.contains_key(name) {
                    Some(name.clone())
                } else {
                    let known: Vec<String> = self.env.provisioners.keys().cloned().collect();
                    let mut report = Report::new(
                        "Unknown provisioner in environment configuration",
                        order::CONFIGURATION,
                    )
                    .field("Host", host.name.clone())
                    .field("Provisioner", name.clone())
                    .field(
                        "Known provisioners",
                        if known.is_empty() {
                            "none ([provisioner:NAME] sections)".to_string()
                        } else {
                            known.join(", ")
                        },
                    );
                    if let Some(close) = closest(name, &known) {
                        report = report.field("Did you mean", close);
                    }
                    self.error(report, *line);
                    None
                }
            }
            None => self
                .env
                .provisioners
                .contains_key("default")
                .then(|| "default".to_string()),
        };
        let machine = match (&keys.dynamic, self.hostmap.get(&host.name)) {
            (Some((true, _)), Some(mapped)) => mapped.clone(),
            (Some((true, line)), None) => {
                self.warn(
                    *line,
                    format!(
                        "provision-dynamic-hostname: no name for {} in hostmap.json (a provisioner that makes dynamic names writes it there); it is reached as {}",
                        host.name, host.name
                    ),
                );
                host.name.clone()
            }
            _ => host.name.clone(),
        };
        if machine != host.name {
            host.fqdn = match &self.env.host_domain {
                Some(d) => format!("{machine}.{d}"),
                None => machine.clone(),
            };
        }
        if let Some((list, line)) = &keys.aliases {
            match host.provisioner.as_ref().and_then(|p| self.env.provisioners.get(p)) {
                Some(p) => host.aliases = crate::provision::aliases(list, &machine, &p.host),
                None => self.warn(
                    *line,
                    format!(
                        "provision-aliases of {} have no effect without a provisioner (its host names the aliases)",
                        host.name
                    ),
                ),
            }
        }
    }

    fn environment_section(&mut self, s: &Section) {
        for e in &s.entries {
            let v = e.value.trim().to_string();
            match e.key.as_str() {
                "connect_method" => match v.parse() {
                    Ok(m) => self.env.connect_method = m,
                    Err(why) => self.invalid(s, e, why),
                },
                "update_method" => match v.parse() {
                    Ok(m) => self.env.update_method = m,
                    Err(why) => self.invalid(s, e, why),
                },
                "ssh_client" => match v.parse() {
                    Ok(c) => self.env.ssh_client = c,
                    Err(why) => self.invalid(s, e, why),
                },
                "service_user" => self.env.service_user = non_empty(v),
                "host_domain" => self.env.host_domain = non_empty(v),
                "platform" => self.env.platform = non_empty(v),
                "branch" => self.env.branch = non_empty(v),
                "target_directory" => match crate::safe_fs::root(&v) {
                    Ok(_) => self.env.target_directory = v.trim_end_matches('/').to_string(),
                    Err(_) => self.invalid(
                        s,
                        e,
                        "expected an absolute path or one below ~ (the remote user's home), without . or .."
                            .into(),
                    ),
                },
                "timeout" => match v.parse::<u64>() {
                    Ok(t) => self.env.timeout = t,
                    Err(_) => self.invalid(s, e, "expected a whole number of seconds".into()),
                },
                "jobs" => match v.parse::<usize>() {
                    Ok(j) if j > 0 => self.env.jobs = j,
                    _ => self.invalid(s, e, "expected a positive whole number".into()),
                },
                "require_v4" | "require_v6" => match crate::address::Family::parse(&v) {
                    Some(f) if e.key == "require_v4" => self.env.require_v4 = f,
                    Some(f) => self.env.require_v6 = f,
                    None => self.invalid(s, e, "expected True, False or optional".into()),
                },
                "repository_url" => self.env.repository_url = non_empty(v),
                "require_sudo" => match crate::component::ConfigValue::from_config(&v) {
                    Ok(b) => self.env.require_sudo = Some(b),
                    Err(_) => self.invalid(s, e, "expected True or False".into()),
                },
                k => match IGNORED_ENVIRONMENT_KEYS.iter().find(|(key, _)| *key == k) {
                    Some((key, why)) => self.warn(e.line, format!("`{key}` has no effect: {why}")),
                    None => self.unknown_key(s, e, ENVIRONMENT_KEYS),
                },
            }
        }
        if self.env.platform.is_none() {
            self.env.platform = self.env.host_domain.clone();
        }
    }

    fn new_host(&self, name: &str) -> Host {
        self.env.new_host(name)
    }

    fn hosts_section(&mut self, s: &Section, hosts: &mut BTreeMap<String, (Host, usize)>) {
        for e in &s.entries {
            let (name, ignore) = match e.key.strip_prefix('!') {
                Some(n) => (n.trim(), true),
                None => (e.key.as_str(), false),
            };
            if name.is_empty() {
                self.invalid(s, e, "empty host name".into());
                continue;
            }
            if lists_something(&e.value) {
                self.listed.insert(name.to_string());
            }
            let components = self.components_list(e);
            let fresh = self.new_host(name);
            let entry = hosts.entry(name.to_string()).or_insert((fresh, e.line));
            entry.0.ignore |= ignore;
            merge_components(&mut entry.0.components, components);
        }
    }

    fn host_section(&mut self, s: &Section, hosts: &mut BTreeMap<String, (Host, usize)>) {
        let name = s.name["host:".len()..].trim().to_string();
        if name.is_empty() {
            self.error(
                Report::new(
                    "Invalid section in environment configuration",
                    order::CONFIGURATION,
                )
                .field("Section", s.name.clone())
                .field("Message", "a [host:NAME] section needs a host name"),
                s.line,
            );
            return;
        }
        if let Some((_, first)) = hosts.get(&name) {
            let first = self.loc(*first);
            self.error(
                Report::new(
                    format!("Duplicate definition of host: {name}"),
                    order::CONFIGURATION,
                )
                .field("First", first)
                .on_host(name.clone()),
                s.line,
            );
            return;
        }
        let mut host = self.new_host(&name);
        for e in &s.entries {
            match e.key.as_str() {
                "components" => {
                    if lists_something(&e.value) {
                        self.listed.insert(name.clone());
                    }
                    let list = self.components_list(e);
                    merge_components(&mut host.components, list);
                }
                "ignore" => match crate::component::ConfigValue::from_config(&e.value) {
                    Ok(b) => host.ignore = b,
                    Err(_) => self.invalid(s, e, "expected True or False".into()),
                },
                "platform" => host.platform = non_empty(e.value.clone()),
                "service_user" => host.service_user = non_empty(e.value.clone()),
                "require_sudo" => match crate::component::ConfigValue::from_config(&e.value) {
                    Ok(b) => host.require_sudo = Some(b),
                    Err(_) => self.invalid(s, e, "expected True or False".into()),
                },
                "provisioner" => {
                    self.provision_keys
                        .entry(name.clone())
                        .or_default()
                        .provisioner = Some((e.value.trim().to_string(), e.line))
                }
                "provision-aliases" => {
                    self.provision_keys.entry(name.clone()).or_default().aliases =
                        Some((e.value.clone(), e.line))
                }
                "provision-dynamic-hostname" => {
                    match crate::component::ConfigValue::from_config(&e.value) {
                        Ok(b) => {
                            self.provision_keys.entry(name.clone()).or_default().dynamic =
                                Some((b, e.line))
                        }
                        Err(_) => self.invalid(s, e, "expected True or False".into()),
                    }
                }
                k if k.starts_with("data-") => {
                    host.data
                        .insert(k["data-".len()..].to_string(), e.value.clone());
                }
                _ => self.unknown_key(s, e, &[HOST_KEYS, &["data-*"]].concat()),
            }
        }
        hosts.insert(name, (host, s.line));
    }

    /// batou's list syntax: comma-separated, or one item per line;
    /// items are `[!]name[:feature]`. Unlike batou, commas and newlines
    /// may be mixed.
    fn components_list(&mut self, e: &Entry) -> Vec<RootSpec> {
        let mut out = Vec::new();
        for item in e
            .value
            .split([',', '\n'])
            .map(str::trim)
            .filter(|i| !i.is_empty())
        {
            let (item, ignore) = match item.strip_prefix('!') {
                Some(rest) => (rest.trim(), true),
                None => (item, false),
            };
            let (name, feature) = match item.split_once(':') {
                Some((n, f)) => (n.trim(), Some(f.trim().to_string())),
                None => (item, None),
            };
            let Some(features) = (self.known)(name) else {
                self.error(
                    Report::new("Missing component", order::CONFIGURATION)
                        .field("Component", name.to_string()),
                    e.line,
                );
                continue;
            };
            if let Some(f) = feature.as_deref().filter(|f| !features.contains(f)) {
                let known = if features.is_empty() {
                    "none (a component declares them with #[component(features = [...])])"
                        .to_string()
                } else {
                    features.join(", ")
                };
                self.error(
                    Report::new("Unknown feature", order::CONFIGURATION)
                        .field("Component", name.to_string())
                        .field("Feature", f.to_string())
                        .field("Known features", known),
                    e.line,
                );
                continue;
            }
            out.push(RootSpec {
                name: name.to_string(),
                features: feature.into_iter().collect(),
                ignore,
            });
        }
        out
    }

    fn component_section(&mut self, s: &Section) {
        let name = s.name["component:".len()..].trim().to_string();
        if (self.known)(&name).is_none() {
            self.error(
                Report::new(
                    "Override section for unknown component found",
                    order::CONFIGURATION,
                )
                .field("Component", name),
                s.line,
            );
            return;
        }
        let list = self.env.overrides.entry(name).or_default();
        for e in &s.entries {
            list.push(Override {
                key: e.key.clone(),
                value: e.value.clone(),
                location: self.cfg.location(e.line),
                secret: false,
            });
        }
    }

    /// `sandbox = Developer`, or `sandbox = Map` with `/prefix = /replacement`.
    fn vfs_section(&mut self, s: &Section) {
        for e in &s.entries {
            let ok = match e.key.as_str() {
                "sandbox" => matches!(e.value.as_str(), "Developer" | "Map"),
                k => k.starts_with('/') && e.value.starts_with('/'),
            };
            if ok {
                self.env.vfs.insert(e.key.clone(), e.value.clone());
            } else if e.key == "sandbox" {
                self.invalid(s, e, "expected Developer or Map".into());
            } else {
                self.invalid(
                    s,
                    e,
                    "expected `/prefix = /replacement` (absolute paths)".into(),
                );
            }
        }
        let map_entries = self.env.vfs.keys().any(|k| k.starts_with('/'));
        if map_entries && self.env.vfs.get("sandbox").map(String::as_str) != Some("Map") {
            self.error(
                Report::new(
                    "Invalid section in environment configuration",
                    order::CONFIGURATION,
                )
                .field("Section", "vfs")
                .field("Message", "path mappings need `sandbox = Map`"),
                s.line,
            );
        }
    }

    fn resolver_section(&mut self, s: &Section) {
        for e in &s.entries {
            let mut addrs = Vec::new();
            for a in e.value.split_whitespace() {
                if a.parse::<std::net::IpAddr>().is_ok() {
                    addrs.push(a.to_string());
                } else {
                    self.error(
                        Report::new(format!("Not a valid IP address: {a}"), order::CONFIGURATION)
                            .field("Host", e.key.clone()),
                        e.line,
                    );
                }
            }
            self.env.resolver.insert(e.key.clone(), addrs);
        }
    }
}

fn non_empty(v: String) -> Option<String> {
    if v.trim().is_empty() {
        None
    } else {
        Some(v)
    }
}

/// Whether a components value names anything.
fn lists_something(value: &str) -> bool {
    value.split([',', '\n']).any(|i| !i.trim().is_empty())
}

/// Repeated names merge: features accumulate, one `!` ignores the root.
fn merge_components(into: &mut Vec<RootSpec>, new: Vec<RootSpec>) {
    for spec in new {
        if let Some(existing) = into.iter_mut().find(|r| r.name == spec.name) {
            existing.features.extend(spec.features);
            existing.ignore |= spec.ignore;
        } else {
            into.push(spec);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<Environment, LoadErrors> {
        let cfg = CfgFile::parse("environments/t/environment.cfg", text).unwrap();
        let known = |c: &str| -> Option<&'static [&'static str]> {
            match c {
                "tick" => Some(&["f1", "f2"]),
                "web" | "db" => Some(&[]),
                _ => None,
            }
        };
        Loader::new("t", &cfg, &known).run()
    }

    fn titles(e: LoadErrors) -> Vec<String> {
        e.0.iter().map(|r| r.title.clone()).collect()
    }

    #[test]
    fn defaults_and_hosts() {
        let env = load(
            "[environment]\nhost_domain = example.com\n[hosts]\nb = web, !db\n!a = tick\n[host:c]\ncomponents =\n  tick:f1\n  tick:f2\ndata-alias = x\n",
        )
        .unwrap();
        assert_eq!(env.connect_method, ConnectMethod::Ssh);
        assert_eq!(env.platform.as_deref(), Some("example.com"));
        let names: Vec<_> = env.hosts.iter().map(|h| h.name.as_str()).collect();
        assert_eq!(names, ["a", "b", "c"]);
        assert!(env.hosts[0].ignore);
        assert_eq!(env.hosts[1].fqdn, "b.example.com");
        assert!(env.hosts[1].components[1].ignore);
        assert_eq!(env.hosts[2].components[0].features, ["f1", "f2"]);
        assert_eq!(env.hosts[2].data["alias"], "x");
    }

    fn first_error(text: &str) -> Report {
        load(text).unwrap_err().0.remove(0)
    }

    fn field<'r>(r: &'r Report, key: &str) -> &'r str {
        r.fields
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    }

    #[test]
    fn commented_out_components_and_python_literals_load_as_in_batou() {
        let env = load(
            "[environment]\nrequire_v4 = 1\nrequire_v6 = 0\n[hosts]\nlocalhost =\n    web\n#    tick\n    # db\n    ; tick\n",
        )
        .unwrap();
        assert_eq!(env.require_v4, crate::address::Family::Required);
        assert_eq!(env.require_v6, crate::address::Family::Disabled);
        let host = env.hosts.iter().find(|h| h.name == "localhost").unwrap();
        let names: Vec<&str> = host.components.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["web"]);
        let err =
            load("[environment]\nrequire_v6 = sometimes\n[hosts]\nlocalhost = web\n").unwrap_err();
        assert!(format!("{:?}", err.0[0]).contains("expected True, False or optional"));
    }

    #[test]
    fn keys_batou_knows_are_accepted_and_unused_ones_warned_about() {
        let env = load(
            "[environment]\ndevelop = /opt/batou\nrepository_root = ../..\nrequire_sudo = False\n[hosts]\na = web\n[host:b]\ncomponents = web\nrequire_sudo = True\n",
        )
        .unwrap();
        assert_eq!(
            env.warnings,
            [
                "environments/t/environment.cfg:2: `develop` has no effect: batou 1's path to a development copy of batou; the agent is this executable",
                "environments/t/environment.cfg:3: `repository_root` has no effect: `sync` ships the project directory, git and hg the repository that holds it",
            ]
        );
        assert_eq!(env.require_sudo, Some(false));
        assert_eq!(env.hosts[0].require_sudo, Some(false));
        assert_eq!(env.hosts[1].require_sudo, Some(true));

        let r = first_error("[environment]\nhost_domian = example.com\n[hosts]\na = web\n");
        assert_eq!(r.title, "Unknown key in environment configuration");
        assert_eq!(field(&r, "Did you mean"), "host_domain");
        let r = first_error("[hosts]\na = web\n[host:b]\ncomponents = web\nplatfrom = x\n");
        assert_eq!(field(&r, "Did you mean"), "platform");
        let r = first_error("[hosts]\na = web\n[host:b]\ncomponents = web\nrequire_sudo = maybe\n");
        assert_eq!(field(&r, "Message"), "expected True or False");
        let r = first_error("[hosts]\na = web\n[componnet:web]\nx = 1\n");
        assert_eq!(r.title, "Superfluous section in environment configuration");
        assert_eq!(field(&r, "Did you mean"), "[component:web]");
    }

    #[test]
    fn provisioners_are_typed_and_aliases_named_below_their_host() {
        let text = "[environment]\nhost_domain = fcdev.fcio.net\n[host:dev1]\ncomponents = web\nprovision-dynamic-hostname = True\nprovision-aliases =\n    my\n    api\n[host:dev2]\ncomponents = web\nprovisioner = none\n[provisioner:default]\nmethod = fc-nixos-dev-vm\nhost = largo.fcdev.fcio.net\nmemory = 4096\ncores = 2\nrelease = https://example.com/release.json\n";
        let env = load(text).unwrap();
        let p = &env.provisioners["default"];
        assert_eq!(p.method, crate::provision::ProvisionMethod::FcNixosDevVm);
        assert_eq!(p.host, "largo.fcdev.fcio.net");
        let dev1 = &env.hosts[0];
        assert_eq!(dev1.provisioner.as_deref(), Some("default"));
        assert_eq!(dev1.aliases["api"], "api.dev1.largo.fcdev.fcio.net");
        assert_eq!(env.hosts[1].provisioner, None);
        assert!(
            env.warnings[0]
                .contains("provision-dynamic-hostname: no name for dev1 in hostmap.json"),
            "{:?}",
            env.warnings
        );

        // hostmap.json names the machine of a dynamically named host.
        let cfg = CfgFile::parse("environments/t/environment.cfg", text).unwrap();
        let known = |c: &str| -> Option<&'static [&'static str]> { (c == "web").then_some(&[]) };
        let mut loader = Loader::new("t", &cfg, &known);
        loader.hostmap.insert("dev1".into(), "a1b2c3d4".into());
        let env = loader.run().unwrap();
        assert_eq!(env.hosts[0].fqdn, "a1b2c3d4.fcdev.fcio.net");
        assert_eq!(
            env.hosts[0].aliases["my"],
            "my.a1b2c3d4.largo.fcdev.fcio.net"
        );
        assert!(env.warnings.is_empty(), "{:?}", env.warnings);

        let r = first_error("[hosts]\na = web\n[host:b]\ncomponents = web\nprovisioner = defualt\n[provisioner:default]\nmethod = fc-nixos-dev-container\nhost = largo\n");
        assert_eq!(r.title, "Unknown provisioner in environment configuration");
        assert_eq!(field(&r, "Did you mean"), "default");
        assert_eq!(field(&r, "Location"), "environments/t/environment.cfg:5");
        let r = first_error("[hosts]\na = web\n[provisioner:default]\nmethod = fc-nixos-dev-vm\nhost = largo\nmemroy = 1\n");
        assert_eq!(field(&r, "Did you mean"), "memory");
        let err = load(
            "[hosts]\na = web\n[provisioner:default]\nmethod = fc-nixos-dev-vm\nhost = largo\n",
        )
        .unwrap_err();
        let messages: Vec<&str> = err.0.iter().map(|r| field(r, "Message")).collect();
        assert_eq!(
            messages,
            [
                "missing (fc-nixos-dev-vm needs memory and cores)",
                "missing (fc-nixos-dev-vm needs memory and cores)",
                "either `release` or `hydra-eval` must be set for fc-nixos-dev-vm"
            ]
        );
        let env = load("[host:b]\ncomponents = web\nprovision-aliases = www\n").unwrap();
        assert_eq!(
            env.warnings,
            ["environments/t/environment.cfg:3: provision-aliases of b have no effect without a provisioner (its host names the aliases)"]
        );
    }

    #[test]
    fn careless_values_are_caught_at_load() {
        let r = first_error("[environment]\ntarget_directory = deployment\n[hosts]\na = tick\n");
        assert_eq!(r.title, "Invalid value in environment configuration");
        assert_eq!(field(&r, "Key"), "target_directory");
        assert_eq!(
            field(&r, "Message"),
            "expected an absolute path or one below ~ (the remote user's home), without . or .."
        );
        let r = first_error("[environment]\ntarget_directory = ~/../x\n[hosts]\na = tick\n");
        assert_eq!(field(&r, "Key"), "target_directory");
        let env = load("[environment]\ntarget_directory = /srv/app/\n[hosts]\na = tick\n").unwrap();
        assert_eq!(env.target_directory, "/srv/app");

        let r = first_error("[hosts]\na = tick\n[host:b]\ndata-x = 1\n");
        assert_eq!(r.title, "Host without components");
        assert_eq!(field(&r, "Host"), "b");
        assert_eq!(field(&r, "Location"), "environments/t/environment.cfg:3");

        let r = first_error("[hosts]\na = tick:hourly\n");
        assert_eq!(r.title, "Unknown feature");
        assert_eq!(field(&r, "Feature"), "hourly");
        assert_eq!(field(&r, "Known features"), "f1, f2");
        let r = first_error("[hosts]\na = web:x\n");
        assert_eq!(
            field(&r, "Known features"),
            "none (a component declares them with #[component(features = [...])])"
        );
    }

    #[test]
    fn environment_names_are_plain_directory_names() {
        let project = tempfile::tempdir().unwrap();
        std::fs::write(project.path().join("environment.cfg"), "[hosts]\n").unwrap();
        std::fs::create_dir_all(project.path().join("environments/prod")).unwrap();
        std::fs::write(
            project.path().join("environments/prod/environment.cfg"),
            "[hosts]\n",
        )
        .unwrap();
        for bad in [
            "..",
            ".",
            "",
            "../environments/prod",
            ".hidden",
            "prod/../prod",
        ] {
            let err = Environment::load(project.path(), bad).unwrap_err();
            assert_eq!(err.0[0].title, "Missing environment", "{bad:?}");
            assert_eq!(field(&err.0[0], "Existing environments"), "prod");
        }
    }

    #[test]
    fn all_errors_are_collected_with_locations() {
        let err = load(
            "[environment]\nconnect_method = telnet\nflavour = x\n[hosts]\nlocalhost = tikc\n[host:localhost]\ncomponents = tick\n[component:nope]\na = 1\n[bogus]\n",
        )
        .unwrap_err();
        let t = titles(err.clone());
        assert_eq!(
            t,
            [
                "Invalid value in environment configuration",
                "Unknown key in environment configuration",
                "Missing component",
                "Duplicate definition of host: localhost",
                "Override section for unknown component found",
                "Superfluous section in environment configuration",
            ]
        );
        let loc = |i: usize| {
            err.0[i]
                .fields
                .iter()
                .find(|(k, _)| k == "Location")
                .unwrap()
                .1
                .clone()
        };
        assert_eq!(loc(0), "environments/t/environment.cfg:2");
        assert_eq!(loc(2), "environments/t/environment.cfg:5");
        assert_eq!(loc(5), "environments/t/environment.cfg:10");
    }

    #[test]
    fn vfs_entries_are_checked() {
        let env = load("[vfs]\nsandbox = Map\n/srv = /tmp/srv\n").unwrap();
        assert_eq!(env.vfs["/srv"], "/tmp/srv");
        let err = load("[vfs]\nsandbox = Sandbox\nsrv = x\n").unwrap_err();
        assert_eq!(err.0.len(), 2);
        assert_eq!(
            err.0[0].fields[3],
            (
                "Message".to_string(),
                "expected Developer or Map".to_string()
            )
        );
    }

    #[test]
    fn resolver_rejects_bad_addresses() {
        let err = load("[resolver]\nhost = 10.0.0.1 ::1 banana\n").unwrap_err();
        assert_eq!(titles(err), ["Not a valid IP address: banana"]);
    }
}
