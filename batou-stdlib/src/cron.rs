//! cron: `CronJob`s anywhere in a host's components, collected by the
//! host's `CronTab` and installed with the real `crontab` (batou.lib.cron).
//!
//! ```no_run
//! use batou::prelude::*;
//! use batou_stdlib::cron::CronJob;
//!
//! #[component]
//! pub struct Backup;
//!
//! impl Component for Backup {
//!     fn configure(&mut self, cx: &mut Configure) -> batou::Result<()> {
//!         cx.add(CronJob::new("bin/backup").timing("15 3 * * *").logger("backup"));
//!         Ok(())
//!     }
//! }
//! # fn main() {}
//! ```
//!
//! with `crontab` as another root on the same host (`[hosts] web1 =
//! backup, crontab`). A timing is checked when the job is configured (so
//! at `-c`): five fields (minute, hour, day of month, month, day of week;
//! `*`, numbers, ranges, steps, lists, `jan`–`dec`, `sun`–`sat`) or one of
//! `@reboot @yearly @annually @monthly @weekly @daily @midnight @hourly`.
//! The crontab is rendered into `work/<root>/crontab` and installed when
//! `crontab -l` differs from it (comment lines ignored).

use crate::file::File;
use batou::component::CmdOptions;
use batou::prelude::*;
use std::collections::BTreeMap;

/// One job as a `CronTab` receives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The five fields or an `@` keyword.
    pub timing: String,
    /// The command.
    pub command: String,
    /// Arguments after the command.
    pub args: String,
    /// A `logger -t` tag for the job's output.
    pub logger: Option<String>,
}

impl Entry {
    /// The crontab line (batou's format).
    pub fn line(&self) -> String {
        let mut line = format!("{} {} {}", self.timing, self.command, self.args);
        if let Some(tag) = &self.logger {
            line.push_str(&format!(" 2>&1 | logger -t {tag}"));
        }
        line
    }
}

/// The hook key: every `CronJob` provides its entry under it.
pub const JOBS: Resource<Entry> = Resource::new("batou.lib.cron:CronJob");

const KEYWORDS: [&str; 8] = [
    "@reboot",
    "@yearly",
    "@annually",
    "@monthly",
    "@weekly",
    "@daily",
    "@midnight",
    "@hourly",
];
const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const DAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

/// One field's name, range and names.
struct Field {
    name: &'static str,
    min: u32,
    max: u32,
    names: &'static [&'static str],
    first_name: u32,
}

const FIELDS: [Field; 5] = [
    Field {
        name: "minute",
        min: 0,
        max: 59,
        names: &[],
        first_name: 0,
    },
    Field {
        name: "hour",
        min: 0,
        max: 23,
        names: &[],
        first_name: 0,
    },
    Field {
        name: "day of month",
        min: 1,
        max: 31,
        names: &[],
        first_name: 1,
    },
    Field {
        name: "month",
        min: 1,
        max: 12,
        names: &MONTHS,
        first_name: 1,
    },
    Field {
        name: "day of week",
        min: 0,
        max: 7,
        names: &DAYS,
        first_name: 0,
    },
];

fn value(field: &Field, text: &str) -> Result<u32, String> {
    let lower = text.to_ascii_lowercase();
    if let Some(i) = field.names.iter().position(|n| *n == lower) {
        return Ok(field.first_name + i as u32);
    }
    let v: u32 = text
        .parse()
        .map_err(|_| format!("{} {text:?} is not a number", field.name))?;
    if v < field.min || v > field.max {
        return Err(format!(
            "{} {v} is out of range {}-{}",
            field.name, field.min, field.max
        ));
    }
    Ok(v)
}

