//! systemd: service and timer units from typed fields, installed for the
//! deployment's user (`systemctl --user`) or the system, reloaded,
//! enabled and restarted when they change.
//!
//! ```no_run
//! use batou::prelude::*;
//! use batou_stdlib::systemd::{Restart, Unit};
//!
//! #[component]
//! pub struct MyApp;
//!
//! impl Component for MyApp {
//!     fn configure(&mut self, cx: &mut Configure) -> batou::Result<()> {
//!         cx.add(Unit::new("myapp.service").exec_start("bin/myapp --port 8080").restart(Restart::Always));
//!         cx.add(Unit::new("cleanup.service").exec_start("bin/cleanup").service_type(batou_stdlib::systemd::ServiceType::Oneshot));
//!         cx.add(Unit::new("cleanup.timer").on_calendar("daily"));
//!         Ok(())
//!     }
//! }
//! # fn main() {}
//! ```
//!
//! The unit's kind comes from its name (`.service`, `.timer`). A relative
//! command in `exec_start` is relative to the workdir, which is also the
//! service's working directory. User units live in
//! `~/.config/systemd/user`, system units in `/etc/systemd/system`
//! (installed and controlled through `sudo -n` when the deployment does
//! not run as root). A new or changed unit is checked with
//! `systemd-analyze verify` where the host has it, before it replaces the
//! old one; then `daemon-reload`, `enable` and `restart`. A unit that does
//! not change is left alone, unless it is not enabled or not running, or a
//! component its parent added before it changed (the program it runs).

use crate::checks;
use crate::file::atomic::write_atomic;
use batou::component::{CmdOptions, CmdOutput, ConfigValue, Configure as Setup, ConversionError};
use batou::prelude::{component, Component, Deploy, Error, Result};
use batou::template::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

macro_rules! config_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
        pub enum $name {
            $($(#[$vdoc])* $variant),+
        }

        impl $name {
            /// The word systemd (and environment.cfg) uses.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }

        impl ConfigValue for $name {
            fn from_config(raw: &str) -> std::result::Result<Self, ConversionError> {
                match raw.trim() {
                    $($text => Ok($name::$variant),)+
                    other => Err(ConversionError::new(format!(
                        "{} must be one of {}, not {other:?}",
                        stringify!($name),
                        [$($text),+].join(", ")
                    ))),
                }
            }

            fn to_template(&self) -> Value {
                Value::from(self.as_str())
            }
        }
    };
}

config_enum! {
    /// Whose systemd runs the unit.
    Scope {
        /// The deployment user's own manager (`systemctl --user`).
        #[default]
        User = "user",
        /// The system manager (needs root).
        System = "system",
    }
}

config_enum! {
    /// `Restart=`.
    Restart {
        /// Never restarted.
        No = "no",
        /// After a clean exit.
        OnSuccess = "on-success",
        /// After a failure (exit code, signal, timeout, watchdog).
        #[default]
        OnFailure = "on-failure",
        /// After a signal, timeout or watchdog.
        OnAbnormal = "on-abnormal",
        /// After a watchdog timeout.
        OnWatchdog = "on-watchdog",
        /// After an uncaught signal.
        OnAbort = "on-abort",
        /// Always.
        Always = "always",
    }
}

config_enum! {
    /// `Type=` of a service.
    ServiceType {
        /// Started once exec'd.
        #[default]
        Simple = "simple",
        /// Started once the binary ran.
        Exec = "exec",
        /// Started once the parent exits.
        Forking = "forking",
        /// Runs to completion.
        Oneshot = "oneshot",
        /// Tells systemd when it is ready.
        Notify = "notify",
        /// Like simple, after other jobs.
        Idle = "idle",
    }
}

/// What a unit is, by its name's suffix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Service,
    Timer,
}

impl Kind {
    fn of(name: &str) -> Option<Kind> {
        if name.ends_with(".service") {
            Some(Kind::Service)
        } else if name.ends_with(".timer") {
            Some(Kind::Timer)
        } else {
            None
        }
    }

    fn section(self) -> &'static str {
        match self {
            Kind::Service => "Service",
            Kind::Timer => "Timer",
        }
    }
}

