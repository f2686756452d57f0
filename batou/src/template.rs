//! Templates: minijinja configured like batou's Jinja2.
//!
//! `line_statement_prefix = "@@"`, trailing newlines kept, undefined names
//! are errors (Jinja2's `StrictUndefined`), Python-compatible methods
//! (`.items()`, `.upper()`, ...), values printed as Jinja2 prints Python's
//! (`None`, `True`, `['a', 1]`). Compiled templates are cached by source, so
//! a thousand files rendered from one template compile it once.
//!
//! Rendering has limits, so a template cannot hang or exhaust a deployment
//! (overrides are templates too, also for `deploy -c`): a step budget
//! ([`DEFAULT_FUEL`] minijinja fuel per render: instructions and data) and
//! an output size ([`DEFAULT_MAX_OUTPUT`]). Errors name the template.
//! Renders share no lock: the engine is immutable and loads sources from a
//! map, so a slow template does not hold up other roots under `-j`.

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

/// Steps (minijinja fuel: about one per instruction and per 64 bytes of
/// data) one render may take.
pub const DEFAULT_FUEL: u64 = 50_000_000;
/// Bytes one render may produce.
pub const DEFAULT_MAX_OUTPUT: usize = 64 << 20;

/// The template engine shared by one model.
pub struct Templates {
    env: Environment<'static>,
    /// Sources by internal name; the engine's loader reads them.
    sources: Arc<Mutex<HashMap<String, String>>>,
    names: Mutex<HashMap<(String, u64), String>>,
    fuel: u64,
    max_output: usize,
}

impl std::fmt::Debug for Templates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Templates")
            .field("fuel", &self.fuel)
            .field("max_output", &self.max_output)
            .finish_non_exhaustive()
    }
}

impl Default for Templates {
    fn default() -> Self {
        Self::new()
    }
}

impl Templates {
    /// An engine with batou's Jinja2 settings and the default limits.
    pub fn new() -> Self {
        Self::with_limits(DEFAULT_FUEL, DEFAULT_MAX_OUTPUT)
    }

