//! mercurial::Clone against real repositories made by the real hg.

mod common;

use batou::testing::TestRoot;
use batou_stdlib::mercurial::Clone;
use common::text;
use std::path::{Path, PathBuf};
use std::process::Command;

fn hg(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("hg")
        .args(["--config", "ui.username=Test <test@example.com>"])
        .args(args)
        .current_dir(dir)
        .env("HGPLAIN", "1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "hg {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn commit(repo: &Path, file: &str, text: &str) -> String {
    std::fs::write(repo.join(file), text).unwrap();
    hg(repo, &["add", "-q", file]);
    hg(repo, &["commit", "-q", "-m", text]);
    hg(repo, &["log", "-r", ".", "-T", "{node}"])
}

/// a.txt "1" (tag v1 in a later changeset), then "2" on default; a named
/// branch `stable` with b.txt.
fn upstream(dir: &Path) -> (PathBuf, String) {
    let repo = dir.join("upstream");
    std::fs::create_dir_all(&repo).unwrap();
    hg(&repo, &["init"]);
    let first = commit(&repo, "a.txt", "1");
    hg(&repo, &["tag", "-r", &first, "v1"]);
    commit(&repo, "a.txt", "2");
    hg(&repo, &["branch", "-q", "stable"]);
    commit(&repo, "b.txt", "stable");
    hg(&repo, &["update", "-q", "default"]);
    (repo, first)
}

fn read(path: PathBuf) -> String {
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn branches_tags_and_revisions_converge() {
    let dir = tempfile::tempdir().unwrap();
    let (repo, first) = upstream(dir.path());
    let url = repo.display().to_string();
    let work = dir.path().join("work/hg_clone/src");
    let mut root = TestRoot::new(dir.path());
    root.configure(Clone::new(url.clone()).target("src").branch("default"))
        .unwrap();
    assert!(root.predict().unwrap());
    assert!(!work.join(".hg").exists(), "-P clones nothing");
    assert!(root.deploy().unwrap());
    assert_eq!(read(work.join("a.txt")), "2");
    assert!(!root.deploy().unwrap(), "converged");
    commit(&repo, "a.txt", "3");
    assert!(root.deploy().unwrap(), "incoming changesets are pulled");
    assert_eq!(read(work.join("a.txt")), "3");
    assert!(!root.deploy().unwrap());

    for (clone, file, content) in [
        (
            Clone::new(url.clone()).target("src").branch("stable"),
            "b.txt",
            "stable",
        ),
        (
            Clone::new(url.clone()).target("src").tag("v1"),
            "a.txt",
            "1",
        ),
        (
            Clone::new(url.clone())
                .target("src")
                .revision(first.clone()),
            "a.txt",
            "1",
        ),
        (
            Clone::new(url.clone())
                .target("src")
                .revision(first[..12].to_string()),
            "a.txt",
            "1",
        ),
    ] {
        let mut root = TestRoot::new(dir.path());
        root.configure(clone).unwrap();
        root.deploy().unwrap();
        assert_eq!(read(work.join(file)), content);
        assert!(!root.deploy().unwrap(), "converged at {file}={content}");
    }
}

#[test]
fn dirty_clones_other_origins_and_bad_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let (repo, _) = upstream(dir.path());
    let url = repo.display().to_string();
    let work = dir.path().join("work/hg_clone");
    let mut root = TestRoot::new(dir.path());
    root.configure(Clone::new(url.clone()).branch("default"))
        .unwrap();
    assert!(root.deploy().unwrap());
    std::fs::write(work.join("a.txt"), "local").unwrap();
    std::fs::write(work.join("new.txt"), "untracked").unwrap();
    let out = text(&root.deploy().unwrap_err());
    assert!(
        out.contains(&format!(
            "Hg clone at {} is dirty - refusing to clobber.",
            work.display()
        )),
        "{out}"
    );
    assert_eq!(read(work.join("a.txt")), "local");

    let mut root = TestRoot::new(dir.path());
    root.configure(Clone::new(url.clone()).branch("default").clobber(true))
        .unwrap();
    assert!(root.deploy().unwrap());
    assert_eq!(read(work.join("a.txt")), "2");
    assert!(!work.join("new.txt").exists(), "untracked files purged");

    // vcs_update = false leaves it.
    commit(&repo, "a.txt", "3");
    let mut root = TestRoot::new(dir.path());
    root.configure(Clone::new(url.clone()).branch("default").vcs_update(false))
        .unwrap();
    assert!(!root.deploy().unwrap());
    assert_eq!(read(work.join("a.txt")), "2");

    // Another URL: the clean clone is replaced.
    let mirror = dir.path().join("mirror");
    hg(
        dir.path(),
        &["clone", "-q", &url, &mirror.display().to_string()],
    );
    let mut root = TestRoot::new(dir.path());
    root.configure(Clone::new(mirror.display().to_string()).branch("default"))
        .unwrap();
    assert!(root.deploy().unwrap());
    assert_eq!(
        hg(&work, &["paths", "default"]),
        mirror.display().to_string()
    );

    for (clone, message) in [
        (
            Clone::new(url.clone()),
            "needs exactly one of revision, branch or tag",
        ),
        (
            Clone::new(url.clone()).branch("default").revision("1"),
            "needs exactly one of revision, branch or tag",
        ),
        (
            Clone::new(url.clone()).revision("all()"),
            "invalid revision \"all()\"",
        ),
    ] {
        let mut root = TestRoot::new(dir.path());
        let reports = root.configure(clone).unwrap_err();
        assert!(reports[0].title.contains(message), "{:?}", reports[0]);
    }
}