/// Unit names systemd accepts (without templates' empty instances).
fn valid_unit_name(name: &str) -> bool {
    let stem = name.rsplit_once('.').map_or("", |(s, _)| s);
    !stem.is_empty()
        && !name.starts_with('-')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ":_.@-\\".contains(c))
}

/// A systemd service or timer unit.
#[component(namevar = name)]
#[derive(Debug)]
pub struct Unit {
    /// `myapp.service`, `backup.timer`.
    name: String,
    /// `Description=` (default: the name and the deployment's workdir).
    #[attribute]
    description: Option<String>,
    /// `After=` units.
    #[attribute(default = Vec::<String>::new())]
    after: Vec<String>,
    /// `Wants=` units.
    #[attribute(default = Vec::<String>::new())]
    wants: Vec<String>,
    /// `ExecStart=` of a service (required); a relative command is
    /// relative to the workdir.
    #[attribute]
    exec_start: Option<String>,
    /// `ExecReload=`.
    #[attribute]
    exec_reload: Option<String>,
    /// `ExecStop=`.
    #[attribute]
    exec_stop: Option<String>,
    /// `Type=`.
    #[attribute(default = ServiceType::Simple)]
    service_type: ServiceType,
    /// `WorkingDirectory=` (default: the workdir).
    #[attribute]
    working_directory: Option<String>,
    /// `User=` (system units only).
    #[attribute]
    user: Option<String>,
    /// `Group=` (system units only).
    #[attribute]
    group: Option<String>,
    /// `Environment=` pairs.
    #[attribute(default = BTreeMap::<String, String>::new())]
    environment: BTreeMap<String, String>,
    /// `Restart=`.
    #[attribute(default = Restart::OnFailure)]
    restart: Restart,
    /// `RestartSec=` in seconds.
    #[attribute]
    restart_sec: Option<u64>,
    /// `OnCalendar=` of a timer.
    #[attribute]
    on_calendar: Option<String>,
    /// `Persistent=` of a timer: catch up on runs missed while down.
    #[attribute(default = false)]
    persistent: bool,
    /// More keys of the `[Service]` or `[Timer]` section.
    #[attribute(default = BTreeMap::<String, String>::new())]
    options: BTreeMap<String, String>,
    /// `WantedBy=` (default: `default.target` for user services,
    /// `multi-user.target` for system services, `timers.target` for
    /// timers).
    #[attribute(default = Vec::<String>::new())]
    wanted_by: Vec<String>,
    /// `user` or `system`.
    #[attribute(default = Scope::User)]
    scope: Scope,
    /// Enabled and running (false: disabled and stopped).
    #[attribute(default = true)]
    enable: bool,
    /// The rendered unit and where it goes, after configure.
    text: String,
    path: PathBuf,
}

impl Unit {
    /// The unit's text (after configure).
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Where the unit file is installed (after configure).
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn kind(&self) -> Result<Kind> {
        Kind::of(&self.name).ok_or_else(|| {
            Error::usage(format!(
                "Unit({}): the name must end in .service or .timer",
                self.name
            ))
        })
    }

