//! The real `cargo generate` on `template-project/`: what a user without
//! this repository's helpers runs. cargo-generate is built from
//! `tests/cargo-generate/` (pinned versions that build on this compiler,
//! its own Cargo.lock) into `target/cargo-generate`.

use batou_tests::{render_template_only, snapshot, stderr, stdout, workspace_root, Project};
use std::path::PathBuf;
use std::process::Command;

/// Builds the pinned cargo-generate and returns its executable.
fn cargo_generate() -> PathBuf {
    let root = workspace_root();
    let target = root.join("target").join("cargo-generate");
    let out = Command::new(env!("CARGO"))
        .args(["build", "--locked", "--quiet", "--manifest-path"])
        .arg(root.join("tests/cargo-generate/Cargo.toml"))
        .env("CARGO_TARGET_DIR", &target)
        .env_remove("RUSTFLAGS")
        .output()
        .expect("run cargo build for cargo-generate");
    assert!(
        out.status.success(),
        "building cargo-generate failed:\n{}",
        stderr(&out)
    );
    target.join("debug").join("batou-cargo-generate")
}

#[test]
fn real_cargo_generate_makes_the_crate_our_helpers_make_and_it_deploys() {
    let generate = cargo_generate();
    let dir = tempfile::Builder::new()
        .prefix("batou-cargo-generate-")
        .tempdir()
        .expect("temp dir");
    let out = Command::new(&generate)
        .args(["generate", "--path"])
        .arg(workspace_root().join("template-project"))
        .args([
            "--name",
            "my-deployment",
            "--silent",
            "--vcs",
            "none",
            "--destination",
        ])
        .arg(dir.path())
        .env("USER", "batou-test")
        .env("CARGO_GENERATE_NO_TIP", "1")
        .output()
        .expect("run cargo-generate");
    assert!(
        out.status.success(),
        "cargo generate failed:\n{}{}",
        stdout(&out),
        stderr(&out)
    );
    let generated = dir.path().join("my-deployment");

    // The helpers the other tests use render the same tree.
    let ours = tempfile::tempdir().expect("temp dir");
    render_template_only(ours.path(), "my-deployment").expect("render the template");
    let theirs = snapshot(&generated);
    let expected = snapshot(ours.path());
    let names = |s: &[(PathBuf, Vec<u8>, u32)]| s.iter().map(|f| f.0.clone()).collect::<Vec<_>>();
    assert_eq!(names(&theirs), names(&expected), "the same files");
    for ((path, content, mode), (_, want, want_mode)) in theirs.iter().zip(&expected) {
        assert_eq!(
            String::from_utf8_lossy(content),
            String::from_utf8_lossy(want),
            "content of {}",
            path.display()
        );
        assert_eq!(
            mode & 0o777,
            want_mode & 0o777,
            "mode of {}",
            path.display()
        );
    }
    let manifest = std::fs::read_to_string(generated.join("Cargo.toml")).expect("Cargo.toml");
    assert!(manifest.contains("name = \"my-deployment\""), "{manifest}");
    assert!(
        manifest.contains("batou = \"0.1\""),
        "by version:\n{manifest}"
    );
    assert!(
        !manifest.contains("path ="),
        "no checkout path:\n{manifest}"
    );

    // Against this checkout (the documented [patch]), it builds and deploys.
    batou_tests::patch_to_checkout(&generated, &workspace_root()).expect("add the patch");
    let project = Project::adopt(dir, generated, "my-deployment");
    project.build_ok();
    let out = project.batou(&["deploy", "local"]);
    assert!(
        out.status.success(),
        "deploy failed:\n{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(
        stdout(&out).contains("DEPLOYMENT FINISHED"),
        "{}",
        stdout(&out)
    );
    assert!(project.path.join("work/tick/tick.sh").is_file());
    let again = project.batou(&["deploy", "local"]);
    assert!(again.status.success(), "{}", stderr(&again));
    assert!(
        !stdout(&again).contains("Content('tick.sh')"),
        "converged:\n{}",
        stdout(&again)
    );
}
