//! python: a virtual environment made with `python3 -m venv` and the
//! packages pip installs into it (batou.lib.python).
//!
//! ```no_run
//! use batou::prelude::*;
//! use batou_stdlib::python::{Package, VirtualEnv};
//!
//! #[component]
//! pub struct MyApp;
//!
//! impl Component for MyApp {
//!     fn configure(&mut self, cx: &mut Configure) -> batou::Result<()> {
//!         cx.add(VirtualEnv::new("3").package(Package::new("myapp").version("1.0")));
//!         Ok(())
//!     }
//! }
//! # fn main() {}
//! ```
//!
//! The environment is the component's workdir (`bin/python`, as batou), or
//! `path`. It is made with `python<version> -m venv` (or `executable`) and
//! checked by asking its own `bin/python` for its version and for pip; an
//! environment of another version is made again. A [`Package`] is checked
//! by the installed distribution's version (`importlib.metadata`, through
//! the environment's own Python) and installed with
//! `bin/pip --timeout=<timeout> install [--no-deps] <options> name==version`.
//! pip reads the user's own configuration (`pip.conf`, `PIP_*`), so an
//! index or a wheel directory is set there or through `install_options`
//! and `env`.

use batou::component::{CmdOptions, Configure as Setup};
use batou::prelude::{component, Component, Deploy, Error, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What the environment made and [`VirtualEnvBase`] may replace.
const VENV_PARTS: [&str; 5] = ["bin", "lib", "lib64", "include", "pyvenv.cfg"];

/// `3`, `3.11`: numbers separated by dots.
pub(crate) fn valid_version(version: &str) -> bool {
    !version.is_empty()
        && version
            .split('.')
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
}

/// A distribution name as PEP 508 allows it.
fn valid_package_name(name: &str) -> bool {
    let edge = |c: char| c.is_ascii_alphanumeric();
    name.starts_with(edge)
        && name.ends_with(edge)
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
}

/// A version as pip accepts after `==` (PEP 440 characters, wildcards).
pub(crate) fn valid_package_version(version: &str) -> bool {
    !version.is_empty()
        && version
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".+!_-*".contains(c))
}

/// A Python virtual environment of a Python version.
#[component(namevar = version)]
#[derive(Debug)]
pub struct VirtualEnv {
    /// The Python version: `3`, `3.11` (as precise as it must match).
    version: String,
    /// The interpreter that makes the environment (default:
    /// `python<version>` from the PATH).
    #[attribute]
    executable: Option<String>,
    /// Where the environment lives (default: the workdir).
    #[attribute]
    path: Option<String>,
    /// Packages to install, in order.
    packages: Vec<Package>,
}

impl VirtualEnv {
    /// Adds a package to install into this environment.
    pub fn package(mut self, package: Package) -> Self {
        self.packages.push(package);
        self
    }

    /// The environment's directory (after `configure`).
    pub fn location(&self) -> PathBuf {
        PathBuf::from(self.path.clone().unwrap_or_default())
    }

    /// Its Python (after `configure`).
    pub fn python(&self) -> PathBuf {
        self.location().join("bin").join("python")
    }
}

impl Component for VirtualEnv {
    fn configure(&mut self, cx: &mut Setup) -> Result<()> {
        if !valid_version(&self.version) {
            return Err(Error::usage(format!(
                "VirtualEnv: {:?} is not a Python version (write it as `3` or `3.11`)",
                self.version
            )));
        }
        let location = match self.path.as_deref().filter(|p| !p.is_empty()) {
            Some(p) => cx.map(p),
            None => cx.workdir().to_path_buf(),
        };
        self.path = Some(location.to_string_lossy().into_owned());
        let executable = self
            .executable
            .clone()
            .filter(|e| !e.is_empty())
            .unwrap_or_else(|| format!("python{}", self.version));
        self.executable = Some(executable.clone());
        cx.add(
            VirtualEnvBase::new(location.to_string_lossy().into_owned())
                .version(self.version.clone())
                .executable(executable),
        );
        for package in &self.packages {
            let mut package = package.clone();
            package.venv = Some(location.clone());
            cx.add(package);
        }
        Ok(())
    }

    fn breadcrumb(&self, _cx: &Setup) -> Option<String> {
        Some(self.version.clone())
    }
}

/// The environment itself: made again when its Python is missing, of
/// another version, or lacks pip. Added by [`VirtualEnv`].
#[component(namevar = path)]
#[derive(Debug)]
pub struct VirtualEnvBase {
    /// The environment's directory.
    path: String,
    /// The Python version it must have.
    #[attribute]
    version: String,
    /// The interpreter that makes it.
    #[attribute]
    executable: String,
}

