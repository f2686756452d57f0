//! A tool a component needs and the host lacks: a clear error, nothing
//! changed. (Its own test binary: it empties PATH for the process.)

mod common;

use batou::testing::TestRoot;
use batou_stdlib::git::Clone;
use common::text;

#[test]
fn a_missing_binary_is_named_with_the_host() {
    let dir = tempfile::tempdir().unwrap();
    let empty = tempfile::tempdir().unwrap();
    std::env::set_var("PATH", empty.path());
    let mut root = TestRoot::new(dir.path());
    root.configure(Clone::new("https://example.com/repo.git").branch("main"))
        .unwrap();
    let out = text(&root.deploy().unwrap_err());
    assert!(
        out.contains("`git` is not installed on localhost (not found in PATH)"),
        "{out}"
    );
    let work = dir.path().join("work/git_clone");
    assert!(std::fs::read_dir(&work).map_or(true, |mut d| d.next().is_none()));
}

#[test]
fn a_python_version_the_host_lacks_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let mut root = TestRoot::new(dir.path());
    root.configure(batou_stdlib::python::VirtualEnv::new("2.1"))
        .unwrap();
    let out = text(&root.deploy().unwrap_err());
    assert!(
        out.contains("`python2.1` is not installed on localhost (not found in PATH)"),
        "{out}"
    );
    let work = dir.path().join("work/virtualenv");
    assert!(
        work.is_dir(),
        "the workdir is made before the sub-components"
    );
    assert!(!work.join("bin").exists(), "nothing was made");
}
