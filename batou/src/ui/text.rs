//! batou's text view: section rules, step lines with icons, `ERROR:`
//! blocks. Failures of roots are kept until the run ends and printed
//! merged: the same failure on several hosts is one block with
//! `Affected hosts`.

use crate::events::{Action, Event, Phase, Reporter};
use crate::output::{format_duration, Color, Line, Style, Terminal};
use std::collections::BTreeSet;
use std::sync::Mutex;

/// The lines a component-level event prints (also used by
/// [`crate::testing::TestRoot`]); `None` for other events.
pub fn component_line(event: &Event) -> Option<Line> {
    Some(match event {
        Event::ComponentChanged {
            host, component, ..
        } => Line::new(format!("🚀 {host}: {component}"), Style::BOLD),
        Event::ComponentOutput { line, .. } => line.clone(),
        Event::ComponentSlow {
            host,
            component,
            total,
            verify,
            update,
            sub,
            ..
        } => Line::new(
            format!(
                "💤 {host}: {component} [total={}, verify={}, update={}, sub={}]",
                format_duration(Some(*total)),
                format_duration(*verify),
                format_duration(*update),
                format_duration(*sub),
            ),
            Style::BOLD,
        ),
        Event::BeforeUpdate { handler, .. } => {
            Line::plain(format!("Trigger before-update: {handler}.before_update"))
        }
        _ => return None,
    })
}

/// Renders events as batou does on a terminal.
pub struct BatouText {
    term: Terminal,
    /// Root failures so far, merged by their lines.
    failures: Mutex<Vec<(Vec<Line>, BTreeSet<String>)>>,
    /// Live per-host progress lines (only on a terminal).
    progress: Option<super::progress::Progress>,
}

impl BatouText {
    /// A view on a terminal (with live progress lines when stdout is one).
    pub fn new(term: Terminal) -> Self {
        let progress = term.is_tty().then(super::progress::Progress::new);
        BatouText {
            term,
            failures: Mutex::new(Vec::new()),
            progress,
        }
    }

    fn phase(&self, phase: Phase) {
        let title = match phase {
            Phase::Preparing => "Preparing",
            Phase::Configuring => "Configuring model ...",
            Phase::Connecting => "Connecting hosts and configuring model ...",
            Phase::Deploying => "Deploying",
            Phase::Predicting => "Predicting deployment actions",
            Phase::Summary => "Summary",
        };
        self.term.section(title, None);
    }

    fn failed(&self, host: &str, lines: &[Line]) {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        match failures.iter_mut().find(|(l, _)| l == lines) {
            Some((_, hosts)) => {
                hosts.insert(host.to_string());
            }
            None => failures.push((lines.to_vec(), BTreeSet::from([host.to_string()]))),
        }
    }

    fn print_failures(&self) {
        let failures =
            std::mem::take(&mut *self.failures.lock().unwrap_or_else(|e| e.into_inner()));
        for (lines, hosts) in failures {
            for l in &lines {
                self.term.line(l);
            }
            let list: Vec<_> = hosts.into_iter().collect();
            self.term
                .tabular("Affected hosts", &list.join(", "), Style::color(Color::Red));
        }
    }

    fn finished(
        &self,
        action: Action,
        local: bool,
        success: bool,
        step: Option<crate::events::Step>,
    ) {
        self.print_failures();
        let name = match action {
            Action::Check => "CONSISTENCY CHECK",
            Action::Predict => "DEPLOYMENT PREDICTION",
            Action::Deploy => "DEPLOYMENT",
        };
        let name = if local {
            format!("{name} (local)")
        } else {
            name.to_string()
        };
        match (success, step) {
            (true, _) => {
                let color = match action {
                    Action::Check => Color::Cyan,
                    Action::Predict => Color::Purple,
                    Action::Deploy => Color::Green,
                };
                self.term.section(&format!("{name} FINISHED"), Some(color));
            }
            (false, step) => {
                let during = step.map(|s| s.name()).unwrap_or("deploy");
                self.term.section(
                    &format!("{name} FAILED (during {during})"),
                    Some(Color::Red),
                );
            }
        }
    }
}

impl Reporter for BatouText {
    fn event(&self, event: &Event) {
        match &self.progress {
            Some(p) if p.takes(event) => {}
            Some(p) => p.suspend(|| self.render(event)),
            None => self.render(event),
        }
    }

    fn batch(&self, report: &mut dyn FnMut()) {
        // Held lines must not be written over live progress lines.
        if self.progress.as_ref().is_some_and(|p| p.is_drawing()) {
            report();
        } else {
            self.term.batch(report);
        }
    }
}

