//! The model: root components configured into trees, and deploying them.
//!
//! Configuration is pure: it instantiates every root component of the
//! environment from the registry, applies overrides (expanded as templates,
//! then converted), runs `configure` and then configures the added
//! sub-components, depth first. All problems become [`Report`]s.
//!
//! Deployment walks one root's tree post-order (sub-components first, in the
//! order they were added) and runs enter → verify → update (if needed) →
//! exit, printing batou's 🚀 breadcrumb only for components that changed.

use crate::component::{py_repr, Configure, Deploy, DynComponent, EventScope, Registration};
use crate::environment::{Environment, Host, RootSpec};
use crate::output::{Color, Line, Style};
use crate::report::{order, Report};
use crate::resources::{Resources, RootId, RootInfo};
use crate::template::{Templates, Value};
use crate::Error;

mod env;
mod reports;
mod walk;

pub use env::*;
use reports::*;
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::Arc;
pub use walk::*;

/// How often one root may be configured again within one round of the
/// configure loop before it waits for the next round (where a repeating
/// working set is reported as not converging).
const MAX_RUNS_PER_ROUND: usize = 8;

/// A configured component with its sub-components.
pub struct Node {
    pub(crate) component: std::sync::Mutex<Box<dyn DynComponent>>,
    pub(crate) children: Vec<Node>,
    pub(crate) crumbs: String,
    pub(crate) workdir: PathBuf,
    /// The walk creates `workdir` before this node's sub-components run:
    /// a root's, or one its component chose; others share their parent's.
    pub(crate) makes_workdir: bool,
    pub(crate) defdir: PathBuf,
    pub(crate) changed: std::sync::atomic::AtomicBool,
}

impl Node {
    pub(crate) fn last_updated(&self, run: &DeployRun) -> crate::Result<Option<f64>> {
        let cx = Deploy {
            run,
            workdir: &self.workdir,
            defdir: &self.defdir,
            crumbs: &self.crumbs,
            children: &self.children,
            earlier_siblings_changed: false,
            pending: std::cell::Cell::new(false),
            diff: RefCell::new(None),
        };
        let component = self.component.lock().unwrap_or_else(|e| e.into_inner());
        component.dyn_last_updated(&cx)
    }

    /// Number of components in this tree.
    pub fn count(&self) -> usize {
        1 + self.children.iter().map(Node::count).sum::<usize>()
    }
}

/// A root component on a host.
pub struct Root {
    /// Host name.
    pub host: String,
    /// Component name.
    pub name: String,
    /// Configured but not deployed.
    pub ignore: bool,
    /// The host is ignored.
    pub host_ignored: bool,
    /// The host is not selected by `--limit` (`host_ignored` is set too).
    pub host_not_selected: bool,
    /// The configured tree (`None` if configuring failed). Behind a mutex:
    /// different roots deploy concurrently.
    pub node: std::sync::Mutex<Option<Node>>,
    /// Configure-time log lines.
    pub logs: Vec<String>,
    /// The tree was taken out after deploying ([`Model::release_root`]).
    pub released: std::sync::atomic::AtomicBool,
}

/// What the controller needs of a configured model to deploy it: the
/// roots in model order (their index is the deployment id) with their
/// configure logs, and what each must wait for. A local agent that
/// configured the model sends it, so the controller need not configure
/// the same model again.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Plan {
    /// The roots.
    pub roots: Vec<PlannedRoot>,
    /// For each root, the roots deployed before it.
    pub dependencies: Vec<Vec<RootId>>,
}

/// A root of a [`Plan`].
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PlannedRoot {
    /// Host name.
    pub host: String,
    /// Component name.
    pub name: String,
    /// Configured but not deployed.
    pub ignore: bool,
    /// The host is ignored.
    pub host_ignored: bool,
    /// The host is not selected by `--limit` (`host_ignored` is set too).
    #[serde(default)]
    pub host_not_selected: bool,
    /// Configure-time log lines.
    pub logs: Vec<String>,
}

