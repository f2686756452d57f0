//! `batou deploy ENV`: load, configure, connect, deploy, summarize.

use crate::agent::client::{AgentConnection, AgentEvent, Deployer};
use crate::environment::{duplicate_components, ConnectMethod, Environment};
use crate::model::{Model, ModelEnv};
use crate::output::{format_duration, Color, Style, Terminal};
use crate::report::{self, Report};
use std::path::Path;
use std::sync::mpsc;
use std::time::Instant;

pub mod schedule;

use schedule::{Ready, Scheduler, SkipReason};

/// Options of `deploy`.
#[derive(Debug, Clone, Default)]
pub struct DeployOptions {
    /// Environment name.
    pub environment: String,
    /// `-c`: check the model only.
    pub consistency_only: bool,
    /// `-P`: verify only.
    pub predict_only: bool,
    /// `-j`: parallel roots.
    pub jobs: Option<usize>,
    /// `-D`: skip VCS checks.
    pub dirty: bool,
    /// `-t`: timeout override.
    pub timeout: Option<u64>,
    /// `-p`: platform override (`Some("")` removes the platform).
    pub platform: Option<String>,
    /// `-d`.
    pub debug: bool,
    /// `--accept-new-host-keys`: add unknown hosts to known_hosts.
    pub accept_new_host_keys: bool,
}

/// Where the deployment failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Reading the environment.
    Load,
    /// Configuring the model and connecting hosts.
    Connect,
    /// Deploying.
    Deploy,
}

impl Step {
    fn name(self) -> &'static str {
        match self {
            Step::Load => "load",
            Step::Connect => "connect",
            Step::Deploy => "deploy",
        }
    }
}

/// The identification line: `batou/0.1.0 (rust 1.95, Linux 6.1.0 x86_64)`.
pub fn self_id() -> String {
    // SAFETY: uname fills the struct we own.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    let (sys, rel, mach) = if unsafe { libc::uname(&mut u) } == 0 {
        let f = |s: &[libc::c_char]| {
            let bytes: Vec<u8> = s
                .iter()
                .take_while(|c| **c != 0)
                .map(|c| *c as u8)
                .collect();
            String::from_utf8_lossy(&bytes).into_owned()
        };
        (f(&u.sysname), f(&u.release), f(&u.machine))
    } else {
        (
            std::env::consts::OS.into(),
            "?".into(),
            std::env::consts::ARCH.into(),
        )
    };
    format!(
        "batou/{} (rust {}, {sys} {rel} {mach})",
        crate::VERSION,
        env!("CARGO_PKG_RUST_VERSION")
    )
}

/// Runs `deploy` in `project_root`; returns the exit code.
pub fn run(project_root: &Path, opts: &DeployOptions, term: &Terminal) -> i32 {
    let action = if opts.consistency_only {
        "CONSISTENCY CHECK"
    } else if opts.predict_only {
        "DEPLOYMENT PREDICTION"
    } else {
        "DEPLOYMENT"
    };
    let _lock = match ProjectLock::acquire(project_root) {
        Ok(l) => l,
        Err(crate::lock::LockError::Held { pid, .. }) => {
            let who = pid.map(|p| format!(" (PID {p})")).unwrap_or_default();
            eprintln!(
                "Could not acquire lock .batou-lock\nAnother instance of batou{who} is currently running and locked the lockfile.\nExiting."
            );
            return 1;
        }
        Err(e) => {
            eprintln!("{e}");
            return 1;
        }
    };
    term.plain(&self_id());
    match run_steps(project_root, opts, term) {
        Ok(()) => {
            let color = if opts.consistency_only {
                Color::Cyan
            } else if opts.predict_only {
                Color::Purple
            } else {
                Color::Green
            };
            term.section(&format!("{action} FINISHED"), Some(color));
            0
        }
        Err(step) => {
            term.section(
                &format!("{action} FAILED (during {})", step.name()),
                Some(Color::Red),
            );
            1
        }
    }
}

fn print_reports(term: &Terminal, reports: Vec<Report>) {
    let merged = report::merge(reports);
    report::print(term, &merged);
}

