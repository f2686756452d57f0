//! What happens during a deployment, as data: the steps and the agents emit
//! [`Event`]s to a [`Reporter`]; only views (in `batou::ui`) turn them into
//! batou's text or JSON lines. Agents send their events over the protocol,
//! so the output of every host is rendered the same way.
//!
//! ```
//! use batou::events::{Event, Recorder, Reporter};
//! let rec = Recorder::default();
//! rec.event(&Event::RootScheduled { host: "web".into(), root: "nginx".into() });
//! assert!(matches!(&rec.events()[0], Event::RootScheduled { root, .. } if root == "nginx"));
//! ```

use crate::output::Line;
use crate::report::Report;
use crate::settings::ConnectMethod;
use serde::{Deserialize, Serialize};
use std::sync::Mutex;

/// Why a root is not deployed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipReason {
    /// Its host is ignored.
    HostIgnored,
    /// The root is ignored (`!name`).
    ComponentIgnored,
    /// Its host is not selected by `--limit`.
    NotSelected,
}

/// What travels to a host while it is set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// The executable, uploaded as the agent.
    Upload,
    /// The project's files (`sync`).
    Ship,
    /// A git or Mercurial bundle.
    Bundle,
}

impl Stage {
    /// What a progress line says.
    pub fn verb(self) -> &'static str {
        match self {
            Stage::Upload => "uploading the agent",
            Stage::Ship => "shipping the project",
            Stage::Bundle => "shipping the bundle",
        }
    }
}

/// Called with (bytes done, bytes in all or 0 when unknown) as data
/// travels.
pub type Progress<'a> = &'a (dyn Fn(u64, u64) + Sync);

/// What the run does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// `deploy`.
    Deploy,
    /// `deploy -c`.
    Check,
    /// `deploy -P`.
    Predict,
}

/// The step a run failed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// Reading the environment.
    Load,
    /// Configuring the model and connecting hosts.
    Connect,
    /// Deploying.
    Deploy,
}

impl Step {
    /// batou's name of the step (`FAILED (during load)`).
    pub fn name(self) -> &'static str {
        match self {
            Step::Load => "load",
            Step::Connect => "connect",
            Step::Deploy => "deploy",
        }
    }
}

/// A section of the run (batou prints each as a rule).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Loading the environment and checking the repository.
    Preparing,
    /// Configuring the model only (`-c`).
    Configuring,
    /// Connecting the hosts while the model is configured.
    Connecting,
    /// Deploying the roots.
    Deploying,
    /// Predicting (`-P`).
    Predicting,
    /// Timings.
    Summary,
}

/// Seconds spent, for the summary.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Timings {
    /// The whole run after loading.
    pub total: f64,
    /// Connecting and configuring.
    pub connect: f64,
    /// Deploying.
    pub deploy: f64,
    /// Per host: connecting (up to a configured agent) and deploying (from
    /// its first root's start to its last root's end).
    #[serde(default)]
    pub hosts: Vec<HostTiming>,
    /// The slowest roots, slowest first (at most [`SLOWEST`]).
    #[serde(default)]
    pub slowest: Vec<RootTiming>,
}

/// How many of the slowest roots the summary names.
pub const SLOWEST: usize = 5;

/// Seconds spent on one host.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HostTiming {
    /// The host.
    pub host: String,
    /// Connecting, uploading, shipping, configuring.
    pub connect: f64,
    /// Deploying its roots.
    pub deploy: f64,
}

/// Seconds one root took.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RootTiming {
    /// Its host.
    pub host: String,
    /// The root.
    pub root: String,
    /// Seconds.
    pub seconds: f64,
}

/// A root that failed on a host: its error report as lines.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    /// The first line, without `ERROR: `.
    pub message: String,
    /// The lines of the report (the first included).
    pub lines: Vec<Line>,
}

impl Failure {
    /// A failure from its report lines; the message is the first line.
    pub fn from_lines(lines: Vec<Line>) -> Failure {
        let message = lines
            .first()
            .map(|l| {
                l.text
                    .strip_prefix("ERROR: ")
                    .unwrap_or(&l.text)
                    .to_string()
            })
            .unwrap_or_default();
        Failure { message, lines }
    }
}

