//! What configuring and deploying share: the environment, the project
//! directory, the template engine, `[vfs]` path mapping.

use super::*;

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
    pub(super) host_values: HashMap<String, Value>,
    pub(super) platforms: HashMap<(&'static str, &'static str), &'static Registration>,
    pub(super) registry: HashMap<std::any::TypeId, &'static Registration>,
    pub(super) by_name: HashMap<&'static str, &'static Registration>,
    deployment_manifest: Option<&'static str>,
    /// Files read while configuring (template sources), each read once.
    sources: std::sync::Mutex<HashMap<PathBuf, Arc<[u8]>>>,
}

impl ModelEnv {
    /// Prepares configuring `environment` for a project directory.
    pub fn new(project_root: PathBuf, environment: Environment) -> ModelEnv {
        let regs = crate::component::registrations();
        let registry = regs.iter().map(|r| ((r.type_id)(), *r)).collect();
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
            (
                "secret_files",
                crate::template::map(
                    environment
                        .secrets
                        .files
                        .iter()
                        .map(|(k, v)| (k.clone(), Value::from(v.as_str()))),
                ),
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
        let secret_data = Arc::new(environment.secrets.values.clone());
        let mut model_env = ModelEnv {
            host_values: HashMap::new(),
            platforms,
            project_root,
            environment,
            templates: Templates::new(),
            environment_value,
            secret_data,
            registry,
            by_name,
            deployment_manifest: inventory::iter::<DeploymentCrate>
                .into_iter()
                .next()
                .map(|d| d.manifest_dir),
            sources: std::sync::Mutex::default(),
        };
        model_env.host_values = model_env
            .environment
            .hosts
            .iter()
            .map(|h| (h.name.clone(), model_env.host_value(h)))
            .collect();
        model_env
    }

    /// The bytes of a file read while configuring: read once per model,
    /// however many components use it (a missing file is not remembered:
    /// an earlier component may make it before it is deployed).
    pub fn read_source(&self, path: &Path) -> std::io::Result<Arc<[u8]>> {
        if let Some(bytes) = self
            .sources
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(path)
        {
            return Ok(bytes.clone());
        }
        let bytes: Arc<[u8]> = std::fs::read(path)?.into();
        self.sources
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(path.to_path_buf(), bytes.clone());
        Ok(bytes)
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
            (
                "aliases",
                Value::from(minijinja::value::Serde(&host.aliases)),
            ),
        ])
    }

    /// The registration of a root name: `component` or
    /// `crate_name.component`.
    pub(super) fn registration(&self, name: &str) -> Option<&'static Registration> {
        match name.split_once('.') {
            Some((krate, comp)) => crate::component::registrations()
                .into_iter()
                .find(|r| r.crate_name == krate && r.name == comp),
            None => self.by_name.get(name).copied(),
        }
    }

    /// The definition directory for a component type: its own source
    /// directory if it belongs to the deployment crate (relative to the
    /// project, so it also works on remote hosts), otherwise `None`
    /// (library components inherit their parent's).
    pub(super) fn own_defdir(&self, reg: &Registration) -> Option<PathBuf> {
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

/// Whether `path` is absolute without `.`, `..`, doubled or trailing
/// slashes: already what normalising it would give.
fn is_plain_absolute(path: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let bytes = path.as_os_str().as_bytes();
    bytes.first() == Some(&b'/')
        && bytes[1..]
            .split(|b| *b == b'/')
            .all(|part| !part.is_empty() && part != b"." && part != b"..")
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
    if is_plain_absolute(&joined) {
        return joined;
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_joined_to_the_workdir_and_normalised() {
        let work = Path::new("/srv/app/work/web");
        for (given, mapped) in [
            ("/etc/app.conf", "/etc/app.conf"),
            ("app.conf", "/srv/app/work/web/app.conf"),
            ("../shared/x", "/srv/app/work/shared/x"),
            ("/etc/./app//conf/", "/etc/app/conf"),
            ("/etc/app/../nginx", "/etc/nginx"),
            ("/", "/"),
        ] {
            // As strings: `Path`'s equality ignores doubled slashes and `.`.
            let got = map_path(work, Path::new(given));
            assert_eq!(got.to_str(), Some(mapped), "{given}");
        }
        assert!(is_plain_absolute(Path::new("/etc/app.conf")));
        for odd in ["/", "etc", "/etc/", "/etc//x", "/etc/./x", "/etc/../x"] {
            assert!(!is_plain_absolute(Path::new(odd)), "{odd}");
        }
    }
}
