//! Templates: minijinja configured like batou's Jinja2.
//!
//! `line_statement_prefix = "@@"`, trailing newlines kept, undefined names
//! are errors (Jinja2's `StrictUndefined`), Python-compatible methods
//! (`.items()`, `.upper()`, ...). Compiled templates are cached by source, so
//! a thousand files rendered from one template compile it once.

use minijinja::value::{Enumerator, Object, ObjectRepr};
use minijinja::{Environment, UndefinedBehavior};
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

pub use minijinja::Value;

/// A template that failed to compile or render.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
#[error("{}", self.describe())]
pub struct TemplateError {
    /// The template's name (its file name, or `<string>`).
    pub name: String,
    /// 1-based line in the template, when known.
    pub line: Option<usize>,
    /// What went wrong.
    pub message: String,
}

impl TemplateError {
    fn describe(&self) -> String {
        match self.line {
            Some(l) => format!("{} (in template {}, line {})", self.message, self.name, l),
            None => format!("{} (in template {})", self.message, self.name),
        }
    }
}

/// The template engine shared by one model.
pub struct Templates {
    env: Mutex<Environment<'static>>,
    names: Mutex<HashMap<(String, u64), String>>,
}

impl Default for Templates {
    fn default() -> Self {
        Self::new()
    }
}

impl Templates {
    /// An engine with batou's Jinja2 settings.
    pub fn new() -> Self {
        let mut env = Environment::new();
        if let Ok(syntax) = minijinja::syntax::SyntaxConfig::builder()
            .line_statement_prefix("@@")
            .keep_trailing_newline(true)
            .build()
        {
            env.set_syntax(syntax);
        }
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
        minijinja_contrib::add_to_environment(&mut env);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        Templates {
            env: Mutex::new(env),
            names: Mutex::new(HashMap::new()),
        }
    }

    /// Renders `source` (called `name` in errors) with a context.
    pub fn render(&self, name: &str, source: &str, ctx: Value) -> Result<String, TemplateError> {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        source.hash(&mut hasher);
        let key = (name.to_string(), hasher.finish());
        let internal = {
            let mut names = self.names.lock().unwrap_or_else(|e| e.into_inner());
            let next = names.len();
            names
                .entry(key)
                .or_insert_with(|| format!("{name}#{next}"))
                .clone()
        };
        let mut env = self.env.lock().unwrap_or_else(|e| e.into_inner());
        if env.get_template(&internal).is_err() {
            env.add_template_owned(internal.clone(), source.to_string())
                .map_err(|e| convert_error(name, e))?;
        }
        let tmpl = env
            .get_template(&internal)
            .map_err(|e| convert_error(name, e))?;
        tmpl.render(ctx).map_err(|e| convert_error(name, e))
    }
}

fn convert_error(name: &str, e: minijinja::Error) -> TemplateError {
    let mut message = match e.detail() {
        Some(d) => format!("{}: {}", e.kind(), d),
        None => e.kind().to_string(),
    };
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        message.push_str(&format!(": {s}"));
        source = s.source();
    }
    TemplateError {
        name: name.to_string(),
        line: e.line(),
        message,
    }
}

/// A map value from key/value pairs.
pub fn map<K: Into<String>>(pairs: impl IntoIterator<Item = (K, Value)>) -> Value {
    Value::from(
        pairs
            .into_iter()
            .map(|(k, v)| (k.into(), v))
            .collect::<std::collections::BTreeMap<String, Value>>(),
    )
}

/// A component as templates see it: `{{ component.sleep }}`,
/// `{{ component.workdir }}`, `{{ component.defdir }}`.
#[derive(Debug)]
pub struct ComponentValue {
    /// Struct name.
    pub type_name: &'static str,
    /// Host the component is configured for.
    pub host: String,
    /// Breadcrumbs, for `{{ component }}`.
    pub crumbs: String,
    /// Attribute values.
    pub attributes: Vec<(&'static str, Value)>,
    /// Working directory.
    pub workdir: PathBuf,
    /// Definition directory.
    pub defdir: PathBuf,
}

impl Object for ComponentValue {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let key = key.as_str()?;
        match key {
            "workdir" => Some(Value::from(self.workdir.to_string_lossy().as_ref())),
            "defdir" => Some(Value::from(self.defdir.to_string_lossy().as_ref())),
            _ => self
                .attributes
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| v.clone()),
        }
    }
    fn enumerate(self: &Arc<Self>) -> Enumerator {
        let mut keys: Vec<Value> = self
            .attributes
            .iter()
            .map(|(k, _)| Value::from(*k))
            .collect();
        keys.push(Value::from("workdir"));
        keys.push(Value::from("defdir"));
        Enumerator::Values(keys)
    }
    fn render(self: &Arc<Self>, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "<{} ({}) \"{}\">",
            self.type_name, self.host, self.crumbs
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(sleep: u64) -> Value {
        minijinja::context! { component => minijinja::context!{ sleep => sleep } }
    }

    #[test]
    fn renders_like_jinja2() {
        let t = Templates::new();
        let out = t
            .render("tick.sh", "sleep {{ component.sleep }}\n", ctx(3))
            .unwrap();
        assert_eq!(out, "sleep 3\n");
        let out = t
            .render(
                "x",
                "@@ for i in [1, 2]\n{{ i }}\n@@ endfor\n",
                Value::from(()),
            )
            .unwrap();
        assert_eq!(out, "1\n2\n");
        let out = t
            .render("x", "{{ {'a': 1}.items()|list }}", Value::from(()))
            .unwrap();
        assert_eq!(out, "[('a', 1)]");
    }

    #[test]
    fn undefined_names_are_errors_with_name_and_line() {
        let t = Templates::new();
        let e = t
            .render("tick.sh", "a\n{{ component.nope }}\n", ctx(1))
            .unwrap_err();
        assert_eq!(e.name, "tick.sh");
        assert_eq!(e.line, Some(2));
        assert!(e.message.contains("undefined"), "{}", e.message);
    }

    #[test]
    fn maps_are_maps() {
        let t = Templates::new();
        let ctx = map([("a", Value::from(1)), ("b", map([("c", Value::from("x"))]))]);
        assert_eq!(t.render("m", "{{ a }} {{ b.c }}", ctx).unwrap(), "1 x");
    }

    #[test]
    fn same_name_different_source_is_not_confused() {
        let t = Templates::new();
        assert_eq!(t.render("n", "a", Value::from(())).unwrap(), "a");
        assert_eq!(t.render("n", "b", Value::from(())).unwrap(), "b");
    }
}
