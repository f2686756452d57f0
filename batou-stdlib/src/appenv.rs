//! appenv: a Python application installed from a `requirements.lock`
//! into a virtual environment named by its hash (batou.lib.appenv).
//!
//! ```no_run
//! use batou::prelude::*;
//! use batou_stdlib::appenv::AppEnv;
//!
//! #[component]
//! pub struct App;
//!
//! impl Component for App {
//!     fn configure(&mut self, cx: &mut Configure) -> batou::Result<()> {
//!         // requirements.lock lives next to this component's source.
//!         cx.add(AppEnv::new("3.11"));
//!         Ok(())
//!     }
//! }
//! # fn main() {}
//! ```
//!
//! The environment is `.appenv/<hash>` in the workdir, where the hash
//! covers the lock file, the Python version, the pip version, the install
//! options and this implementation. It is made with `python<version> -m
//! venv`, filled with `pip install --no-deps -r requirements.lock`, checked
//! with `pip check`, and marked ready; only then do `.appenv/current` and
//! the workdir's `bin`, `lib` and `pyvenv.cfg` point at it, and other
//! environments in `.appenv` are removed. A lock that fails to install
//! leaves the application on its previous environment.

use crate::file::atomic::remove_path;
use crate::file::{File, Symlink};
use crate::python::{cwd_options, valid_package_version, valid_version, version_check};
use batou::component::{CmdOptions, Configure as Setup};
use batou::prelude::{component, Component, Deploy, Error, Result};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// Changes whenever what this module puts into an environment changes, so
/// environments made by an older implementation are made again.
const IMPLEMENTATION: &str = "batou-rs appenv 1";

/// The ready marker's name and content (batou's).
const READY: &str = "appenv.ready";
const READY_TEXT: &str = "Ready or not, here I come, you can't hide\n";

/// What the workdir shows of the current environment.
const SHIMS: [&str; 3] = ["bin", "lib", "pyvenv.cfg"];

/// A hash-named virtual environment built from `requirements.lock`.
#[component(namevar = python_version)]
#[derive(Debug)]
pub struct AppEnv {
    /// The Python version (`3`, `3.11`): `python<version>` makes the
    /// environment.
    python_version: String,
    /// The pip to install into the environment before the requirements
    /// (default: the one venv brings).
    #[attribute]
    pip_version: Option<String>,
    /// The lock file, next to the component's source.
    #[attribute(default = "requirements.lock")]
    lockfile: String,
    /// More pip arguments for every install (`--no-index`,
    /// `--find-links=/srv/wheels`); the lock file may carry them too.
    #[attribute(default = Vec::<String>::new())]
    install_options: Vec<String>,
    /// The environment's hash (8 hex digits), after configure.
    env_hash: String,
}

impl AppEnv {
    /// The environment's hash (after configure): `.appenv/<hash>`.
    pub fn env_hash(&self) -> &str {
        &self.env_hash
    }

    fn read_lockfile(&self, cx: &Setup) -> Result<String> {
        let path = cx.resolve_source(&self.lockfile);
        let bytes = match batou::component::embedded_file(&path) {
            Some(data) => data.to_vec(),
            None => std::fs::read(&path).map_err(|e| {
                Error::usage(format!(
                    "AppEnv: cannot read the lock file {}: {e}",
                    path.display()
                ))
            })?,
        };
        String::from_utf8(bytes).map_err(|_| {
            Error::usage(format!(
                "AppEnv: the lock file {} is not UTF-8 text",
                path.display()
            ))
        })
    }

    fn hash(&self, lock: &str) -> String {
        let mut digest = Sha256::new();
        for part in [
            IMPLEMENTATION,
            &self.python_version,
            self.pip_version.as_deref().unwrap_or(""),
            &self.install_options.join("\n"),
            lock,
        ] {
            digest.update(part.as_bytes());
            digest.update([0]);
        }
        let hex: String = digest
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        hex[..8].to_string()
    }
}

