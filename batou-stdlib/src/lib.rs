//! The standard library of batou components, written with the same
//! `#[component]` macro users write theirs with.
//!
//! - [`file`](mod@file): File, BinaryFile, Presence, Directory, SyncDirectory, Symlink,
//!   Mode, Owner, Group, Content, JSONContent, YAMLContent, Purge.
//! - [`download`]: Download (http, https, file; verified by checksum).
//! - [`git`], [`mercurial`]: Clone (the real git and hg, argument vectors,
//!   no shell); [`svn`]: Checkout.
//! - [`cmmi`]: Configure, Make, Build (configure-make-make-install).
//! - [`package`]: DPKG (apt-get, through sudo when not root).
//! - [`cron`]: CronJob, CronTab (the real crontab); [`logrotate`]:
//!   RotatedLogfile, Logrotate (checked with `logrotate -d`); [`nagios`]:
//!   ServiceCheck, NagiosServer, NRPEHost.
//! - [`archive`]: Extract, Untar, Unzip (in-process, refusing entries that
//!   would leave the target).
//! - [`python`]: VirtualEnv, Package; [`appenv`]: AppEnv (a venv from
//!   `requirements.lock`); [`buildout`]: Buildout.
//! - [`supervisor`]: Supervisor, Program, Eventlistener (the real
//!   supervisord in a venv); [`service`]: Service (boot-time start);
//!   [`systemd`]: Unit (checked with `systemd-analyze`).
//! - [`checksum`]: the `algo:hex` checksums Download and others verify.
//!
//! Every write is atomic: a temporary file in the same directory, then a
//! rename, so a killed deployment never leaves a half-written managed file.

#![warn(missing_debug_implementations)]

pub mod appenv;
pub mod archive;
pub mod buildout;
mod checks;
pub mod checksum;
pub mod cmmi;
pub mod cron;
pub mod download;
pub mod file;
pub mod git;
pub mod logrotate;
pub mod mercurial;
pub mod nagios;
pub mod package;
pub mod python;
pub mod service;
pub mod supervisor;
pub mod svn;
pub mod systemd;
mod vcs;