    fn check(&self, kind: Kind) -> Result<()> {
        if !valid_unit_name(&self.name) {
            return Err(Error::usage(format!(
                "Unit: {:?} is not a systemd unit name",
                self.name
            )));
        }
        let what = format!("Unit({})", self.name);
        let values = [
            &self.description,
            &self.exec_start,
            &self.exec_reload,
            &self.exec_stop,
            &self.working_directory,
            &self.user,
            &self.group,
            &self.on_calendar,
        ];
        let lists = self.after.iter().chain(&self.wants).chain(&self.wanted_by);
        let environment = self.environment.iter().flat_map(|(k, v)| [k, v]);
        checks::one_line(
            &what,
            values
                .iter()
                .flat_map(|v| v.as_deref())
                .chain(lists.chain(environment).map(String::as_str)),
        )?;
        checks::options(&what, &self.options)?;
        if self
            .environment
            .keys()
            .any(|k| k.is_empty() || !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
        {
            return Err(Error::usage(format!(
                "{what}: environment variable names are letters, digits and `_`"
            )));
        }
        if self.scope == Scope::User && (self.user.is_some() || self.group.is_some()) {
            return Err(Error::usage(format!(
                "{what}: `user` and `group` are for system units; a user unit runs as the deployment's user"
            )));
        }
        match kind {
            Kind::Service
                if self
                    .exec_start
                    .as_deref()
                    .is_none_or(|c| c.trim().is_empty()) =>
            {
                Err(Error::usage(format!(
                    "{what}: a service needs `exec_start`"
                )))
            }
            Kind::Timer
                if self.on_calendar.is_none()
                    && !self.options.keys().any(|k| k.starts_with("On")) =>
            {
                Err(Error::usage(format!(
                    "{what}: a timer needs `on_calendar` (or an On… option such as OnBootSec)"
                )))
            }
            _ => Ok(()),
        }
    }

    /// A command whose program is a relative path runs from `workdir`.
    fn absolute_command(command: &str, workdir: &Path) -> String {
        let command = command.trim();
        let (program, rest) = command.split_once(' ').unwrap_or((command, ""));
        if program.contains('/') && !program.starts_with('/') {
            let program = workdir.join(program);
            format!("{} {rest}", program.display())
                .trim_end()
                .to_string()
        } else {
            command.to_string()
        }
    }

    fn render(&self, kind: Kind, workdir: &Path) -> String {
        let mut unit = vec![format!(
            "Description={}",
            self.description.clone().unwrap_or_else(|| format!(
                "{} ({})",
                self.name,
                workdir.display()
            ))
        )];
        unit.extend(self.after.iter().map(|a| format!("After={a}")));
        unit.extend(self.wants.iter().map(|w| format!("Wants={w}")));
        let mut main = Vec::new();
        match kind {
            Kind::Service => {
                main.push(format!("Type={}", self.service_type.as_str()));
                for (key, value) in [
                    ("ExecStart", &self.exec_start),
                    ("ExecReload", &self.exec_reload),
                    ("ExecStop", &self.exec_stop),
                ] {
                    if let Some(command) = value {
                        main.push(format!(
                            "{key}={}",
                            Self::absolute_command(command, workdir)
                        ));
                    }
                }
                let directory = self
                    .working_directory
                    .clone()
                    .unwrap_or_else(|| workdir.display().to_string());
                main.push(format!("WorkingDirectory={directory}"));
                if let Some(user) = &self.user {
                    main.push(format!("User={user}"));
                }
                if let Some(group) = &self.group {
                    main.push(format!("Group={group}"));
                }
                for (k, v) in &self.environment {
                    main.push(format!("Environment=\"{k}={}\"", v.replace('"', "\\\"")));
                }
                main.push(format!("Restart={}", self.restart.as_str()));
                if let Some(sec) = self.restart_sec {
                    main.push(format!("RestartSec={sec}"));
                }
            }
            Kind::Timer => {
                if let Some(calendar) = &self.on_calendar {
                    main.push(format!("OnCalendar={calendar}"));
                }
                if self.persistent {
                    main.push("Persistent=true".to_string());
                }
            }
        }
        main.extend(self.options.iter().map(|(k, v)| format!("{k}={v}")));
        let wanted_by = if self.wanted_by.is_empty() {
            vec![match (kind, self.scope) {
                (Kind::Timer, _) => "timers.target".to_string(),
                (Kind::Service, Scope::User) => "default.target".to_string(),
                (Kind::Service, Scope::System) => "multi-user.target".to_string(),
            }]
        } else {
            self.wanted_by.clone()
        };
        let install: Vec<String> = wanted_by.iter().map(|w| format!("WantedBy={w}")).collect();
        format!(
            "# Generated by batou. Do not edit.\n[Unit]\n{}\n\n[{}]\n{}\n\n[Install]\n{}\n",
            unit.join("\n"),
            kind.section(),
            main.join("\n"),
            install.join("\n")
        )
    }

    /// A system unit deployed by a user other than root: files and
    /// `systemctl` go through `sudo -n`.
    fn through_sudo(&self) -> bool {
        // SAFETY: geteuid has no preconditions.
        self.scope == Scope::System && unsafe { libc::geteuid() } != 0
    }

    /// Runs `program args`, through `sudo -n` for a system unit when not
    /// root; sudo wanting a password is an error saying what to allow.
    fn privileged(
        &self,
        cx: &Deploy,
        program: &str,
        args: &[&str],
        options: CmdOptions,
    ) -> Result<CmdOutput> {
        if !self.through_sudo() {
            return cx.run(program, args, options);
        }
        let mut all = vec!["-n", program];
        all.extend_from_slice(args);
        match cx.run("sudo", &all, options) {
            Err(Error::Cmd(e)) if e.stderr.contains("password is required") => {
                Err(Error::failed(format!(
                "cannot install the system unit {} on {}: `sudo -n` needs a password; allow the \
                 deployment user passwordless sudo for systemctl and install, or use scope = user",
                self.name,
                cx.host_name()
            )))
            }
            other => other,
        }
    }

    fn systemctl(&self, cx: &Deploy, args: &[&str], ignore_returncode: bool) -> Result<String> {
        let mut all: Vec<&str> = Vec::new();
        if self.scope == Scope::User {
            all.push("--user");
        }
        all.extend_from_slice(args);
        let options = CmdOptions {
            ignore_returncode,
            env: user_bus_env(self.scope),
            ..CmdOptions::default()
        };
        // Queries need no privileges.
        let out = if args.first().is_some_and(|a| a.starts_with("is-")) {
            cx.run("systemctl", &all, options)?
        } else {
            self.privileged(cx, "systemctl", &all, options)?
        };
        Ok(out.stdout.trim().to_string())
    }

    /// Checks the new text (`systemd-analyze verify` of a private copy
    /// under the unit's own name, where the host has systemd-analyze) and
    /// installs it: atomically, or with `sudo -n install` for a system
    /// unit when not root.
    fn install(&self, cx: &Deploy) -> Result<()> {
        let dir =
            std::env::temp_dir().join(format!(".batou-unit-{}-{}", std::process::id(), self.name));
        let candidate = dir.join(&self.name);
        let written = (|| {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new().mode(0o700).create(&dir)?;
            write_atomic(&candidate, self.text.as_bytes(), Some(0o644))
        })()
        .map_err(|e| Error::io(format!("writing {}", candidate.display()), e));
        let result = written
            .and_then(|()| self.analyze(cx, &candidate))
            .and_then(|()| self.put_in_place(cx, &candidate));
        let _ = std::fs::remove_dir_all(&dir);
        result
    }

    fn put_in_place(&self, cx: &Deploy, candidate: &Path) -> Result<()> {
        if self.through_sudo() {
            let target = self.path.to_string_lossy().into_owned();
            let source = candidate.to_string_lossy().into_owned();
            self.privileged(
                cx,
                "install",
                &[
                    "-m", "0644", "-o", "root", "-g", "root", "--", &source, &target,
                ],
                CmdOptions::default(),
            )?;
            return Ok(());
        }
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
        }
        write_atomic(&self.path, self.text.as_bytes(), Some(0o644))
            .map_err(|e| Error::io(format!("writing {}", self.path.display()), e))
    }