fn run_steps(project_root: &Path, opts: &DeployOptions, term: &Terminal) -> Result<(), Step> {
    term.section("Preparing", None);
    term.step(
        "main",
        &format!("Loading environment `{}`...", opts.environment),
        Some("📦"),
    );
    let mut load_errors = duplicate_components();
    let env = match Environment::load(project_root, &opts.environment) {
        Ok(env) => Some(env),
        Err(e) => {
            load_errors.extend(e.0);
            None
        }
    };
    term.step("main", "Verifying repository ...", Some("🔍"));
    let shipped_by_vcs = env
        .as_ref()
        .filter(|env| env.connect_method.is_remote())
        .and_then(|env| Some((env, env.update_method.vcs()?)));
    let repository = match shipped_by_vcs {
        Some((env, vcs)) => {
            match crate::repository::LocalRepo::verify(
                vcs,
                project_root,
                env.branch.as_deref(),
                env.update_method.pulls(),
                opts.dirty,
            ) {
                Ok(r) => Some(r),
                Err(e) => {
                    let mut report = Report::new(e.title, crate::report::order::CONFIGURATION);
                    report.details = e.details;
                    load_errors.push(report);
                    None
                }
            }
        }
        None => None,
    };
    if opts.dirty && repository.is_some() {
        term.warn("Skipping the repository checks (-D).");
    }
    term.step("main", "Loading secrets ...", Some("🔑"));
    if !load_errors.is_empty() {
        print_reports(term, load_errors);
        return Err(Step::Load);
    }
    let Some(mut env) = env else {
        return Err(Step::Load);
    };
    if let Some(t) = opts.timeout {
        env.timeout = t;
    }
    if let Some(p) = &opts.platform {
        // `-p` wins over the environment's and every host's platform.
        env.platform = if p.is_empty() { None } else { Some(p.clone()) };
        for h in &mut env.hosts {
            h.platform = None;
        }
    }
    if let Some(j) = opts.jobs {
        env.jobs = j.max(1);
    }
    if env.hosts.is_empty() {
        term.error("No host found in environment.");
        return Err(Step::Load);
    }

    // The controller configures the whole model itself: `-c` stops after
    // that and never connects anywhere. For a deployment the agents are
    // started first and configure their copy of the model meanwhile.
    let started = Instant::now();
    let mut agents = Vec::new();
    if opts.consistency_only {
        term.section("Configuring model ...", None);
    } else {
        term.section("Connecting hosts and configuring model ...", None);
        let n = env.hosts.len();
        for (i, host) in env.hosts.iter().enumerate() {
            if host.ignore {
                term.line(&crate::output::Line::new(
                    format!("⏭️ {}: Connection ignored ({}/{n})", host.name, i + 1),
                    Style::color(Color::Red),
                ));
            } else {
                term.step(
                    &host.name,
                    &format!("Connecting via {} ({}/{n})", env.connect_method, i + 1),
                    Some("🌐"),
                );
            }
        }
    }
    if !opts.consistency_only && env.connect_method == ConnectMethod::Vagrant {
        term.step("main", "Starting vagrant machines ...", Some("🧱"));
        if let Err(e) = crate::transport::vagrant_up(project_root) {
            term.error(&e);
            return Err(Step::Connect);
        }
    }
    // Connect all hosts in parallel (at most CONNECT_PARALLEL at a time)
    // while the controller configures its own copy of the model.
    let gate = Gate::new(CONNECT_PARALLEL);
    let (connected, (model, errors)) = std::thread::scope(|scope| {
        let handles: Vec<_> = if opts.consistency_only {
            Vec::new()
        } else {
            env.hosts
                .iter()
                .filter(|h| !h.ignore)
                .map(|host| {
                    let (gate, env) = (&gate, &env);
                    let repository = repository.as_ref();
                    let accept_new = opts.accept_new_host_keys;
                    scope.spawn(move || {
                        (
                            host.name.clone(),
                            connect(project_root, env, host, gate, repository, accept_new),
                        )
                    })
                })
                .collect()
        };
        let configured = Model::configure(ModelEnv::new(project_root.to_path_buf(), env.clone()));
        let connected: Vec<_> = handles.into_iter().filter_map(|h| h.join().ok()).collect();
        (connected, configured)
    });
    let mut connect_failed = false;
    for (host, result) in connected {
        match result {
            Ok(a) => agents.push((host, a)),
            Err(e) => {
                term.error(&e.to_string());
                connect_failed = true;
            }
        }
    }
    if connect_failed {
        return Err(Step::Connect);
    }
    if !errors.is_empty() {
        let n = errors.len();
        print_reports(term, errors);
        term.section(
            &format!("{n} ERRORS - CONFIGURATION FAILED"),
            Some(Color::Red),
        );
        return Err(Step::Connect);
    }
    for root in &model.roots {
        for l in &root.logs {
            term.plain(l);
        }
    }
    if opts.consistency_only {
        term.section("Summary", None);
        term.plain(&format!(
            "Consistency check took total={}",
            format_duration(Some(started.elapsed().as_secs_f64()))
        ));
        return Ok(());
    }
    for (_, agent) in agents.iter_mut() {
        match agent.finish_configure() {
            Ok(errors) if errors.is_empty() => {}
            Ok(errors) => {
                let n = errors.len();
                print_reports(term, errors);
                term.section(
                    &format!("{n} ERRORS - CONFIGURATION FAILED"),
                    Some(Color::Red),
                );
                return Err(Step::Connect);
            }
            Err(e) => {
                term.error(&e.to_string());
                return Err(Step::Connect);
            }
        }
    }
    let connect_time = started.elapsed().as_secs_f64();

    // Deploy: roots in dependency order, up to `jobs` at once, across
    // hosts and within a host.
    let deploy_started = Instant::now();
    term.section(
        if opts.predict_only {
            "Predicting deployment actions"
        } else {
            "Deploying"
        },
        None,
    );
    if opts.debug {
        term.step("main", &format!("Number of jobs: {}", env.jobs), Some("⚙️"));
    }
    let (tx, rx) = mpsc::channel();
    let mut deployers: Vec<(String, Deployer)> = agents
        .into_iter()
        .enumerate()
        .map(|(i, (host, agent))| (host, agent.into_deployer(i, tx.clone())))
        .collect();
    drop(tx);
    let ok = schedule(
        &model,
        &mut deployers,
        &rx,
        env.jobs,
        opts.predict_only,
        term,
    );
    for (_, d) in deployers {
        d.close();
    }
    if !ok {
        return Err(Step::Deploy);
    }
    let deploy_time = deploy_started.elapsed().as_secs_f64();
    term.section("Summary", None);
    term.plain(&format!(
        "Deployment took total={}, connect={}, deploy={}",
        format_duration(Some(connect_time + deploy_time)),
        format_duration(Some(connect_time)),
        format_duration(Some(deploy_time)),
    ));
    Ok(())
}

