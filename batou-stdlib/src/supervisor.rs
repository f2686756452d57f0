//! supervisor: a supervisord for the deployment and the programs it runs
//! (batou.lib.supervisor).
//!
//! ```no_run
//! use batou::prelude::*;
//! use batou_stdlib::python::{Package, VirtualEnv};
//! use batou_stdlib::supervisor::Program;
//!
//! #[component]
//! pub struct MyApp;
//!
//! impl Component for MyApp {
//!     fn configure(&mut self, cx: &mut Configure) -> batou::Result<()> {
//!         cx.add(VirtualEnv::new("3").package(Package::new("myapp").version("1.0")));
//!         cx.add(Program::new("myapp", "bin/myapp"));
//!         Ok(())
//!     }
//! }
//! # fn main() {}
//! ```
//!
//! with `supervisor` as another root on the same host (`[hosts] web1 =
//! myapp, supervisor`). [`Supervisor`] installs supervisor with pip into a
//! virtual environment in its workdir (batou builds it with zc.buildout;
//! the layout is the same: `bin/supervisord`, `bin/supervisorctl`,
//! `etc/supervisord.conf`, `etc/supervisor.d/*.conf`, `var/log/`), starts
//! supervisord and reloads it when its installation or configuration
//! changed. It provides [`SUPERVISOR`] to the programs of its host.
//!
//! A [`Program`] writes its section into `etc/supervisor.d/<name>.conf`,
//! and is restarted (`supervisorctl reread`, `update`, `restart`) when that
//! file or a component its parent added before it (the package it runs)
//! changed, or when it is not running. It must reach RUNNING within
//! `startsecs`, else the deployment fails with the tail of its log.

use crate::checks;
use crate::file::{Directory, File};
use crate::logrotate::RotatedLogfile;
use crate::nagios::ServiceCheck;
use crate::python::{Package, VirtualEnv};
use batou::address::NetLoc;
use batou::component::{CmdOptions, ConfigValue, Configure as Setup, ConversionError, EventScope};
use batou::prelude::{component, Component, Deploy, Error, RequireOptions, Resource, Result};
use batou::template::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Whether a program keeps running while its dependencies are deployed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeploymentMode {
    /// It keeps running; restarted after the change.
    #[default]
    Hot,
    /// It is stopped before a component before it is updated.
    Cold,
}

impl ConfigValue for DeploymentMode {
    fn from_config(raw: &str) -> std::result::Result<Self, ConversionError> {
        match raw.trim() {
            "hot" => Ok(DeploymentMode::Hot),
            "cold" => Ok(DeploymentMode::Cold),
            other => Err(ConversionError::new(format!(
                "deployment mode must be `hot` or `cold`, not {other:?}"
            ))),
        }
    }

    fn to_template(&self) -> Value {
        Value::from(match self {
            DeploymentMode::Hot => "hot",
            DeploymentMode::Cold => "cold",
        })
    }
}

/// What a host's [`Supervisor`] tells its programs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SupervisorInfo {
    /// The supervisor's workdir (`bin/supervisorctl` lives there).
    pub workdir: PathBuf,
    /// Where programs put their sections.
    pub program_config_dir: PathBuf,
    /// Where programs log.
    pub logdir: PathBuf,
    /// `etc/supervisord.conf`.
    pub config: PathBuf,
    /// Whether supervisord runs at all.
    pub enable: bool,
    /// Whether programs wait for RUNNING.
    pub wait_for_running: bool,
    /// The programs' default deployment mode.
    pub deployment_mode: DeploymentMode,
}

impl SupervisorInfo {
    fn ctl(&self, cx: &Deploy, args: &[&str], ignore_returncode: bool) -> Result<String> {
        let ctl = self.workdir.join("bin").join("supervisorctl");
        let config = self.config.to_string_lossy().into_owned();
        let mut all = vec!["-c", config.as_str()];
        all.extend_from_slice(args);
        let out = cx.run(
            &ctl.to_string_lossy(),
            &all,
            CmdOptions {
                ignore_returncode,
                cwd: Some(self.workdir.clone()),
                ..CmdOptions::default()
            },
        )?;
        Ok(out.stdout)
    }