    fn analyze(&self, cx: &Deploy, candidate: &Path) -> Result<()> {
        if !on_path("systemd-analyze") {
            return Ok(());
        }
        let file = candidate.to_string_lossy().into_owned();
        let out = cx.run(
            "systemd-analyze",
            &["verify", "--man=no", &file],
            CmdOptions {
                ignore_returncode: true,
                ..CmdOptions::default()
            },
        )?;
        // Other units named in After=/Wants= may not exist here: only
        // complaints about this file count.
        let complaints: Vec<&str> = out
            .stderr
            .lines()
            .filter(|l| l.contains(&self.name) || l.contains(file.as_str()))
            .collect();
        // systemd ignores a key it does not know or cannot parse: a typo
        // that would silently change what runs, so it is refused too.
        let ignored = complaints.iter().any(|l| l.contains("ignoring"));
        if (out.returncode != Some(0) || ignored) && !complaints.is_empty() {
            return Err(Error::Failed(format!(
                "systemd rejects {}:\n{}",
                self.name,
                complaints
                    .iter()
                    .map(|l| l.replace(file.as_str(), &self.path.to_string_lossy()))
                    .collect::<Vec<_>>()
                    .join("\n")
            )));
        }
        Ok(())
    }
}

/// `systemctl --user` finds the user's manager through XDG_RUNTIME_DIR,
/// which a non-login session (ssh with a command) may lack.
fn user_bus_env(scope: Scope) -> Vec<(String, String)> {
    if scope == Scope::System || std::env::var_os("XDG_RUNTIME_DIR").is_some() {
        return Vec::new();
    }
    // SAFETY: getuid has no preconditions.
    let uid = unsafe { libc::getuid() };
    vec![("XDG_RUNTIME_DIR".into(), format!("/run/user/{uid}"))]
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|d| d.join(program).is_file()))
}