    /// An engine with batou's Jinja2 settings and these limits per render.
    pub fn with_limits(fuel: u64, max_output: usize) -> Self {
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
        env.set_fuel(Some(fuel));
        let sources: Arc<Mutex<HashMap<String, String>>> = Arc::default();
        let loader_sources = sources.clone();
        env.set_loader(move |name| {
            Ok(loader_sources
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(name)
                .cloned())
        });
        Templates {
            env,
            sources,
            names: Mutex::new(HashMap::new()),
            fuel,
            max_output,
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
        self.sources
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(internal.clone())
            .or_insert_with(|| source.to_string());
        let tmpl = self
            .env
            .get_template(&internal)
            .map_err(|e| convert_error(name, e))?;
        let mut out = Limited {
            buf: Vec::new(),
            max: self.max_output,
            exceeded: false,
        };
        let rendered = tmpl.render_captured_to(ctx.clone(), &mut out);
        if out.exceeded {
            return Err(TemplateError {
                name: name.to_string(),
                line: None,
                message: format!(
                    "the rendered output exceeds the limit of {} MiB",
                    self.max_output >> 20
                ),
            });
        }
        rendered.map_err(|e| {
            if e.kind() == minijinja::ErrorKind::OutOfFuel {
                TemplateError {
                    name: name.to_string(),
                    line: e.line(),
                    message: format!(
                        "the template used up its step budget of {} (an endless or very large loop?)",
                        self.fuel
                    ),
                }
            } else {
                let hint = missing_attribute_hint(&e, &ctx);
                let mut error = convert_error(name, e);
                error.message.push_str(&hint);
                error
            }
        })?;
        String::from_utf8(out.buf).map_err(|_| TemplateError {
            name: name.to_string(),
            line: None,
            message: "the rendered output is not valid UTF-8".into(),
        })
    }
}

/// Collects output up to a size; writing past it fails the render.
struct Limited {
    buf: Vec<u8>,
    max: usize,
    exceeded: bool,
}

impl std::io::Write for Limited {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        if self.buf.len() + data.len() > self.max {
            self.exceeded = true;
            return Err(std::io::Error::other("output limit"));
        }
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
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

/// For `` `component.X` is undefined``: which component lacks `X`, and the
/// attribute meant, if one is close (`; Tick has no attribute `slep`, did
/// you mean `sleep`?`).
fn missing_attribute_hint(e: &minijinja::Error, ctx: &Value) -> String {
    if e.kind() != minijinja::ErrorKind::UndefinedError {
        return String::new();
    }
    let Some(attribute) = e
        .detail()
        .and_then(|d| d.strip_prefix("`component."))
        .and_then(|d| d.strip_suffix("` is undefined"))
        .filter(|a| a.chars().all(|c| c.is_alphanumeric() || c == '_'))
    else {
        return String::new();
    };
    let Ok(component) = ctx.get_attr("component") else {
        return String::new();
    };
    let Some(component) = component.downcast_object_ref::<ComponentValue>() else {
        return String::new();
    };
    let names: Vec<String> = component.names().map(str::to_string).collect();
    let mut hint = format!("; {} has no attribute `{attribute}`", component.type_name);
    match crate::environment::closest(attribute, &names) {
        Some(close) => hint.push_str(&format!(", did you mean `{close}`?")),
        None => hint.push_str(&format!(" (it has: {})", names.join(", "))),
    }
    hint
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

impl ComponentValue {
    /// What templates can read of it: the attributes, `workdir`, `defdir`.
    fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.attributes
            .iter()
            .map(|(k, _)| *k)
            .chain(["workdir", "defdir"])
    }
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
        Enumerator::Values(self.names().map(Value::from).collect())
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
    fn an_undefined_attribute_names_the_component_and_the_attribute_meant() {
        let t = Templates::new();
        let tick = |attributes| {
            minijinja::context! { component => Value::from_object(ComponentValue {
                type_name: "Tick",
                host: "h".into(),
                crumbs: "Tick".into(),
                attributes,
                workdir: "/w".into(),
                defdir: "/d".into(),
            }) }
        };
        let e = t
            .render(
                "tick.sh",
                "a\n{{ component.slep }}\n",
                tick(vec![("sleep", Value::from(1))]),
            )
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "undefined value: `component.slep` is undefined; Tick has no attribute `slep`, \
             did you mean `sleep`? (in template tick.sh, line 2)"
        );
        let e = t
            .render(
                "tick.sh",
                "{{ component.zzzzzz }}",
                tick(vec![("sleep", Value::from(1))]),
            )
            .unwrap_err();
        assert_eq!(
            e.message,
            "undefined value: `component.zzzzzz` is undefined; Tick has no attribute `zzzzzz` \
             (it has: sleep, workdir, defdir)"
        );
        let e = t.render("tick.sh", "{{ nope }}", tick(vec![])).unwrap_err();
        assert_eq!(e.message, "undefined value: `nope` is undefined");
    }

    #[test]
    fn maps_are_maps() {
        let t = Templates::new();
        let ctx = map([("a", Value::from(1)), ("b", map([("c", Value::from("x"))]))]);
        assert_eq!(t.render("m", "{{ a }} {{ b.c }}", ctx).unwrap(), "1 x");
    }

    #[test]
    fn endless_loops_and_huge_outputs_stop_with_a_clear_error() {
        let t = Templates::with_limits(1_000_000, DEFAULT_MAX_OUTPUT);
        let e = t
            .render(
                "loop.cfg",
                "@@ for i in range(100000)\n@@ for j in range(100000)\n{{ i }}\n@@ endfor\n@@ endfor\n",
                Value::from(()),
            )
            .unwrap_err();
        assert!(
            e.message
                .starts_with("the template used up its step budget of 1000000 (an endless"),
            "{e}"
        );
        assert_eq!(e.name, "loop.cfg");
        let t = Templates::with_limits(DEFAULT_FUEL, 1 << 20);
        let e = t
            .render("big.cfg", "{{ 'x' * 2000000 }}", Value::from(()))
            .unwrap_err();
        assert!(
            e.to_string().contains("exceeds the limit of 1 MiB")
                || e.to_string().contains("step budget"),
            "{e}"
        );
        let e = t
            .render(
                "big.cfg",
                "@@ for i in range(1000)\n@@ for j in range(1000)\n{{ '1234567' }}\n@@ endfor\n@@ endfor\n",
                Value::from(()),
            )
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "the rendered output exceeds the limit of 1 MiB (in template big.cfg)"
        );
    }

