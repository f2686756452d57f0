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
pub mod component;
pub mod environment;
pub mod events;
pub mod output;
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
    pub use crate::component::{Child, Component, Configure, Deploy};
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

/// `--version`: the deployment crate's name and version, and batou's.
fn version_text() -> &'static str {
    let text = match inventory::iter::<model::DeploymentCrate>.into_iter().next() {
        Some(d) if !d.name.is_empty() => format!("{} {} (batou {VERSION})", d.name, d.version),
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
        Some(cli::Command::Secrets { command }) => match project_root() {
            Ok(root) => secrets_command(&root, command),
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
            jobs,
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
/// Runs a `secrets` command and prints what it reports.
fn secrets_command(root: &std::path::Path, command: cli::SecretsCommand) -> i32 {
    use cli::SecretsCommand as C;
    use secrets::commands::{self, Note};
    let mut notes = |n: Note| match n {
        Note::Info(m) => println!("{m}"),
        Note::Warning(m) => eprintln!("WARNING: {m}"),
    };
    let result = match command {
        C::Edit {
            editor,
            environment,
            file,
        } => {
            let editor = editor
                .or_else(|| {
                    std::env::var("EDITOR")
                        .ok()
                        .filter(|e| !e.trim().is_empty())
                })
                .unwrap_or_else(|| "vi".into());
            commands::edit(
                root,
                &environment,
                file.as_deref(),
                &editor,
                &mut ask_retry,
                &mut notes,
            )
        }
        C::Summary => return print_summary(root),
        C::Add {
            keyid,
            environments,
        } => commands::add(root, &keyid, &environments, &mut notes),
        C::Remove {
            keyid,
            environments,
        } => commands::remove(root, &keyid, &environments, &mut notes),
        C::Reencrypt {
            environments,
            force,
        } => commands::reencrypt(root, &environments, force, &mut notes),
        C::Decrypttostdout { file } => match commands::decrypt_to_stdout(&file) {
            Ok(clear) => {
                use std::io::Write;
                let mut out = std::io::stdout().lock();
                let _ = out.write_all(&clear).and_then(|_| out.flush());
                Ok(())
            }
            // git's textconv goes on with a placeholder.
            Err(e @ secrets::SecretsError::Decrypt { .. }) => {
                eprintln!("ERROR: {e}");
                println!("(unable to decrypt content)");
                Ok(())
            }
            Err(e) => Err(e),
        },
    };
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("ERROR: {e}");
            1
        }
    }
}

/// batou's prompt after a failed encryption in `secrets edit` (only on a
/// terminal; otherwise the edit is given up).
fn ask_retry(e: &secrets::SecretsError) -> secrets::commands::Retry {
    use secrets::commands::Retry;
    use std::io::IsTerminal;
    eprintln!("\nAn error occurred: {e}");
    if !std::io::stdin().is_terminal() {
        eprintln!("Not on a terminal: your changes are lost.");
        return Retry::Quit;
    }
    loop {
        eprintln!("Your changes are still available. You can try:");
        eprintln!("\tedit       -- opens editor with current data again");
        eprintln!("\tencrypt    -- tries to encrypt current data again");
        eprintln!("\tquit       -- quits and loses your changes");
        eprint!("> ");
        let mut line = String::new();
        if std::io::stdin().read_line(&mut line).unwrap_or(0) == 0 {
            return Retry::Quit;
        }
        match line.trim() {
            "edit" => return Retry::Edit,
            "encrypt" => return Retry::Encrypt,
            "quit" => return Retry::Quit,
            other => eprintln!("Unknown command {other:?}."),
        }
    }
}

/// `secrets summary`, in batou's layout.
fn print_summary(root: &std::path::Path) -> i32 {
    let mut code = 0;
    for env in secrets::commands::summary(root) {
        println!("{}", env.name);
        match env.state {
            Ok(None) => println!("\tNo secrets found."),
            Ok(Some((members, files))) => {
                println!("\t members");
                for m in &members {
                    println!("\t\t- {m}");
                }
                if members.is_empty() {
                    println!("\t\t(none)");
                }
                println!("\t secret files");
                for f in &files {
                    println!("\t\t- {f}");
                }
                if files.is_empty() {
                    println!("\t\t(none)");
                }
            }
            Err(e) => {
                eprintln!("ERROR: {e}");
                code = 1;
            }
        }
        println!();
    }
    code
}

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