impl Component for Unit {
    fn configure(&mut self, cx: &mut Setup) -> Result<()> {
        let kind = self.kind()?;
        self.check(kind)?;
        let workdir = cx.workdir().to_path_buf();
        self.text = self.render(kind, &workdir);
        self.path = match self.scope {
            Scope::User => cx.map("~/.config/systemd/user"),
            Scope::System => PathBuf::from("/etc/systemd/system"),
        }
        .join(&self.name);
        Ok(())
    }

    fn verify(&mut self, cx: &mut Deploy) -> Result<()> {
        let installed = std::fs::read_to_string(&self.path).ok();
        if installed.as_deref() != Some(self.text.as_str()) {
            return Err(Error::update_needed(format!(
                "{} is not current",
                self.path.display()
            )));
        }
        if cx.earlier_siblings_changed() && self.enable {
            return Err(Error::update_needed("what it runs changed"));
        }
        let enabled = self.systemctl(cx, &["is-enabled", &self.name], true)? == "enabled";
        let active = self.systemctl(cx, &["is-active", &self.name], true)? == "active";
        if enabled != self.enable || active != self.enable {
            return Err(Error::update_needed(format!(
                "{} is {}enabled and {}active",
                self.name,
                if enabled { "" } else { "not " },
                if active { "" } else { "not " }
            )));
        }
        Ok(())
    }

    fn update(&mut self, cx: &mut Deploy) -> Result<()> {
        let installed = std::fs::read_to_string(&self.path).ok();
        if installed.as_deref() != Some(self.text.as_str()) {
            self.install(cx)?;
        }
        self.systemctl(cx, &["daemon-reload"], false)?;
        if self.enable {
            self.systemctl(cx, &["enable", &self.name], false)?;
            self.systemctl(cx, &["restart", &self.name], false)?;
        } else {
            self.systemctl(cx, &["disable", "--now", &self.name], false)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_programs_run_from_the_workdir() {
        let w = Path::new("/srv/app");
        assert_eq!(
            Unit::absolute_command("bin/app --x 1", w),
            "/srv/app/bin/app --x 1"
        );
        assert_eq!(Unit::absolute_command("./run", w), "/srv/app/./run");
        assert_eq!(
            Unit::absolute_command("/usr/bin/env a", w),
            "/usr/bin/env a"
        );
        assert_eq!(Unit::absolute_command("sleep 10", w), "sleep 10");
    }

    #[test]
    fn names_and_enums_come_from_their_words() {
        assert!(valid_unit_name("myapp.service"));
        assert!(valid_unit_name("worker@1.service"));
        assert!(!valid_unit_name(".service"));
        assert!(!valid_unit_name("my app.service"));
        assert_eq!(Restart::from_config("always").unwrap(), Restart::Always);
        assert_eq!(Scope::from_config(" system ").unwrap(), Scope::System);
        assert_eq!(
            ServiceType::from_config("daemon").unwrap_err().to_string(),
            ConversionError::new(
                "ServiceType must be one of simple, exec, forking, oneshot, notify, idle, not \"daemon\""
            )
            .to_string()
        );
    }
}
