//! Shipping the project with git over SSH: git-bundle refuses a dirty
//! working copy and deploys a clean branch incrementally; a host that ends
//! on another commit (git-pull from an origin that lacks the local commit)
//! fails with the repository-differs error.

use batou_tests::sshd::SshLab;
use batou_tests::*;
use std::process::Command;

fn git(dir: &std::path::Path, args: &[&str]) -> String {
    let out = Command::new("git")
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

fn remote_head(repo: &std::path::Path) -> String {
    git(repo, &["-c", "safe.directory=*", "rev-parse", "HEAD"])
}

#[test]
fn git_bundle_and_git_pull() {
    let Some(lab) = SshLab::for_test(&["g1"]) else {
        return;
    };
    let p = Project::generate("git-ship");
    p.write("ssh_config", &lab.ssh_config());
    p.write(
        "environments/bundle/environment.cfg",
        "[environment]\nconnect_method = ssh\nupdate_method = git-bundle\nbranch = main\n\n[hosts]\ng1 = tick\n",
    );
    p.write(
        "environments/pull/environment.cfg",
        "[environment]\nconnect_method = ssh\nupdate_method = git-pull\nbranch = main\ntarget_directory = ~/pulled\n\n[hosts]\ng1 = tick\n",
    );
    p.build_ok();
    git(&p.path, &["init", "-q", "-b", "main"]);
    git(&p.path, &["config", "user.email", "test@example.com"]);
    git(&p.path, &["config", "user.name", "test"]);
    git(&p.path, &["add", "-A"]);
    git(&p.path, &["commit", "-q", "-m", "start a batou project"]);

    // A dirty working copy is refused before anything happens.
    p.write(
        "components/tick/tick.sh",
        &p.read("components/tick/tick.sh").replace("date", "date -u"),
    );
    let out = p.batou(&["deploy", "bundle"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("ERROR: Your repository has uncommitted changes."),
        "{text}"
    );
    assert!(text.contains("Use -D to override."), "{text}");
    assert!(text.contains("DEPLOYMENT FAILED (during load)"), "{text}");
    assert!(!lab.hosts[0].path("deployment").exists());

    // Committed, it deploys; the host's copy is at the local commit.
    git(&p.path, &["commit", "-q", "-am", "utc"]);
    let out = p.batou(&["deploy", "bundle"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let remote = lab.hosts[0].path("deployment");
    assert_eq!(remote_head(&remote), git(&p.path, &["rev-parse", "HEAD"]));
    assert!(std::fs::read_to_string(remote.join("work/tick/tick.sh"))
        .unwrap()
        .contains("date -u"));

    // The next commit travels as an incremental bundle.
    p.write(
        "components/tick/tick.sh",
        &p.read("components/tick/tick.sh")
            .replace("date -u", "date -R"),
    );
    git(&p.path, &["commit", "-q", "-am", "rfc"]);
    let out = p.batou(&["deploy", "bundle"]);
    assert!(out.status.success(), "{}", stdout(&out));
    assert_eq!(remote_head(&remote), git(&p.path, &["rev-parse", "HEAD"]));
    assert!(std::fs::read_to_string(remote.join("work/tick/tick.sh"))
        .unwrap()
        .contains("date -R"));

    // git-pull from an origin that lacks the newest local commit: -D skips
    // the outgoing check, and the host ends on another commit.
    // The shared origin belongs to another user (root, who runs the test),
    // and the host's user has no git configuration trusting it: git's
    // "dubious ownership" check must not stop the pull.
    let home = lab.hosts[0].path("");
    let _ = std::fs::remove_file(home.join(".gitconfig"));
    let origin_dir = tempfile::tempdir().unwrap();
    let origin = origin_dir.path().join("origin.git");
    git(
        origin_dir.path(),
        &[
            "init",
            "-q",
            "--bare",
            "-b",
            "main",
            origin.to_str().unwrap(),
        ],
    );
    Command::new("chmod")
        .args(["-R", "a+rX"])
        .arg(origin_dir.path())
        .status()
        .unwrap();
    git(
        &p.path,
        &["remote", "add", "origin", origin.to_str().unwrap()],
    );
    git(&p.path, &["push", "-q", "origin", "HEAD~1:refs/heads/main"]);
    Command::new("chmod")
        .args(["-R", "a+rX"])
        .arg(origin_dir.path())
        .status()
        .unwrap();
    git(&p.path, &["fetch", "-q", "origin"]);
    let out = p.batou(&["deploy", "pull"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("outgoing changes on branch main"), "{text}");
    let out = p.batou(&["deploy", "-D", "pull"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("The remote working copy is based on a different revision. Maybe you tried to deploy from the wrong branch."),
        "{text}"
    );

    // Pushed, git-pull deploys.
    git(&p.path, &["push", "-q", "origin", "main"]);
    Command::new("chmod")
        .args(["-R", "a+rX"])
        .arg(origin_dir.path())
        .status()
        .unwrap();
    git(&p.path, &["fetch", "-q", "origin"]);
    let out = p.batou(&["deploy", "pull"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert_eq!(
        remote_head(&lab.hosts[0].path("pulled")),
        git(&p.path, &["rev-parse", "HEAD"])
    );
}

fn hg(dir: &std::path::Path, args: &[&str]) -> String {
    let out = Command::new("hg")
        .args(args)
        .env("HGPLAIN", "1")
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "hg {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn hg_bundle() {
    let Some(lab) = SshLab::for_test(&["g2"]) else {
        return;
    };
    let p = Project::generate("hg-ship");
    p.write("ssh_config", &lab.ssh_config());
    p.write(
        "environments/bundle/environment.cfg",
        "[environment]\nconnect_method = ssh\nupdate_method = hg-bundle\n\n[hosts]\ng2 = tick\n",
    );
    p.write(".hgignore", "syntax: glob\ntarget/\nwork/\n.batou-lock\n");
    p.build_ok();
    hg(&p.path, &["init"]);
    hg(&p.path, &["add", "-q"]);
    hg(&p.path, &["commit", "-q", "-u", "test", "-m", "start"]);
    p.write(
        "components/tick/tick.sh",
        &p.read("components/tick/tick.sh").replace("date", "date -u"),
    );
    let out = p.batou(&["deploy", "bundle"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("ERROR: Your repository has uncommitted changes."),
        "{}",
        stdout(&out)
    );

    hg(&p.path, &["commit", "-q", "-u", "test", "-m", "utc"]);
    let out = p.batou(&["deploy", "bundle"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let remote = lab.hosts[0].path("deployment");
    let node = |dir: &std::path::Path| hg(dir, &["log", "-r", ".", "-T", "{node}"]);
    assert_eq!(node(&remote), node(&p.path));
    assert!(std::fs::read_to_string(remote.join("work/tick/tick.sh"))
        .unwrap()
        .contains("date -u"));

    hg(&p.path, &["tag", "-q", "-u", "test", "v1"]);
    let out = p.batou(&["deploy", "bundle"]);
    assert!(out.status.success(), "{}", stdout(&out));
    assert_eq!(node(&remote), node(&p.path));

    // hg-pull: the host pulls from `repository_url` (the local repository
    // has no default path), a repository another user owns.
    let origin_dir = tempfile::tempdir().unwrap();
    let origin = origin_dir.path().join("origin");
    hg(origin_dir.path(), &["init", origin.to_str().unwrap()]);
    p.write(
        "environments/pull/environment.cfg",
        &format!(
            "[environment]\nconnect_method = ssh\nupdate_method = hg-pull\nrepository_url = {}\n\
             target_directory = ~/pulled\n\n[hosts]\ng2 = tick\n",
            origin.display()
        ),
    );
    hg(
        &p.path,
        &["commit", "-q", "-u", "test", "-A", "-m", "pull environment"],
    );
    hg(&p.path, &["push", "-q", origin.to_str().unwrap()]);
    Command::new("chmod")
        .args(["-R", "a+rX"])
        .arg(origin_dir.path())
        .status()
        .unwrap();
    let out = p.batou(&["deploy", "pull"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let pulled = lab.hosts[0].path("pulled");
    assert_eq!(node(&pulled), node(&p.path));
    assert!(std::fs::read_to_string(pulled.join("work/tick/tick.sh"))
        .unwrap()
        .contains("date -u"));
}