/// Starts the agent of one host and asks it to configure: locally, or over
/// ssh after uploading this executable, taking the host's lock and shipping
/// the project.
fn connect(
    project_root: &Path,
    env: &Environment,
    host: &crate::environment::Host,
    gate: &Gate,
    repository: Option<&crate::repository::LocalRepo>,
    accept_new_host_keys: bool,
) -> Result<AgentConnection, crate::agent::client::ConnectionError> {
    let _slot = gate.enter();
    if env.connect_method == ConnectMethod::Local {
        let mut a = AgentConnection::spawn_local(&host.name, project_root)?;
        a.start_configure(&project_root.to_string_lossy(), env)?;
        return Ok(a);
    }
    let ssh = ssh_settings(project_root, env, host, accept_new_host_keys)?;
    let target = env.target_directory.clone();
    let mut a = start_with_retries(&ssh, &target)?;
    a.lock(&target)?;
    let root = ship_project(&mut a, project_root, env, host, repository)?;
    a.start_configure(&root, env)?;
    Ok(a)
}

/// How to reach a host over SSH for the environment's connect method.
fn ssh_settings(
    project_root: &Path,
    env: &Environment,
    host: &crate::environment::Host,
    accept_new_host_keys: bool,
) -> Result<crate::transport::Ssh, crate::agent::client::ConnectionError> {
    let mut ssh = crate::transport::Ssh::new(project_root, &env.name, host, env.timeout);
    match env.connect_method {
        // vagrant and kitchen hand over OpenSSH settings: use OpenSSH.
        ConnectMethod::Local | ConnectMethod::Ssh => ssh.client = env.ssh_client,
        ConnectMethod::Vagrant => {
            // Vagrant knows how to reach its machines.
            ssh.config = Some(crate::transport::vagrant_ssh_config(
                project_root,
                &host.name,
            )?);
            ssh.destination = host.name.clone();
        }
        ConnectMethod::Kitchen => {
            crate::transport::kitchen_create(project_root, &host.name)?;
            ssh.config = Some(crate::transport::kitchen_ssh_config(
                project_root,
                &host.name,
            )?);
            ssh.destination = host.name.clone();
        }
    }
    ssh.service_user = host
        .service_user
        .clone()
        .or_else(|| env.service_user.clone());
    ssh.accept_new_host_keys = accept_new_host_keys;
    Ok(ssh)
}