fn check_field(field: &Field, text: &str) -> Result<(), String> {
    for item in text.split(',') {
        let (range, step) = match item.split_once('/') {
            Some((r, s)) => (r, Some(s)),
            None => (item, None),
        };
        if let Some(step) = step {
            let s: u32 = step
                .parse()
                .map_err(|_| format!("{} step {step:?} is not a number", field.name))?;
            if s == 0 {
                return Err(format!("{} step must not be 0", field.name));
            }
        }
        if range == "*" {
            continue;
        }
        match range.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (value(field, a)?, value(field, b)?);
                if a > b {
                    return Err(format!("{} range {range} is backwards", field.name));
                }
            }
            None => {
                value(field, range)?;
            }
        }
    }
    Ok(())
}

/// Checks a cron timing; the message says which field is wrong.
///
/// ```
/// use batou_stdlib::cron::check_timing;
/// assert!(check_timing("*/15 8-18 * * mon-fri").is_ok());
/// assert!(check_timing("@daily").is_ok());
/// assert_eq!(check_timing("61 * * * *").unwrap_err(), "minute 61 is out of range 0-59");
/// ```
pub fn check_timing(timing: &str) -> Result<(), String> {
    let timing = timing.trim();
    if timing.starts_with('@') {
        return if KEYWORDS.contains(&timing) {
            Ok(())
        } else {
            Err(format!(
                "unknown keyword {timing:?} (known: {})",
                KEYWORDS.join(" ")
            ))
        };
    }
    let parts: Vec<&str> = timing.split_whitespace().collect();
    if parts.len() != 5 {
        return Err(format!(
            "expected five fields (minute hour day-of-month month day-of-week), got {}",
            parts.len()
        ));
    }
    for (field, text) in FIELDS.iter().zip(parts) {
        check_field(field, text)?;
    }
    Ok(())
}

/// A cron job; the host's [`CronTab`] installs it.
#[component(namevar = command)]
#[derive(Debug)]
pub struct CronJob {
    /// The command (relative paths are the crontab's business).
    command: String,
    /// When: five fields or an `@` keyword (required).
    #[attribute]
    timing: String,
    /// Arguments.
    #[attribute(default = "")]
    args: String,
    /// Send the output to syslog with this tag.
    #[attribute]
    logger: Option<String>,
}

impl Component for CronJob {
    fn configure(&mut self, cx: &mut Configure) -> Result<()> {
        check_timing(&self.timing).map_err(|e| {
            Error::usage(format!(
                "CronJob({}): invalid timing {:?}: {e}",
                self.command, self.timing
            ))
        })?;
        if self.command.contains('\n') || self.args.contains('\n') {
            return Err(Error::usage(format!(
                "CronJob({}): a command must be one line",
                self.command.lines().next().unwrap_or_default()
            )));
        }
        cx.provide(
            &JOBS,
            Entry {
                timing: self.timing.trim().to_string(),
                command: self.command.clone(),
                args: self.args.clone(),
                logger: self.logger.clone().filter(|l| !l.is_empty()),
            },
        )
    }
}

/// The host's crontab: the [`CronJob`]s of all roots on this host.
#[component]
#[derive(Debug)]
pub struct CronTab {
    /// `MAILTO=`.
    #[attribute]
    mailto: Option<String>,
    /// More variables (`PATH = /usr/bin:/bin` pairs in a cfg).
    #[attribute(default = BTreeMap::<String, String>::new())]
    env: BTreeMap<String, String>,
    /// Expect no jobs: installs an empty crontab.
    #[attribute(default = false)]
    purge: bool,
}

/// The crontab text for these entries.
fn render(mailto: Option<&str>, env: &BTreeMap<String, String>, jobs: &[Entry]) -> String {
    let mut text = String::from("# Generated by batou. Do not edit.\n");
    if let Some(m) = mailto.filter(|m| !m.is_empty()) {
        text.push_str(&format!("MAILTO={m}\n"));
    }
    for (k, v) in env {
        text.push_str(&format!("{k}={v}\n"));
    }
    for job in jobs {
        text.push_str(&job.line());
        text.push('\n');
    }
    text
}

