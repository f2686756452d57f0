//! git::Clone against real repositories made by the real git.

mod common;

use batou::testing::TestRoot;
use batou_stdlib::git::GitClone;
use common::text;
use std::path::{Path, PathBuf};
use std::process::Command;

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(["-c", "user.name=Test", "-c", "user.email=test@example.com"])
        .args([
            "-c",
            "protocol.file.allow=always",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn commit(repo: &Path, file: &str, text: &str) -> String {
    std::fs::write(repo.join(file), text).unwrap();
    git(repo, &["add", file]);
    git(repo, &["commit", "-q", "-m", text]);
    git(repo, &["rev-parse", "HEAD"])
}

/// An upstream repository: a.txt "1" (tag v1), then "2" on main; a
/// branch `feature` with b.txt.
fn upstream(dir: &Path) -> (PathBuf, String) {
    // Submodules from local paths need the file protocol allowed.
    std::env::set_var("GIT_CONFIG_COUNT", "1");
    std::env::set_var("GIT_CONFIG_KEY_0", "protocol.file.allow");
    std::env::set_var("GIT_CONFIG_VALUE_0", "always");
    let repo = dir.join("upstream");
    std::fs::create_dir_all(&repo).unwrap();
    git(&repo, &["init", "-q"]);
    let first = commit(&repo, "a.txt", "1");
    git(&repo, &["tag", "v1"]);
    commit(&repo, "a.txt", "2");
    git(&repo, &["checkout", "-q", "-b", "feature"]);
    commit(&repo, "b.txt", "feature");
    git(&repo, &["checkout", "-q", "main"]);
    (repo, first)
}

fn url(repo: &Path) -> String {
    repo.display().to_string()
}

fn read(path: PathBuf) -> String {
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn a_branch_is_followed_and_converges() {
    let dir = tempfile::tempdir().unwrap();
    let (repo, _) = upstream(dir.path());
    let work = dir.path().join("work/git_clone/src");
    let mut root = TestRoot::new(dir.path());
    root.configure(GitClone::new(url(&repo)).target("src").branch("main"))
        .unwrap();
    assert!(root.predict().unwrap());
    assert!(!work.join(".git").exists(), "-P clones nothing");
    assert!(root.deploy().unwrap());
    assert_eq!(read(work.join("a.txt")), "2");
    assert!(!root.deploy().unwrap(), "converged");

    // A new upstream commit is fetched and checked out.
    commit(&repo, "a.txt", "3");
    assert!(root.deploy().unwrap());
    assert_eq!(read(work.join("a.txt")), "3");
    assert!(!root.deploy().unwrap());

    // Another branch: switched to it.
    let mut root = TestRoot::new(dir.path());
    root.configure(GitClone::new(url(&repo)).target("src").branch("feature"))
        .unwrap();
    assert!(root.deploy().unwrap());
    assert_eq!(read(work.join("b.txt")), "feature");
    assert_eq!(
        git(&work, &["rev-parse", "--abbrev-ref", "HEAD"]),
        "feature"
    );
    assert!(!root.deploy().unwrap());
}

#[test]
fn tags_and_revisions_are_checked_out() {
    let dir = tempfile::tempdir().unwrap();
    let (repo, first) = upstream(dir.path());
    let work = dir.path().join("work/git_clone");
    let mut root = TestRoot::new(dir.path());
    root.configure(GitClone::new(url(&repo)).tag("v1")).unwrap();
    assert!(root.deploy().unwrap());
    assert_eq!(read(work.join("a.txt")), "1");
    assert!(!root.deploy().unwrap());

    let main = git(&repo, &["rev-parse", "main"]);
    let mut root = TestRoot::new(dir.path());
    root.configure(GitClone::new(url(&repo)).revision(main))
        .unwrap();
    assert!(root.deploy().unwrap());
    assert_eq!(read(work.join("a.txt")), "2");
    let mut root = TestRoot::new(dir.path());
    root.configure(GitClone::new(url(&repo)).revision(first.clone()))
        .unwrap();
    assert!(root.deploy().unwrap());
    assert_eq!(read(work.join("a.txt")), "1");
    assert!(!root.deploy().unwrap());
}

#[test]
fn a_dirty_working_copy_is_refused_unless_clobber() {
    let dir = tempfile::tempdir().unwrap();
    let (repo, _) = upstream(dir.path());
    let work = dir.path().join("work/git_clone");
    let mut root = TestRoot::new(dir.path());
    root.configure(GitClone::new(url(&repo)).branch("main"))
        .unwrap();
    assert!(root.deploy().unwrap());

    std::fs::write(work.join("a.txt"), "local change").unwrap();
    std::fs::write(work.join("untracked.txt"), "mine").unwrap();
    let out = text(&root.deploy().unwrap_err());
    assert!(
        out.contains(&format!(
            "Git clone at {} is dirty - refusing to clobber. Use `clobber = true` if this is intentional.",
            work.display()
        )),
        "{out}"
    );
    assert_eq!(read(work.join("a.txt")), "local change", "untouched");

    let mut root = TestRoot::new(dir.path());
    root.configure(GitClone::new(url(&repo)).branch("main").clobber(true))
        .unwrap();
    assert!(root.deploy().unwrap());
    assert_eq!(read(work.join("a.txt")), "2");
    assert!(
        !work.join("untracked.txt").exists(),
        "untracked files removed"
    );
    assert!(
        root.take_output()
            .iter()
            .any(|l| l.contains("is dirty, going to lose changes")),
        "announced"
    );
}

#[test]
fn vcs_update_false_leaves_an_existing_clone() {
    let dir = tempfile::tempdir().unwrap();
    let (repo, _) = upstream(dir.path());
    let work = dir.path().join("work/git_clone");
    let mut root = TestRoot::new(dir.path());
    root.configure(GitClone::new(url(&repo)).branch("main").vcs_update(false))
        .unwrap();
    assert!(root.deploy().unwrap());
    commit(&repo, "a.txt", "3");
    assert!(!root.deploy().unwrap());
    assert_eq!(read(work.join("a.txt")), "2");
}

#[test]
fn foreign_content_another_origin_and_bad_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let (repo, _) = upstream(dir.path());
    let work = dir.path().join("work/git_clone");
    std::fs::create_dir_all(work.join("site")).unwrap();
    std::fs::write(work.join("site/index.html"), "not ours").unwrap();
    let mut root = TestRoot::new(dir.path());
    root.configure(GitClone::new(url(&repo)).target("site").branch("main"))
        .unwrap();
    let out = text(&root.deploy().unwrap_err());
    assert!(
        out.contains(&format!(
            "Refusing to check out {} into {}: it exists and is not a working copy",
            url(&repo),
            work.join("site").display()
        )),
        "{out}"
    );
    assert_eq!(read(work.join("site/index.html")), "not ours");

    // A clean clone of another URL is replaced by a clone of the right one.
    let other = dir.path().join("other");
    git(
        dir.path(),
        &["clone", "-q", &url(&repo), &other.display().to_string()],
    );
    let mirror = dir.path().join("mirror.git");
    git(
        dir.path(),
        &[
            "clone",
            "-q",
            "--bare",
            &url(&repo),
            &mirror.display().to_string(),
        ],
    );
    let mut root = TestRoot::new(dir.path());
    root.configure(GitClone::new(url(&repo)).target("code").branch("main"))
        .unwrap();
    assert!(root.deploy().unwrap());
    let mut root = TestRoot::new(dir.path());
    root.configure(GitClone::new(url(&mirror)).target("code").branch("main"))
        .unwrap();
    assert!(root.deploy().unwrap());
    assert_eq!(
        git(&work.join("code"), &["remote", "get-url", "origin"]),
        url(&mirror)
    );

    for (clone, message) in [
        (
            GitClone::new(url(&repo)).branch("main").tag("v1"),
            "needs exactly one of revision, branch or tag",
        ),
        (
            GitClone::new(url(&repo)),
            "needs exactly one of revision, branch or tag",
        ),
        (
            GitClone::new(url(&repo)).branch("--upload-pack=touch /tmp/x"),
            "invalid branch \"--upload-pack=touch /tmp/x\"",
        ),
        (
            GitClone::new("--evil").branch("main"),
            "Clone: invalid URL \"--evil\"",
        ),
    ] {
        let mut root = TestRoot::new(dir.path());
        let reports = root.configure(clone).unwrap_err();
        assert!(reports[0].title.contains(message), "{:?}", reports[0]);
    }
}

#[test]
fn submodules_are_checked_out() {
    let dir = tempfile::tempdir().unwrap();
    let (repo, _) = upstream(dir.path());
    let lib = dir.path().join("lib");
    std::fs::create_dir_all(&lib).unwrap();
    git(&lib, &["init", "-q"]);
    commit(&lib, "lib.txt", "library");
    git(&repo, &["submodule", "add", "-q", &url(&lib), "vendor/lib"]);
    git(&repo, &["commit", "-q", "-m", "submodule"]);
    let mut root = TestRoot::new(dir.path());
    root.configure(GitClone::new(url(&repo)).branch("main"))
        .unwrap();
    assert!(root.deploy().unwrap());
    assert_eq!(
        read(dir.path().join("work/git_clone/vendor/lib/lib.txt")),
        "library"
    );
    assert!(!root.deploy().unwrap());
}
