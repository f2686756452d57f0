//! Components: the [`Component`] trait users implement, the metadata the
//! `#[component]` macro generates, and the contexts of the lifecycle.
//!
//! A component is a struct with typed attributes:
//!
//! ```
//! use batou::prelude::*;
//!
//! #[component]
//! pub struct Greeting {
//!     #[attribute(default = "hello")]
//!     word: String,
//!     #[attribute(default = 1)]
//!     times: u32,
//!     #[attribute]
//!     audience: Option<String>,
//! }
//!
//! impl Component for Greeting {
//!     fn configure(&mut self, cx: &mut Configure) -> batou::Result<()> {
//!         let text = cx.expand(self, "{{ component.word }} x{{ component.times }}")?;
//!         cx.log(text);
//!         Ok(())
//!     }
//! }
//!
//! let g = Greeting::new().times(3u32);
//! assert_eq!(g.times, 3);
//! assert_eq!(<Greeting as batou::component::ComponentMeta>::NAME, "greeting");
//! ```
//!
//! The lifecycle follows batou: `configure` builds the tree (sub-components
//! are configured after their parent's `configure` returns, in the order
//! they were added), then at deploy time every component runs after its
//! sub-components: `enter`, `verify` (return [`Error::UpdateNeeded`](crate::Error::UpdateNeeded), e.g.
//! through [`ensure!`](crate::ensure), to ask for an update), `update` if
//! needed, `exit`.

mod configure;
mod deploy;
mod value;

pub use configure::{Child, Configure};
pub use deploy::{shell_quote, CmdExecutionError, CmdOptions, CmdOutput, Deploy};
pub use value::{py_repr, ConfigValue, ConversionError, IntoAttribute, Literal, Mode};

use crate::Result;
use std::any::Any;
use std::path::{Path, PathBuf};

/// What a component does. Every method has a default, so a component that
/// only groups sub-components implements `configure` alone.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is declared with #[component] but does not implement `batou::component::Component`",
    label = "add `impl Component for {Self} {{}}` (with `configure`, `verify`, `update` as needed)"
)]
pub trait Component: ComponentMeta + Send + 'static {
    /// Builds the target state: adds sub-components, provides and requires
    /// resources, renders templates. Must not change the target system.
    fn configure(&mut self, _cx: &mut Configure) -> Result<()> {
        Ok(())
    }
    /// Checks whether the target state is reached; returns
    /// [`Error::UpdateNeeded`](crate::Error::UpdateNeeded) if not.
    fn verify(&mut self, _cx: &mut Deploy) -> Result<()> {
        Ok(())
    }
    /// Brings the system to the target state. Called only when `verify`
    /// asked for it, never when predicting (`deploy -P`).
    fn update(&mut self, _cx: &mut Deploy) -> Result<()> {
        Ok(())
    }
    /// Runs before `verify` (batou's `__enter__`).
    fn enter(&mut self, _cx: &mut Deploy) -> Result<()> {
        Ok(())
    }
    /// Runs after `verify`/`update`, also when they failed (batou's `__exit__`).
    fn exit(&mut self, _cx: &mut Deploy) -> Result<()> {
        Ok(())
    }
    /// When this component was last updated, in seconds since the epoch.
    /// Components that can tell (files, directories) override it; it is what
    /// [`Deploy::assert_component_is_current`] compares.
    fn last_updated(&self, _cx: &Deploy) -> Result<Option<f64>> {
        Err(crate::Error::usage(format!(
            "{} does not implement last_updated()",
            Self::TYPE_NAME
        )))
    }
    /// Subscribes to batou's `before-update` event: `Some(EventScope::All)`
    /// calls [`Component::before_update`] whenever any component of the same
    /// root is about to be updated; `Some(EventScope::Precursor)` only for
    /// components that come before this one (pre-order). When predicting,
    /// `Trigger before-update: ...` is printed instead.
    fn before_update_scope(&self) -> Option<EventScope> {
        None
    }
    /// The `before-update` handler; `source` is the breadcrumbs of the
    /// component about to be updated.
    fn before_update(&mut self, _cx: &mut Deploy, _source: &str) -> Result<()> {
        Ok(())
    }
    /// The namevar as shown in breadcrumbs (`File('work/app/a.txt')`).
    /// Defaults to the namevar's value.
    fn breadcrumb(&self, _cx: &Configure) -> Option<String> {
        self.namevar_value().map(|v| v.to_string())
    }
    /// What this component's `enter`, `verify`, `update` and `exit` read
    /// or change on the host. Files written in batches (see
    /// [`crate::safe_fs::batched`]) are synced and put in place before a
    /// component that may touch them runs: before every component with
    /// the default [`Footprint::Anything`], and before one listing
    /// [`Footprint::File`] or [`Footprint::Files`] only when it names one
    /// of them.
    fn footprint(&self) -> Footprint<'_> {
        Footprint::Anything
    }
}

