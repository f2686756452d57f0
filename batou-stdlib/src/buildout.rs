//! buildout: a zc.buildout in the workdir's virtual environment, run when
//! its configuration or installation changed (batou.lib.buildout).
//!
//! ```no_run
//! use batou::prelude::*;
//! use batou_stdlib::buildout::Buildout;
//!
//! #[component]
//! pub struct Zope;
//!
//! impl Component for Zope {
//!     fn configure(&mut self, cx: &mut Configure) -> batou::Result<()> {
//!         // buildout.cfg, a template, lives next to this component's source.
//!         cx.add(Buildout::new().python("3.11").setuptools("68.0.0").version("3.3"));
//!         Ok(())
//!     }
//! }
//! # fn main() {}
//! ```
//!
//! The workdir becomes a virtual environment with setuptools (or
//! distribute), optionally wheel, pip and packaging, and zc.buildout
//! (installed without dependencies, so it cannot pull in another
//! setuptools). `bin/buildout -t <timeout> -c <config>` runs when
//! `.installed.cfg` is missing or older than `bin/buildout` or a config
//! file, when `.batou.buildout.success` is older than `.installed.cfg`
//! (the last run failed), or when a sub-component changed; then the
//! success marker is touched.

use crate::file::File;
use crate::python::{Package, VirtualEnv};
use batou::component::{CmdOptions, Configure as Setup};
use batou::prelude::{component, Component, Deploy, Error, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The marker of a successful run (batou's name).
const SUCCESS: &str = ".batou.buildout.success";

/// A buildout run in the component's workdir.
#[component]
#[derive(Debug)]
pub struct Buildout {
    /// The Python version of the environment (`3`, `3.11`).
    #[attribute]
    python: String,
    /// The interpreter making the environment (default: `python<python>`).
    #[attribute]
    executable: Option<String>,
    /// zc.buildout's version (default: the newest pip finds).
    #[attribute]
    version: Option<String>,
    /// setuptools' version (this or `distribute` is required).
    #[attribute]
    setuptools: Option<String>,
    /// distribute's version (for old buildouts).
    #[attribute]
    distribute: Option<String>,
    /// wheel's version, if it is installed.
    #[attribute]
    wheel: Option<String>,
    /// pip's version, if another is installed.
    #[attribute]
    pip: Option<String>,
    /// packaging's version, if it is installed (zc.buildout 3 needs it).
    #[attribute]
    packaging: Option<String>,
    /// Socket timeout of buildout's downloads in seconds (default: the
    /// environment's timeout).
    #[attribute]
    timeout: Option<u64>,
    /// Without a `config`: render `buildout.cfg` from the component's
    /// directory.
    #[attribute(default = true)]
    use_default: bool,
    /// The configuration buildout is run with (when `config` is not given).
    #[attribute(default = "buildout.cfg")]
    config_file_name: String,
    /// Environment variables for the run; `{NAME}` in a value is the
    /// variable's current value (`{PATH}:/opt/bin`).
    #[attribute(default = BTreeMap::<String, String>::new())]
    build_env: BTreeMap<String, String>,
    /// More pip arguments for the environment's packages
    /// (`--no-index, --find-links=/srv/wheels`).
    #[attribute(default = Vec::<String>::new())]
    install_options: Vec<String>,
    /// Config files given in code ([`Buildout::config`]); the first is
    /// the one buildout runs with.
    config: Vec<File>,
    /// The config files' paths, after configure.
    config_paths: Vec<PathBuf>,
}

impl Buildout {
    /// Adds a config file; the first is the one buildout runs with, the
    /// others are what it extends (batou's `additional_config`).
    pub fn config(mut self, file: File) -> Self {
        self.config.push(file);
        self
    }

    fn package(&self, name: &str, version: Option<&String>, dependencies: bool) -> Package {
        Package::new(name)
            .version(version.cloned())
            .dependencies(dependencies)
            .install_options(self.install_options.clone())
    }

    /// `{NAME}` replaced by the variable's value (empty when unset).
    fn expand_env(value: &str) -> String {
        let mut out = String::new();
        let mut rest = value;
        while let Some(start) = rest.find('{') {
            let Some(len) = rest[start..].find('}') else {
                break;
            };
            let name = &rest[start + 1..start + len];
            out.push_str(&rest[..start]);
            if !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                out.push_str(&std::env::var(name).unwrap_or_default());
            } else {
                out.push_str(&rest[start..=start + len]);
            }
            rest = &rest[start + len + 1..];
        }
        out.push_str(rest);
        out
    }
}

impl Component for Buildout {
    fn configure(&mut self, cx: &mut Setup) -> Result<()> {
        if self.setuptools.is_none() && self.distribute.is_none() {
            return Err(Error::usage(
                "Buildout: either setuptools or distribute version must be specified",
            ));
        }
        if self.timeout.is_none() {
            self.timeout = Some(cx.timeout().as_secs());
        }
        let mut config = std::mem::take(&mut self.config);
        if config.is_empty() && self.use_default {
            let mut file = File::new(self.config_file_name.clone());
            if let Some(parent) = cx.parent().cloned() {
                file = file.template_context(parent);
            }
            config.push(file);
        }
        if config.is_empty() {
            return Err(Error::usage(
                "Buildout: no configuration (use_default is false and no config was given)",
            ));
        }
        self.config_paths = config.iter().map(|f| cx.map(f.path())).collect();
        for file in config {
            cx.add(file);
        }
        let mut venv = VirtualEnv::new(self.python.clone()).executable(self.executable.clone());
        for (name, version) in [
            ("distribute", &self.distribute),
            ("setuptools", &self.setuptools),
            ("wheel", &self.wheel),
            ("pip", &self.pip),
            ("packaging", &self.packaging),
        ] {
            if version.is_some() {
                venv = venv.package(self.package(name, version.as_ref(), true));
            }
        }
        venv = venv.package(self.package("zc.buildout", self.version.as_ref(), false));
        cx.add(venv);
        Ok(())
    }

    fn verify(&mut self, cx: &mut Deploy) -> Result<()> {
        let workdir = cx.workdir().to_path_buf();
        let buildout = workdir.join("bin").join("buildout");
        cx.assert_file_is_current(&buildout, &[])?;
        let mut inputs: Vec<&Path> = vec![buildout.as_path()];
        inputs.extend(self.config_paths.iter().map(PathBuf::as_path));
        cx.assert_file_is_current(workdir.join(".installed.cfg"), &inputs)?;
        cx.assert_file_is_current(workdir.join(SUCCESS), &[&workdir.join(".installed.cfg")])?;
        cx.assert_no_subcomponent_changes()
    }

    fn update(&mut self, cx: &mut Deploy) -> Result<()> {
        let workdir = cx.workdir().to_path_buf();
        let timeout = self.timeout.unwrap_or(3).to_string();
        let config = self.config_paths[0].to_string_lossy().into_owned();
        let env = self
            .build_env
            .iter()
            .map(|(k, v)| (k.clone(), Self::expand_env(v)))
            .collect();
        cx.run(
            &workdir.join("bin").join("buildout").to_string_lossy(),
            &["-t", timeout.as_str(), "-c", config.as_str()],
            CmdOptions {
                env,
                cwd: Some(workdir.clone()),
                ..CmdOptions::default()
            },
        )?;
        // Touched after the run, so it is newer than .installed.cfg.
        let marker = workdir.join(SUCCESS);
        crate::file::atomic::write_atomic(&marker, b"", None)
            .map_err(|e| Error::io(format!("writing {}", marker.display()), e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_env_values_name_current_variables() {
        std::env::set_var("BATOU_BUILDOUT_TEST", "/opt");
        assert_eq!(
            Buildout::expand_env("{BATOU_BUILDOUT_TEST}/bin:x"),
            "/opt/bin:x"
        );
        assert_eq!(Buildout::expand_env("{BATOU_UNSET_VAR}-y"), "-y");
        assert_eq!(Buildout::expand_env("a {not a name} {"), "a {not a name} {");
    }
}
