//! What the version-control components share: the pin (revision, branch
//! or tag), running the tool with an argument vector, and the rules for
//! replacing a target.

use crate::file::Directory;
use batou::component::CmdOptions;
use batou::prelude::*;
use batou::safe_fs;
use std::path::{Path, PathBuf};

/// What a working copy is pinned to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) enum Pin {
    /// Not configured yet.
    #[default]
    Unset,
    /// A commit or revision.
    Revision(String),
    /// A branch, followed.
    Branch(String),
    /// A tag.
    Tag(String),
}

impl std::fmt::Display for Pin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Pin::Unset => f.write_str("(nothing)"),
            Pin::Revision(r) => write!(f, "revision {r}"),
            Pin::Branch(b) => write!(f, "branch {b}"),
            Pin::Tag(t) => write!(f, "tag {t}"),
        }
    }
}

/// Exactly one of revision, branch, tag (batou's rule).
pub(crate) fn exactly_one(
    kind: &str,
    url: &str,
    revision: &Option<String>,
    branch: &Option<String>,
    tag: &Option<String>,
) -> Result<Pin> {
    let given = |v: &Option<String>| v.clone().filter(|s| !s.trim().is_empty());
    match (given(revision), given(branch), given(tag)) {
        (Some(r), None, None) => Ok(Pin::Revision(r)),
        (None, Some(b), None) => Ok(Pin::Branch(b)),
        (None, None, Some(t)) => Ok(Pin::Tag(t)),
        _ => Err(Error::usage(format!(
            "{kind}({url}) needs exactly one of revision, branch or tag"
        ))),
    }
}

/// The attributes of a `Clone` (git or Mercurial) that the shared steps
/// read.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CloneSpec<'s> {
    /// `Git` or `Hg`, as messages name the clone.
    pub kind: &'static str,
    /// The tool's directory in a working copy (`.git`, `.hg`).
    pub meta_dir: &'static str,
    pub url: &'s str,
    pub target: &'s str,
    pub vcs_update: bool,
    pub clobber: bool,
}

/// What the shared verify asks a working copy.
pub(crate) trait WorkingCopy {
    /// The URL the working copy pulls from (empty when unknown).
    fn origin(&self, cx: &Deploy) -> String;
    /// Local changes or untracked files.
    fn dirty(&self, cx: &Deploy) -> Result<bool>;
    /// Changesets that are not upstream.
    fn outgoing(&self, cx: &Deploy) -> bool;
    /// Whether the pin is checked out and up to date.
    fn at_pin(&self, cx: &Deploy) -> Result<bool>;
}

/// Checks the pin and URL of a `Clone` and adds the `Directory` of its
/// target; returns the pin and the mapped target.
pub(crate) fn configure_clone(
    cx: &mut Configure,
    url: &str,
    [revision, branch, tag]: [&Option<String>; 3],
    target: &str,
    check: fn(&str, &str) -> Result<()>,
) -> Result<(Pin, String)> {
    let pin = exactly_one("Clone", url, revision, branch, tag)?;
    for (what, value) in ["revision", "branch", "tag"]
        .into_iter()
        .zip([revision, branch, tag])
    {
        if let Some(v) = value {
            check(what, v)?;
        }
    }
    if url.trim().is_empty() || url.starts_with('-') {
        return Err(Error::usage(format!("Clone: invalid URL {url:?}")));
    }
    let target = cx.map(target).to_string_lossy().into_owned();
    cx.add(Directory::new(target.clone()).leading(true));
    Ok((pin, target))
}

/// batou's verify of a clone. Sets `force_clone` when the target must be
/// cloned afresh (missing, not a clone, a clean clone of another URL).
pub(crate) fn verify_clone(
    wc: &impl WorkingCopy,
    spec: CloneSpec,
    cx: &Deploy,
    force_clone: &mut bool,
) -> Result<()> {
    *force_clone = false;
    let target = Path::new(spec.target);
    if !target.join(spec.meta_dir).exists() {
        *force_clone = true;
        refuse_foreign_content(target, spec.url, spec.clobber)?;
        return Err(Error::update_needed(format!(
            "{} is not a clone",
            spec.target
        )));
    }
    let origin = wc.origin(cx);
    if origin != spec.url {
        if wc.dirty(cx)? && !spec.clobber {
            return Err(refuse_dirty(spec.kind, spec.target));
        }
        *force_clone = true;
        return Err(Error::update_needed(format!(
            "{} is a clone of {origin}",
            spec.target
        )));
    }
    if !spec.vcs_update {
        return Ok(());
    }
    if wc.outgoing(cx) {
        cx.log(format!(
            "{} clone at {} has outgoing changesets.",
            spec.kind, spec.target
        ));
    }
    if wc.dirty(cx)? {
        if !spec.clobber {
            return Err(refuse_dirty(spec.kind, spec.target));
        }
        cx.log(format!(
            "{} clone at {} is dirty, going to lose changes.",
            spec.kind, spec.target
        ));
        return Err(Error::update_needed("dirty"));
    }
    ensure!(wc.at_pin(cx)?, "{} is not at the pinned state", spec.target);
    Ok(())
}