/// What a component's deploy steps may read or change (see
/// [`Component::footprint`]).
///
/// ```
/// use batou::prelude::*;
/// use batou::component::Footprint;
///
/// #[component(namevar = path)]
/// pub struct Stamp {
///     path: String,
/// }
///
/// impl Component for Stamp {
///     fn verify(&mut self, _cx: &mut Deploy) -> batou::Result<()> {
///         batou::ensure!(std::path::Path::new(&self.path).is_file(), "no stamp");
///         Ok(())
///     }
///     fn footprint(&self) -> Footprint<'_> {
///         Footprint::File(std::path::Path::new(&self.path))
///     }
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Footprint<'a> {
    /// Anything: files, directories, commands, services (the default).
    Anything,
    /// Only this file (no directory, no command): the component reads,
    /// replaces or changes the attributes of this path and nothing else.
    File(&'a std::path::Path),
    /// Only these files, as [`Footprint::File`].
    Files(Vec<&'a std::path::Path>),
}

/// Which updates a `before-update` handler hears about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventScope {
    /// Every component of the root (batou's `"*"`).
    All,
    /// Components before the handler in pre-order (batou's `"precursor"`).
    Precursor,
}

/// Static facts about an attribute, generated by `#[component]`.
#[derive(Debug, Clone, Copy)]
pub struct AttributeInfo {
    /// Field name.
    pub name: &'static str,
    /// The Rust type as written.
    pub type_name: &'static str,
    /// Neither a default nor optional: must be given.
    pub required: bool,
    /// The namevar (the constructor's argument).
    pub namevar: bool,
    /// Overrides are expanded as templates before conversion.
    pub expand: bool,
}

