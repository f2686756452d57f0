//! Shipping the project with version control (`update_method`
//! `git-bundle`, `git-pull`, `hg-bundle`, `hg-pull`): the controller
//! verifies its working copy (clean, on the configured branch, pushed for
//! the pull methods), the host's copy is a repository under the target
//! directory that is moved to exactly the controller's commit — or the
//! deployment fails with a repository-differs error.

use std::io::Read;
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

/// Which version control system.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Vcs {
    /// git
    Git,
    /// Mercurial
    Hg,
}

fn hg(dir: &Path, args: &[&str]) -> Result<String, String> {
    run("hg", dir, args)
}

fn git(dir: &Path, args: &[&str]) -> Result<String, String> {
    run("git", dir, args)
}

fn run(tool: &str, dir: &Path, args: &[&str]) -> Result<String, String> {
    let out = Command::new(tool)
        .env("HGPLAIN", "1")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {tool}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim_end().to_string())
    } else {
        Err(format!(
            "{tool} {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// The controller's repository of a project.
#[derive(Debug, Clone)]
pub struct LocalRepo {
    /// git or Mercurial.
    pub vcs: Vcs,
    /// Top level of the repository.
    pub toplevel: PathBuf,
    /// The project directory relative to the top level ("" if the same).
    pub subdir: PathBuf,
    /// The branch shipped.
    pub branch: String,
    /// The branch checked out (another one only with `-D`).
    pub checked_out: String,
    /// Its commit.
    pub head: String,
}

/// A refusal listing what is in the way, with batou's hint.
fn refusal(title: String, listing: &str) -> RepositoryError {
    RepositoryError {
        title,
        details: listing
            .lines()
            .map(|l| format!("    {l}"))
            .chain(std::iter::once(
                "I am refusing to deploy in this situation as the results are unpredictable. Use -D to override."
                    .to_string(),
            ))
            .collect(),
    }
}

impl Vcs {
    /// batou's branch when the environment names none.
    pub fn default_branch(self) -> &'static str {
        match self {
            Vcs::Git => "master",
            Vcs::Hg => "default",
        }
    }
}

impl LocalRepo {
    /// Verifies the working copy for shipping `branch` (default as in
    /// batou: `master` for git, `default` for Mercurial): it must be on
    /// that branch, clean, and for the pull methods pushed to the default
    /// remote — unless `dirty` (`-D`), which ships the branch's last commit
    /// from any state.
    pub fn verify(
        vcs: Vcs,
        project_root: &Path,
        branch: Option<&str>,
        pull: bool,
        dirty: bool,
    ) -> Result<LocalRepo, RepositoryError> {
        let err = |title: String| RepositoryError {
            title,
            details: Vec::new(),
        };
        let q = |args: &[&str]| match vcs {
            Vcs::Git => git(project_root, args),
            Vcs::Hg => hg(project_root, args),
        };
        let (toplevel, current) = match vcs {
            Vcs::Git => (
                q(&["rev-parse", "--show-toplevel"]),
                q(&["rev-parse", "--abbrev-ref", "HEAD"]),
            ),
            Vcs::Hg => (q(&["root"]), q(&["branch"])),
        };
        let toplevel = toplevel.map(PathBuf::from).map_err(|e| {
            let name = match vcs {
                Vcs::Git => "git",
                Vcs::Hg => "Mercurial",
            };
            err(format!("The project is not a {name} repository: {e}"))
        })?;
        let current = current.map_err(err)?;
        let (branch, defaulted) = match branch {
            Some(b) => (b.to_string(), false),
            None => (vcs.default_branch().to_string(), true),
        };
        let hint = |mut e: RepositoryError| {
            if defaulted {
                e.details.push(format!(
                    "batou deploys {branch} when [environment] sets no `branch`: set `branch = {current}` to deploy {current}."
                ));
            }
            e
        };
        if current != branch && !dirty {
            return Err(hint(err(format!(
                "You are on branch {current}, but the environment deploys branch {branch}."
            ))));
        }
        if !dirty {
            let status = match vcs {
                Vcs::Git => q(&["status", "--porcelain"]),
                Vcs::Hg => q(&["status"]),
            }
            .map_err(err)?;
            if !status.is_empty() {
                return Err(refusal(
                    "Your repository has uncommitted changes.".into(),
                    &status,
                ));
            }
            if pull {
                let outgoing = match vcs {
                    Vcs::Git => q(&["log", "--oneline", &format!("origin/{branch}..{branch}")])
                        .map_err(|e| err(format!("Cannot compare with origin/{branch}: {e}")))?,
                    // `hg outgoing` exits 1 when there is nothing outgoing.
                    Vcs::Hg => q(&["-q", "outgoing", "-b", &branch]).unwrap_or_default(),
                };
                if !outgoing.trim().is_empty() {
                    return Err(refusal(
                        format!("Your repository has outgoing changes on branch {branch}:"),
                        &outgoing,
                    ));
                }
            }
        }
        let head = match vcs {
            Vcs::Git => q(&[
                "rev-parse",
                "--verify",
                "-q",
                &format!("refs/heads/{branch}"),
            ]),
            Vcs::Hg => q(&["log", "-r", &branch, "-T", "{node}"]),
        }
        .ok()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| hint(err(format!("The repository has no branch {branch}."))))?;
        let canonical = |p: &Path| p.canonicalize().unwrap_or_else(|_| p.to_path_buf());
        let subdir = canonical(project_root)
            .strip_prefix(canonical(&toplevel))
            .map(Path::to_path_buf)
            .unwrap_or_default();
        Ok(LocalRepo {
            vcs,
            toplevel,
            subdir,
            branch,
            checked_out: current,
            head,
        })
    }

    /// The URL `git-pull` hosts fetch from: `repository_url`, else
    /// origin's.
    pub fn pull_url(&self, configured: Option<&str>) -> Result<String, String> {
        match (configured, self.vcs) {
            (Some(u), _) => Ok(u.to_string()),
            (None, Vcs::Git) => git(&self.toplevel, &["remote", "get-url", "origin"]),
            (None, Vcs::Hg) => hg(&self.toplevel, &["paths", "default"]),
        }
    }

    /// A bundle of what the host lacks: `<remote head>..<branch>` if this
    /// repository knows the remote head, else the whole branch. It is read
    /// as a stream (git's stdout; Mercurial's bundle file, removed when
    /// dropped), never held in memory. `None` when the host is at the
    /// commit.
    pub fn bundle(&self, remote_head: Option<&str>) -> Result<Option<Bundle>, String> {
        if remote_head == Some(self.head.as_str()) {
            return Ok(None);
        }
        let (tool, args): (&str, Vec<String>) = match self.vcs {
            Vcs::Git => {
                let ancestor = remote_head.is_some_and(|h| {
                    git(
                        &self.toplevel,
                        &["merge-base", "--is-ancestor", h, &self.branch],
                    )
                    .is_ok()
                });
                let range = match remote_head {
                    Some(h) if ancestor => format!("{h}..{}", self.branch),
                    _ => self.branch.clone(),
                };
                (
                    "git",
                    ["bundle", "create", "-q", "-", &range]
                        .map(String::from)
                        .to_vec(),
                )
            }
            Vcs::Hg => {
                let known = remote_head
                    .filter(|h| hg(&self.toplevel, &["log", "-r", h, "-T", "x"]).is_ok());
                // `hg bundle` writes a file, not stdout.
                static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
                let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                // In a private directory: the bundle is the repository.
                let dir = std::env::temp_dir().join(format!("batou-{}-{n}", std::process::id()));
                {
                    use std::os::unix::fs::DirBuilderExt;
                    std::fs::DirBuilder::new()
                        .mode(0o700)
                        .create(&dir)
                        .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
                }
                let file = dir.join("bundle.hg");
                let mut a = vec![
                    "bundle".to_string(),
                    "-q".into(),
                    "-r".into(),
                    self.branch.clone(),
                ];
                match known {
                    Some(h) => a.extend(["--base".to_string(), h.to_string()]),
                    None => a.push("--all".into()),
                }
                a.push(file.to_string_lossy().into_owned());
                let args: Vec<&str> = a.iter().map(String::as_str).collect();
                match hg(&self.toplevel, &args) {
                    Ok(_) => {}
                    // Exit 1: no changes to bundle.
                    Err(e) if e.contains("no changes found") => return Ok(None),
                    Err(e) => return Err(e),
                }
                let reader = std::fs::File::open(&file)
                    .map_err(|e| format!("cannot read the bundle: {e}"))?;
                return Ok(Some(Bundle {
                    reader: Box::new(reader),
                    child: None,
                    file: Some(file),
                }));
            }
        };
        let mut child = Command::new(tool)
            .args(&args)
            .current_dir(&self.toplevel)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot run {tool} bundle: {e}"))?;
        let stdout = child.stdout.take().ok_or("git bundle has no stdout")?;
        Ok(Some(Bundle {
            reader: Box::new(stdout),
            child: Some(child),
            file: None,
        }))
    }
}

/// A bundle being read.
pub struct Bundle {
    /// The bundle's bytes.
    pub reader: Box<dyn std::io::Read + Send>,
    child: Option<std::process::Child>,
    file: Option<PathBuf>,
}

impl Bundle {
    /// After reading: whether making the bundle succeeded.
    pub fn finish(mut self) -> Result<(), String> {
        if let Some(child) = self.child.take() {
            let out = child
                .wait_with_output()
                .map_err(|e| format!("bundle: {e}"))?;
            if !out.status.success() {
                return Err(format!(
                    "creating the bundle failed: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                ));
            }
        }
        Ok(())
    }

    /// Reads the whole bundle (tests).
    pub fn into_bytes(mut self) -> Result<Vec<u8>, String> {
        let mut data = Vec::new();
        self.reader
            .read_to_end(&mut data)
            .map_err(|e| e.to_string())?;
        self.finish()?;
        Ok(data)
    }
}

impl Drop for Bundle {
    fn drop(&mut self) {
        if let Some(f) = &self.file {
            let _ = std::fs::remove_file(f);
            if let Some(dir) = f.parent() {
                let _ = std::fs::remove_dir(dir);
            }
        }
    }
}

/// Agent side: the repository at `root` (created if needed) and its
/// current commit, if any.
pub fn remote_head(vcs: Vcs, root: &Path) -> Result<Option<String>, String> {
    let marker = match vcs {
        Vcs::Git => ".git",
        Vcs::Hg => ".hg",
    };
    // A directory that is not our repository yet must hold nothing else:
    // a checkout would replace what batou did not make.
    if !root.join(marker).exists() {
        crate::shipping::check_owned(root).map_err(|e| e.to_string())?;
    }
    std::fs::create_dir_all(root).map_err(|e| format!("cannot create {}: {e}", root.display()))?;
    match vcs {
        Vcs::Git => {
            if !root.join(".git").exists() {
                git(root, &["init", "-q"])?;
            }
            Ok(git(root, &["rev-parse", "--verify", "-q", "HEAD"]).ok())
        }
        Vcs::Hg => {
            if !root.join(".hg").exists() {
                hg(root, &["init"])?;
            }
            let node = hg(root, &["log", "-r", ".", "-T", "{node}"])?;
            Ok(Some(node).filter(|n| !n.chars().all(|c| c == '0')))
        }
    }
}

/// Agent side: bring `branch` from a bundle file or a URL and move the
/// working copy to it (untracked state such as `work/` stays). Returns the
/// new commit.
pub fn update(vcs: Vcs, root: &Path, source: &str, branch: &str) -> Result<String, String> {
    match vcs {
        Vcs::Git => update_git(root, source, branch),
        Vcs::Hg => {
            if Path::new(source).is_file() {
                hg(root, &["unbundle", "-q", source])?;
            } else {
                hg(root, &["--config", "trusted.users=*", "pull", "-q", source])?;
            }
            hg(root, &["update", "-q", "-C", branch])?;
            hg(root, &["log", "-r", ".", "-T", "{node}"])
        }
    }
}

fn update_git(root: &Path, source: &str, branch: &str) -> Result<String, String> {
    // The source may belong to another user (a shared bare repository).
    // git runs upload-pack for a local source with the `-c` settings and
    // GIT_CONFIG_* removed from its environment, so `safe.directory` has to
    // come from a global configuration: a private one that includes the
    // user's own.
    let config = pull_config(root)?;
    let out = Command::new("git")
        .current_dir(root)
        .env("GIT_CONFIG_GLOBAL", &config)
        .args(["fetch", "-q", source])
        .arg(format!("+{branch}:refs/batou/{branch}"))
        .output()
        .map_err(|e| format!("cannot run git: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "git fetch {source} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    git(
        root,
        &["reset", "-q", "--hard", &format!("refs/batou/{branch}")],
    )?;
    git(root, &["rev-parse", "HEAD"])
}

/// `<root>/.batou/gitconfig`: the user's global git configuration plus
/// `safe.directory = *`, for fetching from a repository of another user.
fn pull_config(root: &Path) -> Result<std::path::PathBuf, String> {
    let dir = root.join(".batou");
    crate::safe_fs::private_dir(&dir)
        .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let mut text = String::new();
    let user_config = std::env::var_os("GIT_CONFIG_GLOBAL")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".gitconfig")));
    if let Some(user) = user_config.filter(|p| p.is_file()) {
        text.push_str(&format!("[include]\n\tpath = {}\n", quote_config(&user)));
    }
    text.push_str("[safe]\n\tdirectory = *\n");
    let path = dir.join("gitconfig");
    crate::safe_fs::write_atomic(&path, text.as_bytes(), 0o600)
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(path)
}

/// A path as a git configuration value (quoted, `\` and `"` escaped).
fn quote_config(path: &Path) -> String {
    let s = path.to_string_lossy();
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
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
        let ok = LocalRepo::verify(Vcs::Git, d.path(), Some("main"), false, false).unwrap();
        assert_eq!(ok.branch, "main");
        std::fs::write(d.path().join("a"), "2").unwrap();
        let e = LocalRepo::verify(Vcs::Git, d.path(), Some("main"), false, false).unwrap_err();
        assert_eq!(e.title, "Your repository has uncommitted changes.");
        assert!(
            LocalRepo::verify(Vcs::Git, d.path(), Some("main"), false, true).is_ok(),
            "-D"
        );
        let e =
            LocalRepo::verify(Vcs::Git, d.path(), Some("production"), false, false).unwrap_err();
        assert_eq!(
            e.title,
            "You are on branch main, but the environment deploys branch production."
        );
        assert!(e.details.is_empty());
        // -D ships the named branch's commit from another checkout.
        git(d.path(), &["checkout", "-q", "-b", "production"]).unwrap();
        git(d.path(), &["checkout", "-q", "main"]).unwrap();
        let ok = LocalRepo::verify(Vcs::Git, d.path(), Some("production"), false, true).unwrap();
        assert_eq!(
            (ok.branch.as_str(), ok.checked_out.as_str()),
            ("production", "main")
        );
        let e = LocalRepo::verify(Vcs::Git, d.path(), Some("staging"), false, true).unwrap_err();
        assert_eq!(e.title, "The repository has no branch staging.");
        // Without `branch`, batou's default.
        let e = LocalRepo::verify(Vcs::Git, d.path(), None, false, false).unwrap_err();
        assert_eq!(
            e.title,
            "You are on branch main, but the environment deploys branch master."
        );
        assert_eq!(
            e.details,
            ["batou deploys master when [environment] sets no `branch`: set `branch = main` to deploy main."]
        );
    }

    #[test]
    fn a_foreign_directory_is_not_turned_into_a_checkout() {
        let home = tempfile::tempdir().unwrap();
        std::fs::write(home.path().join(".profile"), "x").unwrap();
        for vcs in [Vcs::Git, Vcs::Hg] {
            let err = remote_head(vcs, home.path()).unwrap_err();
            assert!(err.starts_with("refusing to deploy into"), "{err}");
        }
        assert!(!home.path().join(".git").exists());
        assert!(!home.path().join(".hg").exists());
    }

    #[test]
    fn bundles_move_a_remote_copy_to_the_commit() {
        let d = repo();
        let local = LocalRepo::verify(Vcs::Git, d.path(), Some("main"), false, false).unwrap();
        let remote = tempfile::tempdir().unwrap();
        assert_eq!(remote_head(Vcs::Git, remote.path()).unwrap(), None);
        let bundle = local.bundle(None).unwrap().unwrap().into_bytes().unwrap();
        std::fs::write(remote.path().join(".batou-bundle"), bundle).unwrap();
        let head = update(Vcs::Git, remote.path(), ".batou-bundle", "main").unwrap();
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
        let local = LocalRepo::verify(Vcs::Git, d.path(), Some("main"), false, false).unwrap();
        let bundle = local
            .bundle(Some(&head))
            .unwrap()
            .unwrap()
            .into_bytes()
            .unwrap();
        std::fs::write(remote.path().join(".batou-bundle"), bundle).unwrap();
        assert_eq!(
            update(Vcs::Git, remote.path(), ".batou-bundle", "main").unwrap(),
            local.head
        );
    }
}

#[cfg(test)]
mod hg_tests {
    use super::*;

    #[test]
    fn mercurial_bundles_and_checks() {
        let d = tempfile::tempdir().unwrap();
        hg(d.path(), &["init"]).unwrap();
        std::fs::write(d.path().join("a"), "1").unwrap();
        hg(d.path(), &["add", "a"]).unwrap();
        hg(d.path(), &["commit", "-q", "-u", "t", "-m", "one"]).unwrap();
        let local = LocalRepo::verify(Vcs::Hg, d.path(), None, false, false).unwrap();
        assert_eq!(local.branch, "default");
        std::fs::write(d.path().join("a"), "2").unwrap();
        let e = LocalRepo::verify(Vcs::Hg, d.path(), None, false, false).unwrap_err();
        assert_eq!(e.title, "Your repository has uncommitted changes.");
        hg(d.path(), &["commit", "-q", "-u", "t", "-m", "two"]).unwrap();
        let local = LocalRepo::verify(Vcs::Hg, d.path(), None, false, false).unwrap();

        let remote = tempfile::tempdir().unwrap();
        assert_eq!(remote_head(Vcs::Hg, remote.path()).unwrap(), None);
        let bundle = local.bundle(None).unwrap().unwrap().into_bytes().unwrap();
        let file = remote.path().join(".batou-bundle");
        std::fs::write(&file, bundle).unwrap();
        let head = update(Vcs::Hg, remote.path(), file.to_str().unwrap(), "default").unwrap();
        assert_eq!(head, local.head);
        assert_eq!(
            std::fs::read_to_string(remote.path().join("a")).unwrap(),
            "2"
        );
        assert!(local.bundle(Some(&head)).unwrap().is_none());
    }
}