/// The configured model of an environment.
pub struct Model {
    /// Shared context.
    pub env: ModelEnv,
    /// Roots in host order, then cfg order (their index is their
    /// [`RootId`]).
    pub roots: Vec<Root>,
    /// For each root, the roots that must be deployed before it.
    pub dependencies: Vec<BTreeSet<RootId>>,
    /// (provider, requirer) pairs of roots and the resource keys that link
    /// them.
    pub links: BTreeMap<(RootId, RootId), BTreeSet<String>>,
    /// For each root, the roots whose provided values it read.
    pub reads: Vec<BTreeSet<RootId>>,
}

impl Model {
    /// Configures every root of the environment to a fixed point (batou's
    /// configure loop): a root whose required resources change is
    /// configured again; the loop ends when nothing is left to retry, or
    /// when a working set repeats. Returns the model and the errors of the
    /// last round (empty when everything configured).
    pub fn configure(env: ModelEnv) -> (Model, Vec<Report>) {
        Self::configure_only(env, None)
    }

    /// [`Self::configure`] of some roots only, `(host, root)`: an agent's
    /// own and those whose values they read ([`Self::roots_for_host`] of
    /// the controller's model), which gives them the same configuration as
    /// configuring everything. The others stay unconfigured; values their
    /// roots would have read are not reported as unused.
    pub fn configure_only(
        env: ModelEnv,
        only: Option<&BTreeSet<(String, String)>>,
    ) -> (Model, Vec<Report>) {
        let mut roots = Vec::new();
        for host in &env.environment.hosts {
            for spec in &host.components {
                roots.push(Root {
                    host: host.name.clone(),
                    name: spec.name.clone(),
                    ignore: spec.ignore,
                    host_ignored: host.ignore,
                    host_not_selected: host.not_selected,
                    node: std::sync::Mutex::new(None),
                    logs: Vec::new(),
                    released: Default::default(),
                });
            }
        }
        let infos = roots
            .iter()
            .map(|r| RootInfo {
                host: r.host.clone(),
                name: r.name.clone(),
            })
            .collect();
        let mut resources = Resources::new(infos);
        let host_values = &env.host_values;
        let specs: Vec<(&Host, &RootSpec)> = env
            .environment
            .hosts
            .iter()
            .flat_map(|h| h.components.iter().map(move |c| (h, c)))
            .collect();

        let mut working: BTreeSet<RootId> = (0..roots.len())
            .filter(|id| {
                only.is_none_or(|only| {
                    let root: &Root = &roots[*id];
                    only.contains(&(root.host.clone(), root.name.clone()))
                })
            })
            .collect();
        let mut history: Vec<BTreeSet<RootId>> = Vec::new();
        let mut errors;
        loop {
            errors = Vec::new();
            history.push(working.clone());
            // Roots whose values changed are configured again within the
            // same round when something they read changed (a chain of
            // providers resolves in one round, not one round per link).
            let mut queue: VecDeque<RootId> = working.iter().copied().collect();
            let mut queued: BTreeSet<RootId> = working.clone();
            let mut runs: BTreeMap<RootId, usize> = BTreeMap::new();
            let mut failures: BTreeMap<RootId, Vec<Report>> = BTreeMap::new();
            while let Some(id) = queue.pop_front() {
                queued.remove(&id);
                *runs.entry(id).or_default() += 1;
                let (host, spec) = specs[id];
                resources.reset_root(id);
                let root = &mut roots[id];
                root.logs.clear();
                let host_value = &host_values[&host.name];
                let result = configure_root(
                    &env,
                    host,
                    host_value,
                    spec,
                    &mut root.logs,
                    &mut resources,
                    id,
                );
                let readers = resources.finish_root(id);
                match result {
                    Ok(node) => {
                        *root.node.get_mut().unwrap_or_else(|e| e.into_inner()) = Some(node);
                        failures.remove(&id);
                    }
                    Err(e) => {
                        *root.node.get_mut().unwrap_or_else(|e| e.into_inner()) = None;
                        failures.insert(id, e);
                    }
                }
                for r in readers {
                    if !queued.contains(&r)
                        && runs.get(&r).copied().unwrap_or(0) < MAX_RUNS_PER_ROUND
                    {
                        queued.insert(r);
                        queue.push_back(r);
                    }
                }
            }
            let mut retry: BTreeSet<RootId> = failures.keys().copied().collect();
            for (_, mut e) in failures {
                errors.append(&mut e);
            }
            retry.extend(resources.dirty_roots());
            let unsatisfied = resources.unsatisfied();
            for (_, _, requirers) in &unsatisfied {
                retry.extend(requirers.iter().copied());
            }
            let edges = resources.edges();
            if let Some(cycle) = cycle_report(&roots, &edges) {
                errors.push(cycle);
            }
            if retry.is_empty() {
                break;
            }
            if let Some(start) = history.iter().position(|h| *h == retry) {
                if !unsatisfied.is_empty() {
                    let mut r =
                        Report::new("Unsatisfied resource requirements", order::UNSATISFIED);
                    for (key, host, requirers) in &unsatisfied {
                        let names: Vec<String> =
                            requirers.iter().map(|i| root_label(&roots, *i)).collect();
                        r = r.detail(match host {
                            None => {
                                format!("    Resource \"{key}\" required by {}", names.join(", "))
                            }
                            Some(h) => format!(
                                "    Resource \"{key}\" on \"{h}\" required by {}",
                                names.join(", ")
                            ),
                        });
                    }
                    errors.push(r);
                }
                let unconfigured: BTreeSet<String> = history[start..]
                    .iter()
                    .flatten()
                    .map(|i| root_label(&roots, *i))
                    .collect();
                let list: Vec<String> = unconfigured.into_iter().collect();
                errors.push(Report::new(
                    format!(
                        "{} remaining unconfigured component(s): {}",
                        list.len(),
                        list.join(", ")
                    ),
                    order::REMAINING,
                ));
                break;
            }
            working = retry;
        }
        let unused = if only.is_none() {
            resources.unused()
        } else {
            Vec::new()
        };
        if !unused.is_empty() {
            let mut r = Report::new("Unused provided resources", order::UNUSED);
            for (key, root, values) in unused {
                r = r.detail(format!(
                    "    Resource \"{key}\" provided by {} with value [{}]",
                    root_label(&roots, root),
                    values.join(", ")
                ));
            }
            errors.push(r);
        }
        let mut dependencies = vec![BTreeSet::new(); roots.len()];
        let links = resources.labelled_edges();
        for (before, after) in links.keys() {
            dependencies[*after].insert(*before);
        }
        let mut reads = vec![BTreeSet::new(); roots.len()];
        for (reader, providers) in resources.reads() {
            reads[reader] = providers;
        }
        (
            Model {
                env,
                roots,
                dependencies,
                links,
                reads,
            },
            errors,
        )
    }