impl Component for AppEnv {
    fn configure(&mut self, cx: &mut Setup) -> Result<()> {
        if !valid_version(&self.python_version) {
            return Err(Error::usage(format!(
                "AppEnv: {:?} is not a Python version (write it as `3` or `3.11`)",
                self.python_version
            )));
        }
        if let Some(pip) = self.pip_version.as_deref() {
            if !valid_package_version(pip) {
                return Err(Error::usage(format!(
                    "AppEnv: pip_version {pip:?} is not a version"
                )));
            }
        }
        let lock = self.read_lockfile(cx)?;
        self.env_hash = self.hash(&lock);
        let appenv_dir = cx.workdir().join(".appenv");
        let env_dir = appenv_dir.join(&self.env_hash);
        let dir = env_dir.to_string_lossy().into_owned();
        cx.add(
            AppEnvPython::new(dir.clone())
                .python_version(self.python_version.clone())
                .pip_version(self.pip_version.clone())
                .install_options(self.install_options.clone()),
        );
        cx.add(
            File::new(format!("{dir}/requirements.lock"))
                .content(lock)
                .is_template(false),
        );
        cx.add(LockedRequirements::new(dir.clone()).install_options(self.install_options.clone()));
        cx.add(
            File::new(format!("{dir}/{READY}"))
                .content(READY_TEXT)
                .is_template(false),
        );
        let current = appenv_dir.join("current");
        cx.add(Symlink::new(current.to_string_lossy().into_owned()).source(dir));
        for shim in SHIMS {
            cx.add(Symlink::new(shim).source(current.join(shim).to_string_lossy().into_owned()));
        }
        cx.add(
            CleanupUnused::new(appenv_dir.to_string_lossy().into_owned())
                .keep(self.env_hash.clone()),
        );
        Ok(())
    }

    fn breadcrumb(&self, _cx: &Setup) -> Option<String> {
        Some(self.env_hash.clone())
    }
}

/// The environment's interpreter: made again (from nothing) until the
/// environment is marked ready. Added by [`AppEnv`].
#[component(namevar = path)]
#[derive(Debug)]
pub struct AppEnvPython {
    /// `.appenv/<hash>`.
    path: String,
    /// The Python version.
    #[attribute]
    python_version: String,
    /// The pip to install first.
    #[attribute]
    pip_version: Option<String>,
    /// More pip arguments.
    #[attribute(default = Vec::<String>::new())]
    install_options: Vec<String>,
}

impl Component for AppEnvPython {
    fn verify(&mut self, _cx: &mut Deploy) -> Result<()> {
        let dir = Path::new(&self.path);
        for needed in [dir.join(READY), dir.join("bin").join("python")] {
            if !needed.exists() {
                return Err(Error::update_needed(format!(
                    "{} does not exist",
                    needed.display()
                )));
            }
        }
        Ok(())
    }

    fn update(&mut self, cx: &mut Deploy) -> Result<()> {
        let dir = PathBuf::from(&self.path);
        // A half-made environment of an earlier, failed run: ours (named
        // by the hash inside .appenv), never followed if it is a link.
        if std::fs::symlink_metadata(&dir).is_ok() {
            remove_path(&dir).map_err(|e| Error::io(format!("removing {}", dir.display()), e))?;
        }
        let parent = dir.parent().unwrap_or(Path::new("/"));
        std::fs::create_dir_all(parent)
            .map_err(|e| Error::io(format!("creating {}", parent.display()), e))?;
        let parent = parent.to_string_lossy().into_owned();
        let executable = format!("python{}", self.python_version);
        cx.run(
            &executable,
            &["-m", "venv", &self.path],
            cwd_options(&parent),
        )?;
        let python = dir
            .join("bin")
            .join("python")
            .to_string_lossy()
            .into_owned();
        let out = cx.run(
            &python,
            &["-c", &version_check(&self.python_version)],
            CmdOptions {
                ignore_returncode: true,
                ..cwd_options(&self.path)
            },
        )?;
        if out.returncode != Some(0) {
            return Err(Error::Failed(format!(
                "AppEnv: {executable} did not make a Python {} environment",
                self.python_version
            )));
        }
        if let Some(pip) = &self.pip_version {
            let mut args = vec!["-m".to_string(), "pip".into(), "install".into()];
            args.extend(self.install_options.iter().cloned());
            args.push(format!("pip=={pip}"));
            cx.run(&python, &args, pip_options(&self.path))?;
        }
        Ok(())
    }

