//! The environment's choices as types: strings from environment.cfg become
//! these enums once, at load; code matches on variants.
//!
//! ```
//! use batou::settings::{ConnectMethod, UpdateMethod};
//! let m: UpdateMethod = "git-pull".parse().unwrap();
//! assert!(m.pulls());
//! assert_eq!(m.to_string(), "git-pull");
//! assert_eq!(
//!     "telnet".parse::<ConnectMethod>().unwrap_err(),
//!     "expected one of: local, ssh, vagrant, kitchen"
//! );
//! ```

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// "expected A or B", or "expected one of: A, B, C".
fn expected(choices: &[&str]) -> String {
    match choices {
        [a, b] => format!("expected {a} or {b}"),
        _ => format!("expected one of: {}", choices.join(", ")),
    }
}

/// Implements `FromStr` (the error lists the choices), `Display` and the
/// list of spellings for an enum of settings.
macro_rules! setting {
    ($ty:ident { $($variant:ident => $text:literal $(| $alias:literal)*),+ $(,)? }) => {
        impl $ty {
            /// Every accepted spelling, the canonical ones first.
            pub const CHOICES: &'static [&'static str] = &[$($text),+];

            /// The canonical spelling.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text),+
                }
            }
        }

        impl FromStr for $ty {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $($text $(| $alias)* => Ok(Self::$variant),)+
                    _ => Err(expected(Self::CHOICES)),
                }
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

/// How the controller reaches a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ConnectMethod {
    /// This machine, through a local agent process.
    Local,
    /// SSH.
    #[default]
    Ssh,
    /// `vagrant up`, then SSH with `vagrant ssh-config`.
    Vagrant,
    /// `kitchen create`, then SSH with `kitchen diagnose`.
    Kitchen,
}

setting!(ConnectMethod {
    Local => "local",
    Ssh => "ssh",
    Vagrant => "vagrant",
    Kitchen => "kitchen",
});

impl ConnectMethod {
    /// Whether hosts are reached over SSH (and the project is shipped).
    pub fn is_remote(self) -> bool {
        !matches!(self, Self::Local)
    }
}

/// How the project reaches remote hosts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum UpdateMethod {
    /// The built-in sync (`rsync` and `rsync-ext` mean the same).
    #[default]
    Sync,
    /// An incremental git bundle through the connection.
    GitBundle,
    /// The host fetches from the repository's URL.
    GitPull,
    /// An incremental Mercurial bundle.
    HgBundle,
    /// The host pulls with Mercurial.
    HgPull,
}

setting!(UpdateMethod {
    Sync => "sync" | "rsync" | "rsync-ext",
    GitBundle => "git-bundle",
    GitPull => "git-pull",
    HgBundle => "hg-bundle",
    HgPull => "hg-pull",
});

impl UpdateMethod {
    /// The version control system it ships with, if any.
    pub fn vcs(self) -> Option<crate::repository::Vcs> {
        use crate::repository::Vcs;
        match self {
            Self::Sync => None,
            Self::GitBundle | Self::GitPull => Some(Vcs::Git),
            Self::HgBundle | Self::HgPull => Some(Vcs::Hg),
        }
    }

    /// Whether the host fetches by itself (from `repository_url`).
    pub fn pulls(self) -> bool {
        matches!(self, Self::GitPull | Self::HgPull)
    }
}

/// Which SSH client carries the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum SshClient {
    /// russh, in-process.
    #[default]
    Russh,
    /// The system OpenSSH client (honours all of OpenSSH's configuration).
    #[serde(rename = "openssh")]
    OpenSsh,
}

setting!(SshClient {
    Russh => "russh",
    OpenSsh => "openssh",
});

/// How unknown host keys are treated (ssh_config's
/// `StrictHostKeyChecking`, lower-cased).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StrictHostKeys {
    /// `yes` or `ask`: an unknown key is refused.
    Yes,
    /// `accept-new`: an unknown key is learnt, a changed one refused.
    AcceptNew,
    /// `no`/`off`: an unknown key is learnt (a changed one is still
    /// refused by batou).
    No,
}

setting!(StrictHostKeys {
    Yes => "yes" | "true" | "ask",
    AcceptNew => "accept-new",
    No => "no" | "false" | "off",
});

/// A `[provisioner:NAME]` section's `method`: batou's entry points.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProvisionMethod {
    /// A Flying Circus development VM (`fc-devhost`).
    FcNixosDevVm,
    /// A Flying Circus development container (batou 2.3).
    FcNixosDevContainer,
}

setting!(ProvisionMethod {
    FcNixosDevVm => "fc-nixos-dev-vm",
    FcNixosDevContainer => "fc-nixos-dev-container",
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_round_trip_and_errors_list_the_choices() {
        for m in ["local", "ssh", "vagrant", "kitchen"] {
            assert_eq!(m.parse::<ConnectMethod>().unwrap().to_string(), m);
        }
        assert_eq!("rsync".parse::<UpdateMethod>().unwrap(), UpdateMethod::Sync);
        assert_eq!(
            "rsync-ext".parse::<UpdateMethod>().unwrap().to_string(),
            "sync"
        );
        assert_eq!(
            "svn".parse::<UpdateMethod>().unwrap_err(),
            "expected one of: sync, git-bundle, git-pull, hg-bundle, hg-pull"
        );
        assert_eq!(
            "putty".parse::<SshClient>().unwrap_err(),
            "expected russh or openssh"
        );
        assert_eq!(
            serde_json::to_string(&UpdateMethod::GitBundle).unwrap(),
            "\"git-bundle\""
        );
        assert_eq!(
            serde_json::to_string(&SshClient::OpenSsh).unwrap(),
            "\"openssh\""
        );
        assert!(UpdateMethod::HgPull.pulls() && !UpdateMethod::HgBundle.pulls());
    }
}
