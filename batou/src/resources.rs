//! Typed resources: how root components find each other across hosts.
//!
//! A resource key carries the type of its values:
//!
//! ```
//! use batou::prelude::*;
//! use batou::resources::Resource;
//!
//! /// Addresses of the application servers, provided by every `App`.
//! pub const APPLICATION: Resource<String> = Resource::new("application");
//!
//! #[component]
//! pub struct App {}
//! impl Component for App {
//!     fn configure(&mut self, cx: &mut Configure) -> batou::Result<()> {
//!         let me = format!("{}:8080", cx.host().fqdn);
//!         cx.provide(&APPLICATION, me)
//!     }
//! }
//!
//! #[component]
//! pub struct Balancer {}
//! impl Component for Balancer {
//!     fn configure(&mut self, cx: &mut Configure) -> batou::Result<()> {
//!         let backends: Vec<String> = cx.require(&APPLICATION)?;
//!         cx.log(format!("{} backends", backends.len()));
//!         Ok(())
//!     }
//! }
//! ```
//!
//! Providers and requirers that share one `Resource` constant cannot
//! disagree on the type; two constants with the same key and different types
//! are a configuration error naming both places. Values come back in a
//! deterministic order: host name, then root name, then provide order.
//!
//! The configure loop (batou's semantics) lives in [`crate::model`]: a root
//! that required something is configured again when what it required
//! changes; requirers deploy after providers unless `reverse`.

use std::any::{Any, TypeId};
use std::collections::{BTreeMap, BTreeSet};
use std::marker::PhantomData;
use std::sync::Arc;

/// Index of a root component in the model.
pub type RootId = usize;

/// A resource key with the type of its values.
pub struct Resource<T> {
    key: std::borrow::Cow<'static, str>,
    _type: PhantomData<fn() -> T>,
}

impl<T> std::fmt::Debug for Resource<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Resource").field(&self.key).finish()
    }
}

impl<T> Resource<T> {
    /// A key; declare it once as a `const` and share it.
    pub const fn new(key: &'static str) -> Self {
        Resource {
            key: std::borrow::Cow::Borrowed(key),
            _type: PhantomData,
        }
    }
    /// A key computed at run time (e.g. one per instance of something).
    pub fn named(key: impl Into<String>) -> Self {
        Resource {
            key: std::borrow::Cow::Owned(key.into()),
            _type: PhantomData,
        }
    }
    /// The key.
    pub fn key(&self) -> &str {
        &self.key
    }
}

/// What a resource value must be: cloneable, shareable between threads, and
/// printable for error messages.
pub trait ResourceValue: Clone + Send + Sync + std::fmt::Debug + 'static {}
impl<T: Clone + Send + Sync + std::fmt::Debug + 'static> ResourceValue for T {}

/// A provided value as batou's reports show it: strings and booleans as
/// Python writes them (`'x'`, `True`), anything else as Rust's `Debug`.
fn describe<T: ResourceValue>(value: &T) -> String {
    let any: &dyn std::any::Any = value;
    if let Some(s) = any.downcast_ref::<String>() {
        crate::component::py_repr(s)
    } else if let Some(s) = any.downcast_ref::<&'static str>() {
        crate::component::py_repr(s)
    } else if let Some(b) = any.downcast_ref::<bool>() {
        if *b { "True" } else { "False" }.to_string()
    } else {
        format!("{value:?}")
    }
}

/// Options of [`Configure::require_with`](crate::component::Configure::require_with).
#[derive(Debug, Clone)]
pub struct RequireOptions {
    /// Only values provided by roots on this host.
    pub host: Option<String>,
    /// No value is a configuration problem (the default).
    pub strict: bool,
    /// The provider deploys after the requirer instead of before.
    pub reverse: bool,
    /// Do not configure this root again when the values change (a cycle
    /// breaker; the configuration may be incomplete).
    pub dirty: bool,
}

impl Default for RequireOptions {
    fn default() -> Self {
        RequireOptions {
            host: None,
            strict: true,
            reverse: false,
            dirty: false,
        }
    }
}