impl VirtualEnvBase {
    fn python(&self) -> PathBuf {
        Path::new(&self.path).join("bin").join("python")
    }

    /// Removes what an earlier `venv` made (never anything else).
    fn remove_old(&self) -> Result<()> {
        let dir = Path::new(&self.path);
        let has_parts = VENV_PARTS[..4].iter().any(|p| dir.join(p).exists());
        if has_parts && !dir.join("pyvenv.cfg").is_file() {
            return Err(Error::Failed(format!(
                "VirtualEnv: {} holds bin/ or lib/ but no pyvenv.cfg: it is not a virtual \
                 environment, and batou does not replace what it did not make",
                dir.display()
            )));
        }
        for part in VENV_PARTS {
            let path = dir.join(part);
            let Ok(meta) = std::fs::symlink_metadata(&path) else {
                continue;
            };
            // remove_dir_all does not follow a symlink: lib64 -> lib goes
            // as a link.
            let removed = if meta.is_dir() {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            };
            removed.map_err(|e| Error::io(format!("removing {}", path.display()), e))?;
        }
        Ok(())
    }
}

/// A Python statement that exits non-zero unless the running version
/// starts with `version`'s numbers.
pub(crate) fn version_check(version: &str) -> String {
    let parts: Vec<&str> = version.split('.').collect();
    format!(
        "import sys; sys.exit(0 if sys.version_info[:{}] == ({},) else 1)",
        parts.len(),
        parts.join(", ")
    )
}

impl Component for VirtualEnvBase {
    fn verify(&mut self, cx: &mut Deploy) -> Result<()> {
        let python = self.python();
        if !python.exists() {
            return Err(Error::update_needed(format!(
                "{} does not exist",
                python.display()
            )));
        }
        let program = python.to_string_lossy();
        let checks = [
            (version_check(&self.version), "is not Python "),
            ("import pip".to_string(), "has no pip, so is not "),
        ];
        for (check, what) in checks {
            let out = cx.run(
                &program,
                &["-c", &check],
                CmdOptions {
                    ignore_returncode: true,
                    ..cwd_options(&self.path)
                },
            )?;
            if out.returncode != Some(0) {
                return Err(Error::update_needed(format!(
                    "{} {what}{}",
                    python.display(),
                    self.version
                )));
            }
        }
        Ok(())
    }

    fn update(&mut self, cx: &mut Deploy) -> Result<()> {
        self.remove_old()?;
        std::fs::create_dir_all(&self.path)
            .map_err(|e| Error::io(format!("creating {}", self.path), e))?;
        cx.run(
            &self.executable,
            &["-m", "venv", &self.path],
            cwd_options(&self.path),
        )?;
        let python = self.python();
        let out = cx.run(
            &python.to_string_lossy(),
            &["-c", &version_check(&self.version)],
            CmdOptions {
                ignore_returncode: true,
                ..cwd_options(&self.path)
            },
        )?;
        if out.returncode != Some(0) {
            return Err(Error::Failed(format!(
                "VirtualEnv: {} did not make a Python {} environment; set `executable` \
                 to an interpreter of that version",
                self.executable, self.version
            )));
        }
        Ok(())
    }

    fn breadcrumb(&self, _cx: &Setup) -> Option<String> {
        None
    }
}

pub(crate) fn cwd_options(dir: &str) -> CmdOptions {
    CmdOptions {
        cwd: Some(PathBuf::from(dir)),
        ..CmdOptions::default()
    }
}

/// Prints the installed version of the distribution named by argv[1], or
/// exits 3 when it is not installed.
const INSTALLED_VERSION: &str = "import sys, importlib.metadata as m\n\
try:\n    print(m.version(sys.argv[1]))\n\
except m.PackageNotFoundError:\n    sys.exit(3)\n";

/// A package pip installs into the [`VirtualEnv`] it was given to.
#[component(namevar = package)]
#[derive(Debug, Clone)]
pub struct Package {
    /// The distribution's name.
    package: String,
    /// The version to install (`==`); without one, any installed version
    /// passes and pip installs the newest.
    #[attribute]
    version: Option<String>,
    /// pip's network timeout in seconds (default: the environment's).
    #[attribute]
    timeout: Option<u64>,
    /// Whether pip installs the package's dependencies.
    #[attribute(default = true)]
    dependencies: bool,
    /// Variables for pip (`PIP_INDEX_URL`, ...).
    #[attribute(default = BTreeMap::<String, String>::new())]
    env: BTreeMap<String, String>,
    /// More pip arguments (`--no-index`, `--find-links=/srv/wheels`).
    #[attribute(default = Vec::<String>::new())]
    install_options: Vec<String>,
    /// The environment, set by [`VirtualEnv::package`].
    venv: Option<PathBuf>,
}

