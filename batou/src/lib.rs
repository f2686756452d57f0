//! batou for Rust: multi-host, multi-environment deployments in which the
//! deployment is a Rust crate.
//!
//! A deployment crate defines components with [`#[component]`](macro@component),
//! lists environments in `environments/<env>/environment.cfg`, and calls
//! [`main()`]. The same executable is the controller (`deploy`) and the
//! agent it starts on every host.
//!
//! ```no_run
//! use batou::prelude::*;
//!
//! #[component]
//! pub struct Hello {
//!     #[attribute(default = "world")]
//!     name: String,
//! }
//!
//! impl Component for Hello {
//!     fn configure(&mut self, cx: &mut Configure) -> batou::Result<()> {
//!         cx.log(format!("hello {}", self.name));
//!         Ok(())
//!     }
//! }
//!
//! fn main() -> std::process::ExitCode {
//!     batou::main()
//! }
//! ```

#![warn(missing_debug_implementations)]

extern crate self as batou;

// The API of component code and component libraries.
pub mod address;
pub mod alloc;
pub mod component;
pub mod environment;
pub mod events;
pub mod http;
pub mod migrate;
pub mod output;
pub mod provision;
pub mod report;
pub mod resources;
pub mod safe_fs;
pub mod secrets;
pub mod settings;
pub mod template;
pub mod testing;

// The runtime: public only for batou's own tests and benchmarks.
#[doc(hidden)]
#[allow(missing_debug_implementations)]
pub mod agent;
#[doc(hidden)]
#[allow(missing_debug_implementations)]
pub mod deploy;
#[doc(hidden)]
#[allow(missing_debug_implementations)]
pub mod model;

mod cli;
mod error;
mod lock;
mod panics;
#[allow(missing_debug_implementations)]
mod repository;
mod shipping;
#[allow(missing_debug_implementations)]
mod transport;
mod ui;

#[doc = include_str!("../doc/check_environments.md")]
pub use batou_macros::check_environments;
#[doc = include_str!("../doc/component.md")]
pub use batou_macros::component;
#[doc = include_str!("../doc/components.md")]
pub use batou_macros::components;
pub use error::{Error, IoContext, Result};

/// The version of batou.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// What component code usually needs.
pub mod prelude {
    pub use crate::address::{Address, NetLoc};
    pub use crate::component::{Child, Component, Configure, Deploy, EventScope};
    pub use crate::output::{Color, Line, Style};
    pub use crate::resources::{RequireOptions, Resource};
    pub use crate::secrets::Secret;
    pub use crate::{component, ensure, Error, IoContext, Result};
    /// JSON values for `JSONContent::data` and templates (`json!`).
    pub use serde_json::{self, json};
    /// YAML values.
    pub use serde_yaml;
}

#[doc(hidden)]
pub mod __private {
    pub use crate::model::DeploymentCrate;
    pub use batou_macros::__unknown_attribute as unknown_attribute;
    pub use inventory;
}

/// Registers the deployment crate (emitted by `check_environments!()`).
#[doc(hidden)]
#[macro_export]
macro_rules! __private_register_deployment {
    () => {
        $crate::__private::inventory::submit! {
            $crate::__private::DeploymentCrate {
                manifest_dir: ::core::env!("CARGO_MANIFEST_DIR"),
                name: ::core::env!("CARGO_PKG_NAME"),
                version: ::core::env!("CARGO_PKG_VERSION"),
            }
        }
    };
}

/// `--version` after clap's `batou`: batou's version, then the deployment
/// crate's name and version (`batou 0.1.0 (myproject 0.1.0)`).
fn version_text() -> &'static str {
    let text = match inventory::iter::<model::DeploymentCrate>.into_iter().next() {
        Some(d) if !d.name.is_empty() => format!("{VERSION} ({} {})", d.name, d.version),
        _ => VERSION.to_string(),
    };
    // Once per process, for clap's 'static version string.
    Box::leak(text.into_boxed_str())
}

/// The whole command line: call it from the deployment crate's `main`.
pub fn main() -> std::process::ExitCode {
    use clap::{CommandFactory, FromArgMatches};
    let parsed = cli::Cli::command()
        .version(version_text())
        .try_get_matches()
        .and_then(|m| cli::Cli::from_arg_matches(&m));
    let cli = match parsed {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return std::process::ExitCode::from(code);
        }
    };
    // Panics are reported as errors, not as Rust backtraces (unless -d).
    panics::install_hook(cli.debug);
    let code = run_command(cli);
    std::process::ExitCode::from(code.clamp(0, 255) as u8)
}

fn run_command(cli: cli::Cli) -> i32 {
    let term = || output::Terminal::detect(cli.color);
    match cli.command {
        None => {
            use clap::CommandFactory;
            let _ = cli::Cli::command().write_help(&mut std::io::stderr());
            2
        }
        Some(cli::Command::Agent) => agent::server::serve(),
        Some(cli::Command::Completions { shell }) => {
            use clap::CommandFactory;
            let mut cmd = cli::Cli::command();
            clap_complete::generate(shell, &mut cmd, "batou", &mut std::io::stdout());
            0
        }
        Some(cli::Command::Migrate { bootstrap }) => match project_root() {
            Ok(root) => ui::migrate::run(&root, bootstrap, &term()),
            Err(e) => {
                eprintln!("ERROR: {e}");
                1
            }
        },
        Some(cli::Command::Secrets { command }) => match project_root() {
            Ok(root) if migrate::pending(&root).is_some() => ui::migrate::refuse(&root),
            Ok(root) => ui::secrets::run(&root, command),
            Err(e) => {
                eprintln!("ERROR: {e}");
                1
            }
        },
        Some(cli::Command::Graph { environment }) => match project_root() {
            Ok(root) => {
                let view = ui::BatouText::new(output::Terminal::detect_stderr(cli.color));
                match deploy::graph(&root, &environment, &view) {
                    Ok(dot) => {
                        print!("{dot}");
                        0
                    }
                    Err(code) => code,
                }
            }
            Err(e) => {
                eprintln!("ERROR: {e}");
                1
            }
        },
        Some(cli::Command::Deploy {
            platform,
            timeout,
            dirty,
            consistency_only,
            predict_only,
            local,
            jobs,
            provision_rebuild,
            accept_new_host_keys,
            json,
            limit,
            environment,
        }) => {
            let root = match project_root() {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("ERROR: {e}");
                    return 1;
                }
            };
            let opts = deploy::DeployOptions {
                environment,
                consistency_only,
                predict_only,
                jobs: jobs.map(std::num::NonZeroUsize::get),
                dirty,
                timeout,
                platform,
                debug: cli.debug,
                accept_new_host_keys,
                limit,
                local,
                provision_rebuild,
            };
            if json {
                deploy::run(&root, &opts, &ui::JsonLines::new(std::io::stdout()))
            } else {
                deploy::run(&root, &opts, &ui::BatouText::new(term()))
            }
        }
    }
}

/// The project directory: the deployment crate's manifest directory when it
/// exists here (so `cargo run` works from any subdirectory), else the
/// current directory.
fn project_root() -> std::io::Result<std::path::PathBuf> {
    let cwd = std::env::current_dir()?;
    if cwd.join("environments").is_dir() {
        return Ok(cwd);
    }
    if let Some(d) = inventory::iter::<model::DeploymentCrate>.into_iter().next() {
        let p = std::path::PathBuf::from(d.manifest_dir);
        if p.join("environments").is_dir() {
            return Ok(p);
        }
    }
    Ok(cwd)
}