    /// supervisord's pid, when it answers.
    fn pid(&self, cx: &Deploy) -> Option<u32> {
        if !self.workdir.join("bin").join("supervisorctl").exists() {
            return None;
        }
        let out = self.ctl(cx, &["pid"], true).ok()?;
        out.trim().parse::<u32>().ok().filter(|p| *p > 0)
    }

    /// Waits until supervisord answers, up to `timeout`.
    fn wait_for_master(&self, cx: &Deploy, timeout: Duration) -> Result<()> {
        let started = Instant::now();
        while started.elapsed() < timeout {
            if self.pid(cx).is_some() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        Err(Error::Failed(format!(
            "supervisord did not answer within {} seconds; the end of {}:\n{}",
            timeout.as_secs(),
            self.logdir.join("supervisord.log").display(),
            tail(&self.logdir.join("supervisord.log"), 20)
        )))
    }
}

/// The last `n` lines of a file (or a note that it cannot be read).
fn tail(path: &Path, n: usize) -> String {
    match std::fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let lines: Vec<&str> = text.lines().collect();
            lines[lines.len().saturating_sub(n)..].join("\n")
        }
        Err(e) => format!("({} cannot be read: {e})", path.display()),
    }
}

/// The resource every [`Program`] requires on its host.
pub const SUPERVISOR: Resource<SupervisorInfo> = Resource::new("supervisor");

/// The newest setuptools that has `pkg_resources` without warning about it
/// on every `supervisorctl` (80 prints a UserWarning, 81 dropped it).
pub const SETUPTOOLS: &str = "79.0.1";

/// How long a reload or start may take until supervisord answers.
const MASTER_TIMEOUT: Duration = Duration::from_secs(60);

/// supervisord for the deployment's programs.
#[component]
#[derive(Debug)]
pub struct Supervisor {
    /// The supervisor release pip installs.
    #[attribute(default = "4.2.5")]
    version: String,
    /// The setuptools release installed with it: supervisor 4.2 imports
    /// `pkg_resources`, which setuptools 81 and later no longer have (a
    /// venv of Python 3.12 or newer has no setuptools of its own, and pip
    /// would fetch the newest). batou pins it for the same reason.
    #[attribute(default = SETUPTOOLS)]
    setuptools: String,
    /// The Python version of its environment.
    #[attribute(default = "3")]
    python: String,
    /// More pip arguments for installing it (`--no-index`,
    /// `--find-links=/srv/wheels`).
    #[attribute(default = Vec::<String>::new())]
    install_options: Vec<String>,
    /// Variables for pip.
    #[attribute(default = BTreeMap::<String, String>::new())]
    env: BTreeMap<String, String>,
    /// Also serve supervisor's HTTP interface here (`localhost:9001`);
    /// by default only the Unix socket.
    #[attribute]
    address: Option<NetLoc>,
    /// supervisord's log level.
    #[attribute(default = "info")]
    loglevel: String,
    /// Whether supervisord runs (false: it is shut down).
    #[attribute(default = true)]
    enable: bool,
    /// The programs' default deployment mode (`hot` or `cold`).
    #[attribute(default = DeploymentMode::Hot)]
    deployment_mode: DeploymentMode,
    /// Seconds to wait after starting or reloading supervisord.
    #[attribute(default = 0)]
    max_startup_delay: u64,
    /// Whether programs wait until they are RUNNING.
    #[attribute(default = true)]
    wait_for_running: bool,
    /// The pid file (relative to the workdir).
    #[attribute(default = "supervisord.pid")]
    pidfile: String,
    /// The control socket (default: `<workdir>/supervisor.sock`).
    #[attribute]
    socketpath: Option<String>,
    /// Rotate `var/log/*.log` (with the host's `Logrotate`).
    #[attribute(default = false)]
    logrotate: bool,
    /// A Nagios check of the programs' states (NRPE).
    #[attribute(default = false)]
    nagios: bool,
    /// Contact groups of that check.
    #[attribute]
    check_contact_groups: Option<String>,
}

