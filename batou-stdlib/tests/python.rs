//! VirtualEnv with the real python3: what it refuses to replace, and an
//! interpreter of the wrong version.

mod common;

use batou::testing::TestRoot;
use batou_stdlib::python::VirtualEnv;
use common::text;

#[test]
fn a_directory_that_is_not_a_virtualenv_is_never_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work/virtualenv");
    std::fs::create_dir_all(work.join("bin")).unwrap();
    std::fs::write(work.join("bin/tool"), "mine\n").unwrap();
    let mut root = TestRoot::new(dir.path());
    root.configure(VirtualEnv::new("3")).unwrap();
    let out = text(&root.deploy().unwrap_err());
    assert!(
        out.contains(&format!(
            "VirtualEnv: {} holds bin/ or lib/ but no pyvenv.cfg: it is not a virtual \
             environment, and batou does not replace what it did not make",
            work.display()
        )),
        "{out}"
    );
    assert_eq!(
        std::fs::read_to_string(work.join("bin/tool")).unwrap(),
        "mine\n"
    );
}

#[test]
fn an_interpreter_of_another_version_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let mut root = TestRoot::new(dir.path());
    root.configure(VirtualEnv::new("3.99").executable("python3"))
        .unwrap();
    let out = text(&root.deploy().unwrap_err());
    assert!(
        out.contains(
            "VirtualEnv: python3 did not make a Python 3.99 environment; set `executable` \
             to an interpreter of that version"
        ),
        "{out}"
    );
}