    /// The roots and their order, for deploying ([`Plan`]).
    pub fn plan(&self) -> Plan {
        Plan {
            roots: self
                .roots
                .iter()
                .map(|r| PlannedRoot {
                    host: r.host.clone(),
                    name: r.name.clone(),
                    ignore: r.ignore,
                    host_ignored: r.host_ignored,
                    host_not_selected: r.host_not_selected,
                    logs: r.logs.clone(),
                })
                .collect(),
            dependencies: self
                .dependencies
                .iter()
                .map(|d| d.iter().copied().collect())
                .collect(),
        }
    }

    /// The roots the agent of `host` configures: the host's own and,
    /// transitively, those whose provided values they read, as `(host,
    /// root)` pairs. Its cost then does not grow with the other hosts of
    /// the fleet.
    pub fn roots_for_host(&self, host: &str) -> BTreeSet<(String, String)> {
        let mut seen = BTreeSet::new();
        let mut stack: Vec<RootId> = (0..self.roots.len())
            .filter(|id| self.roots[*id].host == host)
            .collect();
        while let Some(id) = stack.pop() {
            if seen.insert(id) {
                stack.extend(self.reads[id].iter().copied());
            }
        }
        seen.into_iter()
            .map(|id| (self.roots[id].host.clone(), self.roots[id].name.clone()))
            .collect()
    }

