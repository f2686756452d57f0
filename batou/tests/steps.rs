//! The deploy steps report what happens as events: a `Recorder` sees them
//! without any text being rendered.

use batou::deploy::{run, DeployOptions};
use batou::events::{Action, Event, Phase, Recorder, Step};
use batou::prelude::*;

pub const PORT: Resource<u16> = Resource::new("port");

#[component]
pub struct Web {}
impl Component for Web {
    fn configure(&mut self, cx: &mut Configure) -> batou::Result<()> {
        cx.provide(&PORT, 8080)
    }
}

#[component]
pub struct Proxy {}
impl Component for Proxy {
    fn configure(&mut self, cx: &mut Configure) -> batou::Result<()> {
        let ports = cx.require(&PORT)?;
        cx.log(format!("proxying {ports:?}"));
        Ok(())
    }
}

fn project(cfg: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("environments/test")).unwrap();
    std::fs::write(dir.path().join("environments/test/environment.cfg"), cfg).unwrap();
    dir
}

fn check(dir: &tempfile::TempDir, environment: &str, limit: &[&str]) -> (i32, Vec<Event>) {
    let rec = Recorder::default();
    let opts = DeployOptions {
        environment: environment.into(),
        consistency_only: true,
        limit: limit.iter().map(|s| s.to_string()).collect(),
        ..DeployOptions::default()
    };
    let code = run(dir.path(), &opts, &rec);
    (code, rec.events())
}

#[test]
fn a_check_reports_its_steps_logs_and_outcome() {
    let dir = project("[environment]\nconnect_method = local\n[hosts]\na = web\nb = proxy\n");
    let (code, events) = check(&dir, "test", &[]);
    assert_eq!(code, 0, "{events:?}");
    assert!(
        matches!(&events[0], Event::Started { action: Action::Check, environment, .. } if environment == "test")
    );
    assert!(events.contains(&Event::Phase {
        phase: Phase::Configuring
    }));
    assert!(events.contains(&Event::ConfigureLog {
        line: "proxying [8080]".into()
    }));
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, Event::HostConnecting { .. })),
        "-c connects nowhere"
    );
    assert!(matches!(
        events.last(),
        Some(Event::Finished {
            action: Action::Check,
            success: true,
            step: None,
            ..
        })
    ));
}

#[test]
fn failures_name_their_step() {
    let dir = project("[environment]\nconnect_method = local\n[hosts]\nb = proxy\n");
    let (code, events) = check(&dir, "test", &[]);
    assert_eq!(code, 1);
    assert!(
        events.iter().any(|e| matches!(e,
        Event::Report { report, .. } if report.title == "Unsatisfied resource requirements")),
        "{events:?}"
    );
    assert!(
        events.contains(&Event::ConfigurationFailed { errors: 2 }),
        "{events:?}"
    );
    assert!(matches!(
        events.last(),
        Some(Event::Finished {
            success: false,
            step: Some(Step::Connect),
            ..
        })
    ));

    let (code, events) = check(&dir, "nope", &[]);
    assert_eq!(code, 1);
    assert!(events.iter().any(
        |e| matches!(e, Event::Report { report, .. } if report.title == "Missing environment")
    ));
    assert!(matches!(
        events.last(),
        Some(Event::Finished {
            step: Some(Step::Load),
            ..
        })
    ));

    let (code, events) = check(&dir, "test", &["[z"]);
    assert_eq!(code, 2);
    assert!(
        events.iter().any(|e| matches!(e, Event::Error { message } if message.starts_with("--limit: invalid pattern \"[z\": "))),
        "{events:?}"
    );

    let (code, events) = check(&dir, "test", &["z*"]);
    assert_eq!(code, 2, "a limit matching nothing is a usage error");
    assert!(events.contains(&Event::Error {
        message: "--limit z* matches no host of environment test; its hosts: b".into()
    }));
}

#[component]
pub struct Site {}
impl Component for Site {
    fn configure(&mut self, cx: &mut Configure) -> batou::Result<()> {
        let url = cx.expand(self, "https://{{ host.aliases.api }}/")?;
        cx.log(url);
        Ok(())
    }
}