impl Component for CronTab {
    fn configure(&mut self, cx: &mut Configure) -> Result<()> {
        let host = cx.host_name().to_string();
        let mut jobs = cx.require_with(&JOBS, RequireOptions::new().on_host(host).optional())?;
        if self.purge && !jobs.is_empty() {
            return Err(Error::usage(
                "Found cron jobs, but expecting an empty crontab.",
            ));
        }
        if !self.purge && jobs.is_empty() {
            return Err(Error::usage("No cron jobs found."));
        }
        jobs.sort_by_key(|j| format!("{} {}", j.command, j.args));
        let text = render(self.mailto.as_deref(), &self.env, &jobs);
        cx.add(File::new("crontab").content(text.clone()));
        cx.add(InstallCrontab::new().content(text));
        Ok(())
    }
}

/// `crontab <file>` when `crontab -l` differs (comments ignored).
#[component]
#[derive(Debug)]
pub struct InstallCrontab {
    /// The wanted crontab.
    #[attribute(default = "")]
    content: String,
}

fn without_comments(text: &str) -> Vec<&str> {
    text.lines().filter(|l| !l.starts_with('#')).collect()
}

impl Component for InstallCrontab {
    fn verify(&mut self, cx: &mut Deploy) -> Result<()> {
        let options = CmdOptions {
            ignore_returncode: true,
            // The workdir may not exist yet (`-P` before the first deploy).
            cwd: Some("/".into()),
            ..CmdOptions::default()
        };
        // No crontab yet: `crontab -l` fails, which counts as empty.
        let current = cx.run("crontab", &["-l"], options)?;
        let current = if current.returncode == Some(0) {
            current.stdout
        } else {
            String::new()
        };
        ensure!(
            without_comments(&current) == without_comments(&self.content),
            "the installed crontab differs"
        );
        Ok(())
    }

    fn update(&mut self, cx: &mut Deploy) -> Result<()> {
        let file = cx.workdir().join("crontab");
        cx.run("crontab", &[file.as_os_str()], CmdOptions::default())?;
        Ok(())
    }

    fn breadcrumb(&self, _cx: &Configure) -> Option<String> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timings_are_checked_field_by_field() {
        for ok in [
            "* * * * *",
            "0 0 1 1 0",
            "*/5 * * * *",
            "0 8-18/2 * * 1-5",
            "30 4 1,15 * *",
            "0 0 * jan-mar sun",
            "0 0 * * 7",
            "@reboot",
            "@hourly",
        ] {
            assert!(check_timing(ok).is_ok(), "{ok}: {:?}", check_timing(ok));
        }
        for (bad, message) in [
            (
                "* * * *",
                "expected five fields (minute hour day-of-month month day-of-week), got 4",
            ),
            ("60 * * * *", "minute 60 is out of range 0-59"),
            ("* 24 * * *", "hour 24 is out of range 0-23"),
            ("* * 0 * *", "day of month 0 is out of range 1-31"),
            ("* * * 13 *", "month 13 is out of range 1-12"),
            ("* * * * 8", "day of week 8 is out of range 0-7"),
            ("* * * foo *", "month \"foo\" is not a number"),
            ("*/0 * * * *", "minute step must not be 0"),
            ("5-1 * * * *", "minute range 5-1 is backwards"),
            ("@often", "unknown keyword \"@often\""),
        ] {
            let err = check_timing(bad).unwrap_err();
            assert!(err.contains(message), "{bad}: {err}");
        }
    }

    #[test]
    fn the_crontab_is_rendered_as_batou() {
        let jobs = [Entry {
            timing: "@daily".into(),
            command: "bin/backup".into(),
            args: "--all".into(),
            logger: Some("backup".into()),
        }];
        let env: BTreeMap<String, String> =
            [("PATH".to_string(), "/usr/bin:/bin".to_string())].into();
        assert_eq!(
            render(Some("ops@example.com"), &env, &jobs),
            "# Generated by batou. Do not edit.\nMAILTO=ops@example.com\nPATH=/usr/bin:/bin\n\
             @daily bin/backup --all 2>&1 | logger -t backup\n"
        );
    }
}