    /// Deploys one root (by host and name), streaming output to `sink`.
    pub fn deploy_root(
        &self,
        host: &str,
        name: &str,
        predict: bool,
        sink: &(dyn Fn(crate::events::Event) + Sync),
    ) -> Result<bool, Vec<Line>> {
        let Some(h) = self.env.environment.hosts.iter().find(|h| h.name == host) else {
            return Err(vec![Line::new(
                format!("ERROR: unknown host {host}"),
                Style::bold_color(Color::Red),
            )]);
        };
        let run = DeployRun {
            env: &self.env,
            root_name: name,
            host_name: &h.name,
            host_fqdn: &h.fqdn,
            predict,
            sink,
            stats: Default::default(),
        };
        let Some(root) = self.roots.iter().find(|r| r.host == host && r.name == name) else {
            return Err(vec![Line::new(
                format!("ERROR: no component {name} on host {host}"),
                Style::bold_color(Color::Red),
            )]);
        };
        let guard = root.node.lock().unwrap_or_else(|e| e.into_inner());
        let Some(node) = guard.as_ref() else {
            let state = if root.released.load(std::sync::atomic::Ordering::Relaxed) {
                "was deployed already"
            } else {
                "is not configured"
            };
            return Err(vec![Line::new(
                format!("ERROR: component {name} on host {host} {state}"),
                Style::bold_color(Color::Red),
            )]);
        };
        deploy_tree(node, &run)
    }