/// Which attributes have a value, and conversion errors of values given in
/// code. Hidden field of every component.
#[derive(Debug, Clone, Default)]
pub struct AttrState {
    set: Vec<bool>,
    errors: Vec<(&'static str, ConversionError)>,
}

impl AttrState {
    /// State for `n` attributes, none set.
    pub fn new(n: usize) -> Self {
        AttrState {
            set: vec![false; n],
            errors: Vec::new(),
        }
    }
    /// Marks attribute `i` as having a value.
    pub fn mark(&mut self, i: usize) {
        if let Some(s) = self.set.get_mut(i) {
            *s = true;
        }
    }
    /// Whether attribute `i` has a value.
    pub fn is_set(&self, i: usize) -> bool {
        self.set.get(i).copied().unwrap_or(false)
    }
    /// Records a value given in code that did not convert.
    pub fn push_error(&mut self, attribute: &'static str, error: ConversionError) {
        self.errors.push((attribute, error));
    }
    /// Takes the recorded conversion errors.
    pub fn take_errors(&mut self) -> Vec<(&'static str, ConversionError)> {
        std::mem::take(&mut self.errors)
    }
}

/// Generated by `#[component]`: names, attributes and their conversions.
pub trait ComponentMeta {
    /// The registered name: the struct name lowercased.
    const NAME: &'static str;
    /// The struct name, as breadcrumbs show it.
    const TYPE_NAME: &'static str;
    /// The attributes in declaration order.
    const ATTRIBUTES: &'static [AttributeInfo];
    /// An instance with all defaults (how roots are created).
    fn instantiate() -> Self
    where
        Self: Sized;
    /// Which attributes are set.
    fn attr_state(&self) -> &AttrState;
    /// Which attributes are set (mutable).
    fn attr_state_mut(&mut self) -> &mut AttrState;
    /// Converts and sets an attribute from an override string. `None`: no
    /// such attribute.
    fn set_attribute(
        &mut self,
        name: &str,
        raw: &str,
    ) -> Option<std::result::Result<(), ConversionError>>;
    /// The attribute values as templates see them.
    fn attribute_values(&self) -> Vec<(&'static str, minijinja::Value)>;
    /// The namevar's value, if the component has one.
    fn namevar_value(&self) -> Option<minijinja::Value>;
}

/// Object-safe view of a component, implemented for every [`Component`].
pub trait DynComponent: Send + Any {
    #[doc(hidden)]
    fn dyn_configure(&mut self, cx: &mut Configure) -> Result<()>;
    #[doc(hidden)]
    fn dyn_verify(&mut self, cx: &mut Deploy) -> Result<()>;
    #[doc(hidden)]
    fn dyn_update(&mut self, cx: &mut Deploy) -> Result<()>;
    #[doc(hidden)]
    fn dyn_enter(&mut self, cx: &mut Deploy) -> Result<()>;
    #[doc(hidden)]
    fn dyn_exit(&mut self, cx: &mut Deploy) -> Result<()>;
    #[doc(hidden)]
    fn dyn_last_updated(&self, cx: &Deploy) -> Result<Option<f64>>;
    #[doc(hidden)]
    fn dyn_breadcrumb(&self, cx: &Configure) -> Option<String>;
    #[doc(hidden)]
    fn dyn_before_update_scope(&self) -> Option<EventScope>;
    #[doc(hidden)]
    fn dyn_before_update(&mut self, cx: &mut Deploy, source: &str) -> Result<()>;
    #[doc(hidden)]
    fn dyn_footprint(&self) -> Footprint<'_>;
    #[doc(hidden)]
    fn dyn_namevar_value(&self) -> Option<minijinja::Value>;
    /// The struct name.
    fn type_name(&self) -> &'static str;
    /// The registered name.
    fn component_name(&self) -> &'static str;
    /// The attributes.
    fn attributes(&self) -> &'static [AttributeInfo];
    #[doc(hidden)]
    fn dyn_attr_state_mut(&mut self) -> &mut AttrState;
    #[doc(hidden)]
    fn dyn_set_attribute(
        &mut self,
        name: &str,
        raw: &str,
    ) -> Option<std::result::Result<(), ConversionError>>;
    #[doc(hidden)]
    fn dyn_attribute_values(&self) -> Vec<(&'static str, minijinja::Value)>;
    #[doc(hidden)]
    fn as_any(&self) -> &dyn Any;
    #[doc(hidden)]
    fn as_any_mut(&mut self) -> &mut dyn Any;
}

impl<T: Component> DynComponent for T {
    fn dyn_configure(&mut self, cx: &mut Configure) -> Result<()> {
        Component::configure(self, cx)
    }
    fn dyn_verify(&mut self, cx: &mut Deploy) -> Result<()> {
        Component::verify(self, cx)
    }
    fn dyn_update(&mut self, cx: &mut Deploy) -> Result<()> {
        Component::update(self, cx)
    }
    fn dyn_enter(&mut self, cx: &mut Deploy) -> Result<()> {
        Component::enter(self, cx)
    }
    fn dyn_exit(&mut self, cx: &mut Deploy) -> Result<()> {
        Component::exit(self, cx)
    }
    fn dyn_last_updated(&self, cx: &Deploy) -> Result<Option<f64>> {
        Component::last_updated(self, cx)
    }
    fn dyn_breadcrumb(&self, cx: &Configure) -> Option<String> {
        Component::breadcrumb(self, cx)
    }
    fn dyn_before_update_scope(&self) -> Option<EventScope> {
        Component::before_update_scope(self)
    }
    fn dyn_before_update(&mut self, cx: &mut Deploy, source: &str) -> Result<()> {
        Component::before_update(self, cx, source)
    }
    fn dyn_footprint(&self) -> Footprint<'_> {
        Component::footprint(self)
    }
    fn dyn_namevar_value(&self) -> Option<minijinja::Value> {
        ComponentMeta::namevar_value(self)
    }
    fn type_name(&self) -> &'static str {
        T::TYPE_NAME
    }
    fn component_name(&self) -> &'static str {
        T::NAME
    }
    fn attributes(&self) -> &'static [AttributeInfo] {
        T::ATTRIBUTES
    }
    fn dyn_attr_state_mut(&mut self) -> &mut AttrState {
        self.attr_state_mut()
    }
    fn dyn_set_attribute(
        &mut self,
        name: &str,
        raw: &str,
    ) -> Option<std::result::Result<(), ConversionError>> {
        self.set_attribute(name, raw)
    }
    fn dyn_attribute_values(&self) -> Vec<(&'static str, minijinja::Value)> {
        self.attribute_values()
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

/// A component type as `inventory` registers it.
pub struct Registration {
    /// Registered name (lowercased struct name).
    pub name: &'static str,
    /// Struct name.
    pub type_name: &'static str,
    /// `file!()` of the definition.
    pub file: &'static str,
    /// `line!()` of the definition.
    pub line: u32,
    /// `CARGO_MANIFEST_DIR` of the defining crate.
    pub manifest_dir: &'static str,
    /// Directory of the defining file relative to `manifest_dir` ("" if unknown).
    pub defdir: &'static str,
    /// The defining file relative to `manifest_dir` ("" if unknown).
    pub source: &'static str,
    /// Name of the defining package.
    pub package: &'static str,
    /// Name of the defining crate (`CARGO_CRATE_NAME`): `crate_name.component`
    /// in environment.cfg picks this crate's component.
    pub crate_name: &'static str,
    /// For platform components: `(platform, name of the base component)`.
    pub platform: Option<(&'static str, &'static str)>,
    /// The feature names it knows (`#[component(features = [...])]`).
    pub features: &'static [&'static str],
    /// The attributes.
    pub attributes: &'static [AttributeInfo],
    /// Files next to the definition of a library component, embedded at
    /// compile time.
    pub files: &'static [EmbeddedFile],
    /// Creates an instance with all defaults.
    pub factory: fn() -> Box<dyn DynComponent>,
    /// The component type's `TypeId`: tells same-named types of two
    /// crates apart.
    pub type_id: fn() -> std::any::TypeId,
}

