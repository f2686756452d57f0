//! The context of `configure`.

use super::{Component, ComponentMeta, DynComponent};
use crate::model::ModelEnv;
use crate::resources::{RequireOptions, Resource, ResourceValue};
use crate::template::{ComponentValue, TemplateError, Value};
use crate::Result;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A handle to a sub-component added with [`Configure::add`]; use it at
/// deploy time with [`Deploy::with_sub_component`](super::Deploy::with_sub_component)
/// and [`Deploy::changed`](super::Deploy::changed).
pub struct Child<C> {
    pub(crate) index: usize,
    _type: PhantomData<fn() -> C>,
}

impl<C> Child<C> {
    /// Its position among its parent's sub-components, as
    /// [`Deploy::assert_component_is_current`](super::Deploy::assert_component_is_current)
    /// takes it.
    pub fn index(&self) -> usize {
        self.index
    }
}

impl<C> Clone for Child<C> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<C> Copy for Child<C> {}

impl<C> std::fmt::Debug for Child<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Child({})", self.index)
    }
}

/// What `configure` can see and do: add sub-components, render templates,
/// map paths, log.
pub struct Configure<'a> {
    pub(crate) env: &'a ModelEnv,
    pub(crate) host: &'a crate::environment::Host,
    pub(crate) root_name: &'a str,
    pub(crate) features: &'a [String],
    pub(crate) crumbs: &'a str,
    pub(crate) workdir: PathBuf,
    /// The component chose its own workdir ([`Self::set_workdir`]).
    pub(crate) workdir_set: bool,
    pub(crate) defdir: PathBuf,
    pub(crate) parent: Option<Value>,
    /// Sub-components with the source line of their `add` call.
    pub(crate) added: Vec<(Box<dyn DynComponent>, String)>,
    pub(crate) logs: &'a mut Vec<String>,
    pub(crate) resources: &'a mut crate::resources::Resources,
    pub(crate) root_id: crate::resources::RootId,
}

impl std::fmt::Debug for Configure<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Configure")
            .field("host", &self.host.name)
            .field("root", &self.root_name)
            .field("component", &self.crumbs)
            .field("workdir", &self.workdir)
            .field("defdir", &self.defdir)
            .finish_non_exhaustive()
    }
}

impl<'a> Configure<'a> {
    /// Adds a sub-component. Sub-components are configured right after this
    /// component's `configure` returns, and deployed before it, in the order
    /// they were added. Configuration errors of a sub-component (and of
    /// what a library component adds below it) name the line of this call
    /// in the deployment crate (`Added at`).
    #[track_caller]
    pub fn add<C: Component>(&mut self, component: C) -> Child<C> {
        self.added.push((Box::new(component), caller()));
        Child {
            index: self.added.len() - 1,
            _type: PhantomData,
        }
    }

    /// The host's name as written in the environment.
    pub fn host_name(&self) -> &str {
        &self.host.name
    }

    /// The host this model is configured for.
    pub fn host(&self) -> &crate::environment::Host {
        self.host
    }

