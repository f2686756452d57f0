//! git::Clone: a working copy of a git repository at a branch, tag or
//! revision (batou.lib.git), kept up to date with the real `git`.
//!
//! ```no_run
//! use batou::prelude::*;
//! use batou_stdlib::git::Clone;
//!
//! #[component]
//! pub struct Site;
//!
//! impl Component for Site {
//!     fn configure(&mut self, cx: &mut Configure) -> batou::Result<()> {
//!         cx.add(Clone::new("https://example.com/site.git").target("site").branch("main"));
//!         Ok(())
//!     }
//! }
//! # fn main() {}
//! ```
//!
//! Exactly one of `revision`, `branch`, `tag`. A working copy with local
//! changes (or untracked files) is an error unless `clobber`; on update,
//! untracked files are removed, the branch, tag or revision is checked out
//! hard, and submodules are updated. With `vcs_update = false` an existing
//! clone of the right URL is left as it is. git is always called with an
//! argument vector (no shell), `--` before URLs and paths, and names that
//! could be read as options are refused.

use crate::vcs::{check_name, configure_clone, verify_clone, CloneSpec, Pin, Runner, WorkingCopy};
use batou::prelude::*;
use std::path::PathBuf;

/// A git clone of `url` at `target` (default: the workdir).
/// Registered as `git_clone` (both VCS components are called `Clone`).
#[component(name = "git_clone", namevar = url)]
#[derive(Debug)]
pub struct Clone {
    /// The repository URL (or path).
    url: String,
    /// Where the working copy lives (relative to the workdir).
    #[attribute(default = ".")]
    target: String,
    /// A commit to check out.
    #[attribute]
    revision: Option<String>,
    /// A branch to follow (updated to the remote's head on every deploy).
    #[attribute]
    branch: Option<String>,
    /// A tag to check out.
    #[attribute]
    tag: Option<String>,
    /// Update an existing clone (fetch and check out); `false` leaves it.
    #[attribute(default = true)]
    vcs_update: bool,
    /// Discard local changes instead of refusing to update.
    #[attribute(default = false)]
    clobber: bool,
    pin: Pin,
    /// The target is missing, not a clone, or a clone of another URL.
    force_clone: bool,
}

const GIT: &str = "git";

impl Clone {
    fn git(&self, cx: &Deploy, args: &[&str]) -> Result<String> {
        Runner::new(cx, GIT, &self.target).output(args)
    }

    fn git_ok(&self, cx: &Deploy, args: &[&str]) -> bool {
        Runner::new(cx, GIT, &self.target).succeeds(args)
    }

    fn head(&self, cx: &Deploy) -> Option<String> {
        self.git(cx, &["rev-parse", "--verify", "HEAD"]).ok()
    }

    /// The commit the remote has for `refs/heads/<b>` or the tag (peeled).
    fn remote_commit(&self, cx: &Deploy, reference: &str) -> Result<String> {
        let out = self.git(
            cx,
            &[
                "ls-remote",
                "origin",
                reference,
                &format!("{reference}^{{}}"),
            ],
        )?;
        // A peeled tag (`^{}`) names the commit; otherwise the ref itself.
        let mut found = None;
        for line in out.lines() {
            let mut parts = line.split_whitespace();
            let (Some(hash), Some(name)) = (parts.next(), parts.next()) else {
                continue;
            };
            if name.ends_with("^{}") || found.is_none() {
                found = Some(hash.to_string());
            }
        }
        found.ok_or_else(|| {
            Error::failed(format!(
                "{} has no {reference} (Clone of {})",
                self.url, self.target
            ))
        })
    }

    fn dirty(&self, cx: &Deploy) -> Result<bool> {
        Ok(!self.git(cx, &["status", "--porcelain"])?.trim().is_empty())
    }