fn run_with(dir: &tempfile::TempDir, opts: DeployOptions) -> (i32, Vec<Event>) {
    let rec = Recorder::default();
    let code = run(dir.path(), &opts, &rec);
    (code, rec.events())
}

fn warnings(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Warning { message } => Some(message.clone()),
            _ => None,
        })
        .collect()
}

const PROVISIONED: &str = "[environment]\nconnect_method = ssh\ndevelop = /opt/batou\n[host:dev1]\ncomponents = site\nprovision-aliases = api\n[provisioner:default]\nmethod = fc-nixos-dev-vm\nhost = largo.fcdev.fcio.net\nmemory = 4096\ncores = 2\nrelease = https://example.com/r.json\n";

#[test]
fn provisioned_hosts_have_aliases_and_say_they_are_not_provisioned() {
    let dir = project(PROVISIONED);
    let (code, events) = run_with(
        &dir,
        DeployOptions {
            environment: "test".into(),
            consistency_only: true,
            provision_rebuild: true,
            ..DeployOptions::default()
        },
    );
    assert_eq!(code, 0, "{events:?}");
    assert!(events.contains(&Event::ConfigureLog {
        line: "https://api.dev1.largo.fcdev.fcio.net/".into()
    }));
    assert_eq!(
        warnings(&events),
        [
            "environments/test/environment.cfg:3: `develop` has no effect: batou 1's path to a development copy of batou; the agent is this executable",
            "dev1: not provisioned (provisioner default: fc-nixos-dev-vm on largo.fcdev.fcio.net); no library of this deployment provisions fc-nixos-dev-vm, so the machine must exist",
            "--provision-rebuild: nothing is rebuilt, no host is provisioned by this deployment",
        ]
    );
}

#[test]
fn local_checks_only_with_c_or_p() {
    let dir = project(PROVISIONED);
    let (code, events) = run_with(
        &dir,
        DeployOptions {
            environment: "test".into(),
            local: true,
            ..DeployOptions::default()
        },
    );
    assert_eq!(code, 2);
    assert!(events.contains(&Event::Error {
        message: "The --local option is only to be used with --consistency-only or --predict-only."
            .into()
    }));
    // Refused before anything starts.
    assert!(
        !events.iter().any(|e| matches!(e, Event::Started { .. })),
        "{events:?}"
    );

    let (code, events) = run_with(
        &dir,
        DeployOptions {
            environment: "test".into(),
            consistency_only: true,
            local: true,
            ..DeployOptions::default()
        },
    );
    assert_eq!(code, 0, "{events:?}");
    // No provisioning with -L.
    assert_eq!(warnings(&events).len(), 1, "{events:?}");
    assert!(matches!(
        events.last(),
        Some(Event::Finished {
            action: Action::Check,
            local: true,
            success: true,
            ..
        })
    ));
}

#[test]
fn a_legacy_layout_asks_for_migrate_and_migrate_makes_it_load() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("environments")).unwrap();
    std::fs::write(
        dir.path().join("environments/test.cfg"),
        "[environment]\nconnect_method = local\n[hosts]\na = web, proxy\n",
    )
    .unwrap();
    let (code, events) = check(&dir, "test", &[]);
    assert_eq!(code, 1);
    let report = events
        .iter()
        .find_map(|e| match e {
            Event::Report { report, .. } => Some(report.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(report.title, "Please run `./batou migrate` first.");
    assert!(report
        .fields
        .contains(&("Found".to_string(), "environments/test.cfg".to_string())));
    batou::migrate::migrate(dir.path()).unwrap();
    let (code, events) = check(&dir, "test", &[]);
    assert_eq!(code, 0, "{events:?}");
}

#[test]
fn a_broken_hostmap_is_a_load_error() {
    let dir = project("[environment]\nconnect_method = local\n[hosts]\na = web\n");
    std::fs::write(dir.path().join("environments/test/hostmap.json"), "[1]").unwrap();
    let (code, events) = check(&dir, "test", &[]);
    assert_eq!(code, 1);
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::Report { report, .. }
        if report.fields.iter().any(|(k, v)| k == "Message"
            && v.starts_with("environments/test/hostmap.json is not a JSON object of names:")))),
        "{events:?}"
    );
}