/// A revision, branch or tag name that cannot be mistaken for an option
/// or break a command line.
pub(crate) fn check_name(what: &str, value: &str) -> Result<()> {
    let bad = value.starts_with('-')
        || value.chars().any(|c| c.is_whitespace() || c.is_control())
        || value.contains("..")
        || value.is_empty();
    if bad {
        return Err(Error::usage(format!("invalid {what} {value:?}")));
    }
    Ok(())
}

/// The refusal for a working copy with local changes.
pub(crate) fn refuse_dirty(kind: &str, target: &str) -> Error {
    Error::failed(format!(
        "{kind} clone at {target} is dirty - refusing to clobber. Use `clobber = true` if this is intentional."
    ))
}

/// A target that has content but is not a working copy is not ours:
/// refuse unless `clobber`.
pub(crate) fn refuse_foreign_content(target: &Path, url: &str, clobber: bool) -> Result<()> {
    let has_content = std::fs::read_dir(target).is_ok_and(|mut d| d.next().is_some());
    let not_a_dir = std::fs::symlink_metadata(target).is_ok_and(|m| !m.is_dir());
    if (has_content || not_a_dir) && !clobber {
        return Err(Error::failed(format!(
            "Refusing to check out {url} into {}: it exists and is not a working copy \
             (set `clobber = true` to replace it)",
            target.display()
        )));
    }
    Ok(())
}

/// Makes `path` an empty directory (keeping it if it is one), without
/// following links.
pub(crate) fn empty_directory(path: &Path) -> Result<()> {
    let ctx = |e| Error::io(format!("emptying {}", path.display()), e);
    if !std::fs::symlink_metadata(path).is_ok_and(|m| m.is_dir()) {
        safe_fs::remove(path).map_err(ctx)?;
        std::fs::create_dir_all(path).map_err(ctx)?;
    }
    for entry in std::fs::read_dir(path).map_err(ctx)? {
        safe_fs::remove(&entry.map_err(ctx)?.path()).map_err(ctx)?;
    }
    Ok(())
}

/// Runs a version-control tool in a working copy, with an argument vector
/// and a plain, non-interactive environment.
pub(crate) struct Runner<'a, 'b> {
    cx: &'a Deploy<'b>,
    program: &'static str,
    cwd: PathBuf,
}

impl<'a, 'b> Runner<'a, 'b> {
    pub(crate) fn new(cx: &'a Deploy<'b>, program: &'static str, target: &str) -> Self {
        Runner {
            cx,
            program,
            cwd: PathBuf::from(target),
        }
    }

    /// Runs in the target's parent directory (for the initial checkout).
    pub(crate) fn in_parent(mut self) -> Self {
        if let Some(parent) = self.cwd.parent() {
            self.cwd = parent.to_path_buf();
        }
        self
    }

    fn options(&self, ignore_returncode: bool) -> CmdOptions {
        CmdOptions {
            ignore_returncode,
            env: [
                ("LANG", "C"),
                ("LC_ALL", "C"),
                ("GIT_TERMINAL_PROMPT", "0"),
                ("HGPLAIN", "1"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
            cwd: Some(self.cwd.clone()),
            ..CmdOptions::default()
        }
    }

    /// stdout of a successful run; a failure is an error with the output.
    pub(crate) fn output(&self, args: &[&str]) -> Result<String> {
        Ok(self.cx.run(self.program, args, self.options(false))?.stdout)
    }

    /// Whether the command succeeds.
    pub(crate) fn succeeds(&self, args: &[&str]) -> bool {
        self.cx
            .run(self.program, args, self.options(true))
            .is_ok_and(|o| o.returncode == Some(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exactly_one_pin() {
        let s = |v: &str| Some(v.to_string());
        assert_eq!(
            exactly_one("Clone", "u", &s("abc"), &None, &None).unwrap(),
            Pin::Revision("abc".into())
        );
        assert_eq!(
            exactly_one("Clone", "u", &None, &s("main"), &None).unwrap(),
            Pin::Branch("main".into())
        );
        let err = exactly_one("Clone", "u", &s("a"), &s("b"), &None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Clone(u) needs exactly one of revision, branch or tag"
        );
        assert!(exactly_one("Clone", "u", &None, &None, &None).is_err());
    }

    #[test]
    fn names_that_look_like_options_are_refused() {
        assert!(check_name("branch", "main").is_ok());
        assert!(check_name("branch", "feature/x-1").is_ok());
        for bad in ["--upload-pack=evil", "a b", "a..b", ""] {
            assert!(check_name("branch", bad).is_err(), "{bad}");
        }
    }
}