    /// The environment's `timeout` (seconds, 3 by default): network
    /// operations of components use it.
    pub fn timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.env.environment.timeout)
    }

    /// The environment's name.
    pub fn environment_name(&self) -> &str {
        &self.env.environment.name
    }

    /// The root component's name.
    pub fn root_name(&self) -> &str {
        self.root_name
    }

    /// The root's features (`component:feature` in the environment).
    pub fn features(&self) -> &[String] {
        self.features
    }

    /// The breadcrumbs of this component (`Tick > File('work/tick/tick.sh')`).
    pub fn breadcrumbs(&self) -> &str {
        self.crumbs
    }

    /// The working directory (`work/<root>` unless changed).
    pub fn workdir(&self) -> &Path {
        &self.workdir
    }

    /// Changes the working directory of this component and of the
    /// sub-components it adds afterwards.
    pub fn set_workdir(&mut self, path: impl AsRef<Path>) {
        self.workdir = self.map(path);
        self.workdir_set = true;
    }

    /// The definition directory: where the component's source file lives
    /// (templates and `source=` files are found there).
    pub fn defdir(&self) -> &Path {
        &self.defdir
    }

    /// The project directory (where `environments/` is).
    pub fn project_root(&self) -> &Path {
        &self.env.project_root
    }

    /// Maps a path: `~` is the home directory, relative paths are relative
    /// to the working directory.
    pub fn map(&self, path: impl AsRef<Path>) -> PathBuf {
        self.env.map(&self.workdir, path.as_ref())
    }

    /// Resolves a source file name: relative names are relative to the
    /// definition directory.
    pub fn resolve_source(&self, path: impl AsRef<Path>) -> PathBuf {
        let p = crate::model::expand_user(path.as_ref());
        if p.is_absolute() {
            p
        } else {
            self.defdir.join(p)
        }
    }

    /// The content of a file (a template source, say) as it is while
    /// configuring: each file is read once per deployment however many
    /// components read it.
    pub fn read_source(&self, path: &Path) -> std::io::Result<std::sync::Arc<[u8]>> {
        self.env.read_source(path)
    }

    /// The template value of the parent component (what `{{ component }}`
    /// means for templates rendered on behalf of the parent).
    pub fn parent(&self) -> Option<&Value> {
        self.parent.as_ref()
    }

    /// The value templates see as `component` for a component.
    pub fn value_of<C: ComponentMeta + ?Sized>(&self, component: &C) -> Value {
        Value::from_object(ComponentValue {
            type_name: C::TYPE_NAME,
            host: self.host.name.clone(),
            crumbs: self.crumbs.to_string(),
            attributes: component.attribute_values(),
            workdir: self.workdir.clone(),
            defdir: self.defdir.clone(),
        })
    }

    /// Expands a template string with `component` = the given component.
    pub fn expand<C: ComponentMeta + ?Sized>(
        &self,
        component: &C,
        template: &str,
    ) -> Result<String> {
        let value = self.value_of(component);
        Ok(self.render("<string>", template, value, None)?)
    }

    /// Renders a template file (relative to the definition directory) with
    /// `component` = the given component.
    pub fn template<C: ComponentMeta + ?Sized>(
        &self,
        component: &C,
        file: impl AsRef<Path>,
    ) -> Result<String> {
        let path = self.resolve_source(file);
        let source = std::fs::read_to_string(&path)
            .map_err(|e| crate::Error::io(format!("reading template {}", path.display()), e))?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        Ok(self.render(&name, &source, self.value_of(component), None)?)
    }

    /// Renders a template source with an explicit `component` value and
    /// optional extra variables (a map value).
    pub fn render(
        &self,
        name: &str,
        source: &str,
        component: Value,
        extra: Option<&Value>,
    ) -> std::result::Result<String, TemplateError> {
        self.env
            .render(&self.host.name, name, source, component, extra)
    }

    /// An [`Address`](crate::address::Address) resolved with the
    /// environment's `require_v4`/`require_v6` and `[resolver]`.
    pub fn address(&self, connect: &str) -> Result<crate::address::Address> {
        Ok(crate::address::Address::new(connect)?)
    }

    /// Provides a value for a resource (for every root that requires it).
    #[track_caller]
    pub fn provide<T: ResourceValue>(&mut self, resource: &Resource<T>, value: T) -> Result<()> {
        let location = caller();
        self.resources
            .provide(self.root_id, resource.key(), value, &location)
            .map_err(|m| crate::Error::usage_at(m, &location))
    }

    /// All values provided for a resource, on any host (strict: no value
    /// means this root is configured again later, or an "Unsatisfied
    /// resource requirements" error). Requirers deploy after providers.
    #[track_caller]
    pub fn require<T: ResourceValue>(&mut self, resource: &Resource<T>) -> Result<Vec<T>> {
        self.require_impl(resource, &RequireOptions::new(), caller())
    }

    /// [`Self::require`] with options: host filter, strictness, `reverse`,
    /// `dirty`.
    #[track_caller]
    pub fn require_with<T: ResourceValue>(
        &mut self,
        resource: &Resource<T>,
        options: RequireOptions,
    ) -> Result<Vec<T>> {
        self.require_impl(resource, &options, caller())
    }

    /// Exactly one value (strict): more than one is an error; none yet
    /// returns [`Error::Unsatisfied`](crate::Error::Unsatisfied), which the
    /// caller propagates with `?`.
    #[track_caller]
    pub fn require_one<T: ResourceValue>(&mut self, resource: &Resource<T>) -> Result<T> {
        let location = caller();
        match self.require_one_impl(resource, &RequireOptions::new(), location)? {
            Some(v) => Ok(v),
            None => Err(crate::Error::Unsatisfied(resource.key().to_string())),
        }
    }

    /// At most one value, with options; `None` when nothing is provided and
    /// the requirement is not strict.
    #[track_caller]
    pub fn require_one_with<T: ResourceValue>(
        &mut self,
        resource: &Resource<T>,
        options: RequireOptions,
    ) -> Result<Option<T>> {
        let location = caller();
        match self.require_one_impl(resource, &options, location)? {
            None if options.strict => Err(crate::Error::Unsatisfied(resource.key().to_string())),
            other => Ok(other),
        }
    }

    fn require_impl<T: ResourceValue>(
        &mut self,
        resource: &Resource<T>,
        options: &RequireOptions,
        location: String,
    ) -> Result<Vec<T>> {
        if let Some(h) = &options.host {
            if !self.env.environment.hosts.iter().any(|x| &x.name == h) {
                return Err(crate::Error::usage_at(
                    format!(
                        "require of \"{}\" names host {h:?}, which is not in the environment",
                        resource.key()
                    ),
                    location,
                ));
            }
        }
        self.resources
            .require(self.root_id, resource.key(), options, &location)
            .map_err(|m| crate::Error::usage_at(m, &location))
    }

    fn require_one_impl<T: ResourceValue>(
        &mut self,
        resource: &Resource<T>,
        options: &RequireOptions,
        location: String,
    ) -> Result<Option<T>> {
        let mut values = self.require_impl(resource, options, location.clone())?;
        match values.len() {
            0 => Ok(None),
            1 => Ok(values.pop()),
            n => Err(crate::Error::usage_at(
                format!(
                    "resource \"{}\" has {n} values, require_one expects exactly one",
                    resource.key()
                ),
                location,
            )),
        }
    }

    /// Logs a message; configure-time logs are printed after the model is
    /// configured.
    pub fn log(&mut self, message: impl Into<String>) {
        self.logs.push(message.into());
    }

    /// Secret values of the environment (for masking diffs).
    pub fn secret_data(&self) -> &Arc<std::collections::BTreeSet<String>> {
        &self.env.secret_data
    }

    /// The text of secret file `name` (`environments/<env>/secret-<name>.*`),
    /// as batou's `environment.secret_files[name]`.
    pub fn secret_file(&self, name: &str) -> Option<&str> {
        self.env
            .environment
            .secrets
            .files
            .get(name)
            .map(String::as_str)
    }

    /// The names of the environment's secret files.
    pub fn secret_file_names(&self) -> impl Iterator<Item = &str> {
        self.env
            .environment
            .secrets
            .files
            .keys()
            .map(String::as_str)
    }
}

#[track_caller]
fn caller() -> String {
    let l = std::panic::Location::caller();
    crate::panics::source_location(l.file(), l.line())
}