    /// A value whose lookup waits until the test releases it.
    #[derive(Debug)]
    struct Gate {
        entered: Mutex<std::sync::mpsc::Sender<()>>,
        release: Mutex<std::sync::mpsc::Receiver<()>>,
    }

    impl Object for Gate {
        fn get_value(self: &Arc<Self>, _key: &Value) -> Option<Value> {
            let _ = self.entered.lock().unwrap().send(());
            let released = self
                .release
                .lock()
                .unwrap()
                .recv_timeout(std::time::Duration::from_secs(20));
            Some(Value::from(if released.is_ok() {
                "released"
            } else {
                "timeout"
            }))
        }
    }

    #[test]
    fn a_render_in_progress_does_not_block_others() {
        let t = Arc::new(Templates::new());
        let (entered_tx, entered) = std::sync::mpsc::channel();
        let (release, release_rx) = std::sync::mpsc::channel();
        let gate = Value::from_object(Gate {
            entered: Mutex::new(entered_tx),
            release: Mutex::new(release_rx),
        });
        let slow = {
            let t = t.clone();
            std::thread::spawn(move || {
                t.render("slow", "{{ gate.x }}", minijinja::context! { gate => gate })
            })
        };
        entered.recv().unwrap();
        // The slow render is inside the template now; another one (a new
        // template, so it is compiled too) finishes meanwhile.
        assert_eq!(
            t.render("fast", "ok {{ 1 + 1 }}", Value::from(())).unwrap(),
            "ok 2"
        );
        release.send(()).unwrap();
        assert_eq!(slow.join().unwrap().unwrap(), "released");
    }

    #[test]
    fn same_name_different_source_is_not_confused() {
        let t = Templates::new();
        assert_eq!(t.render("n", "a", Value::from(())).unwrap(), "a");
        assert_eq!(t.render("n", "b", Value::from(())).unwrap(), "b");
    }
}

#[cfg(test)]
mod python_rendering {
    use super::*;

    fn render(source: &str, ctx: Value) -> String {
        Templates::new().render("t", source, ctx).unwrap()
    }

    #[test]
    fn scalars_print_as_python_does() {
        let ctx = minijinja::context! { n => (), t => true, f => false, x => 1.0, i => 3 };
        assert_eq!(
            render("{{ n }} {{ t }} {{ f }} {{ x }} {{ i }} {{ none }}", ctx),
            "None True False 1.0 3 None"
        );
    }

    #[test]
    fn containers_print_as_python_reprs() {
        let ctx = minijinja::context! {
            l => vec![Value::from(1), Value::from("a"), Value::from(()), Value::from(true)],
            q => vec!["it's", "say \"hi\"", "both ' \"", "tab\tnew\nline\\"],
            m => map([("b", Value::from(vec![Value::from(())])), ("a", Value::from(1.5))]),
            e => Vec::<Value>::new(),
            long => (0..200).collect::<Vec<u32>>(),
        };
        assert_eq!(
            render("{{ l }}|{{ m }}|{{ e }}", ctx.clone()),
            "[1, 'a', None, True]|{'a': 1.5, 'b': [None]}|[]"
        );
        assert_eq!(
            render("{{ q }}", ctx.clone()),
            r#"["it's", 'say "hi"', 'both \' "', 'tab\tnew\nline\\']"#
        );
        let long = render("{{ long }}", ctx);
        assert!(long.ends_with(", 198, 199]"), "{long}");
        assert!(!long.contains("..."), "{long}");
    }

    #[test]
    fn strings_and_objects_print_as_themselves() {
        let ctx = minijinja::context! { s => "it's", o => Value::from_object(ComponentValue {
        type_name: "Tick", host: "h".into(), crumbs: "Tick".into(), attributes: vec![],
        workdir: "/w".into(), defdir: "/d".into() }) };
        assert_eq!(render("{{ s }} {{ o }}", ctx), "it's <Tick (h) \"Tick\">");
        assert_eq!(
            render(
                "{{ {'a': 1}.items()|list }} {{ (1,) }} {{ (1, 'b') }}",
                Value::from(())
            ),
            "[('a', 1)] (1,) (1, 'b')"
        );
    }
}
