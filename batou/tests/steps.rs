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
