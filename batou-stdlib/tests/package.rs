//! package::DPKG with the real dpkg-query and apt-get.

mod common;

use batou::testing::TestRoot;
use batou_stdlib::package::DPKG;
use std::process::Command;

fn installed(package: &str) -> bool {
    Command::new("dpkg-query")
        .args(["--show", "--showformat=${Status}", package])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "install ok installed")
}

fn remove(package: &str) {
    let _ = Command::new("apt-get")
        .args(["remove", "-y", "-qq", package])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status();
}

#[test]
fn an_installed_package_is_left_alone_and_bad_names_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut root = TestRoot::new(dir.path());
    root.configure(DPKG::new("dpkg")).unwrap();
    assert!(!root.deploy().unwrap(), "dpkg is installed: nothing to do");

    for bad in ["-y", "Big Package", "x;rm"] {
        let mut root = TestRoot::new(dir.path());
        let reports = root.configure(DPKG::new(bad)).unwrap_err();
        assert!(
            reports[0]
                .title
                .contains(&format!("DPKG: {bad:?} is not a Debian package name")),
            "{:?}",
            reports[0]
        );
    }
}

#[test]
fn a_missing_package_is_predicted_then_installed() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("SKIPPED: installing a Debian package needs root");
        return;
    }
    let package = "hello";
    if installed(package) {
        remove(package);
    }
    let dir = tempfile::tempdir().unwrap();
    let mut root = TestRoot::new(dir.path());
    root.configure(DPKG::new(package)).unwrap();
    assert!(root.predict().unwrap(), "predicted");
    assert!(!installed(package), "-P installs nothing");
    let has_candidate = Command::new("apt-cache")
        .args(["policy", package])
        .output()
        .is_ok_and(|o| {
            !String::from_utf8_lossy(&o.stdout).contains("Candidate: (none)")
                && !o.stdout.is_empty()
        });
    if !has_candidate {
        let _ = Command::new("apt-get")
            .args(["update", "-qq"])
            .stdout(std::process::Stdio::null())
            .status();
    }
    let result = root.deploy();
    let now = installed(package);
    remove(package);
    assert!(result.expect("apt-get install"), "changed");
    assert!(now, "installed");
}