    /// Takes a root's tree out of the model once it is deployed, so that
    /// the caller disposes of it where it suits: the agent drops each tree
    /// on the root's own thread after answering, while the next root
    /// deploys, without freeing its memory (`crate::alloc`), instead of
    /// the whole model at exit. The root cannot be deployed again.
    pub fn release_root(&self, host: &str, name: &str) -> Option<Node> {
        let root = self
            .roots
            .iter()
            .find(|r| r.host == host && r.name == name)?;
        root.released
            .store(true, std::sync::atomic::Ordering::Relaxed);
        root.node.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

fn configure_root(
    env: &ModelEnv,
    host: &Host,
    host_value: &Value,
    spec: &RootSpec,
    logs: &mut Vec<String>,
    resources: &mut Resources,
    root_id: RootId,
) -> Result<Node, Vec<Report>> {
    let Some(reg) = env.registration(&spec.name) else {
        return Err(vec![
            Report::new("Missing component", order::CONFIGURATION).field("Component", &spec.name)
        ]);
    };
    let mut component = (reg.factory)();
    let workdir = env
        .project_root
        .join("work")
        .join(crate::component::component_part(&spec.name));
    let defdir = env.own_defdir(reg).unwrap_or_else(|| reg.compiled_defdir());
    let crumbs = reg.type_name.to_string();
    let mut errors = Vec::new();

    // Overrides: expand (with the defaults visible as `component`), convert.
    if let Some(overrides) = env.environment.overrides.get(&spec.name) {
        let unknown: Vec<&crate::environment::Override> = overrides
            .iter()
            .filter(|o| !component.attributes().iter().any(|a| a.name == o.key))
            .collect();
        if !unknown.is_empty() {
            let keys: Vec<&str> = unknown.iter().map(|o| o.key.as_str()).collect();
            let locations: Vec<&str> = unknown.iter().map(|o| o.location.as_str()).collect();
            let names: Vec<&str> = component.attributes().iter().map(|a| a.name).collect();
            let close: Vec<String> = keys
                .iter()
                .filter_map(|k| {
                    crate::environment::closest(k, &names).map(|n| format!("{n} (for {k})"))
                })
                .collect();
            let mut report = Report::new("Overrides for undefined attributes", order::OVERRIDES)
                .field("Component", &crumbs)
                .field("Attributes", keys.join(", "))
                .field("Location", locations.join(", "));
            if !close.is_empty() {
                report = report.field("Did you mean", close.join(", "));
            }
            errors.push(
                report
                    .field("Known", known_attributes(component.as_ref()))
                    .on_host(&host.name)
                    .sort_by(vec![host.name.clone(), crumbs.clone()]),
            );
        }
        let defaults = Value::from_object(crate::template::ComponentValue {
            type_name: reg.type_name,
            host: host.name.clone(),
            crumbs: crumbs.clone(),
            attributes: component.dyn_attribute_values(),
            workdir: workdir.clone(),
            defdir: defdir.clone(),
        });
        for o in overrides {
            let Some(info) = component.attributes().iter().find(|a| a.name == o.key) else {
                continue;
            };
            let value = if info.expand && (o.value.contains("{{") || o.value.contains("{%")) {
                let cx_ctx = crate::template::map([
                    ("component", defaults.clone()),
                    ("host", host_value.clone()),
                    ("environment", env.environment_value.clone()),
                ]);
                match env.templates.render(&o.location, &o.value, cx_ctx) {
                    Ok(v) => v,
                    Err(e) => {
                        let message = if o.secret {
                            "the value is a secret and not shown".to_string()
                        } else {
                            e.message
                        };
                        errors.push(
                            Report::new("Error while expanding attribute:", order::CONVERSION)
                                .field("Message", message)
                                .field("Attribute", format!("{crumbs}.{}", o.key))
                                .field("Location", &o.location)
                                .on_host(&host.name)
                                .sort_by(vec![host.name.clone(), crumbs.clone(), o.key.clone()]),
                        );
                        continue;
                    }
                }
            } else {
                o.value.clone()
            };
            if let Some(Err(mut e)) = component.dyn_set_attribute(&o.key, &value) {
                if o.secret {
                    e = crate::component::ConversionError {
                        message: format!(
                            "invalid value for type {} (from the secrets, not shown)",
                            info.type_name
                        ),
                        conversion: Some(format!("{}(***)", info.type_name)),
                    };
                }
                errors.push(conversion_report(
                    &host.name,
                    &crumbs,
                    o.key.as_str(),
                    &e,
                    Some(&o.location),
                    info,
                ));
            }
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let mut scope = Scope {
        env,
        host,
        root_name: &spec.name,
        features: &spec.features,
        logs,
        resources,
        root_id,
    };
    scope.prepare(component, &crumbs, workdir, defdir, None)
}

/// Configures one component as a root (used by [`crate::testing`]).
/// The root [`configure_single`] configures (for `TestRoot`).
pub(crate) struct SingleRoot<'a> {
    /// Root name.
    pub name: &'a str,
    /// Its working directory.
    pub workdir: PathBuf,
    /// Its definition directory.
    pub defdir: PathBuf,
    /// What the test provides.
    pub provided: &'a [ProvideFn],
}

pub(crate) fn configure_single(
    env: &ModelEnv,
    host: &Host,
    root: SingleRoot,
    component: Box<dyn DynComponent>,
    logs: &mut Vec<String>,
) -> Result<Node, Vec<Report>> {
    let SingleRoot {
        name: root_name,
        workdir,
        defdir,
        provided,
    } = root;
    let crumbs = child_crumb(component.as_ref());
    // Root 0 is the component; root 1 provides what the test gave.
    let mut resources = Resources::new(vec![
        RootInfo {
            host: host.name.clone(),
            name: root_name.to_string(),
        },
        RootInfo {
            host: host.name.clone(),
            name: "test".to_string(),
        },
    ]);
    resources.reset_root(1);
    for provide in provided {
        provide(&mut resources, 1).map_err(|m| {
            vec![Report::new(m, order::UNSATISFIED).field("Provided by", "the test")]
        })?;
    }
    resources.finish_root(1);
    let mut scope = Scope {
        env,
        host,
        root_name,
        features: &[],
        logs,
        resources: &mut resources,
        root_id: 0,
    };
    let result = scope.prepare(component, &crumbs, workdir, defdir, None);
    // A requirement nobody provided (also when it made `prepare` fail
    // without a report of its own) is what the test needs to know.
    let unsatisfied = !resources.unsatisfied().is_empty();
    if unsatisfied || matches!(&result, Err(errors) if errors.is_empty()) {
        return Err(vec![unsatisfied_report(&resources)]);
    }
    result
}

/// What a test did not provide.
fn unsatisfied_report(resources: &Resources) -> Report {
    let keys: Vec<String> = resources
        .unsatisfied()
        .into_iter()
        .map(|(key, host, _)| match host {
            Some(h) => format!("{key} (on host {h})"),
            None => key,
        })
        .collect();
    Report::new("Unsatisfied resource requirements", order::UNSATISFIED)
        .field("Resources", keys.join(", "))
        .field("Hint", "provide them with TestRoot::provide")
}

/// A value a test provides to the component under test.
pub(crate) type ProvideFn = Box<dyn Fn(&mut Resources, RootId) -> Result<(), String>>;

struct Scope<'a> {
    env: &'a ModelEnv,
    host: &'a Host,
    root_name: &'a str,
    features: &'a [String],
    logs: &'a mut Vec<String>,
    resources: &'a mut Resources,
    root_id: RootId,
}

impl Scope<'_> {
    fn prepare(
        &mut self,
        mut component: Box<dyn DynComponent>,
        crumbs: &str,
        workdir: PathBuf,
        defdir: PathBuf,
        parent: Option<(Value, String)>,
    ) -> Result<Node, Vec<Report>> {
        let (parent, added_at) = match parent {
            Some((value, at)) => (Some(value), at),
            None => (None, String::new()),
        };
        let host = self.host.name.clone();
        let mut errors = Vec::new();
        for (attr, e) in component.dyn_attr_state_mut().take_errors() {
            if let Some(info) = component.attributes().iter().find(|a| a.name == attr) {
                errors.push(conversion_report(&host, crumbs, attr, &e, None, info));
            }
        }
        let state = component.dyn_attr_state_mut().clone();
        let missing: Vec<&str> = component
            .attributes()
            .iter()
            .enumerate()
            .filter(|(i, a)| a.required && !state.is_set(*i))
            .map(|(_, a)| a.name)
            .collect();
        if !missing.is_empty() {
            // A root's values come from its [component:NAME] section; a
            // sub-component's from the code that adds it.
            let hint = if parent.is_none() {
                format!(
                    "set {} in [component:{}] of the environment",
                    missing
                        .iter()
                        .map(|m| format!("`{m} = …`"))
                        .collect::<Vec<_>>()
                        .join(", "),
                    component.component_name()
                )
            } else {
                format!(
                    "set {} where the component is added (`.{}(…)`)",
                    missing.join(", "),
                    missing[0]
                )
            };
            errors.push(
                Report::new(
                    "No override and no default given for required attributes",
                    order::OVERRIDES,
                )
                .field("Component", crumbs)
                .field("Attributes", missing.join(", "))
                .field("Hint", hint)
                .on_host(&host)
                .sort_by(vec![host.clone(), crumbs.to_string()]),
            );
        }
        if !errors.is_empty() {
            return Err(errors);
        }

        let mut cx = Configure {
            env: self.env,
            host: self.host,
            root_name: self.root_name,
            features: self.features,
            crumbs,
            workdir,
            workdir_set: false,
            defdir,
            parent,
            added: Vec::new(),
            logs: self.logs,
            resources: self.resources,
            root_id: self.root_id,
        };
        // Breadcrumbs as the component shows them (e.g. the basename under a
        // File), for errors raised by its configure.
        let pre_crumbs = with_own_crumb(crumbs, component.as_ref(), &cx);
        let crumbs = pre_crumbs.as_str();
        let result = match crate::panics::catch(|| component.dyn_configure(&mut cx)) {
            Ok(r) => r,
            Err(panic) => {
                let mut r = Report::new(
                    format!("panic in configure: {}", panic.message),
                    order::UNKNOWN,
                )
                .field("Host", &host)
                .field("Component", crumbs);
                if let Some(l) = panic.location {
                    r = r.field("Source", l);
                }
                return Err(vec![r
                    .on_host(&host)
                    .sort_by(vec![host.clone(), crumbs.to_string()])]);
            }
        };
        if let Err(Error::Unsatisfied(_)) = result {
            // Silent: configured again once the resource is provided.
            return Err(Vec::new());
        }
        if let Err(e) = result {
            return Err(vec![configure_error_report(
                &host,
                self.root_name,
                crumbs,
                &added_at,
                e,
            )]);
        }
        // The final breadcrumb element: namevars may be mapped in configure.
        let crumbs = with_own_crumb(crumbs, component.as_ref(), &cx);
        let mut added = std::mem::take(&mut cx.added);
        // The platform-specific part of this component, if the host's
        // platform has one, is its last sub-component.
        if let Some(platform) = self.env.environment.platform_of(self.host) {
            if let Some(reg) = self
                .env
                .platforms
                .get(&(platform.as_str(), component.component_name()))
            {
                added.push(((reg.factory)(), String::new()));
            }
        }
        let workdir = cx.workdir.clone();
        let makes_workdir = cx.parent.is_none() || cx.workdir_set;
        let defdir = cx.defdir.clone();
        cx.crumbs = &crumbs;
        let value = cx.value_of_dyn(component.as_ref());
        drop(cx);

        let mut children = Vec::with_capacity(added.len());
        let mut errors = Vec::new();
        let mut failed = false;
        // The line a report names as `Added at` is the user's: the add
        // calls of the deployment crate's components; below a library
        // component, the line that added it.
        let users_code = self
            .env
            .registry
            .get(&component.as_any().type_id())
            .is_some_and(|r| self.env.own_defdir(r).is_some());
        for (child, child_added_at) in added {
            let child_added_at = if users_code {
                child_added_at
            } else {
                added_at.clone()
            };
            let child_defdir = self
                .env
                .registry
                .get(&child.as_any().type_id())
                .and_then(|r| {
                    // The deployment crate's components read their files
                    // from the project; a library component that carries
                    // files has its own directory; others (File, ...)
                    // resolve names against their parent's.
                    self.env
                        .own_defdir(r)
                        .or_else(|| (!r.files.is_empty()).then(|| r.compiled_defdir()))
                })
                .unwrap_or_else(|| defdir.clone());
            let pre = child_crumb(child.as_ref());
            let child_crumbs = format!("{crumbs} > {pre}");
            match self.prepare(
                child,
                &child_crumbs,
                workdir.clone(),
                child_defdir,
                Some((value.clone(), child_added_at)),
            ) {
                Ok(n) => children.push(n),
                Err(mut e) => {
                    failed = true;
                    errors.append(&mut e);
                }
            }
        }
        if failed {
            return Err(errors);
        }
        Ok(Node {
            component: std::sync::Mutex::new(component),
            children,
            crumbs,
            workdir,
            makes_workdir,
            defdir,
            changed: std::sync::atomic::AtomicBool::new(false),
        })
    }
}

/// Replaces the last breadcrumb element by what the component shows.
fn with_own_crumb(crumbs: &str, c: &dyn DynComponent, cx: &Configure) -> String {
    let head = crumbs.rsplit_once(" > ").map(|(head, _)| head);
    crumb(head, c.type_name(), c.dyn_breadcrumb(cx).as_deref())
}

fn child_crumb(c: &dyn DynComponent) -> String {
    let namevar = c.dyn_namevar_value().map(|v| v.to_string());
    crumb(None, c.type_name(), namevar.as_deref())
}

/// `head > Type('name')` (without the parts that are `None`).
fn crumb(head: Option<&str>, type_name: &str, name: Option<&str>) -> String {
    let name = name.map(py_repr);
    let mut out = String::with_capacity(
        head.map_or(0, |h| h.len() + 3)
            + type_name.len()
            + name.as_ref().map_or(0, |n| n.len() + 2),
    );
    if let Some(head) = head {
        out.push_str(head);
        out.push_str(" > ");
    }
    out.push_str(type_name);
    if let Some(name) = name {
        out.push('(');
        out.push_str(&name);
        out.push(')');
    }
    out
}

impl Configure<'_> {
    fn value_of_dyn(&self, c: &dyn DynComponent) -> Value {
        Value::from_object(crate::template::ComponentValue {
            type_name: c.type_name(),
            host: self.host.name.clone(),
            crumbs: self.crumbs.to_string(),
            attributes: c.dyn_attribute_values(),
            workdir: self.workdir.clone(),
            defdir: self.defdir.clone(),
        })
    }
}