impl RequireOptions {
    /// Strict, any host, provider first.
    pub fn new() -> Self {
        Self::default()
    }
    /// Only values from roots on `host`.
    pub fn on_host(mut self, host: impl Into<String>) -> Self {
        self.host = Some(host.into());
        self
    }
    /// No values is fine.
    pub fn optional(mut self) -> Self {
        self.strict = false;
        self
    }
    /// Deploy the provider after the requirer.
    pub fn reverse(mut self) -> Self {
        self.reverse = true;
        self
    }
    /// Do not re-configure when the values change.
    pub fn dirty(mut self) -> Self {
        self.dirty = true;
        self
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Subscription {
    root: RootId,
    host: Option<String>,
    strict: bool,
    reverse: bool,
    dirty: bool,
    /// The key's version when the root last read it.
    seen: u64,
}

/// A provided value and how it prints.
type Provided = (Arc<dyn Any + Send + Sync>, String);

struct KeyEntry {
    type_id: TypeId,
    type_name: &'static str,
    location: String,
    /// Values per providing root, ordered by (host, root name, root id).
    providers: BTreeMap<(String, String, RootId), Vec<Provided>>,
    subscribers: Vec<Subscription>,
    /// Bumped whenever the provided values change.
    version: u64,
}

/// Who a root is, for ordering and messages.
#[derive(Debug, Clone)]
pub struct RootInfo {
    /// Host name.
    pub host: String,
    /// Component name.
    pub name: String,
}

/// The registry of provided and required resources of one model.
pub struct Resources {
    keys: BTreeMap<String, KeyEntry>,
    roots: Vec<RootInfo>,
    /// Keys each root provided or required (so resetting a root touches
    /// only its own keys: the loop stays linear in the number of roots).
    touched: Vec<BTreeSet<String>>,
    /// What a root provided before it was reset: `key → values`.
    before: BTreeMap<String, Vec<String>>,
}

impl std::fmt::Debug for Resources {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resources")
            .field("keys", &self.keys.keys().collect::<Vec<_>>())
            .field("roots", &self.roots.len())
            .finish_non_exhaustive()
    }
}

impl Resources {
    /// An empty registry for these roots.
    pub fn new(roots: Vec<RootInfo>) -> Self {
        Resources {
            keys: BTreeMap::new(),
            touched: vec![BTreeSet::new(); roots.len()],
            roots,
            before: BTreeMap::new(),
        }
    }

    fn entry<T: 'static>(&mut self, key: &str, location: &str) -> Result<&mut KeyEntry, String> {
        let entry = self
            .keys
            .entry(key.to_string())
            .or_insert_with(|| KeyEntry {
                type_id: TypeId::of::<T>(),
                type_name: std::any::type_name::<T>(),
                location: location.to_string(),
                providers: BTreeMap::new(),
                subscribers: Vec::new(),
                version: 0,
            });
        if entry.type_id != TypeId::of::<T>() {
            return Err(format!(
                "resource \"{key}\" is used with two types: {} (at {}) and {} (at {location})",
                entry.type_name,
                entry.location,
                std::any::type_name::<T>(),
            ));
        }
        Ok(entry)
    }

    fn host_matches(filter: &Option<String>, host: &str) -> bool {
        filter.as_deref().is_none_or(|h| h == host)
    }

    /// Records a value provided by `root` (between [`Self::reset_root`]
    /// and [`Self::finish_root`]).
    pub fn provide<T: ResourceValue>(
        &mut self,
        root: RootId,
        key: &str,
        value: T,
        location: &str,
    ) -> Result<(), String> {
        let info = self.roots[root].clone();
        self.touched[root].insert(key.to_string());
        let entry = self.entry::<T>(key, location)?;
        let debug = describe(&value);
        entry
            .providers
            .entry((info.host, info.name, root))
            .or_default()
            .push((Arc::new(value), debug));
        Ok(())
    }

    /// Records that `root` requires `key` and returns the values so far.
    pub fn require<T: ResourceValue>(
        &mut self,
        root: RootId,
        key: &str,
        options: &RequireOptions,
        location: &str,
    ) -> Result<Vec<T>, String> {
        self.touched[root].insert(key.to_string());
        let entry = self.entry::<T>(key, location)?;
        let sub = Subscription {
            root,
            host: options.host.clone(),
            strict: options.strict,
            reverse: options.reverse,
            dirty: options.dirty,
            seen: entry.version,
        };
        let same = |s: &Subscription| {
            (s.root, &s.host, s.strict, s.reverse, s.dirty)
                == (sub.root, &sub.host, sub.strict, sub.reverse, sub.dirty)
        };
        match entry.subscribers.iter_mut().find(|s| same(s)) {
            Some(existing) => existing.seen = sub.seen,
            None => entry.subscribers.push(sub),
        }
        let mut out = Vec::new();
        for ((host, _, _), values) in &entry.providers {
            if !Self::host_matches(&options.host, host) {
                continue;
            }
            for (v, _) in values {
                if let Some(v) = v.downcast_ref::<T>() {
                    out.push(v.clone());
                }
            }
        }
        Ok(out)
    }

