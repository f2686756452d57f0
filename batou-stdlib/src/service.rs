//! service: a program the host starts at boot, in whatever way the host's
//! platform does it (batou.lib.service, batou.lib.debian).
//!
//! ```no_run
//! use batou::prelude::*;
//! use batou_stdlib::service::Service;
//!
//! #[component]
//! pub struct App;
//!
//! impl Component for App {
//!     fn configure(&mut self, cx: &mut Configure) -> batou::Result<()> {
//!         cx.add(Service::new("bin/app-daemon").pidfile("var/app.pid"));
//!         Ok(())
//!     }
//! }
//! # fn main() {}
//! ```
//!
//! A `Service` does nothing itself: platform components (`#[component(
//! platform = "…", base = Service)]`) attach to it on hosts of their
//! platform and see its `executable` and `pidfile` (absolute) through
//! `cx.parent()`. The standard library brings [`RebootCronjob`] for
//! `platform = debian`: an `@reboot` cron job in the host's crontab.

use crate::cron::CronJob;
use batou::component::Configure as Setup;
use batou::prelude::{component, Component, Error, Result};

/// A program to start when the host boots.
#[component(namevar = executable)]
#[derive(Debug)]
pub struct Service {
    /// The program (relative to the workdir, or absolute).
    executable: String,
    /// The pidfile the program writes.
    #[attribute]
    pidfile: Option<String>,
}

impl Component for Service {
    fn configure(&mut self, cx: &mut Setup) -> Result<()> {
        if self.executable.trim().is_empty() || self.executable.contains(['\n', '\r']) {
            return Err(Error::usage(format!(
                "Service: {:?} is not a program",
                self.executable
            )));
        }
        self.executable = cx.map(&self.executable).to_string_lossy().into_owned();
        if let Some(pidfile) = self.pidfile.take() {
            self.pidfile = Some(cx.map(pidfile).to_string_lossy().into_owned());
        }
        Ok(())
    }
}

/// On Debian hosts: starts a [`Service`] at boot with an `@reboot` job in
/// the host's crontab (so `crontab` must be a root of the host), logging
/// through `logger -t <root>`.
#[component(platform = "debian", base = Service)]
#[derive(Debug)]
pub struct RebootCronjob {}

impl Component for RebootCronjob {
    fn configure(&mut self, cx: &mut Setup) -> Result<()> {
        let executable = cx
            .parent()
            .and_then(|p| p.get_attr("executable").ok())
            .map(|v| v.to_string())
            .filter(|e| !e.is_empty())
            .ok_or_else(|| Error::usage("RebootCronjob belongs to a Service"))?;
        let logger = cx.root_name().to_string();
        cx.add(CronJob::new(executable).timing("@reboot").logger(logger));
        Ok(())
    }
}
