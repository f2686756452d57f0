//! logrotate: `RotatedLogfile`s anywhere in a host's components, collected
//! into the host's `logrotate.conf` by `Logrotate` (batou.lib.logrotate).
//!
//! ```no_run
//! use batou::prelude::*;
//! use batou_stdlib::logrotate::RotatedLogfile;
//!
//! #[component]
//! pub struct App;
//!
//! impl Component for App {
//!     fn configure(&mut self, cx: &mut Configure) -> batou::Result<()> {
//!         cx.add(RotatedLogfile::new("var/log/app.log").postrotate("kill -USR1 $(cat var/app.pid)"));
//!         Ok(())
//!     }
//! }
//! # fn main() {}
//! ```
//!
//! with `logrotate` as another root on the same host. The file starts with
//! `common_config` (by default batou's Debian settings: daily, 14
//! rotations, compressed, dated, missing files ok); each log file gets its
//! `args` (comma-separated directives) and pre/postrotate scripts. Once
//! written, the configuration is checked with `logrotate -d`: a directive
//! logrotate does not know fails the deployment with logrotate's words.
//! `cron = true` adds the daily `logrotate -s state logrotate.conf` job
//! for the host's [`CronTab`](crate::cron::CronTab).

use crate::cron::CronJob;
use crate::file::File;
use batou::component::CmdOptions;
use batou::prelude::*;
use std::ffi::OsStr;
use std::path::PathBuf;

/// One log file as `Logrotate` receives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Logfile {
    /// Absolute path (or glob).
    pub path: String,
    /// Directives for this file.
    pub args: Vec<String>,
    /// `prerotate` script.
    pub prerotate: Option<String>,
    /// `postrotate` script.
    pub postrotate: Option<String>,
}

/// The hook key: every `RotatedLogfile` provides its [`Logfile`] under it.
pub const LOGFILES: Resource<Logfile> = Resource::new("batou.lib.logrotate:RotatedLogfile");

/// batou's Debian `common_config`.
pub const DEBIAN_DEFAULTS: &str = "daily\nrotate 14\ncreate\ndateext\ncompress\nnotifempty\nnomail\nnoolddir\nmissingok\nsharedscripts\n";

/// A log file to rotate (relative to the workdir).
#[component(namevar = path)]
#[derive(Debug)]
pub struct RotatedLogfile {
    /// The log file (or glob).
    path: String,
    /// Directives, comma-separated (`rotate 3, size 10M`).
    #[attribute(default = "")]
    args: String,
    /// Script run before rotating.
    #[attribute]
    prerotate: Option<String>,
    /// Script run after rotating.
    #[attribute]
    postrotate: Option<String>,
}

impl Component for RotatedLogfile {
    fn configure(&mut self, cx: &mut Configure) -> Result<()> {
        self.path = cx.map(&self.path).to_string_lossy().into_owned();
        if self.path.contains(char::is_whitespace) || self.path.contains(['{', '}']) {
            return Err(Error::usage(format!(
                "RotatedLogfile: {:?} cannot be written into logrotate.conf",
                self.path
            )));
        }
        let args = self
            .args
            .split(',')
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .map(str::to_string)
            .collect();
        cx.provide(
            &LOGFILES,
            Logfile {
                path: self.path.clone(),
                args,
                prerotate: self.prerotate.clone().filter(|s| !s.is_empty()),
                postrotate: self.postrotate.clone().filter(|s| !s.is_empty()),
            },
        )
    }
}

/// The configuration text (batou's template).
fn render(common: &str, logfiles: &[Logfile]) -> String {
    let mut text = String::from(common);
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    for log in logfiles {
        text.push_str(&format!("\n{}  {{\n", log.path));
        for arg in &log.args {
            text.push_str(arg);
            text.push('\n');
        }
        for (name, script) in [
            ("prerotate", &log.prerotate),
            ("postrotate", &log.postrotate),
        ] {
            if let Some(script) = script {
                text.push_str(&format!("{name}\n{script}\nendscript\n"));
            }
        }
        text.push_str("}\n");
    }
    text
}

/// The host's logrotate configuration.
#[component]
#[derive(Debug)]
pub struct Logrotate {
    /// Directives for every file, before the file sections.
    #[attribute(default = DEBIAN_DEFAULTS)]
    common_config: String,
    /// Add the daily cron job that runs logrotate with this configuration.
    #[attribute(default = false)]
    cron: bool,
    conf: PathBuf,
}

impl Component for Logrotate {
    fn configure(&mut self, cx: &mut Configure) -> Result<()> {
        let host = cx.host_name().to_string();
        let mut logfiles = cx.require_with(&LOGFILES, RequireOptions::new().on_host(host))?;
        logfiles.sort_by(|a, b| a.path.cmp(&b.path));
        cx.add(File::new("logrotate.conf").content(render(&self.common_config, &logfiles)));
        self.conf = cx.map("logrotate.conf");
        if self.cron {
            let dir = cx.workdir().to_string_lossy().into_owned();
            cx.add(
                CronJob::new(format!(
                    "/usr/sbin/logrotate -s {dir}/state {dir}/logrotate.conf"
                ))
                .timing("45 2 * * *"),
            );
        }
        Ok(())
    }

    fn verify(&mut self, cx: &mut Deploy) -> Result<()> {
        // Predicting before the first deploy: nothing written to check yet.
        if !self.conf.is_file() {
            return Ok(());
        }
        let options = CmdOptions {
            ignore_returncode: true,
            cwd: Some("/".into()),
            ..CmdOptions::default()
        };
        // Outside root's PATH on Debian.
        let program = ["/usr/sbin/logrotate", "/sbin/logrotate"]
            .into_iter()
            .find(|p| std::path::Path::new(p).is_file())
            .unwrap_or("logrotate");
        let out = cx.run(
            program,
            &[
                OsStr::new("--debug"),
                OsStr::new("--state"),
                OsStr::new("/dev/null"),
                self.conf.as_os_str(),
            ],
            options,
        )?;
        let errors: Vec<&str> = out
            .stderr
            .lines()
            .chain(out.stdout.lines())
            .filter(|l| l.starts_with("error:"))
            .collect();
        if out.returncode != Some(0) || !errors.is_empty() {
            return Err(Error::failed(format!(
                "logrotate rejects {}: {}",
                self.conf.display(),
                errors.join("; ")
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendered_as_batou() {
        let logs = [Logfile {
            path: "/srv/app/var/log/app.log".into(),
            args: vec!["rotate 3".into(), "size 1k".into()],
            prerotate: None,
            postrotate: Some("kill -USR1 1".into()),
        }];
        assert_eq!(
            render("daily\n", &logs),
            "daily\n\n/srv/app/var/log/app.log  {\nrotate 3\nsize 1k\npostrotate\nkill -USR1 1\nendscript\n}\n"
        );
    }
}
