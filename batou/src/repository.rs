//! Shipping the project with version control (`update_method` `git-bundle`
//! and `git-pull`): the controller verifies its working copy (clean, on the
//! configured branch, pushed for `git-pull`), the host's copy is a git
//! repository under the target directory that is moved to exactly the
//! controller's commit — or the deployment fails with a repository-differs
//! error.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A problem with the local repository, reported at load time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepositoryError {
    /// `ERROR: ...` title.
    pub title: String,
    /// Further lines.
    pub details: Vec<String>,
}

fn git(dir: &Path, args: &[&str]) -> Result<String, String> {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run git: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim_end().to_string())
    } else {
        Err(format!(
            "git {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// The controller's repository of a project.
#[derive(Debug, Clone)]
pub struct LocalGit {
    /// Top level of the repository.
    pub toplevel: PathBuf,
    /// The project directory relative to the top level ("" if the same).
    pub subdir: PathBuf,
    /// The branch shipped.
    pub branch: String,
    /// Its commit.
    pub head: String,
}

impl LocalGit {
    /// Verifies the working copy for shipping `branch` (default: the
    /// checked-out branch): it must be on that branch, clean (unless
    /// `dirty`), and for `git-pull` pushed to `origin`.
    pub fn verify(
        project_root: &Path,
        branch: Option<&str>,
        pull: bool,
        dirty: bool,
    ) -> Result<LocalGit, RepositoryError> {
        let err = |title: String| RepositoryError {
            title,
            details: Vec::new(),
        };
        let toplevel = git(project_root, &["rev-parse", "--show-toplevel"])
            .map(PathBuf::from)
            .map_err(|e| err(format!("The project is not a git repository: {e}")))?;
        let current = git(project_root, &["rev-parse", "--abbrev-ref", "HEAD"]).map_err(err)?;
        let branch = branch
            .map(str::to_string)
            .unwrap_or_else(|| current.clone());
        if current != branch {
            return Err(err(format!(
                "You are on branch {current}, but the environment deploys branch {branch}."
            )));
        }
        if !dirty {
            let status = git(project_root, &["status", "--porcelain"]).map_err(err)?;
            if !status.is_empty() {
                return Err(RepositoryError {
                    title: "Your repository has uncommitted changes.".into(),
                    details: status
                        .lines()
                        .map(|l| format!("    {l}"))
                        .chain(std::iter::once(
                            "I am refusing to deploy in this situation as the results are unpredictable. Use -D to override."
                                .to_string(),
                        ))
                        .collect(),
                });
            }
            if pull {
                let outgoing = git(
                    project_root,
                    &["log", "--oneline", &format!("origin/{branch}..{branch}")],
                )
                .map_err(|e| err(format!("Cannot compare with origin/{branch}: {e}")))?;
                if !outgoing.is_empty() {
                    return Err(RepositoryError {
                        title: format!("Your repository has outgoing changes on branch {branch}:"),
                        details: outgoing
                            .lines()
                            .map(|l| format!("    {l}"))
                            .chain(std::iter::once(
                                "I am refusing to deploy in this situation as the results are unpredictable. Use -D to override."
                                    .to_string(),
                            ))
                            .collect(),
                    });
                }
            }
        }
        let head = git(project_root, &["rev-parse", &branch]).map_err(err)?;
        let canonical = |p: &Path| p.canonicalize().unwrap_or_else(|_| p.to_path_buf());
        let subdir = canonical(project_root)
            .strip_prefix(canonical(&toplevel))
            .map(Path::to_path_buf)
            .unwrap_or_default();
        Ok(LocalGit {
            toplevel,
            subdir,
            branch,
            head,
        })
    }

    /// The URL `git-pull` hosts fetch from: `repository_url`, else
    /// origin's.
    pub fn pull_url(&self, configured: Option<&str>) -> Result<String, String> {
        match configured {
            Some(u) => Ok(u.to_string()),
            None => git(&self.toplevel, &["remote", "get-url", "origin"]),
        }
    }

    /// Starts `git bundle create -` for what the host lacks:
    /// `<remote head>..<branch>` if this repository knows the remote head,
    /// else the whole branch; the bundle streams from the child's stdout
    /// (never held in memory). `None` when the host is at the commit.
    pub fn bundle(&self, remote_head: Option<&str>) -> Result<Option<std::process::Child>, String> {
        if remote_head == Some(self.head.as_str()) {
            return Ok(None);
        }
        let range = match remote_head {
            Some(h)
                if git(
                    &self.toplevel,
                    &["merge-base", "--is-ancestor", h, &self.branch],
                )
                .is_ok() =>
            {
                format!("{h}..{}", self.branch)
            }
            _ => self.branch.clone(),
        };
        Command::new("git")
            .args(["bundle", "create", "-q", "-", &range])
            .current_dir(&self.toplevel)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map(Some)
            .map_err(|e| format!("cannot run git bundle: {e}"))
    }
}

/// Agent side: the git repository at `root` (created if needed) and its
/// HEAD commit, if any.
pub fn remote_head(root: &Path) -> Result<Option<String>, String> {
    std::fs::create_dir_all(root).map_err(|e| format!("cannot create {}: {e}", root.display()))?;
    if !root.join(".git").exists() {
        git(root, &["init", "-q"])?;
    }
    Ok(git(root, &["rev-parse", "--verify", "-q", "HEAD"]).ok())
}

/// Agent side: fetch `branch` from a bundle file or a URL and move the
/// working copy to it (`git reset --hard`; untracked state such as `work/`
/// stays). Returns the new HEAD.
pub fn update(root: &Path, source: &str, branch: &str) -> Result<String, String> {
    // The source may belong to another user (a shared bare repository).
    git(
        root,
        &[
            "-c",
            "safe.directory=*",
            "fetch",
            "-q",
            source,
            &format!("+{branch}:refs/batou/{branch}"),
        ],
    )?;
    git(
        root,
        &["reset", "-q", "--hard", &format!("refs/batou/{branch}")],
    )?;
    git(root, &["rev-parse", "HEAD"])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        for args in [
            &["init", "-q", "-b", "main"][..],
            &["config", "user.email", "t@example.com"],
            &["config", "user.name", "t"],
        ] {
            git(d.path(), args).unwrap();
        }
        std::fs::write(d.path().join("a"), "1").unwrap();
        git(d.path(), &["add", "a"]).unwrap();
        git(d.path(), &["commit", "-q", "-m", "one"]).unwrap();
        d
    }

    #[test]
    fn verify_refuses_dirty_and_wrong_branch() {
        let d = repo();
        let ok = LocalGit::verify(d.path(), None, false, false).unwrap();
        assert_eq!(ok.branch, "main");
        std::fs::write(d.path().join("a"), "2").unwrap();
        let e = LocalGit::verify(d.path(), None, false, false).unwrap_err();
        assert_eq!(e.title, "Your repository has uncommitted changes.");
        assert!(LocalGit::verify(d.path(), None, false, true).is_ok(), "-D");
        let e = LocalGit::verify(d.path(), Some("production"), false, true).unwrap_err();
        assert_eq!(
            e.title,
            "You are on branch main, but the environment deploys branch production."
        );
    }

    #[test]
    fn bundles_move_a_remote_copy_to_the_commit() {
        let d = repo();
        let local = LocalGit::verify(d.path(), None, false, false).unwrap();
        let remote = tempfile::tempdir().unwrap();
        assert_eq!(remote_head(remote.path()).unwrap(), None);
        let bundle = local
            .bundle(None)
            .unwrap()
            .unwrap()
            .wait_with_output()
            .unwrap()
            .stdout;
        std::fs::write(remote.path().join(".batou-bundle"), bundle).unwrap();
        let head = update(remote.path(), ".batou-bundle", "main").unwrap();
        assert_eq!(head, local.head);
        assert_eq!(
            std::fs::read_to_string(remote.path().join("a")).unwrap(),
            "1"
        );
        assert!(
            local.bundle(Some(&head)).unwrap().is_none(),
            "nothing to ship"
        );
        // An incremental bundle for the next commit.
        std::fs::write(d.path().join("a"), "2").unwrap();
        git(d.path(), &["commit", "-q", "-am", "two"]).unwrap();
        let local = LocalGit::verify(d.path(), None, false, false).unwrap();
        let bundle = local
            .bundle(Some(&head))
            .unwrap()
            .unwrap()
            .wait_with_output()
            .unwrap()
            .stdout;
        std::fs::write(remote.path().join(".batou-bundle"), bundle).unwrap();
        assert_eq!(
            update(remote.path(), ".batou-bundle", "main").unwrap(),
            local.head
        );
    }
}