impl BatouText {
    fn render(&self, event: &Event) {
        if let Some(line) = component_line(event) {
            self.term.line(&line);
            return;
        }
        let t = &self.term;
        match event {
            Event::Started { id, .. } => t.plain(id),
            Event::Phase { phase } => self.phase(*phase),
            Event::LoadingEnvironment { environment } => t.step(
                "main",
                &format!("Loading environment `{environment}`..."),
                Some("📦"),
            ),
            Event::VerifyingRepository => t.step("main", "Verifying repository ...", Some("🔍")),
            Event::LoadingSecrets => t.step("main", "Loading secrets ...", Some("🔑")),
            Event::Warning { message } => t.warn(message),
            Event::Report { report, hosts } => {
                t.plain("");
                for line in report.lines() {
                    t.line(&line);
                }
                if !hosts.is_empty() {
                    t.tabular(
                        "Affected hosts",
                        &hosts.join(", "),
                        Style::color(Color::Red),
                    );
                }
            }
            Event::ConfigurationFailed { errors } => t.section(
                &format!("{errors} ERRORS - CONFIGURATION FAILED"),
                Some(Color::Red),
            ),
            Event::HostConnecting {
                host,
                method,
                index,
                total,
            } => t.step(
                host,
                &format!("Connecting via {method} ({index}/{total})"),
                Some("🌐"),
            ),
            Event::HostSkipped {
                host,
                index,
                total,
                reason,
            } => t.line(&Line::new(
                match reason {
                    crate::events::SkipReason::NotSelected => {
                        format!("⏭️ {host}: Not selected by --limit ({index}/{total})")
                    }
                    _ => format!("⏭️ {host}: Connection ignored ({index}/{total})"),
                },
                Style::color(Color::Red),
            )),
            Event::StartingVagrant => t.step("main", "Starting vagrant machines ...", Some("🧱")),
            Event::HostProvisioning {
                host,
                provisioner,
                method,
                rebuild,
            } => t.step(
                host,
                &format!(
                    "{} (provisioner {provisioner}: {method})",
                    if *rebuild {
                        "Rebuilding"
                    } else {
                        "Provisioning"
                    }
                ),
                Some("🏗️"),
            ),
            Event::ConnectFailed { host, message } | Event::AgentLost { host, message } => {
                t.error(&format!("{host}: {message}"))
            }
            Event::ConfigureLog { line } => t.plain(line),
            Event::Jobs { jobs } => t.step("main", &format!("Number of jobs: {jobs}"), Some("⚙️")),
            Event::RootSkipped { host, root, reason } => {
                let why = match reason {
                    crate::events::SkipReason::HostIgnored => "Host ignored",
                    crate::events::SkipReason::ComponentIgnored => "Component ignored",
                    crate::events::SkipReason::NotSelected => "not selected by --limit",
                };
                t.line(&Line::new(
                    format!("⏭️ {host}: Skipping component {root} ... ({why})"),
                    Style::color(Color::Red),
                ))
            }
            Event::RootScheduled { host, root } => t.step(
                host,
                &format!("Scheduling component {root} ..."),
                Some("⚪"),
            ),
            Event::RootFailed { host, lines, .. } => self.failed(host, lines),
            Event::Error { message } => t.error(message),
            Event::CheckSummary { seconds } => t.plain(&format!(
                "Consistency check took total={}",
                format_duration(Some(*seconds))
            )),
            Event::DeploySummary { timings } => {
                t.plain(&format!(
                    "Deployment took total={}, connect={}, deploy={}",
                    format_duration(Some(timings.total)),
                    format_duration(Some(timings.connect)),
                    format_duration(Some(timings.deploy)),
                ));
                for h in &timings.hosts {
                    t.plain(&format!(
                        "  {}: connect={}, deploy={}",
                        h.host,
                        format_duration(Some(h.connect)),
                        format_duration(Some(h.deploy)),
                    ));
                }
                if !timings.slowest.is_empty() {
                    let list: Vec<String> = timings
                        .slowest
                        .iter()
                        .map(|r| {
                            format!(
                                "{} on {} ({})",
                                r.root,
                                r.host,
                                format_duration(Some(r.seconds))
                            )
                        })
                        .collect();
                    t.plain(&format!("Slowest components: {}", list.join(", ")));
                }
            }
            Event::Finished {
                action,
                local,
                success,
                step,
                ..
            } => self.finished(*action, *local, *success, *step),
            Event::RootFinished { .. }
            | Event::HostProgress { .. }
            | Event::HostConnected { .. }
            | Event::ComponentChanged { .. }
            | Event::ComponentOutput { .. }
            | Event::ComponentProgress { .. }
            | Event::ComponentSlow { .. }
            | Event::BeforeUpdate { .. } => {}
        }
    }
}
