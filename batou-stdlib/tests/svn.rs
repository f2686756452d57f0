//! svn::Checkout against a real repository made by svnadmin.

mod common;

use batou::testing::TestRoot;
use batou_stdlib::svn::Checkout;
use common::{run, text};
use std::path::{Path, PathBuf};

/// A repository with trunk/a.txt at r1 = "1", r2 = "2"; returns its
/// trunk URL.
fn repository(dir: &Path) -> String {
    run(dir, "svnadmin", &["create", "repo"]);
    let url = format!("file://{}/repo", dir.display());
    let wc = dir.join("author");
    run(
        dir,
        "svn",
        &["mkdir", "-q", "-m", "trunk", &format!("{url}/trunk")],
    );
    run(
        dir,
        "svn",
        &["checkout", "-q", &format!("{url}/trunk"), "author"],
    );
    std::fs::write(wc.join("a.txt"), "1").unwrap();
    run(&wc, "svn", &["add", "-q", "a.txt"]);
    run(&wc, "svn", &["commit", "-q", "-m", "one"]);
    std::fs::write(wc.join("a.txt"), "2").unwrap();
    run(&wc, "svn", &["commit", "-q", "-m", "two"]);
    format!("{url}/trunk")
}

fn read(path: PathBuf) -> String {
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn a_revision_is_checked_out_and_converges() {
    let dir = tempfile::tempdir().unwrap();
    let url = repository(dir.path());
    let work = dir.path().join("work/checkout/ztk");
    // r1 made trunk, r2 added a.txt = "1", r3 changed it to "2".
    for (rev, content) in [("3", "2"), ("2", "1")] {
        let mut root = TestRoot::new(dir.path());
        root.configure(Checkout::new(url.clone()).target("ztk").revision(rev))
            .unwrap();
        assert!(root.deploy().unwrap(), "r{rev}");
        assert_eq!(read(work.join("a.txt")), content);
        assert!(!root.deploy().unwrap(), "converged at r{rev}");
    }

    // Local modifications: refused, then reverted with clobber.
    std::fs::write(work.join("a.txt"), "local").unwrap();
    let mut root = TestRoot::new(dir.path());
    root.configure(Checkout::new(url.clone()).target("ztk").revision("3"))
        .unwrap();
    let out = text(&root.deploy().unwrap_err());
    assert!(
        out.contains("has local modifications - refusing to clobber"),
        "{out}"
    );
    assert_eq!(read(work.join("a.txt")), "local");
    let mut root = TestRoot::new(dir.path());
    root.configure(
        Checkout::new(url.clone())
            .target("ztk")
            .revision("3")
            .clobber(true),
    )
    .unwrap();
    assert!(root.deploy().unwrap());
    assert_eq!(read(work.join("a.txt")), "2");

    for (checkout, message) in [
        (
            Checkout::new(url.clone()).revision("HEAD"),
            "needs a revision number (got \"HEAD\")",
        ),
        (
            Checkout::new(url.clone()),
            "No override and no default given for required attributes",
        ),
    ] {
        let mut root = TestRoot::new(dir.path());
        let reports = root.configure(checkout).unwrap_err();
        assert!(reports[0].title.contains(message), "{:?}", reports[0]);
    }
}
