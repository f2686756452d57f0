//! Step `connect`: the agents of all hosts started in parallel (uploaded,
//! locked, shipped) while the controller configures the model.

use super::connectors::Connector;
use super::{emit_reports, DeployOptions, Failed, EXIT_UNREACHABLE};
use crate::agent::client::AgentConnection;
use crate::environment::{ConnectMethod, Environment};
use crate::events::{Event, Phase, Reporter, Stage, Step, Timings};
use crate::model::{Model, ModelEnv, Plan};
use crate::report::Report;
use std::path::Path;
use std::time::Instant;

/// The hosts whose provisioner's method a library provisions, one after
/// the other, before any host is connected to (not with `-L`, which
/// connects locally).
fn provision(
    project_root: &Path,
    env: &Environment,
    opts: &DeployOptions,
    reporter: &dyn Reporter,
) -> Result<(), String> {
    if env.connect_method == ConnectMethod::Local {
        return Ok(());
    }
    for (host, provisioner, provisioning) in crate::provision::provisionable(env) {
        reporter.event(&Event::HostProvisioning {
            host: host.name.clone(),
            provisioner: provisioner.name.clone(),
            method: provisioner.method.to_string(),
            rebuild: opts.provision_rebuild,
        });
        let request = crate::provision::Request {
            host: &host.name,
            aliases: &host.aliases,
            provisioner,
            rebuild: opts.provision_rebuild,
            project_root,
            environment: &env.name,
        };
        (provisioning.provision)(&request).map_err(|e| {
            format!(
                "{}: provisioning failed ({}): {e}",
                host.name, provisioner.method
            )
        })?;
    }
    Ok(())
}

/// Step `connect`: the controller configures the whole model itself while
/// the agents are started (and configure their part; a local deployment's
/// only agent configures for both). `-c` connects nowhere. Returns the
/// plan of the deployment and the connected agents.
pub(super) fn configure_and_connect(
    project_root: &Path,
    env: &Environment,
    repository: Option<&crate::repository::LocalRepo>,
    opts: &DeployOptions,
    reporter: &dyn Reporter,
    timings: &mut Timings,
) -> Result<(Plan, Vec<(String, AgentConnection)>), Failed> {
    if opts.consistency_only {
        reporter.event(&Event::Phase {
            phase: Phase::Configuring,
        });
    } else {
        reporter.event(&Event::Phase {
            phase: Phase::Connecting,
        });
        if let Err(message) = provision(project_root, env, opts, reporter) {
            reporter.event(&Event::Error { message });
            return Err(Step::Connect.into());
        }
        announce_hosts(env, reporter);
    }
    let connector =
        super::connectors::for_environment(project_root, env, opts.accept_new_host_keys);
    if !opts.consistency_only {
        if env.connect_method == ConnectMethod::Vagrant {
            reporter.event(&Event::StartingVagrant);
        }
        if let Err(message) = connector.prepare() {
            reporter.event(&Event::Error { message });
            return Err(Step::Connect.into());
        }
    }
    let (connected, configured) = connect_while_configuring(
        connector.as_ref(),
        project_root,
        env,
        repository,
        opts,
        reporter,
    );
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
    let mut plan = None;
    if let Some((model, errors)) = configured {
        configuration_result(reporter, errors)?;
        let model_plan = model.plan();
        emit_logs(reporter, &model_plan);
        // The agents that waited for the model configure now, all at once,
        // each with the hosts it needs in full.
        let without_hosts = Environment {
            hosts: Vec::new(),
            ..env.clone()
        };
        for (host, (agent, pending)) in agents.iter_mut() {
            if let Some(root) = pending.take() {
                let roots = model.roots_for_host(host);
                let environment = Environment {
                    hosts: env.hosts_for(&roots),
                    ..without_hosts.clone()
                };
                if let Err(e) = agent.start_configure(&root, environment, Some(roots)) {
                    reporter.event(&Event::ConnectFailed {
                        host: e.host,
                        message: e.detail,
                    });
                    return Err(Step::Connect.into());
                }
            }
        }
        plan = Some(model_plan);
    }
    let mut agents: Vec<(String, AgentConnection)> = agents
        .into_iter()
        .map(|(host, (agent, _))| (host, agent))
        .collect();
    for (_, agent) in agents.iter_mut() {
        match agent.finish_configure() {
            Ok((errors, agent_plan)) => {
                configuration_result(reporter, errors)?;
                if plan.is_none() {
                    // The local agent configured for the controller too.
                    emit_logs(reporter, &agent_plan);
                    plan = Some(agent_plan);
                }
            }
            Err(e) => {
                reporter.event(&Event::ConnectFailed {
                    host: e.host,
                    message: e.detail,
                });
                return Err(Step::Connect.into());
            }
        }
    }
    Ok((plan.unwrap_or_default(), agents))
}

