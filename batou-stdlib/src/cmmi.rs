//! cmmi: configure, make, make install (batou.lib.cmmi).
//!
//! ```no_run
//! use batou::prelude::*;
//! use batou_stdlib::cmmi::Build;
//!
//! #[component]
//! pub struct Zlib;
//!
//! impl Component for Zlib {
//!     fn configure(&mut self, cx: &mut Configure) -> batou::Result<()> {
//!         cx.add(
//!             Build::new("https://zlib.net/zlib-1.3.1.tar.gz")
//!                 .checksum("sha256:9a93b2b7dfdac77ceba5a558a580e74667dd6fede4585b91eefb60f03b72df23"),
//!         );
//!         Ok(())
//!     }
//! }
//! # fn main() {}
//! ```
//!
//! [`Build`] is [`Download`] + [`Extract`] (`strip = 1`) + [`Configure`] +
//! [`Make`], installing into `prefix` (default: the workdir). Markers as
//! batou's: `.batou.config.success` (newer than `configure`, and here also
//! recording prefix, arguments and environment, so changing them
//! configures again) and `.batou.make.success` (newer than `Makefile`, and recording its hash, as
//! file times can be too coarse to tell a Makefile written right after a
//! build).

use crate::archive::{Extract, Format};
use crate::download::Download;
use batou::component::{shell_quote, CmdOptions, Configure as Setup};
use batou::prelude::{component, ensure, Component, Deploy, Error, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const CONFIG_MARKER: &str = ".batou.config.success";
const MAKE_MARKER: &str = ".batou.make.success";

fn options(env: &BTreeMap<String, String>, cwd: &Path) -> CmdOptions {
    CmdOptions {
        env: env.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        cwd: Some(cwd.to_path_buf()),
        ..CmdOptions::default()
    }
}

/// `sha256:<hex>` of `dir/Makefile` (empty when there is none).
fn makefile_hash(dir: &Path) -> Result<String> {
    let makefile = dir.join("Makefile");
    if !makefile.is_file() {
        return Ok(String::new());
    }
    crate::checksum::Algorithm::Sha256
        .digest_file(&makefile)
        .map(|hex| format!("sha256:{hex}\n"))
        .map_err(|e| Error::io(format!("reading {}", makefile.display()), e))
}

fn write_marker(path: &Path, text: &str) -> Result<()> {
    batou::safe_fs::write_atomic(path, text.as_bytes(), 0o644)
        .map_err(|e| Error::io(format!("writing {}", path.display()), e))
}

/// `./configure --prefix=PREFIX ARGS` in `path`.
#[component(namevar = path)]
#[derive(Debug)]
pub struct Configure {
    /// The source directory (relative to the workdir).
    path: String,
    /// More arguments, as a shell would read them (`--with-x --enable-y`).
    #[attribute(default = "")]
    args: String,
    /// Installation prefix (default: the workdir).
    #[attribute]
    prefix: Option<String>,
    /// Variables for configure (`CFLAGS = -O2` pairs in a cfg).
    #[attribute(default = BTreeMap::<String, String>::new())]
    build_environment: BTreeMap<String, String>,
}

impl Configure {
    fn marker_text(&self) -> String {
        format!(
            "prefix={}\nargs={}\nenv={:?}\n",
            self.prefix.as_deref().unwrap_or_default(),
            self.args,
            self.build_environment
        )
    }
}

impl Component for Configure {
    fn configure(&mut self, cx: &mut Setup) -> Result<()> {
        self.path = cx.map(&self.path).to_string_lossy().into_owned();
        let prefix = match self.prefix.clone().filter(|p| !p.is_empty()) {
            Some(p) => cx.map(p),
            None => cx.workdir().to_path_buf(),
        };
        self.prefix = Some(prefix.to_string_lossy().into_owned());
        Ok(())
    }

    fn verify(&mut self, cx: &mut Deploy) -> Result<()> {
        let dir = PathBuf::from(&self.path);
        cx.assert_file_is_current(dir.join("config.status"), &[])?;
        cx.assert_file_is_current(dir.join(CONFIG_MARKER), &[&dir.join("configure")])?;
        let recorded = std::fs::read_to_string(dir.join(CONFIG_MARKER)).unwrap_or_default();
        ensure!(
            recorded == self.marker_text(),
            "configured with other arguments"
        );
        Ok(())
    }

    fn update(&mut self, cx: &mut Deploy) -> Result<()> {
        let dir = PathBuf::from(&self.path);
        let prefix = self.prefix.clone().unwrap_or_default();
        let command = format!(
            "./configure {} {}",
            shell_quote(&format!("--prefix={prefix}")),
            self.args
        );
        cx.cmd_with(command.trim_end(), options(&self.build_environment, &dir))?;
        write_marker(&dir.join(CONFIG_MARKER), &self.marker_text())
    }

    fn breadcrumb(&self, _cx: &Setup) -> Option<String> {
        Some(self.path.clone())
    }
}

/// `make install` in `path`.
#[component(namevar = path)]
#[derive(Debug)]
pub struct Make {
    /// The source directory (relative to the workdir).
    path: String,
    /// Variables for make.
    #[attribute(default = BTreeMap::<String, String>::new())]
    build_environment: BTreeMap<String, String>,
}

impl Component for Make {
    fn configure(&mut self, cx: &mut Setup) -> Result<()> {
        self.path = cx.map(&self.path).to_string_lossy().into_owned();
        Ok(())
    }

    fn verify(&mut self, cx: &mut Deploy) -> Result<()> {
        let dir = PathBuf::from(&self.path);
        cx.assert_file_is_current(dir.join(MAKE_MARKER), &[&dir.join("Makefile")])?;
        // File times can be too coarse to tell a Makefile written right
        // after the last build: the marker also records its hash.
        let recorded = std::fs::read_to_string(dir.join(MAKE_MARKER)).unwrap_or_default();
        ensure!(
            recorded == makefile_hash(&dir)?,
            "the Makefile changed since the last build"
        );
        Ok(())
    }

    fn update(&mut self, cx: &mut Deploy) -> Result<()> {
        let dir = PathBuf::from(&self.path);
        cx.run("make", &["install"], options(&self.build_environment, &dir))?;
        write_marker(&dir.join(MAKE_MARKER), &makefile_hash(&dir)?)
    }

    fn breadcrumb(&self, _cx: &Setup) -> Option<String> {
        Some(self.path.clone())
    }
}

/// Download + Extract (strip 1) + Configure + Make of a source tarball.
#[component(namevar = uri)]
#[derive(Debug)]
pub struct Build {
    /// The tarball's URL.
    uri: String,
    /// Its checksum (`sha256:…`, see [`Download`]).
    #[attribute]
    checksum: String,
    /// Arguments for configure.
    #[attribute(default = "")]
    configure_args: String,
    /// Installation prefix (default: the workdir).
    #[attribute]
    prefix: Option<String>,
    /// Variables for configure and make.
    #[attribute(default = BTreeMap::<String, String>::new())]
    build_environment: BTreeMap<String, String>,
}

impl Component for Build {
    fn configure(&mut self, cx: &mut Setup) -> Result<()> {
        let name = crate::download::file_name_of(&self.uri).ok_or_else(|| {
            Error::usage(format!("Build: the URI does not name a file: {}", self.uri))
        })?;
        let Some((_, source_dir)) = Format::of(&name) else {
            return Err(Error::usage(format!(
                "Build: {name} is not an archive batou can extract"
            )));
        };
        let source_dir = source_dir.to_string();
        cx.add(Download::new(self.uri.clone(), self.checksum.clone()).target(name.clone()));
        cx.add(Extract::new(name).strip(1));
        cx.add(
            Configure::new(source_dir.clone())
                .args(self.configure_args.clone())
                .prefix(self.prefix.clone())
                .build_environment(self.build_environment.clone()),
        );
        cx.add(Make::new(source_dir).build_environment(self.build_environment.clone()));
        Ok(())
    }

    fn breadcrumb(&self, _cx: &Setup) -> Option<String> {
        crate::download::file_name_of(&self.uri)
    }
}

/// [`Configure`] under a name that can be imported next to the prelude's
/// `Configure` context.
///
/// ```
/// use batou::prelude::*;
/// use batou_stdlib::cmmi::ConfigureScript;
///
/// #[component]
/// pub struct Zlib;
///
/// impl Component for Zlib {
///     fn configure(&mut self, cx: &mut Configure) -> batou::Result<()> {
///         cx.add(ConfigureScript::new("zlib-1.3"));
///         Ok(())
///     }
/// }
/// # fn main() {}
/// ```
pub type ConfigureScript = Configure;