impl Supervisor {
    fn config_text(&self, workdir: &Path, pidfile: &Path, socket: &str) -> String {
        let w = workdir.display();
        let mut text = format!(
            "[supervisord]\n\
             childlogdir = {w}/var/log\n\
             logfile = {w}/var/log/supervisord.log\n\
             logfile_maxbytes = 0\n\
             logfile_backups = 0\n\
             loglevel = {}\n\
             pidfile = {}\n\
             umask = 022\n\
             nodaemon = false\n\
             nocleanup = false\n\
             \n\
             [unix_http_server]\n\
             file = {socket}\n\
             chmod = 0770\n\
             username =\n\
             password =\n\
             \n",
            self.loglevel,
            pidfile.display()
        );
        if let Some(address) = &self.address {
            text.push_str(&format!("[inet_http_server]\nport = {address}\n\n"));
        }
        text.push_str(&format!(
            "[supervisorctl]\n\
             serverurl = unix://{socket}\n\
             username =\n\
             password =\n\
             \n\
             [rpcinterface:supervisor]\n\
             supervisor.rpcinterface_factory=supervisor.rpcinterface:make_main_rpcinterface\n\
             \n\
             [include]\n\
             files = {w}/etc/supervisor.d/*.conf\n"
        ));
        text
    }
}

/// A Nagios plugin: CRITICAL unless every program is RUNNING.
fn check_script(workdir: &Path) -> String {
    format!(
        "#!/bin/sh\n\
         # Written by batou: the states of supervisor's programs.\n\
         out=$('{}/bin/supervisorctl' -c '{}/etc/supervisord.conf' status 2>&1)\n\
         bad=$(printf '%s\\n' \"$out\" | grep -v ' RUNNING ' | grep -v '^$')\n\
         if [ -n \"$bad\" ]; then\n\
         \x20   echo \"CRITICAL - $bad\"\n\
         \x20   exit 2\n\
         fi\n\
         echo \"OK - all programs are running\"\n\
         exit 0\n",
        workdir.display(),
        workdir.display()
    )
}

fn one_line(what: &str, value: &str) -> Result<()> {
    checks::one_line(what, [value])
}

impl Component for Supervisor {
    fn configure(&mut self, cx: &mut Setup) -> Result<()> {
        let workdir = cx.workdir().to_path_buf();
        for (what, value) in [("loglevel", &self.loglevel), ("pidfile", &self.pidfile)] {
            one_line(&format!("Supervisor {what}"), value)?;
        }
        if self.address.as_ref().is_some_and(|a| a.port.is_none()) {
            return Err(Error::usage(
                "Supervisor: `address` needs a port (localhost:9001)",
            ));
        }
        let pidfile = cx.map(&self.pidfile);
        let socket = match self.socketpath.as_deref().filter(|s| !s.is_empty()) {
            Some(s) => cx.map(s),
            None => workdir.join("supervisor.sock"),
        };
        let socket = socket.to_string_lossy().into_owned();
        one_line("Supervisor socketpath", &socket)?;
        let info = SupervisorInfo {
            workdir: workdir.clone(),
            program_config_dir: workdir.join("etc/supervisor.d"),
            logdir: workdir.join("var/log"),
            config: workdir.join("etc/supervisord.conf"),
            enable: self.enable,
            wait_for_running: self.wait_for_running,
            deployment_mode: self.deployment_mode,
        };
        cx.provide(&SUPERVISOR, info.clone())?;
        cx.add(
            VirtualEnv::new(self.python.clone())
                .package(
                    Package::new("setuptools")
                        .version(self.setuptools.clone())
                        .install_options(self.install_options.clone())
                        .env(self.env.clone()),
                )
                .package(
                    Package::new("supervisor")
                        .version(self.version.clone())
                        .install_options(self.install_options.clone())
                        .env(self.env.clone()),
                ),
        );
        cx.add(Directory::new("etc/supervisor.d").leading(true));
        cx.add(Directory::new("var/log").leading(true));
        cx.add(
            File::new("etc/supervisord.conf")
                .content(self.config_text(&workdir, &pidfile, &socket)),
        );
        if self.logrotate {
            cx.add(RotatedLogfile::new("var/log/*.log").postrotate(format!(
                "kill -USR2 $({}/bin/supervisorctl -c {}/etc/supervisord.conf pid)",
                workdir.display(),
                workdir.display()
            )));
        }
        if self.nagios {
            cx.add(
                File::new("check_supervisor")
                    .mode(0o755)
                    .content(check_script(&workdir)),
            );
            cx.add(
                ServiceCheck::new("Supervisor programs")
                    .nrpe(true)
                    .contact_groups(self.check_contact_groups.clone())
                    .command(
                        workdir
                            .join("check_supervisor")
                            .to_string_lossy()
                            .into_owned(),
                    ),
            );
        }
        if self.enable {
            cx.add(
                RunningSupervisor::new(pidfile.to_string_lossy().into_owned())
                    .max_startup_delay(self.max_startup_delay)
                    .wait_for_running(self.wait_for_running),
            );
            // Started at boot where the host's platform knows how
            // (`platform = debian`: an @reboot cron job).
            cx.add(
                crate::service::Service::new("bin/supervisord")
                    .pidfile(pidfile.to_string_lossy().into_owned()),
            );
        } else {
            cx.add(StoppedSupervisor::new());
        }
        Ok(())
    }
}