impl Package {
    fn options(&self, venv: &Path) -> CmdOptions {
        CmdOptions {
            env: self
                .env
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            cwd: Some(venv.to_path_buf()),
            ..CmdOptions::default()
        }
    }

    fn requirement(&self) -> String {
        match &self.version {
            Some(v) => format!("{}=={v}", self.package),
            None => self.package.clone(),
        }
    }

    fn venv(&self) -> Result<&Path> {
        self.venv.as_deref().ok_or_else(|| {
            Error::usage(format!(
                "Package({}) must be added to a virtual environment: \
                 VirtualEnv::new(\"3\").package(Package::new({:?}))",
                self.package, self.package
            ))
        })
    }
}

/// Versions compare as pip prints them, ignoring case (`1.0RC1`, `1.0rc1`).
fn same_version(installed: &str, wanted: &str) -> bool {
    installed.trim().eq_ignore_ascii_case(wanted.trim())
}

impl Component for Package {
    fn configure(&mut self, cx: &mut Setup) -> Result<()> {
        self.venv()?;
        if !valid_package_name(&self.package) {
            return Err(Error::usage(format!(
                "Package: {:?} is not a Python distribution name",
                self.package
            )));
        }
        if let Some(v) = &self.version {
            if !valid_package_version(v) {
                return Err(Error::usage(format!(
                    "Package({}): {v:?} is not a version",
                    self.package
                )));
            }
        }
        if self.timeout.is_none() {
            self.timeout = Some(cx.timeout().as_secs());
        }
        Ok(())
    }

    fn verify(&mut self, cx: &mut Deploy) -> Result<()> {
        let venv = self.venv()?;
        let python = venv.join("bin").join("python");
        if !python.exists() {
            return Err(Error::update_needed("the environment does not exist yet"));
        }
        let out = cx.run(
            &python.to_string_lossy(),
            &["-c", INSTALLED_VERSION, &self.package],
            CmdOptions {
                ignore_returncode: true,
                ..self.options(venv)
            },
        )?;
        match (out.returncode, &self.version) {
            (Some(0), None) => Ok(()),
            (Some(0), Some(wanted)) if same_version(&out.stdout, wanted) => Ok(()),
            (Some(0), Some(wanted)) => Err(Error::update_needed(format!(
                "{} {} is installed, not {wanted}",
                self.package,
                out.stdout.trim()
            ))),
            (Some(3), _) => Err(Error::update_needed(format!(
                "{} is not installed",
                self.package
            ))),
            _ => Err(Error::update_needed(format!(
                "cannot ask {} for {}: {}",
                python.display(),
                self.package,
                out.stderr.trim()
            ))),
        }
    }

    fn update(&mut self, cx: &mut Deploy) -> Result<()> {
        let venv = self.venv()?;
        let pip = venv.join("bin").join("pip");
        let timeout = self
            .timeout
            .map_or(Duration::from_secs(3), Duration::from_secs);
        let mut args = vec![format!("--timeout={}", timeout.as_secs()), "install".into()];
        if !self.dependencies {
            args.push("--no-deps".into());
        }
        args.extend(self.install_options.iter().cloned());
        args.push(self.requirement());
        cx.run(&pip.to_string_lossy(), &args, self.options(venv))?;
        Ok(())
    }

    fn breadcrumb(&self, _cx: &Setup) -> Option<String> {
        Some(self.requirement())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_and_names_are_checked() {
        assert!(valid_version("3") && valid_version("3.11"));
        assert!(!valid_version("3.") && !valid_version("three") && !valid_version(""));
        assert!(valid_package_name("zope.interface") && valid_package_name("my_app-2"));
        assert!(!valid_package_name("-x") && !valid_package_name("a b"));
        assert!(valid_package_version("1.0.post1+local") && !valid_package_version("1.0 ; x"));
    }

    #[test]
    fn the_version_check_compares_as_many_parts_as_given() {
        assert_eq!(
            version_check("3.11"),
            "import sys; sys.exit(0 if sys.version_info[:2] == (3, 11,) else 1)"
        );
    }
}