/// Something that happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// The run starts; `id` names batou, the compiler and the OS.
    Started {
        /// The identification line.
        id: String,
        /// What the run does.
        action: Action,
        /// The environment.
        environment: String,
    },
    /// A new section of the run.
    Phase {
        /// Which.
        phase: Phase,
    },
    /// The environment is being loaded.
    LoadingEnvironment {
        /// Its name.
        environment: String,
    },
    /// The working copy is being checked.
    VerifyingRepository,
    /// Secrets are being loaded.
    LoadingSecrets,
    /// Something the user should know.
    Warning {
        /// What.
        message: String,
    },
    /// A load or configuration error (merged across hosts).
    Report {
        /// The report.
        #[serde(flatten)]
        report: Report,
        /// The hosts it is about.
        hosts: Vec<String>,
    },
    /// The configuration failed with this many errors.
    ConfigurationFailed {
        /// How many reports.
        errors: usize,
    },
    /// A host is being connected.
    HostConnecting {
        /// The host.
        host: String,
        /// How.
        method: ConnectMethod,
        /// 1-based position and number of hosts.
        index: usize,
        /// Number of hosts.
        total: usize,
    },
    /// A host is ignored.
    HostSkipped {
        /// The host.
        host: String,
        /// 1-based position.
        index: usize,
        /// Number of hosts.
        total: usize,
        /// Why: ignored (`!host`) or not selected by `--limit`.
        reason: SkipReason,
    },
    /// Bytes travelling to a host while it is set up.
    HostProgress {
        /// The host.
        host: String,
        /// What travels.
        stage: Stage,
        /// Bytes sent so far.
        done: u64,
        /// Bytes in all, when known.
        total: Option<u64>,
    },
    /// A host's agent is running and configuring.
    HostConnected {
        /// The host.
        host: String,
        /// Seconds it took (connect, upload, ship).
        seconds: f64,
    },
    /// A library provisions a host's machine (before connecting).
    HostProvisioning {
        /// The host.
        host: String,
        /// Its `[provisioner:NAME]`.
        provisioner: String,
        /// The provisioner's method.
        method: String,
        /// `--provision-rebuild`.
        rebuild: bool,
    },
    /// `vagrant up` runs.
    StartingVagrant,
    /// A host could not be reached or set up.
    ConnectFailed {
        /// The host.
        host: String,
        /// Why.
        message: String,
    },
    /// A line a component logged while configuring.
    ConfigureLog {
        /// The line.
        line: String,
    },
    /// The number of parallel jobs (with `--debug`).
    Jobs {
        /// `-j`.
        jobs: usize,
    },
    /// A root is not deployed.
    RootSkipped {
        /// Its host.
        host: String,
        /// The root.
        root: String,
        /// Why.
        reason: SkipReason,
    },
    /// A root was handed to its host's agent.
    RootScheduled {
        /// Its host.
        host: String,
        /// The root.
        root: String,
    },
    /// A component needs an update (or prints something).
    ComponentChanged {
        /// Its host.
        host: String,
        /// Its root.
        root: String,
        /// Breadcrumbs, e.g. `Tick > File('work/tick/tick.sh') > Content('tick.sh')`.
        component: String,
        /// The diff of its content (absent for sensitive or binary files).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        diff: Option<Vec<String>>,
    },
    /// A line a component printed while deploying.
    ComponentOutput {
        /// Its host.
        host: String,
        /// Its root.
        root: String,
        /// Breadcrumbs.
        component: String,
        /// The line.
        line: Line,
    },
    /// Progress of a long operation of a component (a download).
    ComponentProgress {
        /// Its host.
        host: String,
        /// Its root.
        root: String,
        /// Breadcrumbs.
        component: String,
        /// Bytes done.
        done: u64,
        /// Bytes in all, when known.
        total: Option<u64>,
    },
    /// A component took long.
    ComponentSlow {
        /// Its host.
        host: String,
        /// Its root.
        root: String,
        /// Breadcrumbs.
        component: String,
        /// Seconds in all.
        total: f64,
        /// Seconds in verify.
        verify: Option<f64>,
        /// Seconds in update.
        update: Option<f64>,
        /// Seconds in sub-components.
        sub: Option<f64>,
    },
    /// A `before-update` handler would run (predicting).
    BeforeUpdate {
        /// Its host.
        host: String,
        /// Its root.
        root: String,
        /// The handler's breadcrumbs.
        handler: String,
    },
    /// A root deployed.
    RootFinished {
        /// Its host.
        host: String,
        /// The root.
        root: String,
        /// Whether anything changed.
        changed: bool,
        /// How long it took.
        seconds: f64,
    },
    /// A root failed.
    RootFailed {
        /// Its host.
        host: String,
        /// The root.
        root: String,
        /// The error's first line.
        message: String,
        /// The whole report.
        lines: Vec<Line>,
    },
    /// The connection to a host's agent is gone.
    AgentLost {
        /// The host.
        host: String,
        /// Why.
        message: String,
    },
    /// An error of the run itself.
    Error {
        /// What.
        message: String,
    },
    /// The summary of `-c`.
    CheckSummary {
        /// Seconds.
        seconds: f64,
    },
    /// The summary of a deployment.
    DeploySummary {
        /// The timings.
        timings: Timings,
    },
    /// The run ended.
    Finished {
        /// What the run did.
        action: Action,
        /// `-L`: checked or predicted against this machine's state.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        local: bool,
        /// Whether it succeeded.
        success: bool,
        /// Where it failed.
        step: Option<Step>,
        /// Seconds spent.
        timings: Timings,
    },
}