fn info_of(cx: &Deploy) -> SupervisorInfo {
    let workdir = cx.workdir().to_path_buf();
    SupervisorInfo {
        program_config_dir: workdir.join("etc/supervisor.d"),
        logdir: workdir.join("var/log"),
        config: workdir.join("etc/supervisord.conf"),
        workdir,
        enable: true,
        wait_for_running: true,
        deployment_mode: DeploymentMode::Hot,
    }
}

/// supervisord runs, started after its installation and reloaded after
/// its configuration changed. Added by [`Supervisor`].
#[component(namevar = pidfile)]
#[derive(Debug)]
pub struct RunningSupervisor {
    /// The pid file.
    pidfile: String,
    /// Seconds to wait after a start or reload.
    #[attribute(default = 0)]
    max_startup_delay: u64,
    /// Whether to wait that delay.
    #[attribute(default = true)]
    wait_for_running: bool,
}

impl Component for RunningSupervisor {
    fn verify(&mut self, cx: &mut Deploy) -> Result<()> {
        if cx.earlier_siblings_changed() {
            return Err(Error::update_needed(
                "supervisor's installation or configuration changed",
            ));
        }
        let workdir = cx.workdir().to_path_buf();
        cx.assert_file_is_current(
            &self.pidfile,
            &[
                &workdir.join("bin/supervisord"),
                &workdir.join("etc/supervisord.conf"),
            ],
        )?;
        if info_of(cx).pid(cx).is_none() {
            return Err(Error::update_needed("supervisord is not running"));
        }
        Ok(())
    }

    fn update(&mut self, cx: &mut Deploy) -> Result<()> {
        let info = info_of(cx);
        if info.pid(cx).is_some() {
            info.ctl(cx, &["reload"], false)?;
            // A reload answers before supervisord has restarted.
            std::thread::sleep(Duration::from_millis(500));
        } else {
            let config = info.config.to_string_lossy().into_owned();
            cx.run(
                &info.workdir.join("bin/supervisord").to_string_lossy(),
                &["-c", config.as_str()],
                CmdOptions {
                    cwd: Some(info.workdir.clone()),
                    starts_daemon: true,
                    ..CmdOptions::default()
                },
            )?;
        }
        info.wait_for_master(cx, MASTER_TIMEOUT)?;
        if self.wait_for_running {
            std::thread::sleep(Duration::from_secs(self.max_startup_delay));
        }
        Ok(())
    }

    fn breadcrumb(&self, _cx: &Setup) -> Option<String> {
        None
    }
}

/// supervisord is not running (`Supervisor(enable = false)`).
#[component]
#[derive(Debug)]
pub struct StoppedSupervisor;

impl Component for StoppedSupervisor {
    fn verify(&mut self, cx: &mut Deploy) -> Result<()> {
        if info_of(cx).pid(cx).is_some() {
            return Err(Error::update_needed("supervisord is running"));
        }
        Ok(())
    }

    fn update(&mut self, cx: &mut Deploy) -> Result<()> {
        info_of(cx).ctl(cx, &["shutdown"], false)?;
        Ok(())
    }
}

/// What a program's section is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Program,
    Eventlistener,
}

/// The parts [`Program`] and [`Eventlistener`] share.
#[derive(Debug, Clone)]
struct Spec {
    kind: Kind,
    name: String,
    command: String,
    args: String,
    options: BTreeMap<String, String>,
    priority: i64,
    directory: String,
    enable: bool,
    deployment: DeploymentMode,
    events: Vec<String>,
    supervisor: SupervisorInfo,
    stopped_for_cold: bool,
}