inventory::collect!(Registration);

/// A file next to a library component's source, embedded at compile time.
#[derive(Clone, Copy)]
pub struct EmbeddedFile {
    /// Path relative to the component's definition directory.
    pub path: &'static str,
    /// Permission bits of the file when it was compiled.
    pub mode: u32,
    /// The content.
    pub data: &'static [u8],
}

impl std::fmt::Debug for EmbeddedFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedFile")
            .field("path", &self.path)
            .field("mode", &format_args!("{:o}", self.mode))
            .field("len", &self.data.len())
            .finish()
    }
}

impl std::fmt::Debug for Registration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registration")
            .field("name", &self.name)
            .field("type_name", &self.type_name)
            .field("crate_name", &self.crate_name)
            .field("location", &self.location())
            .field("platform", &self.platform)
            .field("features", &self.features)
            .field("attributes", &self.attributes)
            .field(
                "files",
                &self.files.iter().map(|f| f.path).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl Registration {
    /// `file:line in package` of the definition.
    pub fn location(&self) -> String {
        let file = if self.source.is_empty() {
            self.file
        } else {
            self.source
        };
        format!("{}:{} in {}", file, self.line, self.package)
    }

    /// The definition directory as an absolute path on the machine that
    /// compiled the crate.
    pub fn compiled_defdir(&self) -> PathBuf {
        let manifest = PathBuf::from(self.manifest_dir);
        if !self.defdir.is_empty() {
            return manifest.join(self.defdir);
        }
        // Fall back to file!(), which is relative to the workspace root
        // cargo compiled from: try the manifest dir and its ancestors.
        let file = PathBuf::from(self.file);
        if file.is_absolute() {
            return file.parent().map(PathBuf::from).unwrap_or(manifest);
        }
        for base in manifest.ancestors() {
            let candidate = base.join(&file);
            if candidate.exists() {
                return candidate.parent().map(PathBuf::from).unwrap_or(manifest);
            }
        }
        manifest
    }
}

/// All registered components, sorted by name.
pub fn registrations() -> Vec<&'static Registration> {
    let mut all: Vec<_> = inventory::iter::<Registration>.into_iter().collect();
    all.sort_by(|a, b| a.name.cmp(b.name).then(a.location().cmp(&b.location())));
    all
}

