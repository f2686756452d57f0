//! Step `deploy`: every root in dependency order on its host's agent,
//! driven by the [`Scheduler`]; per-host spans and the slowest roots for
//! the summary.

use super::schedule::{Ready, Scheduler, SkipReason};
use super::DeployOptions;
use crate::agent::client::{AgentConnection, AgentEvent, Deployer};
use crate::environment::Environment;
use crate::events::{Event, Failure, Phase, Reporter, Step, Timings};
use crate::model::Plan;
use std::sync::mpsc;
use std::time::Instant;

/// Step `deploy`: every root in dependency order on its host's agent.
pub(super) fn deploy_roots(
    plan: &Plan,
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
        plan,
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

/// Runs the deployment of all roots in the order of a [`Scheduler`]:
/// starts what is ready on its host's agent, reports skipped roots, and
/// feeds the agents' answers back. Every failure is reported.
fn schedule(
    plan: &Plan,
    deployers: &mut [(String, Deployer)],
    events: &mpsc::Receiver<(usize, Vec<AgentEvent>)>,
    jobs: usize,
    predict: bool,
    reporter: &dyn Reporter,
    clock: &mut DeployClock,
) -> bool {
    let mut scheduler = Scheduler::new(plan.dependencies.clone(), skip_reasons(plan), jobs);
    loop {
        for ready in scheduler.ready() {
            if let Ready::Start(id) = ready {
                clock.started(&plan.roots[id].host);
            }
            start_or_skip(plan, deployers, &mut scheduler, ready, predict, reporter);
        }
        if scheduler.is_idle() {
            break;
        }
        let Ok(first) = events.recv() else {
            reporter.event(&Event::Error {
                message: "lost all agents".into(),
            });
            return false;
        };
        // What arrived meanwhile is shown in one go.
        let arrived: Vec<_> = std::iter::once(first).chain(events.try_iter()).collect();
        reporter.batch(&mut || {
            for (index, batch) in &arrived {
                let host = deployers
                    .get(*index)
                    .map(|(h, _)| h.as_str())
                    .unwrap_or_default();
                for event in batch {
                    if let AgentEvent::Deployed { id, seconds, .. } = event {
                        if let Some(root) = plan.roots.get(*id as usize) {
                            clock.finished(&root.host, &root.name, *seconds);
                        }
                    }
                    agent_event(plan, &mut scheduler, host, event, reporter);
                }
            }
        });
    }
    let stuck = scheduler.stuck();
    if !stuck.is_empty() {
        let names: Vec<&str> = stuck.iter().map(|i| plan.roots[*i].name.as_str()).collect();
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

fn skip_reasons(plan: &Plan) -> Vec<Option<SkipReason>> {
    plan.roots
        .iter()
        .map(|r| {
            if r.host_not_selected {
                Some(SkipReason::NotSelected)
            } else if r.host_ignored {
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
    plan: &Plan,
    deployers: &mut [(String, Deployer)],
    scheduler: &mut Scheduler,
    ready: Ready,
    predict: bool,
    reporter: &dyn Reporter,
) {
    let (Ready::Skip(id, _) | Ready::Start(id)) = ready;
    let root = &plan.roots[id];
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
    plan: &Plan,
    scheduler: &mut Scheduler,
    host: &str,
    event: &AgentEvent,
    reporter: &dyn Reporter,
) {
    match event {
        AgentEvent::Event { event, .. } => reporter.event(event),
        AgentEvent::Deployed {
            id,
            changed,
            seconds,
            error,
        } => {
            let id = *id as usize;
            if !scheduler.is_running(id) {
                return;
            }
            let root = &plan.roots[id];
            let ok = error.is_none();
            reporter.event(&match error {
                None => Event::RootFinished {
                    host: root.host.clone(),
                    root: root.name.clone(),
                    changed: *changed,
                    seconds: *seconds,
                },
                Some(lines) => {
                    let failure = Failure::from_lines(lines.clone());
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
                message: message.clone(),
            });
            for (id, root) in plan.roots.iter().enumerate() {
                if root.host == host && scheduler.is_running(id) {
                    scheduler.finished(id, false);
                }
            }
        }
    }
}