/// `a/./b/../c` → `a/c`, without looking at the disk (`os.path.normpath`).
fn normpath(path: &Path) -> PathBuf {
    use std::path::Component as Part;
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Part::CurDir => {}
            Part::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
}

impl Spec {
    fn label(&self) -> &'static str {
        match self.kind {
            Kind::Program => "Program",
            Kind::Eventlistener => "Eventlistener",
        }
    }

    fn check(&self) -> Result<()> {
        if !valid_name(&self.name) {
            return Err(Error::usage(format!(
                "{}: {:?} is not a supervisor program name (letters, digits, `.`, `_`, `-`)",
                self.label(),
                self.name
            )));
        }
        let what = format!("{}({})", self.label(), self.name);
        let values = [&self.command, &self.args, &self.directory].into_iter();
        checks::one_line(&what, values.chain(&self.events).map(String::as_str))?;
        checks::options(&what, &self.options)
    }

    /// Where its output goes: var/log/<name>.log of the supervisor, or the
    /// `stderr_logfile` an event listener's options name.
    fn log(&self) -> PathBuf {
        match (self.kind, self.options.get("stderr_logfile")) {
            (Kind::Eventlistener, Some(file)) => PathBuf::from(file),
            _ => self.supervisor.logdir.join(format!("{}.log", self.name)),
        }
    }

    fn startsecs(&self) -> u64 {
        self.options
            .get("startsecs")
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(5)
    }

    fn section(&self) -> String {
        let command = format!("{} {}", self.command, self.args);
        let command = command.trim_end();
        let mut text = match self.kind {
            Kind::Program => {
                let log = self.supervisor.logdir.join(format!("{}.log", self.name));
                let log = log.display();
                format!(
                    "[program:{name}]\n\
                     command = {command}\n\
                     process_name = {name}\n\
                     directory = {dir}\n\
                     priority = {prio}\n\
                     stderr_logfile = {log}\n\
                     stderr_logfile_backups = 0\n\
                     stderr_logfile_maxbytes = 0\n\
                     stdout_logfile = {log}\n\
                     stdout_logfile_backups = 0\n\
                     stdout_logfile_maxbytes = 0\n\
                     redirect_stderr = true\n",
                    name = self.name,
                    dir = self.directory,
                    prio = self.priority,
                )
            }
            // Its stdout speaks supervisor's protocol; stderr goes to its
            // log (`stderr_logfile`, by default var/log/<name>.log).
            Kind::Eventlistener => format!(
                "[eventlistener:{name}]\n\
                 command = {command}\n\
                 events = {events}\n\
                 process_name={name}\n\
                 directory = {dir}\n\
                 priority = {prio}\n",
                name = self.name,
                events = self.events.join(","),
                dir = self.directory,
                prio = self.priority,
            ),
        };
        for (k, v) in &self.options {
            text.push_str(&format!("{k} = {v}\n"));
        }
        text
    }

    fn status(&self, cx: &Deploy) -> Result<String> {
        self.supervisor.ctl(cx, &["status", &self.name], true)
    }

    fn is_running(&self, cx: &Deploy) -> bool {
        self.supervisor.workdir.join("bin/supervisorctl").exists()
            && self.status(cx).is_ok_and(|s| s.contains("RUNNING"))
    }

    fn verify(&self, cx: &Deploy) -> Result<()> {
        if !self.supervisor.enable {
            return Ok(());
        }
        if cx.earlier_siblings_changed() {
            return Err(Error::update_needed("a component it depends on changed"));
        }
        cx.assert_no_subcomponent_changes()?;
        let running = self.is_running(cx);
        match (self.enable, running) {
            (true, false) => Err(Error::update_needed("it is not running")),
            (false, true) => Err(Error::update_needed("it is running but disabled")),
            _ => Ok(()),
        }
    }

    fn update(&self, cx: &Deploy) -> Result<()> {
        if !self.supervisor.enable {
            return Ok(());
        }
        self.supervisor.ctl(cx, &["reread"], false)?;
        self.supervisor.ctl(cx, &["update"], false)?;
        if !self.enable {
            if self.is_running(cx) {
                self.supervisor.ctl(cx, &["stop", &self.name], false)?;
            }
            return Ok(());
        }
        // restart waits for startsecs itself and answers an error when the
        // program does not come up; the state below is what counts.
        self.supervisor.ctl(cx, &["restart", &self.name], true)?;
        if !self.supervisor.wait_for_running {
            return Ok(());
        }
        let deadline = Instant::now() + Duration::from_secs(self.startsecs() + 2);
        loop {
            if self.is_running(cx) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        let log = self.log();
        Err(Error::Failed(format!(
            "{} \"{}\" did not start up ({}); the end of {}:\n{}",
            self.label(),
            self.name,
            self.status(cx).unwrap_or_default().trim(),
            log.display(),
            tail(&log, 20)
        )))
    }

    fn stop_for_cold(&mut self, cx: &Deploy) {
        if self.stopped_for_cold || !self.is_running(cx) {
            return;
        }
        self.stopped_for_cold = true;
        cx.log(format!("☣ Stopping {} for cold deployment", self.name));
        let _ = self.supervisor.ctl(cx, &["stop", &self.name], true);
    }
}

