//! The command line (clap): `batou [-d] [--color WHEN] deploy [...] ENV`,
//! `graph ENV`, `secrets edit|summary|add|remove|reencrypt|decrypttostdout`,
//! `migrate`, `completions SHELL`, and the hidden `agent` mode the
//! controller starts on each host.

use clap::{Parser, Subcommand, ValueEnum};

/// batou: multi-host, multi-environment deployments.
#[derive(Debug, Parser)]
#[command(name = "batou", version = crate::VERSION, disable_help_subcommand = true)]
pub struct Cli {
    /// Enable debug mode (more output, backtraces).
    #[arg(short, long, global = true)]
    pub debug: bool,
    /// When to use colours: auto (on a terminal, unless NO_COLOR is set;
    /// CLICOLOR_FORCE=1 forces them), always or never.
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
    /// What to do.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// `batou secrets …`.
#[derive(Debug, Subcommand)]
pub enum SecretsCommand {
    /// Decrypt, edit and encrypt again the secrets of an environment (or
    /// one of its secret files). A new environment starts from batou's
    /// template, with age.
    Edit {
        /// Editor command (default: $EDITOR, else vi).
        #[arg(short, long, value_name = "EDITOR")]
        editor: Option<String>,
        /// Environment.
        environment: String,
        /// A secret file (`secret-FILE.gpg|.age`) instead of secrets.cfg.
        file: Option<String>,
    },
    /// Show the members and secret files of every environment.
    Summary,
    /// Add a member (key id, e-mail, ssh or age key) and re-encrypt.
    Add {
        /// The member's key (OpenPGP key id or address; age/ssh public key).
        keyid: String,
        /// Comma-separated environments (default: all).
        #[arg(long, default_value = "")]
        environments: String,
    },
    /// Remove a member and re-encrypt without it.
    Remove {
        /// The member, as listed in `members`.
        keyid: String,
        /// Comma-separated environments (default: all).
        #[arg(long, default_value = "")]
        environments: String,
    },
    /// Re-encrypt where the members' keys changed.
    Reencrypt {
        /// Comma-separated environments (default: all).
        #[arg(long, default_value = "")]
        environments: String,
        /// Re-encrypt even if the keys did not change.
        #[arg(short, long)]
        force: bool,
    },
    /// Print the cleartext of an encrypted file (for git's textconv).
    Decrypttostdout {
        /// The encrypted file.
        file: std::path::PathBuf,
    },
}

/// `--color`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    /// Colours on a terminal, unless NO_COLOR; CLICOLOR_FORCE=1 forces.
    Auto,
    /// Always colours.
    Always,
    /// Never colours.
    Never,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Deploy an environment.
    Deploy {
        /// Alternative platform to choose during deployment ("" for none).
        #[arg(short, long)]
        platform: Option<String>,
        /// Override the environment's timeout setting.
        #[arg(short, long)]
        timeout: Option<u64>,
        /// Allow deploying with dirty working copy or outgoing changes.
        #[arg(short = 'D', long)]
        dirty: bool,
        /// Only perform a deployment model and environment consistency check.
        /// Connects to no host.
        #[arg(short, long = "consistency-only")]
        consistency_only: bool,
        /// Only predict what updates would happen. Do not change anything.
        #[arg(short = 'P', long = "predict-only")]
        predict_only: bool,
        /// With -c or -P: do not connect to the hosts, check and predict
        /// against this machine's state.
        #[arg(short = 'L', long = "local")]
        local: bool,
        /// Defines number of jobs running parallel to deploy.
        #[arg(short, long)]
        jobs: Option<std::num::NonZeroUsize>,
        /// Rebuild the machines of registered provisioners from scratch
        /// (a warning says so when no host is provisioned).
        #[arg(long = "provision-rebuild")]
        provision_rebuild: bool,
        /// Accept and remember the host keys of hosts not yet in
        /// known_hosts (changed keys are still refused).
        #[arg(long = "accept-new-host-keys")]
        accept_new_host_keys: bool,
        /// Write the events as JSON lines to stdout instead of text.
        #[arg(long)]
        json: bool,
        /// Deploy only hosts whose names match one of these glob patterns;
        /// `!PATTERN` excludes (`--limit 'web*,!web3'`). The whole model is
        /// still configured.
        #[arg(long, value_name = "PATTERN", value_delimiter = ',')]
        limit: Vec<String>,
        /// Environment to deploy.
        environment: String,
    },
    /// Print the configured model as Graphviz DOT (connects nowhere).
    Graph {
        /// Environment.
        environment: String,
    },
    /// Manage the encrypted secrets of environments (OpenPGP or age).
    Secrets {
        /// What to do.
        #[command(subcommand)]
        command: SecretsCommand,
    },
    /// Move a project of Python batou's older layouts (2.2, 2.3) to the
    /// current one, as batou's migrations do.
    Migrate {
        /// Only record the newest version in .batou.json (for new projects).
        #[arg(long)]
        bootstrap: bool,
    },
    /// Print a shell completion script.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Serve the controller over stdin/stdout (started by batou itself).
    #[command(hide = true)]
    Agent,
}
