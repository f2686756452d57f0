//! svn::Checkout: a Subversion working copy at a fixed revision
//! (batou.lib.svn), with the real `svn`.
//!
//! ```no_run
//! use batou::prelude::*;
//! use batou_stdlib::svn::Checkout;
//!
//! #[component]
//! pub struct Toolkit;
//!
//! impl Component for Toolkit {
//!     fn configure(&mut self, cx: &mut Configure) -> batou::Result<()> {
//!         cx.add(Checkout::new("https://svn.example.com/repo/trunk").target("ztk").revision("130345"));
//!         Ok(())
//!     }
//! }
//! # fn main() {}
//! ```
//!
//! `revision` is required (a number). A working copy of another URL is
//! switched; local modifications are an error unless `clobber` (then
//! they are reverted and unversioned files removed).

use crate::file::Directory;
use crate::vcs::Runner;
use batou::prelude::*;
use std::path::Path;

/// A Subversion checkout of `url` at `revision` into `target`.
#[component(namevar = url)]
#[derive(Debug)]
pub struct Checkout {
    /// The repository URL.
    url: String,
    /// Where the working copy lives (relative to the workdir).
    #[attribute(default = ".")]
    target: String,
    /// The revision (required).
    #[attribute]
    revision: String,
    /// Revert local changes instead of refusing to update.
    #[attribute(default = false)]
    clobber: bool,
}

const SVN: &str = "svn";

impl Checkout {
    fn svn(&self, cx: &Deploy, args: &[&str]) -> Result<String> {
        let mut all = vec!["--non-interactive"];
        all.extend_from_slice(args);
        Runner::new(cx, SVN, &self.target).output(&all)
    }

    fn info(&self, cx: &Deploy, item: &str) -> String {
        self.svn(cx, &["info", "--show-item", item])
            .map(|s| s.trim().to_string())
            .unwrap_or_default()
    }

    fn dirty(&self, cx: &Deploy) -> Result<bool> {
        Ok(!self.svn(cx, &["status", "--quiet"])?.trim().is_empty())
    }
}

impl Component for Checkout {
    fn configure(&mut self, cx: &mut Configure) -> Result<()> {
        if self.revision.is_empty() || !self.revision.chars().all(|c| c.is_ascii_digit()) {
            return Err(Error::usage(format!(
                "Checkout({}) needs a revision number (got {:?})",
                self.url, self.revision
            )));
        }
        if self.url.trim().is_empty() || self.url.starts_with('-') {
            return Err(Error::usage(format!(
                "Checkout: invalid URL {:?}",
                self.url
            )));
        }
        self.target = cx.map(&self.target).to_string_lossy().into_owned();
        cx.add(Directory::new(self.target.clone()).leading(true));
        Ok(())
    }

    fn verify(&mut self, cx: &mut Deploy) -> Result<()> {
        let target = Path::new(&self.target);
        if !target.join(".svn").exists() {
            crate::vcs::refuse_foreign_content(target, &self.url, self.clobber)?;
            return Err(Error::update_needed(format!(
                "{} is not a checkout",
                self.target
            )));
        }
        if self.dirty(cx)? {
            if !self.clobber {
                return Err(Error::failed(format!(
                    "Subversion checkout at {} has local modifications - refusing to clobber. \
                     Use `clobber = true` if this is intentional.",
                    self.target
                )));
            }
            cx.log(format!(
                "Subversion checkout at {} is dirty, going to lose changes.",
                self.target
            ));
            return Err(Error::update_needed("dirty"));
        }
        ensure!(
            self.info(cx, "url") == self.url,
            "{} is a checkout of another URL",
            self.target
        );
        ensure!(
            self.info(cx, "revision") == self.revision,
            "{} is not at revision {}",
            self.target,
            self.revision
        );
        Ok(())
    }

    fn update(&mut self, cx: &mut Deploy) -> Result<()> {
        let target = Path::new(&self.target);
        if !target.join(".svn").exists() {
            crate::vcs::empty_directory(target)?;
            Runner::new(cx, SVN, &self.target).in_parent().output(&[
                "--non-interactive",
                "checkout",
                "--quiet",
                "-r",
                &self.revision,
                "--",
                &self.url,
                &self.target,
            ])?;
            return Ok(());
        }
        if self.clobber {
            self.svn(cx, &["revert", "--quiet", "-R", "."])?;
            self.svn(cx, &["cleanup", "--remove-unversioned"])?;
        }
        if self.info(cx, "url") != self.url {
            self.svn(
                cx,
                &[
                    "switch",
                    "--quiet",
                    "--ignore-ancestry",
                    "-r",
                    &self.revision,
                    "--",
                    &self.url,
                ],
            )?;
        }
        self.svn(cx, &["update", "--quiet", "-r", &self.revision])?;
        Ok(())
    }
}
