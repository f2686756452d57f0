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
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

/// How often one root may be configured again within one round of the
/// configure loop before it waits for the next round (where a repeating
/// working set is reported as not converging).
const MAX_RUNS_PER_ROUND: usize = 8;

/// Marker the deployment crate registers (via `check_environments!()`), so
/// the runtime knows which components are the project's own.
pub struct DeploymentCrate {
    /// `CARGO_MANIFEST_DIR` of the deployment crate.
    pub manifest_dir: &'static str,
    /// Its package name.
    pub name: &'static str,
    /// Its version.
    pub version: &'static str,
}

inventory::collect!(DeploymentCrate);

/// What configuring and deploying share: the environment, the project
/// directory, the template engine.
pub struct ModelEnv {
    /// Project directory on this machine.
    pub project_root: PathBuf,
    /// The environment.
    pub environment: Environment,
    /// Template engine.
    pub templates: Templates,
    /// `environment` in templates.
    pub environment_value: Value,
    /// Secret values, for masking diffs.
    pub secret_data: Arc<BTreeSet<String>>,
    host_values: HashMap<String, Value>,
    platforms: HashMap<(&'static str, &'static str), &'static Registration>,
    registry: HashMap<(&'static str, &'static str), &'static Registration>,
    by_name: HashMap<&'static str, &'static Registration>,
    deployment_manifest: Option<&'static str>,
}

impl ModelEnv {
    /// Prepares configuring `environment` for a project directory.
    pub fn new(project_root: PathBuf, environment: Environment) -> ModelEnv {
        let regs = crate::component::registrations();
        let registry = regs.iter().map(|r| ((r.name, r.type_name), *r)).collect();
        let by_name = regs.iter().map(|r| (r.name, *r)).collect();
        let environment_value = crate::template::map([
            ("name", Value::from(environment.name.as_str())),
            (
                "base_dir",
                Value::from(project_root.to_string_lossy().as_ref()),
            ),
            (
                "workdir_base",
                Value::from(project_root.join("work").to_string_lossy().as_ref()),
            ),
            ("host_domain", Value::from(environment.host_domain.clone())),
            ("platform", Value::from(environment.platform.clone())),
            ("timeout", Value::from(environment.timeout)),
            (
                "connect_method",
                Value::from(environment.connect_method.as_str()),
            ),
        ]);
        crate::address::configure(crate::address::AddressSettings {
            v4: environment.require_v4,
            v6: environment.require_v6,
            resolver: environment
                .resolver
                .iter()
                .map(|(h, ips)| {
                    (
                        h.clone(),
                        ips.iter().filter_map(|ip| ip.parse().ok()).collect(),
                    )
                })
                .collect(),
        });
        let platforms = regs
            .iter()
            .filter_map(|r| r.platform.map(|p| (p, *r)))
            .collect();
        let mut model_env = ModelEnv {
            host_values: HashMap::new(),
            platforms,
            project_root,
            environment,
            templates: Templates::new(),
            environment_value,
            secret_data: Arc::new(BTreeSet::new()),
            registry,
            by_name,
            deployment_manifest: inventory::iter::<DeploymentCrate>
                .into_iter()
                .next()
                .map(|d| d.manifest_dir),
        };
        model_env.host_values = model_env
            .environment
            .hosts
            .iter()
            .map(|h| (h.name.clone(), model_env.host_value(h)))
            .collect();
        model_env
    }

    /// Renders a template with `component`, `host`, `environment` and the
    /// entries of `extra` (a map) in the context.
    pub fn render(
        &self,
        host: &str,
        name: &str,
        source: &str,
        component: Value,
        extra: Option<&Value>,
    ) -> Result<String, crate::template::TemplateError> {
        let host_value = self.host_values.get(host).cloned().unwrap_or_default();
        let mut ctx: Vec<(String, Value)> = vec![
            ("component".into(), component),
            ("host".into(), host_value),
            ("environment".into(), self.environment_value.clone()),
        ];
        if let Some(extra) = extra {
            if let Ok(keys) = extra.try_iter() {
                for k in keys {
                    if let (Some(key), Ok(v)) = (k.as_str(), extra.get_item(&k)) {
                        ctx.push((key.to_string(), v));
                    }
                }
            }
        }
        self.templates
            .render(name, source, crate::template::map(ctx))
    }