/// Starts the agent over SSH. Transient network trouble is retried with
/// back-off; refusals (host keys, platforms, authentication) are not.
fn start_with_retries(
    ssh: &crate::transport::Ssh,
    target: &str,
) -> Result<AgentConnection, crate::agent::client::ConnectionError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match AgentConnection::spawn_ssh(ssh, target) {
            Ok(a) => return Ok(a),
            Err(e) if attempt < CONNECT_TRIES && is_transient(&e.message) => {
                std::thread::sleep(retry_pause(attempt));
            }
            Err(mut e) if is_transient(&e.message) => {
                e.message.push_str(&format!(
                    " (gave up after {CONNECT_TRIES} attempts of at most {}s each, {}s in all at most; the environment's timeout sets the time per attempt)",
                    ssh.timeout,
                    connect_bound(ssh.timeout).as_secs()
                ));
                return Err(e);
            }
            Err(e) => return Err(e),
        }
    }
}

/// Ships the project with the update method; returns the project
/// directory on the host.
fn ship_project(
    a: &mut AgentConnection,
    project_root: &Path,
    env: &Environment,
    host: &crate::environment::Host,
    repository: Option<&crate::repository::LocalRepo>,
) -> Result<String, crate::agent::client::ConnectionError> {
    let target = &env.target_directory;
    let Some(repo) = repository else {
        a.ship(project_root, target)?;
        return Ok(target.clone());
    };
    let url = if env.update_method.pulls() {
        Some(
            repo.pull_url(env.repository_url.as_deref())
                .map_err(|message| crate::agent::client::ConnectionError {
                    host: host.name.clone(),
                    message,
                })?,
        )
    } else {
        None
    };
    a.vcs_ship(repo, target, url)?;
    let sub = repo.subdir.to_string_lossy();
    Ok(if sub.is_empty() {
        target.clone()
    } else {
        format!("{}/{sub}", target.trim_end_matches('/'))
    })
}

/// Hosts connected at the same time (batou: 5).
const CONNECT_PARALLEL: usize = 5;
/// Attempts per host for transient connection failures.
const CONNECT_TRIES: u32 = 3;

/// The pause after failed attempt `attempt` (1-based): 1 s, 2 s, ...
fn retry_pause(attempt: u32) -> std::time::Duration {
    std::time::Duration::from_millis(500 * (1 << attempt))
}

/// The longest a host's connection set-up takes before it is given up:
/// every attempt's timeout plus the pauses between them.
pub fn connect_bound(timeout: u64) -> std::time::Duration {
    let pauses: std::time::Duration = (1..CONNECT_TRIES).map(retry_pause).sum();
    std::time::Duration::from_secs(timeout.max(1) * u64::from(CONNECT_TRIES)) + pauses
}

fn is_transient(message: &str) -> bool {
    [
        "Connection refused",
        "timed out",
        "Connection reset",
        "Connection closed",
        "No route to host",
    ]
    .iter()
    .any(|m| message.contains(m))
}

