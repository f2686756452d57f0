//! Step `load`: the environment, the command line's overrides and
//! `--limit`, and the checked working copy for VCS update methods.

use super::{emit_reports, DeployOptions, Failed, EXIT_USAGE};
use crate::environment::{duplicate_components, Environment};
use crate::events::{Event, Reporter, Step};
use crate::report::Report;
use std::path::Path;

/// Step `load`: the environment with the command line's overrides, and the
/// checked working copy for VCS update methods.
pub(super) fn load(
    project_root: &Path,
    opts: &DeployOptions,
    reporter: &dyn Reporter,
) -> Result<(Environment, Option<crate::repository::LocalRepo>), Failed> {
    reporter.event(&Event::LoadingEnvironment {
        environment: opts.environment.clone(),
    });
    let mut load_errors = Vec::new();
    let env = match Environment::load(project_root, &opts.environment) {
        Ok(mut env) => {
            for message in std::mem::take(&mut env.warnings) {
                reporter.event(&Event::Warning { message });
            }
            if opts.local {
                env.connect_method = crate::environment::ConnectMethod::Local;
            } else {
                announce_provisioning(&env, opts, reporter);
            }
            Some(env)
        }
        Err(e) => {
            load_errors.extend(e.0);
            None
        }
    };
    // A name two crates define is an error only where it is used.
    if let Some(env) = &env {
        let used: std::collections::BTreeSet<&str> = env
            .hosts
            .iter()
            .flat_map(|h| h.components.iter().map(|c| c.name.as_str()))
            .collect();
        load_errors.extend(duplicate_components(&|name| used.contains(name)));
    }
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
    if let (true, Some(repo)) = (opts.dirty, &repository) {
        reporter.event(&Event::Warning {
            message: "Skipping the repository checks (-D).".into(),
        });
        if repo.checked_out != repo.branch {
            reporter.event(&Event::Warning {
                message: format!(
                    "You are on branch {}; deploying the last commit of branch {} (-D).",
                    repo.checked_out, repo.branch
                ),
            });
        }
    }
    reporter.event(&Event::LoadingSecrets);
    let mut env = env;
    if let Some(env) = env.as_mut() {
        load_errors.extend(load_secrets(project_root, env));
    }
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

/// Hosts with a provisioner but no registered [`Provisioning`] for its
/// method are deployed to as they are: said here.
///
/// [`Provisioning`]: crate::provision::Provisioning
fn announce_provisioning(env: &Environment, opts: &DeployOptions, reporter: &dyn Reporter) {
    let provisioned: Vec<&crate::environment::Host> = env
        .hosts
        .iter()
        .filter(|h| !h.ignore && h.provisioner.is_some())
        .collect();
    let mut any_provisioned = false;
    for host in &provisioned {
        let name = host.provisioner.as_deref().unwrap_or_default();
        let provisioner = env.provisioners.get(name);
        if provisioner.is_some_and(|p| crate::provision::registered(p.method).is_some()) {
            any_provisioned = true;
            continue;
        }
        let method = provisioner
            .map(|p| format!("{} on {}", p.method, p.host))
            .unwrap_or_default();
        reporter.event(&Event::Warning {
            message: format!(
                "{}: not provisioned (provisioner {name}: {method}); no library of this deployment provisions {}, so the machine must exist",
                host.name,
                provisioner.map(|p| p.method.to_string()).unwrap_or_default()
            ),
        });
    }
    if opts.provision_rebuild && !any_provisioned {
        reporter.event(&Event::Warning {
            message:
                "--provision-rebuild: nothing is rebuilt, no host is provisioned by this deployment"
                    .into(),
        });
    }
}

/// Decrypts the environment's secrets into it; the reports of what is
/// wrong (a file that cannot be decrypted names the file and its keys).
pub(crate) fn load_secrets(project_root: &Path, env: &mut Environment) -> Vec<Report> {
    match crate::secrets::load(project_root, &env.name) {
        Ok(None) => Vec::new(),
        Ok(Some(loaded)) => {
            let known: std::collections::BTreeSet<&str> = crate::component::registrations()
                .iter()
                .map(|r| r.name)
                .collect();
            crate::secrets::apply(env, loaded, &|name| known.contains(name))
        }
        Err(e) => vec![
            Report::new("Cannot load secrets", crate::report::order::CONFIGURATION)
                .field("Message", e.to_string()),
        ],
    }
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
    // `!pattern` excludes (as Ansible's and colmena's --limit); without
    // a pattern that includes, every host not excluded is selected.
    let mut include = Vec::new();
    let mut exclude = Vec::new();
    for p in limit {
        let (list, text) = match p.strip_prefix('!') {
            Some(rest) => (&mut exclude, rest),
            None => (&mut include, p.as_str()),
        };
        let pattern =
            glob::Pattern::new(text).map_err(|e| format!("--limit: invalid pattern {p:?}: {e}"))?;
        list.push(pattern);
    }
    let matches = |name: &str| {
        (include.is_empty() || include.iter().any(|p| p.matches(name)))
            && !exclude.iter().any(|p| p.matches(name))
    };
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
        if !matches(&h.name) && !h.ignore {
            h.ignore = true;
            h.not_selected = true;
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