fn git(dir: &std::path::Path, args: &[&str]) {
    let out = std::process::Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_branch_defaults_to_batous_and_dirty_ships_the_named_one() {
    let dir = project("[environment]\nupdate_method = git-bundle\n[hosts]\na = web, proxy\n");
    git(dir.path(), &["init", "-q", "-b", "main"]);
    git(
        dir.path(),
        &[
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@example.com",
            "commit",
            "-q",
            "--allow-empty",
            "-m",
            "one",
        ],
    );
    std::fs::write(dir.path().join(".gitignore"), ".batou-lock\n").unwrap();
    git(dir.path(), &["add", "-A"]);
    git(
        dir.path(),
        &[
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@example.com",
            "commit",
            "-q",
            "-m",
            "two",
        ],
    );
    let (code, events) = check(&dir, "test", &[]);
    assert_eq!(code, 1);
    let report = events
        .iter()
        .find_map(|e| match e {
            Event::Report { report, .. } => Some(report.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(
        report.title,
        "You are on branch main, but the environment deploys branch master."
    );
    assert_eq!(
        report.details,
        ["batou deploys master when [environment] sets no `branch`: set `branch = main` to deploy main."]
    );
    git(dir.path(), &["branch", "master"]);
    let (code, events) = run_with(
        &dir,
        DeployOptions {
            environment: "test".into(),
            consistency_only: true,
            dirty: true,
            ..DeployOptions::default()
        },
    );
    assert_eq!(code, 0, "{events:?}");
    assert_eq!(
        warnings(&events),
        [
            "Skipping the repository checks (-D).",
            "You are on branch main; deploying the last commit of branch master (-D).",
        ]
    );
}

/// What the test's provisioning was asked for.
static PROVISIONED_REQUESTS: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

fn provision_container(request: &batou::provision::Request<'_>) -> Result<(), String> {
    PROVISIONED_REQUESTS.lock().unwrap().push(format!(
        "{} {} on {} rebuild={} aliases={:?}",
        request.host,
        request.provisioner.name,
        request.provisioner.host,
        request.rebuild,
        request.aliases
    ));
    if request.host == "broken" {
        return Err("no capacity left".into());
    }
    Ok(())
}

batou::__private::inventory::submit! {
    batou::provision::Provisioning {
        method: batou::provision::ProvisionMethod::FcNixosDevContainer,
        provision: provision_container,
    }
}

const CONTAINERS: &str = "[environment]\nconnect_method = ssh\n[host:box1]\ncomponents = web\nprovisioner = cont\nprovision-aliases = api\n[host:broken]\ncomponents = proxy\nprovisioner = cont\n[provisioner:cont]\nmethod = fc-nixos-dev-container\nhost = h.example\nchannel = https://example.com/c\n";

#[test]
fn a_registered_provisioning_makes_the_machines_before_anything_connects() {
    let dir = project(CONTAINERS);
    // -c connects nowhere and provisions nothing; no warning either, a
    // library provisions these hosts.
    let (code, events) = check(&dir, "test", &[]);
    assert_eq!(code, 0, "{events:?}");
    assert!(warnings(&events).is_empty(), "{events:?}");
    assert!(PROVISIONED_REQUESTS.lock().unwrap().is_empty());

    let (code, events) = run_with(
        &dir,
        DeployOptions {
            environment: "test".into(),
            provision_rebuild: true,
            ..DeployOptions::default()
        },
    );
    assert_ne!(code, 0, "{events:?}");
    assert_eq!(
        *PROVISIONED_REQUESTS.lock().unwrap(),
        [
            "box1 cont on h.example rebuild=true aliases={\"api\": \"api.box1.h.example\"}",
            "broken cont on h.example rebuild=true aliases={}",
        ]
    );
    assert!(events.contains(&Event::HostProvisioning {
        host: "box1".into(),
        provisioner: "cont".into(),
        method: "fc-nixos-dev-container".into(),
        rebuild: true,
    }));
    assert!(events.contains(&Event::Error {
        message: "broken: provisioning failed (fc-nixos-dev-container): no capacity left".into()
    }));
    // A failed provisioning stops the deployment before any host is
    // connected to.
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, Event::HostConnecting { .. })),
        "{events:?}"
    );
    assert!(warnings(&events).is_empty(), "{events:?}");
}