/// A program supervisor runs, with its output in `var/log/<name>.log` of
/// the supervisor.
#[component(namevar = name, args = [command])]
#[derive(Debug)]
pub struct Program {
    /// The program's name in supervisor.
    name: String,
    /// What to run (required).
    #[attribute]
    command: Option<String>,
    /// Resolve a relative `command` against the workdir.
    #[attribute(default = true)]
    command_absolute: bool,
    /// Arguments after the command.
    #[attribute(default = "")]
    args: String,
    /// More settings of the section (`startsecs` 5 and `startretries` 3
    /// unless given).
    #[attribute(default = BTreeMap::<String, String>::new())]
    options: BTreeMap<String, String>,
    /// supervisor's start order.
    #[attribute(default = 10)]
    priority: i64,
    /// The working directory (default: the workdir).
    #[attribute]
    directory: Option<String>,
    /// Whether it runs (false: stopped).
    #[attribute(default = true)]
    enable: bool,
    /// `hot` or `cold` (default: the supervisor's mode).
    #[attribute]
    deployment: Option<DeploymentMode>,
    spec: Option<Spec>,
}

impl Program {
    fn base_dir(&self, cx: &Setup, _supervisor: &SupervisorInfo) -> PathBuf {
        cx.workdir().to_path_buf()
    }

    fn listened_events(&self) -> Vec<String> {
        Vec::new()
    }
}

/// An event listener (`[eventlistener:name]`); a relative command is
/// resolved against the supervisor's workdir, where plugins such as
/// superlance are installed.
#[component(namevar = name, args = [command])]
#[derive(Debug)]
pub struct Eventlistener {
    /// The program's name in supervisor.
    name: String,
    /// What to run (required).
    #[attribute]
    command: Option<String>,
    /// Resolve a relative `command` against the workdir.
    #[attribute(default = true)]
    command_absolute: bool,
    /// Arguments after the command.
    #[attribute(default = "")]
    args: String,
    /// More settings of the section (`startsecs` 5 and `startretries` 3
    /// unless given).
    #[attribute(default = BTreeMap::<String, String>::new())]
    options: BTreeMap<String, String>,
    /// supervisor's start order.
    #[attribute(default = 10)]
    priority: i64,
    /// The working directory (default: the workdir).
    #[attribute]
    directory: Option<String>,
    /// Whether it runs (false: stopped).
    #[attribute(default = true)]
    enable: bool,
    /// `hot` or `cold` (default: the supervisor's mode).
    #[attribute]
    deployment: Option<DeploymentMode>,
    /// The events it listens to.
    #[attribute(default = vec!["TICK_60".to_string()])]
    events: Vec<String>,
    spec: Option<Spec>,
}

impl Eventlistener {
    fn base_dir(&self, _cx: &Setup, supervisor: &SupervisorInfo) -> PathBuf {
        supervisor.workdir.clone()
    }

    fn listened_events(&self) -> Vec<String> {
        self.events.clone()
    }
}