    fn host_value(&self, host: &Host) -> Value {
        crate::template::map([
            ("name", Value::from(host.name.as_str())),
            ("fqdn", Value::from(host.fqdn.as_str())),
            ("platform", Value::from(self.environment.platform_of(host))),
            ("data", Value::from(minijinja::value::Serde(&host.data))),
        ])
    }

    /// The definition directory for a component type: its own source
    /// directory if it belongs to the deployment crate (relative to the
    /// project, so it also works on remote hosts), otherwise `None`
    /// (library components inherit their parent's).
    fn own_defdir(&self, reg: &Registration) -> Option<PathBuf> {
        if self.deployment_manifest != Some(reg.manifest_dir) {
            return None;
        }
        let compiled = reg.compiled_defdir();
        let rel = compiled.strip_prefix(reg.manifest_dir).unwrap_or(&compiled);
        Some(self.project_root.join(rel))
    }
}

impl ModelEnv {
    /// Maps a path like [`map_path`], then sends absolute paths through
    /// the environment's `[vfs]`: `sandbox = Developer` puts them below
    /// `work/_/`, `sandbox = Map` replaces the longest matching prefix.
    pub fn map(&self, workdir: &Path, path: &Path) -> PathBuf {
        let mapped = map_path(workdir, path);
        let vfs = &self.environment.vfs;
        match vfs.get("sandbox").map(String::as_str) {
            Some("Developer") => {
                let under = self.project_root.join("work").join("_");
                if mapped.starts_with(&self.project_root) {
                    mapped
                } else {
                    under.join(mapped.strip_prefix("/").unwrap_or(&mapped))
                }
            }
            Some("Map") => {
                let best = vfs
                    .iter()
                    .filter(|(k, _)| k.starts_with('/') && mapped.starts_with(k.as_str()))
                    .max_by_key(|(k, _)| k.len());
                match best {
                    Some((prefix, replacement)) => {
                        let rest = mapped.strip_prefix(prefix.as_str()).unwrap_or(&mapped);
                        PathBuf::from(replacement).join(rest)
                    }
                    None => mapped,
                }
            }
            _ => mapped,
        }
    }
}

/// `~` expansion.
pub fn expand_user(path: &Path) -> PathBuf {
    if let Ok(rest) = path.strip_prefix("~") {
        if let Some(home) = std::env::var_os("HOME") {
            let home = PathBuf::from(home);
            // `join("")` would add a trailing slash.
            return if rest.as_os_str().is_empty() {
                home
            } else {
                home.join(rest)
            };
        }
    }
    path.to_path_buf()
}