    /// Forgets what `root` provided and required, before it is configured
    /// again.
    pub fn reset_root(&mut self, root: RootId) {
        self.before.clear();
        for key in std::mem::take(&mut self.touched[root]) {
            let Some(entry) = self.keys.get_mut(&key) else {
                continue;
            };
            let mut old = Vec::new();
            entry.providers.retain(|(_, _, r), values| {
                if *r == root {
                    old.extend(values.iter().map(|(_, d)| d.clone()));
                    false
                } else {
                    true
                }
            });
            if !old.is_empty() {
                self.before.insert(key.clone(), old);
            }
            entry.subscribers.retain(|s| s.root != root);
        }
    }

    /// After `root` was configured: keys whose values it changed get a new
    /// version, which makes the roots that read the old values dirty.
    /// Returns those roots.
    pub fn finish_root(&mut self, root: RootId) -> BTreeSet<RootId> {
        let mut keys: BTreeSet<String> = self.before.keys().cloned().collect();
        keys.extend(self.touched[root].iter().cloned());
        let mut readers = BTreeSet::new();
        for key in keys {
            let Some(entry) = self.keys.get_mut(&key) else {
                continue;
            };
            let now: Vec<String> = entry
                .providers
                .iter()
                .filter(|((_, _, r), _)| *r == root)
                .flat_map(|(_, v)| v.iter().map(|(_, d)| d.clone()))
                .collect();
            let old = self.before.get(&key).cloned().unwrap_or_default();
            if now != old {
                entry.version += 1;
                readers.extend(
                    entry
                        .subscribers
                        .iter()
                        .filter(|s| !s.dirty && s.root != root)
                        .map(|s| s.root),
                );
            }
        }
        self.before.clear();
        readers
    }

    /// Roots that read values that changed since (and want to see changes).
    pub fn dirty_roots(&self) -> BTreeSet<RootId> {
        let mut out = BTreeSet::new();
        for entry in self.keys.values() {
            for s in &entry.subscribers {
                if !s.dirty && s.seen < entry.version {
                    out.insert(s.root);
                }
            }
        }
        out
    }

    /// Strict requirements without values: `(key, host filter)`.
    pub fn unsatisfied(&self) -> Vec<(String, Option<String>, BTreeSet<RootId>)> {
        let mut out = Vec::new();
        for (key, entry) in &self.keys {
            let mut by_filter: BTreeMap<Option<String>, BTreeSet<RootId>> = BTreeMap::new();
            for s in entry.subscribers.iter().filter(|s| s.strict) {
                let has_value = entry
                    .providers
                    .keys()
                    .any(|(host, _, _)| Self::host_matches(&s.host, host));
                if !has_value {
                    by_filter.entry(s.host.clone()).or_default().insert(s.root);
                }
            }
            for (host, roots) in by_filter {
                out.push((key.clone(), host, roots));
            }
        }
        out
    }

    /// Provided values nobody required: `(key, provider root, values)`.
    pub fn unused(&self) -> Vec<(String, RootId, Vec<String>)> {
        let mut out = Vec::new();
        for (key, entry) in &self.keys {
            for ((host, _, root), values) in &entry.providers {
                let used = entry
                    .subscribers
                    .iter()
                    .any(|s| Self::host_matches(&s.host, host));
                if !used {
                    out.push((
                        key.clone(),
                        *root,
                        values.iter().map(|(_, d)| d.clone()).collect(),
                    ));
                }
            }
        }
        out
    }

    /// `(dependency, dependent)` pairs: the first must deploy before the
    /// second.
    pub fn edges(&self) -> BTreeSet<(RootId, RootId)> {
        self.labelled_edges().into_keys().collect()
    }

    /// For each root that required something, the roots whose provided
    /// values it sees (host filters applied, `reverse` ignored): what
    /// configuring it needs besides itself.
    pub fn reads(&self) -> BTreeMap<RootId, BTreeSet<RootId>> {
        let mut out: BTreeMap<RootId, BTreeSet<RootId>> = BTreeMap::new();
        for entry in self.keys.values() {
            for s in &entry.subscribers {
                for (host, _, provider) in entry.providers.keys() {
                    if Self::host_matches(&s.host, host) && *provider != s.root {
                        out.entry(s.root).or_default().insert(*provider);
                    }
                }
            }
        }
        out
    }

