//! `batou deploy ENV`: load, configure, connect, deploy, summarize.

use crate::agent::client::{AgentConnection, AgentEvent, Deployer};
use crate::environment::{duplicate_components, ConnectMethod, Environment};
use crate::events::{Action, Event, Failure, Phase, Reporter, Stage, Step, Timings};
use crate::model::{Model, ModelEnv};
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
    /// `--limit`: glob patterns of the hosts to connect and deploy.
    pub limit: Vec<String>,
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
        env!("BATOU_RUSTC_VERSION")
    )
}

/// Runs `deploy` in `project_root`, reporting to `reporter`; returns the
/// exit code.
pub fn run(project_root: &Path, opts: &DeployOptions, reporter: &dyn Reporter) -> i32 {
    let action = if opts.consistency_only {
        Action::Check
    } else if opts.predict_only {
        Action::Predict
    } else {
        Action::Deploy
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
    reporter.event(&Event::Started {
        id: self_id(),
        action,
        environment: opts.environment.clone(),
    });
    let mut timings = Timings::default();
    let result = run_steps(project_root, opts, reporter, &mut timings);
    reporter.event(&Event::Finished {
        action,
        success: result.is_ok(),
        step: result.as_ref().err().map(|f| f.step),
        timings,
    });
    match result {
        Ok(()) => 0,
        Err(f) => f.exit,
    }
}

/// Exit code of a usage error (bad arguments, a `--limit` matching no
/// host).
pub const EXIT_USAGE: i32 = 2;
/// Exit code when a host could not be reached (refused, timed out, host
/// key refused, authentication failed).
pub const EXIT_UNREACHABLE: i32 = 3;

/// How a run failed: the step, and the exit code.
#[derive(Debug, Clone, Copy)]
struct Failed {
    step: Step,
    exit: i32,
}

impl From<Step> for Failed {
    fn from(step: Step) -> Self {
        Failed { step, exit: 1 }
    }
}

/// `batou graph ENV`: the configured model as DOT on stdout; load and
/// configuration errors go to the reporter. Connects nowhere.
pub fn graph(project_root: &Path, environment: &str, reporter: &dyn Reporter) -> i32 {
    let opts = DeployOptions {
        environment: environment.to_string(),
        consistency_only: true,
        ..DeployOptions::default()
    };
    let env = match load(project_root, &opts, reporter) {
        Ok((env, _)) => env,
        Err(f) => return f.exit,
    };
    let (model, errors) = Model::configure(ModelEnv::new(project_root.to_path_buf(), env));
    if configuration_result(reporter, errors).is_err() {
        return 1;
    }
    print!("{}", crate::ui::graph::dot(&model));
    0
}

/// Reports merged across hosts and sorted, one event each.
fn emit_reports(reporter: &dyn Reporter, reports: Vec<Report>) {
    for (report, hosts) in report::merge(reports) {
        reporter.event(&Event::Report {
            report,
            hosts: hosts.into_iter().collect(),
        });
    }
}

/// The steps of a run: each returns data and emits events; an error names
/// the step that failed.
fn run_steps(
    project_root: &Path,
    opts: &DeployOptions,
    reporter: &dyn Reporter,
    timings: &mut Timings,
) -> Result<(), Failed> {
    reporter.event(&Event::Phase {
        phase: Phase::Preparing,
    });
    let (env, repository) = load(project_root, opts, reporter)?;
    let started = Instant::now();
    let connected = configure_and_connect(
        project_root,
        &env,
        repository.as_ref(),
        opts,
        reporter,
        timings,
    );
    timings.connect = started.elapsed().as_secs_f64();
    timings.total = timings.connect;
    let (model, agents) = connected?;
    if opts.consistency_only {
        timings.total = started.elapsed().as_secs_f64();
        reporter.event(&Event::Phase {
            phase: Phase::Summary,
        });
        reporter.event(&Event::CheckSummary {
            seconds: timings.total,
        });
        return Ok(());
    }
    let deploy_started = Instant::now();
    let deployed = deploy_roots(&model, agents, &env, opts, reporter, timings);
    timings.deploy = deploy_started.elapsed().as_secs_f64();
    timings.total = timings.connect + timings.deploy;
    deployed?;
    reporter.event(&Event::Phase {
        phase: Phase::Summary,
    });
    reporter.event(&Event::DeploySummary {
        timings: timings.clone(),
    });
    Ok(())
}

/// Step `load`: the environment with the command line's overrides, and the
/// checked working copy for VCS update methods.
fn load(
    project_root: &Path,
    opts: &DeployOptions,
    reporter: &dyn Reporter,
) -> Result<(Environment, Option<crate::repository::LocalRepo>), Failed> {
    reporter.event(&Event::LoadingEnvironment {
        environment: opts.environment.clone(),
    });
    let mut load_errors = duplicate_components();
    let env = match Environment::load(project_root, &opts.environment) {
        Ok(env) => Some(env),
        Err(e) => {
            load_errors.extend(e.0);
            None
        }
    };
    reporter.event(&Event::VerifyingRepository);
    let repository = match env.as_ref() {
        Some(env) => match verify_repository(project_root, env, opts.dirty) {
            Ok(r) => r,
            Err(report) => {
                load_errors.push(*report);
                None
            }
        },
        None => None,
    };
    if opts.dirty && repository.is_some() {
        reporter.event(&Event::Warning {
            message: "Skipping the repository checks (-D).".into(),
        });
    }
    reporter.event(&Event::LoadingSecrets);
    if !load_errors.is_empty() {
        emit_reports(reporter, load_errors);
        return Err(Step::Load.into());
    }
    let Some(mut env) = env else {
        return Err(Step::Load.into());
    };
    apply_cli_overrides(&mut env, opts);
    if env.hosts.is_empty() {
        reporter.event(&Event::Error {
            message: "No host found in environment.".into(),
        });
        return Err(Step::Load.into());
    }
    if let Err(message) = apply_limit(&mut env, &opts.limit) {
        reporter.event(&Event::Error { message });
        return Err(Failed {
            step: Step::Load,
            exit: EXIT_USAGE,
        });
    }
    Ok((env, repository))
}

/// The working copy, checked, when a VCS update method ships the project
/// to remote hosts.
fn verify_repository(
    project_root: &Path,
    env: &Environment,
    dirty: bool,
) -> Result<Option<crate::repository::LocalRepo>, Box<Report>> {
    let Some(vcs) = env
        .update_method
        .vcs()
        .filter(|_| env.connect_method.is_remote())
    else {
        return Ok(None);
    };
    crate::repository::LocalRepo::verify(
        vcs,
        project_root,
        env.branch.as_deref(),
        env.update_method.pulls(),
        dirty,
    )
    .map(Some)
    .map_err(|e| {
        let mut report = Report::new(e.title, crate::report::order::CONFIGURATION);
        report.details = e.details;
        Box::new(report)
    })
}

/// `--limit`: hosts whose names match none of the glob patterns are
/// configured but neither connected nor deployed (like ignored hosts).
fn apply_limit(env: &mut Environment, limit: &[String]) -> Result<(), String> {
    if limit.is_empty() {
        return Ok(());
    }
    let patterns = limit
        .iter()
        .map(|p| glob::Pattern::new(p).map_err(|e| format!("--limit: invalid pattern {p:?}: {e}")))
        .collect::<Result<Vec<_>, _>>()?;
    let matches = |name: &str| patterns.iter().any(|p| p.matches(name));
    if !env.hosts.iter().any(|h| matches(&h.name)) {
        let hosts: Vec<&str> = env.hosts.iter().map(|h| h.name.as_str()).collect();
        return Err(format!(
            "--limit {} matches no host of environment {}; its hosts: {}",
            limit.join(","),
            env.name,
            hosts.join(", ")
        ));
    }
    for h in &mut env.hosts {
        if !matches(&h.name) {
            h.ignore = true;
        }
    }
    Ok(())
}

/// `-t`, `-p` and `-j` win over the environment.
fn apply_cli_overrides(env: &mut Environment, opts: &DeployOptions) {
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
}

/// Step `connect`: the controller configures the whole model itself while
/// the agents are started (and configure their copy). `-c` connects
/// nowhere. Returns the model and the connected agents.
fn configure_and_connect(
    project_root: &Path,
    env: &Environment,
    repository: Option<&crate::repository::LocalRepo>,
    opts: &DeployOptions,
    reporter: &dyn Reporter,
    timings: &mut Timings,
) -> Result<(Model, Vec<(String, AgentConnection)>), Failed> {
    if opts.consistency_only {
        reporter.event(&Event::Phase {
            phase: Phase::Configuring,
        });
    } else {
        reporter.event(&Event::Phase {
            phase: Phase::Connecting,
        });
        announce_hosts(env, reporter);
    }
    if !opts.consistency_only && env.connect_method == ConnectMethod::Vagrant {
        reporter.event(&Event::StartingVagrant);
        if let Err(message) = crate::transport::vagrant_up(project_root) {
            reporter.event(&Event::Error { message });
            return Err(Step::Connect.into());
        }
    }
    let (connected, (model, errors)) =
        connect_while_configuring(project_root, env, repository, opts, reporter);
    let mut agents = Vec::new();
    let mut failed: Option<Failed> = None;
    for (host, result, seconds) in connected {
        timings.hosts.push(crate::events::HostTiming {
            host: host.clone(),
            connect: seconds,
            deploy: 0.0,
        });
        match result {
            Ok(a) => agents.push((host, a)),
            Err(e) => {
                let unreachable =
                    e.kind.is_unreachable() || failed.is_some_and(|f| f.exit == EXIT_UNREACHABLE);
                reporter.event(&Event::ConnectFailed {
                    host: e.host,
                    message: e.detail,
                });
                failed = Some(Failed {
                    step: Step::Connect,
                    exit: if unreachable { EXIT_UNREACHABLE } else { 1 },
                });
            }
        }
    }
    if let Some(f) = failed {
        return Err(f);
    }
    configuration_result(reporter, errors)?;
    for root in &model.roots {
        for line in &root.logs {
            reporter.event(&Event::ConfigureLog { line: line.clone() });
        }
    }
    for (_, agent) in agents.iter_mut() {
        match agent.finish_configure() {
            Ok(errors) => configuration_result(reporter, errors)?,
            Err(e) => {
                reporter.event(&Event::ConnectFailed {
                    host: e.host,
                    message: e.detail,
                });
                return Err(Step::Connect.into());
            }
        }
    }
    Ok((model, agents))
}

/// The connecting lines of every host, before any connection is made.
fn announce_hosts(env: &Environment, reporter: &dyn Reporter) {
    let total = env.hosts.len();
    for (i, host) in env.hosts.iter().enumerate() {
        reporter.event(&if host.ignore {
            Event::HostSkipped {
                host: host.name.clone(),
                index: i + 1,
                total,
            }
        } else {
            Event::HostConnecting {
                host: host.name.clone(),
                method: env.connect_method,
                index: i + 1,
                total,
            }
        });
    }
}

/// Configuration errors end the step.
fn configuration_result(reporter: &dyn Reporter, errors: Vec<Report>) -> Result<(), Step> {
    if errors.is_empty() {
        return Ok(());
    }
    let n = errors.len();
    emit_reports(reporter, errors);
    reporter.event(&Event::ConfigurationFailed { errors: n });
    Err(Step::Connect)
}

/// Each host's agent (or why not) and the seconds it took.
type Connected = Vec<(
    String,
    Result<AgentConnection, crate::transport::TransportError>,
    f64,
)>;

/// Connects all hosts in parallel (at most [`CONNECT_PARALLEL`] at a time)
/// while the controller configures its own copy of the model.
fn connect_while_configuring(
    project_root: &Path,
    env: &Environment,
    repository: Option<&crate::repository::LocalRepo>,
    opts: &DeployOptions,
    reporter: &dyn Reporter,
) -> (Connected, (Model, Vec<Report>)) {
    let gate = Gate::new(CONNECT_PARALLEL);
    std::thread::scope(|scope| {
        let handles: Vec<_> = if opts.consistency_only {
            Vec::new()
        } else {
            env.hosts
                .iter()
                .filter(|h| !h.ignore)
                .map(|host| {
                    let gate = &gate;
                    let accept_new = opts.accept_new_host_keys;
                    scope.spawn(move || {
                        let started = Instant::now();
                        let result = connect(
                            project_root,
                            env,
                            host,
                            gate,
                            repository,
                            accept_new,
                            reporter,
                        );
                        (host.name.clone(), result, started.elapsed().as_secs_f64())
                    })
                })
                .collect()
        };
        let configured = Model::configure(ModelEnv::new(project_root.to_path_buf(), env.clone()));
        let connected = handles.into_iter().filter_map(|h| h.join().ok()).collect();
        (connected, configured)
    })
}

/// Step `deploy`: every root in dependency order on its host's agent.
fn deploy_roots(
    model: &Model,
    agents: Vec<(String, AgentConnection)>,
    env: &Environment,
    opts: &DeployOptions,
    reporter: &dyn Reporter,
    timings: &mut Timings,
) -> Result<(), Step> {
    reporter.event(&Event::Phase {
        phase: if opts.predict_only {
            Phase::Predicting
        } else {
            Phase::Deploying
        },
    });
    if opts.debug {
        reporter.event(&Event::Jobs { jobs: env.jobs });
    }
    let (tx, rx) = mpsc::channel();
    let mut deployers: Vec<(String, Deployer)> = agents
        .into_iter()
        .enumerate()
        .map(|(i, (host, agent))| (host, agent.into_deployer(i, tx.clone())))
        .collect();
    drop(tx);
    let mut clock = DeployClock::default();
    let ok = schedule(
        model,
        &mut deployers,
        &rx,
        env.jobs,
        opts.predict_only,
        reporter,
        &mut clock,
    );
    clock.into_timings(timings);
    for (_, d) in deployers {
        d.close();
    }
    if ok {
        Ok(())
    } else {
        Err(Step::Deploy)
    }
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
    reporter: &dyn Reporter,
) -> Result<AgentConnection, crate::transport::TransportError> {
    let _slot = gate.enter();
    let started = Instant::now();
    let connected = |a: AgentConnection| {
        reporter.event(&Event::HostConnected {
            host: host.name.clone(),
            seconds: started.elapsed().as_secs_f64(),
        });
        Ok(a)
    };
    if env.connect_method == ConnectMethod::Local {
        let mut a = AgentConnection::spawn_local(&host.name, project_root)?;
        a.start_configure(&project_root.to_string_lossy(), env)?;
        return connected(a);
    }
    let meter = Meter::new(&host.name, reporter);
    let ssh = ssh_settings(project_root, env, host, accept_new_host_keys)?;
    let target = env.target_directory.clone();
    let upload = |done, total| meter.report(Stage::Upload, done, total);
    let mut a = start_with_retries(&ssh, &target, &upload)?;
    a.lock(&target)?;
    let root = ship_project(&mut a, project_root, env, host, repository, &meter)?;
    a.start_configure(&root, env)?;
    connected(a)
}

/// Turns byte counts into `host_progress` events, at most ten a second
/// (and always the last one).
struct Meter<'r> {
    host: String,
    reporter: &'r dyn Reporter,
    last: std::sync::Mutex<Option<Instant>>,
}