/// A counting semaphore bounding parallel connection set-ups.
struct Gate {
    free: std::sync::Mutex<usize>,
    cond: std::sync::Condvar,
}

struct Slot<'g>(&'g Gate);

impl Gate {
    fn new(n: usize) -> Gate {
        Gate {
            free: std::sync::Mutex::new(n),
            cond: std::sync::Condvar::new(),
        }
    }
    fn enter(&self) -> Slot<'_> {
        let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
        while *free == 0 {
            free = self.cond.wait(free).unwrap_or_else(|e| e.into_inner());
        }
        *free -= 1;
        Slot(self)
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        *self.0.free.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        self.0.cond.notify_one();
    }
}

/// Runs the deployment of all roots in the order of a [`Scheduler`]:
/// starts what is ready on its host's agent, reports skipped roots, and
/// feeds the agents' answers back. Every failure is reported.
fn schedule(
    model: &Model,
    deployers: &mut [(String, Deployer)],
    events: &mpsc::Receiver<(usize, AgentEvent)>,
    jobs: usize,
    predict: bool,
    term: &Terminal,
) -> bool {
    let skip = model
        .roots
        .iter()
        .map(|r| {
            if r.host_ignored {
                Some(SkipReason::HostIgnored)
            } else if r.ignore {
                Some(SkipReason::ComponentIgnored)
            } else {
                None
            }
        })
        .collect();
    let dependencies = model
        .dependencies
        .iter()
        .map(|d| d.iter().copied().collect())
        .collect();
    let mut scheduler = Scheduler::new(dependencies, skip, jobs);
    loop {
        for ready in scheduler.ready() {
            match ready {
                Ready::Skip(id, why) => {
                    let root = &model.roots[id];
                    let why = match why {
                        SkipReason::HostIgnored => "Host ignored",
                        SkipReason::ComponentIgnored => "Component ignored",
                    };
                    term.line(&crate::output::Line::new(
                        format!(
                            "⏭️ {}: Skipping component {} ... ({why})",
                            root.host, root.name
                        ),
                        Style::color(Color::Red),
                    ));
                }
                Ready::Start(id) => {
                    let root = &model.roots[id];
                    let Some((_, deployer)) = deployers.iter_mut().find(|(h, _)| *h == root.host)
                    else {
                        scheduler.finished(id, false);
                        continue;
                    };
                    term.step(
                        &root.host,
                        &format!("Scheduling component {} ...", root.name),
                        Some("⚪"),
                    );
                    if let Err(e) = deployer.deploy(id as u64, &root.name, predict) {
                        term.error(&e.to_string());
                        scheduler.finished(id, false);
                    }
                }
            }
        }
        if scheduler.is_idle() {
            break;
        }
        let Ok((index, event)) = events.recv() else {
            term.error("lost all agents");
            return false;
        };
        match event {
            AgentEvent::Output { line, .. } => term.line(&line),
            AgentEvent::Deployed { id, error } => {
                let id = id as usize;
                if !scheduler.is_running(id) {
                    continue;
                }
                if let Some(lines) = &error {
                    for l in lines {
                        term.line(l);
                    }
                }
                scheduler.finished(id, error.is_none());
            }
            AgentEvent::Lost { message } => {
                let host = deployers
                    .get(index)
                    .map(|(h, _)| h.clone())
                    .unwrap_or_default();
                term.error(&format!("{host}: {message}"));
                for (id, root) in model.roots.iter().enumerate() {
                    if root.host == host && scheduler.is_running(id) {
                        scheduler.finished(id, false);
                    }
                }
            }
        }
    }
    let stuck = scheduler.stuck();
    if !stuck.is_empty() {
        let names: Vec<&str> = stuck
            .iter()
            .map(|i| model.roots[*i].name.as_str())
            .collect();
        term.error(&format!(
            "Components could not be scheduled: {}",
            names.join(", ")
        ));
        return false;
    }
    !scheduler.has_failed()
}

pub use crate::lock::ProjectLock;
