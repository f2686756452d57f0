//! The four library crates package for crates.io (`cargo package`,
//! offline, without the verification build) with their metadata, the
//! licence text and the readme; batou pins batou-macros exactly, and
//! batou-macros' dev-dependency on batou does not make a cycle.

use batou_tests::workspace_root;
use std::process::Command;

const CRATES: [&str; 4] = ["batou-cfg", "batou-macros", "batou", "batou-stdlib"];

fn from_crate(file: &std::path::Path, inner: &str) -> String {
    let out = Command::new("tar")
        .args(["xzf"])
        .arg(file)
        .args(["-O", inner])
        .output()
        .expect("run tar");
    assert!(
        out.status.success(),
        "{inner} missing in {}",
        file.display()
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn library_crates_package_with_their_metadata() {
    let target = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(env!("CARGO"));
    cmd.args([
        "package",
        "--no-verify",
        "--offline",
        "--allow-dirty",
        "--quiet",
    ]);
    for c in CRATES {
        cmd.args(["-p", c]);
    }
    let out = cmd
        .current_dir(workspace_root())
        .env("CARGO_TARGET_DIR", target.path())
        .output()
        .expect("run cargo package");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let version = env!("CARGO_PKG_VERSION");
    for c in CRATES {
        let file = target.path().join(format!("package/{c}-{version}.crate"));
        let root = format!("{c}-{version}");
        let manifest = from_crate(&file, &format!("{root}/Cargo.toml"));
        for key in [
            "description",
            "license",
            "repository",
            "readme",
            "keywords",
            "categories",
            "documentation",
        ] {
            assert!(
                manifest
                    .lines()
                    .any(|l| l.starts_with(&format!("{key} = "))),
                "{c}: no {key} in\n{manifest}"
            );
        }
        assert!(from_crate(&file, &format!("{root}/LICENSE")).contains("BSD 3-Clause License"));
        assert!(from_crate(&file, &format!("{root}/README.md")).starts_with("# batou for Rust"));
        if c == "batou" {
            // The macro reference is included from doc/ by rustdoc.
            for doc in ["component", "check_environments", "components"] {
                assert!(from_crate(&file, &format!("{root}/doc/{doc}.md")).contains("```"));
            }
            let macros = manifest
                .split("[dependencies.batou-macros]")
                .nth(1)
                .unwrap_or("");
            assert!(
                macros.trim_start().starts_with("version = \"=0.1.0\""),
                "{manifest}"
            );
        }
        if c == "batou-macros" {
            assert!(!manifest.contains("[dev-dependencies.batou]"), "{manifest}");
        }
    }
}