    /// Whether the pinned commit, branch or tag is checked out.
    fn at_pin(&self, cx: &Deploy) -> Result<bool> {
        let Some(head) = self.head(cx) else {
            return Ok(false);
        };
        Ok(match &self.pin {
            Pin::Revision(rev) => {
                let want = self.git(
                    cx,
                    &[
                        "rev-parse",
                        "--verify",
                        "--quiet",
                        &format!("{rev}^{{commit}}"),
                    ],
                );
                want.is_ok_and(|w| w.trim() == head.trim())
            }
            Pin::Branch(branch) => {
                let on = self.git(cx, &["rev-parse", "--abbrev-ref", "HEAD"])?;
                on.trim() == branch
                    && self.remote_commit(cx, &format!("refs/heads/{branch}"))? == head.trim()
            }
            Pin::Tag(tag) => self.remote_commit(cx, &format!("refs/tags/{tag}"))? == head.trim(),
            Pin::Unset => false,
        })
    }

    fn clone_fresh(&self, cx: &Deploy) -> Result<()> {
        let target = PathBuf::from(&self.target);
        crate::vcs::empty_directory(&target)?;
        Runner::new(cx, GIT, &self.target).in_parent().output(&[
            "clone",
            "--quiet",
            "--",
            &self.url,
            &self.target,
        ])?;
        Ok(())
    }
}

impl WorkingCopy for Clone {
    fn origin(&self, cx: &Deploy) -> String {
        self.git(cx, &["remote", "get-url", "origin"])
            .map(|o| o.trim().to_string())
            .unwrap_or_default()
    }
    fn dirty(&self, cx: &Deploy) -> Result<bool> {
        Clone::dirty(self, cx)
    }
    fn outgoing(&self, cx: &Deploy) -> bool {
        self.git(cx, &["status"])
            .is_ok_and(|s| s.contains("Your branch is ahead of"))
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
            check_name,
        )?;
        Ok(())
    }

    fn verify(&mut self, cx: &mut Deploy) -> Result<()> {
        let spec = CloneSpec {
            kind: "Git",
            meta_dir: ".git",
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
        let just_cloned = self.force_clone;
        if self.force_clone {
            self.clone_fresh(cx)?;
        }
        // Untracked files go (ignored ones stay, as batou leaves them).
        self.git(cx, &["clean", "-f", "-d", "--quiet"])?;
        if !just_cloned {
            self.git(cx, &["fetch", "--quiet", "--tags", "--force", "origin"])?;
        }
        match &self.pin {
            Pin::Branch(branch) => {
                let upstream = format!("origin/{branch}");
                self.git(
                    cx,
                    &["checkout", "--quiet", "--force", "-B", branch, &upstream],
                )?;
                self.git(cx, &["reset", "--quiet", "--hard", &upstream])?;
            }
            Pin::Tag(tag) => {
                let reference = format!("refs/tags/{tag}");
                self.git(
                    cx,
                    &["checkout", "--quiet", "--force", "--detach", &reference],
                )?;
            }
            Pin::Revision(rev) => {
                self.git(cx, &["checkout", "--quiet", "--force", "--detach", rev])?;
            }
            Pin::Unset => {}
        }
        self.git(
            cx,
            &[
                "submodule",
                "--quiet",
                "update",
                "--init",
                "--recursive",
                "--force",
            ],
        )?;
        Ok(())
    }

    fn last_updated(&self, cx: &Deploy) -> Result<Option<f64>> {
        if !self.git_ok(cx, &["rev-parse", "--git-dir"]) {
            return Ok(None);
        }
        Ok(self
            .git(cx, &["show", "-s", "--format=%ct", "HEAD"])
            .ok()
            .and_then(|t| t.trim().parse().ok()))
    }
}

/// [`Clone`](struct@Clone) under a name that can be imported next to the `Clone` trait.
///
/// ```
/// use batou::prelude::*;
/// use batou_stdlib::git::GitClone;
///
/// #[component]
/// #[derive(Clone)]
/// pub struct Site;
///
/// impl Component for Site {
///     fn configure(&mut self, cx: &mut Configure) -> batou::Result<()> {
///         cx.add(GitClone::new("https://example.com/site.git").branch("main"));
///         Ok(())
///     }
/// }
/// # fn main() {}
/// ```
pub type GitClone = Clone;
