//! package::DPKG: a Debian package is installed (batou.lib.package).
//!
//! ```no_run
//! use batou::prelude::*;
//! use batou_stdlib::package::DPKG;
//!
//! #[component]
//! pub struct Tools;
//!
//! impl Component for Tools {
//!     fn configure(&mut self, cx: &mut Configure) -> batou::Result<()> {
//!         cx.add(DPKG::new("rsync"));
//!         Ok(())
//!     }
//! }
//! # fn main() {}
//! ```
//!
//! Verify asks `dpkg-query` whether the package is installed; update runs
//! `apt-get install -y` (non-interactive), through `sudo -n` when the
//! deployment does not run as root. A host without passwordless sudo gets
//! an error saying so, not a password prompt.

use batou::component::CmdOptions;
use batou::prelude::*;

/// A Debian package that must be installed.
#[component(name = "dpkg", namevar = package)]
#[derive(Debug)]
pub struct DPKG {
    /// The package name (as apt knows it; `name:arch` works).
    package: String,
}

fn valid_package_name(name: &str) -> bool {
    let (base, arch) = name.split_once(':').unwrap_or((name, "amd64"));
    let base_ok = base.len() >= 2
        && base.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && base
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "+-.".contains(c));
    let arch_ok = !arch.is_empty() && arch.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    base_ok && arch_ok
}

fn plain_env() -> CmdOptions {
    CmdOptions {
        env: [
            ("LANG", "C"),
            ("LC_ALL", "C"),
            ("DEBIAN_FRONTEND", "noninteractive"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect(),
        // A system command: independent of the workdir (which may not
        // exist).
        cwd: Some("/".into()),
        ..CmdOptions::default()
    }
}

impl Component for DPKG {
    fn configure(&mut self, _cx: &mut Configure) -> Result<()> {
        if !valid_package_name(&self.package) {
            return Err(Error::usage(format!(
                "DPKG: {:?} is not a Debian package name",
                self.package
            )));
        }
        Ok(())
    }

    fn verify(&mut self, cx: &mut Deploy) -> Result<()> {
        let mut options = plain_env();
        options.ignore_returncode = true;
        let out = cx.run(
            "dpkg-query",
            &["--show", "--showformat=${Status}", "--", &self.package],
            options,
        )?;
        ensure!(
            out.returncode == Some(0) && out.stdout.trim() == "install ok installed",
            "{} is not installed",
            self.package
        );
        Ok(())
    }

    fn update(&mut self, cx: &mut Deploy) -> Result<()> {
        let apt = ["apt-get", "install", "-y", "-q", "--", &self.package];
        // SAFETY: geteuid has no preconditions.
        let root = unsafe { libc::geteuid() } == 0;
        let result = if root {
            cx.run(apt[0], &apt[1..], plain_env())
        } else {
            let mut args = vec!["-n", "env", "DEBIAN_FRONTEND=noninteractive"];
            args.extend_from_slice(&apt);
            cx.run("sudo", &args, plain_env())
        };
        match result {
            Err(Error::Cmd(e)) if !root && e.stderr.contains("password is required") => {
                Err(Error::failed(format!(
                    "cannot install {} on {}: `sudo -n` needs a password; allow the deployment \
                     user passwordless sudo for apt-get",
                    self.package,
                    cx.host_name()
                )))
            }
            other => other.map(|_| ()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn package_names() {
        for ok in ["rsync", "libc6", "g++", "python3.11", "libssl3:amd64"] {
            assert!(valid_package_name(ok), "{ok}");
        }
        for bad in ["", "a", "-y", "Rsync", "a b", "x;rm", "pkg:"] {
            assert!(!valid_package_name(bad), "{bad}");
        }
    }
}