impl<'r> Meter<'r> {
    fn new(host: &str, reporter: &'r dyn Reporter) -> Self {
        Meter {
            host: host.to_string(),
            reporter,
            last: std::sync::Mutex::new(None),
        }
    }

    fn report(&self, stage: Stage, done: u64, total: u64) {
        let complete = total > 0 && done >= total;
        {
            let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
            let due = last.is_none_or(|t| t.elapsed() >= std::time::Duration::from_millis(100));
            if !due && !complete {
                return;
            }
            *last = Some(Instant::now());
        }
        self.reporter.event(&Event::HostProgress {
            host: self.host.clone(),
            stage,
            done,
            total: (total > 0).then_some(total),
        });
    }
}

/// How to reach a host over SSH for the environment's connect method.
fn ssh_settings(
    project_root: &Path,
    env: &Environment,
    host: &crate::environment::Host,
    accept_new_host_keys: bool,
) -> Result<crate::transport::Ssh, crate::transport::TransportError> {
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
    upload: crate::events::Progress,
) -> Result<AgentConnection, crate::transport::TransportError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match AgentConnection::spawn_ssh(ssh, target, Some(upload)) {
            Ok(a) => return Ok(a),
            Err(e) if attempt < CONNECT_TRIES && e.kind.is_transient() => {
                std::thread::sleep(retry_pause(attempt));
            }
            Err(mut e) if e.kind.is_transient() => {
                e.detail.push_str(&format!(
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
    meter: &Meter,
) -> Result<String, crate::transport::TransportError> {
    let target = &env.target_directory;
    let Some(repo) = repository else {
        let ship = |done, total| meter.report(Stage::Ship, done, total);
        a.ship(project_root, target, Some(&ship))?;
        return Ok(target.clone());
    };
    let url = if env.update_method.pulls() {
        Some(
            repo.pull_url(env.repository_url.as_deref())
                .map_err(|message| crate::transport::TransportError {
                    kind: crate::transport::ErrorKind::Other,
                    host: host.name.clone(),
                    detail: message,
                })?,
        )
    } else {
        None
    };
    let bundle = |done, total| meter.report(Stage::Bundle, done, total);
    a.vcs_ship(repo, target, url, Some(&bundle))?;
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
    reporter: &dyn Reporter,
    clock: &mut DeployClock,
) -> bool {
    let mut scheduler = Scheduler::new(dependencies(model), skip_reasons(model), jobs);
    loop {
        for ready in scheduler.ready() {
            if let Ready::Start(id) = ready {
                clock.started(&model.roots[id].host);
            }
            start_or_skip(model, deployers, &mut scheduler, ready, predict, reporter);
        }
        if scheduler.is_idle() {
            break;
        }
        let Ok((index, event)) = events.recv() else {
            reporter.event(&Event::Error {
                message: "lost all agents".into(),
            });
            return false;
        };
        let host = deployers
            .get(index)
            .map(|(h, _)| h.clone())
            .unwrap_or_default();
        if let AgentEvent::Deployed { id, seconds, .. } = &event {
            if let Some(root) = model.roots.get(*id as usize) {
                clock.finished(&root.host, &root.name, *seconds);
            }
        }
        agent_event(model, &mut scheduler, &host, event, reporter);
    }
    let stuck = scheduler.stuck();
    if !stuck.is_empty() {
        let names: Vec<&str> = stuck
            .iter()
            .map(|i| model.roots[*i].name.as_str())
            .collect();
        reporter.event(&Event::Error {
            message: format!("Components could not be scheduled: {}", names.join(", ")),
        });
        return false;
    }
    !scheduler.has_failed()
}

/// When each host's roots ran, and how long each root took.
#[derive(Default)]
struct DeployClock {
    spans: std::collections::BTreeMap<String, (Instant, Instant)>,
    roots: Vec<crate::events::RootTiming>,
}

impl DeployClock {
    fn started(&mut self, host: &str) {
        let now = Instant::now();
        self.spans.entry(host.to_string()).or_insert((now, now));
    }

    fn finished(&mut self, host: &str, root: &str, seconds: f64) {
        if let Some(span) = self.spans.get_mut(host) {
            span.1 = Instant::now();
        }
        self.roots.push(crate::events::RootTiming {
            host: host.to_string(),
            root: root.to_string(),
            seconds,
        });
    }

    fn into_timings(mut self, timings: &mut Timings) {
        for h in &mut timings.hosts {
            if let Some((start, end)) = self.spans.get(&h.host) {
                h.deploy = end.duration_since(*start).as_secs_f64();
            }
        }
        self.roots.sort_by(|a, b| b.seconds.total_cmp(&a.seconds));
        self.roots.truncate(crate::events::SLOWEST);
        timings.slowest = self.roots;
    }
}

fn dependencies(model: &Model) -> Vec<Vec<usize>> {
    model
        .dependencies
        .iter()
        .map(|d| d.iter().copied().collect())
        .collect()
}

fn skip_reasons(model: &Model) -> Vec<Option<SkipReason>> {
    model
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
        .collect()
}

/// Hands a ready root to its host's agent, or reports it skipped.
fn start_or_skip(
    model: &Model,
    deployers: &mut [(String, Deployer)],
    scheduler: &mut Scheduler,
    ready: Ready,
    predict: bool,
    reporter: &dyn Reporter,
) {
    let (Ready::Skip(id, _) | Ready::Start(id)) = ready;
    let root = &model.roots[id];
    let (host, name) = (root.host.clone(), root.name.clone());
    if let Ready::Skip(_, reason) = ready {
        reporter.event(&Event::RootSkipped {
            host,
            root: name,
            reason,
        });
        return;
    }
    let Some((_, deployer)) = deployers.iter_mut().find(|(h, _)| *h == root.host) else {
        scheduler.finished(id, false);
        return;
    };
    reporter.event(&Event::RootScheduled {
        host: host.clone(),
        root: name.clone(),
    });
    if let Err(e) = deployer.deploy(id as u64, &name, predict) {
        reporter.event(&Event::AgentLost {
            host,
            message: e.detail,
        });
        scheduler.finished(id, false);
    }
}

/// What an agent reported during the deployment.
fn agent_event(
    model: &Model,
    scheduler: &mut Scheduler,
    host: &str,
    event: AgentEvent,
    reporter: &dyn Reporter,
) {
    match event {
        AgentEvent::Event { event, .. } => reporter.event(&event),
        AgentEvent::Deployed {
            id,
            changed,
            seconds,
            error,
        } => {
            let id = id as usize;
            if !scheduler.is_running(id) {
                return;
            }
            let root = &model.roots[id];
            let ok = error.is_none();
            reporter.event(&match error {
                None => Event::RootFinished {
                    host: root.host.clone(),
                    root: root.name.clone(),
                    changed,
                    seconds,
                },
                Some(lines) => {
                    let failure = Failure::from_lines(lines);
                    Event::RootFailed {
                        host: root.host.clone(),
                        root: root.name.clone(),
                        message: failure.message,
                        lines: failure.lines,
                    }
                }
            });
            scheduler.finished(id, ok);
        }
        AgentEvent::Lost { message } => {
            reporter.event(&Event::AgentLost {
                host: host.to_string(),
                message,
            });
            for (id, root) in model.roots.iter().enumerate() {
                if root.host == host && scheduler.is_running(id) {
                    scheduler.finished(id, false);
                }
            }
        }
    }
}

pub use crate::lock::ProjectLock;
