//! mercurial::Clone: a Mercurial working copy at a branch, tag or
//! revision (batou.lib.mercurial), with the real `hg`.
//!
//! ```no_run
//! use batou::prelude::*;
//! use batou_stdlib::mercurial::Clone;
//!
//! #[component]
//! pub struct Docs;
//!
//! impl Component for Docs {
//!     fn configure(&mut self, cx: &mut Configure) -> batou::Result<()> {
//!         cx.add(Clone::new("https://hg.example.com/docs").target("docs").branch("default"));
//!         Ok(())
//!     }
//! }
//! # fn main() {}
//! ```
//!
//! The same rules as [`git::Clone`](crate::git::Clone): exactly one of
//! `revision`, `branch`, `tag`; the `default` path must be `url` (else a
//! clean clone is replaced); local changes or untracked files are an error
//! unless `clobber`; on update untracked files are purged and the pin is
//! checked out with `update --clean` (subrepositories follow); a branch or
//! tag with incoming changesets is updated; `vcs_update = false` leaves an
//! existing clone.

use crate::vcs::{check_name, configure_clone, verify_clone, CloneSpec, Pin, Runner, WorkingCopy};
use batou::prelude::*;
use std::path::{Path, PathBuf};

/// A Mercurial clone of `url` at `target` (default: the workdir).
/// Registered as `hg_clone` (both VCS components are called `Clone`).
#[component(name = "hg_clone", namevar = url)]
#[derive(Debug)]
pub struct Clone {
    /// The repository URL (or path).
    url: String,
    /// Where the working copy lives (relative to the workdir).
    #[attribute(default = ".")]
    target: String,
    /// A changeset to check out.
    #[attribute]
    revision: Option<String>,
    /// A named branch to follow.
    #[attribute]
    branch: Option<String>,
    /// A tag to check out.
    #[attribute]
    tag: Option<String>,
    /// Update an existing clone; `false` leaves it.
    #[attribute(default = true)]
    vcs_update: bool,
    /// Discard local changes instead of refusing to update.
    #[attribute(default = false)]
    clobber: bool,
    pin: Pin,
    force_clone: bool,
}

const HG: &str = "hg";

/// Mercurial reads a revision argument as a revset: only plain symbols.
fn check_symbol(what: &str, value: &str) -> Result<()> {
    check_name(what, value)?;
    if !value
        .chars()
        .all(|c| c.is_alphanumeric() || "._/+-@".contains(c))
    {
        return Err(Error::usage(format!("invalid {what} {value:?}")));
    }
    Ok(())
}

impl Clone {
    fn hg(&self, cx: &Deploy, args: &[&str]) -> Result<String> {
        Runner::new(cx, HG, &self.target).output(args)
    }

    fn hg_ok(&self, cx: &Deploy, args: &[&str]) -> bool {
        Runner::new(cx, HG, &self.target).succeeds(args)
    }

    fn node(&self, cx: &Deploy, rev: &str) -> Option<String> {
        self.hg(cx, &["log", "-r", rev, "-T", "{node}"])
            .ok()
            .map(|n| n.trim().to_string())
            .filter(|n| !n.is_empty())
    }

    fn pin_symbol(&self) -> &str {
        match &self.pin {
            Pin::Revision(s) | Pin::Branch(s) | Pin::Tag(s) => s,
            Pin::Unset => ".",
        }
    }

    fn dirty(&self, cx: &Deploy) -> Result<bool> {
        Ok(!self.hg(cx, &["status"])?.trim().is_empty())
    }

    fn incoming(&self, cx: &Deploy) -> bool {
        self.hg_ok(cx, &["incoming", "--quiet", "--limit", "1"])
    }

    fn at_pin(&self, cx: &Deploy) -> Result<bool> {
        let Some(current) = self.node(cx, ".") else {
            return Ok(false);
        };
        if self.node(cx, self.pin_symbol()).as_deref() != Some(current.as_str()) {
            return Ok(false);
        }
        Ok(match &self.pin {
            Pin::Revision(_) => true,
            Pin::Branch(branch) => self.hg(cx, &["branch"])?.trim() == branch && !self.incoming(cx),
            Pin::Tag(_) => !self.incoming(cx),
            Pin::Unset => false,
        })
    }
}

impl WorkingCopy for Clone {
    fn origin(&self, cx: &Deploy) -> String {
        self.hg(cx, &["paths", "default"])
            .map(|o| o.trim().to_string())
            .unwrap_or_default()
    }
    fn dirty(&self, cx: &Deploy) -> Result<bool> {
        Clone::dirty(self, cx)
    }
    fn outgoing(&self, cx: &Deploy) -> bool {
        self.hg_ok(cx, &["outgoing", "--quiet", "--limit", "1"])
    }
    fn at_pin(&self, cx: &Deploy) -> Result<bool> {
        Clone::at_pin(self, cx)
    }
}

impl Component for Clone {
    fn configure(&mut self, cx: &mut Configure) -> Result<()> {
        (self.pin, self.target) = configure_clone(
            cx,
            &self.url,
            [&self.revision, &self.branch, &self.tag],
            &self.target,
            check_symbol,
        )?;
        Ok(())
    }

    fn verify(&mut self, cx: &mut Deploy) -> Result<()> {
        let spec = CloneSpec {
            kind: "Hg",
            meta_dir: ".hg",
            url: &self.url,
            target: &self.target,
            vcs_update: self.vcs_update,
            clobber: self.clobber,
        };
        let mut force_clone = false;
        let result = verify_clone(&*self, spec, cx, &mut force_clone);
        self.force_clone = force_clone;
        result
    }

    fn update(&mut self, cx: &mut Deploy) -> Result<()> {
        if self.force_clone {
            crate::vcs::empty_directory(&PathBuf::from(&self.target))?;
            Runner::new(cx, HG, &self.target).in_parent().output(&[
                "clone",
                "--quiet",
                "--noupdate",
                "--",
                &self.url,
                &self.target,
            ])?;
        } else {
            self.hg(cx, &["pull", "--quiet"])?;
        }
        self.hg(cx, &["--config", "extensions.purge=", "purge", "--quiet"])?;
        self.hg(
            cx,
            &["update", "--quiet", "--clean", "--rev", self.pin_symbol()],
        )?;
        Ok(())
    }

    fn last_updated(&self, cx: &Deploy) -> Result<Option<f64>> {
        if !Path::new(&self.target).join(".hg").exists() {
            return Ok(None);
        }
        Ok(self
            .hg(cx, &["log", "-r", ".", "-T", "{date|hgdate}"])
            .ok()
            .and_then(|t| t.split_whitespace().next().and_then(|s| s.parse().ok())))
    }
}

/// [`Clone`](struct@Clone) under a name that can be imported next to the `Clone` trait
/// (`use batou_stdlib::mercurial::HgClone;`).
pub type HgClone = Clone;