/// The configure logs of the roots, in order.
fn emit_logs(reporter: &dyn Reporter, plan: &Plan) {
    for root in &plan.roots {
        for line in &root.logs {
            reporter.event(&Event::ConfigureLog { line: line.clone() });
        }
    }
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
                reason: if host.not_selected {
                    crate::events::SkipReason::NotSelected
                } else {
                    crate::events::SkipReason::HostIgnored
                },
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
pub(super) fn configuration_result(
    reporter: &dyn Reporter,
    errors: Vec<Report>,
) -> Result<(), Step> {
    if errors.is_empty() {
        return Ok(());
    }
    let n = errors.len();
    emit_reports(reporter, errors);
    reporter.event(&Event::ConfigurationFailed { errors: n });
    Err(Step::Connect)
}

/// A connected agent, and the project directory on its host when it was
/// not yet asked to configure (see [`configures_early`]).
type Agent = (AgentConnection, Option<String>);

/// Each host's agent (or why not) and the seconds it took.
type Connected = Vec<(String, Result<Agent, crate::transport::TransportError>, f64)>;

/// With a single host, its agent configures everything (its roots read
/// only from each other) and starts at once, while the controller
/// configures. With more, it waits for the controller's model, which says
/// which roots it needs: its own and those whose values they read.
fn configures_early(env: &Environment) -> bool {
    active_hosts(env) <= 1
}

/// The hosts deployed to (not ignored).
fn active_hosts(env: &Environment) -> usize {
    env.hosts.iter().filter(|h| !h.ignore).count()
}

/// A local deployment to one host: its agent configures the same model
/// on this machine, so the controller takes the agent's [`Plan`] instead
/// of configuring (and rendering) everything a second time.
fn agent_configures_for_controller(env: &Environment, opts: &DeployOptions) -> bool {
    !opts.consistency_only && env.connect_method == ConnectMethod::Local && active_hosts(env) == 1
}

/// Connects all hosts in parallel (at most [`CONNECT_PARALLEL`] at a time)
/// while the controller configures its own copy of the model (`None` when
/// the local agent configures for it).
fn connect_while_configuring(
    connector: &dyn Connector,
    project_root: &Path,
    env: &Environment,
    repository: Option<&crate::repository::LocalRepo>,
    opts: &DeployOptions,
    reporter: &dyn Reporter,
) -> (Connected, Option<(Model, Vec<Report>)>) {
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
                    scope.spawn(move || {
                        let started = Instant::now();
                        let result = connect(
                            connector,
                            project_root,
                            env,
                            host,
                            gate,
                            repository,
                            reporter,
                        );
                        (host.name.clone(), result, started.elapsed().as_secs_f64())
                    })
                })
                .collect()
        };
        let configured = (!agent_configures_for_controller(env, opts))
            .then(|| Model::configure(ModelEnv::new(project_root.to_path_buf(), env.clone())));
        let connected = handles.into_iter().filter_map(|h| h.join().ok()).collect();
        (connected, configured)
    })
}

/// Starts the agent of one host and asks it to configure: locally, or over
/// ssh after uploading this executable, taking the host's lock and shipping
/// the project.
fn connect(
    connector: &dyn Connector,
    project_root: &Path,
    env: &Environment,
    host: &crate::environment::Host,
    gate: &Gate,
    repository: Option<&crate::repository::LocalRepo>,
    reporter: &dyn Reporter,
) -> Result<Agent, crate::transport::TransportError> {
    let _slot = gate.enter();
    let started = Instant::now();
    let meter = Meter::new(&host.name, reporter);
    let upload = |done, total| meter.report(Stage::Upload, done, total);
    let mut a = connector.open(host, &upload)?;
    let root = match connector.target_directory() {
        None => project_root.to_string_lossy().into_owned(),
        Some(target) => {
            a.lock(target)?;
            ship_project(&mut a, project_root, env, host, repository, &meter)?
        }
    };
    let pending = if configures_early(env) {
        a.start_configure(&root, env.clone(), None)?;
        None
    } else {
        Some(root)
    };
    reporter.event(&Event::HostConnected {
        host: host.name.clone(),
        seconds: started.elapsed().as_secs_f64(),
    });
    Ok((a, pending))
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

/// Starts the agent over SSH. Transient network trouble is retried with
/// back-off; refusals (host keys, platforms, authentication) are not.
pub(super) fn start_with_retries(
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
