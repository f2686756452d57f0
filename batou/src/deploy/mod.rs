//! `batou deploy ENV`: load, configure, connect, deploy, summarize.

use crate::events::{Action, Event, Phase, Reporter, Step, Timings};
use crate::model::{Model, ModelEnv};
use crate::report::{self, Report};
use std::path::Path;
use std::time::Instant;

mod connect;
pub mod connectors;
mod load;
mod roots;
pub mod schedule;

use connect::{configuration_result, configure_and_connect};
use load::load;
use roots::deploy_roots;

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
    /// `-L`: with `-c` or `-P`, check or predict against this machine's
    /// state (`connect_method = local`, no provisioning).
    pub local: bool,
    /// `--provision-rebuild`: registered provisionings make the machines
    /// again (without one nothing is rebuilt; a warning says so).
    pub provision_rebuild: bool,
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
    if opts.local && action == Action::Deploy {
        reporter.event(&Event::Error {
            message:
                "The --local option is only to be used with --consistency-only or --predict-only."
                    .into(),
        });
        return EXIT_USAGE;
    }
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
        local: opts.local,
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

/// `batou graph ENV`: the configured model as DOT; load and configuration
/// errors go to the reporter (`Err` is the exit code). Connects nowhere.
pub fn graph(
    project_root: &Path,
    environment: &str,
    reporter: &dyn Reporter,
) -> Result<String, i32> {
    let opts = DeployOptions {
        environment: environment.to_string(),
        consistency_only: true,
        ..DeployOptions::default()
    };
    let env = match load(project_root, &opts, reporter) {
        Ok((env, _)) => env,
        Err(f) => return Err(f.exit),
    };
    let (model, errors) = Model::configure(ModelEnv::new(project_root.to_path_buf(), env));
    if configuration_result(reporter, errors).is_err() {
        return Err(1);
    }
    Ok(crate::ui::graph::dot(&model))
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
    let (plan, agents) = connected?;
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
    let deployed = deploy_roots(&plan, agents, &env, opts, reporter, timings);
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

pub use crate::lock::ProjectLock;