    fn breadcrumb(&self, _cx: &Setup) -> Option<String> {
        None
    }
}

/// pip as a deployment calls it: quiet about its own version, in `dir`.
fn pip_options(dir: &str) -> CmdOptions {
    CmdOptions {
        env: vec![("PIP_DISABLE_PIP_VERSION_CHECK".into(), "1".into())],
        ..cwd_options(dir)
    }
}

/// The lock file's packages, installed without resolving dependencies and
/// checked with `pip check`. Added by [`AppEnv`].
#[component(namevar = path)]
#[derive(Debug)]
pub struct LockedRequirements {
    /// `.appenv/<hash>`.
    path: String,
    /// More pip arguments.
    #[attribute(default = Vec::<String>::new())]
    install_options: Vec<String>,
}

impl Component for LockedRequirements {
    fn verify(&mut self, _cx: &mut Deploy) -> Result<()> {
        let ready = Path::new(&self.path).join(READY);
        if !ready.exists() {
            return Err(Error::update_needed(format!(
                "{} does not exist",
                ready.display()
            )));
        }
        Ok(())
    }

    fn update(&mut self, cx: &mut Deploy) -> Result<()> {
        let dir = Path::new(&self.path);
        let python = dir
            .join("bin")
            .join("python")
            .to_string_lossy()
            .into_owned();
        let lock = dir.join("requirements.lock").to_string_lossy().into_owned();
        let mut args = vec![
            "-m".to_string(),
            "pip".into(),
            "install".into(),
            "--no-deps".into(),
        ];
        args.extend(self.install_options.iter().cloned());
        args.extend(["-r".to_string(), lock]);
        cx.run(&python, &args, pip_options(&self.path))?;
        cx.run(&python, &["-m", "pip", "check"], pip_options(&self.path))?;
        Ok(())
    }

    fn breadcrumb(&self, _cx: &Setup) -> Option<String> {
        None
    }
}

/// Removes the environments in `.appenv` other than the current one.
/// Added by [`AppEnv`].
#[component(namevar = path)]
#[derive(Debug)]
pub struct CleanupUnused {
    /// `.appenv`.
    path: String,
    /// The hash of the environment to keep.
    #[attribute]
    keep: String,
}

impl CleanupUnused {
    fn unused(&self) -> Vec<PathBuf> {
        let Ok(entries) = std::fs::read_dir(&self.path) else {
            return Vec::new();
        };
        let mut unused: Vec<PathBuf> = entries
            .flatten()
            .filter(|e| {
                let name = e.file_name();
                name != self.keep.as_str() && name != "current"
            })
            .map(|e| e.path())
            .collect();
        unused.sort();
        unused
    }
}

impl Component for CleanupUnused {
    fn verify(&mut self, _cx: &mut Deploy) -> Result<()> {
        let unused = self.unused();
        if let Some(first) = unused.first() {
            return Err(Error::update_needed(format!(
                "{} is not used any more",
                first.display()
            )));
        }
        Ok(())
    }

    fn update(&mut self, _cx: &mut Deploy) -> Result<()> {
        for path in self.unused() {
            remove_path(&path).map_err(|e| Error::io(format!("removing {}", path.display()), e))?;
        }
        Ok(())
    }

    fn breadcrumb(&self, _cx: &Setup) -> Option<String> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_covers_everything_that_makes_the_environment() {
        let base = AppEnv::new("3.11");
        let h = base.hash("a==1\n");
        assert_eq!(h.len(), 8);
        assert_eq!(h, AppEnv::new("3.11").hash("a==1\n"), "stable");
        assert_ne!(h, base.hash("a==2\n"));
        assert_ne!(h, AppEnv::new("3.12").hash("a==1\n"));
        assert_ne!(h, AppEnv::new("3.11").pip_version("24.0").hash("a==1\n"));
        assert_ne!(
            h,
            AppEnv::new("3.11")
                .install_options(vec!["--no-index".to_string()])
                .hash("a==1\n")
        );
    }
}