/// Relative paths are relative to `workdir`; `.` and `..` are resolved
/// lexically.
pub fn map_path(workdir: &Path, path: &Path) -> PathBuf {
    let p = expand_user(path);
    let joined = if p.is_absolute() { p } else { workdir.join(p) };
    let mut out = PathBuf::new();
    for c in joined.components() {
        match c {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// A configured component with its sub-components.
pub struct Node {
    pub(crate) component: std::sync::Mutex<Box<dyn DynComponent>>,
    pub(crate) children: Vec<Node>,
    pub(crate) crumbs: String,
    pub(crate) workdir: PathBuf,
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
            pending: RefCell::new(None),
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
    /// The configured tree (`None` if configuring failed). Behind a mutex:
    /// different roots deploy concurrently.
    pub node: std::sync::Mutex<Option<Node>>,
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
}

impl Model {
    /// Configures every root of the environment to a fixed point (batou's
    /// configure loop): a root whose required resources change is
    /// configured again; the loop ends when nothing is left to retry, or
    /// when a working set repeats. Returns the model and the errors of the
    /// last round (empty when everything configured).
    pub fn configure(env: ModelEnv) -> (Model, Vec<Report>) {
        let mut roots = Vec::new();
        for host in &env.environment.hosts {
            for spec in &host.components {
                roots.push(Root {
                    host: host.name.clone(),
                    name: spec.name.clone(),
                    ignore: spec.ignore,
                    host_ignored: host.ignore,
                    node: std::sync::Mutex::new(None),
                    logs: Vec::new(),
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

        let mut working: BTreeSet<RootId> = (0..roots.len()).collect();
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
        let unused = resources.unused();
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
        (
            Model {
                env,
                roots,
                dependencies,
                links,
            },
            errors,
        )
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
        };
        let Some(root) = self.roots.iter().find(|r| r.host == host && r.name == name) else {
            return Err(vec![Line::new(
                format!("ERROR: no component {name} on host {host}"),
                Style::bold_color(Color::Red),
            )]);
        };
        let guard = root.node.lock().unwrap_or_else(|e| e.into_inner());
        let Some(node) = guard.as_ref() else {
            return Err(vec![Line::new(
                format!("ERROR: component {name} on host {host} is not configured"),
                Style::bold_color(Color::Red),
            )]);
        };
        deploy_tree(node, &run)
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
    let Some(reg) = env.by_name.get(spec.name.as_str()) else {
        return Err(vec![
            Report::new("Missing component", order::CONFIGURATION).field("Component", &spec.name)
        ]);
    };
    let mut component = (reg.factory)();
    let workdir = env.project_root.join("work").join(&spec.name);
    let defdir = env.own_defdir(reg).unwrap_or_else(|| reg.compiled_defdir());
    let crumbs = reg.type_name.to_string();
    let mut errors = Vec::new();

    // Overrides: expand (with the defaults visible as `component`), convert.
    if let Some(overrides) = env.environment.overrides.get(&spec.name) {
        let unknown: Vec<&str> = overrides
            .iter()
            .filter(|o| !component.attributes().iter().any(|a| a.name == o.key))
            .map(|o| o.key.as_str())
            .collect();
        if !unknown.is_empty() {
            errors.push(
                Report::new("Overrides for undefined attributes", order::OVERRIDES)
                    .field("Component", &crumbs)
                    .field("Attributes", unknown.join(", "))
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
                        errors.push(
                            Report::new("Error while expanding attribute:", order::CONVERSION)
                                .field("Message", e.message)
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
            if let Some(Err(e)) = component.dyn_set_attribute(&o.key, &value) {
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
pub(crate) fn configure_single(
    env: &ModelEnv,
    host: &Host,
    root_name: &str,
    component: Box<dyn DynComponent>,
    workdir: PathBuf,
    defdir: PathBuf,
    logs: &mut Vec<String>,
) -> Result<Node, Vec<Report>> {
    let crumbs = child_crumb(component.as_ref());
    let mut resources = Resources::new(vec![RootInfo {
        host: host.name.clone(),
        name: root_name.to_string(),
    }]);
    let mut scope = Scope {
        env,
        host,
        root_name,
        features: &[],
        logs,
        resources: &mut resources,
        root_id: 0,
    };
    scope.prepare(component, &crumbs, workdir, defdir, None)
}

/// Deploys a configured root tree; `Ok(true)` if anything changed.
pub(crate) fn deploy_tree(root: &Node, run: &DeployRun) -> Result<bool, Vec<Line>> {
    // Components that handle `before-update`, in pre-order.
    let mut order = Vec::new();
    preorder(root, &mut order);
    let handlers: Vec<(usize, EventScope)> = order
        .iter()
        .enumerate()
        .filter_map(|(i, n)| {
            let c = n.component.lock().unwrap_or_else(|e| e.into_inner());
            c.dyn_before_update_scope().map(|s| (i, s))
        })
        .collect();
    let tree = Tree { order, handlers };
    deploy_node(root, run, &tree)
}

fn preorder<'n>(node: &'n Node, out: &mut Vec<&'n Node>) {
    out.push(node);
    for c in &node.children {
        preorder(c, out);
    }
}

/// A root's nodes in pre-order and its `before-update` handlers.
struct Tree<'n> {
    order: Vec<&'n Node>,
    handlers: Vec<(usize, EventScope)>,
}

impl Tree<'_> {
    /// batou's `before-update` event: `source` (locked by the caller, who
    /// passes its component) is about to be updated. Every handler of the
    /// root's tree is called (`precursor`: only those after `source`).
    fn fire_before_update(
        &self,
        source: &Node,
        source_component: &mut dyn DynComponent,
        run: &DeployRun,
    ) -> crate::Result<()> {
        let Some(at) = self.order.iter().position(|n| std::ptr::eq(*n, source)) else {
            return Ok(());
        };
        for &(i, scope) in &self.handlers {
            if scope == EventScope::Precursor && i <= at {
                continue;
            }
            let target = self.order[i];
            if run.predict {
                (run.sink)(crate::events::Event::BeforeUpdate {
                    host: run.host_name.to_string(),
                    root: run.root_name.to_string(),
                    handler: target.crumbs.clone(),
                });
                continue;
            }
            let mut cx = Deploy {
                run,
                workdir: &target.workdir,
                defdir: &target.defdir,
                crumbs: &target.crumbs,
                children: &target.children,
                pending: RefCell::new(None),
            };
            if std::ptr::eq(target, source) {
                source_component.dyn_before_update(&mut cx, &source.crumbs)?;
            } else if let Ok(mut c) = target.component.try_lock() {
                c.dyn_before_update(&mut cx, &source.crumbs)?;
            }
        }
        Ok(())
    }
}

fn known_attributes(c: &dyn DynComponent) -> String {
    let names: Vec<_> = c.attributes().iter().map(|a| a.name).collect();
    if names.is_empty() {
        "(none)".into()
    } else {
        names.join(", ")
    }
}

fn conversion_report(
    host: &str,
    crumbs: &str,
    key: &str,
    e: &crate::component::ConversionError,
    location: Option<&str>,
    info: &crate::component::AttributeInfo,
) -> Report {
    let mut r = Report::new(e.message.clone(), order::CONVERSION)
        .field("Attribute", format!("{crumbs}.{key}"))
        .field(
            "Conversion",
            e.conversion
                .clone()
                .unwrap_or_else(|| format!("{}(...)", info.type_name)),
        );
    if let Some(l) = location {
        r = r.field("Location", l);
    }
    r.on_host(host)
        .sort_by(vec![host.to_string(), crumbs.to_string(), key.to_string()])
}

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
        parent: Option<Value>,
    ) -> Result<Node, Vec<Report>> {
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
            errors.push(
                Report::new(
                    "No override and no default given for required attributes",
                    order::OVERRIDES,
                )
                .field("Component", crumbs)
                .field("Attributes", missing.join(", "))
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
                added.push((reg.factory)());
            }
        }
        let workdir = cx.workdir.clone();
        let defdir = cx.defdir.clone();
        cx.crumbs = &crumbs;
        let value = cx.value_of_dyn(component.as_ref());
        drop(cx);

        let mut children = Vec::with_capacity(added.len());
        let mut errors = Vec::new();
        let mut failed = false;
        for child in added {
            let child_defdir = self
                .env
                .registry
                .get(&(child.component_name(), child.type_name()))
                .and_then(|r| self.env.own_defdir(r))
                .unwrap_or_else(|| defdir.clone());
            let pre = child_crumb(child.as_ref());
            let child_crumbs = format!("{crumbs} > {pre}");
            match self.prepare(
                child,
                &child_crumbs,
                workdir.clone(),
                child_defdir,
                Some(value.clone()),
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
            defdir,
            changed: std::sync::atomic::AtomicBool::new(false),
        })
    }
}

/// A root as messages name it: its name, with the host when the name
/// alone is ambiguous.
fn root_label(roots: &[Root], id: RootId) -> String {
    let r = &roots[id];
    if roots.iter().filter(|o| o.name == r.name).count() > 1 {
        format!("{} ({})", r.name, r.host)
    } else {
        r.name.clone()
    }
}

/// batou's cycle report: every root of a cycle with what it depends on.
fn cycle_report(roots: &[Root], edges: &BTreeSet<(RootId, RootId)>) -> Option<Report> {
    let mut graph = petgraph::graph::DiGraph::<RootId, ()>::new();
    let nodes: Vec<_> = (0..roots.len()).map(|i| graph.add_node(i)).collect();
    for (before, after) in edges {
        graph.add_edge(nodes[*after], nodes[*before], ());
    }
    let mut lines = Vec::new();
    let mut sccs: Vec<Vec<RootId>> = petgraph::algo::tarjan_scc(&graph)
        .into_iter()
        .filter(|c| c.len() > 1)
        .map(|c| {
            let mut ids: Vec<RootId> = c.iter().map(|n| graph[*n]).collect();
            ids.sort_by_key(|i| root_label(roots, *i));
            ids
        })
        .collect();
    if sccs.is_empty() {
        return None;
    }
    sccs.sort();
    for scc in &sccs {
        for &id in scc {
            lines.push(format!("{} depends on", root_label(roots, id)));
            let mut deps: Vec<String> = edges
                .iter()
                .filter(|(b, a)| *a == id && scc.contains(b))
                .map(|(b, _)| root_label(roots, *b))
                .collect();
            deps.sort();
            for d in deps {
                lines.push(format!("        {d}"));
            }
        }
    }
    let mut r = Report::new("Found dependency cycle", order::CYCLE);
    r.details = lines;
    Some(r)
}

/// Replaces the last breadcrumb element by what the component shows.
fn with_own_crumb(crumbs: &str, c: &dyn DynComponent, cx: &Configure) -> String {
    let own = match c.dyn_breadcrumb(cx) {
        Some(n) => format!("{}({})", c.type_name(), py_repr(&n)),
        None => c.type_name().to_string(),
    };
    match crumbs.rsplit_once(" > ") {
        Some((head, _)) => format!("{head} > {own}"),
        None => own,
    }
}

fn child_crumb(c: &dyn DynComponent) -> String {
    let nv = c
        .dyn_attribute_values()
        .into_iter()
        .zip(c.attributes())
        .find(|(_, info)| info.namevar)
        .map(|((_, v), _)| v.to_string());
    match nv {
        Some(n) => format!("{}({})", c.type_name(), py_repr(&n)),
        None => c.type_name().to_string(),
    }
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

fn configure_error_report(host: &str, root: &str, crumbs: &str, e: Error) -> Report {
    let sort = vec![host.to_string(), crumbs.to_string()];
    match e {
        Error::Template(t) => Report::new("Error while rendering template", order::CONFIGURATION)
            .field(
                "Template",
                t.line.map_or(t.name.clone(), |l| format!("{}:{l}", t.name)),
            )
            .field("Message", t.message)
            .field("Component", crumbs)
            .on_host(host)
            .sort_by(sort),
        Error::Conversion(c) => Report::new(c.message, order::CONVERSION)
            .field("Component", crumbs)
            .field("Conversion", c.conversion.unwrap_or_default())
            .on_host(host)
            .sort_by(sort),
        other => {
            let mut r = Report::new(format!("{root}: {other}"), order::CONFIGURATION)
                .field("Component", crumbs);
            if let Some(l) = other.location() {
                r = r.field("Source", l);
            }
            r.on_host(host).sort_by(sort)
        }
    }
}

/// One deployment of one root on one host.
pub struct DeployRun<'a> {
    pub(crate) env: &'a ModelEnv,
    pub(crate) root_name: &'a str,
    pub(crate) host_name: &'a str,
    pub(crate) host_fqdn: &'a str,
    pub(crate) predict: bool,
    pub(crate) sink: &'a (dyn Fn(crate::events::Event) + Sync),
}

/// Deploys a tree; returns whether anything changed, or the lines of the
/// error report.
fn deploy_node(node: &Node, run: &DeployRun, tree: &Tree) -> Result<bool, Vec<Line>> {
    let started = Instant::now();
    let mut sub_changed = false;
    for child in &node.children {
        sub_changed |= deploy_node(child, run, tree)?;
    }
    let sub_time = started.elapsed().as_secs_f64();
    // Predicting changes nothing on disk, not even the workdir.
    let created = if run.predict {
        Ok(())
    } else {
        std::fs::create_dir_all(&node.workdir)
    };
    if let Err(e) = created {
        return Err(error_lines(
            &node.crumbs,
            Error::io(format!("creating workdir {}", node.workdir.display()), e),
        ));
    }
    let mut component = node.component.lock().unwrap_or_else(|e| e.into_inner());
    let crumbs = &node.crumbs;
    let mut cx = Deploy {
        run,
        workdir: &node.workdir,
        defdir: &node.defdir,
        crumbs,
        children: &node.children,
        pending: RefCell::new(Some(crate::events::Event::ComponentChanged {
            host: run.host_name.to_string(),
            root: run.root_name.to_string(),
            component: crumbs.clone(),
            diff: None,
        })),
    };
    let mut verify_time = None;
    let mut update_time = None;
    let outcome = (|| -> crate::Result<bool> {
        component.dyn_enter(&mut cx)?;
        let t = Instant::now();
        let verified = component.dyn_verify(&mut cx);
        verify_time = Some(t.elapsed().as_secs_f64());
        let needed = match verified {
            Ok(()) => false,
            Err(Error::UpdateNeeded(_)) => true,
            Err(e) => return Err(e),
        };
        if needed {
            if let Some(p) = cx.pending.borrow_mut().take() {
                (run.sink)(p);
            }
            tree.fire_before_update(node, component.as_mut(), run)?;
            if !run.predict {
                let t = Instant::now();
                component.dyn_update(&mut cx)?;
                update_time = Some(t.elapsed().as_secs_f64());
            }
        }
        Ok(needed)
    })();
    let exited = component.dyn_exit(&mut cx);
    let needed = match (outcome, exited) {
        (Err(e), _) | (Ok(_), Err(e)) => return Err(error_lines(crumbs, e)),
        (Ok(n), Ok(())) => n,
    };
    cx.pending.borrow_mut().take();
    let total = started.elapsed().as_secs_f64();
    let sub = if node_has_children(&node.children) {
        Some(sub_time)
    } else {
        None
    };
    if verify_time.unwrap_or(0.0) > 1.0 || update_time.unwrap_or(0.0) > 1.0 || total > 10.0 {
        (run.sink)(crate::events::Event::ComponentSlow {
            host: run.host_name.to_string(),
            root: run.root_name.to_string(),
            component: crumbs.clone(),
            total,
            verify: verify_time,
            update: update_time,
            sub,
        });
    }
    let changed = needed || sub_changed;
    node.changed
        .store(changed, std::sync::atomic::Ordering::Relaxed);
    Ok(changed)
}

fn node_has_children(children: &[Node]) -> bool {
    !children.is_empty()
}

fn error_lines(crumbs: &str, e: Error) -> Vec<Line> {
    let red = Style::bold_color(Color::Red);
    let mut lines = match e {
        Error::Cmd(c) => c.report_lines(),
        Error::Template(t) => vec![
            Line::new("ERROR: Error while rendering template", red),
            Line::new(
                crate::output::tabular_text("Template", &t.name),
                Style::color(Color::Red),
            ),
            Line::new(
                crate::output::tabular_text("Message", &t.message),
                Style::color(Color::Red),
            ),
        ],
        other => vec![Line::new(format!("ERROR: {other}"), red)],
    };
    lines.push(Line::new(
        crate::output::tabular_text("Component", crumbs),
        Style::color(Color::Red),
    ));
    lines
}

/// Roots grouped by host, for listings.
pub fn roots_by_host(model: &Model) -> BTreeMap<&str, Vec<&Root>> {
    let mut map: BTreeMap<&str, Vec<&Root>> = BTreeMap::new();
    for r in &model.roots {
        map.entry(r.host.as_str()).or_default().push(r);
    }
    map
}