    /// [`Self::edges`] with the resource keys that make each of them.
    pub fn labelled_edges(&self) -> BTreeMap<(RootId, RootId), BTreeSet<String>> {
        let mut out: BTreeMap<(RootId, RootId), BTreeSet<String>> = BTreeMap::new();
        for (key, entry) in &self.keys {
            for s in &entry.subscribers {
                for (host, _, provider) in entry.providers.keys() {
                    if !Self::host_matches(&s.host, host) || *provider == s.root {
                        continue;
                    }
                    let edge = if s.reverse {
                        (s.root, *provider)
                    } else {
                        (*provider, s.root)
                    };
                    out.entry(edge).or_default().insert(key.to_string());
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_described_as_batou_shows_them() {
        assert_eq!(describe(&"it's".to_string()), "\"it's\"");
        assert_eq!(describe(&"x"), "'x'");
        assert_eq!(describe(&true), "True");
        assert_eq!(describe(&8080u16), "8080");
        assert_eq!(describe(&vec![80u16, 443]), "[80, 443]");
    }

    fn roots() -> Resources {
        Resources::new(vec![
            RootInfo {
                host: "b".into(),
                name: "app".into(),
            },
            RootInfo {
                host: "a".into(),
                name: "app".into(),
            },
            RootInfo {
                host: "a".into(),
                name: "lb".into(),
            },
        ])
    }

    #[test]
    fn values_are_ordered_by_host_then_root() {
        let mut r = roots();
        r.provide(0, "k", "from b".to_string(), "x").unwrap();
        r.provide(1, "k", "from a".to_string(), "x").unwrap();
        let v: Vec<String> = r.require(2, "k", &RequireOptions::new(), "y").unwrap();
        assert_eq!(v, ["from a", "from b"]);
        let only_b: Vec<String> = r
            .require(2, "k", &RequireOptions::new().on_host("b"), "y")
            .unwrap();
        assert_eq!(only_b, ["from b"]);
        assert_eq!(r.edges(), BTreeSet::from([(0, 2), (1, 2)]));
    }

    #[test]
    fn types_must_agree() {
        let mut r = roots();
        r.provide(0, "k", 1u32, "here.rs:1").unwrap();
        let err = r
            .require::<String>(2, "k", &RequireOptions::new(), "there.rs:2")
            .unwrap_err();
        assert!(
            err.contains("u32 (at here.rs:1)")
                && err.contains("alloc::string::String (at there.rs:2)"),
            "{err}"
        );
    }

    #[test]
    fn dirtiness_unsatisfied_and_unused() {
        let mut r = roots();
        r.reset_root(2);
        let _: Vec<u8> = r.require(2, "k", &RequireOptions::new(), "y").unwrap();
        r.finish_root(2);
        assert_eq!(
            r.unsatisfied(),
            vec![("k".to_string(), None, BTreeSet::from([2]))]
        );
        r.reset_root(0);
        r.provide(0, "k", 1u8, "x").unwrap();
        r.finish_root(0);
        assert_eq!(r.dirty_roots(), BTreeSet::from([2]));
        assert!(r.unsatisfied().is_empty());
        // Reading again makes it clean; providing the same value again
        // changes nothing.
        r.reset_root(2);
        let _: Vec<u8> = r.require(2, "k", &RequireOptions::new(), "y").unwrap();
        r.finish_root(2);
        r.reset_root(0);
        r.provide(0, "k", 1u8, "x").unwrap();
        r.finish_root(0);
        assert!(r.dirty_roots().is_empty());
        r.reset_root(1);
        r.provide(1, "other", 5u8, "x").unwrap();
        r.finish_root(1);
        assert_eq!(
            r.unused(),
            vec![("other".to_string(), 1, vec!["5".to_string()])]
        );
        // Taking a value away makes its readers dirty.
        r.reset_root(0);
        r.finish_root(0);
        assert_eq!(r.dirty_roots(), BTreeSet::from([2]));
    }

    #[test]
    fn dirty_subscriptions_are_not_retriggered() {
        let mut r = roots();
        r.reset_root(2);
        let _: Vec<u8> = r
            .require(2, "k", &RequireOptions::new().dirty(), "y")
            .unwrap();
        r.finish_root(2);
        r.reset_root(0);
        r.provide(0, "k", 1u8, "x").unwrap();
        assert!(r.finish_root(0).is_empty());
        assert!(r.dirty_roots().is_empty());
        // Still a dependency: the provider deploys first.
        assert_eq!(r.edges(), BTreeSet::from([(0, 2)]));
    }

    #[test]
    fn reverse_flips_the_edge() {
        let mut r = roots();
        r.provide(0, "k", 1u8, "x").unwrap();
        let _: Vec<u8> = r
            .require(2, "k", &RequireOptions::new().reverse(), "y")
            .unwrap();
        assert_eq!(r.edges(), BTreeSet::from([(2, 0)]));
    }
}