/// The `Component` impl both share.
macro_rules! program_component {
    ($ty:ident, $kind:expr) => {
        impl Component for $ty {
            fn configure(&mut self, cx: &mut Setup) -> Result<()> {
                let host = cx.host_name().to_string();
                let supervisor = cx
                    .require_one_with(&SUPERVISOR, RequireOptions::new().on_host(host))?
                    .ok_or_else(|| Error::Unsatisfied(SUPERVISOR.key().to_string()))?;
                let label = stringify!($ty);
                let command = self
                    .command
                    .clone()
                    .filter(|c| !c.trim().is_empty())
                    .ok_or_else(|| {
                        Error::usage(format!(
                            "`command` option missing for program {}",
                            self.name
                        ))
                    })?;
                let base = self.base_dir(cx, &supervisor);
                let command = if self.command_absolute {
                    normpath(&base.join(&command))
                        .to_string_lossy()
                        .into_owned()
                } else {
                    command
                };
                let directory = match self.directory.as_deref().filter(|d| !d.is_empty()) {
                    Some(d) => cx.map(d),
                    None => cx.workdir().to_path_buf(),
                };
                let mut options = self.options.clone();
                options
                    .entry("startsecs".into())
                    .or_insert_with(|| "5".into());
                options
                    .entry("startretries".into())
                    .or_insert_with(|| "3".into());
                if $kind == Kind::Eventlistener && !options.contains_key("stderr_logfile") {
                    let log = supervisor.logdir.join(format!("{}.log", self.name));
                    options.insert("stderr_logfile".into(), log.to_string_lossy().into_owned());
                    options
                        .entry("stderr_logfile_backups".into())
                        .or_insert_with(|| "0".into());
                    options
                        .entry("stderr_logfile_maxbytes".into())
                        .or_insert_with(|| "0".into());
                }
                let spec = Spec {
                    kind: $kind,
                    name: self.name.clone(),
                    command,
                    args: self.args.clone(),
                    options,
                    priority: self.priority,
                    directory: directory.to_string_lossy().into_owned(),
                    enable: self.enable,
                    deployment: self.deployment.unwrap_or(supervisor.deployment_mode),
                    events: self.listened_events(),
                    supervisor: supervisor.clone(),
                    stopped_for_cold: false,
                };
                spec.check()?;
                if spec.options["startsecs"].trim().parse::<u64>().is_err() {
                    return Err(Error::usage(format!(
                        "{label}({}): startsecs must be a number of seconds",
                        self.name
                    )));
                }
                let config = supervisor
                    .program_config_dir
                    .join(format!("{}.conf", self.name));
                cx.add(File::new(config.to_string_lossy().into_owned()).content(spec.section()));
                self.spec = Some(spec);
                Ok(())
            }

            fn verify(&mut self, cx: &mut Deploy) -> Result<()> {
                match &self.spec {
                    Some(spec) => spec.verify(cx),
                    None => Ok(()),
                }
            }

            fn update(&mut self, cx: &mut Deploy) -> Result<()> {
                match &self.spec {
                    Some(spec) => spec.update(cx),
                    None => Ok(()),
                }
            }

            fn before_update_scope(&self) -> Option<EventScope> {
                self.spec
                    .as_ref()
                    .filter(|s| s.deployment == DeploymentMode::Cold)
                    .map(|_| EventScope::Precursor)
            }

            fn before_update(&mut self, cx: &mut Deploy, _source: &str) -> Result<()> {
                if let Some(spec) = &mut self.spec {
                    spec.stop_for_cold(cx);
                }
                Ok(())
            }

            fn breadcrumb(&self, _cx: &Setup) -> Option<String> {
                Some(self.name.clone())
            }
        }
    };
}

program_component!(Program, Kind::Program);
program_component!(Eventlistener, Kind::Eventlistener);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deployment_modes_come_from_their_names() {
        assert_eq!(
            DeploymentMode::from_config("cold").unwrap(),
            DeploymentMode::Cold
        );
        let err = DeploymentMode::from_config("warm").unwrap_err();
        assert_eq!(
            err.message,
            "deployment mode must be `hot` or `cold`, not \"warm\""
        );
    }

    #[test]
    fn commands_are_normalised_like_normpath() {
        assert_eq!(
            normpath(Path::new("/srv/app/./bin/../bin/app")),
            PathBuf::from("/srv/app/bin/app")
        );
    }

    #[test]
    fn tail_gives_the_last_lines() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("x.log");
        std::fs::write(&log, "a\nb\nc\n").unwrap();
        assert_eq!(tail(&log, 2), "b\nc");
    }
}