/// Files embedded with library components, by their path on the machine
/// that compiled them (the component's [`Registration::compiled_defdir`]
/// joined with the relative path).
fn embedded_index() -> &'static std::collections::HashMap<PathBuf, &'static EmbeddedFile> {
    static INDEX: std::sync::OnceLock<std::collections::HashMap<PathBuf, &'static EmbeddedFile>> =
        std::sync::OnceLock::new();
    INDEX.get_or_init(|| {
        registrations()
            .into_iter()
            .flat_map(|r| {
                let dir = r.compiled_defdir();
                r.files.iter().map(move |f| (dir.join(f.path), f))
            })
            .collect()
    })
}

/// The embedded file at `path`, if a library component carries one there.
pub fn embedded_file(path: &Path) -> Option<&'static [u8]> {
    embedded_index().get(path).map(|f| f.data)
}

/// The embedded files below directory `dir`: `(path relative to dir,
/// file)`, sorted.
pub fn embedded_tree(dir: &Path) -> Vec<(PathBuf, &'static EmbeddedFile)> {
    let mut out: Vec<(PathBuf, &'static EmbeddedFile)> = embedded_index()
        .iter()
        .filter_map(|(p, d)| p.strip_prefix(dir).ok().map(|r| (r.to_path_buf(), *d)))
        .filter(|(r, _)| !r.as_os_str().is_empty())
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// Reads a source file: embedded with a library component, else from disk.
pub fn read_source(path: &Path) -> std::io::Result<std::borrow::Cow<'static, [u8]>> {
    match embedded_file(path) {
        Some(data) => Ok(std::borrow::Cow::Borrowed(data)),
        None => std::fs::read(path).map(std::borrow::Cow::Owned),
    }
}

/// Whether a source file exists (embedded or on disk).
pub fn source_is_file(path: &Path) -> bool {
    embedded_file(path).is_some() || path.is_file()
}

/// The registration an environment names: `component` or
/// `crate_name.component`.
pub fn find_registration<'a>(all: &[&'a Registration], name: &str) -> Option<&'a Registration> {
    match name.split_once('.') {
        Some((krate, comp)) => all
            .iter()
            .find(|r| r.crate_name == krate && r.name == comp)
            .copied(),
        None => all.iter().find(|r| r.name == name).copied(),
    }
}

/// The component part of `crate_name.component` (the name itself without
/// a crate).
pub fn component_part(name: &str) -> &str {
    name.split_once('.').map_or(name, |(_, c)| c)
}

/// Items used by the code `#[component]` generates. Not a stable API.
#[doc(hidden)]
pub mod __private {
    pub use super::{
        AttrState, AttributeInfo, ComponentMeta, ConfigValue, ConversionError, DynComponent,
        EmbeddedFile, IntoAttribute, Registration,
    };
    pub use inventory;
    pub use minijinja::Value;

    /// A boxed default instance (the registry's factory).
    pub fn instantiate_boxed<T: super::Component>() -> Box<dyn DynComponent> {
        Box::new(T::instantiate())
    }
}