/// Receives the events of a run; views implement it.
pub trait Reporter: Sync {
    /// One event.
    fn event(&self, event: &Event);
    /// Runs `report`, which reports events that arrived together: a view
    /// may show them in one go (one write instead of one per line).
    fn batch(&self, report: &mut dyn FnMut()) {
        report()
    }
}

/// Keeps every event (for tests).
#[derive(Debug, Default)]
pub struct Recorder {
    events: Mutex<Vec<Event>>,
}

impl Recorder {
    /// The events so far.
    pub fn events(&self) -> Vec<Event> {
        self.events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl Reporter for Recorder {
    fn event(&self, event: &Event) {
        self.events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(event.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One of every kind, with the tag the schema (docs/events.md) names.
    fn every_kind() -> Vec<(&'static str, Event)> {
        let h = || "h".to_string();
        let r = || "r".to_string();
        let c = || "R > File('x')".to_string();
        let line = Line::plain("x");
        vec![
            (
                "started",
                Event::Started {
                    id: "batou".into(),
                    action: Action::Deploy,
                    environment: "e".into(),
                },
            ),
            (
                "phase",
                Event::Phase {
                    phase: Phase::Deploying,
                },
            ),
            (
                "loading_environment",
                Event::LoadingEnvironment {
                    environment: "e".into(),
                },
            ),
            ("verifying_repository", Event::VerifyingRepository),
            ("loading_secrets", Event::LoadingSecrets),
            (
                "warning",
                Event::Warning {
                    message: "m".into(),
                },
            ),
            (
                "report",
                Event::Report {
                    report: Report::new("t", 0).field("k", "v"),
                    hosts: vec![h()],
                },
            ),
            (
                "configuration_failed",
                Event::ConfigurationFailed { errors: 2 },
            ),
            (
                "host_connecting",
                Event::HostConnecting {
                    host: h(),
                    method: ConnectMethod::Ssh,
                    index: 1,
                    total: 2,
                },
            ),
            (
                "host_skipped",
                Event::HostSkipped {
                    host: h(),
                    index: 1,
                    total: 2,
                    reason: SkipReason::NotSelected,
                },
            ),
            (
                "host_progress",
                Event::HostProgress {
                    host: h(),
                    stage: Stage::Ship,
                    done: 1,
                    total: Some(2),
                },
            ),
            (
                "host_connected",
                Event::HostConnected {
                    host: h(),
                    seconds: 1.0,
                },
            ),
            (
                "host_provisioning",
                Event::HostProvisioning {
                    host: h(),
                    provisioner: "default".into(),
                    method: "fc-nixos-dev-vm".into(),
                    rebuild: false,
                },
            ),
            ("starting_vagrant", Event::StartingVagrant),
            (
                "connect_failed",
                Event::ConnectFailed {
                    host: h(),
                    message: "m".into(),
                },
            ),
            ("configure_log", Event::ConfigureLog { line: "l".into() }),
            ("jobs", Event::Jobs { jobs: 2 }),
            (
                "root_skipped",
                Event::RootSkipped {
                    host: h(),
                    root: r(),
                    reason: SkipReason::HostIgnored,
                },
            ),
            (
                "root_scheduled",
                Event::RootScheduled {
                    host: h(),
                    root: r(),
                },
            ),
            (
                "component_changed",
                Event::ComponentChanged {
                    host: h(),
                    root: r(),
                    component: c(),
                    diff: Some(vec!["+a".into()]),
                },
            ),
            (
                "component_output",
                Event::ComponentOutput {
                    host: h(),
                    root: r(),
                    component: c(),
                    line: line.clone(),
                },
            ),
            (
                "component_progress",
                Event::ComponentProgress {
                    host: h(),
                    root: r(),
                    component: c(),
                    done: 4 << 20,
                    total: Some(8 << 20),
                },
            ),
            (
                "component_slow",
                Event::ComponentSlow {
                    host: h(),
                    root: r(),
                    component: c(),
                    total: 12.0,
                    verify: Some(1.5),
                    update: None,
                    sub: None,
                },
            ),
            (
                "before_update",
                Event::BeforeUpdate {
                    host: h(),
                    root: r(),
                    handler: c(),
                },
            ),
            (
                "root_finished",
                Event::RootFinished {
                    host: h(),
                    root: r(),
                    changed: true,
                    seconds: 0.5,
                },
            ),
            (
                "root_failed",
                Event::RootFailed {
                    host: h(),
                    root: r(),
                    message: "m".into(),
                    lines: vec![line],
                },
            ),
            (
                "agent_lost",
                Event::AgentLost {
                    host: h(),
                    message: "m".into(),
                },
            ),
            (
                "error",
                Event::Error {
                    message: "m".into(),
                },
            ),
            ("check_summary", Event::CheckSummary { seconds: 1.0 }),
            (
                "deploy_summary",
                Event::DeploySummary {
                    timings: Timings::default(),
                },
            ),
            (
                "finished",
                Event::Finished {
                    local: false,
                    action: Action::Check,
                    success: false,
                    step: Some(Step::Load),
                    timings: Timings::default(),
                },
            ),
        ]
    }

    /// Exhaustive: a new kind of event does not compile until it is in
    /// [`every_kind`] and documented.
    fn covered(e: &Event) -> bool {
        match e {
            Event::Started { .. }
            | Event::Phase { .. }
            | Event::LoadingEnvironment { .. }
            | Event::VerifyingRepository
            | Event::LoadingSecrets
            | Event::Warning { .. }
            | Event::Report { .. }
            | Event::ConfigurationFailed { .. }
            | Event::HostConnecting { .. }
            | Event::HostSkipped { .. }
            | Event::HostProgress { .. }
            | Event::HostConnected { .. }
            | Event::HostProvisioning { .. }
            | Event::StartingVagrant
            | Event::ConnectFailed { .. }
            | Event::ConfigureLog { .. }
            | Event::Jobs { .. }
            | Event::RootSkipped { .. }
            | Event::RootScheduled { .. }
            | Event::ComponentChanged { .. }
            | Event::ComponentOutput { .. }
            | Event::ComponentProgress { .. }
            | Event::ComponentSlow { .. }
            | Event::BeforeUpdate { .. }
            | Event::RootFinished { .. }
            | Event::RootFailed { .. }
            | Event::AgentLost { .. }
            | Event::Error { .. }
            | Event::CheckSummary { .. }
            | Event::DeploySummary { .. }
            | Event::Finished { .. } => true,
        }
    }

    #[test]
    fn every_kind_is_tagged_and_round_trips() {
        let kinds = every_kind();
        let distinct: std::collections::HashSet<_> = kinds
            .iter()
            .map(|(_, e)| std::mem::discriminant(e))
            .collect();
        assert_eq!(distinct.len(), kinds.len(), "each kind once");
        assert_eq!(kinds.len(), 31, "one of each of the 31 kinds of `covered`");
        assert!(kinds.iter().all(|(_, e)| covered(e)));
        for (tag, event) in kinds {
            let json = serde_json::to_value(&event).unwrap();
            assert_eq!(json["event"], tag, "{json}");
            let back: Event = serde_json::from_value(json).unwrap();
            assert_eq!(back, event);
        }
        let schema = include_str!("../../docs/events.md");
        for (tag, _) in every_kind() {
            assert!(
                schema.contains(&format!("| `{tag}` |")),
                "{tag} is documented"
            );
        }
    }

    #[test]
    fn events_serialize_with_an_event_field() {
        let e = Event::RootFinished {
            host: "h".into(),
            root: "r".into(),
            changed: true,
            seconds: 0.5,
        };
        assert_eq!(
            serde_json::to_string(&e).unwrap(),
            r#"{"event":"root_finished","host":"h","root":"r","changed":true,"seconds":0.5}"#
        );
        let r = Event::Report {
            report: Report::new("Missing environment", 0).field("Environment", "x"),
            hosts: vec![],
        };
        let v: serde_json::Value = serde_json::to_value(&r).unwrap();
        assert_eq!(v["event"], "report");
        assert_eq!(v["title"], "Missing environment");
        let back: Event = serde_json::from_value(v).unwrap();
        assert_eq!(back, r);
    }
}
